"""The command line and configuration checks of the real binary."""
import glob
import os
import re
import subprocess

import pytest

from conftest import POP3D, TOP_SRCDIR

DATA = os.path.join(TOP_SRCDIR, "tests", "data")

def run(*args, privsep_user="nobody", **kw):
    """pop3d with args.  Run as root, --config-lint also checks the privsep user, which
    this host need not have: an existing unprivileged one is named."""
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built")
    if "--config-lint" in args and privsep_user is not None:
        args += ("--set=privsep-user=" + privsep_user,)
    return subprocess.run([POP3D] + list(args), capture_output=True, timeout=20,
                          stdin=subprocess.DEVNULL, **kw)

def test_lint_checks_the_privsep_user():
    """What would stop pop3d from starting as root is a lint error too."""
    if os.geteuid() != 0:
        pytest.skip("the privsep user is checked only when run as root")
    p = run("--config-lint", "--config-file=" + os.path.join(TOP_SRCDIR, "etc", "pop3d.conf"),
            privsep_user="no-such-user-here")
    assert p.returncode == 78
    assert b"privsep-user: no such user `no-such-user-here'" in p.stderr

def test_lint_notes_max_children_minus_one(tmp_path):
    """Mailutils runs with max-children -1: pop3d takes it as no limit and says so."""
    f = tmp_path / "p.conf"
    f.write_text("max-children -1;\n")
    p = run("--config-lint", "--config-file=%s" % f)
    assert p.returncode == 0, p.stderr
    assert b"p.conf:1: note: max-children -1 is read as 0" in p.stderr

def test_unknown_option_is_usage_error():
    p = run("--no-such-option")
    assert p.returncode == 64
    assert b"--no-such-option" in p.stderr and p.stdout == b""

def test_help_version_usage():
    assert b"--daemon" in run("--help").stdout
    assert b"--config-lint" in run("--usage").stdout
    assert run("-V").stdout.startswith(b"pop3d")

# GNU Mailutils 3.15's --show-config-options keys (pop3d prints those it has built in).
MAILUTILS_KEYS = {
    "VERSION", "SYSCONFDIR", "MAILSPOOLDIR", "SCHEME", "LOG_FACILITY", "IPV6",
    "USE_LIBPAM", "HAVE_LIBLTDL", "WITH_BDB", "WITH_GDBM", "WITH_KYOTOCABINET",
    "WITH_GNUTLS", "WITH_GSASL", "WITH_GSSAPI", "WITH_GUILE", "WITH_PYTHON",
    "WITH_PTHREAD", "WITH_READLINE", "WITH_UNISTRING", "HAVE_MYSQL", "HAVE_PGSQL",
    "WITH_LDAP", "WITH_LIBWRAP", "ENABLE_VIRTUAL_DOMAINS", "ENABLE_IMAP", "ENABLE_POP",
    "ENABLE_MH", "ENABLE_MAILDIR", "ENABLE_SMTP", "ENABLE_SENDMAIL"}
POP3D_KEYS = {"WITH_SECCOMP", "MAILBOX_TYPES"}

def show_config_keys(binary):
    out = subprocess.run([binary, "--show-config-options"], capture_output=True,
                         text=True).stdout
    return {re.split(r"[=\s]", l, 1)[0]: l for l in out.splitlines() if l.strip()}

def test_show_config_options():
    """Mailutils' format and key names, so that a script probing for a feature finds it."""
    keys = show_config_keys(POP3D)
    assert set(keys) <= MAILUTILS_KEYS | POP3D_KEYS, set(keys) - MAILUTILS_KEYS - POP3D_KEYS
    for k in ("IPV6", "ENABLE_VIRTUAL_DOMAINS", "ENABLE_POP", "ENABLE_MAILDIR", "ENABLE_MH"):
        assert k in keys, k
    assert keys["SCHEME"].startswith("SCHEME=mbox")
    assert keys["LOG_FACILITY"].startswith("LOG_FACILITY=mail")
    assert re.match(r"MAILSPOOLDIR=/\S+ \t- ", keys["MAILSPOOLDIR"])
    if os.path.exists("/usr/sbin/pop3d") and os.path.realpath(POP3D) != "/usr/sbin/pop3d":
        # Each feature both have built is printed the same way.
        theirs = show_config_keys("/usr/sbin/pop3d")
        for k in set(keys) & set(theirs) - {"VERSION", "SYSCONFDIR"}:
            assert keys[k] == theirs[k], (keys[k], theirs[k])

def test_config_help_lists_statements():
    out = run("--config-help").stdout.decode()
    for st in ("tls-mode", "login-delay", "mailbox", "server", "tcp-wrappers",
               "bulletin-source", "mandatory-locking", "apop-database-safety"):
        assert st in out, st

def test_lint_accepts_every_statement():
    p = run("--config-lint", "--config-file=" + os.path.join(DATA, "all-statements.conf"))
    assert p.returncode == 0, p.stderr.decode()

def test_lint_sample_config():
    p = run("--config-lint", "--config-file=" + os.path.join(TOP_SRCDIR, "etc", "pop3d.conf"))
    assert p.returncode == 0, p.stderr.decode()

@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(DATA, "broken-*.conf"))))
def test_lint_rejects_broken(path):
    """Each broken file says on its first line what the lint must print."""
    with open(path) as f:
        expect = f.readline().split("expect:", 1)[1].strip()
    p = run("--config-lint", "--config-file=" + path)
    assert p.returncode == 78
    err = p.stderr.decode()
    assert expect in err, err
    if ".conf:" in expect:
        assert re.search(r"^%s:\d+: \S" % re.escape(path), err, re.M), err

def test_lint_lists_every_error(tmp_path):
    f = tmp_path / "two.conf"
    f.write_text("timeout 10;\nno-such-statement 1;\nmax-children lots;\nport 110;\n")
    p = run("--config-lint", "--config-file=%s" % f)
    assert p.returncode == 78
    err = p.stderr.decode()
    assert "%s:2: " % f in err and "%s:3: " % f in err

def test_lint_set_override(tmp_path):
    f = tmp_path / "ok.conf"
    f.write_text("timeout 10;\n")
    assert run("--config-lint", "--config-file=%s" % f, "--set=timeout=20").returncode == 0
    p = run("--config-lint", "--config-file=%s" % f, "--set=timeout=soon")
    assert p.returncode == 78

def test_unusable_module_refused(tmp_path):
    f = tmp_path / "sql.conf"
    f.write_text("auth { authentication sql; };\n")
    p = run("--config-file=%s" % f, "-i")
    assert p.returncode == 78
    assert b"sql" in p.stderr and b"interface" in p.stderr

def test_config_error_refuses_to_start(tmp_path):
    f = tmp_path / "bad.conf"
    f.write_text("timeout ;\n")
    p = run("-i", "--config-file=%s" % f)
    assert p.returncode == 78
    assert ("%s:1: " % f).encode() in p.stderr
