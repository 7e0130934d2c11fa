#!/usr/bin/env python3
"""pop3d benchmarks: the same users, hash ($6$) and mailboxes served by pop3d, Dovecot's pop3
and GNU Mailutils pop3d in one run, reported as numbers and as ratios to pop3d.

Run as root on Debian 12 after bench/setup.sh (it installs dovecot-pop3d and
mailutils-pop3d).  Every server listens on a free 127.0.0.1 port in a scratch directory;
nothing in /etc is touched (Dovecot runs with its own configuration file there).

    bench/bench.py [--pop3d PATH] [--only pop3d,dovecot,mailutils] [--quick]
                   [--measures sessions,retr,open,maildir,mh,pss,quit]

What is measured (DESIGN.md section 6):
  sessions/s    connect, USER, PASS, STAT, QUIT; 8 clients at once, distinct users
  retr MB/s     one session RETRieving every message of a ~200 MB mbox
  open s        PASS to the end of UIDL on a 50,000-message mbox: first and next session
  maildir s     the same on a 50,000-message Maildir
  mh s          the same on a 50,000-message MH folder (Dovecot has no MH)
  idle PSS      memory of an idle authenticated session process (KiB)
  quit s        QUIT after DELE of 5,000 of 10,000 messages
"""
import argparse
import warnings
warnings.filterwarnings("ignore", category=DeprecationWarning)
import crypt  # noqa: E402  (Debian 12's Python 3.11 still has it)
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "bench-password"
NUSERS = 8

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

def write_mh(path, count, body_lines, uid, gid):
    os.makedirs(path)
    for i in range(count):
        with open(os.path.join(path, str(i + 1)), "w") as f:
            f.write(message(i, body_lines).split("\n", 1)[1])   # no From_ line
    with open(os.path.join(path, ".mh_sequences"), "w") as f:
        f.write("unseen: 1-%d\n" % count)
    chown_tree(path, uid, gid)

def write_maildir(path, count, body_lines, uid, gid):
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, d))
    for i in range(count):
        name = os.path.join(path, "cur", "%d.M%dP1.bench:2,S" % (1700000000 + i, i))
        with open(name, "w") as f:
            f.write(message(i, body_lines).split("\n", 1)[1])   # no From_ line
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)

class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb", buffering=1 << 20)
        self.line()

    def line(self):
        return self.f.readline()

    def cmd(self, c):
        self.s.sendall(c.encode() + b"\r\n")
        r = self.line()
        if not r.startswith(b"+OK"):
            raise RuntimeError("%s -> %r" % (c, r))
        return r

    def login(self, user):
        self.cmd("USER " + user)
        self.cmd("PASS " + PASSWORD)

    def multi_bytes(self):
        n = 0
        while True:
            l = self.f.readline()
            if l == b".\r\n" or not l:
                return n
            n += len(l)

    def close(self):
        self.f.close()
        self.s.close()

class Site:
    """Users u0..u7 (bench@... style virtual users) with their homes and INBOX mboxes."""
    def __init__(self, root):
        self.root = root
        pw = pwd.getpwnam("nobody")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.hash = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
        self.users = ["u%d" % i for i in range(NUSERS)] + ["big", "many", "dele", "mdir", "mhf"]
        self.domains = os.path.join(root, "domains")
        os.makedirs(self.domains)
        lines = []
        for u in self.users:
            home = self.home(u)
            os.makedirs(home)
            os.chown(home, self.uid, self.gid)
            lines.append("%s:%s:%d:%d::%s:/bin/false\n" % (u, self.hash, self.uid, self.gid, home))
        with open(os.path.join(self.domains, "bench.test"), "w") as f:
            f.writelines(lines)
        # Dovecot's passwd-file: user@domain names, same hash.
        with open(os.path.join(root, "dovecot-users"), "w") as f:
            for u in self.users:
                extra = "userdb_mail=maildir:~/INBOX" if u == "mdir" else ""
                f.write("%s@bench.test:%s:%d:%d::%s::%s\n" % (u, self.hash, self.uid, self.gid,
                                                              self.home(u), extra))

    def home(self, u):
        return os.path.join(self.root, "home", u)

    def inbox(self, u):
        return os.path.join(self.home(u), "INBOX")

    def fill(self, quick, measures):
        many = 50000 if not quick else 5000
        for u in self.users[:NUSERS]:
            write_mbox(self.inbox(u), 10, 3, self.uid, self.gid)
        if "retr" in measures:
            big = 2100 if not quick else 300
            write_mbox(self.inbox("big"), big, 1200, self.uid, self.gid)         # ~200 MB
        if "open" in measures:
            write_mbox(self.inbox("many"), many, 40, self.uid, self.gid)
        if "maildir" in measures:
            write_maildir(self.inbox("mdir"), many, 40, self.uid, self.gid)
        if "mh" in measures:
            write_mh(self.inbox("mhf"), many, 40, self.uid, self.gid)
        if "quit" in measures:
            self.refill_dele(quick)

    def refill_dele(self, quick):
        write_mbox(self.inbox("dele"), 10000 if not quick else 2000, 40, self.uid, self.gid)

class Server:
    name = "?"
    login_suffix = "@bench.test"

    def __init__(self, site, work):
        self.site, self.work = site, work
        self.port = free_port()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def session_pids(self):
        """Processes serving sessions (for the memory measure)."""
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % p) as f:
                    st = f.read()
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmd = f.read().split(b"\0")[0]
            except OSError:
                continue
            ppid = int(st.rsplit(")", 1)[1].split()[1])
            if self.is_session(int(p), ppid, cmd):
                out.append(int(p))
        return out

class Pop3d(Server):
    name = "pop3d"
    mailutils_style = True

    def __init__(self, site, work, binary):
        super().__init__(site, work)
        self.binary = binary

    def conf_text(self):
        return ("logging { syslog no; severity error; };\n"
                "auth { authentication virtdomain; authorization virtdomain; };\n"
                "virtdomain { passwd-dir \"%s\"; };\n"
                "max-children 100;\n"
                "server 127.0.0.1:%d { };\n" % (self.site.domains, self.port))

    def start(self):
        conf = os.path.join(self.work, self.name + ".conf")
        with open(conf, "w") as f:
            f.write(self.conf_text())
        self.proc = subprocess.Popen(self.argv(conf), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def argv(self, conf):
        return [self.binary, "-d100", "--foreground", "--config-file=" + conf]

    def is_session(self, pid, ppid, cmd):
        return ppid == self.proc.pid

class Mailutils(Pop3d):
    name = "mailutils"

    def argv(self, conf):
        return ["/usr/sbin/pop3d", "--daemon=100", "--foreground", "--config-file=" + conf]

    def locks(self):
        return os.path.join(self.work, "mailutils-locks")

    def start(self):
        # Mailutils locks directory maildrops (Maildir, MH) with files in a lock
        # directory, /var/lock/subsys/mail by default: one of its own here.
        os.makedirs(self.locks(), exist_ok=True)
        os.chown(self.locks(), self.site.uid, self.site.gid)
        super().start()

    def conf_text(self):
        # Mailutils' virtdomain module only looks users up; `generic` checks the hash.
        return ("logging { syslog no; };\n"
                "auth { authentication generic; authorization virtdomain; };\n"
                "virtdomain { passwd-dir \"%s\"; };\n"
                "mandatory-locking { lock-directory \"%s\"; };\n"
                "max-children 100;\n"
                "server 127.0.0.1:%d { };\n" % (self.site.domains, self.locks(), self.port))

class Dovecot(Server):
    name = "dovecot"

    def start(self):
        base = os.path.join(self.work, "dovecot-run")
        os.makedirs(base, exist_ok=True)
        conf = os.path.join(self.work, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("""protocols = pop3
base_dir = %(base)s
state_dir = %(base)s/state
log_path = %(work)s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
listen = 127.0.0.1
first_valid_uid = 1
mail_location = mbox:~/mail:INBOX=~/INBOX
mbox_write_locks = fcntl
pop3_uidl_format = %%08Xu%%08Xv
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT %(users)s
}
userdb {
  driver = passwd-file
  args = %(users)s
}
service pop3-login {
  inet_listener pop3 {
    port = %(port)d
  }
  inet_listener pop3s {
    port = 0
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
}
""" % {"base": base, "work": self.work, "users": os.path.join(self.site.root, "dovecot-users"),
       "port": self.port})
        self.proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def is_session(self, pid, ppid, cmd):
        return cmd.endswith(b"dovecot/pop3") or cmd == b"dovecot/pop3"

def bench_sessions(srv, seconds):
    count = [0]
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(user):
        n = 0
        while time.monotonic() < stop:
            try:
                c = Client(srv.port)
                c.login(user + srv.login_suffix)
                c.cmd("STAT")
                c.cmd("QUIT")
                c.close()
                n += 1
            except (OSError, RuntimeError):
                with lock:
                    errors[0] += 1
        with lock:
            count[0] += n

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=("u%d" % i,)) for i in range(NUSERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return count[0] / elapsed, errors[0]

def bench_retr(srv):
    c = Client(srv.port)
    c.login("big" + srv.login_suffix)
    n = int(c.cmd("STAT").split()[1])
    t0 = time.monotonic()
    total = 0
    # Pipelined in windows of 16 commands, as mail clients do.
    for start in range(1, n + 1, 16):
        batch = range(start, min(n, start + 15) + 1)
        c.s.sendall(b"".join(b"RETR %d\r\n" % i for i in batch))
        for _ in batch:
            if not c.line().startswith(b"+OK"):
                raise RuntimeError("RETR failed")
            total += c.multi_bytes()
    elapsed = time.monotonic() - t0
    c.cmd("QUIT")
    c.close()
    return total / elapsed / 1e6

def bench_open(srv, user):
    """PASS to the end of the UIDL listing: open (scan or index) plus ids."""
    times = []
    for n in range(2):
        # A server may still be busy with the previous session's maildrop after QUIT
        # (Mailutils rewrites it to store ids): wait for it, outside the measure.  The
        # first session has nothing to wait for.
        deadline = time.monotonic() + (300 if n else 0)
        while True:
            c = Client(srv.port)
            c.cmd("USER " + user + srv.login_suffix)
            t0 = time.monotonic()
            c.s.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
            r = c.line()
            if r.startswith(b"+OK"):
                break
            c.close()
            if b"IN-USE" not in r or time.monotonic() > deadline:
                raise RuntimeError("PASS -> %r" % r)
            time.sleep(0.5)
        c.cmd("UIDL")
        c.multi_bytes()
        times.append(time.monotonic() - t0)
        c.cmd("QUIT")
        c.close()
    return times

def bench_pss(srv):
    c = Client(srv.port)
    c.login("u0" + srv.login_suffix)
    c.cmd("STAT")
    time.sleep(0.2)
    best = None
    for pid in srv.session_pids():
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for l in f:
                    if l.startswith("Pss:"):
                        kb = int(l.split()[1])
                        best = kb if best is None else min(best, kb)
        except OSError:
            pass
    c.cmd("QUIT")
    c.close()
    return best

def bench_quit(srv, site, quick):
    site.refill_dele(quick)
    c = Client(srv.port)
    c.login("dele" + srv.login_suffix)
    n = int(c.cmd("STAT").split()[1])
    dels = list(range(1, n + 1, 2))
    c.s.sendall(b"".join(b"DELE %d\r\n" % i for i in dels))
    for _ in dels:
        if not c.line().startswith(b"+OK"):
            raise RuntimeError("DELE failed")
    t0 = time.monotonic()
    c.cmd("QUIT")
    elapsed = time.monotonic() - t0
    c.close()
    return elapsed

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pop3d", default=os.path.join(HERE, "..", "_build", "pop3d"))
    ap.add_argument("--only", default="pop3d,dovecot,mailutils")
    ap.add_argument("--quick", action="store_true", help="small mailboxes, short runs")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--measures", default="sessions,retr,open,maildir,mh,pss,quit",
                    help="what to measure (comma-separated)")
    args = ap.parse_args()
    measures = set(args.measures.split(","))
    if os.getuid() != 0:
        sys.exit("bench: run as root (the servers drop to the user nobody)")
    work = tempfile.mkdtemp(prefix="pop3d-bench.")
    os.chmod(work, 0o755)
    site = Site(work)
    site.fill(args.quick, measures)
    servers = []
    for name in args.only.split(","):
        if name == "pop3d":
            servers.append(Pop3d(site, work, os.path.abspath(args.pop3d)))
        elif name == "dovecot" and os.path.exists("/usr/sbin/dovecot"):
            servers.append(Dovecot(site, work))
        elif name == "mailutils" and os.path.exists("/usr/sbin/pop3d"):
            servers.append(Mailutils(site, work, "/usr/sbin/pop3d"))
        else:
            print("bench: skipping %s (not installed: run bench/setup.sh)" % name)
    results = {}
    for srv in servers:
        srv.start()
        r = {}
        try:
            if "sessions" in measures:
                r["sessions/s"], r["session errors"] = bench_sessions(srv, args.seconds)
            if "retr" in measures:
                r["retr MB/s"] = bench_retr(srv)
            if "open" in measures:
                r["open first s"], r["open next s"] = bench_open(srv, "many")
            if "maildir" in measures:
                r["maildir first s"], r["maildir next s"] = bench_open(srv, "mdir")
            if "mh" in measures and srv.name != "dovecot":
                r["mh first s"], r["mh next s"] = bench_open(srv, "mhf")
            if "pss" in measures:
                r["idle PSS KiB"] = bench_pss(srv)
            if "quit" in measures:
                r["quit s"] = bench_quit(srv, site, args.quick)
        except Exception as e:   # a peer that fails a measure is reported, not fatal
            r["error"] = str(e)
        finally:
            srv.stop()
        results[srv.name] = r
        print("%-10s %s" % (srv.name, ", ".join("%s=%s" % (k, ("%.3f" % v) if isinstance(v, float) else v)
                                              for k, v in r.items())), flush=True)
    keys = ["sessions/s", "retr MB/s", "open first s", "open next s", "maildir first s",
            "maildir next s", "mh first s", "mh next s", "idle PSS KiB", "quit s"]
    higher_better = {"sessions/s", "retr MB/s"}
    print("\n%-14s" % "measure" + "".join("%14s" % s.name for s in servers) +
          "".join("%18s" % ("pop3d/" + s.name) for s in servers if s.name != "pop3d"))
    for k in keys:
        row = "%-14s" % k
        vals = {s.name: results[s.name].get(k) for s in servers}
        for s in servers:
            v = vals[s.name]
            row += "%14s" % ("-" if v is None else ("%.3f" % v if isinstance(v, float) else v))
        for s in servers:
            if s.name == "pop3d":
                continue
            a, b = vals.get("pop3d"), vals[s.name]
            if a and b:
                ratio = a / b if k in higher_better else b / a
                row += "%17.2fx" % ratio
            else:
                row += "%18s" % "-"
        print(row)
    print("\n(ratios: how many times better pop3d is; >1 is better)")
    shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
