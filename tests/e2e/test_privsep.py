"""Privilege separation, proven on the live processes: the pre-login worker's identity,
capabilities, no-new-privs, seccomp and chroot (/proc/PID/status, /proc/PID/root); the
session's identity and descriptors; cores of live processes (gcore) searched for the TLS
private key, password hashes and the password; acl, tcp-wrappers and PAM_RHOST in inetd
mode.  These identity changes are real: pop3d runs as root without uid_wrapper (users
still come from nss_wrapper, passwords from pam_wrapper)."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import POP3D, PRIVSEP_UID, descendants, free_port, mbox_of, msg

pytestmark = [
    pytest.mark.skipif(os.getuid() != 0, reason="real identity changes need root"),
]

BOUND = 20
CERTTOOL = shutil.which("certtool")
GCORE = shutil.which("gcore")
PASSWORD = "Zq7-unique-pass-4711"


def sanitized():
    """Built with AddressSanitizer?  A core of such a process holds its shadow memory:
    tens of gigabytes."""
    try:
        out = subprocess.run(["ldd", POP3D], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "libasan" in out


def real_env(site):
    """The site's environment without uid_wrapper: setuid, chroot and capabilities are
    the kernel's."""
    e = site.env()
    e["LD_PRELOAD"] = ":".join(p for p in e["LD_PRELOAD"].split(":")
                               if "uid_wrapper" not in p)
    e.pop("UID_WRAPPER", None)
    e.pop("UID_WRAPPER_ROOT", None)
    return e


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def wait_for(cond, what):
    deadline = time.monotonic() + BOUND
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def by_uid(root_pid, uid):
    """The live (not zombie) descendants of root_pid whose real uid is uid."""
    out = []
    for p in descendants(root_pid):
        try:
            st = status(p)
            if int(st["Uid"].split()[0]) == uid and not st["State"].startswith("Z"):
                out.append(p)
        except (OSError, KeyError):
            pass
    return out


@pytest.fixture
def site(site):
    """The site, with its spool and homes where the real users can reach them (pytest's
    temporary directories are root's, mode 0700): a directory of /tmp, removed after."""
    d = tempfile.mkdtemp(prefix="pop3d-privsep-")
    os.chmod(d, 0o755)
    site.spool = os.path.join(d, "spool")
    os.mkdir(site.spool)
    os.chown(site.spool, site.uids["alice"], site.gid)
    site.open_dir = d
    yield site
    shutil.rmtree(d, ignore_errors=True)


def prepare(site, extra="", auth=None):
    """Alice's maildrop in a spool she owns (the session creates its dotlock there)."""
    site.write_mbox([msg(1), msg(2)])
    if auth is None:
        site.write_conf(extra)
    else:
        site.write_conf(extra, auth=auth)


def inetd(site, sock):
    return subprocess.Popen([POP3D, "-i", "--config-file=" + site.conf], stdin=sock,
                            stdout=sock, stderr=subprocess.PIPE, env=real_env(site))


def reader(sock):
    return sock.makefile("rb")


def line(f):
    return f.readline(65536).decode("latin-1").rstrip("\r\n")


def check_worker(pid, site):
    st = status(pid)
    assert st["Uid"].split() == [str(PRIVSEP_UID)] * 4
    assert st["Gid"].split() == [str(PRIVSEP_UID)] * 4
    assert st["Groups"].strip() == ""
    assert st["CapEff"] == "0000000000000000"
    assert st["CapPrm"] == "0000000000000000"
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert os.readlink("/proc/%d/root" % pid) == site.empty
    assert os.listdir(site.empty) == []


def test_worker_sandbox_inetd(site):
    prepare(site)
    a, b = socket.socketpair()
    proc = inetd(site, b)
    b.close()
    f = reader(a)
    try:
        assert line(f).startswith("+OK")
        workers = wait_for(lambda: by_uid(proc.pid, PRIVSEP_UID), "the worker")
        assert len(workers) == 1
        check_worker(workers[0], site)
        # The monitor stays root; the session-to-be has no user yet.
        assert status(proc.pid)["Uid"].split()[0] == "0"
        a.sendall(b"QUIT\r\n")
        assert line(f).startswith("+OK")
    finally:
        f.close()
        a.close()
        proc.wait(timeout=BOUND)
        proc.stderr.close()


def start_daemon(site, extra="", auth=None, server=""):
    port = free_port()
    extra += "\nserver 127.0.0.1:%d { %s };\n" % (port, server)
    if auth is None:
        site.write_conf(extra)
    else:
        site.write_conf(extra, auth=auth)
    proc = subprocess.Popen([POP3D, "-d", "--foreground", "--config-file=" + site.conf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=real_env(site))
    deadline = time.monotonic() + BOUND
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            assert time.monotonic() < deadline, "pop3d did not listen"
            time.sleep(0.02)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return err


def test_worker_sandbox_standalone_and_session_identity(site):
    prepare(site)
    proc, port = start_daemon(site)
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        f = reader(c)
        assert line(f).startswith("+OK")
        # (The readiness probe's connection may still be ending: wait for ours alone.)
        workers = wait_for(lambda: len(by_uid(proc.pid, PRIVSEP_UID)) == 1 and
                           by_uid(proc.pid, PRIVSEP_UID), "the worker")
        check_worker(workers[0], site)
        c.sendall(b"USER alice\r\nPASS alice-secret\r\n")
        assert line(f).startswith("+OK")
        assert line(f).startswith("+OK opened mailbox")
        alice = site.uids["alice"]
        sessions = wait_for(lambda: by_uid(proc.pid, alice), "the session")
        assert len(sessions) == 1
        st = status(sessions[0])
        assert st["Uid"].split() == [str(alice)] * 4
        assert st["Gid"].split() == [str(site.gid)] * 4
        # The user's groups (users, from the group file), nothing else.
        assert st["Groups"].split() == [str(site.gid)]
        assert st["CapEff"] == "0000000000000000"
        fd_dir = "/proc/%d/fd" % sessions[0]
        for fd in os.listdir(fd_dir):
            target = os.readlink(os.path.join(fd_dir, fd))
            if target.startswith("/"):
                s = os.stat(os.path.join(fd_dir, fd))
                if not target.startswith("/dev/"):
                    assert s.st_uid != 0, "session holds root's file %s" % target
        # The worker is gone once it handed the client over (no TLS).
        wait_for(lambda: not by_uid(proc.pid, PRIVSEP_UID), "the worker to end")
        c.sendall(b"STAT\r\nQUIT\r\n")
        assert line(f).startswith("+OK 2 ")
        assert line(f).startswith("+OK")
        f.close()
        c.close()
    finally:
        stop(proc)


def test_single_process_never_runs_as_the_user(site):
    prepare(site)
    proc, port = start_daemon(site, server="single-process yes;")
    try:
        def conn():
            # One client at a time: a connection waits in the queue until the last ends.
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=BOUND)
            except OSError:
                return None
        for _ in range(2):
            c = wait_for(conn, "the listener")
            f = reader(c)
            assert line(f).startswith("+OK")
            c.sendall(b"USER alice\r\nPASS alice-secret\r\n")
            assert line(f).startswith("+OK")
            assert line(f).startswith("+OK opened mailbox")
            c.sendall(b"QUIT\r\n")
            assert line(f).startswith("+OK")
            f.close()
            c.close()
        assert status(proc.pid)["Uid"].split() == ["0"] * 4
    finally:
        stop(proc)


# --------------------------------------------------------------------------------------
# Cores of live processes

def key_numbers(keyfile):
    """The RSA private key's secret numbers (the primes, the private exponent), as bytes."""
    out = subprocess.run([CERTTOOL, "-k", "--infile", keyfile], capture_output=True,
                         text=True, check=True).stdout
    nums, cur = {}, None
    for l in out.splitlines():
        m = re.match(r"^\s*(private exponent|prime1|prime2):\s*$", l)
        if m:
            cur = m.group(1)
            nums[cur] = ""
            continue
        if cur and re.match(r"^\s+[0-9a-f:]+$", l):
            nums[cur] += l.strip().replace(":", "")
        elif cur:
            cur = None
    return {k: bytes.fromhex(v).lstrip(b"\0") for k, v in nums.items()}


def pieces(n):
    """Windows of a number as memory may hold it: big-endian bytes, or little-endian
    (GMP's limbs on this machine)."""
    mid = len(n) // 2
    return [n[mid:mid + 24], n[::-1][mid:mid + 24]]


def core_of(pid, d):
    out = os.path.join(d, "core")
    r = subprocess.run([GCORE, "-o", out, str(pid)], capture_output=True, timeout=120)
    path = "%s.%d" % (out, pid)
    assert r.returncode == 0 and os.path.exists(path), r.stderr.decode(errors="replace")
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


@pytest.mark.skipif(CERTTOOL is None or GCORE is None, reason="needs certtool and gdb")
@pytest.mark.skipif(sanitized(), reason="cores of AddressSanitizer processes hold its "
                    "shadow memory (tens of GB); the plain build runs this test")
def test_cores_hold_no_key_hash_or_password(site, tmp_path):
    d = str(tmp_path)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run([CERTTOOL, "--generate-privkey", "--key-type=rsa", "--bits=2048",
                    "--outfile", key], check=True, capture_output=True)
    with open(os.path.join(d, "t"), "w") as f:
        f.write('cn = "localhost"\nexpiration_days = 30\ntls_www_server\n')
    subprocess.run([CERTTOOL, "--generate-self-signed", "--load-privkey", key, "--template",
                    os.path.join(d, "t"), "--outfile", cert], check=True, capture_output=True)
    os.chmod(key, 0o600)
    secret = key_numbers(key)
    assert set(secret) == {"private exponent", "prime1", "prime2"}
    # A virtual user whose $6$ hash only the monitor reads, at login.
    dom = os.path.join(d, "domains")
    os.mkdir(dom)
    home = os.path.join(site.open_dir, "carol")
    os.mkdir(home)
    os.chown(home, site.uids["alice"], site.gid)
    hashed = subprocess.run(["openssl", "passwd", "-6", PASSWORD], capture_output=True,
                            text=True, check=True).stdout.strip()
    with open(os.path.join(dom, "example.org"), "w") as f:
        f.write("carol:%s:%d:%d:Carol:%s:/bin/false\n" % (hashed, site.uids["alice"],
                                                          site.gid, home))
    inbox = os.path.join(home, "INBOX")
    with open(inbox, "w") as f:
        f.write(mbox_of([msg(1)]))
    os.chown(inbox, site.uids["alice"], site.gid)
    # The passwords a site gives its SQL and LDAP clients: the monitor's alone.
    config_secrets = [b"Sq1-Passwd-6f3c9a0e", b"Sq1-Param-71bd44c2", b"Ld4p-Passwd-2e8d19f7"]
    proc, port = start_daemon(
        site, 'virtdomain { passwd-dir "%s"; };\n'
        'tls { ssl-certificate-file "%s"; ssl-key-file "%s"; };\ntls-mode connection;\n'
        'sql { passwd "%s"; param "password=%s"; };\nldap { passwd "%s"; };'
        % ((dom, cert, key) + tuple(x.decode() for x in config_secrets)),
        auth="auth { authentication virtdomain; authorization virtdomain; };")
    try:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        c = ctx.wrap_socket(raw)
        f = c.makefile("rb")
        assert line(f).startswith("+OK")
        c.sendall(("USER carol@example.org\r\nPASS %s\r\n" % PASSWORD).encode())
        assert line(f).startswith("+OK")
        assert line(f).startswith("+OK opened mailbox")
        alice = site.uids["alice"]
        session = wait_for(lambda: by_uid(proc.pid, alice), "the session")[0]
        worker = wait_for(lambda: len(by_uid(proc.pid, PRIVSEP_UID)) == 1 and
                          by_uid(proc.pid, PRIVSEP_UID), "the relay")[0]
        monitor = [p for p in descendants(proc.pid)
                   if status(p)["PPid"] == str(proc.pid)][0]
        cores = {n: core_of(p, d) for n, p in (("session", session), ("worker", worker),
                                                ("monitor", monitor))}
        # The search works: the monitor, which signed the handshake, holds the key.
        assert any(w in cores["monitor"] for n in secret.values() for w in pieces(n))
        for who in ("session", "worker"):
            for name, n in secret.items():
                for w in pieces(n):
                    assert w not in cores[who], "%s core holds the key's %s" % (who, name)
        for x in config_secrets:
            assert x in cores["monitor"]
            for who in ("session", "worker"):
                assert x not in cores[who], "%s core holds %s from the configuration" % (who, x)
        # The relay saw the password go by; it keeps no copy of it.
        assert PASSWORD.encode() not in cores["worker"]
        s = cores["session"]
        assert hashed.encode() not in s
        assert hashed.split("$")[3][:16].encode() not in s
        assert PASSWORD.encode() not in s
        assert not re.search(rb"\$(6|5|y|2b)\$[./0-9A-Za-z]{8,}", s), "a hash-like string"
        c.sendall(b"STAT\r\n")
        assert line(f).startswith("+OK 1 ")
        c.sendall(b"QUIT\r\n")
        assert line(f).startswith("+OK")
        f.close()
        c.close()
    finally:
        stop(proc)


# --------------------------------------------------------------------------------------
# inetd mode: the same access control as the listener

def tcp_pair():
    """A connected TCP pair on 127.0.0.1: (client, server side for pop3d's stdin)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    c = socket.create_connection(ls.getsockname(), timeout=BOUND)
    s, _ = ls.accept()
    ls.close()
    return c, s


def run_inetd_tcp(site):
    c, s = tcp_pair()
    proc = inetd(site, s)
    s.close()
    f = reader(c)
    first = line(f)
    f.close()
    c.close()
    proc.wait(timeout=BOUND)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return first, err


def test_inetd_applies_acl(site):
    prepare(site, "acl { deny 127.0.0.1; };")
    first, err = run_inetd_tcp(site)
    assert first == ""
    assert "Denying connection from 127.0.0.1" in err
    prepare(site, "acl { allow 127.0.0.1; };")
    first, _ = run_inetd_tcp(site)
    assert first.startswith("+OK")


def test_inetd_applies_tcp_wrappers(site):
    # libwrap reads its tables as the privsep user: like /etc/hosts.*, world-readable.
    deny = os.path.join(site.open_dir, "hosts.deny")
    allow = os.path.join(site.open_dir, "hosts.allow")
    with open(allow, "w") as f:
        f.write("")
    with open(deny, "w") as f:
        f.write("pop3d: 127.0.0.1\n")
    for p in (allow, deny):
        os.chmod(p, 0o644)
    prepare(site, 'tcp-wrappers { enable yes; allow-table "%s"; deny-table "%s"; };'
          % (allow, deny))
    first, err = run_inetd_tcp(site)
    assert first == ""
    assert "tcp-wrappers" in err
    with open(deny, "w") as f:
        f.write("pop3d: 10.9.9.9\n")
    first, _ = run_inetd_tcp(site)
    assert first.startswith("+OK")


def test_pam_sees_the_client_address(site):
    """pam_access refuses logins from 127.0.0.1: it can only know through PAM_RHOST."""
    pam_access = None
    for p in ("/lib/x86_64-linux-gnu/security/pam_access.so",
              "/usr/lib/x86_64-linux-gnu/security/pam_access.so",
              "/lib/aarch64-linux-gnu/security/pam_access.so"):
        if os.path.exists(p):
            pam_access = p
    if pam_access is None:
        pytest.skip("pam_access.so not found")
    rules = os.path.join(site.dir, "access.conf")
    with open(rules, "w") as f:
        f.write("-:ALL:127.0.0.1\n+:ALL:ALL\n")
    from conftest import PAM_MATRIX
    with open(os.path.join(site.pamdir, "gnu-pop3d"), "w") as f:
        f.write("auth required %s passdb=%s\n" % (PAM_MATRIX, site.passdb))
        f.write("account required %s accessfile=%s\n" % (pam_access, rules))
    prepare(site)
    c, s = tcp_pair()
    proc = inetd(site, s)
    s.close()
    f = reader(c)
    assert line(f).startswith("+OK")
    c.sendall(b"USER alice\r\nPASS alice-secret\r\n")
    assert line(f).startswith("+OK")          # USER
    assert line(f).startswith("-ERR")         # refused by pam_access for 127.0.0.1
    c.sendall(b"QUIT\r\n")
    f.close()
    c.close()
    proc.wait(timeout=BOUND)
    proc.stderr.close()
    # Without an address (a socketpair) the same rules let her in.
    a, b = socket.socketpair()
    proc = inetd(site, b)
    b.close()
    f = reader(a)
    assert line(f).startswith("+OK")
    a.sendall(b"USER alice\r\nPASS alice-secret\r\n")
    assert line(f).startswith("+OK")
    assert line(f).startswith("+OK opened mailbox")
    a.sendall(b"QUIT\r\n")
    f.close()
    a.close()
    proc.wait(timeout=BOUND)
    proc.stderr.close()


def test_missing_privsep_user_is_a_clear_startup_error(site):
    prepare(site, "privsep-user nosuchuser;")
    p = subprocess.run([POP3D, "-i", "--config-file=" + site.conf], input=b"",
                       capture_output=True, env=real_env(site), timeout=BOUND)
    assert p.returncode == 78
    err = p.stderr.decode()
    assert "privsep-user" in err and "adduser --system" in err


# --------------------------------------------------------------------------------------
# A shared spool (root:mail 2775, as Debian's /var/mail): the session has no mail group;
# the monitor makes its dotlock, temporary copy and index there.

MAIL_GID = 8


def test_shared_spool_without_the_mail_group(site):
    os.chown(site.spool, 0, MAIL_GID)
    os.chmod(site.spool, 0o2775)
    msgs = [msg(i) for i in range(1, 6)]
    site.write_mbox(msgs)
    os.chown(site.mbox_path(), site.uids["alice"], MAIL_GID)
    site.write_conf("")
    a, b = socket.socketpair()
    proc = inetd(site, b)
    b.close()
    f = reader(a)
    try:
        assert line(f).startswith("+OK")
        a.sendall(b"USER alice\r\nPASS alice-secret\r\n")
        assert line(f).startswith("+OK")
        assert line(f).startswith("+OK opened mailbox")
        # The dotlock is there (made by the monitor, owned by alice).
        lock = site.mbox_path() + ".lock"
        assert os.stat(lock).st_uid == site.uids["alice"]
        alice = site.uids["alice"]
        session = wait_for(lambda: by_uid(proc.pid, alice), "the session")[0]
        st = status(session)
        assert str(MAIL_GID) not in st["Groups"].split()
        assert st["Groups"].split() == [str(site.gid)]
        a.sendall(b"DELE 1\r\nDELE 3\r\nQUIT\r\n")
        assert line(f).startswith("+OK")
        assert line(f).startswith("+OK")
        assert line(f).startswith("+OK POP3 server signing off (2 messages deleted)")
    finally:
        f.close()
        a.close()
        proc.wait(timeout=BOUND)
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    assert site.read_mbox() == mbox_of([msgs[1], msgs[3], msgs[4]]).encode(), err
    st = os.stat(site.mbox_path())
    assert st.st_uid == site.uids["alice"]
    left = sorted(os.listdir(site.spool))
    assert left == [".alice.pop3d-index", "alice"], left
    assert os.stat(os.path.join(site.spool, ".alice.pop3d-index")).st_uid == alice
