"""The standalone listener's limits on sessions that have not logged in yet (per source
and in all), and login penalties shared by every session of the host, in standalone and
in inetd mode."""
import os
import re
import resource
import select
import socket
import time

from conftest import PASSWORDS, msg
from test_standalone import BOUND, children, free_port, start, wait_for

BUSY_SOURCE = "-ERR [SYS/TEMP] Too many connections from your address"
BUSY_PREAUTH = "-ERR [SYS/TEMP] Too many connections waiting to log in"


def open_from(port, source, timeout=BOUND):
    """A connection to the listener from the local address source, and its greeting."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    f = s.makefile("rb")
    return s, f, f.readline().decode(errors="replace").rstrip("\r\n")


def command(s, f, line):
    s.sendall(line.encode() + b"\r\n")
    return f.readline().decode(errors="replace").rstrip("\r\n")


def login(port, source, user="alice", password=None):
    """Log in from source and quit: the answer to PASS."""
    s, f, greeting = open_from(port, source)
    try:
        assert greeting.startswith("+OK"), greeting
        assert command(s, f, "USER " + user).startswith("+OK")
        answer = command(s, f, "PASS " + (password or PASSWORDS.get(user, "x")))
        command(s, f, "QUIT")
        return answer
    finally:
        f.close()
        s.close()


def preauth_children(d):
    return len(children(d.pid))


def test_per_source_cap_counts_only_sessions_not_logged_in(site):
    site.write_mbox([msg(1)])
    site.write_mbox([msg(1)], user="bob")
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=50,
              extra="max-preauth-per-source 3;")
    held = [open_from(port, "127.0.0.1") for _ in range(3)]
    assert all(g.startswith("+OK") for _, _, g in held)
    s, f, g = open_from(port, "127.0.0.1")
    assert g.startswith(BUSY_SOURCE), g
    assert f.readline() == b""                    # closed at once, cleanly
    s.close()
    # Another address is not affected (bob: alice logs in below, and this session may
    # still be ending then).
    assert login(port, "127.0.0.2", "bob").startswith("+OK")
    # A session that logged in no longer counts against its source.
    s0, f0, _ = held[0]
    assert command(s0, f0, "USER alice").startswith("+OK")
    assert command(s0, f0, "PASS " + PASSWORDS["alice"]).startswith("+OK")
    extra = wait_for(lambda: (lambda c: c if c[2].startswith("+OK") else c[0].close())(
        open_from(port, "127.0.0.1")), "a fourth session from 127.0.0.1 after a login")
    d.wait_log(r"too many children not logged in from 127\.0\.0\.1/32 \(3\): refused 1 "
               r"connection")
    for s, f, _ in held + [extra]:
        f.close()
        s.close()


def test_source_prefix_groups_addresses(site):
    port = free_port()
    start(site, [("127.0.0.1", port, "")], max_children=50,
          extra="max-preauth-per-source 2;\nsource-prefix-ipv4 24;")
    held = [open_from(port, a) for a in ("127.0.0.1", "127.0.0.2")]
    assert all(g.startswith("+OK") for _, _, g in held)
    s, f, g = open_from(port, "127.0.0.3")        # the same /24
    assert g.startswith(BUSY_SOURCE), g
    s.close()
    s, f, g = open_from(port, "127.0.1.1")        # another /24
    assert g.startswith("+OK"), g
    s.close()
    for s, f, _ in held:
        s.close()


def test_preauth_cap_keeps_slots_for_logged_in_users(site):
    site.write_mbox([msg(1)])
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=10,
              extra="max-preauth-children 3;\nmax-preauth-per-source 0;")
    held = [open_from(port, "127.0.0.%d" % (i + 1)) for i in range(3)]
    assert all(g.startswith("+OK") for _, _, g in held)
    s, f, g = open_from(port, "127.0.0.9")
    assert g.startswith(BUSY_PREAUTH), g
    s.close()
    d.wait_log(r"too many children not logged in \(3\): refused 1 connection")
    # One of them logs in: a slot for a session not logged in is free again, and the
    # logged-in session keeps its own.
    s0, f0, _ = held[0]
    assert command(s0, f0, "USER alice").startswith("+OK")
    assert command(s0, f0, "PASS " + PASSWORDS["alice"]).startswith("+OK")
    s, f, g = wait_for(lambda: (lambda c: c if c[2].startswith("+OK") else c[0].close())(
        open_from(port, "127.0.0.9")), "a session after a login")
    assert command(s0, f0, "STAT").startswith("+OK 1 ")
    for x in held:
        x[0].close()
    s.close()


def test_default_max_preauth_is_three_quarters_of_max_children(site):
    port = free_port()
    start(site, [("127.0.0.1", port, "")], max_children=8,
          extra="max-preauth-per-source 0;")
    held = [open_from(port, "127.0.0.1") for _ in range(6)]
    assert all(g.startswith("+OK") for _, _, g in held)
    s, f, g = open_from(port, "127.0.0.1")
    assert g.startswith(BUSY_PREAUTH), g
    s.close()
    for x in held:
        x[0].close()


def test_flood_from_one_address_leaves_room_for_another(site):
    """1,000 connections held from 127.0.0.1 against -d50 with the default limits: a
    client from 127.0.0.2 logs in at once, every time."""
    site.write_mbox([msg(1)])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=50)
    flood = []
    try:
        # In batches smaller than the accept queue, each batch answered (ten sessions get
        # a greeting, the rest an -ERR) before the next: all 1,000 connect.
        p = select.poll()
        for _ in range(10):
            batch = []
            for _ in range(100):
                c = socket.socket()
                c.bind(("127.0.0.1", 0))
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                p.register(c, select.POLLIN)
                batch.append(c)
            flood.extend(batch)
            waiting = {c.fileno() for c in batch}

            def answered():
                for fd, _ in p.poll(100):
                    waiting.discard(fd)
                    p.unregister(fd)
                return not waiting
            wait_for(answered, "an answer to each connection of the flood")
        wait_for(lambda: re.search(r"from 127\.0\.0\.1/32 \(10\): refused", d.log()),
                 "the flood refused")
        wait_for(lambda: preauth_children(d) == 10, "ten sessions for the flood")
        times = []
        for _ in range(10):
            t0 = time.monotonic()
            assert login(port, "127.0.0.2").startswith("+OK")
            times.append(time.monotonic() - t0)
        assert max(times) < 1.0, times
    finally:
        for c in flood:
            c.close()


# --------------------------------------------------------------------------------------
# Login penalties

def fail_once(port, source, user, password="wrong"):
    """One failed login in a connection of its own (its answer, its duration)."""
    t0 = time.monotonic()
    answer = login(port, source, user, password)
    return answer, time.monotonic() - t0


def penalties(d):
    return re.findall(r"login penalty for (\S+) from (\S+?):\d+: (\d+) s", d.log())


def test_penalty_per_source_and_per_name_cleared_by_success(site):
    site.write_mbox([msg(1)])
    site.write_mbox([msg(1)], user="bob")
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=20,
              extra="login-penalty-max 3;")
    # Two failures are free (typing errors), the third counts.
    for _ in range(3):
        answer, _ = fail_once(port, "127.0.0.1", "alice")
        assert answer.startswith("-ERR")
    assert penalties(d) == []
    # The source now waits before any answer, a right password included...
    answer, took = fail_once(port, "127.0.0.1", "bob", PASSWORDS["bob"])
    assert answer.startswith("+OK")
    assert took >= 2
    assert penalties(d) == [("bob", "127.0.0.1", "2")]
    # ...which cleared the source's record: no wait any more.
    assert login(port, "127.0.0.1", "bob").startswith("+OK")
    assert len(penalties(d)) == 1
    # Another source logging in as another user is not slowed.
    assert login(port, "127.0.0.2", "bob").startswith("+OK")
    assert len(penalties(d)) == 1
    # The name alice still has three failures, from whatever source.
    answer, took = fail_once(port, "127.0.0.3", "alice", PASSWORDS["alice"])
    assert answer.startswith("+OK") and took >= 2
    assert penalties(d)[-1] == ("alice", "127.0.0.3", "2")


def test_penalty_counts_unknown_names_like_known_ones(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=20,
              extra="login-penalty-max 3;")
    for i in range(3):
        fail_once(port, "127.0.0.%d" % (i + 1), "nosuchuser")
        fail_once(port, "127.0.0.%d" % (i + 11), "alice")
    fail_once(port, "127.0.0.20", "nosuchuser")
    fail_once(port, "127.0.0.21", "alice")
    assert penalties(d) == [("nosuchuser", "127.0.0.20", "2"), ("alice", "127.0.0.21", "2")]


def test_penalty_grows_and_is_capped(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=20,
              extra="login-penalty-max 4;")
    for i in range(6):
        fail_once(port, "127.0.0.%d" % (i + 1), "alice")
    assert [p[2] for p in penalties(d)] == ["2", "4", "4"]


def test_penalty_shared_by_inetd_sessions(site):
    site.write_conf("login-penalty-max 3;")
    for _ in range(3):
        s = site.inetd()
        assert s.cmd("USER alice").startswith("+OK")
        assert s.cmd("PASS wrong").startswith("-ERR")
        s.close()
    s = site.inetd()
    assert s.cmd("USER alice").startswith("+OK")
    t0 = time.monotonic()
    assert s.cmd("PASS " + PASSWORDS["alice"]).startswith("+OK")
    assert time.monotonic() - t0 >= 2
    s.cmd("QUIT")
    s.close()
    assert "login penalty for alice from" in s.stderr


def test_penalty_off(site):
    port = free_port()
    d = start(site, [("127.0.0.1", port, "")], max_children=20,
              extra="login-penalty-max 0;")
    for i in range(4):
        fail_once(port, "127.0.0.1", "alice")
    assert penalties(d) == []
    assert not os.path.exists(os.path.join(site.dir, "penalty.db"))
