"""The command line and configuration checks of the real binary."""
import glob
import os
import re
import subprocess

import pytest

from conftest import POP3D, TOP_SRCDIR

DATA = os.path.join(TOP_SRCDIR, "tests", "data")

def run(*args, **kw):
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built")
    return subprocess.run([POP3D] + list(args), capture_output=True, timeout=20,
                          stdin=subprocess.DEVNULL, **kw)

def test_unknown_option_is_usage_error():
    p = run("--no-such-option")
    assert p.returncode == 64
    assert b"--no-such-option" in p.stderr and p.stdout == b""

def test_help_version_usage():
    assert b"--daemon" in run("--help").stdout
    assert b"--config-lint" in run("--usage").stdout
    assert run("-V").stdout.startswith(b"pop3d")

def test_show_config_options():
    out = run("--show-config-options").stdout.decode()
    for feature in ("GNUTLS", "GDBM", "PAM", "LIBWRAP"):
        assert re.search(r"^WITH(OUT)?_%s" % feature, out, re.M), feature

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
