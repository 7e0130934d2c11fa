"""The Maildir and MH index: a second session serves the same listings without reading
the message files, new mail and moved messages are handled, pop3d's own changes (DELE,
seen flags) keep it right, and a corrupt, foreign or linked index is never trusted:
the listings are always those of a full read."""
import os

from conftest import msg
from test_maildir import chown_tree, make_maildir

NAMES = ["1700000001.M1P1.host", "1700000002.M2P2.host", "1700000003.M3P3.host",
         "1700000004.M4P4.host"]
MSGS = [msg(1), msg(2, "body\n", "X-UIDL: same-id\n"), msg(3, "x\n", "X-UIDL: same-id\n"),
        msg(4, "crlf\r\nbody\r\n", "X-UIDL: aaaa-id\n")]
MAILDIR_CONF = 'mailbox { mailbox-type maildir; };'


def listings(site):
    s = site.inetd()
    assert s.login().startswith("+OK")
    stat = s.cmd("STAT")
    assert s.cmd("LIST").startswith("+OK")
    lst = s.multi()
    assert s.cmd("UIDL").startswith("+OK")
    uidl = s.multi()
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    return stat, lst, uidl


def maildir(site):
    site.write_conf(MAILDIR_CONF)
    return make_maildir(site, site.mbox_path(), MSGS, names=NAMES)


def index_of(md):
    return os.path.join(md, "pop3d-index")


def deliver(site, md, name, text):
    """As an MDA does: written in tmp/, renamed into new/."""
    t = os.path.join(md, "tmp", name)
    with open(t, "w") as f:
        f.write(text)
    chown_tree(site, md)
    os.rename(t, os.path.join(md, "new", name))


def test_second_session_same_listings(site):
    md = maildir(site)
    first = listings(site)
    assert first[0].startswith("+OK 4 ")
    assert any(b"same-id-2" in l for l in first[2])
    st = os.lstat(index_of(md))
    assert st.st_mode & 0o170000 == 0o100000 and st.st_mode & 0o7777 == 0o600
    assert st.st_uid == os.stat(md).st_uid and st.st_nlink == 1
    assert listings(site) == first
    # A hit leaves the index alone (a rebuild would rename a new file over it).
    assert os.stat(index_of(md)).st_ino == st.st_ino
    assert listings(site) == first


def test_message_files_not_read(site):
    """A file changed in place, keeping its size and inode (which no Maildir program
    does), goes unnoticed while the index stands: proof that it was not read."""
    md = maildir(site)
    first = listings(site)
    p = os.path.join(md, "new", NAMES[3])
    with open(p, "r+b") as f:
        data = f.read()
        f.seek(data.index(b"aaaa-id"))
        f.write(b"bbbb-id")
    assert listings(site) == first
    os.unlink(index_of(md))
    got = listings(site)
    assert any(b"bbbb-id" in l for l in got[2])
    assert not any(b"aaaa-id" in l for l in got[2])


def test_new_mail_between_sessions(site):
    md = maildir(site)
    listings(site)
    deliver(site, md, "1700000005.M5P5.host", msg(5, "new\n", "X-UIDL: same-id\n"))
    got = listings(site)
    assert got[0].startswith("+OK 5 ")
    assert any(b"same-id-3" in l for l in got[2])
    ino = os.stat(index_of(md)).st_ino
    assert listings(site) == got
    assert os.stat(index_of(md)).st_ino == ino
    os.unlink(index_of(md))
    assert listings(site) == got


def test_moved_messages_keep_their_ids(site):
    md = maildir(site)
    first = listings(site)
    # RETR marks a message seen: pop3d moves it to cur/ with :2,S.
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("RETR 1").startswith("+OK")
    s.multi()
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert os.path.exists(os.path.join(md, "cur", NAMES[0] + ":2,S"))
    # Another client flags a message.
    os.rename(os.path.join(md, "new", NAMES[1]), os.path.join(md, "cur", NAMES[1] + ":2,FS"))
    ino = os.stat(index_of(md)).st_ino
    assert listings(site) == first
    assert os.stat(index_of(md)).st_ino == ino, "moved messages were read again"


def test_corrupt_index(site):
    md = maildir(site)
    first = listings(site)
    ip = index_of(md)
    with open(ip, "rb") as f:
        good = f.read()
    owner = os.stat(ip)
    variants = [b"", good[:30], good[:-7], good + b"junk", b"X" + good[1:],
                good[:80] + b"\xff" * 8 + good[88:]]
    for off in range(8, len(good), max(1, len(good) // 17)):
        b = bytearray(good)
        b[off] ^= 0x10
        variants.append(bytes(b))
    for v in variants:
        with open(ip, "wb") as f:
            f.write(v)
        if site.root:
            os.chown(ip, owner.st_uid, owner.st_gid)
        assert listings(site) == first
        with open(ip, "rb") as f:
            assert f.read() != v, "a bad index is rebuilt"
    # A symlink to a good index is not followed; it is replaced by a regular file.
    elsewhere = os.path.join(site.dir, "elsewhere")
    with open(elsewhere, "wb") as f:
        f.write(good)
    os.unlink(ip)
    os.symlink(elsewhere, ip)
    assert listings(site) == first
    assert os.path.isfile(ip) and not os.path.islink(ip)
    # A hard-linked one is not read either.
    os.unlink(elsewhere)
    os.link(ip, elsewhere)
    ino = os.stat(ip).st_ino
    assert listings(site) == first
    assert os.stat(ip).st_ino != ino
    # Nor one left by someone else.
    if site.root:
        os.chown(ip, 0, 0)
        assert listings(site) == first
        assert os.stat(ip).st_uid == owner.st_uid


def test_dele_then_next_session(site):
    md = maildir(site)
    listings(site)
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("DELE 2").startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    got = listings(site)
    assert got[0].startswith("+OK 3 ")
    assert not any(NAMES[1].encode() in l for l in got[2])
    ino = os.stat(index_of(md)).st_ino
    assert listings(site) == got
    assert os.stat(index_of(md)).st_ino == ino
    # Ids never change: message 3, listed as same-id-2 beside its twin, keeps it, and
    # same-id stays retired: later mail carrying it gets a new suffix.
    assert [l.split()[1] for l in got[2]] == [NAMES[0].encode(), b"same-id-2", b"aaaa-id"]
    deliver(site, md, "1700000009.M9P9.host", msg(9, "new\n", "X-UIDL: same-id\n"))
    later = listings(site)
    assert later[2][:3] == got[2] and later[2][3] == b"4 same-id-3\r\n"
    # Every index lost: the ids are derived again from the mail (doc/pop3d.texi).
    os.unlink(index_of(md))
    lost = [l.split()[1] for l in listings(site)[2]]
    assert lost == [NAMES[0].encode(), b"same-id", b"aaaa-id", b"same-id-2"]


def mh_folder(site):
    site.write_conf('mailbox { mailbox-type mh; };')
    folder = site.mbox_path()
    os.makedirs(folder)
    for n, m in zip((1, 2, 3, 7), MSGS):
        with open(os.path.join(folder, str(n)), "w") as f:
            f.write(m)
    with open(os.path.join(folder, ".mh_sequences"), "w") as f:
        f.write("unseen: 1-3 7\n")
    chown_tree(site, folder)
    return folder


def test_mh_index(site):
    folder = mh_folder(site)
    ip = os.path.join(folder, ".pop3d-index")
    first = listings(site)
    assert first[0].startswith("+OK 4 ")
    # Files changed within the clock tick of the first session are read again by the
    # second; from then on the index stands.
    assert listings(site) == first
    st = os.lstat(ip)
    assert st.st_mode & 0o7777 == 0o600 and st.st_uid == os.stat(folder).st_uid
    assert listings(site) == first
    assert os.stat(ip).st_ino == st.st_ino
    # MH tools edit messages in place: noticed (the ctime moves).
    p = os.path.join(folder, "7")
    with open(p, "r+b") as f:
        data = f.read()
        f.seek(data.index(b"aaaa-id"))
        f.write(b"bbbb-id")
    got = listings(site)
    assert any(b"bbbb-id" in l for l in got[2])
    # A corrupt index is ignored and rebuilt.
    with open(ip, "rb") as f:
        good = f.read()
    for v in (b"", good[:len(good) // 2], b"garbage" * 20):
        with open(ip, "wb") as f:
            f.write(v)
        if site.root:
            os.chown(ip, st.st_uid, st.st_gid)
        assert listings(site) == got
    # DELE + QUIT, then the next session.
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("DELE 1").startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    after = listings(site)
    assert after[0].startswith("+OK 3 ")
    assert after[2] == [b"%d %s" % (i, l.split(b" ", 1)[1]) for i, l in
                        enumerate(got[2][1:], 1)]
    os.unlink(ip)
    assert listings(site) == after


def test_mh_ids_stable_across_deletion_of_duplicate(site):
    """MH: messages 2 and 3 carry the same X-UIDL (3 is listed as same-id-2); once 2 is
    deleted, 3 keeps same-id-2, also when the folder is renumbered (folder -pack), and
    same-id is not given to later mail."""
    folder = mh_folder(site)
    first = [l.split()[1] for l in listings(site)[2]]
    assert first[1:3] == [b"same-id", b"same-id-2"]
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("DELE 2").startswith("+OK")
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert [l.split()[1] for l in listings(site)[2]] == first[:1] + first[2:]
    os.rename(os.path.join(folder, "3"), os.path.join(folder, "2"))
    assert [l.split()[1] for l in listings(site)[2]] == first[:1] + first[2:]
    with open(os.path.join(folder, "8"), "w") as f:
        f.write(msg(8, "new\n", "X-UIDL: same-id\n"))
    chown_tree(site, folder)
    assert [l.split()[1] for l in listings(site)[2]] == first[:1] + first[2:] + [b"same-id-3"]
