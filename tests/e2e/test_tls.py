"""TLS end to end: STLS (RFC 2595) and POP3S (RFC 8314) with certificates made by certtool
at test time, driven by Python ssl/poplib, gnutls-cli, curl and fetchmail; tls-mode
semantics, STARTTLS command injection, the preflight checks, timeouts."""
import os
import poplib
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PASSWORDS, POP3D, free_port, msg, wire

CERTTOOL = shutil.which("certtool")
GNUTLS_CLI = shutil.which("gnutls-cli")
CURL = shutil.which("curl")
FETCHMAIL = shutil.which("fetchmail")

MSGS = [msg(1), msg(2, ".dot line\nbody\n"), msg(3)]


def tls_built():
    if not os.path.exists(POP3D):
        return False
    out = subprocess.run([POP3D, "--show-config-options"], capture_output=True,
                         text=True).stdout
    return "WITH_GNUTLS" in out


pytestmark = [
    pytest.mark.skipif(CERTTOOL is None, reason="certtool (gnutls-bin) is not installed"),
    pytest.mark.skipif(not tls_built(), reason="pop3d built without GnuTLS"),
]

CA_TEMPLATE = 'cn = "pop3d test CA"\nca\ncert_signing_key\nexpiration_days = 3\n'
SERVER_TEMPLATE = ('cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                   'tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 3\n')


def certtool(*args):
    subprocess.run([CERTTOOL] + list(args), check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server key and certificate signed by it, and a second unrelated key."""
    d = str(tmp_path_factory.mktemp("pki"))
    p = lambda n: os.path.join(d, n)
    with open(p("ca.tmpl"), "w") as f:
        f.write(CA_TEMPLATE)
    with open(p("srv.tmpl"), "w") as f:
        f.write(SERVER_TEMPLATE)
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", p("ca-key.pem"))
    certtool("--generate-self-signed", "--load-privkey", p("ca-key.pem"),
             "--template", p("ca.tmpl"), "--outfile", p("ca.pem"))
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", p("key.pem"))
    certtool("--generate-certificate", "--load-privkey", p("key.pem"),
             "--load-ca-certificate", p("ca.pem"), "--load-ca-privkey", p("ca-key.pem"),
             "--template", p("srv.tmpl"), "--outfile", p("cert.pem"))
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", p("other-key.pem"))
    return d


class Tls:
    """The TLS files of one site, in a private directory (mode 0700)."""
    def __init__(self, site, pki):
        self.dir = os.path.join(site.dir, "tls")
        os.mkdir(self.dir, 0o700)
        for n in ("ca.pem", "cert.pem", "key.pem", "other-key.pem"):
            shutil.copy(os.path.join(pki, n), os.path.join(self.dir, n))
        os.chmod(self.key, 0o600)
        os.chmod(self.other_key, 0o600)
        os.chmod(self.cert, 0o644)

    def path(self, n):
        return os.path.join(self.dir, n)

    ca = property(lambda self: self.path("ca.pem"))
    cert = property(lambda self: self.path("cert.pem"))
    key = property(lambda self: self.path("key.pem"))
    other_key = property(lambda self: self.path("other-key.pem"))

    def block(self, cert=None, key=None, extra=""):
        return 'tls { ssl-certificate-file "%s"; ssl-key-file "%s"; %s };\n' % (
            cert or self.cert, key or self.key, extra)


@pytest.fixture
def tls(site, pki):
    return Tls(site, pki)


def client_ctx(tls, check_hostname=False):
    ctx = ssl.create_default_context(cafile=tls.ca)
    ctx.check_hostname = check_hostname
    return ctx


def read_line_raw(sock):
    """One line read byte by byte, so nothing after it is consumed (before a handshake)."""
    out = b""
    while not out.endswith(b"\r\n"):
        c = sock.recv(1)
        if not c:
            break
        out += c
    return out


def read_multi(f):
    lines = []
    while True:
        l = f.readline(1 << 24)
        assert l, "connection closed inside a multi-line response"
        if l == b".\r\n":
            return lines
        lines.append(l[1:] if l.startswith(b"..") else l)


def capa_of(f, sock):
    sock.sendall(b"CAPA\r\n")
    assert f.readline() == b"+OK Capability list follows\r\n"
    return [l.decode().strip() for l in read_multi(f)]


def start_daemon(site, conf, ports):
    """pop3d -d with the given configuration; wait until every port accepts."""
    site.write_conf(conf)
    proc = subprocess.Popen([POP3D, "-d", "--foreground", "--config-file=" + site.conf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=site.env())
    site.procs.append(proc)
    deadline = time.monotonic() + 20
    for port in ports:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("pop3d exited: " + proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("pop3d did not start listening")
                time.sleep(0.02)
    return proc


def lint(site, conf):
    site.write_conf(conf)
    return subprocess.run([POP3D, "--config-lint", "--config-file=" + site.conf],
                          capture_output=True, text=True, env=site.env(), timeout=30)


def poplib_stls_inetd(site, tls):
    p, proc = site.poplib_inetd()
    p.stls(client_ctx(tls))
    return p, proc


# ---------------------------------------------------------------------------------------
# When STLS is offered

def test_stls_not_offered_without_tls(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    s.cmd("CAPA")
    assert "STLS" not in [l.decode().strip() for l in s.multi()]
    assert s.cmd("STLS") == "-ERR TLS not available"
    assert s.login().startswith("+OK")
    s.cmd("QUIT")
    s.close()


def test_global_tls_block_alone_does_not_offer_stls(site, tls):
    """COMPAT 2.5: a global tls {} without tls-mode does not turn STLS on (inetd)."""
    site.write_conf(tls.block())
    s = site.inetd()
    s.cmd("CAPA")
    assert "STLS" not in [l.decode().strip() for l in s.multi()]
    s.cmd("QUIT")
    s.close()


def test_stls_poplib(site, tls):
    """poplib.stls() (which needs STLS in CAPA), then a whole session inside TLS."""
    site.write_conf(tls.block() + "tls-mode ondemand;")
    site.write_mbox(MSGS)
    p, proc = poplib_stls_inetd(site, tls)
    assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps
    with pytest.raises(poplib.error_proto, match="not permitted when TLS active"):
        p._shortcmd("STLS")
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat() == (3, sum(len(wire(m)) for m in MSGS))
    resp, lines, octets = p.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == wire(MSGS[1])
    p.quit()
    proc.wait(timeout=20)
    assert proc.returncode == 0


def test_stls_alias_and_after_user(site, tls):
    """`tls-mode stls' is ondemand; USER given before STLS is forgotten inside TLS."""
    site.write_conf(tls.block() + "tls-mode stls;")
    site.write_mbox(MSGS)
    p, proc = site.poplib_inetd()
    p.user("alice")
    p.stls(client_ctx(tls))
    with pytest.raises(poplib.error_proto, match="USER first"):
        p.pass_(PASSWORDS["alice"])
    p.user("alice")
    assert p.pass_(PASSWORDS["alice"]).startswith(b"+OK")
    p.quit()
    proc.wait(timeout=20)


def test_stls_not_in_transaction_state(site, tls):
    site.write_conf(tls.block() + "tls-mode ondemand;")
    site.write_mbox(MSGS)
    s = site.inetd()
    s.login()
    assert s.cmd("STLS") == "-ERR Incorrect state"
    s.cmd("CAPA")
    assert "STLS" not in [l.decode().strip() for l in s.multi()]
    s.cmd("QUIT")
    s.close()


def test_stls_command_injection(site, tls):
    """CVE-2011-0411 class: `STLS\\r\\nCAPA\\r\\n' in one write.  The CAPA is answered
    neither in clear (the handshake would fail on it) nor inside TLS."""
    site.write_conf(tls.block() + "tls-mode ondemand;")
    s = site.inetd()
    s.f.close()                       # read the socket directly from now on
    s.sock.sendall(b"STLS\r\nCAPA\r\n")
    assert read_line_raw(s.sock) == b"+OK Begin TLS negotiation\r\n"
    t = client_ctx(tls).wrap_socket(s.sock)
    f = t.makefile("rb")
    t.sendall(b"NOOP\r\nQUIT\r\n")
    # The first thing inside TLS is the answer to NOOP, not a capability list.
    assert f.readline() == b"-ERR Incorrect state\r\n"
    assert f.readline().startswith(b"+OK POP3 server signing off")
    assert f.readline() == b""
    s.proc.wait(timeout=20)
    err = s.proc.stderr.read().decode()
    assert "discarded 6 bytes" in err
    s.proc.stderr.close()
    s.proc = None
    s.close()


def test_server_block_tls_mode_resolution(site, tls):
    """Daemon mode: a server block with its own certificate and no tls-mode gets
    ondemand; one without gets nothing; an explicit tls-mode no wins over a certificate."""
    site.write_mbox(MSGS)
    p1, p2, p3 = free_port(), free_port(), free_port()
    conf = ("server 127.0.0.1:%d { %s };\n"
            "server 127.0.0.1:%d { };\n"
            "server 127.0.0.1:%d { tls-mode no; %s };\n" % (p1, tls.block(), p2, p3,
                                                              tls.block()))
    start_daemon(site, conf, [p1, p2, p3])
    for port, offered in ((p1, True), (p2, False), (p3, False)):
        s = site.connect(port)
        s.cmd("CAPA")
        assert ("STLS" in [l.decode().strip() for l in s.multi()]) == offered, port
        s.cmd("QUIT")
        s.close()
    p = poplib.POP3("127.0.0.1", p1, timeout=30)
    p.stls(client_ctx(tls, check_hostname=True))
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat()[0] == 3
    p.quit()


def test_server_block_inherits_global_tls_mode(site, tls):
    port = free_port()
    start_daemon(site, tls.block() + "tls-mode required;\nserver 127.0.0.1:%d { };\n" % port,
                 [port])
    s = site.connect(port)
    assert s.cmd("USER alice").startswith("-ERR [AUTH]")
    s.cmd("QUIT")
    s.close()


# ---------------------------------------------------------------------------------------
# tls-mode required

def test_required_refuses_credentials_before_tls(site, tls):
    site.write_conf(tls.block() + "tls-mode required;")
    site.write_mbox(MSGS)
    s = site.inetd()
    s.cmd("CAPA")
    caps = [l.decode().strip() for l in s.multi()]
    assert "STLS" in caps and "USER" not in caps
    assert s.cmd("USER alice") == \
        "-ERR [AUTH] Plaintext authentication requires TLS: use STLS first"
    assert s.cmd("PASS " + PASSWORDS["alice"]).startswith("-ERR [AUTH]")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    # ... and inside TLS everything works.
    p, proc = poplib_stls_inetd(site, tls)
    assert "USER" in p.capa()
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat()[0] == 3
    p.quit()
    proc.wait(timeout=20)


# ---------------------------------------------------------------------------------------
# POP3S

def test_pop3s_daemon_poplib(site, tls):
    site.write_mbox(MSGS)
    port = free_port()
    start_daemon(site, "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (port, tls.block()), [port])
    p = poplib.POP3_SSL("127.0.0.1", port, context=client_ctx(tls, check_hostname=True),
                        timeout=30)
    assert p.getwelcome().startswith(b"+OK POP3 Ready")
    assert "STLS" not in p.capa()
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    for i, m in enumerate(MSGS):
        resp, lines, octets = p.retr(i + 1)
        assert b"\r\n".join(lines) + b"\r\n" == wire(m)
    p.quit()


def test_pop3s_inetd_and_true_alias(site, tls):
    """`tls-mode true' is POP3S (Mailutils); the greeting comes inside TLS."""
    site.write_conf(tls.block() + "tls-mode true;")
    site.write_mbox(MSGS)
    a, b = socket.socketpair()
    proc = subprocess.Popen([POP3D, "-i", "--config-file=" + site.conf], stdin=b, stdout=b,
                            stderr=subprocess.DEVNULL, env=site.env())
    site.procs.append(proc)
    b.close()
    a.settimeout(30)
    # suppress_ragged_eofs=False: an EOF without close_notify would raise.
    t = client_ctx(tls).wrap_socket(a, suppress_ragged_eofs=False)
    f = t.makefile("rb")
    assert f.readline().startswith(b"+OK POP3 Ready")
    assert "STLS" not in capa_of(f, t)
    t.sendall(b"STLS\r\n")
    assert f.readline() == b"-ERR Command not permitted when TLS active\r\n"
    t.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    assert f.readline() == b""
    t.close()
    assert proc.wait(timeout=20) == 0


def _pop3s_session(ctx, port, session=None):
    """Log in over POP3S (resuming session when given), QUIT; the TLS session and whether
    it was resumed."""
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                        session=session)
    f = t.makefile("rb")
    assert f.readline().startswith(b"+OK POP3 Ready")
    t.sendall(("USER alice\r\nPASS %s\r\nSTAT\r\nQUIT\r\n" % PASSWORDS["alice"]).encode())
    for _ in range(4):
        assert f.readline().startswith(b"+OK")
    reused, sess = t.session_reused, t.session
    f.close()
    t.close()
    return sess, reused


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
def test_session_resumption(site, tls, version):
    """A returning client resumes its TLS session with a ticket (no full handshake), in
    any later connection's worker; a client without one gets a full handshake."""
    site.write_mbox(MSGS)
    port = free_port()
    start_daemon(site, "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (port, tls.block()), [port])
    ctx = client_ctx(tls)
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    first, reused = _pop3s_session(ctx, port)
    assert not reused and first.has_ticket
    for _ in range(2):
        sess, reused = _pop3s_session(ctx, port, first)
        assert reused, "the session was not resumed"
    # Another client context holds no ticket of this server: a full handshake.
    other = client_ctx(tls)
    other.minimum_version = other.maximum_version = ctx.minimum_version
    _, reused = _pop3s_session(other, port)
    assert not reused


def test_large_message_over_tls(site, tls):
    """A 5 MB message, byte-exact, through both RETR and an odd output buffer size."""
    line = "".join(chr(33 + (i % 90)) for i in range(77))
    body = "".join("%06d %s\n" % (i, line) for i in range(5 * 1024 * 1024 // 85))
    big = msg(9, body + ".\n..\nend\n")
    site.write_mbox([big, MSGS[0]])
    port = free_port()
    start_daemon(site, "output-buffer-size 10000;\n"
                 "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (port, tls.block()), [port])
    p = poplib.POP3_SSL("127.0.0.1", port, context=client_ctx(tls), timeout=60)
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    resp, lines, octets = p.retr(1)
    assert resp == b"+OK %d octets" % len(wire(big))
    assert b"\r\n".join(lines) + b"\r\n" == wire(big)
    assert len(wire(big)) > 5 * 1000 * 1000
    p.quit()


def test_pipelined_commands_inside_tls(site, tls):
    site.write_conf(tls.block() + "tls-mode ondemand;")
    site.write_mbox(MSGS)
    s = site.inetd()
    s.f.close()
    s.sock.sendall(b"STLS\r\n")
    assert read_line_raw(s.sock) == b"+OK Begin TLS negotiation\r\n"
    t = client_ctx(tls).wrap_socket(s.sock)
    f = t.makefile("rb")
    t.sendall(("USER alice\r\nPASS %s\r\nSTAT\r\nLIST\r\nRETR 2\r\nUIDL\r\nTOP 1 0\r\n"
               "NOOP\r\nQUIT\r\n" % PASSWORDS["alice"]).encode())
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK opened mailbox")
    assert f.readline().startswith(b"+OK 3 ")
    assert f.readline().startswith(b"+OK")
    assert len(read_multi(f)) == 3
    assert f.readline().startswith(b"+OK")
    assert b"".join(read_multi(f)) == wire(MSGS[1])
    assert f.readline().startswith(b"+OK")
    assert len(read_multi(f)) == 3
    assert f.readline().startswith(b"+OK")
    read_multi(f)
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK POP3 server signing off")
    assert f.readline() == b""
    s.proc.wait(timeout=20)
    assert s.proc.returncode == 0
    s.close()


# ---------------------------------------------------------------------------------------
# Protocol versions

def gnutls_cli(args, data=b"", timeout=30):
    return subprocess.run([GNUTLS_CLI] + args, input=data, capture_output=True,
                          timeout=timeout)


@pytest.mark.skipif(GNUTLS_CLI is None, reason="gnutls-cli (gnutls-bin) is not installed")
def test_old_tls_versions_refused(site, tls):
    port = free_port()
    start_daemon(site, "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (port, tls.block()), [port])
    base = ["--x509cafile", tls.ca, "-p", str(port), "127.0.0.1"]
    for vers in ("TLS1.0", "TLS1.1"):
        r = gnutls_cli(base + ["--priority", "NORMAL:-VERS-ALL:+VERS-" + vers], b"QUIT\r\n")
        assert r.returncode != 0, vers
        assert b"+OK POP3 Ready" not in r.stdout
    for vers in ("TLS1.2", "TLS1.3"):
        r = gnutls_cli(base + ["--priority", "NORMAL:-VERS-ALL:+VERS-" + vers], b"QUIT\r\n")
        assert b"+OK POP3 Ready" in r.stdout, (vers, r.stderr)


@pytest.mark.skipif(GNUTLS_CLI is None, reason="gnutls-cli (gnutls-bin) is not installed")
def test_ssl_priorities_setting(site, tls):
    """ssl-priorities replaces the default: here TLS 1.2 only."""
    port = free_port()
    start_daemon(site, "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (port, tls.block(extra='ssl-priorities "NORMAL:-VERS-ALL:+VERS-TLS1.2";')),
                 [port])
    base = ["--x509cafile", tls.ca, "-p", str(port), "127.0.0.1"]
    r = gnutls_cli(base + ["--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3"], b"QUIT\r\n")
    assert r.returncode != 0
    r = gnutls_cli(base, b"QUIT\r\n")
    assert b"+OK POP3 Ready" in r.stdout and b"TLS1.2" in r.stdout


@pytest.mark.skipif(GNUTLS_CLI is None, reason="gnutls-cli (gnutls-bin) is not installed")
def test_gnutls_cli_starttls(site, tls):
    site.write_mbox(MSGS)
    port = free_port()
    start_daemon(site, "server 127.0.0.1:%d { tls-mode ondemand; %s };\n"
                 % (port, tls.block()), [port])
    # (Its --crlf converts only the last line of a read: send CRLF instead.)
    r = gnutls_cli(["--starttls-proto=pop3", "--x509cafile", tls.ca, "-p", str(port),
                    "127.0.0.1"],
                   ("CAPA\r\nUSER alice\r\nPASS %s\r\nSTAT\r\nQUIT\r\n"
                    % PASSWORDS["alice"]).encode())
    out = r.stdout.decode(errors="replace")
    assert "+OK Capability list follows" in out
    assert "+OK opened mailbox for alice" in out
    assert "+OK 3 " in out, (out, r.stderr)


# ---------------------------------------------------------------------------------------
# Real clients

@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_stls_and_pop3s(site, tls):
    site.write_mbox(MSGS)
    p1, p2 = free_port(), free_port()
    start_daemon(site, "server 127.0.0.1:%d { tls-mode ondemand; %s };\n"
                 "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (p1, tls.block(), p2, tls.block()), [p1, p2])
    user = "alice:" + PASSWORDS["alice"]
    for url, extra in (("pop3://127.0.0.1:%d/2" % p1, ["--ssl-reqd", "--cacert", tls.ca]),
                       ("pop3s://127.0.0.1:%d/2" % p2, ["--cacert", tls.ca]),
                       ("pop3s://127.0.0.1:%d/2" % p2, ["-k"])):
        r = subprocess.run([CURL, "-sS", "--max-time", "30", "-u", user] + extra + [url],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, (url, r.stderr)
        assert r.stdout == wire(MSGS[1]), url
    # --ssl-reqd against a listener that does not offer STLS fails instead of
    # sending the password in clear.
    proc, plain = site.daemon()
    r = subprocess.run([CURL, "-sS", "--max-time", "30", "-u", user, "--ssl-reqd",
                        "--cacert", tls.ca, "pop3://127.0.0.1:%d/1" % plain],
                       capture_output=True, timeout=60)
    assert r.returncode != 0


@pytest.mark.skipif(FETCHMAIL is None, reason="fetchmail is not installed "
                    "(apt-get install fetchmail)")
@pytest.mark.parametrize("mode", ["pop3s", "stls"])
def test_fetchmail(site, tls, mode):
    site.write_mbox(MSGS)
    port = free_port()
    tls_mode = "connection" if mode == "pop3s" else "required"
    start_daemon(site, "server 127.0.0.1:%d { tls-mode %s; %s };\n"
                 % (port, tls_mode, tls.block()), [port])
    home = os.path.join(site.dir, "fmhome")
    os.mkdir(home, 0o700)
    out = os.path.join(site.dir, "fetched")
    rc = os.path.join(home, ".fetchmailrc")
    with open(rc, "w") as f:
        f.write('poll 127.0.0.1 protocol pop3 port %d auth password\n'
                '  user "alice" password "%s" is "alice" here\n'
                '  %s sslcertck sslcertfile "%s" sslcommonname "localhost" keep\n'
                '  mda "cat >> %s"\n'
                % (port, PASSWORDS["alice"],
                   "ssl" if mode == "pop3s" else "sslproto tls1.2+", tls.ca, out))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
    r = subprocess.run([FETCHMAIL, "-N", "-d0", "--nosyslog", "-f", rc, "-v"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out, "rb") as f:
        got = f.read()
    for m in MSGS:
        assert m.split("\n")[2].encode() in got     # each Subject: arrived
    if mode == "stls":
        assert "STLS" in r.stdout + r.stderr


# ---------------------------------------------------------------------------------------
# Preflight: --config-lint and start-up

def test_lint_clean(site, tls):
    r = lint(site, tls.block() + "tls-mode ondemand;")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_lint_wrong_key(site, tls):
    r = lint(site, tls.block(key=tls.other_key) + "tls-mode ondemand;")
    assert r.returncode == 78
    assert ("ssl-key-file %s does not match the certificate in ssl-certificate-file %s"
            % (tls.other_key, tls.cert)) in r.stderr


def test_lint_missing_files(site, tls):
    missing = tls.path("nope.pem")
    r = lint(site, tls.block(key=missing) + "tls-mode ondemand;")
    assert r.returncode == 78
    assert "ssl-key-file %s: No such file or directory" % missing in r.stderr
    r = lint(site, tls.block(cert=missing) + "tls-mode ondemand;")
    assert r.returncode == 78
    assert "ssl-certificate-file %s: No such file or directory" % missing in r.stderr
    r = lint(site, "tls-mode ondemand;")
    assert r.returncode == 78
    assert "tls-mode needs a certificate and a key" in r.stderr


def test_lint_not_a_key(site, tls):
    r = lint(site, tls.block(key=tls.ca) + "tls-mode required;")
    assert r.returncode == 78
    assert "ssl-key-file" in r.stderr


def test_lint_bad_priorities(site, tls):
    r = lint(site, tls.block(extra='ssl-priorities "NORMAL:+BOGUS";') + "tls-mode ondemand;")
    assert r.returncode == 78
    assert "ssl-priorities" in r.stderr and "BOGUS" in r.stderr


def test_lint_server_block(site, tls):
    port = free_port()
    site.write_conf("server 127.0.0.1:%d { %s };\n" % (port, tls.block(key=tls.other_key)))
    r = subprocess.run([POP3D, "-d", "--config-lint", "--config-file=" + site.conf],
                       capture_output=True, text=True, env=site.env(), timeout=30)
    assert r.returncode == 78
    assert "server 127.0.0.1:%d: TLS: ssl-key-file" % port in r.stderr


def test_unsafe_key_mode_refused(site, tls):
    """tls-file-checks: the key file gets every check by default (0644 fails); the
    check is done on the opened file, and a check list can relax it."""
    os.chmod(tls.key, 0o644)
    conf = tls.block() + "tls-mode ondemand;"
    r = lint(site, conf)
    assert r.returncode == 78
    assert "ssl-key-file %s is group-readable (mode 0644; tls-file-checks: grdfil)" \
        % tls.key in r.stderr
    # The daemon and inetd mode refuse to start (Mailutils would offer STLS and fail).
    s = site.inetd()
    assert s.greeting is None
    s.close()
    assert s.returncode == 78
    assert "group-readable" in s.stderr
    os.chmod(tls.key, 0o640)
    r = lint(site, conf + "tls-file-checks { key-file -grdfil; };")
    assert r.returncode == 0, r.stderr
    os.chmod(tls.key, 0o604)
    r = lint(site, conf + "tls-file-checks { key-file -grdfil; };")
    assert r.returncode == 78 and "world-readable" in r.stderr
    r = lint(site, conf + "tls-file-checks { key-file none; };")
    assert r.returncode == 0, r.stderr
    # Certificates may be world-readable, not group-writable.
    os.chmod(tls.key, 0o600)
    os.chmod(tls.cert, 0o664)
    r = lint(site, conf)
    assert r.returncode == 78 and "is group-writable" in r.stderr


def test_key_in_writable_directory_refused(site, tls):
    os.chmod(tls.dir, 0o770)
    r = lint(site, tls.block() + "tls-mode ondemand;")
    assert r.returncode == 78
    assert "is in a group-writable directory (tls-file-checks: gwrdir)" in r.stderr
    r = lint(site, tls.block() + "tls-mode ondemand; tls-file-checks { key-file -gwrdir; };")
    assert r.returncode == 0, r.stderr


def test_symlinked_key_in_writable_directory_refused(site, tls):
    d = os.path.join(site.dir, "shared")
    os.mkdir(d)
    os.chmod(d, 0o777)
    link = os.path.join(d, "key.pem")
    os.symlink(tls.key, link)
    r = lint(site, tls.block(key=link) + "tls-mode ondemand;"
             "tls-file-checks { key-file -awrdir; };")
    assert r.returncode == 78
    assert "symbolic link in a group- or world-writable directory" in r.stderr


# ---------------------------------------------------------------------------------------
# SIGHUP reloads certificates (standalone)

def wait_stderr(proc, needle, timeout=20):
    """Read the daemon's stderr until a line holds needle (bounded)."""
    import select
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stderr.fileno()
    while needle.encode() not in buf:
        left = deadline - time.monotonic()
        assert left > 0, "no %r in: %s" % (needle, buf.decode(errors="replace"))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 65536)
            assert chunk, "pop3d exited: " + buf.decode(errors="replace")
            buf += chunk
    return buf.decode(errors="replace")


def served_cert(port, tls):
    ctx = client_ctx(tls)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        with ctx.wrap_socket(c) as t:
            der = t.getpeercert(binary_form=True)
            t.sendall(b"QUIT\r\n")
            return der


def test_sighup_reloads_certificate(site, tls, pki):
    import signal
    port = free_port()
    proc = start_daemon(site, "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                        % (port, tls.block()), [port])
    first = served_cert(port, tls)
    # A renewed certificate (new key too), written in place, then SIGHUP.
    new_key, new_cert = tls.path("new-key.pem"), tls.path("new-cert.pem")
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", new_key)
    certtool("--generate-certificate", "--load-privkey", new_key,
             "--load-ca-certificate", os.path.join(pki, "ca.pem"),
             "--load-ca-privkey", os.path.join(pki, "ca-key.pem"),
             "--template", os.path.join(pki, "srv.tmpl"), "--outfile", new_cert)
    os.chmod(new_key, 0o600)
    os.rename(new_cert, tls.cert)
    os.rename(new_key, tls.key)
    proc.send_signal(signal.SIGHUP)
    wait_stderr(proc, "configuration reloaded")
    second = served_cert(port, tls)
    assert second != first
    # A broken key on the next reload: the daemon says why and keeps the running
    # configuration.  The key itself is read by each connection's monitor (no process
    # that forks sessions holds it), so the certificate in use can't be served with the
    # wrong key: handshakes fail and the log says what to fix.
    shutil.copy(tls.other_key, tls.key)
    os.chmod(tls.key, 0o600)
    proc.send_signal(signal.SIGHUP)
    out = wait_stderr(proc, "keeping the running configuration")
    assert "does not match the certificate" in out
    with pytest.raises((ssl.SSLError, OSError)):
        served_cert(port, tls)
    assert "no longer matches the certificate in use" in wait_stderr(proc, "no longer matches")


# ---------------------------------------------------------------------------------------
# Timeouts: a silent or stalled client can't hold a session

def test_handshake_timeout_pop3s(site, tls):
    """Connect to a POP3S port and send nothing: the child gives up after
    handshake-timeout, closing the connection."""
    port = free_port()
    start_daemon(site, "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (port, tls.block(extra="handshake-timeout 1;")), [port])
    for partial in (b"", b"\x16\x03\x01\x02\x00\x01"):   # silent; stalled mid-record
        c = socket.create_connection(("127.0.0.1", port), timeout=30)
        t0 = time.monotonic()
        c.sendall(partial)
        assert c.recv(4096) == b""
        assert time.monotonic() - t0 < 5
        c.close()


def test_handshake_timeout_stls_inetd(site, tls):
    site.write_conf(tls.block(extra="handshake-timeout 1;") + "tls-mode ondemand;")
    s = site.inetd()
    t0 = time.monotonic()
    assert s.cmd("STLS") == "+OK Begin TLS negotiation"
    assert s.line() is None
    s.close()
    assert s.returncode == 75
    assert time.monotonic() - t0 < 5
    assert "TLS handshake timed out" in s.stderr


def test_client_drops_mid_handshake(site, tls):
    site.write_conf(tls.block() + "tls-mode ondemand;")
    s = site.inetd()
    assert s.cmd("STLS") == "+OK Begin TLS negotiation"
    s.sock.sendall(b"\x16\x03\x01\x02\x00\x01")
    s.sock.shutdown(socket.SHUT_WR)
    s.proc.wait(timeout=10)
    s.close()
    assert s.returncode == 74
    assert "handshake with stdin failed" in s.stderr


def test_garbage_instead_of_handshake(site, tls):
    site.write_conf(tls.block() + "tls-mode ondemand;")
    s = site.inetd()
    s.send("STLS\r\n")
    assert s.line() == "+OK Begin TLS negotiation"
    s.send("USER alice\r\n")          # a client that didn't understand
    rest = b""
    try:
        while True:
            d = s.sock.recv(4096)
            if not d:
                break
            rest += d
    except ConnectionResetError:
        pass
    assert b"+OK" not in rest and b"-ERR" not in rest   # no plaintext answer
    s.close()
    assert s.returncode == 74


def test_idle_timeout_inside_tls(site, tls):
    site.write_conf(tls.block() + "tls-mode connection; timeout 1;")
    a, b = socket.socketpair()
    proc = subprocess.Popen([POP3D, "-i", "--config-file=" + site.conf], stdin=b, stdout=b,
                            stderr=subprocess.DEVNULL, env=site.env())
    site.procs.append(proc)
    b.close()
    a.settimeout(30)
    t = client_ctx(tls).wrap_socket(a, suppress_ragged_eofs=False)
    f = t.makefile("rb")
    t0 = time.monotonic()
    assert f.readline().startswith(b"+OK POP3 Ready")
    assert f.readline() == b"-ERR Session timed out\r\n"
    assert f.readline() == b""          # close_notify, then EOF
    assert proc.wait(timeout=20) == 75
    assert time.monotonic() - t0 < 10
    t.close()


# ---------------------------------------------------------------------------------------
# The manual's examples (doc/tls.texi, blocks marked `@c test: NAME') work as written.

def texi_examples():
    from conftest import TOP_SRCDIR
    with open(os.path.join(TOP_SRCDIR, "doc", "tls.texi"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    out, name, body = {}, None, None
    for l in lines:
        if l.startswith("@c test: "):
            name = l[len("@c test: "):].strip()
        elif l == "@example" and name:
            body = []
        elif l == "@end example" and body is not None:
            out[name] = "\n".join(body).replace("@{", "{").replace("@}", "}") \
                                       .replace("@@", "@") + "\n"
            name, body = None, None
        elif body is not None:
            body.append(l)
    return out


def doc_site_files(site):
    """Run the manual's certtool steps in a directory standing for /etc/pop3d."""
    ex = texi_examples()
    etc = os.path.join(site.dir, "etc-pop3d")
    os.mkdir(etc, 0o755)
    with open(os.path.join(etc, "server.tmpl"), "w") as f:
        f.write(ex["template"])
    script = ex["certtool"].replace("/etc/pop3d", etc)
    subprocess.run(["sh", "-ec", script], check=True, capture_output=True, timeout=60)
    assert os.stat(os.path.join(etc, "key.pem")).st_mode & 0o777 == 0o600
    fix = lambda text: text.replace("/etc/pop3d", etc)
    return ex, fix, os.path.join(etc, "cert.pem")


def self_signed_ctx(cert):
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    return ctx


def test_manual_inetd_example(site):
    ex, fix, cert = doc_site_files(site)
    site.write_conf(fix(ex["inetd-conf"]))
    site.write_mbox(MSGS)
    lines = [l.split() for l in ex["inetd-lines"].strip().split("\n")]
    assert [l[0] for l in lines] == ["pop3", "pop3s"]
    # pop3: STLS
    p, proc = site.poplib_inetd()
    p.stls(self_signed_ctx(cert))
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat()[0] == 3
    p.quit()
    assert proc.wait(timeout=20) == 0
    # pop3s: the same configuration with the extra arguments of the inetd line.
    a, b = socket.socketpair()
    proc = subprocess.Popen([POP3D, "--config-file=" + site.conf] + lines[1][7:], stdin=b,
                            stdout=b, stderr=subprocess.PIPE, env=site.env())
    site.procs.append(proc)
    b.close()
    a.settimeout(30)
    try:
        t = self_signed_ctx(cert).wrap_socket(a)
    except OSError:
        proc.wait(timeout=20)
        raise AssertionError(proc.stderr.read().decode())
    f = t.makefile("rb")
    assert f.readline().startswith(b"+OK POP3 Ready")
    t.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    assert proc.wait(timeout=20) == 0
    t.close()


def test_manual_daemon_example(site):
    ex, fix, cert = doc_site_files(site)
    site.write_mbox(MSGS)
    p110, p995 = free_port(), free_port()
    conf = fix(ex["daemon-conf"]).replace("0.0.0.0:110", "127.0.0.1:%d" % p110) \
                                 .replace("0.0.0.0:995", "127.0.0.1:%d" % p995)
    start_daemon(site, conf, [p110, p995])
    s = site.connect(p110)
    assert s.cmd("USER alice").startswith("-ERR [AUTH]")
    s.cmd("QUIT")
    s.close()
    p = poplib.POP3("127.0.0.1", p110, timeout=30)
    p.stls(self_signed_ctx(cert))
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat()[0] == 3
    p.quit()
    p = poplib.POP3_SSL("127.0.0.1", p995, context=self_signed_ctx(cert), timeout=30)
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat()[0] == 3
    p.quit()


@pytest.mark.skipif(GNUTLS_CLI is None, reason="gnutls-cli (gnutls-bin) is not installed")
@pytest.mark.parametrize("key_type", ["rsa", "ecdsa", "ed25519"])
def test_every_key_kind_and_handshake_signs_through_the_monitor(site, tls, key_type):
    """The monitor signs only what a handshake signs, once per connection: TLS 1.3
    CertificateVerify and TLS 1.2 ServerKeyExchange (ECDHE and DHE) with RSA, ECDSA and
    Ed25519 keys, and RSA key exchange (a decryption) all still work."""
    key, cert = os.path.join(tls.dir, "k.pem"), os.path.join(tls.dir, "c.pem")
    certtool("--generate-privkey", "--key-type=" + key_type, "--outfile", key)
    os.chmod(key, 0o600)
    with open(os.path.join(tls.dir, "t"), "w") as f:
        f.write(SERVER_TEMPLATE)
    certtool("--generate-self-signed", "--load-privkey", key, "--template",
             os.path.join(tls.dir, "t"), "--outfile", cert)
    port = free_port()
    prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+DHE-RSA:+RSA"
    start_daemon(site, "server 127.0.0.1:%d { tls-mode connection; %s };\n"
                 % (port, tls.block(cert=cert, key=key,
                                    extra='ssl-priorities "%s";' % prio)), [port])
    cases = [("TLS1.3", "+ECDHE-RSA:+ECDHE-ECDSA"), ("TLS1.2", "+ECDHE-RSA:+ECDHE-ECDSA")]
    if key_type == "rsa":
        cases += [("TLS1.2", "+DHE-RSA"), ("TLS1.2", "+RSA")]
    for vers, kx in cases:
        r = gnutls_cli(["--insecure", "-p", str(port), "127.0.0.1", "--priority",
                        "NORMAL:-VERS-ALL:+VERS-%s:-KX-ALL:%s" % (vers, kx)], b"QUIT\r\n")
        assert b"+OK POP3 Ready" in r.stdout, (key_type, vers, kx, r.stderr[-400:])
