"""popauth installed set-uid root, as popauth(8) describes under SET-UID: a caller other
than root sees and changes only their own entry of the default database, files the
caller names are opened as the caller, and -o never writes through a symbolic link.

The binary is copied into a temporary directory, made set-uid root and run as `nobody'
with setpriv.  Only the default database (/etc/apop.db) is opened as root, so those
tests run in a small chroot that has its own /etc/apop.db."""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import POP3D

POPAUTH = os.path.join(os.path.dirname(POP3D), "popauth")
SETPRIV = shutil.which("setpriv")
SECRETS = {"nobody": "nobody-secret", "alice": "alice-apop", "bob": "b0b apop secret"}
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

def skip_reason():
    if os.geteuid() != 0:
        return "needs root, to install popauth set-uid root"
    if SETPRIV is None:
        return "setpriv is not installed"
    if not os.path.exists(POPAUTH):
        return "popauth not built"
    if "libasan" in subprocess.run(["ldd", POPAUTH], capture_output=True, text=True).stdout:
        # A set-uid program runs with the sanitizer's default options (LeakSanitizer
        # on), which needs /proc, and the tests' chroot has none: the plain build runs
        # these tests.
        return "sanitizer build: its runtime can't run set-uid in a chroot without /proc"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "no user `nobody'"
    with open("/proc/self/status") as f:
        if any(l.split() == ["NoNewPrivs:", "1"] for l in f):
            return "no_new_privs is set: set-uid bits are ignored"
    return None

def shared_libs(binary):
    """The files the dynamic loader maps for binary, as ldd names them."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1 and \
                parts[parts.index("=>") + 1].startswith("/"):
            libs.append(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs

def db_text(secrets):
    return "".join("%s %s\n" % kv for kv in secrets.items())

def listing(secrets):
    return sorted("%s %s" % kv for kv in secrets.items())

class SetuidEnv:
    def __init__(self, top):
        self.top = top
        self.nobody = pwd.getpwnam("nobody")
        # popauth set-uid root, and a root-only database, outside the chroot.
        self.popauth = os.path.join(top, "popauth")
        self.install(POPAUTH, self.popauth, 0o4755)
        self.db = os.path.join(top, "apop.db")
        self.make_db(self.db)
        # The chroot: the same set-uid popauth, setpriv, and /etc/apop.db.
        self.root = os.path.join(top, "root")
        for d in ("etc", "tmp", "usr/bin", "usr/sbin"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        os.chmod(os.path.join(self.root, "tmp"), 0o1777)
        self.install(POPAUTH, self.path("/usr/sbin/popauth"), 0o4755)
        self.install(SETPRIV, self.path("/usr/bin/setpriv"), 0o755)
        libc = None
        for lib in set(shared_libs(POPAUTH) + shared_libs(SETPRIV)):
            self.install(lib, self.path(lib), 0o755)
            if os.path.basename(lib).startswith("libc.so"):
                libc = lib
        if libc is not None:
            nss = os.path.join(os.path.dirname(libc), "libnss_files.so.2")
            if os.path.exists(nss):
                self.install(nss, self.path(nss), 0o755)
        n = self.nobody
        with open(self.path("/etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d::/nonexistent:/bin/false\n"
                    % (n.pw_name, n.pw_uid, n.pw_gid))
        with open(self.path("/etc/group"), "w") as f:
            f.write("root:x:0:\nnogroup:x:%d:\n" % n.pw_gid)
        with open(self.path("/etc/nsswitch.conf"), "w") as f:
            f.write("passwd: files\ngroup: files\n")
        self.make_db(self.path("/etc/apop.db"))

    def path(self, p):
        """The host path of p inside the chroot."""
        return os.path.join(self.root, p.lstrip("/"))

    @staticmethod
    def install(src, dst, mode):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        os.chown(dst, 0, 0)
        os.chmod(dst, mode)

    @staticmethod
    def make_db(path, secrets=SECRETS):
        r = subprocess.run([POPAUTH, "-c", "-o", path], input=db_text(secrets),
                           capture_output=True, text=True, env=ENV, timeout=30)
        assert r.returncode == 0, r.stderr
        assert os.stat(path).st_uid == 0 and stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def as_nobody(self, *args, chroot=False, stdin=""):
        """Run the set-uid popauth with nobody's real uid and gid, and no groups."""
        n = self.nobody
        setpriv, popauth, preexec, cwd = SETPRIV, self.popauth, None, self.top
        if chroot:
            setpriv, popauth, cwd = "/usr/bin/setpriv", "/usr/sbin/popauth", None
            def preexec():
                os.chroot(self.root)
                os.chdir("/")
        return subprocess.run([setpriv, "--reuid=%d" % n.pw_uid, "--regid=%d" % n.pw_gid,
                               "--clear-groups", "--", popauth] + list(args),
                              input=stdin, capture_output=True, text=True, env=ENV,
                              preexec_fn=preexec, cwd=cwd, timeout=30)

    def root_list(self, db):
        """What real root lists from db, with the built (not set-uid) popauth."""
        r = subprocess.run([POPAUTH, "-l", "-f", db], capture_output=True, text=True,
                           env=ENV, timeout=30)
        assert r.returncode == 0, r.stderr
        return sorted(r.stdout.splitlines())

@pytest.fixture
def env():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    top = tempfile.mkdtemp(prefix="popauth-setuid-")
    try:
        os.chmod(top, 0o755)
        if os.statvfs(top).f_flag & os.ST_NOSUID:
            pytest.skip("%s is on a nosuid file system" % tempfile.gettempdir())
        yield SetuidEnv(top)
    finally:
        shutil.rmtree(top, ignore_errors=True)

def snapshot(path):
    st = os.lstat(path)
    with open(path, "rb") as f:
        return f.read(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

def no_secret_of_others(r):
    for user in ("alice", "bob"):
        assert SECRETS[user] not in r.stdout + r.stderr, (r.stdout, r.stderr)

def test_list_shows_only_own_entry(env):
    r = env.as_nobody("-l", chroot=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "nobody nobody-secret\n"
    no_secret_of_others(r)
    r = env.as_nobody("--compatibility", "-l", "-u", "nobody", chroot=True)
    assert r.stdout == "nobody: nobody-secret\n", r.stderr
    r = env.as_nobody("-l", "-u", "alice", chroot=True)
    assert r.returncode == 64
    assert "Only the file owner can use --username" in r.stderr
    no_secret_of_others(r)
    # Real root still sees every entry.
    assert env.root_list(env.path("/etc/apop.db")) == listing(SECRETS)

def test_other_users_entries_not_changed(env):
    db = env.path("/etc/apop.db")
    before = snapshot(db)
    attempts = [
        # -P would relax the safety checks and chmod the database as root.
        (["-a", "-u", "alice", "-p", "mine now", "-P", "0644"], "--permissions"),
        (["-d", "-u", "bob", "-P", "0666"], "--permissions"),
        (["-m", "-P", "0644"], "--permissions"),
        (["-a", "-u", "alice", "-p", "mine now"], "may add entries"),
        (["-a", "-u", "nobody", "-p", "fresh"], "may add entries"),
        (["-d", "-u", "alice"], "may delete entries"),
        (["-m", "-u", "alice", "-p", "mine now"], "Only the file owner can use --username"),
    ]
    for args, message in attempts:
        r = env.as_nobody(*args, chroot=True, stdin="nobody-secret\nmine now\n")
        assert r.returncode != 0, (args, r.stdout)
        assert snapshot(db) == before, args
        assert message in r.stderr, (args, r.stderr)
    # Their own entry, given the old secret, they may change; nothing else moves.
    r = env.as_nobody("-m", chroot=True, stdin="wrong\nmine now\n")
    assert r.returncode == 1 and "Sorry" in r.stderr
    assert snapshot(db) == before
    r = env.as_nobody(chroot=True, stdin="nobody-secret\nnew nobody secret\n")
    assert r.returncode == 0, r.stderr
    assert "Changing password for nobody" in r.stdout
    assert env.root_list(db) == listing(dict(SECRETS, nobody="new nobody secret"))
    st = os.stat(db)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)

def test_output_is_opened_as_the_caller(env):
    target = env.path("/etc/important")
    with open(target, "w") as f:
        f.write("keep me\n")
    os.chmod(target, 0o644)
    before = snapshot(target)
    os.symlink("/etc/important", env.path("/tmp/list"))
    r = env.as_nobody("-l", "-o", "/tmp/list", chroot=True)
    assert r.returncode != 0
    assert snapshot(target) == before
    # A file of root's, named directly: nobody may not write it.
    r = env.as_nobody("-l", "-o", "/etc/important", chroot=True)
    assert r.returncode != 0
    assert snapshot(target) == before
    # A new file is the caller's, and holds the caller's entry only.
    r = env.as_nobody("-l", "-o", "/tmp/mine", chroot=True)
    assert r.returncode == 0, r.stderr
    st = os.stat(env.path("/tmp/mine"))
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (env.nobody.pw_uid, 0o600)
    with open(env.path("/tmp/mine")) as f:
        assert f.read() == "nobody nobody-secret\n"

def test_named_database_is_opened_as_the_caller(env):
    # The root-only database outside the chroot, named with -f: nobody cannot read it.
    before = snapshot(env.db)
    r = env.as_nobody("-l", "-f", env.db)
    assert r.returncode != 0
    assert "Permission denied" in r.stderr
    assert r.stdout == ""
    no_secret_of_others(r)
    # Nor have root create a database where nobody could not.
    new = os.path.join(env.top, "new.db")
    r = env.as_nobody("-a", "-u", "nobody", "-p", "x", "-f", new)
    assert r.returncode != 0
    assert not os.path.lexists(new)
    assert snapshot(env.db) == before

def test_root_output_not_through_a_symlink_or_into_another_users_file(env):
    """Real root lists everything, but -o does not follow a planted link and does not
    hand the secrets to the owner of an existing file."""
    d = os.path.join(env.top, "spool")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    target = os.path.join(env.top, "important")
    with open(target, "w") as f:
        f.write("keep me\n")
    before = snapshot(target)
    os.symlink(target, os.path.join(d, "list"))
    theirs = os.path.join(d, "theirs")
    with open(theirs, "w") as f:
        f.write("nobody's file\n")
    os.chown(theirs, env.nobody.pw_uid, env.nobody.pw_gid)
    os.chmod(theirs, 0o644)
    theirs_before = snapshot(theirs)
    for out in (os.path.join(d, "list"), theirs):
        r = subprocess.run([POPAUTH, "-l", "-f", env.db, "-o", out], capture_output=True,
                           text=True, env=ENV, timeout=30)
        assert r.returncode == 1, (out, r.stderr)
    assert snapshot(target) == before
    assert snapshot(theirs) == theirs_before
    # Its own file, existing or not, root may (re)write.
    mine = os.path.join(d, "mine")
    with open(mine, "w") as f:
        f.write("x" * 4096)
    for _ in range(2):
        r = subprocess.run([POPAUTH, "-l", "-f", env.db, "-o", mine], capture_output=True,
                           text=True, env=ENV, timeout=30)
        assert r.returncode == 0, r.stderr
        with open(mine) as f:
            assert sorted(f.read().splitlines()) == listing(SECRETS)
        os.unlink(mine)
