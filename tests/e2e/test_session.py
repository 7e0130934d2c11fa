"""RFC 1939 session end to end: every command, errors, CAPA, pipelining, hostile input,
UPDATE semantics, locking, crash safety."""
import fcntl
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
import tty

import pytest

from conftest import PASSWORDS, POP3D, descendants, kill_tree, mbox_of, msg, wire

MSGS = [msg(1), msg(2, ".leading dot\n..two dots\n.\nend\n"), msg(3)]

def test_greeting(site):
    """+OK, and no APOP timestamp while APOP is not offered: clients such as curl choose
    APOP whenever the greeting carries one (RFC 1939 section 7)."""
    site.write_mbox(MSGS)
    s = site.inetd()
    assert s.greeting == "+OK POP3 Ready"
    assert s.cmd("APOP alice 0123456789abcdef0123456789abcdef") == "-ERR Invalid command"
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert s.returncode == 0

def test_capa_per_state(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    assert s.cmd("CAPA") == "+OK Capability list follows"
    pre = [l.decode().strip() for l in s.multi()]
    for c in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
              "EXPIRE NEVER"):
        assert c in pre
    assert any(l.startswith("IMPLEMENTATION ") for l in pre)
    assert s.login().startswith("+OK opened mailbox for alice")
    assert s.cmd("CAPA").startswith("+OK")
    post = [l.decode().strip() for l in s.multi()]
    assert "USER" not in post
    assert "TOP" in post and "UIDL" in post and "PIPELINING" in post
    s.cmd("QUIT")
    s.close()

def test_capa_expire_and_xlines(site):
    site.write_conf("expire 5; scan-lines yes;")
    site.write_mbox(MSGS)
    s = site.inetd()
    s.cmd("CAPA")
    caps = [l.decode().strip() for l in s.multi()]
    assert "EXPIRE 5" in caps and "XLINES" in caps and "EXPIRE NEVER" not in caps
    s.login()
    r = s.cmd("LIST 1")
    assert len(r.split()) == 4   # +OK n size lines
    s.cmd("QUIT")
    s.close()

def test_transaction_commands(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    assert s.cmd("STAT") == "-ERR Incorrect state"
    assert s.cmd("PASS x").startswith("-ERR")
    assert s.login().startswith("+OK")
    sizes = [len(wire(m)) for m in MSGS]
    assert s.cmd("STAT") == "+OK 3 %d" % sum(sizes)
    assert s.cmd("LIST").startswith("+OK 3 messages")
    assert [l.decode().strip() for l in s.multi()] == ["%d %d" % (i + 1, z)
                                                       for i, z in enumerate(sizes)]
    assert s.cmd("LIST 2") == "+OK 2 %d" % sizes[1]
    r = s.cmd("RETR 2")
    assert r == "+OK %d octets" % sizes[1]
    assert b"".join(s.multi()) == wire(MSGS[1])
    assert s.cmd("TOP 1 0").startswith("+OK")
    top = b"".join(s.multi())
    assert top == wire(MSGS[0].split("\n\n")[0] + "\n\n")
    assert s.cmd("TOP 1 1").startswith("+OK")
    assert b"".join(s.multi()).endswith(b"\r\n\r\nThis is message 1.\r\n")
    assert s.cmd("UIDL").startswith("+OK")
    uids = [l.decode().split() for l in s.multi()]
    assert [u[0] for u in uids] == ["1", "2", "3"]
    assert len(set(u[1] for u in uids)) == 3
    for _, u in uids:
        assert 1 <= len(u) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in u)
    assert s.cmd("UIDL 3") == "+OK 3 " + uids[2][1]
    assert s.cmd("NOOP") == "+OK"
    assert s.cmd("DELE 1") == "+OK Message 1 marked"
    assert s.cmd("DELE 1") == "-ERR Message has been deleted"
    assert s.cmd("RETR 1") == "-ERR Message has been deleted"
    assert s.cmd("LIST 1") == "-ERR Message has been deleted"
    assert s.cmd("STAT") == "+OK 2 %d" % (sizes[1] + sizes[2])
    assert s.cmd("RSET").startswith("+OK")
    assert s.cmd("STAT") == "+OK 3 %d" % sum(sizes)
    assert s.cmd("USER bob") == "-ERR Incorrect state"
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert s.returncode == 0

@pytest.mark.parametrize("arg,reply", [
    ("0", "-ERR No such message"),
    ("4", "-ERR No such message"),
    ("-1", "-ERR Invalid message number"),
    ("99999999999", "-ERR No such message"),
    ("99999999999999999999999", "-ERR No such message: number too large"),
    ("1x", "-ERR Invalid message number"),
    ("", "-ERR Invalid arguments"),
])
def test_bad_message_numbers(site, arg, reply):
    site.write_mbox(MSGS)
    s = site.inetd()
    s.login()
    for c in ("RETR", "LIST", "DELE", "UIDL"):
        if arg == "" and c in ("LIST", "UIDL"):
            continue
        assert s.cmd(("%s %s" % (c, arg)).rstrip()) == reply, c
    assert s.cmd("TOP %s 1" % arg if arg else "TOP") == reply
    assert s.cmd("STAT").startswith("+OK 3 ")
    s.cmd("QUIT")
    s.close()

def test_arguments_checked(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    assert s.cmd("QUIT now") == "-ERR Invalid arguments"
    assert s.cmd("USER") == "-ERR Invalid arguments"
    assert s.cmd("XYZZY") == "-ERR Invalid command"
    s.login()
    assert s.cmd("STAT 1") == "-ERR Invalid arguments"
    assert s.cmd("TOP 1") == "-ERR Invalid arguments"
    assert s.cmd("TOP 1 x").startswith("-ERR Invalid arguments")
    assert s.cmd("TOP 1 -1").startswith("-ERR Invalid arguments")
    assert s.cmd("noop") == "+OK"     # commands are case-insensitive
    s.cmd("QUIT")
    s.close()

def test_bad_login(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    assert s.login(password="wrong") == "-ERR [AUTH] Bad login"
    assert s.login(user="nosuchuser", password="x") == "-ERR [AUTH] Bad login"
    assert s.login().startswith("+OK")    # the session goes on after a failure
    s.cmd("QUIT")
    s.close()

def test_password_with_spaces(site):
    site.write_mbox(MSGS, user="bob")
    if not site.root:
        pytest.skip("serving a second user needs root (uid_wrapper)")
    s = site.inetd()
    assert s.login(user="bob").startswith("+OK opened mailbox for bob")
    s.cmd("QUIT")
    s.close()

def test_too_many_login_failures_close(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    for i in range(3):
        assert s.login(password="bad%d" % i) == "-ERR [AUTH] Bad login"
    assert s.line() is None
    s.close()

def test_pipelining(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    s.send("USER alice\r\nPASS %s\r\nSTAT\r\nLIST\r\nRETR 1\r\nNOOP\r\nDELE 3\r\nQUIT\r\n"
           % PASSWORDS["alice"])
    assert s.line().startswith("+OK")
    assert s.line().startswith("+OK opened")
    assert s.line().startswith("+OK 3 ")
    assert s.line().startswith("+OK 3 messages")
    assert len(s.multi()) == 3
    assert s.line().startswith("+OK")
    assert b"".join(s.multi()) == wire(MSGS[0])
    assert s.line() == "+OK"
    assert s.line() == "+OK Message 3 marked"
    assert s.line().startswith("+OK")
    s.close()
    assert site.read_mbox() == mbox_of(MSGS[:2]).encode()

def test_long_line_and_nul(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    s.send("X" * 1000 + "\r\nNOOP\r\n")
    assert s.line() == "-ERR Line too long"
    assert s.line() == "-ERR Incorrect state"     # NOOP, in AUTHORIZATION
    s.send("US\0ER alice\r\n")
    assert s.line().startswith("-ERR")
    # the long line was not echoed nor run as a second command
    s.send("USER " + "a" * 300 + "\r\n")
    assert s.line() == "-ERR Line too long"
    assert s.login().startswith("+OK")
    s.cmd("QUIT")
    s.close()

def test_too_many_bad_commands(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    for _ in range(9):
        assert s.cmd("BOGUS") == "-ERR Invalid command"
    assert s.cmd("BOGUS") == "-ERR Invalid command"
    assert s.line().startswith("-ERR Too many bad commands")
    assert s.line() is None
    s.close()

def test_dele_quit_removes_exactly_those(site):
    msgs = [msg(i) for i in range(1, 11)]
    site.write_mbox(msgs)
    s = site.inetd()
    s.login()
    for n in (2, 5, 10):
        assert s.cmd("DELE %d" % n).startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    keep = [m for i, m in enumerate(msgs, 1) if i not in (2, 5, 10)]
    assert site.read_mbox() == mbox_of(keep).encode()

def test_dele_then_eof_removes_nothing(site):
    site.write_mbox(MSGS)
    before = site.read_mbox()
    s = site.inetd()
    s.login()
    s.cmd("DELE 1")
    s.cmd("DELE 2")
    s.sock.shutdown(socket.SHUT_WR)
    assert s.line() is None
    s.close()
    assert s.returncode == 76          # EOF in TRANSACTION, as Mailutils
    assert site.read_mbox() == before
    # and the lock is gone: a new session opens the maildrop
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("STAT").startswith("+OK 3 ")
    s.cmd("QUIT")
    s.close()

def test_second_session_in_use(site):
    site.write_mbox(MSGS)
    a = site.inetd()
    assert a.login().startswith("+OK")
    b = site.inetd()
    assert b.login() == "-ERR [IN-USE] Mailbox in use"
    b.close()
    a.cmd("QUIT")
    a.close()

def test_append_during_session_survives_update(site):
    site.write_mbox(MSGS)
    s = site.inetd()
    s.login()
    assert s.cmd("DELE 1").startswith("+OK")
    new = mbox_of([msg(99)])
    with open(site.mbox_path(), "a") as f:     # an MDA that appends meanwhile
        f.write(new)
    assert s.cmd("STAT").startswith("+OK 2 ")  # sizes don't change during a session
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert site.read_mbox() == (mbox_of(MSGS[1:]) + new).encode()

def test_crlf_stored_mail_keeps_body(site):
    m = "Subject: crlf\r\nFrom: a@b\r\n\r\nbody line 1\r\nbody line 2\r\n"
    raw = "From a@b Mon Nov 23 10:00:00 2026\r\n" + m + "\r\n"
    site.write_mbox(None, raw=raw)
    s = site.inetd()
    s.login()
    r = s.cmd("RETR 1")
    body = b"".join(s.multi())
    assert b"body line 1\r\nbody line 2\r\n" in body
    assert r == "+OK %d octets" % len(body)
    s.cmd("QUIT")
    s.close()

def test_from_quoting_and_no_final_newline(site):
    m1 = "Subject: q\n\n>From the start\n>>From two\n"
    raw = ("From a@b Mon Nov 23 10:00:00 2026\n" + m1 + "\n" +
           "From c@d Mon Nov 23 10:00:01 2026\nSubject: last\n\nno newline")
    site.write_mbox(None, raw=raw)
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 2 ")
    r = s.cmd("RETR 1")
    b1 = b"".join(s.multi())
    assert b1 == b"Subject: q\r\n\r\nFrom the start\r\n>From two\r\n"
    assert r == "+OK %d octets" % len(b1)
    r = s.cmd("RETR 2")
    b2 = b"".join(s.multi())
    assert b2 == b"Subject: last\r\n\r\nno newline\r\n"
    assert r == "+OK %d octets" % len(b2)
    s.cmd("QUIT")
    s.close()

def test_empty_and_missing_maildrop(site):
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("STAT") == "+OK 0 0"
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert not os.path.exists(site.mbox_path())

def test_uidl_stable_and_x_uidl_honoured(site):
    msgs = [msg(1, extra_headers="X-UIDL: mailutils-uid-0001\n"), msg(2), msg(2)]
    site.write_mbox(msgs)
    def uidls():
        s = site.inetd()
        s.login()
        s.cmd("UIDL")
        u = [l.decode().split()[1] for l in s.multi()]
        s.cmd("QUIT")
        s.close()
        return u
    first = uidls()
    assert first[0] == "mailutils-uid-0001"
    assert first[1] != first[2]            # identical messages still get distinct ids
    assert uidls() == first
    # deleting message 1 changes no other id
    s = site.inetd()
    s.login()
    s.cmd("DELE 1")
    s.cmd("QUIT")
    s.close()
    assert uidls() == first[1:]

def test_symlink_maildrop_refused(site, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text(mbox_of(MSGS))
    os.symlink(str(target), site.mbox_path())
    s = site.inetd()
    r = s.login()
    assert r.startswith("-ERR [SYS/")
    s.close()

def test_idle_timeout(site):
    site.write_conf("timeout 1;")
    site.write_mbox(MSGS)
    s = site.inetd()
    s.login()
    t0 = time.monotonic()
    assert s.line() == "-ERR Session timed out"
    assert s.line() is None
    s.close()
    assert s.returncode == 75
    assert time.monotonic() - t0 < 15

def test_write_timeout_releases_lock(site):
    """A client that stops reading in the middle of RETR can't hold the lock forever."""
    site.write_conf("timeout 2;")
    big = "Subject: big\n\n" + ("x" * 998 + "\n") * 20000    # 20 MB
    site.write_mbox([big])
    s = site.inetd()
    s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.login()
    s.send("RETR 1\r\n")               # and never read
    s.proc.wait(timeout=30)
    assert s.proc.returncode != 0
    s.close()
    # The message did not get through: the end-of-session line doesn't count it.
    assert re.search(r"user alice, 0 messages \(0 octets\) retrieved", s.stderr), s.stderr
    s2 = site.inetd()
    assert s2.login().startswith("+OK")
    s2.cmd("QUIT")
    s2.close()

def test_eof_on_pipe_ends_cleanly(site):
    """inetd over ssh: stdin is a pipe that reaches EOF."""
    site.write_mbox(MSGS)
    p = subprocess.run([POP3D, "-i", "--config-file=" + site.conf],
                       input=b"USER alice\r\nPASS %s\r\nSTAT\r\n" % PASSWORDS["alice"].encode(),
                       capture_output=True, env=site.env(), timeout=20)
    out = p.stdout.decode()
    assert out.count("+OK") == 4
    assert p.returncode == 76

def test_sigkill_during_update_never_loses_mail(site):
    """SIGKILL at 20+ instants during the UPDATE of a large mailbox: the maildrop is
    always exactly the old or exactly the new one."""
    msgs = [msg(i, "body %d\n" % i + "y" * 500 + "\n") for i in range(4000)]
    old = mbox_of(msgs).encode()
    new = mbox_of([m for i, m in enumerate(msgs) if i % 2]).encode()
    dele = "".join("DELE %d\r\n" % (i + 1) for i in range(0, len(msgs), 2))

    def run(delay):
        site.write_mbox(None, raw=old)
        s = site.inetd()
        s.login()
        s.send(dele)
        for _ in range(0, len(msgs), 2):
            assert s.line().startswith("+OK")
        s.send("QUIT\r\n")
        if delay is None:
            assert s.line().startswith("+OK")
        else:
            time.sleep(delay)
            kill_tree(s.proc.pid)
        s.close()
        for f in os.listdir(site.spool):       # leftovers are never mail
            if f not in ("alice",) and not f.startswith("."):
                assert f.endswith(".lock"), f
        return site.read_mbox()

    t0 = time.monotonic()
    assert run(None) == new
    span = max(time.monotonic() - t0, 0.05)
    seen = set()
    for k in range(24):
        data = run(span * k / 24 / 2)
        assert data in (old, new), "round %d: maildrop is neither old nor new" % k
        seen.add(data == new)
    # (both outcomes are normally seen; the invariant is what matters)

def test_inetd_on_a_terminal_leaves_its_flags(site):
    """pop3d -i on a terminal shares the open terminal with the shell: the non-blocking
    mode its processes need is put back when the session ends."""
    site.write_mbox(MSGS)
    master, slave = pty.openpty()
    tty.setraw(slave)
    before = fcntl.fcntl(slave, fcntl.F_GETFL)
    p = subprocess.Popen([POP3D, "-i", "--config-file=" + site.conf], stdin=slave,
                         stdout=slave, stderr=subprocess.PIPE, env=site.env())
    site.procs.append(p)
    got = b""
    deadline = time.monotonic() + 20
    while b"\r\n" not in got and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            got += os.read(master, 4096)
    assert got.startswith(b"+OK"), got
    os.write(master, b"QUIT\r\n")
    p.wait(timeout=20)
    after = fcntl.fcntl(slave, fcntl.F_GETFL)
    os.close(master)
    os.close(slave)
    assert not after & os.O_NONBLOCK and after == before, (before, after)

def _sleeping(pid):
    """Is pid in nanosleep or clock_nanosleep (x86-64 35, 230)?"""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split()[0] in ("35", "230")
    except (OSError, IndexError):
        return False

def test_lock_hand_over(site):
    """The lock goes before the QUIT answer; a session waiting for it takes it as soon as
    it is free, not retry-sleep later (here 30 s, with one retry)."""
    site.write_conf('locking { retry-count 2; retry-sleep 30; };')
    site.write_mbox(MSGS)
    a = site.inetd()
    assert a.login().startswith("+OK")
    lock = site.mbox_path() + ".lock"
    with open(lock) as f:
        a_holder = f.read().strip()        # the dotlock holds its holder's pid
    assert a_holder
    b = site.inetd()
    assert b.cmd("USER alice").startswith("+OK")
    b.send("PASS %s\r\n" % PASSWORDS["alice"])
    deadline = time.monotonic() + 20
    while not any(_sleeping(p) for p in [b.proc.pid] + descendants(b.proc.pid)):
        assert time.monotonic() < deadline, "the second session never waited for the lock"
        time.sleep(0.01)
    assert a.cmd("DELE 1").startswith("+OK")
    assert a.cmd("QUIT").startswith("+OK")
    # At the answer the first session's lock is gone: no dotlock, or the waiting
    # session's already.
    try:
        with open(lock) as f:
            holder = f.read().strip()
    except FileNotFoundError:
        holder = None
    assert holder != a_holder
    a.close()
    b.sock.settimeout(10)
    t0 = time.monotonic()
    assert b.line().startswith("+OK")
    assert time.monotonic() - t0 < 10
    assert b.cmd("STAT").startswith("+OK 2 ")
    assert b.cmd("QUIT").startswith("+OK")
    b.close()
