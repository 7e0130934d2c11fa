"""SASL SCRAM-SHA-256 (RFC 5802, RFC 7677) in AUTH (RFC 5034), end to end: a scripted
client that can also misbehave on purpose, and mpop (GNU SASL) as a real client.  The
secrets are those of the APOP database, as for CRAM-MD5."""
import base64
import hashlib
import hmac
import os
import re
import shutil
import subprocess

import pytest

from conftest import PASSWORDS, msg
from test_apop import SECRETS, capa, text_db, use_db

def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()

def unb64(text):
    return base64.b64decode(text, validate=True).decode()

class Scram:
    """The client side of one exchange, RFC 5802 section 3."""
    def __init__(self, user, password, cnonce=None, gs2="n,,"):
        self.user, self.password, self.gs2 = user, password, gs2
        self.cnonce = cnonce or b64(os.urandom(18))
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = "n=%s,r=%s" % (name, self.cnonce)

    def first(self):
        return self.gs2 + self.first_bare

    def final(self, server_first, cbind=None, nonce=None, proof=None):
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        self.nonce = attrs["r"]
        salt = base64.b64decode(attrs["s"])
        self.iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, self.iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        cb = cbind if cbind is not None else b64(self.gs2)
        without_proof = "c=%s,r=%s" % (cb, nonce if nonce is not None else self.nonce)
        auth_message = ",".join((self.first_bare, server_first, without_proof)).encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        p = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = b64(hmac.new(server_key, auth_message, hashlib.sha256).digest())
        return "%s,p=%s" % (without_proof, proof if proof is not None else b64(p))

def begin(s, c, initial=True):
    """AUTH SCRAM-SHA-256 up to the server-first-message, which is returned."""
    if initial:
        r = s.cmd("AUTH SCRAM-SHA-256 " + b64(c.first()))
    else:
        assert s.cmd("AUTH SCRAM-SHA-256") == "+ "
        r = s.cmd(b64(c.first()))
    assert r.startswith("+ "), r
    return unb64(r[2:])

def login(s, user, password, initial=True):
    """A whole exchange; the server's last reply."""
    c = Scram(user, password)
    sf = begin(s, c, initial)
    r = s.cmd(b64(c.final(sf)))
    if not r.startswith("+ "):
        return r
    assert unb64(r[2:]) == "v=" + c.server_signature
    return s.cmd("")

@pytest.fixture
def scram_site(site):
    use_db(site, text_db(site))
    site.write_mbox([msg(1), msg(2)])
    return site

def test_capa_offers_scram_with_the_database(site):
    site.write_mbox([msg(1)])
    s = site.inetd()
    assert "SASL PLAIN LOGIN" in capa(s)
    assert s.cmd("AUTH SCRAM-SHA-256") == "-ERR Authentication mechanism not available"
    s.close()
    use_db(site, text_db(site))
    s = site.inetd()
    assert "SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256" in capa(s)
    assert s.cmd("AUTH").startswith("+OK")
    assert [l.strip() for l in s.multi()] == [b"PLAIN", b"LOGIN", b"CRAM-MD5",
                                              b"SCRAM-SHA-256"]
    s.close()

def test_server_first_message(scram_site):
    s = scram_site.inetd()
    c = Scram("alice", SECRETS["alice"], cnonce="fyko+d2lbbFgONRv9qkxdawL")
    sf = begin(s, c)
    m = re.match(r"^r=fyko\+d2lbbFgONRv9qkxdawL([!-+\--~]{16,}),s=([A-Za-z0-9+/=]+),"
                 r"i=(\d+)$", sf)
    assert m, sf
    assert len(base64.b64decode(m.group(2))) >= 16
    assert int(m.group(3)) >= 4096
    assert s.cmd("*") == "-ERR Authentication cancelled"
    # A fresh salt and server nonce for every exchange, even for the same user.
    sf2 = begin(s, Scram("alice", SECRETS["alice"], cnonce="fyko+d2lbbFgONRv9qkxdawL"))
    assert sf2 != sf
    assert s.cmd("*") == "-ERR Authentication cancelled"
    s.close()

@pytest.mark.parametrize("initial", [True, False])
def test_success(scram_site, initial):
    s = scram_site.inetd()
    r = login(s, "alice", SECRETS["alice"], initial)
    assert r.startswith("+OK opened mailbox for alice"), r
    assert s.cmd("STAT").startswith("+OK 2 ")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()

def test_secret_with_spaces(scram_site):
    s = scram_site.inetd()
    r = login(s, "bob", SECRETS["bob"])
    # bob has no maildrop: authenticated, then the maildrop is what fails (or is empty).
    assert not r.startswith("-ERR [AUTH]") and not r.startswith("+ "), r
    s.close()

def test_wrong_password_and_unknown_user_same_reply(scram_site):
    s = scram_site.inetd()
    wrong = login(s, "alice", "not-the-secret")
    unknown = login(s, "zed", "whatever")
    assert wrong == unknown == "-ERR [AUTH] Bad login"
    s.close()

def test_login_password_is_not_the_secret(scram_site):
    # The secret of the APOP database counts, not the login password.
    s = scram_site.inetd()
    assert login(s, "alice", PASSWORDS["alice"]) == "-ERR [AUTH] Bad login"
    s.close()

def test_bad_nonce(scram_site):
    s = scram_site.inetd()
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    r = s.cmd(b64(c.final(sf, nonce=c.cnonce)))       # server's part not echoed
    assert r == "-ERR Invalid SASL response", r
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    r = s.cmd(b64(c.final(sf, nonce=sf.split(",")[0][2:] + "x")))   # one character more
    assert r == "-ERR Invalid SASL response", r
    # None of that was a failed login: the session still logs in.
    assert login(s, "alice", SECRETS["alice"]).startswith("+OK opened mailbox for alice")
    s.close()

def test_bad_proof(scram_site):
    s = scram_site.inetd()
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    assert s.cmd(b64(c.final(sf, proof=b64(bytes(32))))) == "-ERR [AUTH] Bad login"
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    assert s.cmd(b64(c.final(sf, proof=b64(bytes(31))))) == "-ERR Invalid SASL response"
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    assert s.cmd(b64(c.final(sf, proof="not base64!"))) == "-ERR Invalid SASL response"
    s.close()

def test_bad_channel_binding(scram_site):
    s = scram_site.inetd()
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    assert s.cmd(b64(c.final(sf, cbind=b64("y,,")))) == "-ERR Invalid SASL response"
    # The client asks for channel binding: only -PLUS mechanisms have it.
    c = Scram("alice", SECRETS["alice"], gs2="p=tls-unique,,")
    assert s.cmd("AUTH SCRAM-SHA-256 " + b64(c.first())) == "-ERR Invalid SASL response"
    # "y": the client could bind but thinks we can't, which is right.
    c = Scram("alice", SECRETS["alice"], gs2="y,,")
    sf = begin(s, c)
    r = s.cmd(b64(c.final(sf)))
    assert unb64(r[2:]) == "v=" + c.server_signature, r
    assert s.cmd("").startswith("+OK opened mailbox for alice")
    s.close()

def test_authzid(scram_site):
    s = scram_site.inetd()
    c = Scram("alice", SECRETS["alice"], gs2="n,a=bob,")
    assert s.cmd("AUTH SCRAM-SHA-256 " + b64(c.first())) == "-ERR Invalid SASL response"
    c = Scram("alice", SECRETS["alice"], gs2="n,a=alice,")
    sf = begin(s, c)
    r = s.cmd(b64(c.final(sf)))
    assert unb64(r[2:]) == "v=" + c.server_signature, r
    assert s.cmd("=").startswith("+OK opened mailbox for alice")
    s.close()

def test_malformed_first_messages(scram_site):
    s = scram_site.inetd()
    for first in ("n,,n=alice", "n,,r=abc", "x,,n=alice,r=abc", "n,,m=x,n=alice,r=abc",
                  "n,,n=al=ice,r=abc", "n,,n=alice,r=a,b", "n,,n=,r=abc", ""):
        r = s.cmd("AUTH SCRAM-SHA-256 " + (b64(first) if first else "="))
        assert r == "-ERR Invalid SASL response", (first, r)
    assert s.cmd("AUTH SCRAM-SHA-256 " + "A" * 5000).startswith("-ERR")
    s.close()

def test_cancel(scram_site):
    s = scram_site.inetd()
    assert s.cmd("AUTH SCRAM-SHA-256 *") == "-ERR Authentication cancelled"
    assert s.cmd("AUTH SCRAM-SHA-256") == "+ "
    assert s.cmd("*") == "-ERR Authentication cancelled"
    c = Scram("alice", SECRETS["alice"])
    begin(s, c)
    assert s.cmd("*") == "-ERR Authentication cancelled"
    # Cancelled after the server's signature: no login.
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    assert s.cmd(b64(c.final(sf))).startswith("+ ")
    assert s.cmd("*") == "-ERR Authentication cancelled"
    assert s.cmd("STAT") == "-ERR Incorrect state"
    # A non-empty answer to the server's signature is malformed.
    c = Scram("alice", SECRETS["alice"])
    sf = begin(s, c)
    assert s.cmd(b64(c.final(sf))).startswith("+ ")
    assert s.cmd(b64("x")) == "-ERR Invalid SASL response"
    assert login(s, "alice", SECRETS["alice"]).startswith("+OK opened mailbox for alice")
    s.close()

try:
    from test_tls import CERTTOOL, client_ctx, pki, tls, tls_built  # noqa: F401 (fixtures)
    HAVE_TLS_TESTS = CERTTOOL is not None and tls_built()
except ImportError:
    HAVE_TLS_TESTS = False

@pytest.mark.skipif(not HAVE_TLS_TESTS, reason="TLS not built or certtool missing")
def test_required_tls(site, tls):
    site.write_conf(tls.block() + "tls-mode required;\n"
                    'apop-database-file "%s";\napop-database-owner %d;\n'
                    % (text_db(site), os.getuid()))
    site.write_mbox([msg(1)])
    s = site.inetd()
    assert not any(c.startswith("SASL") for c in capa(s))
    assert s.cmd("AUTH SCRAM-SHA-256") == \
        "-ERR [AUTH] Plaintext authentication requires TLS: use STLS first"
    s.close()
    p, proc = site.poplib_inetd()
    p.stls(client_ctx(tls))
    assert p.capa()["SASL"] == ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"]
    c = Scram("alice", SECRETS["alice"])
    r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(c.first())).decode()
    r = p._shortcmd(b64(c.final(unb64(r[2:])))).decode()
    assert unb64(r[2:]) == "v=" + c.server_signature
    assert p._shortcmd("").startswith(b"+OK opened mailbox for alice")
    p.quit()
    proc.wait(timeout=20)

MPOP = shutil.which("mpop")

def mpop_has_scram():
    if MPOP is None:
        return False
    out = subprocess.run([MPOP, "--version"], capture_output=True, text=True).stdout
    return "scram-sha-256" in out

@pytest.mark.skipif(not mpop_has_scram(), reason="mpop with SCRAM-SHA-256 not installed")
@pytest.mark.parametrize("secret,ok", [(SECRETS["alice"], True), ("wrong", False)])
def test_mpop(site, secret, ok):
    site.write_mbox([msg(1), msg(2)])
    path = text_db(site)
    proc, port = site.daemon(extra_conf='apop-database-file "%s";\napop-database-owner %d;'
                             % (path, os.getuid()))
    out = os.path.join(site.dir, "fetched.mbox")
    open(out, "w").close()
    rc = os.path.join(site.dir, "mpoprc")
    with open(rc, "w") as f:
        f.write("defaults\ntls off\n"
                "account test\nhost 127.0.0.1\nport %d\nauth scram-sha-256\nuser alice\n"
                "passwordeval echo '%s'\ndelivery mbox %s\nkeep on\nuidls_file %s\n"
                % (port, secret, out, os.path.join(site.dir, "uidls")))
    os.chmod(rc, 0o600)
    r = subprocess.run([MPOP, "-C", rc, "-q", "test"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, HOME=site.dir))
    with open(out) as f:
        fetched = f.read()
    if ok:
        assert r.returncode == 0, r.stderr
        assert "Subject: test 1" in fetched and "Subject: test 2" in fetched
    else:
        assert r.returncode != 0
        assert "Bad login" in r.stderr or "authentication failed" in r.stderr.lower(), \
            r.stderr
        assert fetched == ""
