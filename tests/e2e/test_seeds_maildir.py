"""The seed features on Maildir and MH maildrops: expiry marks written at QUIT (Maildir:
a new file in tmp/ renamed over the message; MH: a temporary file in the folder renamed
over it, with X-UIDL so that the content-hash id stays), expiry with marks in the past
and the forged-mark rule (the delivery time is the Maildir name's time prefix, else the
file's mtime; for MH the mtime), expire 0, bulletins, and undelete (Maildir's T flag)."""
import os
import time

from conftest import mbox_of, msg, wire
from test_maildir import chown_tree, home, make_maildir, uidl

DAY = 86400
MSGS = [msg(1), msg(2, "crlf\r\nbody\r\n")]


def md_names(n, t0):
    return ["%d.M%dP%d.host" % (t0 + i, i + 1, i + 1) for i in range(n)]


def maildir_site(site, extra, msgs=MSGS, t0=1700000001, sub="new"):
    site.write_conf('%s mailbox { mailbox-pattern "maildir:${home}/Maildir"; };' % extra)
    md = make_maildir(site, os.path.join(home(site), "Maildir"), msgs, md_names(len(msgs), t0),
                      sub=sub)
    return md


def all_files(md):
    out = {}
    for sub in ("new", "cur"):
        for n in os.listdir(os.path.join(md, sub)):
            with open(os.path.join(md, sub, n), "rb") as f:
                out[n] = f.read()
    return out


def mh_site(site, extra, msgs=MSGS, mtime=None):
    site.write_conf('%s mailbox { mailbox-pattern "mh:${home}/Mail/inbox"; };' % extra)
    folder = os.path.join(home(site), "Mail", "inbox")
    os.makedirs(folder)
    for n, m in enumerate(msgs, 1):
        p = os.path.join(folder, str(n))
        with open(p, "w") as f:
            f.write(m)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
    chown_tree(site, os.path.join(home(site), "Mail"))
    return folder


def quit_ok(s):
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert s.returncode == 0, s.stderr


def header(data):
    return data.split(b"\n\n", 1)[0].replace(b"\r", b"")


# ---- Maildir --------------------------------------------------------------------------

def test_maildir_expire_marks_after_retr_and_top(site):
    md = maildir_site(site, "expire 5;", MSGS + [msg(3)])
    s = site.inetd()
    assert s.login().startswith("+OK")
    ids = uidl(s)
    # The mark is the time of the retrieval: taken before it, not after (a slow run
    # crosses a second between the two).
    before = int(time.time())
    assert s.cmd("RETR 1").startswith("+OK")
    s.multi()
    assert s.cmd("TOP 2 0").startswith("+OK")
    s.multi()
    assert s.cmd("LIST 3").startswith("+OK")
    quit_ok(s)
    files = all_files(md)
    names = md_names(3, 1700000001)
    assert sorted(files) == [names[0] + ":2,S", names[1] + ":2,S", names[2]]
    for k in (0, 1):
        h = header(files[names[k] + ":2,S"])
        line = [l for l in h.split(b"\n") if l.startswith(b"X-Expire-Timestamp:")]
        assert len(line) == 1 and before <= int(line[0].split()[1]) <= time.time()
        assert b"X-UIDL" not in h             # the id is the base name: it stays
    # the CRLF message got a CRLF header line; the body is intact
    assert b"X-Expire-Timestamp: " in files[names[1] + ":2,S"]
    assert files[names[1] + ":2,S"].endswith(b"crlf\r\nbody\r\n")
    assert b"X-Expire" not in files[names[2]]
    assert os.listdir(os.path.join(md, "tmp")) == []
    s = site.inetd()
    s.login()
    assert uidl(s) == ids
    quit_ok(s)


def test_maildir_no_marks_without_quit(site):
    md = maildir_site(site, "expire 5;")
    s = site.inetd()
    s.login()
    assert s.cmd("RETR 1").startswith("+OK")
    s.multi()
    s.close()
    files = all_files(md)
    assert sorted(files) == md_names(2, 1700000001)
    assert all(b"X-Expire" not in v for v in files.values())


def test_maildir_delete_expired_and_forged_marks(site):
    now = int(time.time())
    t0 = now - 30 * DAY
    msgs = [msg(1).replace("\n", "\nX-Expire-Timestamp: %d\n" % (now - 20 * DAY), 1),  # old
            msg(2).replace("\n", "\nX-Expire-Timestamp: %d\n" % (now - 1 * DAY), 1),   # young
            msg(3).replace("\n", "\nX-Expire-Timestamp: %d\n" % (t0 - DAY), 1)]        # forged
    md = maildir_site(site, "expire 5;", msgs, t0=t0)
    names = md_names(3, t0)
    s = site.inetd()
    s.login()
    quit_ok(s)
    assert len(all_files(md)) == 3          # without delete-expired: kept
    site.write_conf('expire 5; delete-expired yes; '
                    'mailbox { mailbox-pattern "maildir:${home}/Maildir"; };')
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 3 ")
    assert s.cmd("QUIT") == "+OK POP3 server signing off (1 messages deleted)"
    s.close()
    assert sorted(all_files(md)) == [names[1], names[2]]


def test_maildir_forged_mark_in_later_mail_ignored(site):
    """Expiry marks are pop3d's own record: with expire 0, a message delivered after
    pop3d adopted the maildrop with X-Expire-Timestamp: <now-1> (after its delivery,
    in the past) is not deleted unread; the ignored mark is logged once."""
    now = int(time.time())
    md = maildir_site(site, "expire 0;", [msg(1)], t0=now - 3600)
    s = site.inetd()
    s.login()
    quit_ok(s)
    assert os.path.isfile(os.path.join(md, "pop3d-index"))
    name = "%d.M9P9.host" % (now - 60)
    with open(os.path.join(md, "new", name), "w") as f:
        f.write(msg(2).replace("\n", "\nX-Expire-Timestamp: %d\n" % (now - 1), 1))
    chown_tree(site, md)
    logged = []
    for _ in range(2):
        s = site.inetd()
        s.login()
        assert s.cmd("STAT").startswith("+OK 2 ")
        quit_ok(s)
        logged.append(s.stderr.count("X-Expire-Timestamp is ignored"))
        assert name in all_files(md)
    assert logged == [1, 0], logged
    s = site.inetd()
    s.login()
    s.cmd("RETR 2")
    s.multi()
    assert s.cmd("QUIT") == "+OK POP3 server signing off (1 messages deleted)"
    s.close()
    assert list(all_files(md)) == md_names(1, now - 3600)


def test_maildir_mailutils_marks_honoured_after_adoption(site):
    """A Maildir with Mailutils' marks and no index is adopted at the first open: those
    marks count then and later; a mark in a message delivered after does not."""
    now = int(time.time())
    t0 = now - 30 * DAY
    msgs = [msg(1).replace("\n", "\nX-Expire-Timestamp: %d\n" % (now - 20 * DAY), 1),
            msg(2).replace("\n", "\nX-Expire-Timestamp: %d\n" % (now - 2 * DAY), 1),
            msg(3)]
    md = maildir_site(site, "expire 5; delete-expired yes;", msgs, t0=t0)
    names = md_names(3, t0)
    s = site.inetd()
    s.login()
    assert s.cmd("QUIT") == "+OK POP3 server signing off (1 messages deleted)"
    s.close()
    late = "%d.M8P8.host" % (t0 + 10)
    with open(os.path.join(md, "new", late), "w") as f:
        f.write(msg(4).replace("\n", "\nX-Expire-Timestamp: %d\n" % (now - 2 * DAY), 1))
    chown_tree(site, md)
    site.write_conf('expire 1; delete-expired yes; '
                    'mailbox { mailbox-pattern "maildir:${home}/Maildir"; };')
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 3 ")
    assert s.cmd("QUIT") == "+OK POP3 server signing off (1 messages deleted)"
    s.close()
    assert sorted(all_files(md)) == [names[2], late]


def test_maildir_expire_0(site):
    md = maildir_site(site, "expire 0; delete-expired no;", MSGS + [msg(3)])
    s = site.inetd()
    s.login()
    assert s.cmd("RETR 2").startswith("+OK")
    s.multi()
    quit_ok(s)
    names = md_names(3, 1700000001)
    assert sorted(all_files(md)) == [names[0], names[2]]


def test_maildir_undelete_trashed(site):
    md = maildir_site(site, "undelete yes;", MSGS, sub="cur")
    names = md_names(2, 1700000001)
    os.rename(os.path.join(md, "cur", names[0]), os.path.join(md, "cur", names[0] + ":2,ST"))
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 2 ")     # trashed messages are shown
    quit_ok(s)
    assert sorted(os.listdir(os.path.join(md, "cur"))) == [names[0] + ":2,S", names[1]]


def test_maildir_trashed_kept_without_undelete(site):
    md = maildir_site(site, "", MSGS, sub="cur")
    names = md_names(2, 1700000001)
    os.rename(os.path.join(md, "cur", names[0]), os.path.join(md, "cur", names[0] + ":2,T"))
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 2 ")
    quit_ok(s)
    assert sorted(os.listdir(os.path.join(md, "cur"))) == [names[0] + ":2,T", names[1]]


def bulletin(n):
    return ("From: postmaster@example.org\nTo: all@example.org\nSubject: bulletin %d\n\n"
            ">From the desk\nAnnouncement %d.\n" % (n, n))


def subjects(s):
    n = int(s.cmd("STAT").split()[1])
    out = []
    for i in range(1, n + 1):
        s.cmd("TOP %d 0" % i)
        out.append([l.decode().strip() for l in s.multi() if l.startswith(b"Subject:")][0])
    return out


def test_maildir_bulletins_once(site):
    bsrc = os.path.join(site.dir, "bulletins")
    with open(bsrc, "w") as f:
        f.write(mbox_of([bulletin(1), bulletin(2)]))
    os.chmod(bsrc, 0o644)
    md = maildir_site(site, 'bulletin-source "mbox:%s";' % bsrc, [msg(1)])
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert subjects(s) == ["Subject: test 1", "Subject: bulletin 1", "Subject: bulletin 2"]
    assert s.cmd("RETR 2").startswith("+OK")
    assert b"".join(s.multi()) == wire(bulletin(1).replace(">From", "From"))
    quit_ok(s)
    with open(os.path.join(home(site), ".popbull")) as f:
        assert f.read() == "2\n"
    s = site.inetd()
    s.login()
    assert len(subjects(s)) == 3
    quit_ok(s)
    # A crash after delivery, before the number was recorded: not delivered again.
    os.unlink(os.path.join(home(site), ".popbull"))
    with open(bsrc, "a") as f:
        f.write(mbox_of([bulletin(3)]))
    s = site.inetd()
    s.login()
    assert subjects(s) == ["Subject: test 1", "Subject: bulletin 1", "Subject: bulletin 2",
                           "Subject: bulletin 3"]
    quit_ok(s)
    assert os.listdir(os.path.join(md, "tmp")) == []
