"""End-to-end test harness: the real pop3d binary, real PAM (pam_wrapper + pam_matrix),
users from nss_wrapper, identity changes through uid_wrapper, maildrops in a temporary
spool.  Sessions run in inetd mode over a socketpair, or through the standalone listener
on a free 127.0.0.1 port."""
import glob
import os
import poplib
import shutil
import signal
import socket
import subprocess
import time

import pytest

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
POP3D = os.environ.get("POP3D") or os.path.join(
    os.environ.get("top_builddir", TOP_SRCDIR), "pop3d")
# pop3d's loadable modules (sql.so, ldap.so, tcpwrap.so) are in modules/ of the build
# tree: `make check' says so in POP3D_MODULE_DIR, and so does this when it is not set.
if not os.environ.get("POP3D_MODULE_DIR"):
    _modules = os.path.join(os.path.dirname(os.path.abspath(POP3D)), "modules")
    if os.path.isdir(_modules):
        os.environ["POP3D_MODULE_DIR"] = _modules

def _find_lib(name):
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
              "/usr/lib"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    hits = glob.glob("/usr/lib/*/" + name)
    return hits[0] if hits else None

PAM_WRAPPER = _find_lib("libpam_wrapper.so")
NSS_WRAPPER = _find_lib("libnss_wrapper.so")
UID_WRAPPER = _find_lib("libuid_wrapper.so")
PAM_MATRIX = _find_lib("pam_wrapper/pam_matrix.so")

PASSWORDS = {"alice": "alice-secret", "bob": "b0b pass word"}
PRIVSEP_UID = 990

def msg(n, body=None, extra_headers=""):
    """A simple RFC 5322 message (LF line ends, as stored in an mbox)."""
    body = body if body is not None else "This is message %d.\nSecond line.\n" % n
    return ("From: sender%d@example.org\nTo: alice@example.org\nSubject: test %d\n"
            "Message-ID: <%d@example.org>\n%s\n%s" % (n, n, n, extra_headers, body))

def mbox_of(messages):
    out = []
    for i, m in enumerate(messages):
        out.append("From sender@example.org Mon Nov 23 10:00:00 2026\n")
        out.append(m)
        if not m.endswith("\n"):
            out.append("\n")
        out.append("\n")
    return "".join(out)

def wire(m):
    """What RETR sends for a stored message, before dot-stuffing: CRLF line ends."""
    if m and not m.endswith("\n"):
        m += "\n"
    return m.replace("\r\n", "\n").replace("\n", "\r\n").encode()

class Session:
    """A raw POP3 client on a socket: send lines, read replies."""
    def __init__(self, sock, proc=None):
        self.sock = sock
        self.proc = proc
        self.f = sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        l = self.f.readline(65536)
        return l.decode("latin-1").rstrip("\r\n") if l else None

    def cmd(self, c):
        self.send(c + "\r\n")
        return self.line()

    def multi(self):
        """Read a multi-line body up to the terminator (dot-stuffing undone)."""
        lines = []
        while True:
            l = self.f.readline(1 << 24)
            if not l:
                raise EOFError("connection closed inside a multi-line response")
            if l == b".\r\n":
                return lines
            if l.startswith(b".."):
                l = l[1:]
            lines.append(l)

    def login(self, user="alice", password=None):
        assert self.cmd("USER " + user).startswith("+OK")
        r = self.cmd("PASS " + (password or PASSWORDS[user]))
        return r

    def close(self):
        try:
            self.f.close()
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr:
                self.stderr = self.proc.stderr.read().decode(errors="replace")
                self.proc.stderr.close()

    @property
    def returncode(self):
        return self.proc.returncode

def descendants(pid):
    """The processes below pid (children first, then theirs), from /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out

def kill_tree(pid, sig=signal.SIGKILL):
    """Signal a pop3d process and every process of its connection (monitor, worker,
    session): what a crash of the whole connection looks like."""
    below = descendants(pid)
    for p in reversed(below):
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    if sig != signal.SIGKILL:
        return
    # The orphans are reaped by init: until then their dotlocks look alive.
    deadline = time.monotonic() + 20
    while any(os.path.exists("/proc/%d" % p) for p in below):
        if time.monotonic() > deadline:
            raise RuntimeError("processes %s did not go" % below)
        time.sleep(0.01)

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

class Site:
    def __init__(self, tmp):
        self.dir = str(tmp)
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool)
        os.chmod(self.spool, 0o755)
        self.root = os.getuid() == 0
        if self.root:
            self.uids = {"alice": 1000, "bob": 1001}
        else:
            self.uids = {"alice": os.getuid(), "bob": os.getuid()}
        self.gid = 1000 if self.root else os.getgid()
        homes = os.path.join(self.dir, "home")
        os.mkdir(homes)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
            # The privilege-separation user of the pre-login worker.
            f.write("pop3d:x:%d:%d:pop3d:/nonexistent:/usr/sbin/nologin\n"
                    % (PRIVSEP_UID, PRIVSEP_UID))
            for u, uid in self.uids.items():
                h = os.path.join(homes, u)
                os.mkdir(h)
                if self.root:
                    os.chown(h, uid, self.gid)
                f.write("%s:x:%d:%d:%s:%s:/bin/sh\n" % (u, uid, self.gid, u, h))
        with open(os.path.join(self.dir, "group"), "w") as f:
            f.write("root:x:0:\nusers:x:%d:alice,bob\npop3d:x:%d:\n"
                    % (self.gid, PRIVSEP_UID))
        # The worker's chroot: empty, root-owned, not writable by others.
        self.empty = os.path.join(self.dir, "empty")
        os.mkdir(self.empty)
        os.chmod(self.empty, 0o755)
        self.pamdir = os.path.join(self.dir, "pam.d")
        os.mkdir(self.pamdir)
        self.passdb = os.path.join(self.dir, "passdb")
        with open(self.passdb, "w") as f:
            for u, p in PASSWORDS.items():
                f.write("%s:%s:gnu-pop3d\n" % (u, p))
        with open(os.path.join(self.pamdir, "gnu-pop3d"), "w") as f:
            for t in ("auth", "account", "password", "session"):
                f.write("%s required %s passdb=%s\n" % (t, PAM_MATRIX, self.passdb))
        with open(os.path.join(self.pamdir, "other"), "w") as f:
            f.write("auth required %s passdb=%s\n" % (PAM_MATRIX, self.passdb))
        self.conf = os.path.join(self.dir, "pop3d.conf")
        self.procs = []
        self.write_conf()

    def write_conf(self, extra="",
                   auth="auth { authentication pam; authorization system; };"):
        with open(self.conf, "w") as f:
            f.write("logging { syslog no; };\n"
                    "privsep-chroot \"%s\";\n"
                    "login-penalty-file \"%s\";\n"
                    "mailbox { mail-spool \"%s\"; };\n"
                    "locking { retry-count 1; retry-sleep 0; };\n"
                    "%s\n%s\n" % (self.empty, os.path.join(self.dir, "penalty.db"),
                                    self.spool, auth, extra))

    def env(self):
        e = dict(os.environ)
        e.update({
            "LD_PRELOAD": ":".join(p for p in (PAM_WRAPPER, NSS_WRAPPER, UID_WRAPPER) if p),
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.pamdir,
            "NSS_WRAPPER_PASSWD": os.path.join(self.dir, "passwd"),
            "NSS_WRAPPER_GROUP": os.path.join(self.dir, "group"),
            "UID_WRAPPER": "1",
            "UID_WRAPPER_ROOT": "1",
            # The sanitizers' runtime refuses libraries loaded with RTLD_DEEPBIND.
            "PAM_WRAPPER_DISABLE_DEEPBIND": "1",
            "NSS_WRAPPER_DISABLE_DEEPBIND": "1",
            "UID_WRAPPER_DISABLE_DEEPBIND": "1",
            "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        return e

    def mbox_path(self, user="alice"):
        return os.path.join(self.spool, user)

    def write_mbox(self, messages, user="alice", raw=None):
        p = self.mbox_path(user)
        data = raw if raw is not None else mbox_of(messages)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(p, 0o600)
        if self.root:
            os.chown(p, self.uids[user], self.gid)
        return p

    def read_mbox(self, user="alice"):
        with open(self.mbox_path(user), "rb") as f:
            return f.read()

    def conf_for(self, binary):
        """The configuration file for binary: Mailutils' pop3d (compared with pop3d in
        some tests) has no privsep-chroot or login-penalty-file statement."""
        if os.path.realpath(binary) != "/usr/sbin/pop3d":
            return self.conf
        with open(self.conf) as f:
            text = "".join(l for l in f
                           if not l.startswith(("privsep-", "login-penalty-")))
        other = self.conf + ".mailutils"
        with open(other, "w") as f:
            f.write(text)
        return other

    def inetd(self, args=()):
        """Start pop3d -i with one end of a socketpair as stdin/stdout."""
        a, b = socket.socketpair()
        proc = subprocess.Popen([POP3D, "-i", "--config-file=" + self.conf_for(POP3D)]
                                + list(args),
                                stdin=b, stdout=b, stderr=subprocess.PIPE, env=self.env(),
                                close_fds=True)
        b.close()
        a.settimeout(30)
        self.procs.append(proc)
        return Session(a, proc)

    def poplib_inetd(self):
        """A Python poplib client on an inetd-mode session."""
        a, b = socket.socketpair()
        proc = subprocess.Popen([POP3D, "-i", "--config-file=" + self.conf], stdin=b,
                                stdout=b, stderr=subprocess.PIPE, env=self.env())
        b.close()
        a.settimeout(30)
        self.procs.append(proc)
        p = poplib.POP3.__new__(poplib.POP3)
        p.host, p.port, p._debugging, p._tls_established = "socketpair", 0, 0, False
        p.sock = a
        p.file = a.makefile("rb")
        p.welcome = p._getresp()
        return p, proc

    def daemon(self, max_children=None, extra_conf="", args=()):
        """Start the standalone listener on a free 127.0.0.1 port; wait until it accepts."""
        port = free_port()
        self.write_conf(extra_conf + "\nserver 127.0.0.1:%d { };\n" % port)
        d = "-d" if max_children is None else "-d%d" % max_children
        proc = subprocess.Popen([POP3D, d, "--foreground", "--config-file=" + self.conf]
                                + list(args), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=self.env())
        self.procs.append(proc)
        deadline = time.monotonic() + 20
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
        return proc, port

    def connect(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        return Session(s)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for stream in (p.stderr,):
                if stream:
                    stream.close()

@pytest.fixture
def site(tmp_path):
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built: " + POP3D)
    if not (PAM_WRAPPER and NSS_WRAPPER and UID_WRAPPER and PAM_MATRIX):
        pytest.skip("cwrap packages missing (libpam-wrapper libnss-wrapper libuid-wrapper)")
    s = Site(tmp_path)
    yield s
    s.cleanup()
