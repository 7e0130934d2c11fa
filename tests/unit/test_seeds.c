/* test_seeds.c - the seed features' parts: From_ dates and expiry marks (and which are
 * trusted), the expiry decision at QUIT, the user -> number database, and the mbox
 * header edits and appends behind X-Expire-Timestamp, undelete and bulletins.
 * GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "expire.h"
#include "mailbox.h"
#include "numdb.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test_seeds.XXXXXX";

static void write_file(const char *path, const char *data)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  if (fd < 0 || util_write_all(fd, data, strlen(data)) < 0 || close(fd) < 0) {
    perror(path);
    exit(2);
  }
}

static char *read_file(const char *path)
{
  static char buf[65536];
  int fd = open(path, O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);

  if (fd >= 0)
    close(fd);
  buf[n < 0 ? 0 : n] = '\0';
  return buf;
}

static void test_from_dates(void)
{
  struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 10,
                   .tm_isdst = -1 };
  time_t local = mktime(&tm);
  int64_t t = 0;
  static const struct { const char *line; bool ok; int64_t want; /* 0: local */ } cases[] = {
    { "From a@b Mon Nov 23 10:00:00 2026\n", true, 0 },
    { "From a@b  Mon Nov 23 10:00:00 2026", true, 0 },
    { "From a@b Mon Nov 23 10:00 2026\n", true, 0 },
    { "From a@b Mon Nov 23 10:00:00 UTC 2026\n", true, 0 },
    { "From a@b Mon Nov 23 10:00:00 2026 +0000\n", true, 1795428000 },
    { "From a@b Mon Nov 23 12:00:00 2026 +0200\r\n", true, 1795428000 },
    /* A sender can't put a date before the MDA's: the last one is read. */
    { "From \"Thu Jan  1 00:00:00 1970\"@b Mon Nov 23 10:00:00 2026", true, 0 },
    { "From a@b", false, 0 },
    { "From a@b Mon Nov 23 10:00:00", false, 0 },
    { "From a@b Mon Nox 23 10:00:00 2026", false, 0 },
    { "From a@b Mon Nov 32 10:00:00 2026", false, 0 },
    { "From a@b Mon Nov 23 25:00:00 2026", false, 0 },
    { "From a@b Mon Nov 23 10:00:00 1969", false, 0 },
    { "From a@b Xyz Nov 23 10:00:00 2026", false, 0 },
    { "Frum a@b Mon Nov 23 10:00:00 2026", false, 0 },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool ok = expire_from_line_time(cases[i].line, strlen(cases[i].line), &t);
    ok(ok == cases[i].ok, "From_ date of \"%.*s\": %s",
       (int)strcspn(cases[i].line, "\r\n"), cases[i].line, ok ? "read" : "refused");
    if (ok && cases[i].ok)
      is_int(t, cases[i].want ? cases[i].want : (int64_t)local, "  its time");
  }
}

static void test_marks(void)
{
  int64_t t = 0;

  ok(expire_parse_mark(" 1795428000", 11, &t) && t == 1795428000, "mark with a blank");
  ok(expire_parse_mark(" 12 \r\n", 6, &t) && t == 12, "mark with CRLF");
  ok(!expire_parse_mark(" 12a", 4, &t), "junk refused");
  ok(!expire_parse_mark(" -1", 3, &t), "sign refused");
  ok(!expire_parse_mark("  ", 2, &t), "empty refused");
  ok(!expire_parse_mark("9999999999999999999", 19, &t), "overlong refused");
  ok(expire_mark_trusted(100, 100, 200), "mark at delivery trusted");
  ok(expire_mark_trusted(200, 100, 200), "mark now trusted");
  ok(!expire_mark_trusted(99, 100, 200), "mark before delivery not trusted");
  ok(!expire_mark_trusted(201, 100, 200), "mark in the future not trusted");
  ok(!expire_mark_trusted(150, 0, 200), "unknown delivery: not trusted");
}

static void test_prepare(void)
{
  struct mailbox_msg msgs[5];
  struct mailbox mb;
  struct conf c;
  time_t now = 1800000000;
  size_t n;

  memset(&c, 0, sizeof c);
  memset(msgs, 0, sizeof msgs);
  memset(&mb, 0, sizeof mb);
  mb.msgs = msgs;
  mb.count = 5;
  msgs[0].flags = MAILBOX_MSG_RETRIEVED;                      /* new mark */
  msgs[1].flags = MAILBOX_MSG_RETRIEVED;                      /* marked 10 days ago */
  msgs[1].expire_mark = (uint32_t)(now - 10 * 86400);
  msgs[2].expire_mark = (uint32_t)(now - 2 * 86400);          /* not yet due */
  msgs[3].expire_mark = (uint32_t)(now - 5 * 86400);          /* due exactly now */
  msgs[4].flags = MAILBOX_MSG_DELETED;
  msgs[4].expire_mark = 1;

  c.expire = -1;
  is_int(expire_prepare_update(&mb, &c, now), 0, "expire never: nothing");
  ok(!(msgs[0].flags & MAILBOX_MSG_MARK), "  and no mark");
  c.expire = 5;
  c.delete_expired = false;
  is_int(expire_prepare_update(&mb, &c, now), 0, "expire 5: nothing deleted");
  ok(msgs[0].flags & MAILBOX_MSG_MARK, "  retrieved message marked");
  ok(!(msgs[1].flags & MAILBOX_MSG_MARK), "  a marked message keeps its mark");
  is_int(mb.mark_time, now, "  mark time");
  c.delete_expired = true;
  n = expire_prepare_update(&mb, &c, now);
  is_int(n, 2, "delete-expired: two due");
  ok((msgs[1].flags & MAILBOX_MSG_DELETED) && (msgs[3].flags & MAILBOX_MSG_DELETED) &&
     !(msgs[2].flags & MAILBOX_MSG_DELETED) && !(msgs[0].flags & MAILBOX_MSG_DELETED),
     "  the right two");
  for (size_t i = 0; i < 4; i++)
    msgs[i].flags &= ~(MAILBOX_MSG_DELETED | MAILBOX_MSG_MARK);
  c.expire = 0;
  c.delete_expired = false;
  n = expire_prepare_update(&mb, &c, now);
  is_int(n, 4, "expire 0 implies delete-expired: retrieved and marked ones go");
}

static void test_numdb(void)
{
#ifdef HAVE_GDBM
  char path[300], link_path[300], err[160];
  struct numdb db;
  uint64_t v = 7;
  bool found = true;
  struct stat st;

  snprintf(path, sizeof path, "%s/n.db", tmpdir);
  ok(numdb_open(&db, path, false, err, sizeof err) < 0, "missing db, no create: error");
  ok(numdb_open(&db, path, true, err, sizeof err) == 0, "created");
  ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "  mode 0600");
  ok(numdb_update(&db, "alice", &v, &found, NULL, NULL, err, sizeof err) == 0 && !found &&
     v == 0, "absent key reads as 0, not found");
  ok(numdb_put(&db, "alice", 1795428000, err, sizeof err) == 0, "put");
  ok(numdb_put(&db, "bob", 3, err, sizeof err) == 0, "put again on the same descriptor");
  ok(numdb_update(&db, "alice", &v, &found, NULL, NULL, err, sizeof err) == 0 && found &&
     v == 1795428000, "read back");
  numdb_close(&db);
  ok(numdb_open(&db, path, false, err, sizeof err) == 0 &&
     numdb_update(&db, "bob", &v, &found, NULL, NULL, err, sizeof err) == 0 && v == 3,
     "reopened");
  numdb_close(&db);

  snprintf(link_path, sizeof link_path, "%s/l.db", tmpdir);
  ok(symlink(path, link_path) == 0 && numdb_open(&db, link_path, true, err, sizeof err) < 0,
     "symbolic link refused: %s", err);
  chmod(path, 0620);
  ok(numdb_open(&db, path, true, err, sizeof err) < 0, "group-writable refused: %s", err);
  chmod(path, 0602);
  ok(numdb_open(&db, path, true, err, sizeof err) < 0, "world-writable refused: %s", err);
  chmod(path, 0600);
  {
    /* The checks look at the descriptor: a second name of the file, a FIFO (opened
     * without blocking), another user's file. */
    char other[300];
    snprintf(other, sizeof other, "%s/hard.db", tmpdir);
    ok(link(path, other) == 0 && numdb_open(&db, other, true, err, sizeof err) < 0,
       "hard link refused: %s", err);
    ok(numdb_open(&db, path, true, err, sizeof err) < 0, "  the other name too: %s", err);
    unlink(other);
    ok(numdb_open(&db, path, true, err, sizeof err) == 0, "  one name again: accepted");
    numdb_close(&db);
    snprintf(other, sizeof other, "%s/fifo.db", tmpdir);
    ok(mkfifo(other, 0600) == 0 && numdb_open(&db, other, true, err, sizeof err) < 0,
       "FIFO refused without blocking: %s", err);
    if (geteuid() == 0) {
      ok(chown(path, 12345, 12345) == 0 && numdb_open(&db, path, true, err, sizeof err) < 0,
         "another user's file refused: %s", err);
      ok(chown(path, 0, 0) == 0, "  back to root");
    } else {
      ok(1, "# SKIP not root: another user's file");
      ok(1, "# SKIP not root");
    }
  }
#else
  ok(1, "# SKIP built without GDBM");
#endif
}

static void conf_for_test(struct conf *c)
{
  memset(c, 0, sizeof *c);
  c->lock_type = CONF_LOCK_KERNEL;
  c->lock_retry_count = 1;
  c->lock_expire_timeout = 600;
}

static void test_mbox_edits(void)
{
  char path[300], src_path[300];
  struct mailbox mb, src;
  struct conf c;
  const char *err = NULL;
  size_t del;
  struct mailbox_range r[2];
  char uid1[80];
  const char *data;
  int sfd = -1;

  conf_for_test(&c);
  snprintf(path, sizeof path, "%s/mbox", tmpdir);
  write_file(path,
             "From a Mon Nov 23 10:00:00 2026\nSubject: one\nStatus: RD\n\nbody 1\n\n"
             "From b Mon Nov 23 10:00:00 2026\nSubject: two\nX-UIDL: own-id\n\nbody 2\n\n"
             "From c Mon Nov 23 10:00:00 2026\nSubject: three\n\nbody 3\n");
  ok(mailbox_open(&mb, path, &c, &err) == MAILBOX_OK && mb.count == 3, "opened");
  ok(mb.msgs[0].flags & MAILBOX_MSG_STATUS_D, "Status D seen");
  ok(mb.msgs[1].flags & MAILBOX_MSG_XUIDL, "own X-UIDL seen");
  snprintf(uid1, sizeof uid1, "%s", mailbox_uid(&mb, 0));
  mb.msgs[0].flags |= MAILBOX_MSG_MARK | MAILBOX_MSG_UNDELETE;
  mb.msgs[1].flags |= MAILBOX_MSG_MARK;
  mb.msgs[2].flags |= MAILBOX_MSG_DELETED;
  mb.mark_time = 1795428111;
  ok(mb.ops->update(&mb, &del, &err) == MAILBOX_OK && del == 1, "update");
  mailbox_close(&mb);
  data = read_file(path);
  {
    char want[1024];
    snprintf(want, sizeof want,
             "From a Mon Nov 23 10:00:00 2026\nSubject: one\nStatus: R\n"
             "X-Expire-Timestamp: 1795428111\nX-UIDL: %s\n\nbody 1\n\n"
             "From b Mon Nov 23 10:00:00 2026\nSubject: two\nX-UIDL: own-id\n"
             "X-Expire-Timestamp: 1795428111\n\nbody 2\n\n", uid1);
    is_str(data, want, "marks, undelete and the id written; deletion applied");
  }
  ok(mailbox_open(&mb, path, &c, &err) == MAILBOX_OK && mb.count == 2, "reopened");
  is_str(mailbox_uid(&mb, 0), uid1, "  the id survived the header change");
  ok(!(mb.msgs[0].flags & MAILBOX_MSG_STATUS_D), "  the mark is gone");
  mailbox_close(&mb);

  /* Append (bulletins): all or none, and not twice. */
  snprintf(src_path, sizeof src_path, "%s/bull", tmpdir);
  write_file(src_path, "From root Mon Nov 23 10:00:00 2026\nSubject: b1\n\nnews 1\n\n"
                       "From root Mon Nov 23 10:00:00 2026\nSubject: b2\n\nnews 2");
  ok(mailbox_mbox_open_fd(&src, open(src_path, O_RDONLY), &c, &err) == MAILBOX_OK &&
     src.count == 2, "source opened read-only");
  ok(mailbox_mbox_block(&src, 0, &r[0]) && mailbox_mbox_block(&src, 1, &r[1]), "blocks");
  ok(src.ops->msg_fd(&src, 0, &sfd, &err) == 0, "source descriptor");
  ok(mailbox_open(&mb, path, &c, &err) == MAILBOX_OK, "maildrop opened");
  ok(mb.ops->append(&mb, sfd, r, 2, &err) == MAILBOX_OK, "appended");
  mailbox_close(&mb);
  ok(mailbox_open(&mb, path, &c, &err) == MAILBOX_OK && mb.count == 4, "  4 messages");
  ok(mb.ops->append(&mb, sfd, r, 2, &err) == MAILBOX_OK, "appended again");
  mailbox_close(&mb);
  ok(mailbox_open(&mb, path, &c, &err) == MAILBOX_OK && mb.count == 4,
     "  already there: not twice");
  mailbox_close(&mb);
  data = read_file(path);
  ok(strstr(data, "body 2\n\nFrom root") != NULL && strstr(data, "news 2\n\n") != NULL &&
     strstr(data, "news 2\n\n\n") == NULL, "separators right");
  mailbox_close(&src);
}

int main(void)
{
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  test_from_dates();
  test_marks();
  test_prepare();
  test_numdb();
  test_mbox_edits();
  {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", tmpdir);
  }
  return tap_done();
}
