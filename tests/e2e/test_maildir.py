"""Maildir and MH maildrops end to end: RETR/DELE/QUIT, UIDL stable across sessions and
new/ -> cur/ moves, Dovecot's uidlist, [IN-USE], mail delivered during a session,
autodetection, a real client (poplib), two messages sharing a base name in cur/ and new/,
and the record of a QUIT interrupted after its decision completed at the next login (a
hostile one refused)."""
import os

from conftest import msg, wire

MSGS = [msg(1), msg(2, ".leading dot\n..two dots\n.\nend\n"), msg(3, "crlf\r\nbody\r\n")]
NAMES = ["1700000001.M1P1.host", "1700000002.M2P2.host", "1700000003.M3P3.host"]


def chown_tree(site, path, user="alice"):
    if not site.root:
        return
    for d, dirs, files in os.walk(path):
        os.chown(d, site.uids[user], site.gid)
        for f in files:
            os.chown(os.path.join(d, f), site.uids[user], site.gid)


def make_maildir(site, path, messages=(), names=NAMES, sub="new", user="alice"):
    for s in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, s), mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    for name, m in zip(names, messages):
        with open(os.path.join(path, sub, name), "wb") as f:
            f.write(m.encode())
    chown_tree(site, path, user)
    return path


def home(site, user="alice"):
    return os.path.join(site.dir, "home", user)


def uidl(s):
    assert s.cmd("UIDL").startswith("+OK")
    return [l.decode().split()[1] for l in s.multi()]


def test_maildir_retr_dele_quit(site):
    site.write_conf('mailbox { mailbox-type maildir; };')
    md = make_maildir(site, site.mbox_path(), MSGS)
    s = site.inetd()
    assert s.login().startswith("+OK opened mailbox for alice")
    sizes = [len(wire(m)) for m in MSGS]
    assert s.cmd("STAT") == "+OK 3 %d" % sum(sizes)
    assert s.cmd("LIST 2") == "+OK 2 %d" % sizes[1]
    assert uidl(s) == NAMES
    assert s.cmd("RETR 1") == "+OK %d octets" % sizes[0]
    assert b"".join(s.multi()) == wire(MSGS[0])
    assert s.cmd("RETR 2").startswith("+OK")
    assert b"".join(s.multi()) == wire(MSGS[1])
    assert s.cmd("TOP 3 0").startswith("+OK")
    s.multi()
    assert s.cmd("DELE 2") == "+OK Message 2 marked"
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert s.returncode == 0
    # RETR and TOP both mark a message seen (the session's "retrieved" flag).
    assert os.listdir(os.path.join(md, "new")) == []
    assert sorted(os.listdir(os.path.join(md, "cur"))) == [NAMES[0] + ":2,S",
                                                           NAMES[2] + ":2,S"]

    s = site.inetd()
    assert s.login().startswith("+OK")
    assert uidl(s) == [NAMES[0], NAMES[2]]     # stable across the new/ -> cur/ move
    assert s.cmd("RETR 1").startswith("+OK")
    assert b"".join(s.multi()) == wire(MSGS[0])
    s.cmd("QUIT")
    s.close()


def test_maildir_session_without_quit_deletes_nothing(site):
    site.write_conf('mailbox { mailbox-type maildir; };')
    md = make_maildir(site, site.mbox_path(), MSGS)
    s = site.inetd()
    s.login()
    assert s.cmd("DELE 1").startswith("+OK")
    s.close()
    assert len(os.listdir(os.path.join(md, "new"))) == 3


def test_maildir_in_use(site):
    site.write_conf('mailbox { mailbox-pattern "maildir:${home}/Maildir"; };')
    make_maildir(site, os.path.join(home(site), "Maildir"), MSGS)
    a = site.inetd()
    assert a.login().startswith("+OK")
    b = site.inetd()
    assert b.login() == "-ERR [IN-USE] Mailbox in use"
    b.close()
    a.cmd("QUIT")
    a.close()
    c = site.inetd()
    assert c.login().startswith("+OK")
    c.cmd("QUIT")
    c.close()


def test_maildir_delivery_during_session(site):
    site.write_conf('mailbox { mailbox-pattern "maildir:${home}/Maildir"; };')
    md = make_maildir(site, os.path.join(home(site), "Maildir"), MSGS)
    s = site.inetd()
    s.login()
    for i in (1, 2, 3):
        assert s.cmd("DELE %d" % i).startswith("+OK")
    with open(os.path.join(md, "new", "1800000000.M9P9.host"), "w") as f:
        f.write(msg(9))
    chown_tree(site, md)
    assert s.cmd("QUIT") == "+OK POP3 server signing off (3 messages deleted)"
    s.close()
    assert os.listdir(os.path.join(md, "new")) == ["1800000000.M9P9.host"]
    s = site.inetd()
    s.login()
    assert s.cmd("STAT").startswith("+OK 1 ")
    assert uidl(s) == ["1800000000.M9P9.host"]
    s.cmd("QUIT")
    s.close()


def test_maildir_dovecot_uidlist(site):
    """A maildrop last served by Dovecot (default pop3_uidl_format %08Xu%08Xv) keeps its
    ids; a message Dovecot has not listed yet gets its base name."""
    site.write_conf('mailbox { mailbox-type maildir; };')
    md = make_maildir(site, site.mbox_path(), MSGS, sub="cur")
    with open(os.path.join(md, "dovecot-uidlist"), "w") as f:
        f.write("3 V1700000000 N12 G3085f01b7f11094c501100008c4a11c1\n"
                "10 :%s:2,S\n11 W300 :%s\n" % (NAMES[0], NAMES[1]))
    chown_tree(site, md)
    s = site.inetd()
    s.login()
    assert uidl(s) == ["0000000a6553f100", "0000000b6553f100", NAMES[2]]
    s.cmd("QUIT")
    s.close()


def test_maildir_autodetected(site):
    """No mailbox-type: the spool entry is a directory with cur/ and new/."""
    make_maildir(site, site.mbox_path(), MSGS)
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("STAT").startswith("+OK 3 ")
    s.cmd("QUIT")
    s.close()


def test_maildir_poplib(site):
    site.write_conf('mailbox { mailbox-pattern "maildir:${home}/Maildir"; };')
    md = make_maildir(site, os.path.join(home(site), "Maildir"), MSGS)
    p, proc = site.poplib_inetd()
    p.user("alice")
    p.pass_("alice-secret")
    count, size = p.stat()
    assert count == 3 and size == sum(len(wire(m)) for m in MSGS)
    ids = [l.split()[1].decode() for l in p.uidl()[1]]
    assert ids == NAMES
    resp, lines, octets = p.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == wire(MSGS[1])
    p.dele(3)
    p.quit()
    proc.wait(timeout=20)
    proc.stderr.close()
    assert os.listdir(os.path.join(md, "new")) == [NAMES[0]]
    assert os.listdir(os.path.join(md, "cur")) == [NAMES[1] + ":2,S"]


def make_mh(site, numbers, sequences):
    site.write_conf('mailbox { mailbox-pattern "mh:${home}/Mail/inbox"; };')
    folder = os.path.join(home(site), "Mail", "inbox")
    os.makedirs(folder)
    for n, m in zip(numbers, MSGS):
        with open(os.path.join(folder, str(n)), "w") as f:
            f.write(m)
    with open(os.path.join(folder, ".mh_sequences"), "w") as f:
        f.write(sequences)
    return folder


def test_mh_session(site):
    folder = make_mh(site, (1, 2, 10), "unseen: 1-2 10\n")
    with open(os.path.join(folder, ",3"), "w") as f:
        f.write(msg(4))
    chown_tree(site, os.path.join(home(site), "Mail"))
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("STAT") == "+OK 3 %d" % sum(len(wire(m)) for m in MSGS)
    first = uidl(s)
    assert len(set(first)) == 3
    assert s.cmd("RETR 3").startswith("+OK")
    assert b"".join(s.multi()) == wire(MSGS[2])
    assert s.cmd("DELE 1").startswith("+OK")
    b = site.inetd()
    assert b.login() == "-ERR [IN-USE] Mailbox in use"
    b.close()
    assert s.cmd("QUIT").startswith("+OK")
    s.close()
    assert sorted(os.listdir(folder)) == [",3", ".mh_sequences", ".pop3d-index", "10", "2"]
    with open(os.path.join(folder, ".mh_sequences")) as f:
        assert f.read() == "unseen: 2\n"
    s = site.inetd()
    s.login()
    assert uidl(s) == first[1:]
    s.cmd("QUIT")
    s.close()


def test_maildir_same_base_name_in_cur_and_new(site):
    # Two messages whose names share the base name, one in new/ and one in cur/: both
    # are listed, each with its own id, and stay so across sessions.
    site.write_conf('mailbox { mailbox-type maildir; };')
    md = make_maildir(site, site.mbox_path(), [MSGS[0]], [NAMES[0]], sub="new")
    with open(os.path.join(md, "cur", NAMES[0] + ":2,S"), "wb") as f:
        f.write(MSGS[1].encode())
    chown_tree(site, md)
    sizes = sorted(len(wire(m)) for m in MSGS[:2])
    for _ in range(2):
        s = site.inetd()
        assert s.login().startswith("+OK")
        assert s.cmd("STAT") == "+OK 2 %d" % sum(sizes)
        ids = uidl(s)
        assert len(ids) == 2 and len(set(ids)) == 2 and NAMES[0] in ids
        assert s.cmd("LIST").startswith("+OK")
        assert sorted(int(l.split()[1]) for l in s.multi()) == sizes
        s.cmd("QUIT")
        s.close()


def record(lines):
    return b"".join(l.encode() + b"\0" for l in ["pop3d-update 1"] + lines +
                    ["end %d" % len(lines)])


def test_maildir_interrupted_quit_completed_at_login(site):
    # A session killed during QUIT once its removal was decided leaves the record
    # pop3d-update: the next login removes the messages it names before listing.  A
    # record naming a file outside cur/ and new/ is refused whole.
    site.write_conf('mailbox { mailbox-type maildir; };')
    md = make_maildir(site, site.mbox_path(), MSGS)
    victim = os.path.join(site.dir, "victim")
    with open(victim, "w") as f:
        f.write(msg(9))
    rec = os.path.join(md, "pop3d-update")
    with open(rec, "wb") as f:
        f.write(record(["new %d ../../victim" % os.stat(victim).st_ino,
                        "new %d %s" % (os.stat(os.path.join(md, "new", NAMES[0])).st_ino,
                                       NAMES[0])]))
    chown_tree(site, md)
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert uidl(s) == NAMES
    s.cmd("QUIT")
    s.close()
    assert os.path.exists(victim) and not os.path.exists(rec)

    with open(rec, "wb") as f:
        f.write(record(["new %d %s" % (os.stat(os.path.join(md, "new", n)).st_ino, n)
                        for n in NAMES[:2]]))
    chown_tree(site, md)
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert uidl(s) == NAMES[2:]
    s.cmd("QUIT")
    s.close()
    assert os.listdir(os.path.join(md, "new")) == [NAMES[2]] and not os.path.exists(rec)


def mh_identity(path):
    """What an MH update record says of a message: its inode and its change time mixed
    (mailbox_file_mh_identity(), splitmix64's finaliser of the change time)."""
    st = os.stat(path)
    m = (1 << 64) - 1
    t = st.st_ctime_ns & m
    t ^= t >> 30
    t = (t * 0xbf58476d1ce4e5b9) & m
    t ^= t >> 27
    t = (t * 0x94d049bb133111eb) & m
    t ^= t >> 31
    return st.st_ino ^ t


def test_mh_interrupted_quit_completed_at_login(site):
    folder = make_mh(site, (1, 2, 3), "unseen: 1-3\n")
    # The owner first: a chown changes the files' change time.
    chown_tree(site, os.path.join(home(site), "Mail"))
    rec = os.path.join(folder, ".pop3d-update")
    with open(rec, "wb") as f:
        f.write(record(["msg %d 2" % mh_identity(os.path.join(folder, "2"))]))
    if site.root:
        os.chown(rec, site.uids["alice"], site.gid)
    s = site.inetd()
    assert s.login().startswith("+OK")
    assert s.cmd("STAT") == "+OK 2 %d" % (len(wire(MSGS[0])) + len(wire(MSGS[2])))
    s.cmd("QUIT")
    s.close()
    assert sorted(n for n in os.listdir(folder) if not n.startswith(".")) == ["1", "3"]
    with open(os.path.join(folder, ".mh_sequences")) as f:
        assert f.read() == "unseen: 1 3\n"
    assert not os.path.exists(os.path.join(folder, ".pop3d-update"))
