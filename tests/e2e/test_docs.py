"""The documentation can't drift from the code: every statement that --config-help prints
is described in pop3d.conf(5), in the manual and in the sample configuration, every option
of --help in pop3d(8) (and of popauth --help in popauth(8)), the sections of the manual
pages that doc/gen-man.py generates are up to date, and groff finds nothing to warn about."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import POP3D, TOP_SRCDIR

DOC = os.path.join(TOP_SRCDIR, "doc")

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

def roff_text(path):
    # roff writes a literal hyphen as \- ; fonts as \fB...\fR
    t = read(path).replace("\\-", "-")
    return re.sub(r"\\f[BIRP]", "", t)

def statements():
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built")
    out = subprocess.run([POP3D, "--config-help"], capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        m = re.match(r"\s*([a-z][a-z0-9-]+)\b", line)
        if m and not line.lstrip().startswith("#"):
            names.add(m.group(1))
    assert len(names) > 50, out
    return sorted(names)

def test_every_statement_in_man_page():
    man = roff_text(os.path.join(DOC, "pop3d.conf.5"))
    missing = [n for n in statements() if not re.search(r"(?<![a-z-])%s(?![a-z-])" % re.escape(n), man)]
    assert not missing, "pop3d.conf(5) does not describe: " + ", ".join(missing)

def test_every_statement_in_manual():
    texi = manual()
    missing = [n for n in statements() if not re.search(r"(?<![a-z-])%s(?![a-z-])" % re.escape(n), texi)]
    assert not missing, "the manual does not describe: " + ", ".join(missing)

def test_every_option_in_pop3d_8():
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built")
    helptext = subprocess.run([POP3D, "--help"], capture_output=True, text=True).stdout
    opts = set(re.findall(r"--([a-z][a-z-]+)", helptext))
    man = roff_text(os.path.join(DOC, "pop3d.8"))
    missing = [o for o in sorted(opts) if "--" + o not in man]
    assert not missing, "pop3d(8) does not describe: " + ", ".join(missing)

def manual():
    return "".join(read(p) for p in glob.glob(os.path.join(DOC, "*.texi")))

@pytest.mark.parametrize("program", ["pop3d", "popauth"])
def test_every_option_in_manual(program):
    """The Texinfo manual lists the options as the man pages do."""
    binary = os.path.join(os.path.dirname(POP3D), program)
    if not os.path.exists(binary):
        pytest.skip("%s not built" % program)
    helptext = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    opts = set(re.findall(r"--([a-z][a-z-]+)", helptext))
    assert len(opts) > 5, helptext
    texi = manual()
    missing = [o for o in sorted(opts) if not re.search(r"--%s(?![a-z-])" % re.escape(o), texi)]
    assert not missing, "the manual does not describe %s's: %s" % (program, ", ".join(missing))

def test_manual_promises_nothing_for_later():
    """What the manual says is what this release does: no feature "in a later release"."""
    texi = manual()
    found = re.findall(r"[^\n]*(?:later release|@emph\{[Ll]ater\})[^\n]*", texi)
    assert not found, found

def test_every_statement_in_sample_config():
    sample = read(os.path.join(TOP_SRCDIR, "etc", "pop3d.conf"))
    missing = [n for n in statements()
               if not re.search(r"(?<![a-z-])%s(?![a-z-])" % re.escape(n), sample)]
    assert not missing, "etc/pop3d.conf does not show: " + ", ".join(missing)

def test_every_option_in_popauth_8():
    popauth = os.path.join(os.path.dirname(POP3D), "popauth")
    if not os.path.exists(popauth):
        pytest.skip("popauth binary not built")
    helptext = subprocess.run([popauth, "--help"], capture_output=True, text=True).stdout
    opts = set(re.findall(r"--([a-z][a-z-]+)", helptext))
    assert len(opts) > 5, helptext
    man = roff_text(os.path.join(DOC, "popauth.8"))
    missing = [o for o in sorted(opts) if "--" + o not in man]
    assert not missing, "popauth(8) does not describe: " + ", ".join(missing)

def test_generated_man_sections_up_to_date():
    """The statement summary of pop3d.conf(5) and the option summary of pop3d(8) are
    what doc/gen-man.py makes from this binary's --config-help and --help."""
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built")
    p = subprocess.run([sys.executable, os.path.join(DOC, "gen-man.py"), "--check", POP3D],
                       capture_output=True, text=True)
    assert p.returncode == 0, ("the generated sections of the manual pages are out of "
                               "date: run doc/gen-man.py PATH/pop3d (make update-man)\n" + p.stdout + p.stderr)

@pytest.mark.parametrize("page", ["pop3d.8", "pop3d.conf.5", "popauth.8"])
def test_man_page_groff_clean(page):
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    p = subprocess.run(["groff", "-ww", "-z", "-man", os.path.join(DOC, page)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr
