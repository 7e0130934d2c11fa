"""A refused login logs the same reason whether the user exists or not: a wrong password
of a known user and any password of an unknown one take one code path in every module
setup, so the log (like the answer) tells nothing about which names exist.  How long
the two take is measured by bench/timing.py, not here."""
import base64
import hmac
import os
import re

import pytest

from test_apop import apop_digest, b64, stamp_of, text_db, use_db
from test_auth import sha512_crypt

FAILED = re.compile(r"authentication failed for (\S+) from \S+: ([^:]+): (.*)$")


def pass_login(s, user, password):
    assert s.cmd("USER " + user).startswith("+OK")
    return s.cmd("PASS " + password)


def apop_login(s, user, secret):
    return s.cmd("APOP %s %s" % (user, apop_digest(stamp_of(s), secret)))


def cram_login(s, user, secret):
    r = s.cmd("AUTH CRAM-MD5")
    assert r.startswith("+ "), r
    challenge = base64.b64decode(r[2:])
    digest = hmac.new(secret.encode(), challenge, "md5").hexdigest()
    return s.cmd(b64("%s %s" % (user, digest)))


def reason_of(site, user, password, mech="PASS", login=pass_login):
    """The answer and the logged reason of one refused login in a fresh session."""
    s = site.inetd()
    answer = login(s, user, password)
    s.cmd("QUIT")
    s.close()
    lines = [m.groups() for m in map(FAILED.search, s.stderr.splitlines()) if m]
    assert len(lines) == 1, s.stderr
    logged_user, logged_mech, reason = lines[0]
    assert (logged_user, logged_mech) == (user, mech), lines[0]
    return answer, reason


def use_env(site, **files):
    env = site.env()
    env.update(files)
    site.env = lambda: env


def passwd_with_hash(site, user, hash_):
    """The harness's passwd file with user's password field set to hash_."""
    path = os.path.join(site.dir, "passwd")
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        for l in lines:
            fields = l.split(":")
            if fields[0] == user:
                fields[1] = hash_
            f.write(":".join(fields) + "\n")


def shadow_with(site, entries):
    path = os.path.join(site.dir, "shadow")
    with open(path, "w") as f:
        for user, hash_ in entries:
            f.write("%s:%s:19000:0:99999:7:::\n" % (user, hash_))
    use_env(site, NSS_WRAPPER_SHADOW=path)


def domain_with(site, domain, entries):
    dom = os.path.join(site.dir, "domains")
    os.makedirs(dom, exist_ok=True)
    with open(os.path.join(dom, domain), "w") as f:
        for user, hash_ in entries:
            f.write("%s:%s:%d:%d:%s:%s:/bin/false\n" % (
                user, hash_, site.uids["alice"], site.gid, user,
                os.path.join(site.dir, "home", "alice")))
    return dom


def setup_pam(site):
    site.write_conf()   # the harness's default: pam_matrix
    return "alice", "nosuchuser"


def setup_system(site):
    shadow_with(site, [("alice", sha512_crypt("shadow-pass"))])
    site.write_conf(auth="auth { authentication system; authorization system; };")
    return "alice", "nosuchuser"


def setup_generic(site):
    passwd_with_hash(site, "alice", sha512_crypt("passwd-pass"))
    site.write_conf(auth="auth { authentication generic; authorization generic; };")
    return "alice", "nosuchuser"


def setup_virtdomain(site):
    dom = domain_with(site, "example.org", [("carol", sha512_crypt("carol-pw"))])
    site.write_conf('virtdomain { passwd-dir "%s"; };' % dom,
                    auth="auth { authentication virtdomain; authorization virtdomain; };")
    return "carol@example.org", "nobody@example.org"


def setup_virtdomain_unknown_domain(site):
    dom = domain_with(site, "example.org", [("carol", sha512_crypt("carol-pw"))])
    site.write_conf('virtdomain { passwd-dir "%s"; };' % dom,
                    auth="auth { authentication virtdomain; authorization virtdomain; };")
    return "carol@example.org", "carol@nosuch.example"


def setup_every_module(site):
    """Mailutils' default order, each module knowing some user: alice has a passwd hash
    (generic), bob a shadow one (system), PAM's own passwords, a virtual domain."""
    passwd_with_hash(site, "alice", sha512_crypt("passwd-pass"))
    shadow_with(site, [("bob", sha512_crypt("shadow-pass"))])
    dom = domain_with(site, "example.org", [("carol", sha512_crypt("carol-pw"))])
    site.write_conf('virtdomain { passwd-dir "%s"; };' % dom,
                    auth="auth { authentication generic:system:pam:virtdomain; "
                         "authorization generic:virtdomain; };")
    return "bob", "nosuchuser"


def setup_system_then_pam(site):
    shadow_with(site, [("alice", sha512_crypt("shadow-pass"))])
    site.write_conf(auth="auth { authentication system:pam; authorization system; };")
    return "alice", "nosuchuser"


SETUPS = [setup_pam, setup_system, setup_generic, setup_virtdomain,
          setup_virtdomain_unknown_domain, setup_every_module, setup_system_then_pam]


@pytest.mark.parametrize("setup", SETUPS, ids=[f.__name__[6:] for f in SETUPS])
def test_unknown_user_logs_what_a_wrong_password_logs(site, setup):
    known, unknown = setup(site)
    site.write_mbox([])
    wrong = reason_of(site, known, "not-the-password")
    other = reason_of(site, unknown, "not-the-password")
    assert wrong == other, (wrong, other)
    assert wrong == ("-ERR [AUTH] Bad login", "bad user name or password"), wrong



# The digest of an unknown user is checked against a dummy secret (the same work) and
# logs apop_secret()'s AUTH_BAD_LOGIN; a wrong digest logs the same.
@pytest.mark.parametrize("mech,login", [("APOP", apop_login), ("CRAM-MD5", cram_login)],
                         ids=["apop", "cram-md5"])
def test_unknown_user_logs_what_a_wrong_digest_logs(site, mech, login):
    use_db(site, text_db(site))
    site.write_mbox([])
    wrong = reason_of(site, "alice", "not-the-secret", mech, login)
    other = reason_of(site, "nosuchuser", "not-the-secret", mech, login)
    assert other == ("-ERR [AUTH] Bad login", "bad user name or password"), other
    assert wrong == other, (wrong, other)
