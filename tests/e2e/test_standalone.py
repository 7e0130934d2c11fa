"""The standalone daemon in production: child limit, signals, pidfile, detaching, server
blocks, IPv6, access control, tcp-wrappers, logging, the fail2ban filter and the
acceptance run (20 concurrent clients with 1,000 messages each)."""
import configparser
import os
import poplib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import PASSWORDS, POP3D, TOP_SRCDIR, Session, free_port, msg, wire

BOUND = 20          # seconds: the most any wait below may take


def wait_for(cond, what, timeout=BOUND, step=0.02):
    """Poll cond() until it is true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r = cond()
        if r:
            return r
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(step)


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def free_port6():
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def children(pid):
    """(pid, state) of the processes whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(d), fields[0]))
    return out


def listening_inodes():
    """{port: socket inode} of the listening TCP sockets."""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "0A":
                        out.setdefault(int(p[1].rsplit(":", 1)[1], 16), set()).add(p[9])
        except OSError:
            pass
    return out


def proc_socket_inodes(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rindex(")") + 2] != "Z"
    except OSError:
        return False


class Daemon:
    """pop3d -d --foreground with its log in a file (a pipe nobody reads would fill up
    and stall the daemon after a few hundred sessions)."""

    def __init__(self, site, conf, max_children=None, args=(), foreground=True, check=True):
        self.site = site
        self.logpath = os.path.join(site.dir, "pop3d-%d.log" % len(site.procs))
        site.write_conf(conf)
        d = "-d" if max_children is None else "-d%d" % max_children
        argv = [POP3D, d, "--config-file=" + site.conf] + list(args)
        if foreground:
            argv.insert(2, "--foreground")
        with open(self.logpath, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log,
                                         env=site.env())
        site.procs.append(self.proc)
        self.pid = self.proc.pid

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, what=None):
        return wait_for(lambda: re.search(pattern, self.log(), re.M),
                        what or "log line /%s/" % pattern)

    def wait_listening(self, port, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("pop3d exited %s: %s" % (self.proc.returncode,
                                                              self.log()))
            return port in listening_inodes()
        wait_for(up, "pop3d listening on %s:%d" % (host, port))
        return fam

    def idle(self):
        """Wait until no session child is left (and none is a zombie)."""
        wait_for(lambda: not children(self.pid), "children of %d to end" % self.pid)

    def signal(self, sig):
        os.kill(self.pid, sig)


def start(site, servers, extra="", **kw):
    """servers: list of (addr, port, body) server blocks."""
    conf = extra + "\n" + "".join("server %s:%d { %s };\n" % s for s in servers)
    d = Daemon(site, conf, **kw)
    for addr, port, _ in servers:
        d.wait_listening(port, addr.strip("[]"))
    return d


def connect(port, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect((host, port))
    return Session(s)


def capa_ok(s):
    """A command any state allows, answered and read in full."""
    if not s.cmd("CAPA").startswith("+OK"):
        return False
    s.multi()
    return True


def refused(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


def add_users(site, names):
    """More users in the site's passwd and PAM database (uid_wrapper lets root be
    them)."""
    with open(os.path.join(site.dir, "passwd"), "a") as pw, open(site.passdb, "a") as db:
        for i, u in enumerate(names):
            uid = 2000 + i if site.root else os.getuid()
            home = os.path.join(site.dir, "home", u)
            os.mkdir(home)
            if site.root:
                os.chown(home, uid, site.gid)
            pw.write("%s:x:%d:%d:%s:%s:/bin/sh\n" % (u, uid, site.gid, u, home))
            db.write("%s:%s:gnu-pop3d\n" % (u, "pw-" + u))
            site.uids[u] = uid
            PASSWORDS[u] = "pw-" + u


# --------------------------------------------------------------------------------------
# Child limit and accounting

def test_child_limit_two_of_five(site):
    site.write_mbox([msg(1)])
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=2)
    d.idle()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(5)]
    files = [s.makefile("rb") for s in socks]
    greetings = [f.readline() for f in files]
    served = [i for i, g in enumerate(greetings) if g.startswith(b"+OK")]
    busy = [i for i, g in enumerate(greetings) if g.startswith(b"-ERR [SYS/TEMP]")]
    assert len(served) == 2 and len(busy) == 3, greetings
    for i in busy:
        assert files[i].readline() == b""           # closed cleanly, no hang
    assert len(children(d.pid)) == 2
    for i in served:
        socks[i].sendall(b"QUIT\r\n")
        assert files[i].readline().startswith(b"+OK")
    for s in socks:
        s.close()
    d.idle()
    # the three refused clients come back and are served, two at a time
    for _ in range(3):
        s = connect(port)
        assert s.greeting.startswith("+OK")
        assert s.cmd("QUIT").startswith("+OK")
        s.close()
        d.idle()
    d.wait_log(r"too many children \(2\): refused 1 connection")
    # rate-limited: three refusals within a second make one log line
    assert len(re.findall("too many children", d.log())) == 1


def test_500_sequential_sessions_no_zombie_no_fd_leak(site):
    site.write_mbox([msg(1), msg(2)])
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=4)
    d.idle()
    fds_before = sorted(os.listdir("/proc/%d/fd" % d.pid))
    for i in range(500):
        s = connect(port)
        if s.greeting.startswith("-ERR [SYS/TEMP]"):
            # The children of the last sessions are still ending (a slow machine, a
            # sanitizer build): the slots are full for a moment.  A client tries again.
            s.close()
            d.idle()
            s = connect(port)
        assert s.greeting.startswith("+OK")
        if i % 50 == 0:
            assert s.login().startswith("+OK")
            assert s.cmd("STAT").startswith("+OK 2 ")
        assert s.cmd("QUIT").startswith("+OK")
        s.close()
    d.idle()
    assert not [c for c in children(d.pid) if c[1] == "Z"]
    assert sorted(os.listdir("/proc/%d/fd" % d.pid)) == fds_before
    assert d.log().count("session ended") == 500


def test_crashed_children_are_counted_out(site):
    site.write_mbox([msg(1)])
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=2)
    d.idle()
    for _ in range(3):
        held = [connect(port) for _ in range(2)]
        assert all(h.greeting.startswith("+OK") for h in held)
        kids = wait_for(lambda: len(children(d.pid)) == 2 and children(d.pid), "2 kids")
        for pid, _ in kids:
            os.kill(pid, signal.SIGKILL)
        for h in held:
            h.close()
        d.idle()
    s = connect(port)
    assert s.greeting.startswith("+OK")
    s.cmd("QUIT")
    s.close()
    d.wait_log(r"terminated by signal 9")


# --------------------------------------------------------------------------------------
# Signals and the pidfile

def test_sighup_new_timeout_applies_to_new_sessions(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "timeout 600;")])
    old = connect(port)
    site.write_conf("server 127.0.0.1:%d { timeout 1; };\n" % port)
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded")
    s = connect(port)
    t0 = time.monotonic()
    assert s.greeting.startswith("+OK")
    assert s.line() == "-ERR Session timed out"
    assert time.monotonic() - t0 < 10
    s.close()
    # the session started before the reload keeps its timeout
    assert capa_ok(old)
    assert old.cmd("QUIT").startswith("+OK")
    old.close()


def test_sighup_invalid_file_keeps_old_configuration(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "timeout 600;")])
    with open(site.conf, "a") as f:
        f.write("server 127.0.0.1:%d { timeout 1; };\nno-such-statement yes;\n" % port)
    d.signal(signal.SIGHUP)
    d.wait_log(r"keeping the running configuration")
    assert re.search(r"^pop3d: %s:\d+: .*no-such-statement" % re.escape(site.conf),
                     d.log(), re.M), d.log()
    s = connect(port)
    assert s.greeting.startswith("+OK")
    s.sock.settimeout(3)
    assert capa_ok(s)                 # not the 1 s timeout of the broken file
    time.sleep(1.5)                   # longer than the rejected timeout
    assert capa_ok(s)
    s.cmd("QUIT")
    s.close()


def test_sighup_rebinds_only_changed_listeners(site):
    a, b, c = free_port(), free_port(), free_port()
    d = start(site, [("127.0.0.1", a, ""), ("127.0.0.1", b, "")])
    ino_a = listening_inodes()[a]
    assert ino_a & proc_socket_inodes(d.pid)
    site.write_conf("server 127.0.0.1:%d { };\nserver 127.0.0.1:%d { };\n" % (a, c))
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded")
    d.wait_listening(c)
    wait_for(lambda: refused(b), "old listener %d closed" % b)
    assert listening_inodes()[a] == ino_a           # the same socket, never rebound
    for port in (a, c):
        s = connect(port)
        assert s.greeting.startswith("+OK")
        s.cmd("QUIT")
        s.close()


def test_sighup_with_unbindable_address_keeps_listeners(site):
    a = free_port()
    d = start(site, [("127.0.0.1", a, "")])
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    site.write_conf("server 127.0.0.1:%d { };\nserver 127.0.0.1:%d { };\n"
                    % (a, busy.getsockname()[1]))
    d.signal(signal.SIGHUP)
    d.wait_log(r"can't open the new listeners, keeping")
    busy.close()
    s = connect(a)
    assert s.greeting.startswith("+OK")
    s.cmd("QUIT")
    s.close()


def test_sigterm_exits_removes_pidfile_closes_port(site):
    pidfile = os.path.join(site.dir, "run", "pop3d.pid")
    os.mkdir(os.path.dirname(pidfile))
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], extra="pidfile %s;" % pidfile)
    wait_for(lambda: os.path.exists(pidfile), "pidfile")
    with open(pidfile) as f:
        assert f.read() == "%d\n" % d.pid
    d.idle()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(timeout=BOUND) == 0
    assert not os.path.exists(pidfile)
    assert refused(port)
    assert not [n for n in os.listdir(os.path.dirname(pidfile))]   # no temporary left


def test_sigterm_lets_running_session_finish(site):
    site.write_mbox([msg(1), msg(2)])
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")])
    s = connect(port)
    assert s.login().startswith("+OK")
    d.signal(signal.SIGTERM)
    wait_for(lambda: refused(port), "port closed")
    assert d.proc.poll() is None            # waits for the session
    assert s.cmd("DELE 1").startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert d.proc.wait(timeout=BOUND) == 0
    assert site.read_mbox().count(b"Subject: test") == 1


def test_sigint_stops_too(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")])
    d.idle()
    d.signal(signal.SIGINT)
    assert d.proc.wait(timeout=BOUND) == 0
    assert refused(port)


def test_stale_pidfile_replaced_live_one_refused(site):
    pidfile = os.path.join(site.dir, "run", "pop3d.pid")
    os.mkdir(os.path.dirname(pidfile))
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(pidfile, "w") as f:
        f.write("%d\n" % dead.pid)
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], extra="pidfile %s;" % pidfile)
    wait_for(lambda: open(pidfile).read() == "%d\n" % d.pid, "pidfile replaced")
    assert "stale pidfile" in d.log()
    # a second daemon on another port finds the live pid and refuses to start
    port2 = free_port()
    d2 = Daemon(site, "pidfile %s;\nserver 127.0.0.1:%d { };\n" % (pidfile, port2))
    assert d2.proc.wait(timeout=BOUND) != 0
    assert "already running as pid %d" % d.pid in d2.log()
    assert open(pidfile).read() == "%d\n" % d.pid
    assert refused(port2)


def test_detach_writes_pidfile(site):
    pidfile = os.path.join(site.dir, "run", "pop3d.pid")
    os.mkdir(os.path.dirname(pidfile))
    port = free_port()
    d = Daemon(site, "pidfile %s;\nserver 127.0.0.1:%d { };\n" % (pidfile, port),
               foreground=False)
    # the started process returns once the daemon is ready: the pidfile exists then
    assert d.proc.wait(timeout=BOUND) == 0
    with open(pidfile) as f:
        pid = int(f.read())
    try:
        assert pid != d.proc.pid and alive(pid)
        assert os.readlink("/proc/%d/cwd" % pid) == "/"
        for fd in (0, 1, 2):
            assert os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "/dev/null"
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        sid = int(st[st.rindex(")") + 2:].split()[3])
        assert sid != os.getsid(0)                 # a new session, no terminal
        s = connect(port)
        assert s.greeting.startswith("+OK")
        s.cmd("QUIT")
        s.close()
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "detached daemon to exit")
    assert not os.path.exists(pidfile)


def test_foreground_statement_and_mode_statement(site):
    # `mode daemon; foreground yes;' without -d: a standalone server that stays attached
    port = free_port()
    site.write_conf("mode daemon;\nforeground yes;\nserver 127.0.0.1:%d { };\n" % port)
    logpath = os.path.join(site.dir, "mode.log")
    with open(logpath, "wb") as log:
        proc = subprocess.Popen([POP3D, "--config-file=" + site.conf],
                                stdin=subprocess.DEVNULL, stderr=log, env=site.env())
    site.procs.append(proc)
    wait_for(lambda: port in listening_inodes() or proc.poll() is not None, "listening")
    assert proc.poll() is None
    s = connect(port)
    assert s.greeting.startswith("+OK")
    s.cmd("QUIT")
    s.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=BOUND) == 0
    # the command line wins: -i runs one inetd session with the same file
    s = site.inetd()
    assert s.greeting.startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert s.returncode == 0


# --------------------------------------------------------------------------------------
# Server blocks and addresses

@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_and_ipv4_listeners(site):
    site.write_mbox([msg(1)])
    p4, p6 = free_port(), free_port6()
    d = start(site, [("127.0.0.1", p4, ""), ("[::1]", p6, "")])
    s = connect(p6, "::1")
    assert s.greeting.startswith("+OK")
    assert s.login().startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    d.wait_log(r"session started: client \[::1\]:\d+, server \[::1\]:%d" % p6)
    s = connect(p4)
    assert s.greeting.startswith("+OK")
    s.cmd("QUIT")
    s.close()


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_wildcard_addresses(site):
    p4, p6 = free_port(), free_port6()
    d = start(site, [("0.0.0.0", p4, ""), ("[::]", p6, "")])
    for host, port in (("127.0.0.1", p4), ("::1", p6)):
        s = connect(port, host)
        assert s.greeting.startswith("+OK")
        s.cmd("QUIT")
        s.close()
    d.wait_log(r"session started: client 127\.0\.0\.1:\d+, server 127\.0\.0\.1:%d" % p4)


def test_two_server_blocks_different_timeouts(site):
    fast, slow = free_port(), free_port()
    start(site, [("127.0.0.1", fast, "timeout 1;"), ("127.0.0.1", slow, "timeout 600;")])
    a, b = connect(fast), connect(slow)
    t0 = time.monotonic()
    assert a.line() == "-ERR Session timed out"
    assert time.monotonic() - t0 < 10
    assert capa_ok(b)
    b.cmd("QUIT")
    a.close()
    b.close()


def test_transcript_from_server_block_with_pass_redacted(site):
    site.write_mbox([msg(1)])
    plain, logged = free_port(), free_port()
    d = start(site, [("127.0.0.1", plain, ""), ("127.0.0.1", logged, "transcript yes;")],
              extra="transcript no;")
    s = connect(logged)
    assert s.login().startswith("+OK")
    assert s.cmd("STAT").startswith("+OK")
    s.cmd("QUIT")
    s.close()
    d.wait_log(r"recv: PASS \*\*\*")
    log = d.log()
    assert PASSWORDS["alice"] not in log
    assert "recv: USER alice" in log and "recv: STAT" in log
    n = log.count("recv:")
    s = connect(plain)
    s.login()
    s.cmd("QUIT")
    s.close()
    wait_for(lambda: d.log().count("session ended") == 2, "the second session to end")
    assert d.log().count("recv:") == n


def test_single_process_server(site):
    site.write_mbox([msg(1)])
    port = free_port()
    d = start(site, [("127.0.0.1", port, "single-process yes; backlog 8;")])
    uid_before = open("/proc/%d/status" % d.pid).read().split("\nUid:")[1].split("\n")[0]
    for _ in range(3):
        s = connect(port)
        assert s.greeting.startswith("+OK")
        assert s.login().startswith("+OK")
        s.cmd("QUIT")
        s.close()
    # One connection at a time, each in a process of its own: the listener never
    # becomes the user who logged in.
    wait_for(lambda: children(d.pid) == [], "no child left")
    uid_after = open("/proc/%d/status" % d.pid).read().split("\nUid:")[1].split("\n")[0]
    assert uid_after == uid_before


# --------------------------------------------------------------------------------------
# Access control

def served(port, host="127.0.0.1"):
    s = connect(port, host)
    ok = s.greeting is not None and s.greeting.startswith("+OK")
    if ok:
        s.cmd("QUIT")
    s.close()
    return ok


def test_global_acl_deny(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")],
              extra="acl { log from any \"acl saw ${address}\"; deny 127.0.0.0/8; };")
    assert not served(port)
    d.wait_log(r"Denying connection from 127\.0\.0\.1:\d+")
    assert "acl saw 127.0.0.1" in d.log()


def test_server_acl_allow_then_deny_any(site):
    ok_port, no_port = free_port(), free_port()
    start(site, [("127.0.0.1", ok_port, "acl { allow 127.0.0.1; deny any; };"),
                 ("127.0.0.1", no_port, "acl { allow 192.0.2.0/24; deny any; };")])
    assert served(ok_port)
    assert not served(no_port)


def test_acl_global_allow_does_not_override_server_deny(site):
    port = free_port()
    start(site, [("127.0.0.1", port, "acl { deny from 127.0.0.1; };")],
          extra="acl { allow any; };")
    assert not served(port)


def test_acl_ifexec_and_exec(site):
    out = os.path.join(site.dir, "exec.out")
    deny, allow = free_port(), free_port()
    start(site, [
        ("127.0.0.1", deny, "acl { ifexec any \"test ${family} = AF_INET && exit 1\"; };"),
        ("127.0.0.1", allow, "acl { exec any \"echo ${aclno} ${address} > %s\"; "
                             "ifexec any \"exit 0\"; deny any; };" % out),
    ])
    assert not served(deny)
    assert served(allow)
    wait_for(lambda: os.path.exists(out) and open(out).read().endswith("\n"), "exec output")
    assert open(out).read() == "1 127.0.0.1\n"


def libwrap_built():
    out = subprocess.run([POP3D, "--show-config-options"], capture_output=True, text=True)
    return "WITH_LIBWRAP" in out.stdout.split()


@pytest.mark.skipif(not os.path.exists(POP3D) or not libwrap_built(),
                    reason="pop3d built without tcp-wrappers")
def test_tcp_wrappers_tables(site):
    allow = os.path.join(site.dir, "hosts.allow")
    deny = os.path.join(site.dir, "hosts.deny")
    with open(allow, "w") as f:
        f.write("")
    with open(deny, "w") as f:
        f.write("mypop: 127.0.0.1\n")
    wrap = ("tcp-wrappers { enable yes; daemon mypop; allow-table %s; deny-table %s; };"
            % (allow, deny))
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], extra=wrap)
    assert not served(port)
    d.wait_log(r"Denying connection from 127\.0\.0\.1:\d+ \(tcp-wrappers\)")
    # tables are read per connection: an allow entry wins over the deny table
    with open(allow, "w") as f:
        f.write("mypop: 127.0.0.1\n")
    with open(deny, "w") as f:
        f.write("ALL: ALL\n")
    assert served(port)
    # another daemon name is not concerned by these lines
    with open(allow, "w") as f:
        f.write("")
    with open(deny, "w") as f:
        f.write("otherd: ALL\n")
    assert served(port)
    # and `enable no' turns the check off
    d.signal(signal.SIGTERM)
    d.proc.wait(timeout=BOUND)
    with open(deny, "w") as f:
        f.write("ALL: ALL\n")
    port = free_port()
    start(site, [("127.0.0.1", port, "")], extra=wrap.replace("enable yes", "enable no"))
    assert served(port)


# --------------------------------------------------------------------------------------
# Logging

def test_session_start_and_summary_lines(site):
    msgs = [msg(1), msg(2), msg(3)]
    site.write_mbox(msgs)
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")])
    s = connect(port)
    local = s.sock.getsockname()[1]
    assert s.login().startswith("+OK")
    assert s.cmd("RETR 2").startswith("+OK")
    s.multi()
    assert s.cmd("DELE 1").startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    d.wait_log(r"session ended: client 127\.0\.0\.1:%d" % local)
    log = d.log()
    assert re.search(r"^pop3d: session started: client 127\.0\.0\.1:%d, "
                     r"server 127\.0\.0\.1:%d$" % (local, port), log, re.M), log
    assert re.search(r"^pop3d: session ended: client 127\.0\.0\.1:%d, user alice, "
                     r"1 messages \(%d octets\) retrieved, 1 deleted, \d+ s, QUIT$"
                     % (local, len(wire(msgs[1]))), log, re.M), log
    # a session that times out says so
    s = connect(port)
    s.close()
    d.wait_log(r"user -, 0 messages \(0 octets\) retrieved, 0 deleted, \d+ s, EOF$")


def test_session_id_and_print_severity(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")],
              extra="logging { syslog no; session-id yes; print-severity yes; };")
    for _ in range(2):
        s = connect(port)
        s.cmd("QUIT")
        s.close()
    d.idle()
    ids = re.findall(r"^pop3d: info: ([A-Z2-7]{8}): session started", d.log(), re.M)
    assert len(ids) == 2 and len(set(ids)) == 2, d.log()
    for sid in ids:
        assert re.search(r"^pop3d: info: %s: session ended" % sid, d.log(), re.M)
    # the listener's own lines carry no session id
    assert re.search(r"^pop3d: info: listening on 127\.0\.0\.1:%d$" % port, d.log(), re.M)


def fail2ban_regex(prefix):
    """The filter's failregex with fail2ban's own <ADDR>/<HOST> expansion and a syslog
    line prefix in place of common.conf's __prefix_line."""
    cp = configparser.RawConfigParser()
    cp.read(os.path.join(TOP_SRCDIR, "etc", "fail2ban", "filter.d", "pop3d.conf"))
    rx = cp.get("Definition", "failregex").strip()
    assert cp.get("Definition", "_daemon") == "pop3d"
    ip4 = r"(?:\d{1,3}\.){3}\d{1,3}"
    ip6 = r"(?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
    addr = r"\[?(?:(?:::f{4,6}:)?(?P<ip4>%s)|(?P<ip6>%s))\]?" % (ip4, ip6)
    rx = rx.replace("%(__prefix_line)s", prefix).replace("<ADDR>", addr)
    rx = rx.replace("<HOST>", addr)
    return re.compile(rx)


def test_failed_logins_and_fail2ban_filter(site):
    site.write_mbox([msg(1)])
    p4 = free_port()
    servers = [("127.0.0.1", p4, "")]
    p6 = None
    if ipv6_available():
        p6 = free_port6()
        servers.append(("[::1]", p6, ""))
    d = start(site, servers, extra="logging { syslog no; session-id yes; };")
    attempts = [(p4, "127.0.0.1", "alice", "wrong"),
                (p4, "127.0.0.1", "nosuchuser", "x"),
                (p4, "127.0.0.1", "x from 6.6.6.6:1: y", "x")]
    if p6:
        attempts.append((p6, "::1", "bob", "wrong"))
    want = []
    for port, host, user, pw in attempts:
        s = connect(port, host)
        if s.cmd("USER " + user).startswith("+OK"):
            assert s.cmd("PASS " + pw).startswith("-ERR")
            want.append(host)
        s.cmd("QUIT")
        s.close()
    assert len(want) >= 2
    s = connect(p4)
    assert s.login().startswith("+OK")            # a good login is not a failure
    s.cmd("QUIT")
    s.close()
    d.idle()
    lines = [l for l in d.log().splitlines()]
    # as on stderr (--foreground) and as syslog writes them
    stderr_rx = fail2ban_regex(r"pop3d: ")
    syslog_rx = fail2ban_regex(r"\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ pop3d\[\d+\]: ")
    hits = []
    for l in lines:
        m = stderr_rx.search(l)
        sl = "Nov 23 10:00:00 mail pop3d[4242]: " + l[len("pop3d: "):]
        m2 = syslog_rx.search(sl)
        assert bool(m) == bool(m2)
        if m:
            hits.append(m.group("ip4") or m.group("ip6"))
    assert hits == want, "\n".join(lines)
    assert "6.6.6.6" not in hits
    # and fail2ban itself, when installed, reads the same lines the same way
    if shutil.which("fail2ban-regex") and os.path.exists(F2B_COMMON):
        fd = os.path.join(site.dir, "f2b", "filter.d")
        os.makedirs(fd, exist_ok=True)
        shutil.copy(F2B_COMMON, fd)
        shutil.copy(os.path.join(TOP_SRCDIR, "etc", "fail2ban", "filter.d", "pop3d.conf"), fd)
        log = os.path.join(site.dir, "mail.log")
        with open(log, "w") as f:
            for l in lines:
                f.write("Nov 23 10:00:00 mail pop3d[4242]: " + l[len("pop3d: "):] + "\n")
        r = subprocess.run(["fail2ban-regex", "-o", "ip", log, os.path.join(fd, "pop3d.conf")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == want, r.stdout + "\n".join(lines)


F2B_COMMON = "/etc/fail2ban/filter.d/common.conf"


@pytest.mark.skipif(shutil.which("fail2ban-client") is None or not os.path.isdir("/etc/fail2ban"),
                    reason="fail2ban not installed")
def test_fail2ban_jail_loads(site):
    """The jail, enabled, passes fail2ban's own configuration test with the filter."""
    conf = os.path.join(site.dir, "fail2ban")
    shutil.copytree("/etc/fail2ban", conf, symlinks=True)
    for name in os.listdir(os.path.join(conf, "jail.d")):
        os.unlink(os.path.join(conf, "jail.d", name))      # the host's own jails
    shutil.copy(os.path.join(TOP_SRCDIR, "etc", "fail2ban", "filter.d", "pop3d.conf"),
                os.path.join(conf, "filter.d"))
    log = os.path.join(site.dir, "mail.log")
    open(log, "w").close()
    with open(os.path.join(TOP_SRCDIR, "etc", "fail2ban", "jail.d", "pop3d.conf")) as f:
        jail = f.read()
    assert re.search(r"^enabled\s*=\s*false$", jail, re.M)   # installed disabled
    jail = re.sub(r"^enabled\s*=.*$", "enabled = true", jail, flags=re.M)
    jail = re.sub(r"^logpath\s*=.*$", "logpath = " + log, jail, flags=re.M)
    with open(os.path.join(conf, "jail.d", "pop3d.conf"), "w") as f:
        f.write(jail)
    r = subprocess.run(["fail2ban-client", "-c", conf, "-t"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["fail2ban-client", "-c", conf, "-d"], capture_output=True, text=True,
                       timeout=60)
    assert "['add', 'pop3d', " in r.stdout, r.stdout + r.stderr
    assert "['set', 'pop3d', 'maxretry', 5]" in r.stdout, r.stdout


# --------------------------------------------------------------------------------------
# Service files

def test_service_files_present():
    etc = os.path.join(TOP_SRCDIR, "etc")
    with open(os.path.join(etc, "pop3d.socket")) as f:
        assert "Accept=yes" in f.read()
    with open(os.path.join(etc, "pop3d@.service")) as f:
        t = f.read()
        assert "StandardInput=socket" in t and "--inetd" in t
    with open(os.path.join(etc, "pop3d.service")) as f:
        t = f.read()
        assert "--foreground" in t and "ExecReload=/bin/kill -HUP $MAINPID" in t
    with open(os.path.join(etc, "xinetd.d", "pop3d")) as f:
        assert "server_args\t= --inetd" in f.read()
    with open(os.path.join(etc, "inetd.conf")) as f:
        assert "/usr/sbin/pop3d" in f.read()


# --------------------------------------------------------------------------------------
# Acceptance

def test_acceptance_20_concurrent_clients_1000_messages(site):
    users = ["user%d" % i for i in range(20)]
    add_users(site, users)
    boxes = {}
    for n, u in enumerate(users):
        msgs = [msg(i, "Body of %s message %d.\n.dot line\n" % (u, i))
                for i in range(1, 1001)]
        site.write_mbox(msgs, user=u)
        boxes[u] = [wire(m) for m in msgs]
    port = free_port()
    # All 20 connect at once from one address and wait there to log in one at a time:
    # more sessions not logged in, and from one source, than the defaults allow.
    d = start(site, [("127.0.0.1", port, "")], max_children=20,
              extra="max-preauth-children 0;\nmax-preauth-per-source 0;")
    d.idle()
    most = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            most[0] = max(most[0], len(children(d.pid)))
            time.sleep(0.01)

    errors = []
    barrier = threading.Barrier(len(users))
    all_in = threading.Barrier(len(users))
    # pam_wrapper (the test's PAM) gives each process a scratch directory from a small
    # set of names and cleans up others' it takes for stale: logins at the very same
    # instant fail there.  So the 20 clients connect together, log in one at a time,
    # and fetch together.
    login = threading.Lock()

    def client(u):
        try:
            barrier.wait(timeout=BOUND)
            p = poplib.POP3("127.0.0.1", port, timeout=120)
            with login:
                p.user(u)
                p.pass_(PASSWORDS[u])
            all_in.wait(timeout=120)
            count, size = p.stat()
            assert count == 1000 and size == sum(len(w) for w in boxes[u])
            for i in range(1, 1001):
                _, lines, octets = p.retr(i)
                assert b"\r\n".join(lines) + b"\r\n" == boxes[u][i - 1], (u, i)
            p.quit()
        except Exception as e:    # reported below, with the user
            errors.append("%s: %r" % (u, e))

    w = threading.Thread(target=watch)
    w.start()
    threads = [threading.Thread(target=client, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    w.join()
    assert not errors, (errors, [l for l in d.log().splitlines() if "failed" in l])
    assert not any(t.is_alive() for t in threads)
    assert most[0] == 20        # all 20 at once, never more
    assert "too many children" not in d.log()
    d.idle()
    ended = re.findall(r"session ended: client 127\.0\.0\.1:\d+, user (user\d+), "
                       r"1000 messages \(\d+ octets\) retrieved, 0 deleted", d.log())
    assert sorted(ended) == sorted(users)
