/* test_maildir.c - Maildir and MH maildrops: scanning, sizes, unique ids (Dovecot's
 * uidlist, X-UIDL), deletions, delivery during a session, moves by other clients,
 * locking, hostile names and files, .mh_sequences, autodetection; UPDATE killed at
 * every step removes all or none of the messages marked deleted, and hostile records
 * of an interrupted UPDATE are refused.  GPL-3.0-or-later. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "mailbox.h"
#include "mailbox_file.h"
#include "params.h"
#include "tap.h"
#include "uidl.h"

static char tmpdir[] = "/tmp/test_maildir.XXXXXX";

static void conf_for_test(struct conf *c)
{
  memset(c, 0, sizeof *c);
  c->lock_type = CONF_LOCK_DEFAULT;
  c->lock_retry_count = 1;
  c->lock_retry_sleep = 0;
  c->lock_expire_timeout = 600;
}

static void write_file(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  if (fd < 0 || util_write_all(fd, data, len) < 0 || close(fd) < 0) {
    perror(path);
    exit(2);
  }
}

/* A message file as delivery agents write one: a new file renamed into place, so that
 * a replaced message is a new inode (Maildir files never change in place). */
static void put(const char *dir, const char *sub, const char *name, const char *data)
{
  char p[1024], t[1100];

  snprintf(p, sizeof p, "%s/%s%s%s", dir, sub, *sub ? "/" : "", name);
  snprintf(t, sizeof t, "%s/.put-tmp", dir);
  write_file(t, data, strlen(data));
  if (rename(t, p) < 0) {
    perror(p);
    exit(2);
  }
}

static bool exists(const char *dir, const char *sub, const char *name)
{
  char p[1024];

  snprintf(p, sizeof p, "%s/%s/%s", dir, sub, name);
  return access(p, F_OK) == 0;
}

static void make_maildir(const char *dir)
{
  char p[1024];

  mkdir(dir, 0700);
  for (int k = 0; k < 3; k++) {
    static const char *const s[3] = { "cur", "new", "tmp" };
    snprintf(p, sizeof p, "%s/%s", dir, s[k]);
    mkdir(p, 0700);
  }
}

static void rm_rf(const char *dir)
{
  char cmd[1200];

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "rm -rf failed\n");
}

/* The size rule of mailbox.h, the slow way (mboxrd off), as in test_mbox.c. */
static uint64_t ref_size(const char *m, size_t len, uint64_t *lines_r)
{
  uint64_t o = 0, lines = 0;
  size_t i = 0;

  while (i < len) {
    size_t s = i, e;
    bool lf = false;
    while (i < len && m[i] != '\n')
      i++;
    e = i;
    if (i < len) {
      lf = true;
      i++;
    }
    o += e - s;
    if (lf) {
      if (!(e > s && m[e - 1] == '\r'))
        o++;
      o++;
      lines++;
    } else if (e > s) {
      o += 2;
      lines++;
    }
  }
  *lines_r = lines;
  return o;
}

/* Read [start, end) of message i through msg_fd. */
static char *read_msg(struct mailbox *mb, size_t i, size_t *len_r)
{
  const char *err = NULL;
  int fd;
  size_t len;
  char *buf;

  if (mb->ops->msg_fd(mb, i, &fd, &err) < 0) {
    printf("# msg_fd: %s\n", err);
    return NULL;
  }
  len = (size_t)(mb->msgs[i].end - mb->msgs[i].start);
  buf = malloc(len + 1);
  if (pread(fd, buf, len, mb->msgs[i].start) != (ssize_t)len) {
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  *len_r = len;
  return buf;
}

/* ---- the file scan ---- */

static void test_scan(void)
{
  static const struct {
    const char *data;
    const char *xuidl;     /* expected X-UIDL, NULL: none */
  } cases[] = {
    { "", NULL },
    { "Subject: x\n\nbody\n", NULL },
    { "Subject: x\r\n\r\nbody\r\n", NULL },
    { "Subject: x\n\nno final newline", NULL },
    { "Subject: x\n\nmixed\r\nends\n\r\n\n", NULL },
    { "\n", NULL },
    { "\r", NULL },
    { "a\rb\n", NULL },
    { ">From me\n\n>From you\n", NULL },
    { "X-UIDL: abc123\nSubject: x\n\nb\n", "abc123" },
    { "x-uidl:   spaced  \r\nSubject: x\n\nb\n", "spaced" },
    { "Subject: x\nX-UIDL: first\nX-UIDL: second\n\nb\n", "first" },
    { "X-UIDL: folded\n more\n\nb\n", NULL },
    { "X-UIDL: folded\n \n\nb\n", "folded" },
    { "X-UIDL: has space\n\nb\n", NULL },
    { "X-UIDL: \n\nb\n", NULL },
    { "X-UIDL: 01234567890123456789012345678901234567890123456789012345678901234567890\n\n",
      NULL },
    { "Subject: x\n\nX-UIDL: in-body\n", NULL },
    { "X-UIDL: no-newline", "no-newline" },
  };

  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    struct mailbox_file_info fi;
    uint64_t lines, want = ref_size(cases[k].data, strlen(cases[k].data), &lines);
    mailbox_file_scan_buffer(cases[k].data, strlen(cases[k].data), &fi);
    ok(fi.size == want && fi.lines == lines, "scan %zu: size %llu/%llu lines %llu/%llu", k,
       (unsigned long long)fi.size, (unsigned long long)want,
       (unsigned long long)fi.lines, (unsigned long long)lines);
    is_str(fi.xuidl_len ? fi.xuidl : NULL, cases[k].xuidl, "scan %zu: X-UIDL", k);
    ok(uidl_valid(fi.hash_id, strlen(fi.hash_id)), "scan %zu: hash id valid", k);
  }

  /* Every split of a tricky message through the file scan gives the same answer. */
  {
    static const char m[] = "X-UIDL: split\r\nA: b\r\n\r\nline\rx\nlast";
    char path[300];
    struct mailbox_file_info a, b;
    const char *err;
    int fd;
    snprintf(path, sizeof path, "%s/scanfile", tmpdir);
    write_file(path, m, sizeof m - 1);
    fd = open(path, O_RDONLY);
    mailbox_file_scan_buffer(m, sizeof m - 1, &a);
    ok(mailbox_file_scan(fd, sizeof m - 1, false, &b, &err) == 0 && a.size == b.size &&
       a.lines == b.lines && strcmp(a.hash_id, b.hash_id) == 0 &&
       strcmp(b.xuidl, "split") == 0, "file scan = buffer scan");
    ok(mailbox_file_scan(fd, sizeof m + 10, false, &b, &err) < 0, "short file is an error");
    close(fd);
    unlink(path);
  }
  /* A big file with lines longer than a read block. */
  {
    size_t len = 3 * PARAMS_READ_BLOCK + 777;
    char *big = malloc(len), path[300];
    struct mailbox_file_info fi;
    uint64_t lines, want;
    const char *err;
    int fd;
    for (size_t i = 0; i < len; i++)
      big[i] = (i % 200000 == 199999) ? '\n' : (i % 5000 == 4999 ? '\r' : 'a');
    memcpy(big, "Subject: big\n\n", 14);
    want = ref_size(big, len, &lines);
    snprintf(path, sizeof path, "%s/big", tmpdir);
    write_file(path, big, len);
    fd = open(path, O_RDONLY);
    ok(mailbox_file_scan(fd, (off_t)len, false, &fi, &err) == 0 && fi.size == want &&
       fi.lines == lines, "big file: size and lines");
    close(fd);
    unlink(path);
    free(big);
  }
}

/* ---- dovecot-uidlist ---- */

static void test_dovecot_uidlist(void)
{
  static const char v3[] =
    "3 V1234567890 N20 G0123456789abcdef0123456789abcdef\n"
    "1 :1600000000.M1P1.host,S=100,W=104:2,S\n"
    "2 W200 S190 :1600000001.M2P2.host\n"
    "3 P+legacy-id O1 :1600000002.M3P3.host:2,\n"
    "junk line\n"
    "4 Pbad\001id :1600000003.M4P4.host\n"
    "0 :zero-uid\n"
    "19 :1600000009.last\n"
    "20 :being-written";
  static const char v1[] = "1 1000 3\n1 1.a.host\n2 2.b.host:2,S\n";
  struct uidl_dovecot d;
  char out[71];

  ok(uidl_dovecot_parse(&d, util_xstrdup(v3), sizeof v3 - 1) == 0, "v3 parses");
  is_int(d.uidvalidity, 1234567890, "v3 uidvalidity");
  is_int(d.n, 5, "v3 records (bad ones skipped, an unterminated one left out)");
  is_int(uidl_dovecot_lookup(&d, "1600000000.M1P1.host,S=100,W=104", 32, out),
         UIDL_DOVECOT_UID, "v3 lookup by base name");
  is_str(out, "00000001499602d2", "%%08x%%08x of uid 1, uidvalidity 1234567890");
  ok(uidl_dovecot_lookup(&d, "1600000001.M2P2.host", 20, out) == UIDL_DOVECOT_UID &&
     strcmp(out, "00000002499602d2") == 0, "v3 record with keys");
  ok(uidl_dovecot_lookup(&d, "1600000002.M3P3.host", 20, out) == UIDL_DOVECOT_POP3 &&
     strcmp(out, "+legacy-id") == 0, "v3 P field is the POP3 id");
  ok(uidl_dovecot_lookup(&d, "1600000003.M4P4.host", 20, out) == UIDL_DOVECOT_UID,
     "invalid P field falls back to the UID");
  ok(uidl_dovecot_lookup(&d, "1600000009.last", 15, out) == UIDL_DOVECOT_UID &&
     strcmp(out, "00000013499602d2") == 0, "uid 19 in hex");
  ok(uidl_dovecot_lookup(&d, "1600000009.las", 14, out) == UIDL_DOVECOT_NONE &&
     uidl_dovecot_lookup(&d, "zero-uid", 8, out) == UIDL_DOVECOT_NONE &&
     uidl_dovecot_lookup(&d, "being-written", 13, out) == UIDL_DOVECOT_NONE,
     "unknown names");
  uidl_dovecot_free(&d);

  ok(uidl_dovecot_parse(&d, util_xstrdup(v1), sizeof v1 - 1) == 0 && d.uidvalidity == 1000,
     "v1 parses");
  ok(uidl_dovecot_lookup(&d, "2.b.host", 8, out) == UIDL_DOVECOT_UID &&
     strcmp(out, "00000002000003e8") == 0, "v1 lookup");
  uidl_dovecot_free(&d);

  {
    static const char *const bad[] = { "", "3", "2 V1 N2\n", "3 N2\n1 :a\n", "3 V0 N1\n",
                                       "3 Vx N1\n", "1 abc 2\n", "3 V99999999999 N1\n" };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
      ok(uidl_dovecot_parse(&d, util_xstrdup(bad[k]), strlen(bad[k])) < 0 && d.n == 0,
         "bad uidlist %zu refused", k);
    uidl_dovecot_free(&d);
  }
}

/* ---- maildir ---- */

static const char m1[] = "Subject: one\n\nbody one\n";
static const char m2[] = "Subject: two\r\n\r\nbody two\r\n";
static const char m3[] = "X-UIDL: kept-id\nSubject: three\n\nno newline";
static const char m4[] = "Subject: four\n\n>From quoted\n";

static void test_maildir_basic(void)
{
  char dir[300], p[600], p2[600];
  struct conf c;
  struct mailbox mb, mb2;
  const char *err = NULL;
  size_t removed;

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/Maildir", tmpdir);
  make_maildir(dir);
  put(dir, "new", "1700000002.M2P2.host", m2);
  put(dir, "cur", "1700000001.M1P1.host:2,S", m1);
  put(dir, "cur", "1700000003.M3P3.host:2,", m3);
  put(dir, "new", "999.old", m4);
  put(dir, "tmp", "1.tmp", "Subject: in tmp\n\n");
  put(dir, "new", ".hidden", "Subject: dot\n\n");
  snprintf(p, sizeof p, "%s/new/1800000000.link", dir);
  snprintf(p2, sizeof p2, "%s/cur/1700000001.M1P1.host:2,S", dir);
  ok(symlink(p2, p) == 0, "symlink in new/");
  snprintf(p, sizeof p, "%s/new/1800000001.fifo", dir);
  ok(mkfifo(p, 0600) == 0, "fifo in new/");
  snprintf(p, sizeof p, "%s/cur/1800000002.dir", dir);
  ok(mkdir(p, 0700) == 0, "directory in cur/");

  snprintf(p, sizeof p, "maildir:%s", dir);
  is_int(mailbox_open(&mb, p, &c, &err), MAILBOX_OK, "open maildir (%s)", err ? err : "ok");
  ok(mb.ops == &mailbox_maildir_ops && !mb.mboxrd, "maildir backend, no mboxrd");
  is_int(mb.count, 4, "four messages (tmp/, dot files, symlinks, fifos, dirs ignored)");
  if (mb.count == 4) {
    static const char *const want_uid[4] = { "999.old", "1700000001.M1P1.host",
                                             "1700000002.M2P2.host", "kept-id" };
    static const char *const want_body[4] = { m4, m1, m2, m3 };
    uint64_t total = 0;
    for (size_t i = 0; i < 4; i++) {
      uint64_t lines, want = ref_size(want_body[i], strlen(want_body[i]), &lines);
      size_t len = 0;
      char *b = read_msg(&mb, i, &len);
      is_str(mailbox_uid(&mb, i), want_uid[i], "uid %zu (delivery order)", i);
      ok(mb.msgs[i].size == want && mb.msgs[i].lines == lines, "size and lines %zu", i);
      ok(b != NULL && len == strlen(want_body[i]) && memcmp(b, want_body[i], len) == 0,
         "msg_fd gives message %zu", i);
      free(b);
      total += want;
    }
    ok(mb.total_size == total, "total size");
    /* Re-reading the same message keeps its fd; another one closes it. */
    {
      int fd1, fd2, fd3;
      ok(mb.ops->msg_fd(&mb, 1, &fd1, &err) == 0 && mb.ops->msg_fd(&mb, 1, &fd2, &err) == 0 &&
         fd1 == fd2 && mb.ops->msg_fd(&mb, 2, &fd3, &err) == 0 &&
         (fcntl(fd1, F_GETFD) < 0) == (fd1 != fd3), "one message fd at a time");
    }
    ok(mb.ops->check(&mb, &err) == MAILBOX_OK, "check");

    /* A second session is refused while this one runs. */
    is_int(mailbox_open(&mb2, p, &c, &err), MAILBOX_INUSE, "second session: in use");
    {
      struct conf cn = c;
      cn.lock_type = CONF_LOCK_NULL;
      ok(mailbox_open(&mb2, p, &cn, &err) == MAILBOX_OK, "locking null: no lock");
      mailbox_close(&mb2);
    }

    /* RETR 2 (in new/), RETR 1 (in cur/, seen), DELE 4, DELE 1; then deliveries. */
    mb.msgs[2].flags |= MAILBOX_MSG_RETRIEVED;
    mb.msgs[1].flags |= MAILBOX_MSG_RETRIEVED;
    mb.msgs[3].flags |= MAILBOX_MSG_DELETED;
    mb.msgs[0].flags |= MAILBOX_MSG_DELETED | MAILBOX_MSG_RETRIEVED;
    put(dir, "new", "1900000000.M9P9.host", "Subject: delivered meanwhile\n\n");
    put(dir, "cur", "1900000001.M9P9.host:2,S", "Subject: moved in meanwhile\n\n");
    is_int(mb.ops->update(&mb, &removed, &err), MAILBOX_OK, "update");
    is_int(removed, 2, "two removed");
    ok(!exists(dir, "cur", "1700000003.M3P3.host:2,") && !exists(dir, "new", "999.old"),
       "deleted files unlinked");
    ok(!exists(dir, "new", "1700000002.M2P2.host") &&
       exists(dir, "cur", "1700000002.M2P2.host:2,S"), "retrieved new/ message to cur/ :2,S");
    ok(exists(dir, "cur", "1700000001.M1P1.host:2,S"), "already seen: untouched");
    ok(exists(dir, "new", "1900000000.M9P9.host") &&
       exists(dir, "cur", "1900000001.M9P9.host:2,S"), "mail delivered meanwhile kept");
    ok(exists(dir, "tmp", "1.tmp"), "tmp/ untouched");
  }
  mailbox_close(&mb);

  /* The ids survive the move new/ -> cur/. */
  is_int(mailbox_open(&mb, p, &c, &err), MAILBOX_OK, "reopen");
  is_int(mb.count, 4, "four messages after update");
  if (mb.count == 4) {
    is_str(mailbox_uid(&mb, 0), "1700000001.M1P1.host", "id stable");
    is_str(mailbox_uid(&mb, 1), "1700000002.M2P2.host", "id stable across new->cur");
    is_str(mailbox_uid(&mb, 2), "1900000000.M9P9.host", "new message id");
  }
  mailbox_close(&mb);
  rm_rf(dir);
}

/* Another client moves and removes files during our session. */
static void test_maildir_concurrent(void)
{
  char dir[300], url[400], a[600], b[600];
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;
  size_t removed, len;
  char *body;

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/Conc", tmpdir);
  make_maildir(dir);
  put(dir, "new", "1.a", m1);
  put(dir, "new", "2.b", m2);
  put(dir, "new", "3.c", m4);
  put(dir, "cur", "4.d:2,FR", m1);
  snprintf(url, sizeof url, "maildir://%s", dir);
  if (mailbox_open(&mb, url, &c, &err) != MAILBOX_OK || mb.count != 4) {
    ok(0, "open: %s", err);
    return;
  }
  snprintf(a, sizeof a, "%s/new/1.a", dir);
  snprintf(b, sizeof b, "%s/cur/1.a:2,RS", dir);
  ok(rename(a, b) == 0, "another client moves 1.a");
  body = read_msg(&mb, 0, &len);
  ok(body != NULL && len == strlen(m1), "moved message found by its base name");
  free(body);
  snprintf(a, sizeof a, "%s/new/2.b", dir);
  snprintf(b, sizeof b, "%s/cur/2.b:2,S", dir);
  ok(rename(a, b) == 0, "another client moves 2.b");
  snprintf(a, sizeof a, "%s/new/3.c", dir);
  ok(unlink(a) == 0, "another client removes 3.c");
  body = read_msg(&mb, 2, &len);
  ok(body == NULL, "removed message: msg_fd fails");
  free(body);
  mb.msgs[1].flags |= MAILBOX_MSG_DELETED;
  mb.msgs[2].flags |= MAILBOX_MSG_DELETED;
  mb.msgs[3].flags |= MAILBOX_MSG_RETRIEVED;
  is_int(mb.ops->update(&mb, &removed, &err), MAILBOX_OK, "update after moves");
  is_int(removed, 2, "moved and vanished messages count as removed");
  ok(!exists(dir, "cur", "2.b:2,S"), "moved message deleted where it went");
  ok(exists(dir, "cur", "1.a:2,RS"), "other message untouched");
  ok(exists(dir, "cur", "4.d:2,FRS") && !exists(dir, "cur", "4.d:2,FR"),
     "S added in flag order");
  mailbox_close(&mb);
  rm_rf(dir);
}

/* The same base name in cur/ and new/ (two messages, whatever put them there): both
 * are listed, each with its own id, on the first open and from the index; when another
 * client renames one, it is found again by its inode, not taken for the other. */
static void test_maildir_same_base(void)
{
  static const char a[] = "Subject: aaa\n\nAAA\n", b[] = "Subject: bbb\n\nBBB\n";
  char dir[300], url[400], from[700], to[700];
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;
  size_t removed;
  char id0[PARAMS_UIDL_MAX + 1] = "", id1[PARAMS_UIDL_MAX + 1] = "";

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/Same", tmpdir);
  make_maildir(dir);
  put(dir, "new", "1700000000.M1P1.host", a);
  put(dir, "cur", "1700000000.M1P1.host:2,S", b);
  /* Enough others for the radix sort of big maildrops. */
  for (int k = 0; k < 70; k++) {
    char nm[64];
    snprintf(nm, sizeof nm, "%d.M%dP1.host", 1600000000 + (k * 7919) % 100000, k);
    put(dir, k % 2 ? "cur" : "new", nm, m1);
  }
  snprintf(url, sizeof url, "maildir:%s", dir);
  for (int round = 0; round < 2; round++) {
    is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_OK, "same base name: open %d", round);
    is_int(mb.count, 72, "same base name in cur/ and new/: both listed (open %d)", round);
    if (mb.count == 72) {
      size_t l0 = 0, l1 = 0;
      char *b0 = read_msg(&mb, 70, &l0), *b1 = read_msg(&mb, 71, &l1);
      ok(strcmp(mailbox_uid(&mb, 70), mailbox_uid(&mb, 71)) != 0,
         "... each with its own id (%s, %s)", mailbox_uid(&mb, 70), mailbox_uid(&mb, 71));
      ok(b0 != NULL && b1 != NULL && l0 == strlen(a) && l1 == strlen(b) &&
         memcmp(b0, a, l0) == 0 && memcmp(b1, b, l1) == 0,
         "... each message read from its own file");
      if (round == 0) {
        snprintf(id0, sizeof id0, "%s", mailbox_uid(&mb, 70));
        snprintf(id1, sizeof id1, "%s", mailbox_uid(&mb, 71));
      } else {
        ok(strcmp(id0, mailbox_uid(&mb, 70)) == 0 && strcmp(id1, mailbox_uid(&mb, 71)) == 0,
           "... the same ids from the index");
      }
      free(b0);
      free(b1);
    }
    mailbox_close(&mb);
  }
  /* Another client moves the new/ one to cur/ with a flag; it is read and deleted as
   * itself, and the other stays. */
  if (mailbox_open(&mb, url, &c, &err) == MAILBOX_OK && mb.count == 72) {
    size_t l = 0;
    char *body;
    snprintf(from, sizeof from, "%s/new/1700000000.M1P1.host", dir);
    snprintf(to, sizeof to, "%s/cur/1700000000.M1P1.host:2,R", dir);
    ok(rename(from, to) == 0, "another client moves new/ to cur/ :2,R");
    body = read_msg(&mb, 70, &l);
    ok(body != NULL && l == strlen(a) && memcmp(body, a, l) == 0,
       "the moved one found again by its inode, not its namesake");
    free(body);
    mb.msgs[70].flags |= MAILBOX_MSG_DELETED;
    is_int(mb.ops->update(&mb, &removed, &err), MAILBOX_OK, "same base name: update");
    ok(removed == 1 && !exists(dir, "cur", "1700000000.M1P1.host:2,R") &&
       exists(dir, "cur", "1700000000.M1P1.host:2,S"), "... the one deleted is gone, "
       "its namesake stays");
  } else {
    ok(0, "same base name: reopen");
  }
  mailbox_close(&mb);
  rm_rf(dir);
}

static void test_maildir_uidl_sources(void)
{
  char dir[300], url[400], name[200];
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;
  char longname[120];

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/Dove", tmpdir);
  make_maildir(dir);
  put(dir, "cur", "1600000000.M1P1.host,S=21,W=25:2,S", "Subject: a\n\nbody one\n");
  put(dir, "cur", "1600000001.M2P2.host:2,S", "X-UIDL: mu-id\nSubject: b\n\n");
  put(dir, "new", "1600000002.M3P3.host", "Subject: c\n\n");
  put(dir, "new", "1600000003.M4P4.host", "Subject: d\n\n");
  put(dir, "new", "1600000004 weird\tname\xc3\xa9", "Subject: e\n\n");
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  memcpy(longname, "1600000005.", 11);
  put(dir, "new", longname, "Subject: f\n\n");
  put(dir, "", "dovecot-uidlist",
      "3 V1700000000 N10\n"
      "5 :1600000000.M1P1.host,S=21,W=25:2,S\n"
      "6 :1600000001.M2P2.host\n"
      "7 Pold-pop3-id :1600000002.M3P3.host\n");
  snprintf(url, sizeof url, "maildir:%s", dir);
  if (mailbox_open(&mb, url, &c, &err) != MAILBOX_OK || mb.count != 6) {
    ok(0, "open: %s", err);
    return;
  }
  snprintf(name, sizeof name, "%08x%08x", 5u, 1700000000u);
  is_str(mailbox_uid(&mb, 0), name, "Dovecot %%08Xu%%08Xv from dovecot-uidlist");
  is_str(mailbox_uid(&mb, 1), "mu-id", "X-UIDL wins over the uidlist UID");
  is_str(mailbox_uid(&mb, 2), "old-pop3-id", "uidlist P field");
  is_str(mailbox_uid(&mb, 3), "1600000003.M4P4.host", "not in the uidlist: base name");
  ok(strlen(mailbox_uid(&mb, 4)) == 32 && uidl_valid(mailbox_uid(&mb, 4), 32),
     "name with blanks and 8-bit bytes: a hashed id");
  ok(strlen(mailbox_uid(&mb, 5)) == 32, "name over 70 characters: a hashed id");
  is_int(mb.msgs[0].size, 25, "W= size taken as it is (the fast path)");
  mailbox_close(&mb);

  /* A W= that does not match S= and the file is not trusted. */
  put(dir, "cur", "1600000000.M1P1.host,S=21,W=25:2,S", "Subject: a\n\nbody one!!!\n");
  if (mailbox_open(&mb, url, &c, &err) == MAILBOX_OK && mb.count == 6) {
    uint64_t lines;
    is_int(mb.msgs[0].size, ref_size("Subject: a\n\nbody one!!!\n", 24, &lines),
           "stale W= ignored");
    mailbox_close(&mb);
  } else {
    ok(0, "reopen: %s", err);
  }
  /* A corrupt uidlist is ignored (without an index: the ids listed before stay). */
  put(dir, "", "dovecot-uidlist", "garbage\n5 :x\n");
  {
    char ipath[400];
    snprintf(ipath, sizeof ipath, "%s/pop3d-index", dir);
    unlink(ipath);
  }
  if (mailbox_open(&mb, url, &c, &err) == MAILBOX_OK && mb.count == 6) {
    is_str(mailbox_uid(&mb, 0), "1600000000.M1P1.host,S=21,W=25", "corrupt uidlist ignored");
    mailbox_close(&mb);
  } else {
    ok(0, "reopen: %s", err);
  }
  rm_rf(dir);
}

static void test_maildir_refusals(void)
{
  char dir[300], url[700], p[600];
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/real", tmpdir);
  make_maildir(dir);
  snprintf(p, sizeof p, "%s/linked", tmpdir);
  ok(symlink(dir, p) == 0, "symlink to a maildir");
  snprintf(url, sizeof url, "maildir:%s", p);
  is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_PERM, "maildir symlink refused");
  unlink(p);
  snprintf(p, sizeof p, "%s/file", tmpdir);
  put(tmpdir, "", "file", "x");
  snprintf(url, sizeof url, "maildir:%s", p);
  is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_PERM, "maildir: on a file refused");
  snprintf(url, sizeof url, "mh:%s", p);
  is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_PERM, "mh: on a file refused");
  unlink(p);
  snprintf(url, sizeof url, "maildir:%s/nodir/x", tmpdir);
  ok(mailbox_open(&mb, url, &c, &err) == MAILBOX_PERM, "missing parent refused");
  mailbox_close(&mb);
  if (geteuid() == 0) {
    snprintf(url, sizeof url, "maildir:%s/missing", tmpdir);
    is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_PERM, "not created as root");
    ok(chown(dir, 65534, 65534) == 0, "give the maildir away");
    snprintf(url, sizeof url, "maildir:%s", dir);
    is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_PERM, "maildir of another user refused");
  } else {
    snprintf(url, sizeof url, "maildir:%s/missing", tmpdir);
    is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_OK, "missing maildir created");
    ok(mb.count == 0, "... and empty");
    mailbox_close(&mb);
    ok(exists(tmpdir, "missing", "cur") && exists(tmpdir, "missing", "new"),
       "... with cur/ and new/");
  }
  rm_rf(dir);
}

/* ---- MH ---- */

static void test_mh_sequences(void)
{
  static const struct {
    const char *in;
    uint32_t del[4];
    size_t ndel;
    uint32_t seen[4];
    size_t nseen;
    const char *want;      /* NULL: no change */
  } cases[] = {
    { "unseen: 1-5\ncur: 3\n", { 3 }, 1, { 0 }, 0, "unseen: 1-2 4-5\n" },
    { "unseen: 1-5\ncur: 3\n", { 0 }, 0, { 1, 5 }, 2, "unseen: 2-4\ncur: 3\n" },
    { "unseen: 1 2 3\nflagged: 7\n", { 7 }, 1, { 2 }, 1, "unseen: 1 3\n" },
    { "cur: 10\n", { 3 }, 1, { 0 }, 0, NULL },
    { "odd line\nunseen: 2-3\n", { 2, 3 }, 2, { 0 }, 0, "odd line\n" },
    { "unseen: 1-4\n 6 8\nx: 1\n", { 6 }, 1, { 0 }, 0, "unseen: 1-4 8\nx: 1\n" },
    { "weird: a-b\nunseen: 4\n", { 4 }, 1, { 0 }, 0, "weird: a-b\n" },
    { "unseen: 4294967295\n", { 4294967295u }, 1, { 0 }, 0, "" },
    { "unseen: 99999999999\n", { 1 }, 1, { 0 }, 0, NULL },
    { "unseen: 5-3\n", { 4 }, 1, { 0 }, 0, NULL },
  };

  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t len = 0;
    char *out = mailbox_mh_sequences_rewrite(cases[k].in, strlen(cases[k].in), cases[k].del,
                                             cases[k].ndel, cases[k].seen, cases[k].nseen,
                                             &len);
    if (cases[k].want == NULL)
      ok(out == NULL, "sequences %zu: unchanged", k);
    else
      ok(out != NULL && len == strlen(cases[k].want) && memcmp(out, cases[k].want, len) == 0,
         "sequences %zu", k);
    free(out);
  }
}

static void test_mh(void)
{
  char dir[300], url[700], p[600];
  struct conf c;
  struct mailbox mb, mb2;
  const char *err = NULL;
  size_t removed;
  char ids[3][80];

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/inbox", tmpdir);
  mkdir(dir, 0700);
  put(dir, "", "10", m2);
  put(dir, "", "2", m1);
  put(dir, "", "1", m3);
  put(dir, "", "3", m4);
  put(dir, "", ",4", "Subject: backup\n\n");
  put(dir, "", "007", "Subject: zeros\n\n");
  put(dir, "", ".x", "Subject: dot\n\n");
  put(dir, "", "abc", "Subject: name\n\n");
  put(dir, "", ".mh_sequences", "unseen: 1-3 10\ncur: 2\n");
  snprintf(p, sizeof p, "%s/5", dir);
  ok(symlink("/etc/passwd", p) == 0, "symlink as message 5");
  snprintf(p, sizeof p, "%s/6", dir);
  ok(mkdir(p, 0700) == 0, "directory as message 6");

  snprintf(url, sizeof url, "mh:%s", dir);
  is_int(mailbox_open(&mb, url, &c, &err), MAILBOX_OK, "open MH (%s)", err ? err : "ok");
  is_int(mb.count, 4, "four messages");
  if (mb.count == 4) {
    static const char *const body[4] = { m3, m1, m4, m2 };
    for (size_t i = 0; i < 4; i++) {
      uint64_t lines, want = ref_size(body[i], strlen(body[i]), &lines);
      size_t len = 0;
      char *b = read_msg(&mb, i, &len);
      ok(mb.msgs[i].size == want && mb.msgs[i].lines == lines && b != NULL &&
         len == strlen(body[i]) && memcmp(b, body[i], len) == 0, "MH message %zu", i);
      free(b);
      if (i < 3)
        snprintf(ids[i], sizeof ids[0], "%s", mailbox_uid(&mb, i));
    }
    is_str(mailbox_uid(&mb, 0), "kept-id", "X-UIDL is the id");
    ok(strlen(mailbox_uid(&mb, 1)) == 32, "derived id");
    is_int(mailbox_open(&mb2, url, &c, &err), MAILBOX_INUSE, "second MH session: in use");
    mb.msgs[1].flags |= MAILBOX_MSG_DELETED;
    mb.msgs[0].flags |= MAILBOX_MSG_RETRIEVED;
    put(dir, "", "11", "Subject: delivered meanwhile\n\n");
    is_int(mb.ops->update(&mb, &removed, &err), MAILBOX_OK, "MH update");
    is_int(removed, 1, "one removed");
    ok(!exists(tmpdir, "inbox", "2") && exists(tmpdir, "inbox", "11") &&
       exists(tmpdir, "inbox", ",4"), "message 2 unlinked, others kept");
    {
      char sp[600];
      size_t len;
      FILE *f;
      char buf[200] = "";
      snprintf(sp, sizeof sp, "%s/.mh_sequences", dir);
      f = fopen(sp, "r");
      len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
      buf[len] = '\0';
      if (f)
        fclose(f);
      is_str(buf, "unseen: 3 10\n", ".mh_sequences rewritten");
    }
  }
  mailbox_close(&mb);
  /* Ids stable across sessions, even when the folder is renumbered. */
  snprintf(p, sizeof p, "%s/3", dir);
  {
    char q[600];
    snprintf(q, sizeof q, "%s/2", dir);
    ok(rename(p, q) == 0, "renumber 3 -> 2");
  }
  if (mailbox_open(&mb, url, &c, &err) == MAILBOX_OK && mb.count == 4) {
    is_str(mailbox_uid(&mb, 0), "kept-id", "X-UIDL stable");
    is_str(mailbox_uid(&mb, 1), ids[2], "derived id survives renumbering");
    mailbox_close(&mb);
  } else {
    ok(0, "reopen MH: %s", err);
  }
  snprintf(url, sizeof url, "mh:%s/nothere", tmpdir);
  ok(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK && mb.count == 0, "missing MH: empty");
  mailbox_close(&mb);
  rm_rf(dir);
}

/* ---- UPDATE killed at every step: all or nothing ---- */

#define CRASH_N 24
static int crash_steps, crash_kill_at;
static const char *crash_deliver;   /* where the hook delivers a message before a kill */
static bool crash_mh;
static const char crash_delivered[] = "Subject: delivered at the kill\n\nlate\n";

static bool crash_deleted(int k)
{
  return k % 3 != 1;       /* 16 of 24 */
}

/* Kills the process at step crash_kill_at (0: never), after a delivery: mail that
 * arrives while UPDATE runs must survive whatever happens. */
static void crash_hook(void)
{
  if (++crash_steps != crash_kill_at)
    return;
  if (crash_deliver != NULL)
    put(crash_deliver, crash_mh ? "" : "new", crash_mh ? "100" : "1900000000.M9P9.late",
        crash_delivered);
  raise(SIGKILL);
}

/* Open url (completing what a record says) with hook called at each step. */
static enum mailbox_status crash_open(struct mailbox *mb, const char *url,
                                      void (*hook)(void))
{
  struct conf c;
  const char *err;

  conf_for_test(&c);
  mailbox_file_step_hook = hook;
  return mailbox_open(mb, url, &c, &err);
}

/* In a child: open url, with update, DELE the messages of crash_deleted() and RETR the
 * others, then QUIT.  Exits with the number of steps. */
static void crash_child(const char *url, int kill_at, bool update)
{
  struct mailbox mb;
  const char *err;
  size_t removed;

  crash_kill_at = kill_at;
  crash_steps = 0;
  if (crash_open(&mb, url, crash_hook) != MAILBOX_OK)
    _exit(200);
  if (update) {
    if (mb.count != CRASH_N)
      _exit(201);
    for (size_t i = 0; i < mb.count; i++)
      mb.msgs[i].flags |= crash_deleted((int)i) ? MAILBOX_MSG_DELETED : MAILBOX_MSG_RETRIEVED;
    if (mb.ops->update(&mb, &removed, &err) != MAILBOX_OK || removed != 16)
      _exit(202);
  }
  mailbox_close(&mb);
  _exit(crash_steps < 150 ? crash_steps : 150);
}

/* Run crash_child; its exit code, or -1 when it was killed. */
static int crash_run(const char *url, int kill_at, bool update)
{
  int status;
  pid_t pid;

  fflush(stdout);
  pid = fork();
  if (pid == 0)
    crash_child(url, kill_at, update);
  if (pid < 0 || waitpid(pid, &status, 0) != pid)
    return -2;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}

static void crash_maildir_make(const char *dir)
{
  static const char *const info[3] = { ":2,S", ":2,", ":2,FS" };

  rm_rf(dir);
  make_maildir(dir);
  for (int k = 0; k < CRASH_N; k++) {
    char name[100], body[100];
    snprintf(name, sizeof name, "17000000%02d.M%dP1.host%s", k, k, k % 2 ? info[k % 3] : "");
    snprintf(body, sizeof body, "Subject: message %d\n\nbody %d\n", k, k);
    put(dir, k % 2 ? "cur" : "new", name, body);
  }
}

/* How many of the deleted and of the kept messages of crash_maildir_make are there,
 * and is the late delivery there? */
static void crash_maildir_census(const char *dir, int *del_r, int *kept_r, bool *late_r)
{
  *del_r = *kept_r = 0;
  *late_r = false;
  for (int s = 0; s < 2; s++) {
    char p[600];
    DIR *d;
    struct dirent *de;
    snprintf(p, sizeof p, "%s/%s", dir, s ? "new" : "cur");
    d = opendir(p);
    while (d != NULL && (de = readdir(d)) != NULL) {
      int k;
      if (strcmp(de->d_name, "1900000000.M9P9.late") == 0)
        *late_r = true;
      else if (sscanf(de->d_name, "17000000%2d.", &k) == 1 && k >= 0 && k < CRASH_N)
        (*(crash_deleted(k) ? del_r : kept_r))++;
    }
    if (d != NULL)
      closedir(d);
  }
}

static bool crash_no_record(const char *dir, const char *name)
{
  char p[600];

  snprintf(p, sizeof p, "%s/%s.new", dir, name);
  if (access(p, F_OK) == 0)
    return false;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) < 0;
}

/* Open in this process (completing what a record says): the number of messages, or
 * -1. */
static int crash_reopen(const char *url)
{
  struct mailbox mb;
  int n;

  if (crash_open(&mb, url, NULL) != MAILBOX_OK)
    return -1;
  n = (int)mb.count;
  mailbox_close(&mb);
  return n;
}


static const char crash_seq[] = "unseen: 1-24\nflagged: 2-9 20\ncur: 3\nodd line\n";

static void crash_mh_make(const char *dir)
{
  rm_rf(dir);
  mkdir(dir, 0700);
  for (int k = 0; k < CRASH_N; k++) {
    char name[16], body[100];
    snprintf(name, sizeof name, "%d", k + 1);
    snprintf(body, sizeof body, "Subject: message %d\n\nbody %d\n", k, k);
    put(dir, "", name, body);
  }
  put(dir, "", ".mh_sequences", crash_seq);
}

static void crash_mh_census(const char *dir, int *del_r, int *kept_r, bool *late_r)
{
  *del_r = *kept_r = 0;
  for (int k = 0; k < CRASH_N; k++) {
    char name[16];
    snprintf(name, sizeof name, "%d", k + 1);
    if (exists(dir, "", name))
      (*(crash_deleted(k) ? del_r : kept_r))++;
  }
  *late_r = exists(dir, "", "100");
}

/* .mh_sequences: as it was (nothing removed), or without the deleted numbers, and
 * perhaps without the seen ones in unseen too. */
static bool crash_mh_sequences_ok(const char *dir, bool removed)
{
  uint32_t del[CRASH_N], seen[CRASH_N];
  size_t ndel = 0, nseen = 0, len = 0, l1 = 0, l2 = 0;
  char p[600], *text, *w1, *w2;
  bool good;
  int fd;

  for (int k = 0; k < CRASH_N; k++) {
    if (crash_deleted(k))
      del[ndel++] = (uint32_t)k + 1;
    else
      seen[nseen++] = (uint32_t)k + 1;
  }
  snprintf(p, sizeof p, "%s/.mh_sequences", dir);
  fd = open(p, O_RDONLY);
  text = malloc(4096);
  if (fd >= 0) {
    ssize_t n = read(fd, text, 4095);
    len = n > 0 ? (size_t)n : 0;
    close(fd);
  }
  text[len] = '\0';
  w1 = mailbox_mh_sequences_rewrite(crash_seq, strlen(crash_seq), del, ndel, NULL, 0, &l1);
  w2 = mailbox_mh_sequences_rewrite(crash_seq, strlen(crash_seq), del, ndel, seen, nseen,
                                    &l2);
  if (!removed)
    good = strcmp(text, crash_seq) == 0;
  else
    good = (w1 != NULL && strcmp(text, w1) == 0) || (w2 != NULL && strcmp(text, w2) == 0);
  if (!good)
    printf("# .mh_sequences: '%s'\n", text);
  free(text);
  free(w1);
  free(w2);
  return good;
}


/* A maildrop format for the crash test. */
struct crash_format {
  const char *name, *scheme, *record;
  bool mh;
  void (*make)(const char *dir);
  void (*census)(const char *dir, int *del_r, int *kept_r, bool *late_r);
  bool (*extra_ok)(const char *dir, bool removed);   /* NULL: nothing more to check */
};

/* Kill UPDATE at each of its steps: the next open leaves all 16 messages marked
 * deleted removed or none, the 8 others and the mail delivered at the kill.  Then kill
 * once the removal is decided (step 4: the record is durable), and again at each step
 * of its completion by the next open: the open after that completes it. */
static void crash_test(const struct crash_format *f, const char *sub)
{
  char dir[300], url[400];
  int steps, n_none = 0, n_all = 0, n_bad = 0, kills = 0;

  snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
  snprintf(url, sizeof url, "%s:%s", f->scheme, dir);
  crash_mh = f->mh;
  crash_deliver = dir;
  f->make(dir);
  steps = crash_run(url, 0, true);
  ok(steps >= 20, "%s UPDATE: %d steps to kill at", f->name, steps);
  for (int k = 1; k <= steps; k++) {
    int del, kept, r, listed;
    bool late;
    f->make(dir);
    r = crash_run(url, k, true);
    kills += r == -1;
    listed = crash_reopen(url);
    f->census(dir, &del, &kept, &late);
    if (r == -1 && listed == kept + del + 1 && kept == 8 && late && (del == 0 || del == 16) &&
        (f->extra_ok == NULL || f->extra_ok(dir, del == 0)) &&
        crash_no_record(dir, f->record)) {
      n_none += del == 16;
      n_all += del == 0;
    } else {
      n_bad++;
      printf("# kill at step %d: run %d, %d of 16 deleted messages left, %d of 8 kept, "
             "late delivery %s\n", k, r, del, kept, late ? "there" : "lost");
    }
  }
  ok(n_bad == 0 && kills == steps && kills >= 20 && n_none > 0 && n_all > 0,
     "%s UPDATE killed at %d steps: all removed (%d) or none (%d), never some (%d)",
     f->name, kills, n_all, n_none, n_bad);

  f->make(dir);
  (void)crash_run(url, 4, true);
  steps = crash_run(url, 0, false);
  ok(steps >= 16, "completion of a decided %s UPDATE: %d steps", f->name, steps);
  n_bad = kills = 0;
  for (int k = 1; k <= steps; k++) {
    int del, kept;
    bool late;
    f->make(dir);
    kills += crash_run(url, 4, true) == -1;
    kills += crash_run(url, k, false) == -1;
    if (crash_reopen(url) != 8 + 1)
      n_bad++;
    f->census(dir, &del, &kept, &late);
    if (del != 0 || kept != 8 || !late || (f->extra_ok != NULL && !f->extra_ok(dir, true)) ||
        !crash_no_record(dir, f->record)) {
      n_bad++;
      printf("# completion killed at step %d: %d deleted left, %d kept\n", k, del, kept);
    }
  }
  ok(n_bad == 0 && kills == 2 * steps,
     "%s completion killed at each of its %d steps: completed by the open after (%d bad)",
     f->name, steps, n_bad);
  rm_rf(dir);
}

static void test_crash(void)
{
  static const struct crash_format maildir = {
    "Maildir", "maildir", MAILBOX_FILE_INTENT_MAILDIR, false, crash_maildir_make,
    crash_maildir_census, NULL,
  };
  static const struct crash_format mh = {
    "MH", "mh", MAILBOX_FILE_INTENT_MH, true, crash_mh_make, crash_mh_census,
    crash_mh_sequences_ok,
  };

  crash_test(&maildir, "Crash");
  crash_test(&mh, "CrashMH");
}

/* ---- Hostile records of an interrupted UPDATE ---- */

/* Write a record: the lines, each ended by a NUL. */
static void put_record(const char *path, const char *const *lines, size_t n)
{
  size_t len = 0, cap = 1;
  char *buf;

  for (size_t k = 0; k < n; k++)
    cap += strlen(lines[k]) + 1;
  buf = malloc(cap);
  for (size_t k = 0; k < n; k++) {
    size_t l = strlen(lines[k]);
    memcpy(buf + len, lines[k], l + 1);
    len += l + 1;
  }
  write_file(path, buf, len);
  free(buf);
}

static uint64_t ino_of(const char *dir, const char *sub, const char *name)
{
  char p[1024];
  struct stat st;

  snprintf(p, sizeof p, "%s/%s%s%s", dir, sub, *sub ? "/" : "", name);
  return lstat(p, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* What an MH record says of a message. */
static uint64_t mh_id_of(const char *dir, const char *name)
{
  char p[1024];
  struct stat st;

  snprintf(p, sizeof p, "%s/%s", dir, name);
  return lstat(p, &st) == 0 ? mailbox_file_mh_identity(&st) : 0;
}

/* Open url with the record lines at rec (the record's path): how many messages are
 * listed, or -1; the record must be gone afterwards. */
static int open_with_record(const char *url, const char *rec, const char *const *lines,
                            size_t n)
{
  int listed;

  if (lines != NULL)
    put_record(rec, lines, n);
  listed = crash_reopen(url);
  return access(rec, F_OK) == 0 ? -2 : listed;
}

static void test_intent_hostile(void)
{
  char dir[300], url[400], rec[400], victim[400], p[700], line[400], line2[400];
  struct stat st;

  snprintf(victim, sizeof victim, "%s/victim", tmpdir);
  put(tmpdir, "", "victim", "Subject: not in the maildrop\n\n");

  snprintf(dir, sizeof dir, "%s/Hostile", tmpdir);
  snprintf(url, sizeof url, "maildir:%s", dir);
  snprintf(rec, sizeof rec, "%s/" MAILBOX_FILE_INTENT_MAILDIR, dir);
  make_maildir(dir);
  put(dir, "cur", "1.a:2,S", m1);
  put(dir, "new", "2.b", m2);
  snprintf(p, sizeof p, "%s/cur/3.link:2,S", dir);
  ok(symlink(victim, p) == 0, "a symlink in cur/ to a file outside");
  {
    char l1[200], l2[200];
    const char *escape[] = { MAILBOX_FILE_INTENT_MAGIC, l1, "end 1" };
    const char *badsub[] = { MAILBOX_FILE_INTENT_MAGIC, l2, "end 1" };
    snprintf(l1, sizeof l1, "cur %llu ../../victim",
             (unsigned long long)ino_of(tmpdir, "", "victim"));
    snprintf(l2, sizeof l2, "tmp %llu 2.b", (unsigned long long)ino_of(dir, "new", "2.b"));
    is_int(open_with_record(url, rec, escape, 3), 2, "record naming ../../victim: refused");
    is_int(open_with_record(url, rec, badsub, 3), 2, "record naming tmp/: refused");
  }
  {
    static const char *const hidden[] = { MAILBOX_FILE_INTENT_MAGIC, "cur 1 .hidden", "end 1" };
    static const char *const dots[] = { MAILBOX_FILE_INTENT_MAGIC, "new 1 ..", "end 1" };
    static const char *const slash[] = { MAILBOX_FILE_INTENT_MAGIC, "new 1 a/b", "end 1" };
    static const char *const nonum[] = { MAILBOX_FILE_INTENT_MAGIC, "new x 2.b", "end 1" };
    static const char *const noend[] = { MAILBOX_FILE_INTENT_MAGIC, "new 1 2.b" };
    static const char *const count[] = { MAILBOX_FILE_INTENT_MAGIC, "new 1 2.b", "end 2" };
    static const char *const after[] = { MAILBOX_FILE_INTENT_MAGIC, "new 1 2.b", "end 1",
                                         "cur 1 1.a:2,S" };
    static const char *const magic[] = { "pop3d-update 2", "new 1 2.b", "end 1" };
    static const char *const huge[] = { MAILBOX_FILE_INTENT_MAGIC,
                                        "new 123456789012345678901 2.b", "end 1" };
    is_int(open_with_record(url, rec, hidden, 3), 2, "record naming a dot file: refused");
    is_int(open_with_record(url, rec, dots, 3), 2, "record naming ..: refused");
    is_int(open_with_record(url, rec, slash, 3), 2, "record naming a/b: refused");
    is_int(open_with_record(url, rec, nonum, 3), 2, "record without an inode: refused");
    is_int(open_with_record(url, rec, noend, 2), 2, "truncated record: refused");
    is_int(open_with_record(url, rec, count, 3), 2, "record with a wrong count: refused");
    is_int(open_with_record(url, rec, after, 4), 2, "record with lines after its end: refused");
    is_int(open_with_record(url, rec, magic, 3), 2, "record of another version: refused");
    is_int(open_with_record(url, rec, huge, 3), 2, "inode out of bounds: refused");
  }
  {
    /* A line longer than any record's. */
    char *big = malloc(9000);
    const char *lines[] = { MAILBOX_FILE_INTENT_MAGIC, big, "end 1" };
    memcpy(big, "new 1 ", 6);
    memset(big + 6, 'x', 8990);
    big[8996] = '\0';
    is_int(open_with_record(url, rec, lines, 3), 2, "record with an endless line: refused");
    free(big);
  }
  {
    /* Well formed, but the symlink is not a message file and the inodes don't match. */
    const char *lines[] = { MAILBOX_FILE_INTENT_MAGIC, line, line2, "end 2" };
    snprintf(line, sizeof line, "cur %llu 3.link:2,S",
             (unsigned long long)ino_of(tmpdir, "", "victim"));
    snprintf(line2, sizeof line2, "cur %llu 1.a:2,S",
             (unsigned long long)ino_of(dir, "new", "2.b"));
    is_int(open_with_record(url, rec, lines, 4), 2,
           "record naming a symlink and a message of another inode: nothing removed");
    ok(lstat(p, &st) == 0 && S_ISLNK(st.st_mode) && access(victim, F_OK) == 0,
       "... the symlink and its target stay");
  }
  {
    /* The record itself a symlink, a hard link, a directory: refused. */
    char other[500];
    const char *lines[] = { MAILBOX_FILE_INTENT_MAGIC, line, "end 1" };
    snprintf(line, sizeof line, "new %llu 2.b", (unsigned long long)ino_of(dir, "new", "2.b"));
    snprintf(other, sizeof other, "%s/elsewhere", tmpdir);
    put_record(other, lines, 3);
    ok(symlink(other, rec) == 0, "record as a symlink");
    is_int(open_with_record(url, rec, NULL, 0), 2, "... refused and removed");
    ok(link(other, rec) == 0, "record as a hard link");
    is_int(open_with_record(url, rec, NULL, 0), 2, "... refused and removed");
    ok(access(other, F_OK) == 0, "... the file linked to stays");
    unlink(other);
    /* A leftover of an UPDATE stopped before its decision goes, nothing removed. */
    snprintf(other, sizeof other, "%s.new", rec);
    put_record(other, lines, 3);
    is_int(open_with_record(url, rec, NULL, 0), 2, "unfinished record: rolled back");
    ok(access(other, F_OK) < 0, "... and removed");
    /* The real thing: the message named with its inode goes. */
    is_int(open_with_record(url, rec, lines, 3), 1, "good record: completed");
    ok(!exists(dir, "new", "2.b") && exists(dir, "cur", "1.a:2,S"), "... that message removed");
  }
  rm_rf(dir);

  /* MH: message numbers only. */
  snprintf(dir, sizeof dir, "%s/HostileMH", tmpdir);
  snprintf(url, sizeof url, "mh:%s", dir);
  snprintf(rec, sizeof rec, "%s/" MAILBOX_FILE_INTENT_MH, dir);
  mkdir(dir, 0700);
  put(dir, "", "1", m1);
  put(dir, "", "3", m2);
  put(dir, "", ".mh_sequences", "unseen: 1-3\n");
  {
    const char *up[] = { MAILBOX_FILE_INTENT_MAGIC, line, "end 1" };
    const char *zero[] = { MAILBOX_FILE_INTENT_MAGIC, line2, "end 1" };
    static const char *const sub[] = { MAILBOX_FILE_INTENT_MAGIC, "cur 1 3", "end 1" };
    static const char *const name[] = { MAILBOX_FILE_INTENT_MAGIC, "msg 1 abc", "end 1" };
    snprintf(line, sizeof line, "msg %llu ../victim",
             (unsigned long long)ino_of(tmpdir, "", "victim"));
    snprintf(line2, sizeof line2, "msg %llu 03", (unsigned long long)mh_id_of(dir, "3"));
    is_int(open_with_record(url, rec, up, 3), 2, "MH record naming ../victim: refused");
    is_int(open_with_record(url, rec, zero, 3), 2, "MH record naming 03: refused");
    is_int(open_with_record(url, rec, sub, 3), 2, "MH record with another word: refused");
    is_int(open_with_record(url, rec, name, 3), 2, "MH record naming abc: refused");
    ok(access(victim, F_OK) == 0, "... the file outside stays");
  }
  {
    const char *lines[] = { MAILBOX_FILE_INTENT_MAGIC, line, "end 1" };
    char seq[100] = "";
    FILE *f;
    snprintf(line, sizeof line, "msg %llu 3", (unsigned long long)mh_id_of(dir, "1"));
    is_int(open_with_record(url, rec, lines, 3), 2, "MH record with another identity: kept");
    snprintf(line, sizeof line, "msg %llu 3", (unsigned long long)ino_of(dir, "", "3"));
    is_int(open_with_record(url, rec, lines, 3), 2, "MH record with the bare inode: kept");
    snprintf(line, sizeof line, "msg %llu 3", (unsigned long long)mh_id_of(dir, "3"));
    is_int(open_with_record(url, rec, lines, 3), 1, "MH good record: completed");
    snprintf(p, sizeof p, "%s/.mh_sequences", dir);
    f = fopen(p, "r");
    if (f != NULL) {
      size_t n = fread(seq, 1, sizeof seq - 1, f);
      seq[n] = '\0';
      fclose(f);
    }
    is_str(seq, "unseen: 1-2\n", "... message 3 removed and out of .mh_sequences");
  }
  {
    /* Killed after removing message 3, before removing its record; a delivery then
     * takes number 3, in the inode just freed if the filesystem hands it out again. */
    const char *lines[] = { MAILBOX_FILE_INTENT_MAGIC, line, "end 1" };
    uint64_t old_ino;

    put(dir, "", "3", m2);
    old_ino = ino_of(dir, "", "3");
    snprintf(line, sizeof line, "msg %llu 3", (unsigned long long)mh_id_of(dir, "3"));
    snprintf(p, sizeof p, "%s/3", dir);
    unlink(p);
    put(dir, "", "3", "Subject: delivered after the kill\n\nnew\n");
    is_int(open_with_record(url, rec, lines, 3), 2,
           "MH: a message delivered after the kill under the removed one's number stays%s",
           ino_of(dir, "", "3") == old_ino ? " (in the same inode)" : "");
  }
  rm_rf(dir);
  unlink(victim);
}

/* ---- URLs and autodetection ---- */

static void test_detect(void)
{
  char md[300], mh[300], mh2[300], empty[300], file[300], url[400];
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;

  conf_for_test(&c);
  snprintf(md, sizeof md, "%s/d_md", tmpdir);
  make_maildir(md);
  snprintf(mh, sizeof mh, "%s/d_mh", tmpdir);
  mkdir(mh, 0700);
  put(mh, "", "1", m1);
  snprintf(mh2, sizeof mh2, "%s/d_mh2", tmpdir);
  mkdir(mh2, 0700);
  put(mh2, "", ".mh_sequences", "");
  snprintf(empty, sizeof empty, "%s/d_empty", tmpdir);
  mkdir(empty, 0700);
  snprintf(file, sizeof file, "%s/d_file", tmpdir);
  put(tmpdir, "", "d_file", "From a\nS: 1\n\nx\n");

  ok(mailbox_type_of(md, &c) == &mailbox_maildir_ops, "plain path: maildir detected");
  snprintf(url, sizeof url, "mbox:%s", md);
  ok(mailbox_type_of(url, &c) == &mailbox_maildir_ops, "mbox: on a maildir: maildir");
  ok(mailbox_type_of(mh, &c) == &mailbox_mh_ops, "numbered files: MH");
  ok(mailbox_type_of(mh2, &c) == &mailbox_mh_ops, ".mh_sequences: MH");
  ok(mailbox_type_of(empty, &c) == &mailbox_mbox_ops, "empty directory: default");
  ok(mailbox_type_of(file, &c) == &mailbox_mbox_ops, "file: mbox");
  snprintf(url, sizeof url, "mh:%s", md);
  ok(mailbox_type_of(url, &c) == &mailbox_mh_ops, "explicit scheme wins");
  ok(mailbox_type_of("imap://x/y", &c) == NULL, "unknown scheme");
  c.mailbox_type = (char *)"maildir";
  snprintf(url, sizeof url, "%s/nothere", tmpdir);
  ok(mailbox_type_of(url, &c) == &mailbox_maildir_ops, "mailbox-type for a plain path");
  ok(mailbox_type_of(file, &c) == &mailbox_mbox_ops,
     "an existing file is an mbox whatever mailbox-type says");
  snprintf(url, sizeof url, "maildir:%s", file);
  ok(mailbox_type_of(url, &c) == &mailbox_mbox_ops, "... also with the default scheme");
  snprintf(url, sizeof url, "mh:%s", file);
  ok(mailbox_type_of(url, &c) == &mailbox_mh_ops, "... but not with another scheme");
  c.mailbox_type = NULL;
  c.autodetect_accuracy = (char *)"0";
  ok(mailbox_type_of(md, &c) == &mailbox_mbox_ops, "autodetect-accuracy 0: off");
  is_int(mailbox_open(&mb, md, &c, &err), MAILBOX_PERM, "... so the directory is refused");
  c.autodetect_accuracy = (char *)"fast";
  ok(mailbox_open(&mb, md, &c, &err) == MAILBOX_OK && mb.ops == &mailbox_maildir_ops,
     "open a plain maildir path");
  mailbox_close(&mb);
  ok(mailbox_open(&mb, mh, &c, &err) == MAILBOX_OK && mb.ops == &mailbox_mh_ops &&
     mb.count == 1, "open a plain MH path");
  mailbox_close(&mb);

  {
    static const struct {
      const char *spool, *pattern, *type, *want;
    } cases[] = {
      { "maildir:/var/mail", NULL, NULL, "maildir:/var/mail/joe" },
      { NULL, "maildir:${home}/Maildir", NULL, "maildir:/home/joe/Maildir" },
      { NULL, "${home}/Maildir", "maildir", "maildir:/home/joe/Maildir" },
      { NULL, "mh:${home}/Mail/inbox", NULL, "mh:/home/joe/Mail/inbox" },
      { "/var/mail", NULL, "mh", "mh:/var/mail/joe" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
      struct conf u;
      char *r;
      memset(&u, 0, sizeof u);
      u.mail_spool = (char *)cases[k].spool;
      u.mailbox_pattern = (char *)cases[k].pattern;
      u.mailbox_type = (char *)cases[k].type;
      r = mailbox_url_for(&u, "joe", "/home/joe", &err);
      is_str(r, cases[k].want, "url %zu", k);
      free(r);
    }
  }
  rm_rf(md);
  rm_rf(mh);
  rm_rf(mh2);
  rm_rf(empty);
  unlink(file);
}

int main(void)
{
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  umask(077);
  test_scan();
  test_dovecot_uidlist();
  test_maildir_basic();
  test_maildir_concurrent();
  test_maildir_same_base();
  test_maildir_uidl_sources();
  test_maildir_refusals();
  test_mh_sequences();
  test_mh();
  test_crash();
  test_intent_hostile();
  test_detect();
  rm_rf(tmpdir);
  return tap_done();
}
