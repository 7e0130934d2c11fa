"""pop3d confined as its systemd units confine it: the umask, no-new-privs and
capability bounding set of etc/pop3d.service, pop3d@.service and pop3s@.service (read
from the units, so that they and this test can't drift apart), applied with setpriv,
and where a mount namespace can be made, their read-only file system and /proc.
A session logs in, reads, deletes and quits in an mbox of a shared spool (root:mail
2775, where the monitor makes the session's files) and in a Maildir of a home (mode
0700, the user's), in standalone, inetd and POP3S inetd mode (the command line of
pop3s@.service).  Without CAP_CHOWN deletions in the shared spool fail, without
CAP_SYS_CHROOT there is no session, and without CAP_KILL a session outlives the daemon
that SIGTERM stopped.  As in test_privsep, pop3d runs as real root and its identity
changes are the kernel's."""
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import time

import pytest

import test_privsep
from conftest import TOP_SRCDIR, mbox_of, msg, wire
from test_maildir import make_maildir
from test_privsep import (BOUND, MAIL_GID, by_uid, inetd, line, reader, site,  # noqa: F401
                          start_daemon, status, stop, wait_for)
from test_tls import CERTTOOL, client_ctx, pki, tls, tls_built  # noqa: F401 (fixtures)

SETPRIV = shutil.which("setpriv")
UNSHARE = shutil.which("unshare")

pytestmark = [
    pytest.mark.skipif(os.getuid() != 0, reason="real identity changes need root"),
    pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) is not installed"),
]

MSGS = [msg(1), msg(2), msg(3)]
# <linux/capability.h>: the capabilities the units may name.
CAP_NUMBERS = {"cap_chown": 0, "cap_dac_override": 1, "cap_dac_read_search": 2,
               "cap_fowner": 3, "cap_kill": 5, "cap_setgid": 6, "cap_setuid": 7,
               "cap_net_bind_service": 10, "cap_sys_chroot": 18}


def unit(name):
    """The settings of etc/NAME: {key: [values, in order]}."""
    out = {}
    with open(os.path.join(TOP_SRCDIR, "etc", name)) as f:
        for l in f:
            l = l.strip()
            if l and not l.startswith(("#", ";", "[")) and "=" in l:
                k, v = l.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def can_unshare():
    return UNSHARE is not None and subprocess.run(
        [UNSHARE, "--mount", "true"], capture_output=True).returncode == 0


NAMESPACE = os.getuid() == 0 and can_unshare()


def file_system(u):
    """Commands that give a new mount namespace the unit's view of the file system, as
    far as a namespace of the host's tree can: everything read-only (ProtectSystem=strict)
    but its ReadWritePaths and StateDirectory that exist and /tmp (PrivateTmp: the
    tests' directories are there), and /proc as ProtectProc= and ProcSubset= make it."""
    assert u["ProtectSystem"] == ["strict"] and u["PrivateTmp"] == ["yes"]
    rw = ["/tmp"] + ["/var/lib/" + d for v in u.get("StateDirectory", []) for d in v.split()]
    rw += [p.lstrip("-") for v in u.get("ReadWritePaths", []) for p in v.split()]
    cmds = ["mount --make-rprivate /"]
    cmds += ["mount --bind %s %s" % (p, p) for p in rw if os.path.isdir(p)]
    cmds += ["mount -o remount,bind,ro /",
             "mount -t proc -o hidepid=%s,subset=%s proc /proc"
             % (u["ProtectProc"][-1], u["ProcSubset"][-1])]
    return " && ".join(cmds)


@pytest.fixture
def confine(monkeypatch, tmp_path):
    """confine(NAME, drop=()): from now on test_privsep's start_daemon and inetd start
    pop3d as unit NAME does: through a script that gives it the unit's file system view
    (when this host lets us make a mount namespace), umask, no-new-privs and bounding
    set (less the capabilities in drop), and adds the options of its ExecStart (all but
    the mode, which the helpers give).  Returns the bounding set's mask."""
    def apply(name, drop=()):
        u = unit(name)
        assert u["NoNewPrivileges"] == ["yes"]
        caps = [c.lower() for v in u["CapabilityBoundingSet"] for c in v.split()
                if c.lower() not in drop]
        args = [a for a in shlex.split(u["ExecStart"][-1])[1:]
                if a not in ("--inetd", "--daemon", "--foreground")]
        run = "umask %s && exec %s --no-new-privs --inh-caps=-all --bounding-set=-all,%s %s" \
            ' "$@" %s' % (u["UMask"][-1], SETPRIV, ",".join("+" + c[4:] for c in caps),
                          shlex.quote(test_privsep.POP3D),
                          " ".join(shlex.quote(a) for a in args))
        if NAMESPACE:
            # unshare and sh exec: pop3d keeps the pid the helpers know.
            run = "exec %s --mount sh -c %s sh \"$@\"" % (
                UNSHARE, shlex.quote(file_system(u) + " && " + run))
        script = str(tmp_path / ("confined-" + name))
        with open(script, "w") as f:
            f.write("#!/bin/sh\n%s\n" % run)
        os.chmod(script, 0o700)
        monkeypatch.setattr(test_privsep, "POP3D", script)
        return sum(1 << CAP_NUMBERS[c] for c in caps)
    return apply


def shared_spool(site):
    """Alice's mbox in a spool like Debian's /var/mail: root:mail 2775, her mbox
    alice:mail 0600; she isn't in group mail."""
    os.chown(site.spool, 0, MAIL_GID)
    os.chmod(site.spool, 0o2775)
    site.write_mbox(MSGS)
    os.chown(site.mbox_path(), site.uids["alice"], MAIL_GID)


def home_maildir(site):
    """Alice's Maildir in her home (mode 0700, hers), named by mailbox-pattern."""
    home = os.path.join(site.open_dir, "home")
    os.mkdir(home, 0o700)
    os.chown(home, site.uids["alice"], site.gid)
    md = make_maildir(site, os.path.join(home, "Maildir"), MSGS)
    return md, 'mailbox { mailbox-pattern "maildir:%s"; };' % md


def session(c, f):
    """The greeting, then log in, RETR 1 (which must be the first message), DELE 1,
    QUIT; the replies, up to the first that is not +OK before the RETR."""
    out = [line(f)]
    if not out[0].startswith("+OK"):
        return out
    c.sendall(b"USER alice\r\nPASS alice-secret\r\n")
    out += [line(f), line(f)]
    if not out[2].startswith("+OK"):
        return out
    c.sendall(b"RETR 1\r\n")
    out.append(line(f))
    body = []
    while out[3].startswith("+OK"):
        l = line(f)
        if l == ".":
            break
        body.append(l + "\r\n")
    assert "".join(body).encode() == wire(MSGS[0]), body
    c.sendall(b"DELE 1\r\nQUIT\r\n")
    return out + [line(f), line(f)]


def check_replies(out):
    assert all(r.startswith("+OK") for r in out), out
    assert out[2].startswith("+OK opened mailbox") and "(1 messages deleted)" in out[5], out


def maildir_left(md):
    return sorted(os.listdir(os.path.join(md, "new")) + os.listdir(os.path.join(md, "cur")))


def connect(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    return c, reader(c)


def daemon_session(site, mask, extra=""):
    """One session with a confined daemon: its replies and the daemon's log."""
    proc, port = start_daemon(site, extra)
    try:
        assert int(status(proc.pid)["CapBnd"], 16) == mask
        assert status(proc.pid)["NoNewPrivs"] == "1"
        if NAMESPACE:
            with open("/proc/%d/mountinfo" % proc.pid) as f:
                root = [l.split() for l in f if l.split()[4] == "/"][-1]
            assert root[5].split(",")[0] == "ro", root
        c, f = connect(port)
        out = session(c, f)
        f.close()
        c.close()
    finally:
        err = stop(proc)
    return out, err


def test_standalone_shared_spool_and_maildir(site, confine):
    mask = confine("pop3d.service")
    shared_spool(site)
    out, err = daemon_session(site, mask)
    check_replies(out)
    assert site.read_mbox() == mbox_of(MSGS[1:]).encode(), err
    assert os.stat(site.mbox_path()).st_uid == site.uids["alice"]
    # The index the monitor made for her is hers, and nothing else is left.
    index = os.path.join(site.spool, ".alice.pop3d-index")
    assert sorted(os.listdir(site.spool)) == [".alice.pop3d-index", "alice"], err
    assert os.stat(index).st_uid == site.uids["alice"]
    md, pattern = home_maildir(site)
    before = maildir_left(md)
    out, err = daemon_session(site, mask, pattern)
    check_replies(out)
    assert len(maildir_left(md)) == len(before) - 1, err


def run_inetd(site, extra="", ctx=None):
    """One inetd session (through TLS with ctx): its replies and pop3d's standard
    error."""
    site.write_conf(extra)
    a, b = socket.socketpair()
    proc = inetd(site, b)
    b.close()
    try:
        c = a if ctx is None else ctx.wrap_socket(a, server_hostname="localhost")
        f = reader(c)
        out = session(c, f)
        f.close()
        c.close()
    finally:
        a.close()
        proc.wait(timeout=BOUND)
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    return out, err


def test_inetd_shared_spool_and_maildir(site, confine):
    confine("pop3d@.service")
    shared_spool(site)
    out, err = run_inetd(site)
    check_replies(out)
    assert site.read_mbox() == mbox_of(MSGS[1:]).encode(), err
    md, pattern = home_maildir(site)
    before = maildir_left(md)
    out, err = run_inetd(site, pattern)
    check_replies(out)
    assert len(maildir_left(md)) == len(before) - 1, err


@pytest.mark.skipif(CERTTOOL is None, reason="certtool (gnutls-bin) is not installed")
@pytest.mark.skipif(not tls_built(), reason="pop3d built without GnuTLS")
def test_pop3s_inetd_starts_tls_on_connect(site, confine, tls):
    """pop3s@.service's command line: TLS from the first byte, though the configuration
    sets no tls-mode (its tls block names the certificate only)."""
    confine("pop3s@.service")
    shared_spool(site)
    out, err = run_inetd(site, tls.block(), client_ctx(tls))
    check_replies(out)
    assert site.read_mbox() == mbox_of(MSGS[1:]).encode(), err


def test_without_cap_chown_the_shared_spool_is_read_only(site, confine):
    """The monitor can't hand the session its dotlock or temporary copy: the session
    does with fcntl locking, but its deletions stay undone."""
    confine("pop3d@.service", drop=("cap_chown",))
    shared_spool(site)
    out, err = run_inetd(site)
    assert out[2].startswith("+OK opened mailbox"), out
    assert out[5] == "-ERR [SYS/TEMP] Some deleted messages not removed", out
    assert "cannot create a temporary file next to the mailbox" in err
    assert site.read_mbox() == mbox_of(MSGS).encode(), err
    assert sorted(os.listdir(site.spool)) == ["alice"], err


def test_without_cap_sys_chroot_no_session(site, confine):
    confine("pop3d@.service", drop=("cap_sys_chroot",))
    shared_spool(site)
    out, err = run_inetd(site)
    assert out == ["-ERR [SYS/TEMP] Server unavailable"], err
    assert site.read_mbox() == mbox_of(MSGS).encode()


def log_line(proc, text):
    """Read proc's standard error up to a line holding text (within BOUND seconds)."""
    deadline = time.monotonic() + BOUND
    fd = proc.stderr.fileno()
    buf = b""
    while text.encode() not in buf:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], buf.decode()
        chunk = os.read(fd, 4096)
        assert chunk, buf.decode()
        buf += chunk


@pytest.mark.parametrize("drop", [(), ("cap_kill",)], ids=["unit", "without-cap_kill"])
def test_sigterm_ends_sessions(site, confine, drop):
    """A second SIGTERM stops the daemon at once: its monitors end, and their sessions
    with them (the parent-death signal, which crosses users only with CAP_KILL)."""
    confine("pop3d.service", drop=drop)
    shared_spool(site)
    proc, port = start_daemon(site)
    c, f = connect(port)
    assert line(f).startswith("+OK")
    c.sendall(b"USER alice\r\nPASS alice-secret\r\n")
    assert line(f).startswith("+OK") and line(f).startswith("+OK opened mailbox")
    session = wait_for(lambda: by_uid(proc.pid, site.uids["alice"]), "the session")[0]
    try:
        proc.send_signal(signal.SIGTERM)
        # The second once the first is taken (two at once would be one).
        log_line(proc, "stopping: waiting")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=BOUND)
        if not drop:
            assert f.read() == b""
            wait_for(lambda: not os.path.exists("/proc/%d" % session), "the session's end")
        else:
            # Nothing ends the session: it outlives the daemon, the client still served.
            c.sendall(b"NOOP\r\n")
            assert line(f) == "+OK"
    finally:
        f.close()
        c.close()
        if os.path.exists("/proc/%d" % session):
            os.kill(session, signal.SIGKILL)
        stop(proc)
