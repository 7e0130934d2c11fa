"""The seed features end to end: login delay, auto-expire, bulletins, undelete, and the
rule against forged headers.  Times in the past are written into the databases and the
mail instead of waiting.  Where Debian's GNU Mailutils pop3d is installed, the same
sessions run against it too (test_mailutils_*), with every intended difference named."""
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import PASSWORDS, Site, mbox_of, msg, wire

try:
    import dbm.gnu as gdbm
except ImportError:            # Debian: python3-gdbm
    gdbm = None

needs_gdbm = pytest.mark.skipif(gdbm is None, reason="python3-gdbm (dbm.gnu) not installed")
MAILUTILS = "/usr/sbin/pop3d"
REFUSAL = "-ERR [LOGIN-DELAY] Attempt to log in within the minimum login delay interval"
DAY = 86400


def from_line(ts, sender="sender@example.org"):
    """An mbox From_ line dated ts, in local time as MDAs write it (asctime form)."""
    return "From %s %s\n" % (sender, time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(ts)))


def mbox_dated(items):
    """items: (delivery time, message text) pairs."""
    out = []
    for ts, m in items:
        out.append(from_line(ts))
        out.append(m if m.endswith("\n") else m + "\n")
        out.append("\n")
    return "".join(out)


def db_write(path, items):
    with gdbm.open(path, "c", 0o600) as db:
        for k, v in items.items():
            db[k.encode()] = str(v).encode()
    os.chmod(path, 0o600)


def db_read(path):
    with gdbm.open(path, "r") as db:
        out = {}
        k = db.firstkey()
        while k is not None:
            out[k] = db[k]
            k = db.nextkey(k)
        return out


def capa(s):
    assert s.cmd("CAPA") == "+OK Capability list follows"
    return [l.decode().strip() for l in s.multi()]


def headers_of(data, n):
    """Header block (text) of the n-th message (1-based) of mbox bytes."""
    msgs = re.split(rb"\n\n(?=From )", data)
    return msgs[n - 1].split(b"\n\n", 1)[0].decode()


def quit_ok(s):
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert s.returncode == 0, s.stderr


# ---- login delay --------------------------------------------------------------------

@pytest.fixture
def delay_site(site):
    site.statdb = os.path.join(site.dir, "login.db")
    site.write_conf('login-delay 60; stat-file "%s";' % site.statdb)
    site.write_mbox([msg(1)])
    site.write_mbox([msg(1)], user="bob")
    return site


@needs_gdbm
def test_login_delay_hit_and_miss(delay_site):
    site = delay_site
    now = int(time.time())
    db_write(site.statdb, {"alice": now - 10, "bob": now - 120})
    s = site.inetd()
    assert s.login() == REFUSAL
    # Refused: the session stays in AUTHORIZATION, nothing is recorded.
    assert s.cmd("STAT") == "-ERR Incorrect state"
    quit_ok(s)
    assert db_read(site.statdb)[b"alice"] == str(now - 10).encode()
    s = site.inetd()
    assert s.login("bob").startswith("+OK opened mailbox for bob")
    quit_ok(s)
    # Mailutils' format: the key without NUL, decimal Unix seconds without NUL.
    v = db_read(site.statdb)[b"bob"]
    assert re.fullmatch(rb"[0-9]+", v) and abs(int(v) - now) < 30
    # The next login of bob, right after, is within the delay.
    s = site.inetd()
    assert s.login("bob") == REFUSAL
    quit_ok(s)


@needs_gdbm
def test_login_delay_new_db_created_safely(delay_site):
    site = delay_site
    s = site.inetd()
    assert s.login().startswith("+OK")
    quit_ok(s)
    st = os.stat(site.statdb)
    assert st.st_mode & 0o777 == 0o600
    assert b"alice" in db_read(site.statdb)


@needs_gdbm
def test_login_delay_wrong_password_is_auth(delay_site):
    """Inside the delay a wrong password still gets [AUTH]: no account harvesting."""
    site = delay_site
    db_write(site.statdb, {"alice": int(time.time())})
    s = site.inetd()
    assert s.login(password="wrong") == "-ERR [AUTH] Bad login"
    assert s.login(user="nosuchuser", password="x") == "-ERR [AUTH] Bad login"
    assert s.login() == REFUSAL
    quit_ok(s)


@needs_gdbm
def test_login_delay_capa_both_states(delay_site):
    site = delay_site
    s = site.inetd()
    assert "LOGIN-DELAY 60" in capa(s)
    assert s.login().startswith("+OK")
    assert "LOGIN-DELAY 60" in capa(s)
    quit_ok(s)


def test_login_delay_unusable_db(delay_site):
    """A stat-file that can't be opened read-write: one log line, then no delay."""
    site = delay_site
    for bad in (os.path.join(site.dir, "nodir", "login.db"), "symlink", "groupwritable"):
        if bad == "symlink":
            target = os.path.join(site.dir, "target.db")
            open(target, "w").close()
            bad = os.path.join(site.dir, "link.db")
            if not os.path.lexists(bad):
                os.symlink(target, bad)
        elif bad == "groupwritable":
            bad = os.path.join(site.dir, "gw.db")
            open(bad, "w").close()
            os.chmod(bad, 0o660)
        site.write_conf('login-delay 60; stat-file "%s";' % bad)
        for _ in range(2):
            s = site.inetd()
            assert s.login().startswith("+OK opened mailbox")
            assert not any(c.startswith("LOGIN-DELAY") for c in capa(s))
            quit_ok(s)
            assert "Unable to open statistics db: " in s.stderr, s.stderr


@needs_gdbm
def test_login_delay_concurrent_logins(delay_site):
    """Six sessions of one user log in at once: exactly one gets in; the database stays
    readable and none of them waits long."""
    site = delay_site
    sessions = [site.inetd() for _ in range(6)]
    for s in sessions:
        s.send("USER alice\r\n")
    for s in sessions:
        assert s.line().startswith("+OK")
    t0 = time.monotonic()
    for s in sessions:
        s.send("PASS %s\r\n" % PASSWORDS["alice"])
    replies = [s.line() for s in sessions]
    assert time.monotonic() - t0 < 15
    assert sum(r.startswith("+OK opened mailbox") for r in replies) == 1, replies
    assert all(r.startswith("+OK") or r == REFUSAL for r in replies), replies
    for s in sessions:
        s.cmd("QUIT")
        s.close()
    assert set(db_read(site.statdb)) == {b"alice"}


GENERIC = "auth { authentication generic; authorization system; };"


def add_users(site, names):
    """More users for the site (passwd with crypt(3) hashes for the generic module, PAM
    passdb, an mbox each); their password is their name reversed.  Many sessions at
    once use the generic module: pam_wrapper's set-up races with itself."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
    with open(os.path.join(site.dir, "passwd"), "a") as pw, open(site.passdb, "a") as pd:
        for i, u in enumerate(names):
            uid = 2000 + i if site.root else os.getuid()
            site.uids[u] = uid
            h = os.path.join(site.dir, "home", u)
            os.mkdir(h)
            if site.root:
                os.chown(h, uid, site.gid)
            pw.write("%s:%s:%d:%d:%s:%s:/bin/sh\n" % (
                u, crypt.crypt(u[::-1], crypt.mksalt(crypt.METHOD_SHA512)), uid, site.gid,
                u, h))
            pd.write("%s:%s:gnu-pop3d\n" % (u, u[::-1]))
            site.write_mbox([msg(1)], user=u)


@needs_gdbm
def test_login_delay_many_children_no_lost_updates(site):
    """The standalone listener with many children at once: 8 users log in 3 times each,
    all at the same moment, on a database that already holds 300 other users.  Exactly
    one login of each user gets in, every one of them is recorded, no other entry is
    lost or changed, and the file stays a valid GDBM database."""
    users = ["user%d" % i for i in range(8)]
    add_users(site, users)
    statdb = os.path.join(site.dir, "login.db")
    others = {"other%03d" % i: 1000000000 + i for i in range(300)}
    db_write(statdb, others)
    # The listener's configuration with the generic module instead of PAM.
    write_conf = site.write_conf
    site.write_conf = lambda extra="", auth=GENERIC: write_conf(extra, auth)
    # 24 connections at once from one address: more than max-preauth-per-source allows.
    _, port = site.daemon(max_children=40,
                          extra_conf='login-delay 60; stat-file "%s";\n'
                                     'max-preauth-per-source 0;' % statdb)
    sessions = [(u, site.connect(port)) for u in users for _ in range(3)]
    for u, s in sessions:
        s.send("USER %s\r\n" % u)
    for u, s in sessions:
        assert s.line().startswith("+OK")
    t0 = time.monotonic()
    for u, s in sessions:
        s.send("PASS %s\r\n" % u[::-1])
    replies = [(u, s.line()) for u, s in sessions]
    assert time.monotonic() - t0 < 20
    for u in users:
        mine = [r for v, r in replies if v == u]
        assert sum(r.startswith("+OK opened mailbox") for r in mine) == 1, (u, mine)
        assert all(r.startswith("+OK") or r == REFUSAL for r in mine), (u, mine)
    for _, s in sessions:
        s.cmd("QUIT")
        s.close()
    got = db_read(statdb)
    now = int(time.time())
    for k, v in others.items():
        assert got[k.encode()] == str(v).encode()
    for u in users:
        assert abs(int(got[u.encode()]) - now) < 60
    assert len(got) == len(others) + len(users)


@needs_gdbm
def test_login_delay_db_survives_killed_sessions(site):
    """Sessions killed (SIGKILL) at whatever point of their update they have reached
    leave the database whole: the other entries intact, each entry a number, and the
    file usable by the next login."""
    import signal
    users = ["user%d" % i for i in range(8)]
    add_users(site, users)
    statdb = os.path.join(site.dir, "login.db")
    others = {"other%03d" % i: 1000000000 + i for i in range(300)}
    db_write(statdb, others)
    site.write_conf('login-delay 60; stat-file "%s";' % statdb, auth=GENERIC)
    sessions = [(u, site.inetd()) for u in users]
    for u, s in sessions:
        s.send("USER %s\r\nPASS %s\r\n" % (u, u[::-1]))
    for k, (u, s) in enumerate(sessions):
        if k % 2:
            s.proc.send_signal(signal.SIGKILL)
    for u, s in sessions:
        s.close()
    got = db_read(statdb)
    for k, v in others.items():
        assert got[k.encode()] == str(v).encode()
    assert all(re.fullmatch(rb"[0-9]+", v) for v in got.values())
    # The survivors were recorded; the database still works for everyone.
    for k, u in enumerate(users):
        if k % 2 == 0:
            assert u.encode() in got
    s = site.inetd()
    assert s.login(users[0], users[0][::-1]) == REFUSAL
    quit_ok(s)
    with gdbm.open(statdb, "w") as db:
        db[users[1].encode()] = b"1000000000"
    s = site.inetd()
    assert s.login(users[1], users[1][::-1]).startswith("+OK opened mailbox")
    quit_ok(s)


def test_login_delay_daemon_mode(site):
    """The standalone listener: the second login within the delay is refused."""
    if gdbm is None:
        pytest.skip("python3-gdbm missing")
    statdb = os.path.join(site.dir, "login.db")
    site.write_mbox([msg(1)])
    _, port = site.daemon(extra_conf='login-delay 60; stat-file "%s";' % statdb)
    s = site.connect(port)
    assert s.login().startswith("+OK")
    s.cmd("QUIT")
    s.close()
    s = site.connect(port)
    assert s.login() == REFUSAL
    s.cmd("QUIT")
    s.close()


# ---- auto-expire ----------------------------------------------------------------------

MARK_RE = re.compile(r"^X-Expire-Timestamp: ([0-9]+)$", re.M)


def marks(data, n):
    return [int(v) for v in MARK_RE.findall(headers_of(data, n))]


def test_expire_marks_after_retr_and_top_not_list(site):
    site.write_conf("expire 5;")
    msgs = [msg(1), msg(2), msg(3), msg(4)]
    site.write_mbox(msgs)
    before = site.read_mbox()
    s = site.inetd()
    s.login()
    sizes = [len(wire(m)) for m in msgs]
    assert s.cmd("UIDL").startswith("+OK")
    uids = [l.decode().split()[1] for l in s.multi()]
    assert s.cmd("RETR 1").startswith("+OK")
    s.multi()
    assert s.cmd("TOP 2 0").startswith("+OK")
    s.multi()
    assert s.cmd("LIST 3").startswith("+OK")
    assert s.cmd("UIDL 4").startswith("+OK")
    # Sizes and ids do not change during the session.
    assert s.cmd("STAT") == "+OK 4 %d" % sum(sizes)
    assert s.cmd("LIST 1") == "+OK 1 %d" % sizes[0]
    t0 = int(time.time())
    quit_ok(s)
    after = site.read_mbox()
    assert len(marks(after, 1)) == 1 and abs(marks(after, 1)[0] - t0) < 30
    assert len(marks(after, 2)) == 1
    assert marks(after, 3) == [] and marks(after, 4) == []
    # Only the marked messages changed; the header line sits before the blank line.
    assert headers_of(after, 3) == headers_of(before, 3)
    assert headers_of(after, 1).endswith("\nX-Expire-Timestamp: %d\nX-UIDL: %s"
                                         % (marks(after, 1)[0], uids[0]))
    assert after.split(b"\n\n", 1)[1].startswith(b"This is message 1.")
    # Ids survive the change of the header; bodies are intact.
    s = site.inetd()
    s.login()
    assert s.cmd("UIDL").startswith("+OK")
    assert [l.decode().split()[1] for l in s.multi()] == uids
    assert s.cmd("RETR 3").startswith("+OK")
    assert b"".join(s.multi()) == wire(msgs[2])
    quit_ok(s)


def test_expire_nothing_without_quit(site):
    site.write_conf("expire 5;")
    site.write_mbox([msg(1), msg(2)])
    before = site.read_mbox()
    s = site.inetd()
    s.login()
    assert s.cmd("RETR 1").startswith("+OK")
    s.multi()
    s.close()
    assert site.read_mbox() == before


def test_expire_never_no_marks(site):
    site.write_mbox([msg(1)])
    before = site.read_mbox()
    s = site.inetd()
    s.login()
    assert "EXPIRE NEVER" in capa(s)
    s.cmd("RETR 1")
    s.multi()
    quit_ok(s)
    assert site.read_mbox() == before


def test_expire_keeps_first_mark(site):
    site.write_conf("expire 5;")
    now = int(time.time())
    m1 = msg(1, extra_headers="X-Expire-Timestamp: %d\n" % (now - DAY))
    site.write_mbox(None, raw=mbox_dated([(now - 2 * DAY, m1), (now - 2 * DAY, msg(2))]))
    before = site.read_mbox()
    s = site.inetd()
    s.login()
    s.cmd("RETR 1")
    s.multi()
    quit_ok(s)
    after = site.read_mbox()
    assert marks(after, 1) == [now - DAY]
    assert after == before      # nothing to write


def test_delete_expired(site):
    now = int(time.time())
    old = now - 20 * DAY
    items = [(old, msg(1, extra_headers="X-Expire-Timestamp: %d\n" % (now - 10 * DAY))),
             (old, msg(2, extra_headers="X-Expire-Timestamp: %d\n" % (now - 2 * DAY))),
             (old, msg(3))]
    site.write_conf("expire 5;")
    site.write_mbox(None, raw=mbox_dated(items))
    s = site.inetd()
    s.login()
    quit_ok(s)
    assert site.read_mbox().count(b"\nFrom ") == 2      # without delete-expired: kept
    site.write_conf("expire 5; delete-expired yes;")
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 3 ")           # expiry happens at QUIT
    r = s.cmd("QUIT")
    assert r == "+OK POP3 server signing off (1 messages deleted)", r
    s.close()
    data = site.read_mbox()
    assert b"Subject: test 1\n" not in data
    assert b"Subject: test 2\n" in data and b"Subject: test 3\n" in data


def test_expire_0_means_no_mail_left(site):
    site.write_conf("expire 0; delete-expired no;")     # expire 0 implies delete-expired
    site.write_mbox([msg(1), msg(2), msg(3)])
    s = site.inetd()
    s.login()
    assert "EXPIRE 0" in capa(s)
    s.cmd("RETR 1")
    s.multi()
    s.cmd("TOP 2 1")
    s.multi()
    assert s.cmd("QUIT") == "+OK POP3 server signing off (2 messages deleted)"
    s.close()
    data = site.read_mbox()
    assert b"Subject: test 1\n" not in data and b"Subject: test 2\n" not in data
    assert b"Subject: test 3\n" in data and b"X-Expire" not in data


def test_expire_mark_crlf_header_and_no_body(site):
    site.write_conf("expire 5;")
    raw = ("From a@example.org Mon Nov 23 09:00:00 2026\n"
           "Subject: crlf\r\nFrom: a@example.org\r\n\r\nbody\r\n\n"
           "From b@example.org Mon Nov 23 09:00:00 2026\n"
           "Subject: no body\nFrom: b@example.org")
    site.write_mbox(None, raw=raw)
    s = site.inetd()
    s.login()
    for i in (1, 2):
        s.cmd("RETR %d" % i)
        s.multi()
    quit_ok(s)
    data = site.read_mbox()
    assert re.search(rb"From: a@example.org\r\nX-Expire-Timestamp: [0-9]+\r\nX-UIDL: \S+\r\n"
                     rb"\r\nbody\r\n", data), data
    assert re.search(rb"From: b@example.org\nX-Expire-Timestamp: [0-9]+\nX-UIDL: \S+\n$",
                     data), data
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("STAT").startswith("+OK 2 ")
    quit_ok(s)


def test_expire_keeps_mail_delivered_during_session(site):
    site.write_conf("expire 5;")
    site.write_mbox([msg(1)])
    s = site.inetd()
    s.login()
    s.cmd("RETR 1")
    s.multi()
    with open(site.mbox_path(), "a") as f:
        f.write(mbox_of([msg(2)]))
    quit_ok(s)
    data = site.read_mbox()
    assert b"Subject: test 2\n" in data and len(marks(data, 1)) == 1


# ---- forged headers -------------------------------------------------------------------

def test_forged_expire_marks_ignored(site):
    """X-Expire-Timestamp: 0, one older than the delivery and one in the future are a
    sender's, not the store's: they neither expire the message nor stop its own mark."""
    now = int(time.time())
    delivered = now - 3 * DAY
    forged = ["0", str(delivered - 60), str(now + 10 * DAY)]
    items = [(delivered, msg(i + 1, extra_headers="X-Expire-Timestamp: %s\n" % v))
             for i, v in enumerate(forged)]
    site.write_conf("expire 1; delete-expired yes;")
    site.write_mbox(None, raw=mbox_dated(items))
    s = site.inetd()
    s.login()
    quit_ok(s)
    assert site.read_mbox().count(b"X-Expire-Timestamp") == 3   # nothing deleted
    s = site.inetd()
    s.login()
    for i in (1, 2, 3):
        s.cmd("RETR %d" % i)
        s.multi()
    assert s.cmd("QUIT") == "+OK POP3 server signing off (0 messages deleted)"
    s.close()
    data = site.read_mbox()
    for i in (1, 2, 3):
        ms = marks(data, i)
        assert len(ms) == 2 and abs(ms[1] - now) < 60, ms   # our own mark added


def seed_index(site):
    return os.path.join(site.spool, ".alice.pop3d-index")


def test_forged_mark_in_later_mail_ignored(site):
    """Expiry marks are pop3d's own record.  With expire 0, a message that came after
    pop3d adopted the maildrop, whose sender wrote X-Expire-Timestamp: <now-1> (after
    its delivery, in the past), is not deleted unread; the ignored mark is logged once.
    Retrieved, it expires as any other."""
    now = int(time.time())
    site.write_conf("expire 0;")
    site.write_mbox(None, raw=mbox_dated([(now - 3600, msg(1))]))
    s = site.inetd()
    s.login()
    quit_ok(s)
    assert os.path.isfile(seed_index(site))         # adopted: message 1 only
    with open(site.mbox_path(), "a") as f:
        f.write(mbox_dated([(now - 60, msg(2, extra_headers="X-Expire-Timestamp: %d\n"
                                                % (now - 1)))]))
    logged = []
    for _ in range(2):
        s = site.inetd()
        s.login()
        assert s.cmd("STAT").startswith("+OK 2 ")
        assert s.cmd("QUIT").startswith("+OK")
        s.close()
        assert s.returncode == 0, s.stderr
        logged.append(s.stderr.count("X-Expire-Timestamp is ignored"))
        assert b"Subject: test 2\n" in site.read_mbox()
    assert logged == [1, 0], logged
    s = site.inetd()
    s.login()
    s.cmd("RETR 2")
    s.multi()
    assert s.cmd("QUIT") == "+OK POP3 server signing off (1 messages deleted)"
    s.close()
    data = site.read_mbox()
    assert b"Subject: test 2\n" not in data and b"Subject: test 1\n" in data


def test_mailutils_marks_honoured_after_adoption(site):
    """A maildrop Mailutils served (its marks, no index of pop3d's) is adopted at the
    first open: the marks of the messages present then count, at that QUIT and in later
    sessions, after pop3d rewrote the maildrop; a mark in mail that came later does not."""
    now = int(time.time())
    old = now - 20 * DAY
    items = [(old, msg(1, extra_headers="X-Expire-Timestamp: %d\n" % (now - 10 * DAY))),
             (old, msg(2, extra_headers="X-Expire-Timestamp: %d\n" % (now - 2 * DAY))),
             (old, msg(3))]
    site.write_conf("expire 5; delete-expired yes;")
    site.write_mbox(None, raw=mbox_dated(items))
    assert not os.path.exists(seed_index(site))
    s = site.inetd()
    s.login()
    assert s.cmd("QUIT") == "+OK POP3 server signing off (1 messages deleted)"
    s.close()
    with open(site.mbox_path(), "a") as f:
        f.write(mbox_dated([(old, msg(4, extra_headers="X-Expire-Timestamp: %d\n"
                                       % (now - 2 * DAY)))]))
    site.write_conf("expire 1; delete-expired yes;")
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 3 ")
    assert s.cmd("QUIT") == "+OK POP3 server signing off (1 messages deleted)"
    s.close()
    data = site.read_mbox()
    assert b"Subject: test 1\n" not in data and b"Subject: test 2\n" not in data
    assert b"Subject: test 3\n" in data and b"Subject: test 4\n" in data


def test_forged_status_d_does_not_hide_or_delete(site):
    site.write_mbox([msg(1, extra_headers="Status: D\n"), msg(2, extra_headers="Status: RO\n")])
    before = site.read_mbox()
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 2 ")
    assert s.cmd("RETR 1").startswith("+OK")
    s.multi()
    quit_ok(s)
    assert site.read_mbox() == before


def test_forged_uid_headers(site):
    """X-UID (IMAP) is not an id to pop3d; an X-UIDL copying another message's id can't
    take it over: the message stored first keeps it."""
    msgs = [msg(1, extra_headers="X-UIDL: store-written-0001\n"),
            msg(2, extra_headers="X-UID: 1\n"),
            msg(3, extra_headers="X-UID: 1\nX-UIDL: store-written-0001\n")]
    site.write_mbox(msgs)
    s = site.inetd()
    s.login()
    s.cmd("UIDL")
    uids = [l.decode().split()[1] for l in s.multi()]
    quit_ok(s)
    assert uids[0] == "store-written-0001"
    assert uids[1] not in ("1", "store-written-0001")
    assert uids[2] != uids[0] and uids[2].startswith("store-written-0001-")
    assert len(set(uids)) == 3


# ---- undelete -------------------------------------------------------------------------

def test_undelete_clears_mailutils_marks(site):
    """Mailutils keeps its deleted flag as 'D' in the Status header.  pop3d shows such
    messages always; undelete yes also clears the mark in the file at QUIT."""
    msgs = [msg(1, extra_headers="Status: OD\n"), msg(2, extra_headers="Status: D\n"), msg(3)]
    site.write_mbox(msgs)
    site.write_conf("undelete yes;")
    s = site.inetd()
    s.login()
    assert s.cmd("STAT") == "+OK 3 %d" % sum(len(wire(m)) for m in msgs)
    s.cmd("UIDL")
    uids = [l.decode().split()[1] for l in s.multi()]
    quit_ok(s)
    data = site.read_mbox()
    assert b"Status: O\n" in data and b"Status: D" not in data and b"Status: OD" not in data
    assert "Status" not in headers_of(data, 2)
    s = site.inetd()
    s.login()
    s.cmd("UIDL")
    assert [l.decode().split()[1] for l in s.multi()] == uids
    quit_ok(s)


def test_undelete_no_leaves_marks(site):
    site.write_mbox([msg(1, extra_headers="Status: OD\n")])
    before = site.read_mbox()
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 1 ")
    quit_ok(s)
    assert site.read_mbox() == before


# ---- bulletins ------------------------------------------------------------------------

def bulletin(n):
    return ("From: postmaster@example.org\nTo: all@example.org\nSubject: bulletin %d\n\n"
            "Announcement %d.\n" % (n, n))


@pytest.fixture
def bull_site(site):
    site.bsrc = os.path.join(site.dir, "bulletins")
    with open(site.bsrc, "w") as f:
        f.write(mbox_of([bulletin(1), bulletin(2)]))
    os.chmod(site.bsrc, 0o644)
    site.popbull = os.path.join(site.dir, "home", "alice", ".popbull")
    site.write_conf('bulletin-source "mbox:%s";' % site.bsrc)
    site.write_mbox([msg(1)])
    return site


def subjects(s):
    n = int(s.cmd("STAT").split()[1])
    out = []
    for i in range(1, n + 1):
        s.cmd("TOP %d 0" % i)
        out.append([l.decode().strip() for l in s.multi() if l.startswith(b"Subject:")][0])
    return out


def test_bulletins_popbull_once(bull_site):
    site = bull_site
    s = site.inetd()
    assert s.login().startswith("+OK opened mailbox")
    assert subjects(s) == ["Subject: test 1", "Subject: bulletin 1", "Subject: bulletin 2"]
    quit_ok(s)
    assert open(site.popbull).read() == "2\n"
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 3 ")
    quit_ok(s)
    # A new bulletin comes at the next login, once.
    with open(site.bsrc, "a") as f:
        f.write(mbox_of([bulletin(3)]))
    for _ in range(2):
        s = site.inetd()
        s.login()
        assert subjects(s)[-2:] == ["Subject: bulletin 2", "Subject: bulletin 3"]
        assert s.cmd("STAT").startswith("+OK 4 ")
        quit_ok(s)
    assert open(site.popbull).read() == "3\n"
    assert site.read_mbox().count(b"Subject: bulletin") == 3


def test_bulletins_to_missing_maildrop(bull_site):
    site = bull_site
    os.unlink(site.mbox_path())
    s = site.inetd()
    s.login()
    assert subjects(s) == ["Subject: bulletin 1", "Subject: bulletin 2"]
    quit_ok(s)
    st = os.stat(site.mbox_path())
    assert st.st_mode & 0o777 == 0o600


def test_bulletins_not_duplicated_after_crash(bull_site):
    """The number was not recorded after the bulletins went in (a crash between the
    two): the next login finds them at the end of the maildrop and adds nothing."""
    site = bull_site
    s = site.inetd()
    s.login()
    quit_ok(s)
    os.unlink(site.popbull)
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 3 ")
    quit_ok(s)
    assert open(site.popbull).read() == "2\n"
    assert site.read_mbox().count(b"Subject: bulletin") == 2


def test_bulletins_db_wins_over_popbull(bull_site):
    if gdbm is None:
        pytest.skip("python3-gdbm missing")
    site = bull_site
    bdb = os.path.join(site.dir, "bulletins.db")
    db_write(bdb, {"alice": 1})
    with open(site.popbull, "w") as f:
        f.write("0\n")
    site.write_conf('bulletin-source "%s"; bulletin-db "%s";' % (site.bsrc, bdb))
    s = site.inetd()
    s.login()
    assert subjects(s) == ["Subject: test 1", "Subject: bulletin 2"]
    quit_ok(s)
    assert db_read(bdb)[b"alice"] == b"2"
    assert open(site.popbull).read() == "0\n"     # untouched
    # bob had no number: he gets both, recorded in the db.
    site.write_mbox([msg(1)], user="bob")
    s = site.inetd()
    s.login("bob")
    assert subjects(s)[1:] == ["Subject: bulletin 1", "Subject: bulletin 2"]
    quit_ok(s)
    assert db_read(bdb)[b"bob"] == b"2"


@needs_gdbm
@pytest.mark.parametrize("bad", ["symlink", "group-writable", "hard-link", "fifo"])
def test_bulletin_db_unsafe_refused(bull_site, bad):
    """A bulletin-db that is a symbolic link, writable by its group, has a second name
    (a hard link), or is no regular file (checked on the descriptor, opened without
    blocking): nothing is delivered, the log says why, and ~/.popbull is not used instead
    (two records of one number would deliver twice)."""
    site = bull_site
    real = os.path.join(site.dir, "real.db")
    db_write(real, {"alice": 0})
    bdb = os.path.join(site.dir, "bulletins.db")
    if bad == "symlink":
        os.symlink(real, bdb)
    elif bad == "group-writable":
        os.rename(real, bdb)
        os.chmod(bdb, 0o620)
    elif bad == "hard-link":
        os.link(real, bdb)
    else:
        os.mkfifo(bdb, 0o600)
    with open(site.popbull, "w") as f:
        f.write("0\n")
    site.write_conf('bulletin-source "%s"; bulletin-db "%s";' % (site.bsrc, bdb))
    s = site.inetd()
    assert s.login().startswith("+OK opened mailbox")
    assert s.cmd("STAT").startswith("+OK 1 ")
    quit_ok(s)
    assert "unable to use bulletin db" in s.stderr, s.stderr
    assert open(site.popbull).read() == "0\n"
    assert b"bulletin" not in site.read_mbox()


def test_bulletin_source_writable_by_anyone_refused(bull_site):
    site = bull_site
    os.chmod(site.bsrc, 0o666)
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 1 ")
    quit_ok(s)
    assert "bulletin source" in s.stderr


# ---- side by side with GNU Mailutils pop3d ----------------------------------------------

def mailutils_site(tmp_path):
    """A site both servers can use: users with crypt(3) hashes in the passwd file (the
    generic module of both), and the `mail' group Mailutils insists on."""
    if not os.path.exists(MAILUTILS):
        pytest.skip("Debian's mailutils-pop3d is not installed")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
    s = Site(tmp_path)
    with open(os.path.join(s.dir, "group"), "a") as f:
        f.write("mail:x:8:\n")
    path = os.path.join(s.dir, "passwd")
    text = open(path).read()
    for u, p in PASSWORDS.items():
        text = text.replace(u + ":x:", u + ":" + crypt.crypt(p, crypt.mksalt(crypt.METHOD_SHA512)) + ":")
    with open(path, "w") as f:
        f.write(text)
    return s


def run_script(site, binary, commands, user="alice"):
    import conftest
    saved = conftest.POP3D
    conftest.POP3D = binary
    try:
        s = site.inetd()
    finally:
        conftest.POP3D = saved
    out = [("greeting", s.greeting.split()[0])]
    for c in commands:
        r = s.cmd(c)
        out.append((c, r))
        if r and r.startswith("+OK") and c.split()[0] in ("CAPA", "RETR", "TOP", "LIST", "UIDL") \
                and (c.split()[0] in ("CAPA", "RETR", "TOP") or len(c.split()) == 1):
            out.append((c + " body", [l.decode().rstrip("\r\n") for l in s.multi()]))
    s.close()
    return out


@pytest.fixture
def mu_pair(tmp_path):
    site = mailutils_site(tmp_path)
    if not os.path.exists(MAILUTILS):
        pytest.skip("no Mailutils")
    yield site
    site.cleanup()


@needs_gdbm
def test_mailutils_login_delay_and_capa(mu_pair):
    """Same refusal text.  Intended differences: Mailutils prints the CAPA lines
    "EXPIRE5" and a bare "60" (RFC 2449 wants "EXPIRE 5" and "LOGIN-DELAY 60"), and
    cannot record logins in a root-owned database after dropping privileges."""
    site = mu_pair
    statdb = os.path.join(site.dir, "login.db")
    site.write_conf('login-delay 60; stat-file "%s"; expire 5;' % statdb,
                    auth="auth { authentication generic; authorization system; };")
    site.write_mbox([msg(1)])
    script = ["CAPA", "USER alice", "PASS " + PASSWORDS["alice"], "QUIT"]
    replies = {}
    for name, binary in (("mailutils", MAILUTILS), ("pop3d", POP3D_BIN())):
        db_write(statdb, {"alice": int(time.time())})
        replies[name] = dict(run_script(site, binary, script))
    mu, ours = replies["mailutils"], replies["pop3d"]
    assert mu["PASS " + PASSWORDS["alice"]] == ours["PASS " + PASSWORDS["alice"]] == REFUSAL
    assert mu["CAPA"] == ours["CAPA"] == "+OK Capability list follows"
    mu_caps, our_caps = set(mu["CAPA body"]), set(ours["CAPA body"])
    intended = {("60", "LOGIN-DELAY 60"), ("EXPIRE5", "EXPIRE 5")}
    for theirs, mine in intended:
        assert theirs in mu_caps and mine in our_caps
        mu_caps.discard(theirs)
        our_caps.discard(mine)
    # Ours also names itself (IMPLEMENTATION) and lists its SASL mechanisms (Mailutils
    # 3.15 has none); the rest agrees.
    our_caps = {c for c in our_caps
                if not c.startswith("IMPLEMENTATION") and not c.startswith("SASL ")}
    assert mu_caps == our_caps


def test_mailutils_expire_marks(mu_pair):
    """Both add X-Expire-Timestamp after RETR and TOP and not after LIST.  Intended
    differences: Mailutils also rewrites every message's Status, X-UID and X-IMAPbase
    headers; pop3d touches only the messages it marks (adding X-UIDL to keep ids)."""
    site = mu_pair
    site.write_conf("expire 5;", auth="auth { authentication generic; authorization system; };")
    script = ["USER alice", "PASS " + PASSWORDS["alice"], "RETR 1", "TOP 2 0", "LIST 3", "QUIT"]
    results = {}
    for name, binary in (("mailutils", MAILUTILS), ("pop3d", POP3D_BIN())):
        site.write_mbox([msg(1), msg(2), msg(3)])
        out = run_script(site, binary, script)
        results[name] = (out, site.read_mbox())
    for name, (out, data) in results.items():
        assert [len(marks(data, i)) for i in (1, 2, 3)] == [1, 1, 0], name
    mu_out = [(c, r) for c, r in results["mailutils"][0] if c != "QUIT"]
    our_out = [(c, r) for c, r in results["pop3d"][0] if c != "QUIT"]
    # "+OK" for USER and a bare "+OK" / "+OK <octets>" forms differ only in their text.
    assert [r[:3] if isinstance(r, str) else r for _, r in mu_out] == \
           [r[:3] if isinstance(r, str) else r for _, r in our_out]


def test_mailutils_delete_expired_and_expire_0(mu_pair):
    """expire 5 + delete-expired: both delete at QUIT the message whose mark is older
    than 5 days and keep the others (a young mark, no mark); expire 0: both delete what
    was downloaded in the session and keep the rest (any mark at all would be due).  The replies agree but for their
    free text; the messages left are the same (Mailutils' own Status, X-UID and
    X-IMAPbase headers aside, as in test_mailutils_expire_marks).  Intended difference:
    a mark older than the message's delivery, which only its sender can have written,
    makes Mailutils delete the message; pop3d ignores it."""
    site = mu_pair
    auth = "auth { authentication generic; authorization system; };"
    now = int(time.time())
    items = [(now - 20 * DAY, msg(1, extra_headers="X-Expire-Timestamp: %d\n" % (now - 10 * DAY))),
             (now - 20 * DAY, msg(2, extra_headers="X-Expire-Timestamp: %d\n" % (now - DAY))),
             (now - 20 * DAY, msg(3))]
    unmarked = [(now - 20 * DAY, msg(n)) for n in (1, 2, 3)]
    login = ["USER alice", "PASS " + PASSWORDS["alice"]]
    cases = {"expire 5; delete-expired yes;": (items, login + ["STAT", "QUIT"]),
             "expire 0;": (unmarked, login + ["RETR 3", "QUIT"])}
    for conf, (mail, script) in cases.items():
        site.write_conf(conf, auth=auth)
        got = {}
        for name, binary in (("mailutils", MAILUTILS), ("pop3d", POP3D_BIN())):
            site.write_mbox(None, raw=mbox_dated(mail))
            out = run_script(site, binary, script)
            left = re.findall(rb"^Subject: (test \d)$", site.read_mbox(), re.M)
            got[name] = ([(c, r[:3] if isinstance(r, str) else r) for c, r in out], left)
        assert got["mailutils"] == got["pop3d"], conf
        assert got["pop3d"][1] == ([b"test 2", b"test 3"] if "delete" in conf
                                   else [b"test 1", b"test 2"]), conf
    # Intended difference: a mark older than the message's delivery was forged by its
    # sender ("X-Expire-Timestamp: 0"); Mailutils deletes the message at the first QUIT
    # with delete-expired, pop3d ignores such a mark (see "Forged headers").
    forged = [(now - 20 * DAY, msg(1, extra_headers="X-Expire-Timestamp: 0\n")),
              (now - 20 * DAY, msg(2))]
    site.write_conf("expire 5; delete-expired yes;", auth=auth)
    left = {}
    for name, binary in (("mailutils", MAILUTILS), ("pop3d", POP3D_BIN())):
        site.write_mbox(None, raw=mbox_dated(forged))
        run_script(site, binary, login + ["STAT", "QUIT"])
        left[name] = re.findall(rb"^Subject: (test \d)$", site.read_mbox(), re.M)
    assert left == {"mailutils": [b"test 2"], "pop3d": [b"test 1", b"test 2"]}


def test_mailutils_status_d(mu_pair):
    """Measured: Mailutils 3.15 hides a message whose Status header holds 'D' and
    removes it at QUIT, whoever wrote the header (a sender can); 'd' is not its mark.
    With undelete yes both show it.  Intended difference: pop3d never hides or deletes
    mail because of a header."""
    site = mu_pair
    auth = "auth { authentication generic; authorization system; };"
    script = ["USER alice", "PASS " + PASSWORDS["alice"], "STAT", "QUIT"]
    got = {}
    for undelete in ("no", "yes"):
        site.write_conf("undelete %s;" % undelete, auth=auth)
        for name, binary in (("mailutils", MAILUTILS), ("pop3d", POP3D_BIN())):
            site.write_mbox([msg(1), msg(2, extra_headers="Status: D\n")])
            out = dict(run_script(site, binary, script))
            got[(undelete, name)] = (out["STAT"].split()[:2], site.read_mbox().count(b"\nFrom "))
    assert got[("no", "mailutils")] == (["+OK", "1"], 0)    # hidden, then removed
    assert got[("no", "pop3d")] == (["+OK", "2"], 1)
    assert got[("yes", "mailutils")] == (["+OK", "2"], 1)
    assert got[("yes", "pop3d")] == (["+OK", "2"], 1)


def POP3D_BIN():
    import conftest
    return conftest.POP3D


def test_mailutils_bulletins(mu_pair):
    """With ~/.popbull present both deliver the pending bulletins in the same session and
    record the number alike.  Intended difference: without ~/.popbull, Mailutils never
    delivers any; pop3d delivers them all (the user has had none)."""
    site = mu_pair
    bsrc = os.path.join(site.dir, "bulletins")
    with open(bsrc, "w") as f:
        f.write(mbox_of([bulletin(1), bulletin(2)]))
    os.chmod(bsrc, 0o644)
    popbull = os.path.join(site.dir, "home", "alice", ".popbull")
    site.write_conf('bulletin-source "mbox:%s";' % bsrc,
                    auth="auth { authentication generic; authorization system; };")
    script = ["USER alice", "PASS " + PASSWORDS["alice"], "STAT", "QUIT"]
    got = {}
    for present in (True, False):
        for name, binary in (("mailutils", MAILUTILS), ("pop3d", POP3D_BIN())):
            site.write_mbox([msg(1)])
            if os.path.exists(popbull):
                os.unlink(popbull)
            if present:
                with open(popbull, "w") as f:
                    f.write("0\n")
                os.chown(popbull, site.uids["alice"], site.gid)
            out = dict(run_script(site, binary, script))
            number = open(popbull).read() if os.path.exists(popbull) else None
            got[(present, name)] = (out["STAT"].split()[1], number,
                                    site.read_mbox().count(b"Subject: bulletin"))
    assert got[(True, "mailutils")] == got[(True, "pop3d")] == ("3", "2\n", 2)
    assert got[(False, "mailutils")] == ("1", None, 0)
    assert got[(False, "pop3d")] == ("3", "2\n", 2)
