#!/usr/bin/python3
"""The library of the pop3d benchmark: maildrops, the POP3 client, the CPU and memory of a
server's processes, and the measures themselves.  bench/run is the command that runs them
against pop3d and its peers and writes the report (bench/README); privsep.py and timing.py
use the client and helpers from here.

    bench/bench.py ARGS   is bench/run ARGS
"""
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import crypt  # noqa: E402  (Debian 12's Python 3.11 still has it)

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "bench-password"
NUSERS = 8
TICK = os.sysconf("SC_CLK_TCK")
TERM = b"\r\n.\r\n"          # the end of a multi-line answer
QUICKACK = True                # acknowledge at once what arrives (see Client.recv)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, limit=20.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


def statements(binary):
    """The configuration statements a pop3d binary knows (from --config-help)."""
    out = subprocess.run([binary, "--config-help"], capture_output=True, text=True).stdout
    return set(re.findall(r"^\s*([a-z][a-z0-9-]*) ", out, re.M))


def dpkg_version(package):
    """The installed version of a Debian package, or None."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", package],
                       capture_output=True, text=True)
    status, _, version = r.stdout.strip().partition(" ")
    return version.strip() if r.returncode == 0 and status.startswith("ii") else None


# ---------------------------------------------------------------------------------------
# Passwords and maildrops

def password_hash(kind="sha512"):
    """PASSWORD hashed with a fresh salt: $6$ (sha512) or $y$ (yescrypt, through
    libcrypt's crypt_gensalt: Python's crypt module makes no yescrypt salt)."""
    if kind == "sha512":
        return crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
    if kind != "yescrypt":
        raise ValueError("unknown hash " + kind)
    import ctypes
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                  ctypes.c_int]
    setting = lib.crypt_gensalt(b"$y$", 0, None, 0)
    if not setting:
        raise RuntimeError("libcrypt makes no yescrypt salt")
    h = crypt.crypt(PASSWORD, setting.decode())
    if not h or not h.startswith("$y$"):
        raise RuntimeError("libcrypt has no yescrypt")
    return h


def message(i, body_lines=3, width=76):
    line = ("x" * (width - 1)) + "\n"
    return ("From bench@bench.test Mon Nov 23 10:00:00 2026\n"
            "From: sender%d@example.org\nTo: bench@bench.test\nSubject: message %d\n"
            "Message-ID: <%d@bench.test>\n\n%s\n" % (i, i, i, line * body_lines))


def write_mbox(path, count, body_lines, uid, gid):
    with open(path, "w") as f:
        for i in range(count):
            f.write(message(i, body_lines))
    os.chown(path, uid, gid)
    os.chmod(path, 0o600)


def chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


def write_files(path, names, body_lines):
    """One message per file (no From_ line): names[i] is message i's file under path."""
    for i, name in enumerate(names):
        with open(os.path.join(path, name), "w") as f:
            f.write(message(i, body_lines).split("\n", 1)[1])


def write_mh(path, count, body_lines, uid, gid):
    os.makedirs(path)
    write_files(path, [str(i + 1) for i in range(count)], body_lines)
    with open(os.path.join(path, ".mh_sequences"), "w") as f:
        f.write("unseen: 1-%d\n" % count)
    chown_tree(path, uid, gid)


def write_maildir(path, count, body_lines, uid, gid):
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, d))
    write_files(path, [os.path.join("cur", "%d.M%dP1.bench:2,S" % (1700000000 + i, i))
                       for i in range(count)], body_lines)
    chown_tree(path, uid, gid)


# ---------------------------------------------------------------------------------------
# The client

def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


TLS = tls_context()


class Client:
    """A POP3 client (POP3S with tls) that reads in large blocks: a multi-line answer is
    counted by its terminator, never split into lines, so that the client keeps up with a
    server sending GB/s."""

    def __init__(self, port, tls=False, bufsize=1 << 16, timeout=120):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s = TLS.wrap_socket(s) if tls else s
        self.buf = bytearray(bufsize)
        self.pending = b""
        self.line()

    def recv(self, buf):
        """Read into buf.  With QUICKACK, what arrives is acknowledged at once (Linux
        turns TCP_QUICKACK off again after a while: it is set before each read), so that
        no answer waits for the client's delayed ACK: a server that sends the end of an
        answer in a small segment of its own, held back by Nagle's algorithm until what
        went before is acknowledged, would otherwise wait about 40 ms for it."""
        if QUICKACK:
            self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return self.s.recv_into(buf)

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        """The next line with its CRLF (b"" at the end of the connection)."""
        while True:
            i = self.pending.find(b"\r\n")
            if i >= 0:
                l, self.pending = self.pending[:i + 2], self.pending[i + 2:]
                return l
            n = self.recv(self.buf)
            if not n:
                l, self.pending = self.pending, b""
                return l
            self.pending += bytes(self.buf[:n])

    def ask(self, c):
        self.send(c.encode() + b"\r\n")
        return self.line()

    def cmd(self, c):
        r = self.ask(c)
        if not r.startswith(b"+OK"):
            raise RuntimeError("%s -> %r" % (c.split()[0], r))
        return r

    def login(self, user):
        self.cmd("USER " + user)
        self.cmd("PASS " + PASSWORD)

    def stat(self):
        return int(self.cmd("STAT").split()[1])

    def multi(self, count=1, each=None):
        """Read count multi-line answers (status line, body, terminator), calling each()
        after every one; the number of octets read."""
        buf = self.buf
        n = len(self.pending)
        if n > len(buf):
            buf = self.buf = bytearray(n)
        buf[:n] = self.pending
        self.pending = b""
        total, tail, first = 0, b"", True
        while True:
            if not n:
                n = self.recv(buf)
                if not n:
                    raise RuntimeError("connection closed in a multi-line answer")
            if first:
                if buf[:1] != b"+":
                    raise RuntimeError("multi-line answer: %r" % bytes(buf[:min(n, 80)]))
                first = False
            pos = 0
            if tail:                                    # a terminator across two reads
                k = (tail + bytes(buf[:min(n, 4)])).find(TERM)
                if 0 <= k < len(tail):
                    pos = k + 5 - len(tail)
                    count -= 1
                    if each:
                        each()
            k = pos + 1
            while count:
                # Look for the dot alone (memchr), then at the two octets either side:
                # a few times faster than looking for the five.
                k = buf.find(b".", k + 1, max(n - 2, 0))
                if k < 0:
                    break
                if buf[k - 2:k + 3] == TERM:
                    pos = k + 3
                    k = pos + 1
                    count -= 1
                    if each:
                        each()
            if not count:
                self.pending = bytes(buf[pos:n])
                return total + pos
            total += n
            # The last octets after the last terminator, where the next one may begin.
            tail = bytes(buf[max(pos, n - 4):n]) if pos or n >= 4 else \
                (tail + bytes(buf[:n]))[-4:]
            n = 0

    def drain(self):
        """Read to the end of the connection."""
        while self.recv(self.buf):
            pass

    def close(self):
        self.s.close()


def login(port, user, tls=False, wait=0.0, bufsize=1 << 16):
    """A client logged in as user; t_pass is when PASS was sent.  For up to wait seconds
    a refused PASS is tried again: a server may still be busy with the last session's
    maildrop after its QUIT (Mailutils rewrites it to store ids)."""
    deadline = time.monotonic() + wait
    while True:
        c = Client(port, tls, bufsize)
        c.cmd("USER " + user)
        c.t_pass = time.monotonic()
        r = c.ask("PASS " + PASSWORD)
        if r.startswith(b"+OK"):
            return c
        c.close()
        if time.monotonic() >= deadline:
            raise RuntimeError("PASS -> %r" % r)
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------
# A server's processes: CPU and memory

def processes():
    """{pid: (ppid, state)} of every process."""
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    v = f.read().rsplit(")", 1)[1].split()
                out[int(p)] = (int(v[1]), v[0])
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree(top, table=None):
    """top and every process below it."""
    kids = {}
    for pid, (ppid, _) in (table or processes()).items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [top]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def started(pid):
    """When pid started (clock ticks after boot), or None when it is gone: with the pid,
    it names one process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def end_tree(proc, limit=20.0):
    """Stop a server: SIGTERM to its top process (a subprocess.Popen), SIGKILL after
    limit seconds; then SIGKILL to whatever of its tree outlived it by 5 seconds (a
    session stuck in its exit)."""
    if proc.poll() is not None:
        return
    rest = [(p, started(p)) for p in tree(proc.pid)[1:]]
    proc.terminate()
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    end = time.monotonic() + 5
    while True:
        rest = [(p, t) for p, t in rest if t is not None and started(p) == t]
        if not rest or time.monotonic() > end:
            break
        time.sleep(0.1)
    for p, _ in rest:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def cpu(top):
    """CPU seconds of top's process tree so far: for every process still there, its own
    time (its threads' run time from schedstat, to the nanosecond) and that of the
    children it has reaped (cutime + cstime).  A server whose master reaps every process
    and one whose master keeps long-lived helpers are counted alike."""
    total = 0.0
    for pid in tree(top):
        try:
            with open("/proc/%d/stat" % pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own = (int(v[11]) + int(v[12])) / TICK
        try:
            ns = 0
            for t in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                    ns += int(f.read().split()[0])
            own = max(own, ns / 1e9) if ns else own
        except (OSError, ValueError):
            pass
        total += own + (int(v[13]) + int(v[14])) / TICK
    return total


def cpu_of(pid):
    """utime + stime + cutime + cstime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in v[11:15]) / TICK


def settle(top, count=None, limit=5.0):
    """Wait until top's tree has no zombie (ended sessions are reaped, their CPU in
    their parent's cutime) and at most count processes."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        table = processes()
        pids = tree(top, table)
        if all(table.get(p, (0, ""))[1] != "Z" for p in pids) and \
                (count is None or len(pids) <= count):
            return
        time.sleep(0.05)


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for l in f:
                    if l.startswith("Pss:"):
                        total += int(l.split()[1])
        except OSError:
            pass
    return total


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------------
# The measures.  srv is a servers.Server: port, tls_port, pid, login_suffix.

def _session_loop(port, user, tls, stop_at, q):
    n = errors = 0
    last = ""
    while time.monotonic() < stop_at:
        try:
            c = Client(port, tls, 4096, timeout=30)
            c.login(user)
            c.stat()
            c.cmd("QUIT")
            c.close()
            n += 1
        except (OSError, RuntimeError) as e:
            errors += 1
            last = str(e)
            time.sleep(0.01)
    q.put((n, errors, last))


def bench_sessions(srv, seconds, tls=False, clients=NUSERS):
    """clients processes, each with its own user, looping on connect, USER, PASS, STAT,
    QUIT: sessions/s, and the server's CPU per session in ms."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    port = srv.tls_port if tls else srv.port
    settle(srv.pid)
    base = len(tree(srv.pid))
    q = ctx.Queue()
    cpu0, client0 = cpu(srv.pid), children_cpu()
    t0 = time.monotonic()
    procs = [ctx.Process(target=_session_loop,
                         args=(port, "u%d%s" % (i % NUSERS, srv.login_suffix), tls,
                               t0 + seconds, q)) for i in range(clients)]
    for p in procs:
        p.start()
    done = [q.get() for _ in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.join()
    settle(srv.pid, base)
    n = sum(d[0] for d in done)
    errors = sum(d[1] for d in done)
    if not n:
        raise RuntimeError("no session completed (%d errors: %s)" % (
            errors, next((d[2] for d in done if d[2]), "")))
    return {"rate": n / elapsed, "cpu_ms": (cpu(srv.pid) - cpu0) * 1000 / n,
            "sessions": n, "errors": errors,
            "client_cpu": (children_cpu() - client0) / elapsed}


def bench_handshakes(srv, seconds):
    """openssl s_time -new against the POP3S port: full handshakes/s, one at a time, and
    the server's CPU per handshake in ms."""
    settle(srv.pid)
    base = len(tree(srv.pid))
    cpu0 = cpu(srv.pid)
    t0 = time.monotonic()
    r = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % srv.tls_port,
                        "-new", "-time", str(max(1, int(seconds)))],
                       capture_output=True, text=True, timeout=seconds + 120)
    elapsed = time.monotonic() - t0
    m = re.search(r"^(\d+) connections in", r.stdout, re.M)
    if not m or not int(m.group(1)):
        raise RuntimeError("openssl s_time: %s" % (r.stdout + r.stderr).strip()[-300:])
    n = int(m.group(1))
    settle(srv.pid, base)
    return {"rate": n / elapsed, "cpu_ms": (cpu(srv.pid) - cpu0) * 1000 / n,
            "handshakes": n}


def tls_version(srv):
    c = Client(srv.tls_port, True)
    v = "%s %s" % (c.s.version(), c.s.cipher()[0])
    c.close()
    return v


def _retr_all(c, n, depth):
    """RETR 1..n, depth commands in flight (1: one at a time); the octets read."""
    if depth == 1:
        total = 0
        for k in range(1, n + 1):
            c.send(b"RETR %d\r\n" % k)
            total += c.multi()
        return total
    nxt = [min(depth, n) + 1]

    def more():
        if nxt[0] <= n:
            c.send(b"RETR %d\r\n" % nxt[0])
            nxt[0] += 1
    c.send(b"".join(b"RETR %d\r\n" % k for k in range(1, min(depth, n) + 1)))
    return c.multi(n, more)


def bench_retr(srv, user, tls=False, depth=1, rounds=1, limit=60.0):
    """Every message of user's maildrop in one session, depth RETR commands in flight;
    the best MB/s of rounds sessions (fewer once they have taken limit seconds), and the
    server's CPU per GB over all of them (from the first RETR to the end of the last
    answer)."""
    port = srv.tls_port if tls else srv.port
    best, octets, used, client, done = 0.0, 0, 0.0, 0.0, 0
    start = time.monotonic()
    while done < rounds and (not done or time.monotonic() - start < limit):
        c = login(port, user + srv.login_suffix, tls, wait=300, bufsize=1 << 20)
        n = c.stat()
        cpu0, client0 = cpu(srv.pid), time.process_time()
        t0 = time.monotonic()
        total = _retr_all(c, n, depth)
        dt = time.monotonic() - t0
        used += cpu(srv.pid) - cpu0
        client += time.process_time() - client0
        c.cmd("QUIT")
        c.close()
        best = max(best, total / dt / 1e6)
        octets += total
        done += 1
    gb = octets / 1e9
    return {"mbs": best, "cpu_s_gb": used / gb, "client_cpu_s_gb": client / gb,
            "octets": octets, "sessions": done}


def bench_open(srv, user, messages, warm=3):
    """PASS to the end of the UIDL listing, in the first session on a maildrop of
    messages messages (no index or cache of the server's yet), and the best of the warm
    next ones: seconds."""
    times = []
    for n in range(1 + warm):
        c = login(srv.port, user + srv.login_suffix, wait=300 if n else 0)
        c.send(b"UIDL\r\n")
        c.multi()
        times.append(time.monotonic() - c.t_pass)
        found = c.stat()
        c.cmd("QUIT")
        c.close()
        if found != messages:
            raise RuntimeError("%d messages in the maildrop, not %d" % (found, messages))
    return times[0], min(times[1:])


def bench_pss(srv, tls=False):
    """PSS of the processes that serve one idle, logged-in session (those that the
    session added to the server's tree), in KiB."""
    port = srv.tls_port if tls else srv.port
    user = "u0" + srv.login_suffix
    c = login(port, user, tls)             # the first session starts what starts lazily
    c.cmd("QUIT")
    c.drain()
    c.close()
    settle(srv.pid)
    time.sleep(0.2)
    before = set(tree(srv.pid))
    c = login(port, user, tls)
    c.stat()
    time.sleep(0.3)
    new = [p for p in tree(srv.pid) if p not in before]
    kib = pss_kib(new)
    c.cmd("QUIT")
    c.close()
    return {"kib": kib, "processes": len(new)}


def bench_dele(srv, user):
    """DELE of every other message, one round trip each, then QUIT (to the end of the
    connection, the maildrop rewritten); checked by the next session's STAT."""
    c = login(srv.port, user + srv.login_suffix)
    n = c.stat()
    dels = range(1, n + 1, 2)
    t0 = time.monotonic()
    for i in dels:
        c.cmd("DELE %d" % i)
    t1 = time.monotonic()
    c.cmd("QUIT")
    c.drain()
    t2 = time.monotonic()
    c.close()
    c = login(srv.port, user + srv.login_suffix, wait=300)
    left = c.stat()
    c.cmd("QUIT")
    c.close()
    if left != n - len(dels):
        raise RuntimeError("%d messages after QUIT, not %d" % (left, n - len(dels)))
    return {"dele_s": t1 - t0, "quit_s": t2 - t1, "deleted": len(dels), "messages": n}


if __name__ == "__main__":
    os.execv(sys.executable, [sys.executable, os.path.join(HERE, "run")] + sys.argv[1:])
