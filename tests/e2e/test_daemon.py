"""The standalone listener and real clients (Python poplib, curl)."""
import os
import poplib
import shutil
import socket
import subprocess
import time

import pytest

from conftest import PASSWORDS, mbox_of, msg, wire

def test_poplib_inetd_fetch_and_delete(site):
    msgs = [msg(i) for i in range(1, 6)]
    site.write_mbox(msgs)
    p, proc = site.poplib_inetd()
    assert p.getwelcome().startswith(b"+OK")
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    count, size = p.stat()
    assert count == 5 and size == sum(len(wire(m)) for m in msgs)
    for i in range(1, 6):
        resp, lines, octets = p.retr(i)
        assert b"\r\n".join(lines) + b"\r\n" == wire(msgs[i - 1])
    p.dele(3)
    p.quit()
    proc.wait(timeout=20)
    assert site.read_mbox() == mbox_of(msgs[:2] + msgs[3:]).encode()

def test_listener_serves_poplib(site):
    msgs = [msg(i) for i in range(1, 4)]
    site.write_mbox(msgs)
    proc, port = site.daemon(max_children=4)
    p = poplib.POP3("127.0.0.1", port, timeout=30)
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat()[0] == 3
    assert [int(x.split()[1]) for x in p.list()[1]] == [len(wire(m)) for m in msgs]
    p.quit()

def test_child_limit(site):
    site.write_mbox([msg(1)])
    proc, port = site.daemon(max_children=2)
    # The readiness probe's child may still be finishing: take the 2 slots, bounded.
    held = []
    deadline = time.monotonic() + 20
    while len(held) < 2:
        h = site.connect(port)
        if h.greeting.startswith("+OK"):
            held.append(h)
        else:
            h.close()
            assert time.monotonic() < deadline, "slots never became free"
            time.sleep(0.02)
    extra = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = extra.makefile("rb")
    line = f.readline()
    assert line.startswith(b"-ERR [SYS/TEMP]")
    assert f.readline() == b""          # closed cleanly, never a hang
    extra.close()
    for h in held:
        h.cmd("QUIT")
        h.close()
    # the slots come back once the children are reaped
    deadline = time.monotonic() + 20
    while True:
        s = site.connect(port)
        if s.greeting.startswith("+OK"):
            s.cmd("QUIT")
            s.close()
            break
        s.close()
        assert time.monotonic() < deadline, "child slots never released"
        time.sleep(0.05)

def test_curl_lists_and_fetches(site):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    msgs = [msg(1), msg(2, "Curl body line.\n")]
    site.write_mbox(msgs)
    proc, port = site.daemon()
    url = "pop3://127.0.0.1:%d/" % port
    user = "alice:%s" % PASSWORDS["alice"]
    out = subprocess.run([curl, "-s", "-u", user, url], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(b"\r\n")[:2] == [b"1 %d" % len(wire(msgs[0])),
                                             b"2 %d" % len(wire(msgs[1]))]
    out = subprocess.run([curl, "-s", "-u", user, url + "2"], capture_output=True, timeout=30)
    assert out.returncode == 0
    assert out.stdout == wire(msgs[1])
