"""The ldap module end to end against a real OpenLDAP slapd started here (mdb backend,
core/cosine/nis/inetorgperson schemas, users from an LDIF, a TLS certificate from
certtool): Mailutils' password schemes, user fields for the maildrop, escaped filters,
a server stopped or hung mid-run, StartTLS and ldaps, bind-as-user, the configuration
checks, and the same answers as Mailutils' pop3d for the same configuration."""
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import conftest
from conftest import POP3D, Session, Site, free_port, mbox_of, msg

SLAPD = shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd")
                                  else None)
SLAPADD = shutil.which("slapadd") or ("/usr/sbin/slapadd"
                                      if os.path.exists("/usr/sbin/slapadd") else None)
CERTTOOL = shutil.which("certtool")
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"
MAILUTILS_POP3D = "/usr/sbin/pop3d"

SUFFIX = "dc=example,dc=org"
ROOTPW = "root-secret"
SERVICE = ("cn=pop3d," + SUFFIX, "service-secret")     # reads userPassword
LIMITED = ("cn=limited," + SUFFIX, "limited-secret")   # can't read userPassword
TLSONLY = ("cn=tlsonly," + SUFFIX, "tlsonly-secret")   # reads it over TLS only

BAD = "-ERR [AUTH] Bad login"
TEMP = "-ERR [SYS/TEMP] Cannot authenticate"


def ldap_built():
    if not os.path.exists(POP3D):
        return False
    out = subprocess.run([POP3D, "--show-config-options"], capture_output=True,
                         text=True).stdout
    return "WITH_LDAP" in out.split()


pytestmark = [
    pytest.mark.skipif(SLAPD is None or SLAPADD is None,
                       reason="slapd is not installed (Debian packages slapd, ldap-utils)"),
    pytest.mark.skipif(not os.path.isdir(SCHEMA_DIR) or not os.path.isdir(MODULE_DIR),
                       reason="slapd's schemas or modules are not where Debian puts them"),
    pytest.mark.skipif(CERTTOOL is None, reason="certtool (gnutls-bin) is not installed"),
    pytest.mark.skipif(not ldap_built(), reason="pop3d built without LDAP (--with-ldap)"),
]


def b64(data):
    return base64.b64encode(data).decode()


def crypt6(password):
    out = subprocess.run(["openssl", "passwd", "-6", password], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip("openssl passwd -6 is not available")
    return out.stdout.strip()


def user_passwords():
    """login -> (password, userPassword value): every scheme Mailutils reads."""
    salt = os.urandom(6)
    return {
        "carol": ("carol plain", "carol plain"),
        "dave": ("dave-crypt", "{CRYPT}" + crypt6("dave-crypt")),
        "erin": ("erin-md5", "{MD5}" + b64(hashlib.md5(b"erin-md5").digest())),
        "frank": ("frank-smd5", "{SMD5}" + b64(hashlib.md5(b"frank-smd5" + salt).digest()
                                                + salt)),
        "grace": ("grace-sha", "{SHA}" + b64(hashlib.sha1(b"grace-sha").digest())),
        "heidi": ("heidi-ssha", "{ssha}" + b64(hashlib.sha1(b"heidi-ssha" + salt).digest()
                                               + salt)),
    }


def certtool(*args):
    subprocess.run([CERTTOOL] + list(args), check=True, capture_output=True)


def make_pki(d):
    p = lambda n: os.path.join(d, n)
    with open(p("ca.tmpl"), "w") as f:
        f.write('cn = "ldap test CA"\nca\ncert_signing_key\nexpiration_days = 3\n')
    with open(p("srv.tmpl"), "w") as f:
        f.write('cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                'tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 3\n')
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", p("ca-key.pem"))
    certtool("--generate-self-signed", "--load-privkey", p("ca-key.pem"),
             "--template", p("ca.tmpl"), "--outfile", p("ca.pem"))
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", p("key.pem"))
    certtool("--generate-certificate", "--load-privkey", p("key.pem"),
             "--load-ca-certificate", p("ca.pem"), "--load-ca-privkey", p("ca-key.pem"),
             "--template", p("srv.tmpl"), "--outfile", p("cert.pem"))


class Slapd:
    """A slapd of our own: slapd.conf, an mdb database loaded with slapadd, listening on
    ldap:// and ldaps:// on free 127.0.0.1 ports and on an ldapi:// socket."""

    def __init__(self, work, uid, gid, home):
        self.dir = work
        self.uid, self.gid, self.home = uid, gid, home
        self.port, self.sport = free_port(), free_port()
        self.sock = os.path.join(work, "ldapi")
        self.proc = None
        self.passwords = user_passwords()
        make_pki(work)
        os.mkdir(os.path.join(work, "db"))
        self.conf = os.path.join(work, "slapd.conf")
        with open(self.conf, "w") as f:
            for s in ("core", "cosine", "nis", "inetorgperson"):
                f.write("include %s/%s.schema\n" % (SCHEMA_DIR, s))
            f.write("modulepath %s\nmoduleload back_mdb\n" % MODULE_DIR)
            f.write("pidfile %s\n" % os.path.join(work, "slapd.pid"))
            f.write("TLSCACertificateFile %s\nTLSCertificateFile %s\n"
                    "TLSCertificateKeyFile %s\n" % tuple(
                        os.path.join(work, n) for n in ("ca.pem", "cert.pem", "key.pem")))
            f.write("database mdb\nmaxsize 16777216\nsuffix \"%s\"\n"
                    "rootdn \"cn=admin,%s\"\nrootpw %s\ndirectory %s\n"
                    % (SUFFIX, SUFFIX, ROOTPW, os.path.join(work, "db")))
            f.write('access to attrs=userPassword\n'
                    '  by dn.exact="%s" read\n'
                    '  by dn.exact="%s" ssf=128 read\n'
                    '  by anonymous auth\n'
                    '  by * none\n'
                    'access to * by * read\n' % (SERVICE[0], TLSONLY[0]))
        ldif = os.path.join(work, "users.ldif")
        with open(ldif, "w") as f:
            f.write(self.ldif())
        subprocess.run([SLAPADD, "-f", self.conf, "-l", ldif], check=True,
                       capture_output=True)
        self.start()

    def ldif(self):
        out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\n"
               "dc: example\n" % SUFFIX,
               "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n" % SUFFIX]
        for dn, pw in (SERVICE, LIMITED, TLSONLY):
            out.append("dn: %s\nobjectClass: organizationalRole\n"
                       "objectClass: simpleSecurityObject\ncn: %s\nuserPassword: %s\n"
                       % (dn, dn.split(",")[0][3:], pw))
        for name, (_, stored) in sorted(self.passwords.items()):
            out.append(self.person(name, stored))
        # ivan: his own home and maildrop (description, mapped by the tests that want it).
        out.append(self.person("ivan", "ivan-pw", home=os.path.join(self.home, "ivan"),
                               extra="description: %s\n"
                               % os.path.join(self.home, "ivan", "INBOX")))
        # Two entries for one name: the directory is ambiguous.
        out.append(self.person("twin", "twin-pw", rdn="cn=twin1"))
        out.append(self.person("twin", "twin-pw", rdn="cn=twin2"))
        return "\n".join(out)

    def person(self, name, stored, home=None, extra="", rdn=None):
        return ("dn: %s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                "uid: %s\ncn: %s\nsn: %s\nuidNumber: %d\ngidNumber: %d\n"
                "homeDirectory: %s\ngecos: %s\nloginShell: /bin/sh\nuserPassword: %s\n%s"
                % (rdn or "uid=" + name, SUFFIX, name, name.title(), name, self.uid,
                   self.gid, home or "/nonexistent", name.title(), stored, extra))

    url = property(lambda self: "ldap://127.0.0.1:%d/" % self.port)
    surl = property(lambda self: "ldaps://127.0.0.1:%d/" % self.sport)
    ca = property(lambda self: os.path.join(self.dir, "ca.pem"))

    def start(self):
        urls = "%s %s ldapi://%s" % (self.url, self.surl, self.sock.replace("/", "%2F"))
        self.proc = subprocess.Popen([SLAPD, "-d", "0", "-f", self.conf, "-h", urls],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("slapd exited: " + self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("slapd did not start listening")
                time.sleep(0.02)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def config(self, extra="", dn=SERVICE, url=None):
        return ('ldap {\n  enable yes;\n  url "%s";\n  base "%s";\n  binddn "%s";\n'
                '  passwd "%s";\n%s};\n' % (url or self.url, SUFFIX, dn[0], dn[1], extra))


@pytest.fixture
def ldap_site(tmp_path):
    """A Site whose files the session can reach after dropping to the LDAP users' uid,
    and a slapd for it."""
    if not os.path.exists(POP3D):
        pytest.skip("pop3d binary not built: " + POP3D)
    if not (conftest.PAM_WRAPPER and conftest.NSS_WRAPPER and conftest.UID_WRAPPER
            and conftest.PAM_MATRIX):
        pytest.skip("cwrap packages missing (libpam-wrapper libnss-wrapper libuid-wrapper)")
    d = tempfile.mkdtemp(prefix="pop3d-ldap.")
    os.chmod(d, 0o755)
    site = Site(d)
    uid = site.uids["alice"]
    work = os.path.join(d, "slapd")
    os.mkdir(work)
    home = os.path.join(d, "home")
    ivan = os.path.join(home, "ivan")
    os.mkdir(ivan)
    if site.root:
        os.chown(ivan, uid, site.gid)
    site.slapd = Slapd(work, uid, site.gid, home)
    try:
        yield site
    finally:
        site.cleanup()
        site.slapd.stop()
        shutil.rmtree(d, ignore_errors=True)


def put_mbox(site, path, n):
    with open(path, "w") as f:
        f.write(mbox_of([msg(i) for i in range(1, n + 1)]))
    os.chmod(path, 0o600)
    if site.root:
        os.chown(path, site.uids["alice"], site.gid)


def attempt(site, user, password, env=None, binary=None):
    """One session: USER, PASS; the PASS answer, and STAT's when the login worked."""
    if env is not None:
        site.env = lambda: env
    s = site.inetd() if binary is None else mailutils_session(site, binary, env)
    try:
        r = s.cmd("USER " + user)
        if r.startswith("+OK"):
            r = s.cmd("PASS " + password)
        stat = s.cmd("STAT") if r.startswith("+OK") else None
        s.cmd("QUIT")
    finally:
        s.close()
    return r, stat, getattr(s, "stderr", "")


def mailutils_session(site, binary, env):
    a, b = socket.socketpair()
    proc = subprocess.Popen([binary, "-i", "--config-file=" + site.conf_for(binary)],
                            stdin=b, stdout=b, stderr=subprocess.PIPE, close_fds=True,
                            env=env)
    b.close()
    a.settimeout(60)
    site.procs.append(proc)
    return Session(a, proc)


def ldap_env(site, **extra):
    env = Site.env(site)
    # Only what the test gives: not the host's /etc/ldap/ldap.conf or ~/.ldaprc.
    env["LDAPCONF"] = os.path.join(site.slapd.dir, "ldap.conf")
    env["LDAPRC"] = os.path.join(site.slapd.dir, "ldaprc")
    env.update(extra)
    return env


def use_ldap(site, extra="", auth="authentication ldap; authorization ldap;", **kw):
    site.write_conf(site.slapd.config(extra, **kw) + "login-penalty-max 0;\n",
                    auth="auth { %s };" % auth)


def test_schemes_wrong_and_unknown(ldap_site):
    """Plain text, {CRYPT}, {MD5}, {SMD5}, {SHA}, {SSHA} (scheme names in any case)."""
    site = ldap_site
    use_ldap(site)
    env = ldap_env(site)
    for name, (password, _) in sorted(site.slapd.passwords.items()):
        put_mbox(site, os.path.join(site.spool, name), 2)
        r, stat, log = attempt(site, name, password, env)
        assert r.startswith("+OK"), (name, r, log)
        assert stat.startswith("+OK 2 "), (name, stat)
        r, _, log = attempt(site, name, password + "x", env)
        assert r == BAD, (name, r, log)
    r, _, log = attempt(site, "nosuchuser", "carol plain", env)
    assert r == BAD, log
    assert "bad user name or password" in log
    # One name, two entries: refused, and the log says why.
    r, _, log = attempt(site, "twin", "twin-pw", env)
    assert r == BAD
    assert "several directory entries" in log


def test_canonical_name(ldap_site):
    """The entry's uid names the maildrop whatever the case the client typed."""
    site = ldap_site
    use_ldap(site)
    put_mbox(site, os.path.join(site.spool, "carol"), 3)
    r, stat, log = attempt(site, "CAROL", "carol plain", ldap_env(site))
    assert r.startswith("+OK"), log
    assert stat.startswith("+OK 3 ")


def test_user_fields_make_the_maildrop(ldap_site):
    """uidNumber, gidNumber, homeDirectory and a mapped mailbox attribute."""
    site = ldap_site
    use_ldap(site, '  field-map "mailbox=description";\n')
    put_mbox(site, os.path.join(site.slapd.home, "ivan", "INBOX"), 4)
    r, stat, log = attempt(site, "ivan", "ivan-pw", ldap_env(site))
    assert r.startswith("+OK"), log
    assert stat.startswith("+OK 4 ")
    # Without the mapping the maildrop is the spool's, as for any user.
    use_ldap(site)
    put_mbox(site, os.path.join(site.spool, "ivan"), 1)
    r, stat, log = attempt(site, "ivan", "ivan-pw", ldap_env(site))
    assert stat.startswith("+OK 1 "), log


@pytest.mark.parametrize("name", ["car*", "*", "c*l", "carol)(uid=*", "*)(uid=carol",
                                  "carol\\", "carol\\2a", "(uid=carol)", "carol)(|(uid=*"])
def test_filter_injection(ldap_site, name):
    """Filter metacharacters in USER match only themselves (Mailutils' own module lets
    `car*' in as carol)."""
    site = ldap_site
    use_ldap(site)
    put_mbox(site, os.path.join(site.spool, "carol"), 1)
    r, _, log = attempt(site, name, "carol plain", ldap_env(site))
    assert r == BAD, (name, r, log)


def test_nul_in_user(ldap_site):
    site = ldap_site
    use_ldap(site)
    site.env = lambda: ldap_env(site)
    s = site.inetd()
    assert s.cmd("USER car\0ol").startswith("-ERR")
    assert s.cmd("PASS carol plain").startswith("-ERR")
    s.cmd("QUIT")
    s.close()


def test_server_stopped_then_back(ldap_site):
    """A server that goes away is [SYS/TEMP], never [AUTH]; the monitor's connection is
    opened again once it is back, in the same session."""
    site = ldap_site
    use_ldap(site)
    put_mbox(site, os.path.join(site.spool, "carol"), 2)
    site.env = lambda: ldap_env(site)
    s = site.inetd()
    assert s.cmd("USER carol").startswith("+OK")
    assert s.cmd("PASS wrong") == BAD        # the connection is open now
    site.slapd.stop()
    assert s.cmd("USER carol").startswith("+OK")
    assert s.cmd("PASS carol plain") == TEMP
    site.slapd.start()
    assert s.cmd("USER carol").startswith("+OK")
    assert s.cmd("PASS carol plain").startswith("+OK")
    assert s.cmd("STAT").startswith("+OK 2 ")
    s.cmd("QUIT")
    s.close()
    assert "ldap: " in s.stderr
    # A new session while it is down: the same.
    site.slapd.stop()
    r, _, log = attempt(site, "carol", "carol plain")
    assert r == TEMP, log
    assert "ldap: bind as %s: Can't contact LDAP server" % SERVICE[0] in log, log
    r, _, log = attempt(site, "nosuchuser", "x")
    assert r == TEMP, log


def test_server_hung(ldap_site):
    """A server that accepts and never answers: [SYS/TEMP] after the module's timeout,
    not a login that hangs."""
    site = ldap_site
    use_ldap(site)
    os.kill(site.slapd.proc.pid, signal.SIGSTOP)
    try:
        r, _, log = attempt(site, "carol", "carol plain", ldap_env(site))
    finally:
        os.kill(site.slapd.proc.pid, signal.SIGCONT)
    assert r == TEMP, log


def test_starttls(ldap_site):
    """`tls yes': StartTLS, the server's certificate checked against ldap.conf's CA
    (LDAPTLS_CACERT here).  tlsonly may read userPassword over TLS only."""
    site = ldap_site
    put_mbox(site, os.path.join(site.spool, "heidi"), 1)
    use_ldap(site, "  tls yes;\n", dn=TLSONLY)
    r, stat, log = attempt(site, "heidi", "heidi-ssha",
                           ldap_env(site, LDAPTLS_CACERT=site.slapd.ca))
    assert r.startswith("+OK"), log
    # Without TLS the password is not readable: refused.
    use_ldap(site, dn=TLSONLY)
    r, _, log = attempt(site, "heidi", "heidi-ssha",
                        ldap_env(site, LDAPTLS_CACERT=site.slapd.ca))
    assert r == BAD, log
    assert "no readable userPassword" in log
    # A certificate that can't be checked: the server is out of reach, not the user.
    use_ldap(site, "  tls yes;\n", dn=TLSONLY)
    r, _, log = attempt(site, "heidi", "heidi-ssha",
                        ldap_env(site, LDAPTLS_REQCERT="demand"))
    assert r == TEMP, log
    assert "StartTLS" in log


def test_ldaps_and_ldapi_urls(ldap_site):
    site = ldap_site
    put_mbox(site, os.path.join(site.spool, "grace"), 1)
    use_ldap(site, dn=TLSONLY, url=site.slapd.surl)
    r, _, log = attempt(site, "grace", "grace-sha",
                        ldap_env(site, LDAPTLS_CACERT=site.slapd.ca))
    assert r.startswith("+OK"), log
    use_ldap(site, url="ldapi://" + site.slapd.sock.replace("/", "%2F"))
    r, _, log = attempt(site, "grace", "grace-sha", ldap_env(site))
    assert r.startswith("+OK"), log


def test_bind_as_user(ldap_site):
    """binddn can't read userPassword: `bind-as-user yes' binds as the entry found."""
    site = ldap_site
    use_ldap(site, dn=LIMITED)
    put_mbox(site, os.path.join(site.spool, "carol"), 1)
    r, _, log = attempt(site, "carol", "carol plain", ldap_env(site))
    assert r == BAD, log
    use_ldap(site, "  bind-as-user yes;\n", dn=LIMITED)
    for name in ("carol", "heidi", "dave"):
        put_mbox(site, os.path.join(site.spool, name), 1)
        r, stat, log = attempt(site, name, site.slapd.passwords[name][0], ldap_env(site))
        assert r.startswith("+OK"), (name, log)
        r, _, log = attempt(site, name, "wrong", ldap_env(site))
        assert r == BAD, (name, log)
    r, _, log = attempt(site, "nosuchuser", "carol plain", ldap_env(site))
    assert r == BAD, log
    # An empty password would be an unauthenticated bind, which succeeds.
    site.env = lambda: ldap_env(site)
    s = site.inetd()
    assert s.cmd("USER carol").startswith("+OK")
    assert not s.cmd("PASS ").startswith("+OK")
    assert s.cmd("AUTH PLAIN " + b64(b"\0carol\0")).startswith("-ERR")
    s.cmd("QUIT")
    s.close()


def test_configuration_errors(ldap_site):
    site = ldap_site
    for body, message in (
            ('url "http://example.org/";', "url: not an LDAP URL"),
            ('url "ldap://[bad";', "url: not an LDAP URL"),
            ('url "ldap://127.0.0.1/ ftp://127.0.0.1/";', "url: not an LDAP URL"),
            ('field-map "name=uid:home=homeDirectory";', "field-map: unknown field"),
            ('field-map "uid=";', "field-map: invalid attribute name"),
            ('field-map "uid";', "field-map: expected NAME=ATTRIBUTE"),
            ('getpwnam "(uid=${user)";', "getpwnam: unterminated ${"),
            ("bind-as-user maybe;", "bind-as-user:")):
        with open(site.conf, "w") as f:
            f.write("ldap {\n  enable yes;\n  %s\n};\n" % body)
        p = subprocess.run([POP3D, "--config-lint", "--config-file=" + site.conf],
                           capture_output=True, text=True, env=site.env())
        assert p.returncode != 0, body
        assert "%s:3: %s" % (site.conf, message) in p.stderr, (body, p.stderr)


def test_same_answers_as_mailutils(ldap_site):
    """The same configuration, unchanged, on Mailutils' pop3d and on pop3d: the same
    users in, the same users out."""
    site = ldap_site
    if not os.path.exists(MAILUTILS_POP3D):
        pytest.skip("Mailutils' pop3d is not installed (mailutils-pop3d)")
    if not site.root:
        pytest.skip("Mailutils' pop3d must run as root to drop to the user")
    use_ldap(site)
    env = ldap_env(site)
    mu_env = {k: v for k, v in env.items() if k != "LD_PRELOAD"}
    cases = [("carol", "carol plain"), ("carol", "carol"), ("nosuchuser", "x")]
    for name, (password, _) in sorted(site.slapd.passwords.items()):
        put_mbox(site, os.path.join(site.spool, name), 1)
        cases += [(name, password), (name, password[:-1])]
    for name, password in cases:
        ours, _, log = attempt(site, name, password, env)
        theirs, _, mu_log = attempt(site, name, password, mu_env, binary=MAILUTILS_POP3D)
        assert ours.startswith("+OK") == theirs.startswith("+OK"), (
            name, password, ours, theirs, log, mu_log)
        if not ours.startswith("+OK"):
            assert ours == theirs == BAD


def test_enabled_block_is_in_the_default_lists(ldap_site):
    """As in Mailutils: with ldap { enable yes; } and no module list, ldap is tried (after
    the system and PAM modules, which don't know the user)."""
    site = ldap_site
    site.write_conf(site.slapd.config("") + "login-penalty-max 0;\n", auth="")
    env = ldap_env(site)
    name, (password, _) = sorted(site.slapd.passwords.items())[0]
    put_mbox(site, os.path.join(site.spool, name), 2)
    r, stat, log = attempt(site, name, password, env)
    assert r.startswith("+OK"), (r, log)
    assert stat.startswith("+OK 2 "), stat
    r, _, log = attempt(site, name, password + "x", env)
    assert r == BAD, log
