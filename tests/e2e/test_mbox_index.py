"""The mbox index: a second session serves the same listings from the index, mail
appended between sessions is picked up, and a corrupt or foreign index is never
trusted: the listings are always those of a full scan."""
import os

from conftest import mbox_of, msg

MSGS = [msg(1), msg(2, "body\n", "X-UIDL: same-id\n"), msg(3, "x\n", "X-UIDL: same-id\n"),
        msg(4, ">From quoted\nend"), msg(5, "crlf\r\nbody\r\n", "Status: OD\n")]


def index_path(site, user="alice"):
    return os.path.join(site.spool, ".%s.pop3d-index" % user)


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


def test_second_session_same_listings(site):
    site.write_conf()
    site.write_mbox(MSGS)
    first = listings(site)
    assert first[0].startswith("+OK 5 ")
    assert any(b"same-id-2" in l for l in first[2])
    assert os.path.isfile(index_path(site))
    st = os.stat(index_path(site))
    assert st.st_mode & 0o7777 == 0o600
    assert st.st_uid == os.stat(site.mbox_path()).st_uid
    assert listings(site) == first
    # A hit leaves the index alone (a rebuild would rename a new file over it).
    assert os.stat(index_path(site)).st_ino == st.st_ino
    assert listings(site) == first


def test_appended_mail(site):
    site.write_conf()
    p = site.write_mbox(MSGS)
    listings(site)
    with open(p, "ab") as f:
        f.write(mbox_of([msg(6, "new\n", "X-UIDL: same-id\n")]).encode())
    got = listings(site)
    assert got[0].startswith("+OK 6 ")
    os.unlink(index_path(site))
    assert listings(site) == got
    assert any(b"same-id-3" in l for l in got[2])


def test_corrupt_index(site):
    site.write_conf()
    site.write_mbox(MSGS)
    first = listings(site)
    ip = index_path(site)
    with open(ip, "rb") as f:
        good = f.read()
    owner = os.stat(ip)
    variants = [b"", good[:30], good[:-7], good + b"junk", b"X" + good[1:],
                good[:64] + b"\xff" * 8 + good[72:]]
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
    # An index left by someone else is not read.
    if site.root:
        with open(ip, "wb") as f:
            f.write(good)
        os.chown(ip, 0, 0)
        assert listings(site) == first


def uids_of(listing):
    return [l.decode().split()[1] for l in listing[2]]


def test_dele_then_next_session(site):
    """Ids never change and are not reused.  Messages 2 and 3 carry the same X-UIDL (3
    is listed as same-id-2); deleting 2 while 3 is retrieved (its header gets an expiry
    mark) leaves 3 listed as same-id-2, and same-id stays retired: later mail carrying
    it gets a new suffix.  With every index lost the ids are derived again from the
    mail: the same but for a duplicate whose twin is gone."""
    site.write_conf("expire 5;")
    site.write_mbox(MSGS)
    first = uids_of(listings(site))
    assert first[1:3] == ["same-id", "same-id-2"]
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("DELE 2").startswith("+OK")
    assert s.cmd("RETR 3").startswith("+OK")
    s.multi()
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert b"X-Expire-Timestamp" in site.read_mbox()
    got = listings(site)
    assert got[0].startswith("+OK 4 ")
    assert uids_of(got) == first[:1] + first[2:]
    with open(site.mbox_path(), "a") as f:
        f.write(mbox_of([msg(6, "new\n", "X-UIDL: same-id\n")]))
    later = uids_of(listings(site))
    assert later[:4] == uids_of(got) and later[4] == "same-id-3"
    assert uids_of(listings(site)) == later
    os.unlink(index_path(site))
    lost = uids_of(listings(site))
    assert lost == [later[0], "same-id", later[2], later[3], "same-id-2"]


def test_dele_by_another_program(site):
    """A message another program removed: its id retires all the same."""
    site.write_conf()
    site.write_mbox(MSGS)
    first = uids_of(listings(site))
    site.write_mbox([MSGS[0], MSGS[2], MSGS[3], MSGS[4]])
    assert uids_of(listings(site)) == first[:1] + first[2:]
    with open(site.mbox_path(), "a") as f:
        f.write(mbox_of([msg(6, "new\n", "X-UIDL: same-id\n")]))
    assert uids_of(listings(site))[4] == "same-id-3"

