#!/usr/bin/python3
"""Mail integrity under torture: the real pop3d, killed with SIGKILL at random instants
of its UPDATE while a mail delivery agent delivers to the same maildrop, for mbox,
Maildir and MH.

Each round a session logs in (inetd mode, the users and PAM of the end-to-end harness,
tests/e2e/conftest.py), marks a random subset of the messages deleted and sends QUIT;
after a random delay (drawn from the time UPDATE has been seen to take) the session
process is stopped where it is, the instant is classified (QUIT not yet read, in
UPDATE, or already answered), and it is killed, alone or with its monitor.  Meanwhile
another process delivers mail as Debian's MDAs do: to mbox under dotlockfile(1)'s lock
and an fcntl lock, to Maildir through tmp/ and a rename into new/, to MH by linking a
written file to the next free number.  Then a checker session retrieves every message
and the files are read directly:

 - every message neither deleted nor delivered in the round is there exactly once,
   byte for byte;
 - every delivered message is there exactly once, byte for byte;
 - the deleted ones are all gone or all there (all gone once QUIT was answered +OK,
   all there when the session was killed before it read QUIT);
 - nothing else is there, and no temporary, lock or update-record file is left once
   the checker session is over.  One exception, counted apart: the mbox's temporary
   files (its new copy, named in the instant before its rename, or a new index) stay
   when the delivery agent, not the next session, removed the dead session's dotlock
   (pop3d removes them when it breaks that dotlock itself, and at every update): a
   session that deletes a message must then remove them.

  torture.py [--rounds N] [--formats mbox,maildir,mh] [--seed S] [--tap] [--keep]

Prints, per format: rounds, kills that landed during UPDATE, messages checked,
failures and time.  Exit status 1 when a check failed.  POP3D names the binary
(default: top_builddir/pop3d).  With --tap the output is TAP, one test a format."""
import argparse
import errno
import fcntl
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(HERE, "..", "e2e")
BOUND = 20                  # seconds: no wait of the harness is longer
MDA_PAUSE = 0.03            # longest pause between two deliveries
INITIAL = 120               # messages of a fresh maildrop
TRIM_ABOVE, TRIM_TO = 250, 150
FROM_LINE = b"From torture@example.org Wed Dec  2 10:00:00 2026\n"
USER = "alice"
MAIL_GID = 8


# ---------------------------------------------------------------------------------
# Messages: each is a function of its number, so that the MDA process and the checker
# agree on every byte.

WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"\xe9t\xe9", b"na\xefve", b"tab\there",
         b"<html>", b"=?utf-8?q?x?=", b"From:", b"from", b"\"quoted\"", b"#", b"\r"]


def message(n):
    """The bytes of message n: LF line ends, a few dot lines, long lines, 8-bit bytes;
    no line starting with "From " or ">From " (mbox would quote it), no empty last
    line (an mbox separator would swallow it)."""
    r = random.Random(n * 7919 + 17)
    lines = [b"From: sender%d@example.org" % n, b"To: alice@example.org",
             b"Subject: torture message %d" % n,
             b"Date: Wed, 2 Dec 2026 10:00:00 +0000",
             b"Message-ID: <torture-%d@example.org>" % n, b""]
    big = r.random() < 0.04
    nlines = r.randint(2000, 6000) if big else r.randint(3, 120)
    for k in range(nlines):
        kind = r.random()
        if kind < 0.05:
            lines.append(b"." * r.randint(1, 3) + b"dot line %d" % k)
        elif kind < 0.07:
            lines.append(b"x" * r.randint(900, 3000))
        elif kind < 0.09:
            lines.append(b"")
        else:
            lines.append(b" ".join(r.choice(WORDS) for _ in range(r.randint(1, 14))))
    lines.append(b"end of message %d" % n)
    return b"\n".join(lines) + b"\n"


def message_number(data):
    """The number in a message's Message-ID header, or None."""
    head = data.split(b"\n\n", 1)[0] if b"\n\n" in data else data.split(b"\r\n\r\n", 1)[0]
    for line in head.splitlines():
        if line.lower().startswith(b"message-id: <torture-"):
            num = line[len(b"message-id: <torture-"):].split(b"@", 1)[0]
            if num.isdigit():
                return int(num)
    return None


def wire(data):
    """What RETR sends for a stored message, before dot-stuffing."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def mbox_block(data):
    return FROM_LINE + data + b"\n"


# ---------------------------------------------------------------------------------
# The mail delivery agent: its own process, so that dotlockfile's -p writes the pid of
# a process that lives while it holds the lock.  It delivers messages first, first+1,
# ... until its standard input closes, each after a random pause, and prints the
# number of each once it is delivered (fsynced and in place).

def mda_mbox(path, n, uid, gid):
    lock = path + ".lock"
    deadline = time.monotonic() + BOUND
    # A message waiting for the lock is delivered once it is free, stop or not.
    while True:
        r = subprocess.run(["dotlockfile", "-p", "-r", "0", lock],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("dotlockfile: %s stays locked" % lock)
        time.sleep(0.002)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchown(fd, uid, gid)
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EACCES, errno.EAGAIN):
                        raise
                    if time.monotonic() > deadline:
                        raise RuntimeError("fcntl lock of %s busy under its dotlock" % path)
                    time.sleep(0.002)
            size = os.fstat(fd).st_size
            sep = b""
            if size > 0:
                tail = os.pread(fd, 2, size - 2 if size >= 2 else 0)
                sep = b"" if tail.endswith(b"\n\n") or tail == b"\n" else (
                    b"\n" if tail.endswith(b"\n") else b"\n\n")
            os.write(fd, sep + mbox_block(message(n)))
            os.fsync(fd)
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        subprocess.run(["dotlockfile", "-u", lock], check=True)


def write_new(path, data, uid, gid):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def mda_maildir(path, n, uid, gid):
    now = time.time()
    name = "%d.M%dP%dQ%d.torture" % (int(now), int(now * 1e6) % 1000000, os.getpid(), n)
    tmp = os.path.join(path, "tmp", name)
    write_new(tmp, message(n), uid, gid)
    os.rename(tmp, os.path.join(path, "new", name))


def mda_mh(path, n, uid, gid):
    tmp = os.path.join(os.path.dirname(path), ".torture-mda-%d" % n)
    write_new(tmp, message(n), uid, gid)
    try:
        num = max([int(f) for f in os.listdir(path) if f.isdigit()] + [0]) + 1
        while True:
            try:
                os.link(tmp, os.path.join(path, str(num)))
                break
            except FileExistsError:
                num += 1
    finally:
        os.unlink(tmp)


MDAS = {"mbox": mda_mbox, "maildir": mda_maildir, "mh": mda_mh}


def mda_main(fmt, path, first, seed, uid, gid):
    rnd = random.Random(seed)
    n = first
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    # Until standard input closes: the harness wants the deliveries to stop.
    while not select.select([sys.stdin], [], [], rnd.uniform(0, MDA_PAUSE))[0]:
        MDAS[fmt](path, n, uid, gid)
        sys.stdout.write("%d\n" % n)
        sys.stdout.flush()
        n += 1
    return 0


# ---------------------------------------------------------------------------------
# The maildrops

class Format:
    """One maildrop format: where it is, how to make it and how to read it back."""

    def __init__(self, name, site):
        self.name = name
        self.site = site
        self.uid = site.uids[USER] if site.root else os.getuid()
        self.gid = site.gid
        if name == "mbox":
            site.write_conf("")
            self.path = site.mbox_path(USER)
            if site.root:
                # A Debian spool: root:mail 2775, the maildrop the user's, group mail.
                self.gid = MAIL_GID
                os.chown(site.spool, 0, MAIL_GID)
                os.chmod(site.spool, 0o2775)
        elif name == "maildir":
            site.write_conf("mailbox { mailbox-type maildir; };")
            self.path = site.mbox_path(USER)
        else:
            site.write_conf('mailbox { mailbox-pattern "mh:${home}/Mail/inbox"; };')
            self.path = os.path.join(site.dir, "home", USER, "Mail", "inbox")

    @property
    def dir(self):
        """The directory holding the maildrop and whatever its updates leave."""
        return os.path.dirname(self.path) if self.name == "mbox" else self.path

    def chown(self, p):
        if self.site.root:
            os.chown(p, self.uid, self.gid)

    def create(self, numbers):
        """A fresh maildrop holding these messages."""
        if os.path.isdir(self.path):
            shutil.rmtree(self.path)
        elif os.path.exists(self.path):
            os.unlink(self.path)
        if self.name == "mbox":
            self.site.write_mbox(None, USER, b"".join(mbox_block(message(n))
                                                      for n in numbers))
            self.chown(self.path)
            return
        if self.name == "maildir":
            os.mkdir(self.path, 0o700)
            self.chown(self.path)
            for sub in ("cur", "new", "tmp"):
                os.mkdir(os.path.join(self.path, sub), 0o700)
                self.chown(os.path.join(self.path, sub))
            for n in numbers:
                p = os.path.join(self.path, "new", "1800000000.M%dP1Q%d.torture" % (n, n))
                write_new(p, message(n), self.uid, self.gid)
            return
        os.makedirs(self.path, 0o700)
        for d in (os.path.dirname(self.path), self.path):
            self.chown(d)
        for k, n in enumerate(numbers, 1):
            write_new(os.path.join(self.path, str(k)), message(n), self.uid, self.gid)
        # A sequence, so that UPDATE rewrites .mh_sequences too.
        with open(os.path.join(self.path, ".mh_sequences"), "w") as f:
            f.write("unseen: 1-%d\n" % len(numbers) if numbers else "")
        self.chown(os.path.join(self.path, ".mh_sequences"))

    def read(self):
        """(messages, problems, copies): the stored messages as bytes, in order,
        whatever is there that should not be (temporary files, locks, records, strays)
        and, apart, the mbox's temporary files (its new copy, named for the rename, and
        a new index)."""
        msgs, bad, copies = [], [], []
        if self.name == "mbox":
            spool = os.path.dirname(self.path)
            base = os.path.basename(self.path)
            for f in sorted(os.listdir(spool)):
                if re.fullmatch(r"\.%s\.pop3d-([A-Za-z0-9]{6}|index\.[0-9a-f]{8})"
                                % re.escape(base), f):
                    copies.append(f)
                elif f not in (base, "." + base + ".pop3d-index"):
                    bad.append("left in the spool: " + f)
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                return msgs, bad, copies
            if data and not data.startswith(b"From "):
                bad.append("the mbox does not start with a From_ line")
            blocks = data.split(b"\nFrom ")
            for i, b in enumerate(blocks):
                if i > 0:
                    b = b"From " + b
                if not b:
                    continue
                head, _, body = b.partition(b"\n")
                if head + b"\n" != FROM_LINE:
                    bad.append("a From_ line changed: %r" % head[:80])
                if i < len(blocks) - 1:
                    body += b"\n"           # the LF that the split took
                    if not body.endswith(b"\n\n"):
                        bad.append("message %d of the mbox is not followed by a blank "
                                   "line" % (i + 1))
                if body.endswith(b"\n\n"):
                    body = body[:-1]        # the separator
                msgs.append(body)
            return msgs, bad, copies
        if self.name == "maildir":
            for f in sorted(os.listdir(self.path)):
                if f not in ("cur", "new", "tmp", "pop3d-index"):
                    bad.append("left in the Maildir: " + f)
            for f in os.listdir(os.path.join(self.path, "tmp")):
                bad.append("left in tmp/: " + f)
            names = []
            for sub in ("new", "cur"):
                for f in os.listdir(os.path.join(self.path, sub)):
                    names.append((f.split(":")[0], sub, f))
            for _, sub, f in sorted(names):
                with open(os.path.join(self.path, sub, f), "rb") as fh:
                    msgs.append(fh.read())
            return msgs, bad, copies
        nums = []
        for f in os.listdir(self.path):
            if f.isdigit() and not f.startswith("0"):
                nums.append(int(f))
            elif f not in (".mh_sequences", ".pop3d-index"):
                bad.append("left in the MH folder: " + f)
        for k in sorted(nums):
            with open(os.path.join(self.path, str(k)), "rb") as fh:
                msgs.append(fh.read())
        return msgs, bad, copies


# ---------------------------------------------------------------------------------
# Sessions

def login(site, stats):
    """A logged-in session; a maildrop locked by the MDA or by a session not yet reaped
    ([IN-USE]) is tried again, within the bound."""
    deadline = time.monotonic() + BOUND
    while True:
        s = site.inetd()
        r = s.login()
        if r.startswith("+OK"):
            return s
        s.close()
        if "[IN-USE]" not in r or time.monotonic() > deadline:
            raise RuntimeError("login refused: %s\n%s" % (r, getattr(s, "stderr", "")))
        stats["busy"] += 1
        time.sleep(0.005)


def session_pid(conftest, s, path):
    """The process serving the session: the descendant of the inetd-mode monitor that
    has the maildrop open (or the process started, for a pop3d without one)."""
    want = os.path.realpath(path)
    for pid in conftest.descendants(s.proc.pid) + [s.proc.pid]:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == want:
                    return pid
        except OSError:
            continue
    raise RuntimeError("no process below %d has %s open" % (s.proc.pid, path))


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def unread(sock):
    """Bytes the client sent that the server has not read yet."""
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def top_number(s, i):
    r = s.cmd("TOP %d 0" % i)
    if not r.startswith("+OK"):
        raise RuntimeError("TOP %d: %s" % (i, r))
    n = message_number(b"".join(s.multi()))
    if n is None:
        raise RuntimeError("TOP %d: no Message-ID of a torture message" % i)
    return n


def check_session(site, stats):
    """The checker: every message retrieved.  Returns the message numbers in order, the
    problems seen and the session's log."""
    s = login(site, stats)
    bad, nums = [], []
    r = s.cmd("STAT")
    count = int(r.split()[1])
    for i in range(1, count + 1):
        r = s.cmd("RETR %d" % i)
        if not r.startswith("+OK"):
            bad.append("RETR %d: %s" % (i, r))
            continue
        data = b"".join(s.multi())
        n = message_number(data)
        nums.append(n)
        if n is None or data != wire(message(n)):
            bad.append("RETR %d: not a message as delivered (Message-ID %s)" % (i, n))
    r = s.cmd("QUIT")
    s.close()
    if not r.startswith("+OK"):
        bad.append("checker QUIT: " + r)
    return nums, bad, s.stderr.splitlines()


GENERIC = "auth { authentication generic; authorization system; };"


class Torture:
    def __init__(self, conftest, fmt, workdir, rnd, log):
        self.conftest = conftest
        self.rnd = rnd
        self.log = log
        self.site = conftest.Site(workdir)
        # Logins through the generic module against a crypt(3) hash in the passwd file,
        # not PAM: pam_wrapper's per-process scratch directories, left by the sessions
        # this harness kills, make a later pam_start fail now and then.
        self.use_generic(conftest)
        if self.site.root:
            # Real identity changes: the session is the user, files it makes are the
            # user's (under uid_wrapper they would be root's, which pop3d refuses in
            # an update record).
            from test_privsep import real_env
            self.site.env = (lambda e: lambda: dict(e))(real_env(self.site))
        self.fmt = Format(fmt, self.site)
        self.present = list(range(1, INITIAL + 1))
        self.next = INITIAL + 1
        self.fmt.create(self.present)
        self.estimate = 0.01          # seconds (adapt())
        self.stats = {"rounds": 0, "update": 0, "before": 0, "after": 0, "checked": 0,
                      "failures": 0, "delivered": 0, "deleted": 0, "busy": 0,
                      "outlived": 0}
        self.log_of_killed = self.log_of_checker = []

    def use_generic(self, conftest):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        path = os.path.join(self.site.dir, "passwd")
        with open(path) as f:
            lines = f.read().splitlines()
        h = crypt.crypt(conftest.PASSWORDS[USER], crypt.mksalt(crypt.METHOD_SHA512))
        with open(path, "w") as f:
            for l in lines:
                p = l.split(":")
                if p[0] == USER:
                    p[1] = h
                f.write(":".join(p) + "\n")
        write_conf = self.site.write_conf
        self.site.write_conf = lambda extra="", auth=GENERIC: write_conf(extra, auth)

    def adapt(self, where, took):
        """The kill delays are drawn up to an estimate that follows the time QUIT takes:
        1.3 times the QUIT answers seen (so that about a quarter of the kills come
        after the answer and the end of UPDATE is reached too), longer after a kill
        within it, shorter after one that came late."""
        if took is not None:
            self.estimate = 0.5 * self.estimate + 0.5 * 1.3 * took
        else:
            self.estimate *= 0.9 if where == "after" else 1.1
        self.estimate = min(max(self.estimate, 0.0005), 2.0)

    def start_mda(self):
        args = [sys.executable, os.path.abspath(__file__), "--mda", self.fmt.name,
                self.fmt.path, str(self.next), str(self.rnd.getrandbits(32)),
                str(self.fmt.uid), str(self.fmt.gid)]
        mda = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        # Delivering before the session starts: the agent says so first, or exits.
        if mda.stdout.readline() != b"ready\n":
            mda.kill()
            raise RuntimeError("the MDA did not start: " + mda.communicate()[1].decode(
                errors="replace")[-2000:])
        return mda

    def stop_mda(self, mda):
        try:
            out, err = mda.communicate(b"", timeout=BOUND)
        except subprocess.TimeoutExpired:
            mda.kill()
            out, err = mda.communicate()
            raise RuntimeError("the MDA did not stop")
        if mda.returncode != 0:
            raise RuntimeError("the MDA failed: " + err.decode(errors="replace")[-2000:])
        return [int(l) for l in out.split()]

    def round(self):
        st = self.stats
        st["rounds"] += 1
        mda = self.start_mda()
        try:
            where, reply, deleted = self.killed_session()
        finally:
            delivered = self.stop_mda(mda)
        self.next = max([self.next - 1] + delivered) + 1
        st["delivered"] += len(delivered)
        st[where] += 1
        # The maildrop as the kill left it, before the checker completes or cleans.
        snap = os.path.join(os.path.dirname(self.site.dir), "after-kill-" + self.fmt.name)
        shutil.rmtree(snap, ignore_errors=True)
        shutil.copytree(self.fmt.dir, snap, symlinks=True)
        problems = self.check(where, reply, deleted, delivered)
        if problems:
            st["failures"] += 1
            keep = os.path.join(os.path.dirname(self.site.dir),
                                "failure-%s-%d" % (self.fmt.name, st["rounds"]))
            os.rename(snap, keep + "-after-kill")
            shutil.copytree(self.site.dir, keep, symlinks=True)
            self.log("%s round %d: kill %s (QUIT reply %r), %d deleted %s, %d delivered"
                     % (self.fmt.name, st["rounds"], where, reply, len(deleted),
                        sorted(deleted), len(delivered)))
            for p in problems[:40]:
                self.log("  " + p)
            self.log("  killed session's log: " + " | ".join(self.log_of_killed))
            self.log("  checker's log: " + " | ".join(self.log_of_checker))
            self.log("  kept: %s (after the checker), %s-after-kill" % (keep, keep))
            # Start again from what should be there, so one failure is counted once.
            self.fmt.create(self.present)

    def killed_session(self):
        """A session that deletes and quits, killed at a random instant.  Returns where
        the kill landed, the QUIT reply (None if there was none) and the numbers of the
        messages it marked deleted."""
        s = login(self.site, self.stats)
        try:
            pid = session_pid(self.conftest, s, self.fmt.path)
            count = int(s.cmd("STAT").split()[1])
            if count > 200:
                k = self.rnd.randint(10, 40)
            elif self.rnd.random() < 0.1:
                k = 0
            else:
                k = self.rnd.randint(1, 12)
            deleted = []
            for i in sorted(self.rnd.sample(range(1, count + 1), min(k, count))):
                deleted.append(top_number(s, i))
                r = s.cmd("DELE %d" % i)
                if not r.startswith("+OK"):
                    raise RuntimeError("DELE %d: %s" % (i, r))
            # A few kept messages read too: UPDATE records them seen (Maildir renames
            # them into cur/, MH takes them out of `unseen').
            for i in self.rnd.sample(range(1, count + 1), min(self.rnd.randint(0, 5), count)):
                if s.cmd("TOP %d 0" % i).startswith("+OK"):
                    s.multi()
            delay = self.rnd.uniform(0, self.estimate)
            took = None
            t0 = time.perf_counter()
            s.send("QUIT\r\n")
            while time.perf_counter() - t0 < delay:
                if select.select([s.sock], [], [], 0)[0]:
                    took = time.perf_counter() - t0
                    break
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + BOUND
            while proc_state(pid) not in (None, "T", "t", "Z", "X"):
                if time.monotonic() > deadline:
                    raise RuntimeError("session %d did not stop" % pid)
                time.sleep(0.0005)
            if proc_state(pid) in (None, "Z", "X") or select.select([s.sock], [], [], 0)[0]:
                where = "after"
            elif unread(s.sock) > 0:
                where = "before"
            else:
                where = "update"
            self.adapt(where, took)
            if self.rnd.random() < 0.5:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            else:
                self.conftest.kill_tree(s.proc.pid)
            try:
                reply = s.line()
            except ConnectionResetError:     # it died with QUIT unread
                reply = None
        finally:
            s.close()
            self.log_of_killed = getattr(s, "stderr", "").splitlines()
        return where, reply, deleted

    def check(self, where, reply, deleted, delivered):
        """Compare the maildrop with what it must hold; returns the problems."""
        problems = []
        expected = set(self.present) | set(delivered)
        nums, bad, self.log_of_checker = check_session(self.site, self.stats)
        problems += bad
        stored, bad, copies = self.fmt.read()
        problems += bad
        files = []
        for i, data in enumerate(stored):
            n = message_number(data)
            files.append(n)
            if n is None or data != message(n):
                problems.append("stored message %d is not as delivered (Message-ID %s)"
                                % (i + 1, n))
        if sorted(files, key=str) != sorted(nums, key=str):
            problems.append("the files hold %d messages, the session listed %d"
                            % (len(files), len(nums)))
        self.stats["checked"] += len(nums)
        for n in set(nums) | set(files):
            if n not in expected:
                problems.append("message %s was never in the maildrop" % n)
        for n in expected:
            c = nums.count(n)
            if c > 1:
                problems.append("message %d is there %d times" % (n, c))
            elif c == 0 and n not in deleted:
                problems.append("message %d is lost%s" % (
                    n, " (delivered during the round)" if n in delivered else ""))
        gone = [n for n in deleted if n not in nums]
        if gone and len(gone) != len(deleted):
            problems.append("%d of the %d deleted messages are gone (all or none), "
                            "still there: %s" % (len(gone), len(deleted),
                                                 sorted(set(deleted) - set(gone))))
        if reply is not None and reply.startswith("+OK") and gone != deleted:
            problems.append("QUIT answered %r but %d deleted messages are still there"
                            % (reply, len(deleted) - len(gone)))
        if where == "before" and gone:
            problems.append("killed before it read QUIT, yet %d messages are gone"
                            % len(gone))
        if len(gone) == len(deleted):
            self.stats["deleted"] += len(gone)
        self.present = list(dict.fromkeys(n for n in nums if n is not None))
        if copies and not problems:
            problems += self.copies_removed_by_update(copies)
        if len(self.present) > TRIM_ABOVE and not problems:
            # Kills leave most deletions undone: keep the maildrop's size in bounds.
            problems += self.completed_update(self.rnd.sample(
                range(1, len(self.present) + 1), len(self.present) - TRIM_TO))
        return problems

    def completed_update(self, indices):
        """A session that deletes these messages and quits, not killed: QUIT must be
        answered +OK.  The next check finds whether they are gone."""
        s = login(self.site, self.stats)
        try:
            for i in indices:
                n = top_number(s, i)
                r = s.cmd("DELE %d" % i)
                if not r.startswith("+OK"):
                    return ["DELE %d: %s" % (i, r)]
                self.present.remove(n)
            r = s.cmd("QUIT")
        finally:
            s.close()
        return [] if r.startswith("+OK") else ["QUIT of an update not killed: " + r]

    def copies_removed_by_update(self, copies):
        """Temporary files of the mbox (its new copy, named in the instant before its
        rename, or a new index) that the checker session left: the next session
        removes them only when it breaks the dead session's dotlock itself (not when
        the delivery agent broke it first); every update removes them.  Counted
        apart, and a session that deletes a message must remove them."""
        self.stats["outlived"] += 1
        self.log("%s round %d: %s outlived the next session; its log: %s" % (
            self.fmt.name, self.stats["rounds"], " ".join(copies),
            " | ".join(self.log_of_checker)))
        bad = self.completed_update([1])
        if bad:
            return bad
        left = [c for c in copies if os.path.exists(os.path.join(self.fmt.dir, c))]
        return ["left after an update: " + c for c in left]


# ---------------------------------------------------------------------------------

def summary(fmt, st, secs):
    copies = ("" if fmt != "mbox" else
              ", %d times temporary files outlived the next session" % st["outlived"])
    return ("%s: %d rounds, %d kills during UPDATE (%d before QUIT was read, %d after "
            "its reply), %d messages checked, %d failures, %d delivered and %d deleted "
            "meanwhile%s, %.0f s" % (fmt, st["rounds"], st["update"], st["before"],
                                     st["after"], st["checked"], st["failures"],
                                     st["delivered"], st["deleted"], copies, secs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--formats", default="mbox,maildir,mh")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--tap", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--mda", nargs=6, metavar=("FORMAT", "PATH", "FIRST", "SEED", "UID",
                                               "GID"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.mda:
        fmt, path, first, seed, uid, gid = a.mda
        return mda_main(fmt, path, int(first), int(seed), int(uid), int(gid))

    formats = [f for f in a.formats.split(",") if f]
    for f in formats:
        if f not in MDAS:
            ap.error("unknown format " + f)
    out = (lambda s: print("# " + s, flush=True)) if a.tap else (
        lambda s: print(s, flush=True))
    if a.tap:
        print("1..%d" % len(formats), flush=True)

    def skip_all(why):
        for i, f in enumerate(formats, 1):
            print("ok %d - %s # SKIP %s" % (i, f, why) if a.tap else "%s: skipped: %s"
                  % (f, why), flush=True)
        return 0

    sys.dont_write_bytecode = True      # nothing written into the source tree
    sys.path.insert(0, E2E)
    try:
        import conftest
    except ImportError as e:
        return skip_all("the end-to-end harness cannot be imported (%s)" % e)
    if not os.path.exists(conftest.POP3D):
        return skip_all("pop3d is not built: " + conftest.POP3D)
    if not (conftest.PAM_WRAPPER and conftest.NSS_WRAPPER and conftest.UID_WRAPPER
            and conftest.PAM_MATRIX):
        return skip_all("cwrap packages missing (libpam-wrapper libnss-wrapper "
                        "libuid-wrapper)")
    seed = a.seed if a.seed is not None else random.SystemRandom().getrandbits(32)
    out("seed %d (--seed %d repeats the choices, not the timing)" % (seed, seed))
    top = tempfile.mkdtemp(prefix="pop3d-torture-")
    os.chmod(top, 0o755)            # the users reach their maildrops
    failed = 0
    for i, f in enumerate(formats, 1):
        if f == "mbox" and shutil.which("dotlockfile") is None:
            print("ok %d - mbox # SKIP dotlockfile not found (package liblockfile-bin)" % i
                  if a.tap else "mbox: skipped: dotlockfile not found (liblockfile-bin)",
                  flush=True)
            continue
        work = os.path.join(top, f)
        os.mkdir(work, 0o755)
        t = Torture(conftest, f, work, random.Random("%d/%s" % (seed, f)), out)
        t0 = time.monotonic()
        error = None
        try:
            for _ in range(a.rounds):
                t.round()
        except Exception as e:      # the harness itself failed: say where
            error = "%s round %d: %s: %s" % (f, t.stats["rounds"], type(e).__name__, e)
            out(error)
        finally:
            t.site.cleanup()
        line = summary(f, t.stats, time.monotonic() - t0)
        bad = t.stats["failures"] > 0 or error is not None
        failed += bad
        if a.tap:
            print("%s %d - %s" % ("not ok" if bad else "ok", i, line), flush=True)
        else:
            print(line, flush=True)
    if failed or a.keep:
        out("work directory kept: " + top)
    else:
        shutil.rmtree(top, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
