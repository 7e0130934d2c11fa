"""Before login a client gets a bounded time and a bounded number of commands: the login
deadline (login-timeout), an idle timer that only complete lines restart, a command budget
that CAPA, NOOP and USER don't refill, and bad commands that a good answer doesn't
forgive."""
import select
import time

from conftest import msg

BOUND = 20


def read_all(s, limit):
    """Every line until the server closes (bounded in time)."""
    s.sock.settimeout(limit)
    lines = []
    while True:
        l = s.line()
        if l is None:
            return lines
        lines.append(l)


def test_login_deadline_with_capa_every_moment(site):
    site.write_mbox([msg(1)])
    site.write_conf("login-timeout 2;")
    s = site.inetd()
    t0 = time.monotonic()
    closed = None
    while time.monotonic() - t0 < BOUND:
        try:
            s.send("CAPA\r\n")
        except OSError:
            break
        r = s.line()
        if r is None or r.startswith("-ERR"):
            closed = r
            break
        s.multi()
        time.sleep(0.3)
    elapsed = time.monotonic() - t0
    if closed is None:
        rest = read_all(s, 5)
        closed = rest[0] if rest else None
    s.close()
    assert closed == "-ERR Login timed out, closing connection"
    assert elapsed < 8
    assert "no login within 2 s" in s.stderr


def test_idle_timer_is_not_restarted_by_bytes_without_a_line_end(site):
    site.write_conf("timeout 2;\nlogin-timeout 0;")
    s = site.inetd()
    t0 = time.monotonic()
    got = None
    while time.monotonic() - t0 < BOUND:
        try:
            s.send("N")
        except OSError:
            break
        # One byte every half second, never a line end.
        if select.select([s.sock], [], [], 0.5)[0]:
            got = s.line()
            break
    elapsed = time.monotonic() - t0
    s.close()
    assert got == "-ERR Session timed out"
    assert elapsed < 6


def test_command_budget_before_login(site):
    s = site.inetd()
    s.send("CAPA\r\n" * 40)
    lines = read_all(s, BOUND)
    s.close()
    assert lines[-1] == "-ERR Too many commands before login, closing connection"
    assert lines.count("+OK Capability list follows") <= 30
    assert "commands and no login" in s.stderr


def test_bad_commands_are_not_forgiven_by_capa(site):
    s = site.inetd()
    s.send("BOGUS\r\nCAPA\r\n" * 12)
    lines = read_all(s, BOUND)
    s.close()
    assert lines[-1] == "-ERR Too many bad commands, closing connection"
    assert lines.count("-ERR Invalid command") == 10


def test_a_normal_login_is_not_limited(site):
    site.write_mbox([msg(1)])
    site.write_conf("login-timeout 5;")
    s = site.inetd()
    for c in ("CAPA", "BOGUS", "CAPA"):
        s.send(c + "\r\n")
        r = s.line()
        if r.startswith("+OK"):
            s.multi()
    assert s.login().startswith("+OK")
    # After the login, neither the deadline nor the budget applies.

    for _ in range(40):
        assert s.cmd("NOOP").startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()


def test_log_escapes_non_ascii_and_control_bytes(site):
    """A user name is the client's bytes: in the log, anything but printable ASCII (and
    the backslash) is written \\xNN, so a name can't forge or garble a log line."""
    s = site.inetd()
    s.send(b"USER jos\xc3\xa9\\x\r\n")
    assert s.line().startswith("+OK")
    s.send(b"PASS wrong\r\n")
    assert s.line() == "-ERR [AUTH] Bad login"
    s.cmd("QUIT")
    s.close()
    assert "authentication failed for jos\\xc3\\xa9\\x5cx from" in s.stderr
    assert "\u00e9" not in s.stderr
