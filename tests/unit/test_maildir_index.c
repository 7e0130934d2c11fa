/* test_maildir_index.c - the index of Maildir and MH maildrops: the image parser on
 * hostile bytes and out-of-bounds records, expiry marks that come due, and the
 * backends: a second open reads no message file and lists the same, a changed, new,
 * moved, marked or deleted message is handled, a corrupt, foreign, linked or
 * symlinked index is ignored and rebuilt, an interrupted UPDATE completed at open
 * leaves the index right and the other ids as they were.  GPL-3.0-or-later. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "mailbox.h"
#include "mailbox_file.h"
#include "maildir_index.h"
#include "params.h"
#include "tap.h"
#include "uidl.h"

static char tmpdir[] = "/tmp/test_maildir_index.XXXXXX";

static void conf_for_test(struct conf *c)
{
  memset(c, 0, sizeof *c);
  c->lock_type = CONF_LOCK_DEFAULT;
  c->lock_retry_count = 1;
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

static char *read_file(const char *path, size_t *len_r)
{
  int fd = open(path, O_RDONLY);
  struct stat st;
  char *buf;

  if (fd < 0 || fstat(fd, &st) < 0) {
    perror(path);
    exit(2);
  }
  buf = util_xmalloc((size_t)st.st_size + 1);
  if (util_pread_all(fd, buf, (size_t)st.st_size, 0) < 0) {
    perror(path);
    exit(2);
  }
  close(fd);
  *len_r = (size_t)st.st_size;
  return buf;
}

/* A new file renamed into place, as delivery agents write one. */
static void put(const char *dir, const char *name, const char *data)
{
  char p[1024], t[1100];

  snprintf(p, sizeof p, "%s/%s", dir, name);
  snprintf(t, sizeof t, "%s/.put-tmp", dir);
  write_file(t, data, strlen(data));
  if (rename(t, p) < 0) {
    perror(p);
    exit(2);
  }
}

/* Overwrite bytes of a file in place (same inode), as no Maildir program does. */
static void poke(const char *path, off_t off, const char *data)
{
  int fd = open(path, O_WRONLY);

  if (fd < 0 || pwrite(fd, data, strlen(data), off) != (ssize_t)strlen(data) || close(fd) < 0) {
    perror(path);
    exit(2);
  }
}

static void rm_rf(const char *dir)
{
  char cmd[1200];

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "rm -rf failed\n");
}

/* Wait (a few milliseconds) until the clock that stamps ctime has passed the files
 * just written: only then may MH entries go into an index (mailbox_mh.c). */
static void settle(void)
{
#ifdef CLOCK_REALTIME_COARSE
  struct timespec t0, t;
  clock_gettime(CLOCK_REALTIME, &t0);
  do {
    struct timespec ms = { 0, 1000000 };
    nanosleep(&ms, NULL);
    clock_gettime(CLOCK_REALTIME_COARSE, &t);
  } while (t.tv_sec < t0.tv_sec || (t.tv_sec == t0.tv_sec && t.tv_nsec <= t0.tv_nsec));
#else
  sleep(2);
#endif
}

/* Everything a session shows of a maildrop, as one string. */
static char *listing(const char *url, const struct conf *c)
{
  struct mailbox mb;
  const char *err = NULL;
  char *out, *p;
  size_t cap;

  if (mailbox_open(&mb, url, c, &err) != MAILBOX_OK) {
    printf("# open %s: %s\n", url, err);
    return util_xstrdup("(open failed)");
  }
  cap = 64 + mb.count * 140;
  out = p = util_xmalloc(cap);
  p += snprintf(p, cap, "%zu %llu\n", mb.count, (unsigned long long)mb.total_size);
  for (size_t i = 0; i < mb.count; i++)
    p += snprintf(p, cap - (size_t)(p - out), "%s %llu %u %u %u %lld\n", mailbox_uid(&mb, i),
                  (unsigned long long)mb.msgs[i].size, (unsigned)mb.msgs[i].lines,
                  (unsigned)mb.msgs[i].flags, (unsigned)mb.msgs[i].expire_mark,
                  (long long)mb.msgs[i].end);
  mailbox_close(&mb);
  return out;
}

static void stats_reset(void)
{
  memset(&maildir_index_stats, 0, sizeof maildir_index_stats);
}

/* ---- the image parser ---- */

static struct stat fake_dir(void)
{
  struct stat st;

  memset(&st, 0, sizeof st);
  st.st_dev = 42;
  st.st_ino = 4242;
  return st;
}

static void entry(struct maildir_index_entry *e, const char *key, uint64_t ino, uint64_t fsize,
                  uint64_t size, uint32_t lines, const char *id, uint32_t flags)
{
  memset(e, 0, sizeof *e);
  e->key = key;
  e->key_len = strlen(key);
  e->ino = ino;
  e->fsize = fsize;
  e->size = size;
  e->lines = lines;
  e->id = id;
  e->id_len = id ? strlen(id) : 0;
  e->flags = flags;
}

static void *image_of(const struct maildir_index_entry *e, size_t n, enum maildir_index_kind kind,
                      int64_t now, size_t *len_r)
{
  struct maildir_index_builder b;
  struct stat d = fake_dir();
  void *img;

  maildir_index_builder_init(&b);
  for (size_t i = 0; i < n; i++)
    if (!maildir_index_add(&b, &e[i]))
      printf("# add %zu refused\n", i);
  img = maildir_index_image(&b, kind, &d, now, len_r);
  maildir_index_builder_free(&b);
  return img;
}

static bool parses(const void *img, size_t len, enum maildir_index_kind kind, int64_t now)
{
  struct stat d = fake_dir();
  struct maildir_index *ix = maildir_index_parse(img, len, kind, &d, now);
  bool r = ix != NULL;

  maildir_index_free(ix);
  return r;
}

static void test_parse(void)
{
  const int64_t now = 1800000000;
  struct maildir_index_entry e[3], got;
  struct stat d = fake_dir(), other = fake_dir();
  struct maildir_index *ix;
  size_t len, rejected = 0;
  char *img;

  entry(&e[0], "1700000000.M1P1.host", 11, 100, 105, 5, NULL, MAILDIR_INDEX_LINES_EXACT);
  entry(&e[1], "1700000001.M2P2.host,S=10,W=12", 12, 10, 12, 2, "x-uidl-1",
        MAILDIR_INDEX_XUIDL);
  entry(&e[2], "empty", 13, 0, 0, 0, NULL, MAILDIR_INDEX_LINES_EXACT);
  e[2].expire_mark = 1700000100;
  e[2].future_mark = 1800000100;
  img = image_of(e, 3, MAILDIR_INDEX_MAILDIR, now, &len);
  ix = maildir_index_parse(img, len, MAILDIR_INDEX_MAILDIR, &d, now);
  ok(ix != NULL && maildir_index_count(ix) == 3, "a good image parses");
  ok(maildir_index_find(ix, "1700000001.M2P2.host,S=10,W=12", 30, 12, &got) &&
     got.size == 12 && got.lines == 2 && got.id_len == 8 && memcmp(got.id, "x-uidl-1", 8) == 0 &&
     got.fsize == 10 && (got.flags & MAILDIR_INDEX_XUIDL), "entry found with its fields");
  ok(!maildir_index_find(ix, "1700000001.M2P2.host,S=10,W=12", 30, 99, &got),
     "same name, another inode: not found");
  ok(!maildir_index_find(ix, "1700000001.M2P2.host", 20, 12, &got), "a prefix is not a key");
  ok(maildir_index_find(ix, "empty", 5, 13, &got) && got.expire_mark == 1700000100,
     "expiry mark kept");
  maildir_index_free(ix);
  ix = maildir_index_parse(img, len, MAILDIR_INDEX_MAILDIR, &d, 1800000100);
  ok(ix != NULL && !maildir_index_find(ix, "empty", 5, 13, &got) &&
     maildir_index_find(ix, "1700000000.M1P1.host", 20, 11, &got),
     "an entry whose future mark has come is stale, the others stay");
  maildir_index_free(ix);

  ok(!parses(img, len, MAILDIR_INDEX_MH, now), "another kind: refused");
  ok(!parses(img, len, MAILDIR_INDEX_MAILDIR, now - 1), "written after now: refused");
  other.st_ino = 4243;
  ok(maildir_index_parse(img, len, MAILDIR_INDEX_MAILDIR, &other, now) == NULL,
     "another directory: refused");
  other = fake_dir();
  other.st_dev = 43;
  ok(maildir_index_parse(img, len, MAILDIR_INDEX_MAILDIR, &other, now) == NULL,
     "another device: refused");
  for (size_t k = 0; k < len; k++)
    rejected += !parses(img, k, MAILDIR_INDEX_MAILDIR, now);
  is_int(rejected, len, "every truncation refused");
  rejected = 0;
  for (size_t k = 0; k < len; k++)
    for (int bit = 0; bit < 8; bit++) {
      img[k] ^= (char)(1 << bit);
      rejected += !parses(img, len, MAILDIR_INDEX_MAILDIR, now);
      img[k] ^= (char)(1 << bit);
    }
  is_int(rejected, len * 8, "every bit flip refused");
  {
    char *longer = util_xmalloc(len + 1);
    memcpy(longer, img, len);
    longer[len] = 0;
    ok(!parses(longer, len + 1, MAILDIR_INDEX_MAILDIR, now), "trailing byte refused");
    free(longer);
  }
  free(img);

  /* Records that pass the checksum but not the bounds of what a scan can produce. */
  {
    static const struct {
      const char *key, *id;
      uint64_t fsize, size;
      uint32_t lines, flags, expire, future;
      enum maildir_index_kind kind;
      const char *why;
    } bad[] = {
      { "a", NULL, 10, 9, 1, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "size below the file's" },
      { "a", NULL, 10, 23, 1, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "size over twice the file's" },
      { "a", NULL, 10, 12, 12, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "more lines than bytes" },
      { "a", NULL, 0, 2, 0, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "empty file with a size" },
      { "a:2,S", NULL, 1, 3, 1, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "key with ':'" },
      { "a/b", NULL, 1, 3, 1, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "key with '/'" },
      { ".a", NULL, 1, 3, 1, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "dot key" },
      { "a", "bad id", 1, 3, 1, MAILDIR_INDEX_XUIDL, 0, 0, MAILDIR_INDEX_MAILDIR,
        "id with a blank" },
      { "a", "id", 1, 3, 1, 0, 0, 0, MAILDIR_INDEX_MAILDIR, "id without the X-UIDL flag" },
      { "a", NULL, 1, 3, 1, MAILDIR_INDEX_XUIDL, 0, 0, MAILDIR_INDEX_MAILDIR,
        "X-UIDL flag without an id" },
      { "a", NULL, 1, 3, 1, 0, 1700000000, 1600000000, MAILDIR_INDEX_MAILDIR,
        "future mark before the trusted one" },
      { "12", NULL, 1, 3, 1, MAILDIR_INDEX_LINES_EXACT, 0, 0, MAILDIR_INDEX_MH, "MH without id" },
      { "012", "id", 1, 3, 1, MAILDIR_INDEX_LINES_EXACT, 0, 0, MAILDIR_INDEX_MH,
        "MH key with a leading zero" },
      { "1a", "id", 1, 3, 1, MAILDIR_INDEX_LINES_EXACT, 0, 0, MAILDIR_INDEX_MH,
        "MH key not a number" },
      { "12345678901", "id", 1, 3, 1, MAILDIR_INDEX_LINES_EXACT, 0, 0, MAILDIR_INDEX_MH,
        "MH key over 32 bits" },
      { "12", "id", 1, 3, 1, 0, 0, 0, MAILDIR_INDEX_MH, "MH lines not counted" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
      struct maildir_index_entry b;
      entry(&b, bad[k].key, 5, bad[k].fsize, bad[k].size, bad[k].lines, bad[k].id,
            bad[k].flags);
      b.expire_mark = bad[k].expire;
      b.future_mark = bad[k].future;
      img = image_of(&b, 1, bad[k].kind, now, &len);
      ok(!parses(img, len, bad[k].kind, now), "refused: %s", bad[k].why);
      free(img);
    }
  }
  {
    struct maildir_index_entry b;
    entry(&b, "7", 5, 10, 12, 2, "some-id", MAILDIR_INDEX_LINES_EXACT);
    b.ctime_sec = 1700000000;
    b.ctime_nsec = 1000000000;
    img = image_of(&b, 1, MAILDIR_INDEX_MH, now, &len);
    ok(!parses(img, len, MAILDIR_INDEX_MH, now), "refused: ctime nanoseconds out of range");
    free(img);
    b.ctime_nsec = 999999999;
    img = image_of(&b, 1, MAILDIR_INDEX_MH, now, &len);
    ok(parses(img, len, MAILDIR_INDEX_MH, now), "MH entry in range parses");
    free(img);
    img = image_of(&b, 1, MAILDIR_INDEX_MAILDIR, now, &len);
    ok(!parses(img, len, MAILDIR_INDEX_MAILDIR, now), "refused: Maildir entry with a ctime");
    free(img);
  }
  {
    struct maildir_index_entry b;
    char key[PARAMS_MAILDIR_NAME_MAX + 2];
    struct maildir_index_builder bl;
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    entry(&b, key, 5, 1, 3, 1, NULL, 0);
    maildir_index_builder_init(&bl);
    ok(!maildir_index_add(&bl, &b), "builder refuses a key over the name limit");
    entry(&b, "", 5, 1, 3, 1, NULL, 0);
    ok(!maildir_index_add(&bl, &b), "builder refuses an empty key");
    maildir_index_builder_free(&bl);
  }
  img = image_of(NULL, 0, MAILDIR_INDEX_MH, now, &len);
  ok(parses(img, len, MAILDIR_INDEX_MH, now), "empty index parses");
  free(img);
}

/* ---- Maildir ---- */

static const char m1[] = "Subject: one\n\nbody one\n";
static const char m2[] = "Subject: two\r\n\r\nbody two\r\n";
static const char m3[] = "X-UIDL: kept-id\nSubject: three\n\nno newline";
static const char m4[] = "X-UIDL: same-id\nX-Expire-Timestamp: 1600000100\nSubject: 4\n\nx\n";
static const char m5[] = "X-UIDL: same-id\nSubject: five\n\n";

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

/* The listing of url with and without its index must agree. */
static void same_without_index(const char *url, const char *ipath, const struct conf *c,
                               const char *with, const char *what)
{
  char *without;

  unlink(ipath);
  without = listing(url, c);
  is_str(with, without, "%s: the same as without the index", what);
  free(without);
}

static void test_maildir(void)
{
  char dir[300], sub[400], url[400], ipath[400], p[800], p2[800];
  struct conf c;
  struct stat st;
  char *first, *again;

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/Maildir", tmpdir);
  snprintf(url, sizeof url, "maildir:%s", dir);
  snprintf(ipath, sizeof ipath, "%s/" MAILDIR_INDEX_NAME, dir);
  make_maildir(dir);
  snprintf(sub, sizeof sub, "%s/new", dir);
  put(sub, "1600000001.M1P1.host", m1);
  put(sub, "1600000002.M2P2.host", m2);
  put(sub, "1600000003.M3P3.host", m3);
  put(sub, "1600000004.M4P4.host", m4);
  snprintf(sub, sizeof sub, "%s/cur", dir);
  put(sub, "1600000005.M5P5.host:2,ST", m5);
  put(sub, "1600000006.M6P6.host,S=14,W=17:2,S", "Subject: w\n\nx\n");

  stats_reset();
  first = listing(url, &c);
  ok(maildir_index_stats.scans == 6 && maildir_index_stats.writes == 1 &&
     maildir_index_stats.hits == 0, "first open reads every message and writes the index");
  ok(lstat(ipath, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600 &&
     st.st_uid == geteuid() && st.st_nlink == 1, "index: regular, 0600, the user's");
  ok(strstr(first, "same-id-2") != NULL, "duplicate X-UIDL made unique");
  {
    ino_t ino = st.st_ino;
    stats_reset();
    again = listing(url, &c);
    ok(maildir_index_stats.hits == 6 && maildir_index_stats.scans == 0 &&
       maildir_index_stats.writes == 0, "second open reads no message file");
    is_str(again, first, "second open: the same listing");
    free(again);
    ok(stat(ipath, &st) == 0 && st.st_ino == ino, "a hit leaves the index alone");
  }

  /* A message file changed in place (no Maildir program does that) is not noticed: the
   * proof that its content was not read; the index gone, it is read. */
  snprintf(p, sizeof p, "%s/new/1600000003.M3P3.host", dir);
  poke(p, 8, "KEPT");
  again = listing(url, &c);
  is_str(again, first, "changed in place: the index's view");
  free(again);
  unlink(ipath);
  again = listing(url, &c);
  ok(strstr(again, "KEPT-id") != NULL && strstr(again, "kept-id") == NULL,
     "index removed: the file is read again");
  free(again);
  poke(p, 8, "kept");
  unlink(ipath);
  free(first);
  first = listing(url, &c);

  /* Moved to cur/ with flags by another client: the same name and inode. */
  snprintf(p2, sizeof p2, "%s/cur/1600000003.M3P3.host:2,RS", dir);
  if (rename(p, p2) < 0)
    perror("rename");
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 0 && maildir_index_stats.writes == 0,
     "moved to cur/ with flags: still known");
  is_str(again, first, "moved: same ids and sizes");
  free(again);

  /* New mail: read alone, the index written anew. */
  snprintf(sub, sizeof sub, "%s/new", dir);
  put(sub, "1600000007.M7P7.host", "Subject: seven\n\n7\n");
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 1 && maildir_index_stats.hits == 6 &&
     maildir_index_stats.writes == 1, "new mail: only it is read");
  ok(strstr(again, "1600000007.M7P7.host") != NULL, "new mail listed");
  same_without_index(url, ipath, &c, again, "after new mail");
  free(again);
  free(first);
  first = listing(url, &c);

  /* A replaced message (a new file renamed over it) is a new inode: read again, it
   * keeps the id it was listed with (ids never change); only without an index is its
   * id derived again from what it now holds. */
  put(sub, "1600000001.M1P1.host", "X-UIDL: replaced\nSubject: one\n\nbody one\n");
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 1 && strstr(again, "replaced") == NULL &&
     strstr(again, "\n1600000001.M1P1.host ") != NULL, "replaced message read again, id kept");
  free(again);
  unlink(ipath);
  again = listing(url, &c);
  ok(strstr(again, "replaced") != NULL, "without an index: derived again");
  free(again);
  free(first);
  first = listing(url, &c);

  /* Lines from Dovecot's W= are not the counted ones: scan-lines reads the file. */
  c.scan_lines = true;
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 1 && maildir_index_stats.writes == 1,
     "scan-lines: the W= message is read for its lines");
  free(again);
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 0, "scan-lines: then known");
  same_without_index(url, ipath, &c, again, "scan-lines");
  free(again);
  c.scan_lines = false;

  /* pop3d's own changes: a mark (a new file over the old), a deletion, a seen flag. */
  {
    struct mailbox mb;
    const char *err = NULL;
    size_t removed = 0;
    if (mailbox_open(&mb, url, &c, &err) == MAILBOX_OK) {
      mb.mark_time = (int64_t)time(NULL);
      mb.msgs[0].flags |= MAILBOX_MSG_MARK;
      mb.msgs[1].flags |= MAILBOX_MSG_DELETED;
      mb.msgs[2].flags |= MAILBOX_MSG_RETRIEVED;
      ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 1, "update");
      mailbox_close(&mb);
    } else {
      ok(0, "open for update: %s", err);
    }
  }
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 1 && maildir_index_stats.hits == 5 &&
     maildir_index_stats.writes == 1, "after update: the marked message is read again");
  same_without_index(url, ipath, &c, again, "after update");
  free(again);
  again = listing(url, &c);
  stats_reset();
  free(first);
  first = listing(url, &c);
  ok(maildir_index_stats.scans == 0 && maildir_index_stats.writes == 0, "then all known");
  is_str(first, again, "listing stable");
  free(again);

  /* A Dovecot uidlist that appears later: a message already listed keeps its id;
   * without an index the uidlist gives it. */
  snprintf(p, sizeof p, "%s/dovecot-uidlist", dir);
  {
    static const char uidlist[] = "3 V1700000000 N10\n5 :1600000007.M7P7.host\n";
    write_file(p, uidlist, sizeof uidlist - 1);
  }
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 0 && strstr(again, "000000056553f100") == NULL,
     "uidlist read with the index: the ids listed before stay");
  is_str(again, first, "with a uidlist: the same listing");
  free(again);
  unlink(ipath);
  again = listing(url, &c);
  ok(strstr(again, "000000056553f100") != NULL, "without an index: the uidlist's id");
  free(again);
  unlink(p);
  unlink(ipath);
  free(first);
  first = listing(url, &c);

  /* Hostile or damaged index files. */
  {
    size_t len, n = (size_t)atol(first);
    char *good = read_file(ipath, &len);
    struct { const char *what; size_t cut; const char *junk; } v[] = {
      { "empty", 0, NULL }, { "truncated header", 20, NULL }, { "truncated", len - 9, NULL },
      { "garbage", 0, "garbage garbage garbage garbage garbage garbage garbage garbage "
                      "garbage garbage garbage" },
      { "trailing junk", len, "junk" },
    };
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
      int fd = open(ipath, O_WRONLY | O_TRUNC);
      if (fd < 0 || util_write_all(fd, good, v[k].cut) < 0 ||
          (v[k].junk && util_write_all(fd, v[k].junk, strlen(v[k].junk)) < 0) || close(fd) < 0)
        perror(ipath);
      stats_reset();
      again = listing(url, &c);
      ok(maildir_index_stats.rejects == 1 && maildir_index_stats.scans == n &&
         maildir_index_stats.writes == 1, "%s index: ignored and rebuilt", v[k].what);
      is_str(again, first, "%s index: same listing", v[k].what);
      free(again);
    }
    for (size_t off = 0; off < len; off += len / 13 + 1) {
      good[off] ^= 0x20;
      write_file(ipath, good, len);
      good[off] ^= 0x20;
      again = listing(url, &c);
      if (strcmp(again, first) != 0)
        break;
      free(again);
      again = NULL;
    }
    ok(again == NULL, "byte changes: ignored, same listing");
    free(again);

    /* A symlink to a good index, a hard-linked one, a directory: not read. */
    snprintf(p, sizeof p, "%s/elsewhere", tmpdir);
    write_file(p, good, len);
    unlink(ipath);
    if (symlink(p, ipath) < 0)
      perror("symlink");
    stats_reset();
    again = listing(url, &c);
    ok(maildir_index_stats.loads == 0 && maildir_index_stats.scans == n,
       "symlinked index not followed");
    ok(lstat(ipath, &st) == 0 && S_ISREG(st.st_mode), "  and replaced by a regular file");
    is_str(again, first, "  same listing");
    free(again);
    unlink(ipath);
    write_file(ipath, good, len);
    snprintf(p2, sizeof p2, "%s/linked", tmpdir);
    if (link(ipath, p2) < 0)
      perror("link");
    stats_reset();
    again = listing(url, &c);
    ok(maildir_index_stats.loads == 0 && maildir_index_stats.scans == n,
       "index with two links not read");
    free(again);
    unlink(p2);
    unlink(ipath);
    mkdir(ipath, 0700);
    stats_reset();
    again = listing(url, &c);
    ok(maildir_index_stats.scans == n && maildir_index_stats.writes == 0,
       "a directory in its place: no index, mail served");
    is_str(again, first, "  same listing");
    free(again);
    rmdir(ipath);
    if (geteuid() == 0) {
      write_file(ipath, good, len);
      if (chown(ipath, 1, 1) < 0)
        perror("chown");
      stats_reset();
      again = listing(url, &c);
      ok(maildir_index_stats.loads == 0 && maildir_index_stats.scans == n,
         "index owned by another user not read");
      free(again);
    } else {
      ok(1, "# SKIP index of another user (needs root)");
    }
    free(good);
    unlink(p);
  }
  free(first);
  rm_rf(dir);
}

/* Delivery order of a big Maildir (the radix sort): times of every width, equal times
 * ordered by name, names without a time first. */
static int cmp_order(const void *a, const void *b)
{
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  unsigned long long tx = strtoull(x, NULL, 10), ty = strtoull(y, NULL, 10);

  if (tx != ty)
    return tx < ty ? -1 : 1;
  return strcmp(x, y);
}

static void test_order(void)
{
  char dir[300], sub[400], url[400];
  char *names[300];
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;
  size_t n = 0, bad = 0;

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/Order", tmpdir);
  snprintf(url, sizeof url, "maildir:%s", dir);
  make_maildir(dir);
  srand(7);
  for (size_t i = 0; i < 300; i++) {
    char name[64];
    unsigned long long t;
    switch (i % 5) {
    case 0: t = 1700000000ull + (unsigned)(rand() % 100000); break;
    case 1: t = 1700000000ull + (unsigned)(rand() % 3); break;     /* many equal */
    case 2: t = (unsigned)(rand() % 70000); break;
    case 3: t = 17000000000000ull + (unsigned)rand(); break;
    default: t = 0; break;
    }
    if (t == 0)
      snprintf(name, sizeof name, "x%zu.host", i);
    else
      snprintf(name, sizeof name, "%llu.M%zuP%d.host", t, i, rand() % 1000);
    names[n++] = util_xstrdup(name);
    snprintf(sub, sizeof sub, "%s/%s", dir, i % 2 ? "new" : "cur");
    put(sub, name, "Subject: s\n\n");
  }
  qsort(names, n, sizeof *names, cmp_order);
  for (int round = 0; round < 2; round++) {
    if (mailbox_open(&mb, url, &c, &err) != MAILBOX_OK || mb.count != n) {
      ok(0, "open: %s", err);
      break;
    }
    for (size_t i = 0; i < n; i++)
      bad += strcmp(mailbox_uid(&mb, i), names[i]) != 0;
    is_int(bad, 0, "%s open: delivery order (time, then name)", round ? "second" : "first");
    mailbox_close(&mb);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  rm_rf(dir);
}

/* ---- MH ---- */

static void test_mh(void)
{
  char dir[300], url[400], ipath[400], p[800];
  struct conf c;
  struct stat st;
  char *first, *again;

  conf_for_test(&c);
  snprintf(dir, sizeof dir, "%s/inbox", tmpdir);
  snprintf(url, sizeof url, "mh:%s", dir);
  snprintf(ipath, sizeof ipath, "%s/" MH_INDEX_NAME, dir);
  mkdir(dir, 0700);
  put(dir, "1", m1);
  put(dir, "2", m2);
  put(dir, "3", m3);
  put(dir, "5", m4);
  put(dir, "6", m5);
  settle();

  stats_reset();
  first = listing(url, &c);
  ok(maildir_index_stats.scans == 5 && maildir_index_stats.writes == 1, "MH: first open reads all");
  ok(lstat(ipath, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600,
     "MH: index is a 0600 dot file");
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.hits == 5 && maildir_index_stats.scans == 0 &&
     maildir_index_stats.writes == 0, "MH: second open reads no message");
  is_str(again, first, "MH: same listing");
  free(again);

  /* In place, same size: the ctime tells. */
  snprintf(p, sizeof p, "%s/3", dir);
  poke(p, 8, "KEPT");
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 1 && strstr(again, "KEPT-id") != NULL,
     "MH: a message edited in place is read again");
  same_without_index(url, ipath, &c, again, "MH edited in place");
  free(again);
  poke(p, 8, "kept");

  /* A number used again by another message. */
  snprintf(p, sizeof p, "%s/6", dir);
  unlink(p);
  put(dir, "6", "Subject: another six\n\n6\n");
  settle();
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans >= 1 && strstr(again, "same-id-2") == NULL,
     "MH: a reused number is read again");
  same_without_index(url, ipath, &c, again, "MH reused number");
  free(again);
  free(first);
  settle();
  first = listing(url, &c);

  /* Written too recently to be trusted: read again until the clock has moved on. */
  put(dir, "7", "Subject: seven\n\n");
  stats_reset();
  again = listing(url, &c);
  free(again);
  settle();
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans <= 1 && maildir_index_stats.hits >= 5, "MH: new message");
  free(again);
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 0, "MH: then known");
  same_without_index(url, ipath, &c, again, "MH new message");
  free(again);
  free(first);
  first = listing(url, &c);

  /* DELE + QUIT: the next open lists the rest from the index. */
  {
    struct mailbox mb;
    const char *err = NULL;
    size_t removed = 0;
    if (mailbox_open(&mb, url, &c, &err) == MAILBOX_OK) {
      mb.msgs[1].flags |= MAILBOX_MSG_DELETED;
      ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 1, "MH update");
      mailbox_close(&mb);
    }
  }
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 0 && maildir_index_stats.writes == 1,
     "MH: after DELE no message read, the index rewritten");
  same_without_index(url, ipath, &c, again, "MH after DELE");
  free(again);

  /* Damaged index. */
  free(first);
  first = listing(url, &c);
  {
    size_t len;
    char *good = read_file(ipath, &len);
    write_file(ipath, good, len / 2);
    stats_reset();
    again = listing(url, &c);
    ok(maildir_index_stats.rejects == 1 && maildir_index_stats.writes == 1,
       "MH: truncated index ignored and rebuilt");
    is_str(again, first, "MH: same listing");
    free(again);
    free(good);
  }
  free(first);
  rm_rf(dir);
}

/* An UPDATE interrupted once its removal was decided: the next open completes it
 * before listing, the index loses the removed messages' entries, and every other
 * message keeps its id and is not read again. */
static void interrupted(const char *url, const char *dir, const char *const *subs,
                        const char *const *names, const char *record, const char *what)
{
  struct conf c;
  struct mailbox_file_intent w;
  char *first, *again, *line;
  const char *err = NULL;
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY);

  conf_for_test(&c);
  first = listing(url, &c);
  ok(dirfd >= 0 && mailbox_file_intent_begin(&w, dirfd, record) == 0, "%s: record begun",
     what);
  for (size_t k = 0; k < 2; k++) {
    char p[800];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s%s%s", dir, subs[k], *subs[k] ? "/" : "", names[k]);
    /* As UPDATE writes them: an MH message by its identity, a Maildir one by inode. */
    if (stat(p, &st) == 0)
      mailbox_file_intent_add(&w, *subs[k] ? subs[k] : "msg",
                              *subs[k] ? (uint64_t)st.st_ino : mailbox_file_mh_identity(&st),
                              names[k]);
  }
  ok(mailbox_file_intent_commit(&w, &err) == 0, "%s: record committed", what);
  close(dirfd);
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 0 && maildir_index_stats.hits == 3 &&
     maildir_index_stats.writes == 1, "%s: completed at open, nothing read, index rewritten",
     what);
  /* The survivors' lines (id, size, lines, flags, mark, file size) are those of before. */
  {
    bool same = strncmp(again, "3 ", 2) == 0;
    for (line = strchr(again, '\n'); same && line[1] != '\0'; line = strchr(line + 1, '\n')) {
      size_t len = strcspn(line + 1, "\n") + 2;      /* with the line ends around it */
      same = false;
      for (const char *at = strchr(first, '\n'); at != NULL && !same; at = strchr(at + 1, '\n'))
        same = strncmp(at, line, len) == 0;
    }
    ok(same, "%s: the others keep their ids", what);
  }
  free(again);
  stats_reset();
  again = listing(url, &c);
  ok(maildir_index_stats.scans == 0 && maildir_index_stats.writes == 0 &&
     maildir_index_stats.hits == 3, "%s: then the index is right", what);
  free(first);
  free(again);
}

static void test_interrupted(void)
{
  static const char *const md_subs[2] = { "new", "cur" };
  static const char *const md_names[2] = { "1600000001.M1P1.host", "1600000003.M3P3.host:2,S" };
  static const char *const mh_subs[2] = { "", "" };
  static const char *const mh_names[2] = { "1", "3" };
  char dir[300], sub[400], url[400];

  snprintf(dir, sizeof dir, "%s/Interrupted", tmpdir);
  snprintf(url, sizeof url, "maildir:%s", dir);
  make_maildir(dir);
  snprintf(sub, sizeof sub, "%s/new", dir);
  put(sub, md_names[0], m1);
  put(sub, "1600000002.M2P2.host", m2);
  put(sub, "1600000004.M4P4.host", m4);
  snprintf(sub, sizeof sub, "%s/cur", dir);
  put(sub, md_names[1], m3);
  put(sub, "1600000005.M5P5.host:2,S", m5);
  interrupted(url, dir, md_subs, md_names, MAILBOX_FILE_INTENT_MAILDIR, "Maildir");
  rm_rf(dir);

  snprintf(url, sizeof url, "mh:%s", dir);
  mkdir(dir, 0700);
  put(dir, "1", m1);
  put(dir, "2", m2);
  put(dir, "3", m3);
  put(dir, "4", m4);
  put(dir, "5", m5);
  settle();
  interrupted(url, dir, mh_subs, mh_names, MAILBOX_FILE_INTENT_MH, "MH");
  rm_rf(dir);
}

int main(void)
{
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  umask(077);
  test_parse();
  test_maildir();
  test_order();
  test_mh();
  test_interrupted();
  rm_rf(tmpdir);
  return tap_done();
}
