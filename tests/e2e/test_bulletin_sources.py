"""Bulletin sources of every format (mbox file, Maildir, MH folder) delivered to maildrops
of every format: each combination delivers the exact bytes of each source message (RETR
sends them, and a Maildir or MH maildrop stores them; an mbox maildrop stores the mboxrd
form behind a From_ line), in the source's order, once, a bulletin added later at the
next login, and never twice after a crash between delivery and recording.  Then the
source's own safety rules, and the same sessions against GNU Mailutils pop3d."""
import os
import re
import time

import pytest

from conftest import msg, wire
from test_maildir import chown_tree, home, make_maildir

try:
    import dbm.gnu as gdbm
except ImportError:            # Debian: python3-gdbm
    gdbm = None

MAILUTILS = "/usr/sbin/pop3d"

# Bulletins that test the quoting: From_ lines inside and at the start of the message,
# lines that are already quoted, CRLF line ends, a message without a final line end, a
# message that ends with an empty line, and an empty body.
BULLETINS = [
    "From: postmaster@example.org\nTo: all@example.org\nSubject: bulletin 1\n\n"
    "From the desk of the postmaster\n>From quoted once\n>>From quoted twice\n"
    ".a dot line\nFrom\nFromage\n>From\n\n",
    "From: postmaster@example.org\r\nSubject: bulletin 2\r\n\r\nCRLF body\r\n"
    "From here too\r\n>From there\r\n",
    "From postmaster@example.org Mon Jan  1 00:00:00 2024\nFrom: postmaster@example.org\n"
    "Subject: bulletin 3\n\n>>>>From deep\nno final line end",
    "From: postmaster@example.org\nSubject: bulletin 4\n\n",
]
LATER = "From: postmaster@example.org\nSubject: bulletin 5\n\nFrom now on, a later one.\n"
# The source files' mtimes: the date of the From_ line pop3d gives a Maildir or MH
# bulletin in an mbox maildrop.
MTIME0 = 1750000000

needs_root = pytest.mark.skipif(os.getuid() != 0,
                                reason="a Maildir or MH bulletin source must be root's")


def rd_quote(m):
    """The mboxrd form of a message: '>' added to every line matching ^>*From_."""
    return re.sub(r"(?m)^(>*From )", r">\1", m)


def mbox_block(from_line, m):
    """A message as an mbox stores it: From_ line, quoted text, a line end if it lacks
    one, and the empty line that separates it from the next."""
    body = rd_quote(m)
    if not body.endswith("\n"):
        body += "\n"
    return from_line + body + "\n"


def from_line_of(ts):
    return time.strftime("From MAILER-DAEMON %a %b %e %H:%M:%S %Y\n", time.gmtime(ts))


def subject_of(m):
    return re.search(r"Subject: (bulletin \d+)", m).group(1)


# ---- sources ---------------------------------------------------------------------------

# Maildir names whose delivery order (the time prefix) is not their order as strings.
MD_TIMES = [999999998, 999999999, 1000000000, 1000000001, 1000000002]
# MH numbers whose numeric order is not their order as strings.
MH_NUMBERS = [1, 2, 10, 11, 12]


class Source:
    def __init__(self, site, kind, url_form="scheme", junk=True):
        self.site, self.kind = site, kind
        self.path = os.path.join(site.dir, "bull." + kind)
        self.count = 0
        self.mtimes = []
        if kind == "mbox":
            open(self.path, "w").close()
            os.chmod(self.path, 0o644)
        elif kind == "maildir":
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(self.path, sub))
            # Not messages: a dot file and a directory.
            if junk:
                open(os.path.join(self.path, "new", ".hidden"), "w").close()
                os.mkdir(os.path.join(self.path, "cur", "999999990.dir"))
        else:
            os.makedirs(self.path)
            with open(os.path.join(self.path, ".mh_sequences"), "w") as f:
                f.write("unseen: 1-12\n")
            for name in (",3", "README", "007") if junk else ():
                with open(os.path.join(self.path, name), "w") as f:
                    f.write("From: junk\nSubject: not a bulletin\n\nx\n")
        if url_form == "scheme":
            self.url = "%s:%s" % (kind, self.path)
        elif url_form == "slashes":
            self.url = "%s://%s" % (kind, self.path)
        else:
            self.url = self.path

    def add(self, m):
        k = self.count
        mtime = MTIME0 + 3600 * k
        if self.kind == "mbox":
            with open(self.path, "a") as f:
                f.write(mbox_block("From postmaster@example.org Sat Jun 14 10:00:00 2025\n", m))
        else:
            if self.kind == "maildir":
                sub = "cur" if k % 2 else "new"
                name = "%d.M%dP%d.src" % (MD_TIMES[k], k, k) + (":2,S" if sub == "cur" else "")
                p = os.path.join(self.path, sub, name)
            else:
                p = os.path.join(self.path, str(MH_NUMBERS[k]))
            with open(p, "wb") as f:
                f.write(m.encode())
            os.chmod(p, 0o644)
            os.utime(p, (mtime, mtime))
        self.mtimes.append(mtime)
        self.count += 1

    def stored(self, k, m):
        """What the source holds as message k (0-based): an mbox message always ends with
        a line end, the others are the file."""
        if self.kind == "mbox" and not m.endswith("\n"):
            return m + "\n"
        return m

    def from_line(self, k):
        if self.kind == "mbox":
            return "From postmaster@example.org Sat Jun 14 10:00:00 2025\n"
        return from_line_of(self.mtimes[k])


# ---- maildrops --------------------------------------------------------------------------

class Drop:
    def __init__(self, site, kind):
        self.site, self.kind = site, kind
        if kind == "mbox":
            self.conf = ""
            site.write_mbox([msg(1)])
        elif kind == "maildir":
            self.path = os.path.join(home(site), "Maildir")
            self.conf = 'mailbox { mailbox-pattern "maildir:${home}/Maildir"; };'
            make_maildir(site, self.path, [msg(1)], ["1700000001.M1P1.host"])
        else:
            self.path = os.path.join(home(site), "Mail", "inbox")
            self.conf = 'mailbox { mailbox-pattern "mh:${home}/Mail/inbox"; };'
            os.makedirs(self.path)
            with open(os.path.join(self.path, "1"), "w") as f:
                f.write(msg(1))
            chown_tree(site, os.path.join(home(site), "Mail"))

    def files(self):
        """The stored messages, in delivery order."""
        if self.kind == "mbox":
            return [self.site.read_mbox()]
        if self.kind == "maildir":
            names = []
            for sub in ("new", "cur"):
                names += [(n, sub) for n in os.listdir(os.path.join(self.path, sub))]
            names.sort(key=lambda x: (int(x[0].split(".")[0]), x[0]))
            out = []
            for n, sub in names:
                with open(os.path.join(self.path, sub, n), "rb") as f:
                    out.append(f.read())
            return out
        nums = sorted(int(n) for n in os.listdir(self.path) if n.isdigit())
        out = []
        for n in nums:
            with open(os.path.join(self.path, str(n)), "rb") as f:
                out.append(f.read())
        return out


def quit_ok(s):
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert s.returncode == 0, s.stderr


def session_view(site):
    """Log in, and read every message: [(LIST size, RETR bytes)]."""
    s = site.inetd()
    assert s.login().startswith("+OK opened mailbox"), s
    n = int(s.cmd("STAT").split()[1])
    out = []
    for i in range(1, n + 1):
        size = int(s.cmd("LIST %d" % i).split()[2])
        r = s.cmd("RETR %d" % i)
        assert r == "+OK %d octets" % size, r
        out.append((size, b"".join(s.multi())))
    quit_ok(s)
    return out, s.stderr


def popbull(site):
    p = os.path.join(home(site), ".popbull")
    return open(p).read() if os.path.exists(p) else None


def make_site(site, src_kind, drop_kind, url_form="scheme", extra=""):
    src = Source(site, src_kind, url_form)
    for m in BULLETINS:
        src.add(m)
    drop = Drop(site, drop_kind)
    site.write_conf('bulletin-source "%s"; %s %s' % (src.url, drop.conf, extra))
    return src, drop


def expect_view(messages):
    return [(len(wire(m)), wire(m)) for m in messages]


@needs_root
@pytest.mark.parametrize("drop_kind", ["mbox", "maildir", "mh"])
@pytest.mark.parametrize("src_kind", ["mbox", "maildir", "mh"])
def test_bulletin_bytes_order_once(site, src_kind, drop_kind):
    src, drop = make_site(site, src_kind, drop_kind)
    # 1: all four, in the source's order, each exactly as the source holds it.
    view, _ = session_view(site)
    assert view == expect_view([msg(1)] + BULLETINS)
    assert popbull(site) == "4\n"
    if drop_kind == "mbox":
        expected = mbox_block("From sender@example.org Mon Nov 23 10:00:00 2026\n", msg(1))
        for k, m in enumerate(BULLETINS):
            expected += mbox_block(src.from_line(k), src.stored(k, m))
        assert drop.files() == [expected.encode()]
    else:
        assert drop.files() == [msg(1).encode()] + \
            [src.stored(k, m).encode() for k, m in enumerate(BULLETINS)]
    # 2: nothing new, nothing again.
    view, _ = session_view(site)
    assert len(view) == 5
    # 3: a bulletin added to the source later comes at the next login, once.
    src.add(LATER)
    for _ in range(2):
        view, _ = session_view(site)
        assert view == expect_view([msg(1)] + BULLETINS + [LATER])
    assert popbull(site) == "5\n"
    # 4: the number lost after the delivery (a crash between the two): the bulletins are
    # recognised in the maildrop and not added again.
    os.unlink(os.path.join(home(site), ".popbull"))
    view, err = session_view(site)
    assert len(view) == 6, err
    assert popbull(site) == "5\n"


@needs_root
@pytest.mark.parametrize("src_kind", ["maildir", "mh"])
@pytest.mark.parametrize("url_form", ["path", "slashes"])
def test_bulletin_source_url_forms(site, src_kind, url_form):
    """A plain directory name is a Maildir when it has cur/ and new/, else an MH folder;
    "maildir:///dir" and "mh:///dir" are accepted as Mailutils writes them."""
    make_site(site, src_kind, "mbox", url_form)
    view, err = session_view(site)
    assert view == expect_view([msg(1)] + BULLETINS), err
    assert popbull(site) == "4\n"


@needs_root
@pytest.mark.skipif(gdbm is None, reason="python3-gdbm (dbm.gnu) not installed")
@pytest.mark.parametrize("src_kind", ["maildir", "mh"])
def test_bulletin_dir_source_with_db(site, src_kind):
    """With bulletin-db the pending bulletins of a folder are copied while the session is
    still root, from the number the db holds (the db wins over ~/.popbull, which stays
    as it was), and the new number is recorded in the db."""
    bdb = os.path.join(site.dir, "bulletins.db")
    with gdbm.open(bdb, "c", 0o600) as db:
        db[b"alice"] = b"2"
    os.chmod(bdb, 0o600)
    with open(os.path.join(home(site), ".popbull"), "w") as f:
        f.write("0\n")
    make_site(site, src_kind, "maildir", extra='bulletin-db "%s";' % bdb)
    view, err = session_view(site)
    assert view == expect_view([msg(1)] + BULLETINS[2:]), err
    with gdbm.open(bdb, "r") as db:
        assert db[b"alice"] == b"4"
    assert popbull(site) == "0\n"
    view, _ = session_view(site)
    assert len(view) == 3


@needs_root
@pytest.mark.parametrize("src_kind", ["maildir", "mh"])
def test_bulletin_dir_source_number_past_the_end(site, src_kind):
    """A number larger than the source's count (bulletins removed from it): nothing."""
    make_site(site, src_kind, "mbox")
    with open(os.path.join(home(site), ".popbull"), "w") as f:
        f.write("9\n")
    view, _ = session_view(site)
    assert len(view) == 1
    assert popbull(site) == "9\n"


@needs_root
@pytest.mark.parametrize("src_kind", ["maildir", "mh"])
def test_bulletin_dir_source_missing(site, src_kind):
    """A folder that does not exist yet: no bulletins, nothing logged, no folder made."""
    path = os.path.join(site.dir, "nothing-yet")
    site.write_mbox([msg(1)])
    site.write_conf('bulletin-source "%s:%s";' % (src_kind, path))
    view, err = session_view(site)
    assert len(view) == 1
    assert "bulletin" not in err, err
    assert not os.path.exists(path)
    assert popbull(site) is None


@needs_root
@pytest.mark.parametrize("what", ["folder", "cur", "new", "message", "symlink", "owner"])
def test_bulletin_dir_source_unsafe_refused(site, what):
    """A source folder (or its cur/ or new/, or a message file) anyone can write, a
    folder that is a symbolic link, or one that is not root's: whoever can write it can
    put mail into every maildrop, so nothing is delivered and the log says why."""
    src, _ = make_site(site, "maildir" if what in ("cur", "new") else "mh", "mbox")
    if what == "folder":
        os.chmod(src.path, 0o777)
    elif what in ("cur", "new"):
        os.chmod(os.path.join(src.path, what), 0o777)
    elif what == "message":
        os.chmod(os.path.join(src.path, "1"), 0o666)
    elif what == "owner":
        os.chown(src.path, 1000, 1000)
    else:
        link = os.path.join(site.dir, "bull.link")
        os.symlink(src.path, link)
        site.write_conf('bulletin-source "mh:%s";' % link)
    view, err = session_view(site)
    assert len(view) == 1
    assert "bulletin source" in err, err
    assert popbull(site) is None


@needs_root
def test_bulletin_dir_source_symlink_is_no_bulletin(site):
    """A symbolic link in an MH source is not a message (the backend's rule): the
    bulletins are the other files, numbered without it."""
    src, _ = make_site(site, "mh", "mbox")
    os.rename(os.path.join(src.path, "10"), os.path.join(src.path, ",10"))
    os.symlink(os.path.join(src.path, ",10"), os.path.join(src.path, "10"))
    view, _ = session_view(site)
    assert view == expect_view([msg(1)] + BULLETINS[:2] + BULLETINS[3:])
    assert popbull(site) == "3\n"


# ---- side by side with GNU Mailutils pop3d ------------------------------------------------

# Headers Mailutils writes into every message of an mbox it changes; pop3d does not.
MU_HEADERS = re.compile(r"^(X-UID|Status|X-IMAPbase):")


def without_mu_headers(lines):
    return [l for l in lines if not MU_HEADERS.match(l)]


def mbox_messages(data):
    """The messages of an mbox, each without its From_ line and Mailutils' headers."""
    parts = re.split(r"\n\n(?=From )", data.decode())
    return ["\n".join(without_mu_headers(p.split("\n")[1:])) for p in parts]


def mailutils_run(tmp_path, src_kind, junk):
    """The same session against Mailutils and pop3d, a fresh maildrop each and ~/.popbull
    at 1: {server: (STAT reply, [RETR replies and bodies], ~/.popbull after, the mbox's
    messages)}, Mailutils' own headers left out."""
    from test_seeds import mailutils_site, run_script, POP3D_BIN
    if not os.path.exists(MAILUTILS):
        pytest.skip("Debian's mailutils-pop3d is not installed")
    site = mailutils_site(tmp_path)
    try:
        src = Source(site, src_kind, junk=junk)
        for k in range(1, 5):
            src.add("From: postmaster@example.org\nSubject: bulletin %d\n\nAnnouncement %d.\n"
                    % (k, k))
        site.write_conf('bulletin-source "%s";' % src.url,
                        auth="auth { authentication generic; authorization system; };")
        pb = os.path.join(home(site), ".popbull")
        script = ["USER alice", "PASS alice-secret", "STAT"] + \
                 ["RETR %d" % i for i in range(1, 5)] + ["QUIT"]
        got = {}
        for name, binary in (("mailutils", MAILUTILS), ("pop3d", POP3D_BIN())):
            site.write_mbox([msg(1)])
            with open(pb, "w") as f:
                f.write("1\n")
            os.chown(pb, site.uids["alice"], site.gid)
            out = run_script(site, binary, script)
            # RETR's octet count includes the headers Mailutils added: compare "+OK".
            retr = [r[:3] if c.startswith("RETR") and not c.endswith("body")
                    else without_mu_headers(r) for c, r in out if c.startswith("RETR")]
            got[name] = (dict(out)["STAT"].split()[:2], retr, open(pb).read(),
                         mbox_messages(site.read_mbox()))
        return got
    finally:
        site.cleanup()


@needs_root
@pytest.mark.parametrize("src_kind", ["maildir", "mh"])
def test_mailutils_bulletin_dir_sources(tmp_path, src_kind):
    """Both number the bulletins of a Maildir (delivery time in the name, in cur/ and
    new/) or MH source (message number) alike, deliver the same ones in the session,
    send the same messages and record the same number, and the mailboxes hold the same
    messages.  Intended differences, outside what the client sees: Mailutils writes
    "From <From: address> Thu Jan  1 00:00:00 1970" as the From_ line and adds Status,
    X-UID and X-IMAPbase headers (so its octet counts are larger); pop3d writes
    "From MAILER-DAEMON <the file's mtime>" and the message unchanged.  Mailutils also
    writes a .mu-prop file into the source it reads; pop3d does not write to it."""
    got = mailutils_run(tmp_path, src_kind, junk=False)
    assert got["mailutils"] == got["pop3d"]
    stat, retr, number, messages = got["pop3d"]
    assert stat == ["+OK", "4"] and number == "4\n" and len(messages) == 4
    assert [l for l in retr[-1] if l.startswith("Subject:")] == ["Subject: bulletin 4"]


@needs_root
def test_mailutils_bulletin_mh_source_junk(tmp_path):
    """Intended difference: a file named "007" is no MH message (MH numbers have no
    leading zero; nmh and pop3d's MH maildrops skip it).  Mailutils 3.15 counts it as
    message 7, fails to read it ("cannot append message 3: No such file or directory":
    it looks for "7") and stops delivering there, so its users never get the bulletins
    after it.  Files such as ",3" and "README" are skipped by both."""
    got = mailutils_run(tmp_path, "mh", junk=True)
    assert got["mailutils"][0] == ["+OK", "2"] and got["mailutils"][2] == "2\n"
    assert got["pop3d"][0] == ["+OK", "4"] and got["pop3d"][2] == "4\n"
