"""The servers of the benchmark, each started on free 127.0.0.1 ports in its own scratch
directory with the same users, password hash and maildrops: pop3d (privilege separation
on), Dovecot's pop3, GNU Mailutils pop3d and popa3d.  Nothing in /etc is changed."""
import os
import pwd
import shlex
import shutil
import subprocess
import time

from bench import (NUSERS, dpkg_version, end_tree, free_port, statements, wait_port,
                   write_maildir, write_mbox, write_mh)

USERS = ["u%d" % i for i in range(NUSERS)] + ["big", "many", "dele", "mdir", "mhf"]
DOMAIN = "bench.test"


class Site:
    """What every server gets alike: the scratch root, the users' uid and gid (nobody's),
    the password hash, the TLS certificate and the maildrop sizes."""

    def __init__(self, root, pwhash, sizes):
        self.root = root
        pw = pwd.getpwnam("nobody")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.hash = pwhash
        self.sizes = sizes
        self.templates = os.path.join(root, "templates")
        os.makedirs(self.templates)
        self.cert = os.path.join(root, "cert.pem")
        self.key = os.path.join(root, "key.pem")
        # ECDSA P-256, the key TLS servers are usually given now.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key, "-out",
                        self.cert, "-days", "30", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        os.chmod(self.key, 0o600)

    def mbox(self, path, count, body_lines):
        """An mbox of count messages at path, copied from a template made once."""
        t = os.path.join(self.templates, "%d-%d" % (count, body_lines))
        if not os.path.exists(t):
            write_mbox(t, count, body_lines, self.uid, self.gid)
        shutil.copyfile(t, path)
        os.chown(path, self.uid, self.gid)
        os.chmod(path, 0o600)
        # An hour old: popa3d waits a second before it reads a maildrop changed in the
        # last second (a delivery may be under way).
        old = time.time() - 3600
        os.utime(path, (old, old))

    def fill(self, srv, measures):
        s = self.sizes
        for u in USERS[:NUSERS]:
            self.mbox(srv.maildrop(u), 10, 3)
        if "retr" in measures:
            self.mbox(srv.maildrop("big"), s["big"], 1200)
        if "open" in measures:
            self.mbox(srv.maildrop("many"), s["many"], 40)
        if "maildir" in measures and "maildir" in srv.formats:
            write_maildir(srv.maildrop("mdir"), s["many"], 40, self.uid, self.gid)
        if "mh" in measures and "mh" in srv.formats:
            write_mh(srv.maildrop("mhf"), s["many"], 40, self.uid, self.gid)

    def fill_dele(self, srv):
        self.mbox(srv.maildrop("dele"), self.sizes["dele"], 40)


class Server:
    name = "?"
    login_suffix = "@" + DOMAIN
    formats = ("mbox", "maildir", "mh")
    package = None

    def __init__(self, site):
        self.site = site
        self.dir = os.path.join(site.root, self.name)
        self.port = free_port()
        self.tls_port = free_port()
        self.proc = None
        self.notes = []          # how it was set up, for the report

    @property
    def pid(self):
        return self.proc.pid

    def home(self, u):
        return os.path.join(self.dir, "home", u)

    def maildrop(self, u):
        return os.path.join(self.home(u), "INBOX")

    def prepare(self):
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        for u in USERS:
            os.makedirs(self.home(u))
            os.chown(self.home(u), self.site.uid, self.site.gid)
        self.write_users()

    def no_tls(self, why):
        self.tls_port = None
        self.notes.append("no TLS: " + why)

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log)
        log.close()
        try:
            wait_port(self.port, self.proc)
            if self.tls_port:
                wait_port(self.tls_port, self.proc)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError("%s: %s" % (e, self.log_tail())) from None

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-5:])
        except OSError:
            return ""

    def stop(self):
        if self.proc:
            end_tree(self.proc)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def version(self):
        return dpkg_version(self.package) if self.package else None


class Pop3d(Server):
    name = "pop3d"

    def __init__(self, site, binary):
        super().__init__(site)
        self.binary = binary
        self.known = statements(binary)
        self.notes.append("privilege separation on (privsep-user pop3d)"
                          if "privsep-chroot" in self.known else
                          "this binary has no privilege separation")

    def version(self):
        r = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return (r.stdout.strip().splitlines() or ["?"])[0]

    def domains(self):
        return os.path.join(self.dir, "domains")

    def write_users(self):
        """A virtdomain passwd file: user:hash:uid:gid::home:shell."""
        os.makedirs(self.domains())
        with open(os.path.join(self.domains(), DOMAIN), "w") as f:
            for u in USERS:
                f.write("%s:%s:%d:%d::%s:/bin/false\n" % (u, self.site.hash, self.site.uid,
                                                         self.site.gid, self.home(u)))

    def own_statements(self):
        """Privilege separation with an empty chroot of its own, and the login penalty
        database in the scratch directory."""
        out = ""
        if "privsep-chroot" in self.known:
            empty = os.path.join(self.dir, "empty")
            os.makedirs(empty, mode=0o755, exist_ok=True)
            out += 'privsep-chroot "%s";\n' % empty
        if "login-penalty-file" in self.known:
            out += 'login-penalty-file "%s";\n' % os.path.join(self.dir, "penalty.db")
        return out

    def auth(self):
        return "auth { authentication virtdomain; authorization virtdomain; };\n"

    def conf_text(self):
        tls = ""
        if self.tls_port:
            tls = ('tls { ssl-certificate-file "%s"; ssl-key-file "%s"; };\n'
                   "server 127.0.0.1:%d { tls-mode connection; };\n"
                   % (self.site.cert, self.site.key, self.tls_port))
        return ("logging { syslog no; };\n%s"
                'virtdomain { passwd-dir "%s"; };\n'
                "max-children 100;\n%s"
                "server 127.0.0.1:%d { };\n%s"
                % (self.auth(), self.domains(), self.own_statements(), self.port, tls))

    def argv(self):
        conf = os.path.join(self.dir, self.name + ".conf")
        with open(conf, "w") as f:
            f.write(self.conf_text())
        return [self.binary, "-d100", "--foreground", "--config-file=" + conf]


class Mailutils(Pop3d):
    name = "mailutils"
    package = "mailutils-pop3d"

    def __init__(self, site):
        super().__init__(site, "/usr/sbin/pop3d")
        self.notes[:] = ["virtdomain users, the hash checked by the generic module"]

    def version(self):
        return dpkg_version(self.package)

    def auth(self):
        # Mailutils' virtdomain module only looks users up; `generic` checks the hash.
        return "auth { authentication generic; authorization virtdomain; };\n"

    def own_statements(self):
        # Mailutils locks directory maildrops (Maildir, MH) with files in a lock
        # directory, /var/lock/subsys/mail by default: one of its own here.
        locks = os.path.join(self.dir, "locks")
        os.makedirs(locks, exist_ok=True)
        os.chown(locks, self.site.uid, self.site.gid)
        return 'mandatory-locking { lock-directory "%s"; };\n' % locks


class Dovecot(Server):
    name = "dovecot"
    package = "dovecot-pop3d"
    formats = ("mbox", "maildir")         # no MH in Dovecot

    def __init__(self, site):
        super().__init__(site)
        self.notes.append("Dovecot's defaults otherwise (a login process per connection, "
                          "service_count = 1)")

    def users_file(self):
        return os.path.join(self.dir, "users")

    def write_users(self):
        """Dovecot's passwd-file: user@domain names, the same hash."""
        with open(self.users_file(), "w") as f:
            for u in USERS:
                extra = "userdb_mail=maildir:~/INBOX" if u == "mdir" else ""
                f.write("%s@%s:%s:%d:%d::%s::%s\n" % (u, DOMAIN, self.site.hash,
                                                      self.site.uid, self.site.gid,
                                                      self.home(u), extra))

    def argv(self):
        base = os.path.join(self.dir, "run")
        os.makedirs(base, exist_ok=True)
        ssl = "ssl = no\n"
        if self.tls_port:
            ssl = "ssl = yes\nssl_cert = <%s\nssl_key = <%s\n" % (self.site.cert,
                                                                  self.site.key)
        # SHA512-CRYPT for $6$; CRYPT hands any other hash ($y$) to crypt(3).
        scheme = "SHA512-CRYPT" if self.site.hash.startswith("$6$") else "CRYPT"
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("""protocols = pop3
base_dir = %(base)s
state_dir = %(base)s/state
log_path = %(dir)s/dovecot.log
%(ssl)sdisable_plaintext_auth = no
auth_mechanisms = plain
listen = 127.0.0.1
first_valid_uid = 1
mail_location = mbox:~/mail:INBOX=~/INBOX
mbox_write_locks = fcntl
pop3_uidl_format = %%08Xu%%08Xv
passdb {
  driver = passwd-file
  args = scheme=%(scheme)s %(users)s
}
userdb {
  driver = passwd-file
  args = %(users)s
}
service pop3-login {
  inet_listener pop3 {
    port = %(port)d
  }
  inet_listener pop3s {
    port = %(tport)d
    ssl = yes
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
""" % {"base": base, "dir": self.dir, "ssl": ssl, "scheme": scheme,
       "users": self.users_file(), "port": self.port, "tport": self.tls_port or 0})
        return ["/usr/sbin/dovecot", "-F", "-c", conf]


POPA3D_DIR = os.environ.get("POPA3D_DIR", "/usr/local/lib/pop3d-bench/popa3d")


class Popa3d(Server):
    """popa3d serves one connection on its standard input and output, started by an
    inetd: here socat (TCP-LISTEN with fork, EXEC with nofork: popa3d gets the socket
    itself).  Its package conflicts with the other peers', so bench/setup.sh only unpacks
    it (POPA3D_DIR), and socat runs in a mount namespace of its own (unshare) where what
    popa3d needs is bind-mounted: passwd and shadow copies with its user and the
    benchmark's users (it authenticates through PAM, pam_unix), /etc/pam.d with its
    service, a scratch spool as /var/mail and an empty /var/lib/popa3d (its chroot).
    The files in /etc are never written."""
    name = "popa3d"
    login_suffix = ""
    formats = ("mbox",)
    binary = os.path.join(POPA3D_DIR, "usr", "sbin", "popa3d")

    def __init__(self, site):
        super().__init__(site)
        self.tls_port = None
        self.notes.append("no TLS in popa3d")
        self.notes.append("one popa3d per connection from socat (TCP-LISTEN fork, EXEC "
                          "nofork); its users in copies of passwd and shadow bind-mounted "
                          "over /etc/passwd and /etc/shadow in a private mount namespace "
                          "(unshare): /etc is not written")

    def version(self):
        try:
            with open(os.path.join(POPA3D_DIR, "VERSION")) as f:
                return f.read().strip()
        except OSError:
            return None

    def maildrop(self, u):
        return os.path.join(self.dir, "spool", u)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_users(self):
        os.makedirs(self.path("spool"))
        with open("/etc/passwd") as f:
            passwd = f.read().rstrip("\n") + "\n"
        with open("/etc/shadow") as f:
            shadow = f.read().rstrip("\n") + "\n"
        taken = {l.split(":", 1)[0] for l in passwd.splitlines()}
        uids = {int(l.split(":")[2]) for l in passwd.splitlines() if l.count(":") >= 3}
        clash = [u for u in USERS if u in taken]
        if clash:
            raise RuntimeError("users already in /etc/passwd: " + ", ".join(clash))
        if "popa3d" not in taken:        # the user of its process before login
            uid = next(u for u in range(64999, 60000, -1) if u not in uids)
            passwd += "popa3d:x:%d:%d::/var/lib/popa3d:/usr/sbin/nologin\n" % (uid, uid)
        with open(self.path("passwd"), "w") as f:
            f.write(passwd)
            for u in USERS:
                f.write("%s:x:%d:%d::%s:/usr/sbin/nologin\n" % (u, self.site.uid,
                                                                 self.site.gid, self.home(u)))
        os.chmod(self.path("passwd"), 0o644)
        with open(self.path("shadow"), "w") as f:
            f.write(shadow)
            for u in USERS:
                f.write("%s:%s:19000:0:99999:7:::\n" % (u, self.site.hash))
        os.chmod(self.path("shadow"), 0o600)
        shutil.copytree("/etc/pam.d", self.path("pam.d"), symlinks=True)
        shutil.copy(os.path.join(POPA3D_DIR, "etc", "pam.d", "popa3d"), self.path("pam.d"))

    def argv(self):
        q = shlex.quote
        binds = [(self.path("passwd"), "/etc/passwd"), (self.path("shadow"), "/etc/shadow"),
                 (self.path("pam.d"), "/etc/pam.d"), (self.path("spool"), "/var/mail")]
        script = " && ".join(["mount --bind %s %s" % (q(a), b) for a, b in binds] +
                             ["mount -t tmpfs -o mode=0755 none /var/lib",
                              "mkdir /var/lib/popa3d",
                              "exec socat TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,"
                              "backlog=128 EXEC:%s,nofork" % (self.port, q(self.binary))])
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]


ALL = ("pop3d", "dovecot", "mailutils", "popa3d")


def make(name, site, pop3d):
    """The server called name, or None when it is not installed."""
    if name == "pop3d":
        return Pop3d(site, pop3d)
    if name == "popa3d":
        ok = os.path.exists(Popa3d.binary) and shutil.which("socat")
    else:
        ok = dpkg_version({"dovecot": Dovecot, "mailutils": Mailutils}[name].package)
    return {"dovecot": Dovecot, "mailutils": Mailutils, "popa3d": Popa3d}[name](site) \
        if ok else None
