"""APOP with a real client: fetchmail `protocol APOP` against the standalone listener,
with secrets from apop-database-file."""
import os
import shutil
import subprocess

import pytest

from conftest import msg

FETCHMAIL = shutil.which("fetchmail")
SECRETS = {"alice": "alice-apop", "bob": "b0b apop secret"}
MSGS = [msg(1), msg(2), msg(3)]

pytestmark = pytest.mark.skipif(FETCHMAIL is None, reason="fetchmail is not installed "
                                "(apt-get install fetchmail)")


def apop_conf(site):
    db = os.path.join(site.dir, "apop.passwd")
    with open(db, "w") as f:
        for u, s in SECRETS.items():
            f.write("%s:%s\n" % (u, s))
    os.chmod(db, 0o600)
    return 'apop-database-file "%s";\napop-database-owner %d;\n' % (db, os.getuid())


def fetch(site, port, secret):
    home = os.path.join(site.dir, "fmhome")
    os.makedirs(home, 0o700, exist_ok=True)
    out = os.path.join(site.dir, "fetched")
    rc = os.path.join(home, ".fetchmailrc")
    with open(rc, "w") as f:
        f.write('poll 127.0.0.1 protocol APOP port %d\n'
                '  user "alice" password "%s" is "alice" here\n'
                '  sslproto "" keep\n'
                '  mda "cat >> %s"\n' % (port, secret, out))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
    r = subprocess.run([FETCHMAIL, "-N", "-d0", "--nosyslog", "-f", rc, "-v"],
                       capture_output=True, text=True, env=env, timeout=60)
    got = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            got = f.read()
    return r, got


def test_fetchmail_apop(site):
    site.write_mbox(MSGS)
    proc, port = site.daemon(extra_conf=apop_conf(site))
    r, got = fetch(site, port, SECRETS["alice"])
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert "APOP alice " in log                     # the digest, not USER/PASS
    assert "PASS " not in log
    for m in MSGS:
        assert m.split("\n")[2].encode() in got     # each Subject: arrived


def test_fetchmail_apop_wrong_secret(site):
    site.write_mbox(MSGS)
    proc, port = site.daemon(extra_conf=apop_conf(site))
    r, got = fetch(site, port, "not-the-secret")
    log = r.stdout + r.stderr
    assert r.returncode == 3, log                   # fetchmail's "authentication failed"
    assert "-ERR [AUTH] Bad login" in log
    assert got == b""
