"""The documentation can't drift from the code: every statement that --config-help prints
is described in pop3d.conf(5) and in the manual, and every option of --help in pop3d(8)."""
import glob
import os
import re
import subprocess

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
    texi = "".join(read(p) for p in glob.glob(os.path.join(DOC, "*.texi")))
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
