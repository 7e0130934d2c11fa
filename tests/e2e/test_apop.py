"""APOP (RFC 1939 section 7) with its secrets database, popauth, and SASL AUTH
(RFC 5034: PLAIN, LOGIN, CRAM-MD5), end to end: Python poplib, raw exchanges, curl.
SCRAM-SHA-256 has its own file, test_scram.py."""
import base64
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import POP3D, PASSWORDS, msg

POPAUTH = os.path.join(os.path.dirname(POP3D), "popauth")
SECRETS = {"alice": "alice-apop", "bob": "b0b apop secret"}
STAMP = re.compile(r"^\+OK POP3 Ready (<\d+\.\d+\.[0-9a-f]+@[^>]+>)$")

def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()

def apop_digest(stamp, secret):
    return hashlib.md5((stamp + secret).encode()).hexdigest()

def use_db(site, path, extra=""):
    site.write_conf('apop-database-file "%s";\napop-database-owner %d;\n%s'
                    % (path, os.getuid(), extra))

def text_db(site, secrets=SECRETS, mode=0o600, name="apop.passwd"):
    p = os.path.join(site.dir, name)
    with open(p, "w") as f:
        f.write("# APOP secrets\n")
        for u, s in secrets.items():
            f.write("%s:%s\n" % (u, s))
    os.chmod(p, mode)
    return p

@pytest.fixture
def apop_site(site):
    use_db(site, text_db(site))
    site.write_mbox([msg(1), msg(2)])
    return site

def stamp_of(s):
    m = STAMP.match(s.greeting)
    assert m, s.greeting
    return m.group(1)

def test_greeting_stamp_only_with_a_database(site):
    site.write_mbox([msg(1)])
    s = site.inetd()
    assert s.greeting == "+OK POP3 Ready"
    s.close()
    use_db(site, text_db(site))
    s1, s2 = site.inetd(), site.inetd()
    a, b = stamp_of(s1), stamp_of(s2)
    assert a != b
    # pid, time, then random bytes: not guessable from pid and time alone.
    assert len(a.split(".")[2].split("@")[0]) >= 16
    s1.close()
    s2.close()

def test_apop_with_poplib(apop_site):
    p, proc = apop_site.poplib_inetd()
    assert p.apop("alice", SECRETS["alice"]).startswith(b"+OK opened mailbox for alice")
    assert p.stat()[0] == 2
    p.quit()
    proc.wait(timeout=20)

def test_apop_raw_and_secret_with_spaces(apop_site):
    s = apop_site.inetd()
    st = stamp_of(s)
    r = s.cmd("APOP bob %s" % apop_digest(st, SECRETS["bob"]).upper())
    # bob has no maildrop: authenticated, then the maildrop is what fails (or is empty).
    assert not r.startswith("-ERR [AUTH]"), r
    s.close()

def test_apop_wrong_digest_and_unknown_user_same_reply(apop_site):
    s = apop_site.inetd()
    st = stamp_of(s)
    wrong = s.cmd("APOP alice %s" % apop_digest(st, "not-the-secret"))
    unknown = s.cmd("APOP zed %s" % apop_digest(st, "whatever"))
    assert wrong == unknown == "-ERR [AUTH] Bad login"
    s.close()

def test_apop_user_without_secret(apop_site):
    use_db(apop_site, text_db(apop_site, {"bob": SECRETS["bob"]}))
    s = apop_site.inetd()
    st = stamp_of(s)
    assert s.cmd("APOP alice %s" % apop_digest(st, SECRETS["alice"])) == \
        "-ERR [AUTH] Bad login"
    # USER/PASS still works for her.
    assert s.login().startswith("+OK opened mailbox for alice")
    s.cmd("QUIT")
    s.close()

def test_apop_malformed(apop_site):
    s = apop_site.inetd()
    stamp_of(s)
    assert s.cmd("APOP alice") == "-ERR Invalid arguments"
    assert s.cmd("APOP alice 1234") == "-ERR Invalid arguments"
    assert s.cmd("APOP alice " + "g" * 32) == "-ERR Invalid arguments"
    assert s.cmd("APOP") == "-ERR Invalid arguments"
    s.close()

@pytest.mark.parametrize("mode", [0o644, 0o640, 0o620, 0o602])
def test_unsafe_database_refused(site, mode):
    use_db(site, text_db(site, mode=mode))
    site.write_mbox([msg(1)])
    s = site.inetd()
    assert s.greeting == "+OK POP3 Ready"          # no stamp: APOP is not offered
    assert s.cmd("APOP alice " + "0" * 32).startswith("-ERR")
    s.close()

def test_database_owner_checked(site):
    path = text_db(site)
    site.write_conf('apop-database-file "%s";\napop-database-owner %d;\n'
                    % (path, os.getuid() + 1))
    s = site.inetd()
    assert s.greeting == "+OK POP3 Ready"
    s.close()

def test_database_safety_relaxed(site):
    use_db(site, text_db(site, mode=0o640), "apop-database-safety (-grdfil);")
    site.write_mbox([msg(1)])
    s = site.inetd()
    st = stamp_of(s)
    assert s.cmd("APOP alice %s" % apop_digest(st, SECRETS["alice"])).startswith("+OK")
    s.close()

def test_symlinked_database_in_writable_dir_refused(site):
    real = text_db(site)
    wr = os.path.join(site.dir, "wr")
    os.mkdir(wr)
    os.chmod(wr, 0o777)
    link = os.path.join(wr, "apop.passwd")
    os.symlink(real, link)
    use_db(site, link, "apop-database-safety (-awrdir);")
    s = site.inetd()
    assert s.greeting == "+OK POP3 Ready"
    s.close()

@pytest.mark.skipif(not os.path.exists(POPAUTH), reason="popauth not built")
def test_popauth_round_trip(site):
    db = os.path.join(site.dir, "apop.db")
    src = os.path.join(site.dir, "secrets.txt")
    with open(src, "w") as f:
        f.write("# initial secrets\nalice first-secret\nbob bob-secret\n")
    run = lambda *a, **k: subprocess.run([POPAUTH] + list(a), capture_output=True,
                                         text=True, **k)
    r = run("-c", "-f", src, "-o", db)
    assert r.returncode == 0, r.stderr
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"
    assert sorted(run("-l", "-f", db).stdout.splitlines()) == \
        ["alice first-secret", "bob bob-secret"]
    assert run("-a", "-u", "carol", "-p", "carol secret", "-f", db).returncode == 0
    assert run("-m", "-u", "alice", "-f", db, input="second-secret\n").returncode == 0
    assert run("-d", "-u", "bob", "-f", db).returncode == 0
    assert sorted(run("--compatibility", "-l", "-f", db).stdout.splitlines()) == \
        ["alice: second-secret", "carol: carol secret"]
    assert run("-l", "-u", "carol", "-f", db).stdout == "carol carol secret\n"
    mu = shutil.which("popauth", path="/usr/bin:/usr/sbin")
    if mu and os.path.realpath(mu) != os.path.realpath(POPAUTH):
        # Mailutils' own popauth reads what ours wrote.
        out = subprocess.run([mu, "-l", "-f", db], capture_output=True, text=True).stdout
        assert sorted(out.splitlines()) == ["alice second-secret", "carol carol secret"]

    use_db(site, db)
    site.write_mbox([msg(1)])
    p, proc = site.poplib_inetd()
    if not STAMP.match(p.welcome.decode()):
        pytest.fail("no APOP stamp with a GDBM database: %r" % p.welcome)
    assert p.apop("alice", "second-secret").startswith(b"+OK")
    p.quit()
    proc.wait(timeout=20)
    s = site.inetd()
    st = stamp_of(s)
    assert s.cmd("APOP alice %s" % apop_digest(st, "first-secret")) == "-ERR [AUTH] Bad login"
    assert s.cmd("APOP bob %s" % apop_digest(st, "bob-secret")) == "-ERR [AUTH] Bad login"
    s.close()

# ---- AUTH (RFC 5034) ----

def capa(s):
    assert s.cmd("CAPA").startswith("+OK")
    return [l.decode().rstrip("\r\n") for l in s.multi()]

def test_capa_sasl(site):
    site.write_mbox([msg(1)])
    s = site.inetd()
    assert "SASL PLAIN LOGIN" in capa(s)
    s.close()
    use_db(site, text_db(site))
    s = site.inetd()
    assert "SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256" in capa(s)
    assert s.cmd("AUTH").startswith("+OK")
    assert [l.strip() for l in s.multi()] == [b"PLAIN", b"LOGIN", b"CRAM-MD5",
                                              b"SCRAM-SHA-256"]
    s.close()

def test_auth_plain_initial_response(apop_site):
    s = apop_site.inetd()
    r = s.cmd("AUTH PLAIN " + b64("\0alice\0" + PASSWORDS["alice"]))
    assert r.startswith("+OK opened mailbox for alice"), r
    assert s.cmd("STAT").startswith("+OK 2 ")
    s.cmd("QUIT")
    s.close()

def test_auth_plain_after_challenge(apop_site):
    s = apop_site.inetd()
    assert s.cmd("AUTH PLAIN") == "+ "
    r = s.cmd(b64("alice\0alice\0" + PASSWORDS["alice"]))
    assert r.startswith("+OK opened mailbox for alice"), r
    s.close()

def test_auth_plain_wrong_password(apop_site):
    s = apop_site.inetd()
    assert s.cmd("AUTH PLAIN " + b64("\0alice\0wrong")) == "-ERR [AUTH] Bad login"
    assert s.cmd("AUTH PLAIN " + b64("\0nosuch\0wrong")) == "-ERR [AUTH] Bad login"
    s.close()

def test_auth_login(apop_site):
    s = apop_site.inetd()
    assert s.cmd("AUTH LOGIN") == "+ " + b64("Username:")
    assert s.cmd(b64("alice")) == "+ " + b64("Password:")
    r = s.cmd(b64(PASSWORDS["alice"]))
    assert r.startswith("+OK opened mailbox for alice"), r
    s.close()

def test_auth_cram_md5(apop_site):
    s = apop_site.inetd()
    r = s.cmd("AUTH CRAM-MD5")
    assert r.startswith("+ "), r
    challenge = base64.b64decode(r[2:])
    assert re.match(rb"^<[0-9a-f]+\.\d+@[^>]+>$", challenge), challenge
    d = hmac.new(SECRETS["alice"].encode(), challenge, hashlib.md5).hexdigest()
    r = s.cmd(b64("alice " + d))
    assert r.startswith("+OK opened mailbox for alice"), r
    s.close()

def test_auth_cram_md5_wrong_and_unknown(apop_site):
    s = apop_site.inetd()
    for user, secret in (("alice", "wrong"), ("zed", "whatever")):
        r = s.cmd("AUTH CRAM-MD5")
        challenge = base64.b64decode(r[2:])
        d = hmac.new(secret.encode(), challenge, hashlib.md5).hexdigest()
        assert s.cmd(b64(user + " " + d)) == "-ERR [AUTH] Bad login"
    s.close()

def test_auth_cram_md5_needs_database(site):
    site.write_mbox([msg(1)])
    s = site.inetd()
    assert s.cmd("AUTH CRAM-MD5").startswith("-ERR")
    s.close()

def test_auth_cancel_and_errors(apop_site):
    s = apop_site.inetd()
    assert s.cmd("AUTH PLAIN") == "+ "
    assert s.cmd("*") == "-ERR Authentication cancelled"
    assert s.cmd("AUTH LOGIN").startswith("+ ")
    assert s.cmd(b64("alice")).startswith("+ ")
    assert s.cmd("*") == "-ERR Authentication cancelled"
    assert s.cmd("AUTH PLAIN not-base64!") == "-ERR Invalid SASL response"
    assert s.cmd("AUTH PLAIN") == "+ "
    assert s.cmd("A" * 5000).startswith("-ERR")
    assert s.cmd("AUTH SCRAM-MD4") == "-ERR Unrecognized authentication type"
    # None of that was a failed login: the session still logs in.
    assert s.login().startswith("+OK opened mailbox for alice")
    s.close()

def test_failed_logins_delay_grows_then_session_ends(apop_site):
    s = apop_site.inetd()
    times = []
    for _ in range(3):
        t = time.monotonic()
        r = s.cmd("AUTH PLAIN " + b64("\0alice\0wrong"))
        times.append(time.monotonic() - t)
        assert r == "-ERR [AUTH] Bad login"
    assert times[1] > times[0] and times[2] > times[1], times
    assert times[0] >= 0.9
    assert s.line() is None          # closed after the third failure
    s.close()

@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5", "+APOP"])
def test_curl(site, mech):
    site.write_mbox([msg(1)])
    path = text_db(site)
    proc, port = site.daemon(extra_conf='apop-database-file "%s";\napop-database-owner %d;'
                             % (path, os.getuid()))
    secret = SECRETS["alice"] if mech in ("+APOP", "CRAM-MD5") else PASSWORDS["alice"]
    r = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", "alice:" + secret,
                        "--login-options", "AUTH=" + mech,
                        "pop3://127.0.0.1:%d/1" % port], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert b"Subject: test 1" in r.stdout

# ---- tls-mode required: plain-text mechanisms only inside TLS ----

try:
    from test_tls import CERTTOOL, client_ctx, pki, tls, tls_built  # noqa: F401 (fixtures)
    HAVE_TLS_TESTS = CERTTOOL is not None and tls_built()
except ImportError:
    HAVE_TLS_TESTS = False

@pytest.mark.skipif(not HAVE_TLS_TESTS, reason="TLS not built or certtool missing")
def test_required_tls_plaintext_mechanisms_only_inside_tls(site, tls):
    site.write_conf(tls.block() + "tls-mode required;\n"
                    'apop-database-file "%s";\napop-database-owner %d;\n'
                    % (text_db(site), os.getuid()))
    site.write_mbox([msg(1)])
    s = site.inetd()
    # tls-mode required: no credentials of any kind before TLS (APOP and every SASL
    # mechanism included), and CAPA offers none.
    assert not any(c.startswith("SASL") for c in capa(s))
    for cmd in ("AUTH PLAIN " + b64("\0alice\0" + PASSWORDS["alice"]), "AUTH LOGIN",
                "AUTH CRAM-MD5", "AUTH SCRAM-SHA-256", "APOP alice " + "0" * 32):
        assert s.cmd(cmd) == \
            "-ERR [AUTH] Plaintext authentication requires TLS: use STLS first", cmd
    s.close()
    p, proc = site.poplib_inetd()
    p.stls(client_ctx(tls))
    assert p.capa()["SASL"] == ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"]
    assert p._shortcmd("AUTH PLAIN " + b64("\0alice\0" + PASSWORDS["alice"])) \
        .startswith(b"+OK opened mailbox for alice")
    p.quit()
    proc.wait(timeout=20)
