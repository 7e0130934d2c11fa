"""Authentication modules end to end: system (shadow + crypt), virtdomain, module lists,
and the mailutils.conf fallback of the site configuration."""
import os
import subprocess

import pytest

from conftest import POP3D, mbox_of, msg

def sha512_crypt(password):
    out = subprocess.run(["openssl", "passwd", "-6", password], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("openssl passwd -6 is not available")
    return out.stdout.strip()

def test_system_module_with_shadow(site):
    with open(os.path.join(site.dir, "shadow"), "w") as f:
        f.write("alice:%s:19000:0:99999:7:::\n" % sha512_crypt("shadow-pass"))
    site.write_conf(auth="auth { authentication system; authorization system; };")
    site.write_mbox([msg(1)])
    env = site.env()
    env["NSS_WRAPPER_SHADOW"] = os.path.join(site.dir, "shadow")
    site.env = lambda: env
    s = site.inetd()
    assert s.login(password="alice-secret") == "-ERR [AUTH] Bad login"   # PAM's, not ours
    assert s.login(password="shadow-pass").startswith("+OK opened mailbox for alice")
    assert s.cmd("STAT").startswith("+OK 1 ")
    s.cmd("QUIT")
    s.close()

def carol_domain(site, auth):
    """A virtdomain directory with carol@example.org (password carol-pw, alice's uid and
    home) and two messages in her HOME/INBOX; the configuration uses it with auth."""
    dom = os.path.join(site.dir, "domains")
    os.mkdir(dom)
    home = os.path.join(site.dir, "home", "alice")
    uid = site.uids["alice"]
    with open(os.path.join(dom, "example.org"), "w") as f:
        f.write("carol:%s:%d:%d:Carol:%s:/bin/false\n" % (sha512_crypt("carol-pw"), uid,
                                                          site.gid, home))
    site.write_conf('virtdomain { passwd-dir "%s"; };' % dom, auth=auth)
    inbox = os.path.join(home, "INBOX")
    with open(inbox, "w") as f:
        f.write(mbox_of([msg(1), msg(2)]))
    if site.root:
        os.chown(inbox, uid, site.gid)

def test_virtdomain(site):
    carol_domain(site, "auth { authentication virtdomain; authorization virtdomain; };")
    s = site.inetd()
    assert s.login(user="carol@example.org", password="wrong") == "-ERR [AUTH] Bad login"
    assert s.login(user="carol@nosuch.org", password="carol-pw") == "-ERR [AUTH] Bad login"
    assert s.login(user="carol@example.org", password="carol-pw").startswith("+OK")
    assert s.cmd("STAT").startswith("+OK 2 ")
    s.cmd("QUIT")
    s.close()

def test_generic_with_virtdomain(site):
    """authentication generic checks the hash of the entry the authorization module
    found (Mailutils' meaning): a virtual user logs in with the domain file's password,
    whichever of Mailutils' delimiters (`@', `!', `:') splits the name."""
    carol_domain(site, "auth { authentication generic; authorization virtdomain; };")
    for name in ("carol@example.org", "carol!example.org", "carol:example.org"):
        s = site.inetd()
        assert s.login(user=name, password="carol-pw").startswith("+OK"), name
        assert s.cmd("STAT").startswith("+OK 2 ")
        s.cmd("QUIT")
        s.close()
    s = site.inetd()
    assert s.login(user="carol!example.org", password="wrong") == "-ERR [AUTH] Bad login"
    # alice is a system user, but not the authorization module's: generic has no entry.
    assert s.login(user="alice", password="alice-secret") == "-ERR [AUTH] Bad login"
    s.close()

def test_pam_service_name(site):
    """`pam { service NAME; }` selects the PAM service (default gnu-pop3d)."""
    with open(os.path.join(site.pamdir, "pop3"), "w") as f:
        f.write("auth required pam_deny.so\naccount required pam_deny.so\n")
    site.write_conf("pam { service pop3; };")
    site.write_mbox([msg(1)])
    s = site.inetd()
    assert s.login() == "-ERR [AUTH] Bad login"
    s.close()

def test_mailutils_conf_fallback(tmp_path):
    """Without pop3d.conf, the site file is mailutils.conf and its program pop3d section
    applies; other programs' sections are not ours to check."""
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built")
    sysconf = subprocess.run([POP3D, "--show-config-options"], capture_output=True,
                             text=True).stdout
    sysconfdir = [l.split("=", 1)[1] for l in sysconf.splitlines()
                  if l.startswith("SYSCONFDIR=")][0]
    if os.path.exists(os.path.join(sysconfdir, "pop3d.conf")):
        pytest.skip("a site pop3d.conf exists in " + sysconfdir)
    mu = tmp_path / "mailutils.conf"
    env = dict(os.environ, MU_SITE_CONFIG_FILE=str(mu))
    mu.write_text("logging { facility mail; };\nprogram imap4d { no-such-thing 1; };\n"
                  "program pop3d {\n  timeout 30;\n};\n")
    # As root, lint checks the privsep user too: name one this host has.
    lint = [POP3D, "--config-lint", "--set=privsep-user=nobody"]
    p = subprocess.run(lint, capture_output=True, env=env)
    assert p.returncode == 0, p.stderr
    mu.write_text("program pop3d {\n  timeout never-ever;\n};\n")
    p = subprocess.run(lint, capture_output=True, env=env)
    assert p.returncode == 78
    assert ("%s:2: " % mu).encode() in p.stderr
