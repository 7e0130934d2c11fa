"""The mbox update against real filesystem faults: ENOSPC (a small tmpfs), EDQUOT (a
btrfs quota group on a loop device), EIO from fsync (tests/e2e/fault_shim.c preloaded)
and SIGKILL in the middle of the rewrite, with nameless temporary files and without them
(as on a filesystem lacking O_TMPFILE), in a spool of the user's and in a shared one
(root:mail 2775, where the monitor makes the files).  Each time the maildrop stays byte
for byte, the client gets -ERR [SYS/TEMP] to QUIT, the log says why, and no temporary
file is left once the next session has opened the maildrop."""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import POP3D, TOP_SRCDIR, msg, mbox_of

pytestmark = [
    pytest.mark.skipif(os.getuid() != 0, reason="mounting filesystems needs root"),
]

BOUND = 20
CC = shutil.which("cc") or shutil.which("gcc")
FAULT_SRC = os.path.join(TOP_SRCDIR, "tests", "e2e", "fault_shim.c")
TEMP = re.compile(r"^\.alice\.pop3d-([A-Za-z0-9]{6}|index\.[0-9a-f]{8})$")
MAIL_GID = 8


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler to build tests/e2e/fault_shim.c")
    out = str(tmp_path_factory.mktemp("fault") / "fault.so")
    r = subprocess.run([CC, "-shared", "-fPIC", "-O", "-o", out, FAULT_SRC, "-ldl"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot build tests/e2e/fault_shim.c: " + r.stderr[-300:])
    return out


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(path, size, mode="0755", gid=0):
    r = run("mount", "-t", "tmpfs", "-o",
            "size=%s,mode=%s,gid=%d" % (size, mode, gid), "tmpfs", path)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: " + r.stderr.strip())
    try:
        yield path
    finally:
        run("umount", "--lazy", path)


@contextlib.contextmanager
def btrfs(path, workdir):
    """A btrfs on a loop device at path, quota groups enabled."""
    if shutil.which("mkfs.btrfs") is None or shutil.which("btrfs") is None:
        pytest.skip("EDQUOT needs btrfs-progs (mkfs.btrfs, btrfs): this kernel has no "
                    "quota format for ext4 or tmpfs (CONFIG_QFMT_V2, CONFIG_TMPFS_QUOTA)"
                    " to fall back on")
    img = os.path.join(workdir, "btrfs.img")
    with open(img, "wb") as f:
        f.truncate(160 << 20)
    r = run("mkfs.btrfs", "-q", "-f", img)
    if r.returncode != 0:
        pytest.skip("mkfs.btrfs failed: " + r.stderr.strip())
    r = run("mount", "-o", "loop", img, path)
    if r.returncode != 0:
        pytest.skip("cannot mount a loop device: " + r.stderr.strip())
    try:
        r = run("btrfs", "quota", "enable", path)
        if r.returncode != 0:
            pytest.skip("btrfs quota enable failed: " + r.stderr.strip())
        yield path
    finally:
        run("umount", "--lazy", path)
        os.unlink(img)


def with_env(site, **extra):
    """Sessions of site get extra environment; LD_PRELOAD is added to."""
    orig = site.env

    def env():
        e = dict(orig())
        for k, v in extra.items():
            if k == "LD_PRELOAD":
                e[k] = e.get(k, "") + ":" + v
            else:
                e[k] = v
        return e
    site.env = env


def maildrop(n=40, body_lines=200):
    msgs = [msg(i, body="".join("line %d of message %d\n" % (k, i)
                                for k in range(body_lines))) for i in range(1, n + 1)]
    return mbox_of(msgs).encode()


def temps(spool):
    return sorted(n for n in os.listdir(spool) if TEMP.match(n))


def failing_quit(site, want):
    """Log in, delete a message, QUIT: the update must fail, telling the client to come
    back and the log why."""
    s = site.inetd()
    assert s.login().startswith("+OK")
    r = s.cmd("DELE 2")
    if not r.startswith("+OK"):
        s.close()
        raise AssertionError(r + s.stderr)
    r = s.cmd("QUIT")
    s.close()
    assert r.startswith("-ERR [SYS/TEMP]"), r
    assert re.search(r"cannot rewrite .*alice: .*" + want, s.stderr), s.stderr
    assert "update failed" in s.stderr, s.stderr


def next_session_clean(site, spool, data):
    """The next session opens and lists the untouched maildrop; no temporary file."""
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("STAT").startswith("+OK 40 ")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert site.read_mbox() == data
    assert temps(spool) == []


def test_enospc_on_a_small_tmpfs(site):
    data = maildrop()
    with tmpfs(site.spool, "%dk" % (len(data) // 1024 + 96)):
        site.write_mbox(None, raw=data)
        failing_quit(site, "No space left on device")
        assert site.read_mbox() == data
        assert temps(site.spool) == []
        next_session_clean(site, site.spool, data)


def test_enospc_without_o_tmpfile(site, shim):
    """The named temporary file of a filesystem without O_TMPFILE goes too."""
    data = maildrop()
    with_env(site, LD_PRELOAD=shim, POP3D_FAULT_NO_TMPFILE="1")
    with tmpfs(site.spool, "%dk" % (len(data) // 1024 + 96)):
        site.write_mbox(None, raw=data)
        failing_quit(site, "No space left on device")
        assert site.read_mbox() == data
        assert temps(site.spool) == []


def test_edquot_on_a_btrfs_quota_group(site, tmp_path):
    data = maildrop()
    with btrfs(site.spool, str(tmp_path)):
        os.chmod(site.spool, 0o755)
        site.write_mbox(None, raw=data)
        run("sync")
        # The maildrop and a little more: not a second copy of it.
        r = run("btrfs", "qgroup", "limit", str(len(data) + (128 << 10)), site.spool)
        if r.returncode != 0:
            pytest.skip("btrfs qgroup limit failed: " + r.stderr.strip())
        failing_quit(site, "Disk quota exceeded")
        assert site.read_mbox() == data
        assert temps(site.spool) == []
        next_session_clean(site, site.spool, data)


@pytest.mark.parametrize("tmpfile", [True, False], ids=["o_tmpfile", "named"])
def test_eio_from_fsync(site, shim, tmpfile):
    data = maildrop()
    env = {"LD_PRELOAD": shim, "POP3D_FAULT_FSYNC": "eio",
           "POP3D_FAULT_MATCH": site.spool + "/"}
    if not tmpfile:
        env["POP3D_FAULT_NO_TMPFILE"] = "1"
    with_env(site, **env)
    site.write_mbox(None, raw=data)
    failing_quit(site, "Input/output error")
    assert site.read_mbox() == data
    assert temps(site.spool) == []


def wait_for_file(path):
    deadline = time.monotonic() + BOUND
    while True:
        try:
            with open(path) as f:
                text = f.read()
            if text.endswith("\n"):
                return text
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + path)
        time.sleep(0.01)


def kill_in_fsync(site, shim, mark, tmpfile):
    """A session deletes and quits; it is killed in the fsync of the new maildrop (the
    whole copy written), nameless or not.  Nameless, it leaves nothing; named, the copy
    stays until the next session, which finds the maildrop untouched and removes it."""
    data = site.read_mbox()
    plain = site.env
    env = {"LD_PRELOAD": shim, "POP3D_FAULT_FSYNC": "hang",
           "POP3D_FAULT_MATCH": site.spool + "/", "POP3D_FAULT_MARK": mark}
    if not tmpfile:
        env["POP3D_FAULT_NO_TMPFILE"] = "1"
    with_env(site, **env)
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("DELE 2").startswith("+OK")
    s.send("QUIT\r\n")
    pid = int(wait_for_file(mark))
    left = temps(site.spool)
    os.kill(pid, signal.SIGKILL)
    r = s.line()
    s.close()
    assert r is None or not r.startswith("+OK"), r
    os.unlink(mark)
    assert (left == []) == tmpfile, left
    assert site.read_mbox() == data
    site.env = plain
    next_session_clean(site, site.spool, data)


@pytest.mark.parametrize("tmpfile", [True, False], ids=["o_tmpfile", "named"])
def test_sigkill_in_the_rewrite(site, shim, tmp_path, tmpfile):
    site.write_mbox(None, raw=maildrop())
    kill_in_fsync(site, shim, str(tmp_path / "in-fsync"), tmpfile)


# --------------------------------------------------------------------------------------
# A shared spool (root:mail 2775): the session is really the user and has no mail
# group; the monitor makes the files (nameless ones too) and names them.

@pytest.fixture
def shared(site):
    """Real identity changes (no uid_wrapper), a spool the users can reach: a tmpfs
    root:mail 2775 under a directory of /tmp."""
    from test_privsep import real_env
    d = tempfile.mkdtemp(prefix="pop3d-faults-")
    os.chmod(d, 0o755)
    site.spool = os.path.join(d, "spool")
    os.mkdir(site.spool)
    site.env = (lambda e: lambda: dict(e))(real_env(site))
    # Where the session, the user now, can leave its mark.
    site.marks = os.path.join(d, "marks")
    os.mkdir(site.marks)
    os.chmod(site.marks, 0o777)
    yield site
    run("umount", "--lazy", site.spool)
    shutil.rmtree(d, ignore_errors=True)


def shared_maildrop(site, size):
    data = maildrop()
    # Unmounted when the fixture ends (not when this frame does).
    site.mount = tmpfs(site.spool, size, mode="2775", gid=MAIL_GID)
    site.mount.__enter__()
    site.write_mbox(None, raw=data)
    os.chown(site.mbox_path(), site.uids["alice"], MAIL_GID)
    site.write_conf("")
    return data


def test_shared_spool_enospc(shared):
    site = shared
    data = shared_maildrop(site, "%dk" % (len(maildrop()) // 1024 + 96))
    failing_quit(site, "No space left on device")
    assert site.read_mbox() == data
    assert temps(site.spool) == []
    next_session_clean(site, site.spool, data)


@pytest.mark.parametrize("tmpfile", [True, False], ids=["o_tmpfile", "named"])
def test_shared_spool_sigkill(shared, shim, tmpfile):
    site = shared
    shared_maildrop(site, "16m")
    kill_in_fsync(site, shim, os.path.join(site.marks, "in-fsync"), tmpfile)
    assert sorted(os.listdir(site.spool)) == [".alice.pop3d-index", "alice"]
