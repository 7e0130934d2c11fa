"""The sql module against real servers: MariaDB (mariadbd) and PostgreSQL (postgres),
each started by the test in a temporary directory, listening on 127.0.0.1 and a Unix
socket, loaded with virtual users, stopped by PID at the end.  Mailutils' sql { }
statements as a Mailutils site writes them: plain, crypt, hash and scrambled passwords,
the user's fields (name, uid, gid, home, mailbox) from the getpwnam query through a
field-map, names escaped by the client library, a temporary answer while the server is
down and the next login once it is back."""
import base64
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import POP3D, free_port, mbox_of, msg

MARIADB_INSTALL = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or \
    shutil.which("mysqld", path="/usr/sbin:/usr/bin")
MARIADB = shutil.which("mariadb") or shutil.which("mysql")
PGBIN = next((d for d in sorted(
    (os.path.join("/usr/lib/postgresql", v, "bin")
     for v in (os.listdir("/usr/lib/postgresql") if os.path.isdir("/usr/lib/postgresql")
               else [])), reverse=True) if os.path.exists(os.path.join(d, "initdb"))),
    None)

FAILED = re.compile(r"authentication failed for (.+) from \S+: ([^:]+): (.*)$")
SQL_PW = "sql-secret"


def built(key):
    if not os.path.exists(POP3D):
        return False
    out = subprocess.run([POP3D, "--show-config-options"], capture_output=True,
                         text=True).stdout
    return key in out.split()


def wait_for(what, ready, proc, logfile, timeout=60):
    """Poll ready() until it holds; fail with the server's log if it exits or the
    bound passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            log = open(logfile, errors="replace").read()[-3000:] \
                if os.path.exists(logfile) else ""
            raise RuntimeError("%s did not start: %s" % (what, log))
        time.sleep(0.05)


def accepts(path=None, port=None):
    s = socket.socket(socket.AF_UNIX if path else socket.AF_INET)
    try:
        s.connect(path if path else ("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def stop(proc, sig=signal.SIGTERM):
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sha512_crypt(password):
    out = subprocess.run(["openssl", "passwd", "-6", password], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip("openssl passwd -6 is not available")
    return out.stdout.strip()


def scrambled(pw):
    """MySQL's PASSWORD() (4.1 and later)."""
    return "*" + hashlib.sha1(hashlib.sha1(pw.encode()).digest()).hexdigest().upper()


class Server:
    """A database server of the test's own; the subclass knows how to run it."""
    proc = None
    stop_signal = signal.SIGTERM

    def stop(self):
        stop(self.proc, self.stop_signal)

    def restart(self):
        self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB(Server):
    iface = "mysql"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pop3d-mariadb-")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.log = os.path.join(self.dir, "error.log")
        self.port = free_port()
        self.user_opt = ["--user=" + pwd.getpwuid(os.getuid()).pw_name]
        p = subprocess.run([MARIADB_INSTALL, "--no-defaults", "--datadir=" + self.data,
                            "--auth-root-authentication-method=normal", "--skip-test-db",
                            "--skip-name-resolve"] + self.user_opt,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", "--datadir=" + self.data, "--socket=" + self.sock,
             "--port=%d" % self.port, "--bind-address=127.0.0.1", "--skip-name-resolve",
             "--log-error=" + self.log, "--pid-file=" + os.path.join(self.dir, "pid"),
             "--innodb-buffer-pool-size=16M", "--skip-log-bin"] + self.user_opt,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("mariadbd", lambda: accepts(port=self.port) and accepts(path=self.sock),
                 self.proc, self.log)

    def sql(self, text):
        p = subprocess.run([MARIADB, "--no-defaults", "--socket=" + self.sock, "-uroot",
                            "--batch"], input=text, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def load(self, users):
        rows = ",\n".join(
            "(%s, %s, %s, PASSWORD(%s), %d, %d, %s, '/bin/sh', %s)" % (
                self.literal(u["name"]), self.literal(u["plain"]),
                self.literal(sha512_crypt(u["crypt"])),
                self.literal(u["scrambled"]), u["uid"], u["gid"], self.literal(u["home"]),
                self.literal(u["mbox"]))
            for u in users)
        self.sql("""CREATE DATABASE mail;
CREATE USER 'popsql'@'127.0.0.1' IDENTIFIED BY '%s';
CREATE USER 'popsql'@'localhost' IDENTIFIED BY '%s';
GRANT SELECT ON mail.* TO 'popsql'@'127.0.0.1';
GRANT SELECT ON mail.* TO 'popsql'@'localhost';
USE mail;
CREATE TABLE users (login VARCHAR(255) PRIMARY KEY, pw_plain VARCHAR(255),
  pw_crypt VARCHAR(255), pw_scrambled VARCHAR(64), uid INT, gid INT,
  home VARCHAR(255), shell VARCHAR(64), mbox VARCHAR(255));
INSERT INTO users VALUES %s;
""" % (SQL_PW, SQL_PW, rows))

    @staticmethod
    def literal(v):
        if v is None:
            return "NULL"
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def host_lines(self, socket_form):
        if socket_form:
            return 'host "%s";' % self.sock
        return "host 127.0.0.1; port %d;" % self.port


class PostgreSQL(Server):
    iface = "postgres"
    stop_signal = signal.SIGINT              # fast shutdown: it has clients
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pop3d-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = free_port()
        # The server refuses to run as root: it runs as postgres then.
        self.as_user = {}
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        p = subprocess.run([os.path.join(PGBIN, "initdb"), "-D", self.data, "-U", "postgres",
                            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                            "--no-sync"], capture_output=True, text=True, **self.as_user)
        assert p.returncode == 0, p.stdout + p.stderr
        self.sock = os.path.join(self.dir, ".s.PGSQL.%d" % self.port)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(PGBIN, "postgres"), "-D", self.data, "-k", self.dir,
             "-p", str(self.port), "-h", "127.0.0.1", "-c", "fsync=off",
             "-c", "logging_collector=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"), **self.as_user)
        wait_for("postgres", lambda: accepts(port=self.port) and accepts(path=self.sock),
                 self.proc, self.log)

    def sql(self, text, db="postgres"):
        p = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", db],
                           input=text, capture_output=True, text=True, **self.as_user)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def load(self, users):
        self.sql("CREATE USER popsql PASSWORD '%s';\nCREATE DATABASE mail;\n" % SQL_PW)
        rows = ",\n".join(
            "(%s, %s, %s, %s, %d, %d, %s, '/bin/sh', %s)" % (
                self.literal(u["name"]), self.literal(u["plain"]),
                self.literal(sha512_crypt(u["crypt"])),
                self.literal(scrambled(u["scrambled"])), u["uid"], u["gid"],
                self.literal(u["home"]), self.literal(u["mbox"]))
            for u in users)
        self.sql("""CREATE TABLE users (login TEXT PRIMARY KEY, pw_plain TEXT, pw_crypt TEXT,
  pw_scrambled TEXT, uid INTEGER, gid INTEGER, home TEXT, shell TEXT, mbox TEXT);
INSERT INTO users VALUES %s;
GRANT SELECT ON users TO popsql;
""" % rows, db="mail")

    @staticmethod
    def literal(v):
        if v is None:
            return "NULL"
        return "'" + v.replace("'", "''") + "'"

    def host_lines(self, socket_form):
        if socket_form:
            return 'host "%s";' % self.sock      # the socket itself, as Mailutils names it
        return "host 127.0.0.1; port %d;" % self.port


def users(site, vdir):
    """The virtual users: uid and gid of the harness's alice and bob, homes and maildrops
    in vdir (the server's rows outlive a test's site), maildrops named by the mbox column
    (NULL: the configured spool and the name)."""
    alice, bob = site.uids["alice"], site.uids["bob"]
    return [
        dict(name="vuser", plain="plain-pw", crypt="crypt-pw", scrambled="scr-pw",
             uid=alice, gid=site.gid, home=os.path.join(vdir, "home-vuser"),
             mbox=os.path.join(vdir, "vuser.mbox")),
        dict(name="nobox", plain="nobox-pw", crypt="nobox-pw", scrambled="nobox-pw",
             uid=bob, gid=site.gid, home=os.path.join(vdir, "home-nobox"), mbox=None),
        dict(name="o'bri\\en", plain="quote-pw", crypt="quote-pw", scrambled="quote-pw",
             uid=alice, gid=site.gid, home=os.path.join(vdir, "home-vuser"),
             mbox=os.path.join(vdir, "quote.mbox")),
        dict(name="rootish", plain="root-pw", crypt="root-pw", scrambled="root-pw",
             uid=0, gid=0, home="/root", mbox=os.path.join(vdir, "root.mbox")),
    ]


SERVERS = {"mysql": (MariaDB, lambda: MARIADB_INSTALL and MARIADBD and MARIADB,
                     "HAVE_MYSQL", "mariadb-server and mariadb-client"),
           "postgres": (PostgreSQL, lambda: PGBIN, "HAVE_PGSQL", "postgresql")}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request):
    cls, present, key, pkgs = SERVERS[request.param]
    if not built(key):
        pytest.skip("pop3d built without the %s interface (%s)" % (request.param, key))
    if not present():
        pytest.skip("no %s server: install %s" % (request.param, pkgs))
    srv = cls()
    srv.loaded = False
    srv.vdir = tempfile.mkdtemp(prefix="pop3d-vmail-")
    os.chmod(srv.vdir, 0o755)
    yield srv
    srv.close()
    shutil.rmtree(srv.vdir, ignore_errors=True)


@pytest.fixture
def db(site, server):
    """The server loaded with this site's users (once per server), the maildrops made."""
    if not server.loaded:
        server.load(users(site, server.vdir))
        server.loaded = True
    for u in users(site, server.vdir):
        if u["uid"] != 0:
            os.makedirs(u["home"], exist_ok=True)
            if site.root:
                os.chown(u["home"], u["uid"], u["gid"])
        path = u["mbox"] or os.path.join(site.spool, u["name"])
        count = {"vuser": 3, "nobox": 1}.get(u["name"], 2)
        with open(path, "w") as f:
            f.write(mbox_of([msg(i + 1) for i in range(count)]))
        os.chmod(path, 0o600)
        if site.root:
            os.chown(path, u["uid"], u["gid"])
    return server


def configure(site, srv, encryption="crypt", column=None, auth=None, socket_form=False,
              extra=""):
    column = column or {"plain": "pw_plain", "crypt": "pw_crypt", "hash": "pw_crypt",
                        "scrambled": "pw_scrambled"}[encryption]
    site.write_conf("""login-penalty-max 0;
sql {
  interface %s;
  %s
  user popsql;
  passwd "%s";
  db mail;
  getpwnam "SELECT login AS name, pw_crypt AS passwd, uid, gid, home, shell, mbox FROM users WHERE login = '$user'";
  getpass "SELECT %s FROM users WHERE login = '${user}'";
  password-encryption %s;
  field-map "dir=home:mailbox=mbox";
};
%s""" % (srv.iface, srv.host_lines(socket_form), SQL_PW, column, encryption, extra),
        auth=auth or "auth { authentication sql; authorization sql; };")


def attempt(site, user, password, plain=False):
    """One login in a fresh session (USER and PASS, or AUTH PLAIN): the answer, STAT's
    answer if it logged in, and the reason logged if it did not."""
    s = site.inetd()
    if plain:
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        answer = s.cmd("AUTH PLAIN " + token.decode())
    else:
        assert s.cmd("USER " + user).startswith("+OK")
        answer = s.cmd("PASS " + password)
    stat = s.cmd("STAT") if answer.startswith("+OK") else None
    try:
        s.cmd("QUIT")
    except OSError:
        pass                                  # a refusal that ends the session
    s.close()
    reasons = [m.group(3) for m in map(FAILED.search, s.stderr.splitlines()) if m]
    return answer, stat, reasons


@pytest.mark.parametrize("encryption,password", [
    ("plain", "plain-pw"), ("crypt", "crypt-pw"), ("hash", "crypt-pw"),
    ("scrambled", "scr-pw")])
def test_password_kinds(site, db, encryption, password):
    configure(site, db, encryption)
    answer, stat, _ = attempt(site, "vuser", password)
    assert answer.startswith("+OK"), answer
    assert stat.startswith("+OK 3 "), stat           # the mailbox column's maildrop
    answer, stat, reasons = attempt(site, "vuser", password + "x")
    assert answer == "-ERR [AUTH] Bad login"
    assert reasons == ["bad user name or password"]


def test_unknown_user_and_wrong_password_alike(site, db):
    configure(site, db, "crypt")
    known = attempt(site, "vuser", "wrong")
    unknown = attempt(site, "nosuchuser", "wrong")
    assert known[0] == unknown[0] == "-ERR [AUTH] Bad login"
    assert known[2] == unknown[2] == ["bad user name or password"]


def test_fields_decide_the_maildrop(site, db):
    """mailbox NULL: the configured spool and the name the query returned; uid 0 from the
    database is never served."""
    configure(site, db, "plain")
    answer, stat, _ = attempt(site, "nobox", "nobox-pw")
    assert answer.startswith("+OK") and stat.startswith("+OK 1 "), (answer, stat)
    answer, stat, reasons = attempt(site, "rootish", "root-pw")
    assert answer.startswith("-ERR") and stat is None, answer


def test_home_in_mailbox_pattern(site, db):
    """The dir column is the user's home: a pattern with ${home} finds the maildrop there."""
    path = os.path.join(db.vdir, "home-nobox", "mbox")
    with open(path, "w") as f:
        f.write(mbox_of([msg(1), msg(2), msg(3), msg(4)]))
    if site.root:
        os.chown(path, site.uids["bob"], site.gid)
    configure(site, db, "plain", extra='mailbox { mailbox-pattern "${home}/mbox"; };')
    answer, stat, _ = attempt(site, "nobox", "nobox-pw")
    assert answer.startswith("+OK") and stat.startswith("+OK 4 "), (answer, stat)


def test_generic_checks_the_getpwnam_hash(site, db):
    """authentication generic checks the passwd column sql's getpwnam returned."""
    configure(site, db, "plain",
              auth="auth { authentication generic; authorization sql; };")
    assert attempt(site, "vuser", "crypt-pw")[0].startswith("+OK")
    assert attempt(site, "vuser", "plain-pw")[0] == "-ERR [AUTH] Bad login"


def test_unix_socket(site, db):
    configure(site, db, "plain", socket_form=True)
    answer, stat, _ = attempt(site, "vuser", "plain-pw")
    assert answer.startswith("+OK") and stat.startswith("+OK 3 "), (answer, stat)


@pytest.mark.parametrize("name,plain", [
    ("x'OR'1'='1", False), ("x\\'OR(1=1)#", False), ("\\", False), ("'", False),
    ("%", False), ("vuser'#", False), ("vuser'--", False), ("vuser\\", False),
    ("'UNION(SELECT'vuser','x',1000,1000,'a','b','c')#", False),
    ("x' OR '1'='1", True), ("vuser' -- ", True), ("x\\' OR 1=1 -- ", True),
])
def test_injection_is_a_name(site, db, name, plain):
    """Quotes, backslashes and comments in the name (USER, or AUTH PLAIN which may hold
    spaces) are part of a name nobody has: [AUTH], never a login, never a broken query
    ([SYS/TEMP])."""
    configure(site, db, "plain")
    answer, stat, reasons = attempt(site, name, "plain-pw", plain)
    assert answer == "-ERR [AUTH] Bad login", answer
    assert reasons == ["bad user name or password"]


def test_quote_and_backslash_in_a_real_name(site, db):
    configure(site, db, "plain")
    answer, stat, _ = attempt(site, "o'bri\\en", "quote-pw")
    assert answer.startswith("+OK") and stat.startswith("+OK 2 "), (answer, stat)


def test_nul_in_user(site, db):
    """A NUL makes the command line invalid: no query is made, the session goes on."""
    configure(site, db, "plain")
    s = site.inetd()
    assert s.cmd("USER vuser\0' OR 1=1").startswith("-ERR")
    assert s.login(user="vuser", password="plain-pw").startswith("+OK")
    s.cmd("QUIT")
    s.close()


def test_server_down_then_back(site, db):
    """The monitor's connection, the server stopped under it: [SYS/TEMP] (never [AUTH]),
    then the same session logs in once the server is back."""
    configure(site, db, "crypt")
    s = site.inetd()
    assert s.login(user="vuser", password="wrong") == "-ERR [AUTH] Bad login"
    db.stop()
    try:
        r = s.login(user="vuser", password="crypt-pw")
        assert r.startswith("-ERR [SYS/TEMP]"), r
    finally:
        db.restart()
    assert s.login(user="vuser", password="crypt-pw").startswith("+OK")
    assert s.cmd("STAT").startswith("+OK 3 ")
    s.cmd("QUIT")
    s.close()
    assert "temporary failure" in s.stderr or "sql:" in s.stderr, s.stderr


def test_wrong_database_password_is_temporary(site, db):
    configure(site, db, "plain")
    with open(site.conf) as f:
        text = f.read()
    with open(site.conf, "w") as f:
        f.write(text.replace('passwd "%s"' % SQL_PW, 'passwd "not-it"'))
    answer, _, reasons = attempt(site, "vuser", "plain-pw")
    assert answer.startswith("-ERR [SYS/TEMP]"), answer


def test_config_lint_refusals(site, server):
    site.write_conf("sql { interface odbc; };",
                    auth="auth { authentication sql; authorization sql; };")
    p = subprocess.run([POP3D, "--config-lint", "--config-file=" + site.conf],
                       capture_output=True, text=True, env=site.env())
    assert p.returncode == 78
    assert "interface `odbc' is not supported" in p.stderr
    assert re.search(r"pop3d\.conf:\d+: sql: ", p.stderr), p.stderr
