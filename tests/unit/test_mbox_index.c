/* test_mbox_index.c - the mbox index: a hit reads no mail, appended mail is picked up,
 * a changed or corrupt index is rebuilt, and the table (ids included) is always the one
 * a full scan gives.  GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "mailbox.h"
#include "mbox_index.h"
#include "params.h"
#include "tap.h"
#include "util.h"

static char tmpdir[] = "/tmp/test_mbox_index.XXXXXX";
static char mbox_path[256];
static char *index_path;

static void die(const char *what)
{
  perror(what);
  exit(2);
}

static void write_file(const char *path, const char *data, size_t len, int flags)
{
  int fd = open(path, O_WRONLY | O_CREAT | flags, 0600);

  if (fd < 0 || util_write_all(fd, data, len) < 0 || close(fd) < 0)
    die(path);
}

/* Everything the table says, one line a message. */
static char *snapshot(void)
{
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;
  size_t cap = 4096, len = 0;
  char *out = malloc(cap);

  memset(&c, 0, sizeof c);
  c.lock_type = CONF_LOCK_NULL;
  if (mailbox_open(&mb, mbox_path, &c, &err) != MAILBOX_OK) {
    snprintf(out, cap, "error: %s", err ? err : "?");
    return out;
  }
  len = (size_t)snprintf(out, cap, "count %zu total %llu\n", mb.count,
                         (unsigned long long)mb.total_size);
  for (size_t i = 0; i < mb.count; i++) {
    const struct mailbox_msg *m = &mb.msgs[i];
    struct mailbox_range r = { -1, -1 };
    char line[256];
    int n;
    (void)mailbox_mbox_block(&mb, i, &r);
    n = snprintf(line, sizeof line, "%lld %lld %lld %llu %u %x %u %s\n", (long long)r.from,
                 (long long)m->start, (long long)m->end, (unsigned long long)m->size,
                 m->lines, m->flags, m->expire_mark, mailbox_uid(&mb, i));
    while (len + (size_t)n + 1 > cap)
      out = realloc(out, cap *= 2);
    memcpy(out + len, line, (size_t)n + 1);
    len += (size_t)n;
  }
  mailbox_close(&mb);
  return out;
}

/* The table by a full scan (no index before; the one it writes is removed). */
static char *full_scan(void)
{
  char *s;

  unlink(index_path);
  s = snapshot();
  unlink(index_path);
  return s;
}

static const char base_mbox[] =
  "From a@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: one\n"
  "X-UIDL: fixed-id\n"
  "\n"
  "body one\n"
  "\n"
  "From b@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: two\n"
  "X-UIDL: fixed-id\n"
  "Status: RO\n"
  "\n"
  ">From quoted\n"
  "\n"
  "From c@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: same\n"
  "\n"
  "same body\n"
  "\n"
  "From c@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: same\n"
  "\n"
  "same body\n"
  "\n"
  "From d@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: deleted\n"
  "Status: OD\n"
  "\n"
  "last, without a final newline";

static const char more_mail[] =
  "\n"
  "\n"
  "From e@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: new\n"
  "X-UIDL: fixed-id\n"
  "\n"
  "new mail\n";

static void fresh_mbox(void)
{
  unlink(index_path);
  write_file(mbox_path, base_mbox, sizeof base_mbox - 1, O_TRUNC);
}

static void set_mtime(const char *path, time_t t)
{
  struct timespec ts[2] = { { t, 0 }, { t, 0 } };

  if (utimensat(AT_FDCWD, path, ts, 0) < 0)
    die("utimensat");
}

static void test_hit(void)
{
  char *ref, *first, *second;
  uint64_t before;

  fresh_mbox();
  ref = full_scan();
  ok(strstr(ref, "count 5") != NULL, "the sample has 5 messages");
  ok(strstr(ref, "fixed-id-2") != NULL, "a duplicate X-UIDL is suffixed");
  first = snapshot();
  is_str(first, ref, "first open (scan, writes the index) gives the full-scan table");
  ok(access(index_path, F_OK) == 0, "the index exists after a scan");
  {
    struct stat st;
    ok(stat(index_path, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == geteuid(),
       "the index is ours, mode 0600");
  }
  before = mbox_index_stats.scanned_bytes;
  second = snapshot();
  is_str(second, ref, "second open (index hit) gives the same table, ids included");
  is_int(mbox_index_stats.scanned_bytes - before, 0, "an index hit reads no mail");
  free(ref);
  free(first);
  free(second);
}

static void test_grew(void)
{
  char *ref, *got;
  uint64_t before;
  unsigned long grew;

  fresh_mbox();
  free(snapshot());
  write_file(mbox_path, more_mail, sizeof more_mail - 1, O_APPEND);
  set_mtime(mbox_path, time(NULL) + 5);
  before = mbox_index_stats.scanned_bytes;
  grew = mbox_index_stats.grew;
  got = snapshot();
  is_int(mbox_index_stats.grew - grew, 1, "appended mail: the index is used");
  ok(mbox_index_stats.scanned_bytes - before < sizeof base_mbox - 1,
     "only the last message and the new mail are read (%llu bytes)",
     (unsigned long long)(mbox_index_stats.scanned_bytes - before));
  ref = full_scan();
  ok(strstr(ref, "count 6") != NULL, "the new message is there");
  ok(strstr(ref, "fixed-id-3") != NULL, "its duplicate X-UIDL gets the next suffix");
  is_str(got, ref, "tail scan gives the full-scan table");
  free(got);
  /* The index written by the tail scan serves the next open whole. */
  free(snapshot());
  before = mbox_index_stats.scanned_bytes;
  got = snapshot();
  is_int(mbox_index_stats.scanned_bytes - before, 0, "then a hit again");
  is_str(got, ref, "with the same table");
  free(got);
  free(ref);
}

static void test_modified(void)
{
  char *mod = strdup(base_mbox), *ref, *got;
  struct stat st;
  unsigned long misses;

  fresh_mbox();
  free(snapshot());
  if (stat(mbox_path, &st) < 0)
    die("stat");
  /* Same size, changed in place (the first message's subject). */
  memcpy(strstr(mod, "Subject: one"), "Subject: uno", 12);
  write_file(mbox_path, mod, strlen(mod), O_TRUNC);
  set_mtime(mbox_path, st.st_mtime + 7);
  misses = mbox_index_stats.misses;
  got = snapshot();
  is_int(mbox_index_stats.misses - misses, 1, "same size, other mtime: rebuilt");
  ref = full_scan();
  is_str(got, ref, "and the table is the new one");
  /* Changed in place before the end and grown: the tail hash catches the change of
   * the last bytes, and the last message is read again in any case. */
  free(snapshot());
  if (stat(mbox_path, &st) < 0)
    die("stat");
  {
    char *p = strstr(mod, "last, without");
    memcpy(p, "LAST", 4);
    write_file(mbox_path, mod, strlen(mod), O_TRUNC);
    write_file(mbox_path, more_mail, sizeof more_mail - 1, O_APPEND);
    set_mtime(mbox_path, st.st_mtime + 9);
  }
  free(got);
  got = snapshot();
  free(ref);
  ref = full_scan();
  is_str(got, ref, "changed and grown: the full-scan table");
  ok(strstr(got, "count 6") != NULL, "with the new message");
  free(got);
  free(ref);
  free(mod);
}

static char *read_index(size_t *len_r)
{
  struct stat st;
  char *buf;
  int fd = open(index_path, O_RDONLY);

  if (fd < 0 || fstat(fd, &st) < 0)
    die(index_path);
  buf = malloc((size_t)st.st_size + 1);
  if (read(fd, buf, (size_t)st.st_size) != st.st_size)
    die("read");
  close(fd);
  *len_r = (size_t)st.st_size;
  return buf;
}

/* Replace the index by data, then open: the full-scan table, and a fresh index. */
static void check_corrupt(const char *what, const char *data, size_t len, const char *ref)
{
  char *got;
  unsigned long misses = mbox_index_stats.misses;

  unlink(index_path);
  write_file(index_path, data, len, O_TRUNC);
  got = snapshot();
  is_int(mbox_index_stats.misses - misses, 1, "%s: not trusted", what);
  is_str(got, ref, "%s: the full-scan table", what);
  free(got);
}

static void test_corrupt(void)
{
  char *ref, *good, *bad;
  size_t len;

  fresh_mbox();
  ref = full_scan();
  free(snapshot());
  good = read_index(&len);
  bad = malloc(len + 64);

  check_corrupt("empty", good, 0, ref);
  check_corrupt("truncated header", good, 20, ref);
  check_corrupt("truncated body", good, len - 10, ref);
  memcpy(bad, good, len);
  memset(bad + len, 'x', 64);
  check_corrupt("trailing junk", bad, len + 64, ref);
  memcpy(bad, good, len);
  bad[0] ^= 0x20;
  check_corrupt("wrong magic", bad, len, ref);
  for (size_t off = 8; off < len; off += len / 23 + 1) {
    char what[64];
    memcpy(bad, good, len);
    bad[off] ^= 0x01;
    snprintf(what, sizeof what, "byte %zu flipped", off);
    check_corrupt(what, bad, len, ref);
  }
  memcpy(bad, good, len);
  bad[len - 1] ^= 0x40;
  check_corrupt("last byte flipped", bad, len, ref);
  /* A huge count with the checksum not matching, and one whose sizes don't add up. */
  memcpy(bad, good, len);
  memset(bad + 64, 0xff, 8);
  check_corrupt("huge count", bad, len, ref);
  {
    char *got;
    /* A good index restored: used again (its mode is not part of the key). */
    memcpy(bad, good, len);
    write_file(index_path, bad, len, O_TRUNC);
    if (chmod(index_path, 0644) < 0)
      die("chmod");
    got = snapshot();
    is_str(got, ref, "an intact index still gives the same table");
    free(got);
  }
  {
    char *got;
    unsigned long misses;
    unlink(index_path);
    if (symlink("/dev/null", index_path) < 0)
      die("symlink");
    misses = mbox_index_stats.misses;
    got = snapshot();
    is_int(mbox_index_stats.misses - misses, 1, "a symbolic link is not an index");
    is_str(got, ref, "symbolic link: the full-scan table");
    free(got);
  }
  unlink(index_path);
  free(bad);
  free(good);
  free(ref);
}

static void test_no_index_dir(void)
{
  char *ref, *got;

  fresh_mbox();
  ref = full_scan();
  /* A directory where the index would go: no index, the same table. */
  if (mkdir(index_path, 0700) < 0)
    die("mkdir");
  got = snapshot();
  is_str(got, ref, "index not writable: the mailbox opens all the same");
  free(got);
  got = snapshot();
  is_str(got, ref, "and again");
  if (rmdir(index_path) < 0)
    die("rmdir");
  free(got);
  free(ref);
}

static void test_big(void)
{
  /* Many messages, duplicate ids and a line longer than a scan block. */
  size_t cap = 4u << 20, len = 0;
  char *buf = malloc(cap), *ref, *got;
  uint64_t before;

  for (int i = 0; i < 3000; i++)
    len += (size_t)snprintf(buf + len, cap - len,
                            "From x@example.org Mon Jan  1 00:00:00 2024\n"
                            "Subject: %d\n%s\nbody %d\n\n", i % 7,
                            i % 3 == 0 ? "X-UIDL: dup" : "", i);
  fresh_mbox();
  write_file(mbox_path, buf, len, O_TRUNC);
  ref = full_scan();
  free(snapshot());
  before = mbox_index_stats.scanned_bytes;
  got = snapshot();
  is_int(mbox_index_stats.scanned_bytes - before, 0, "3000 messages: a hit reads no mail");
  is_str(got, ref, "3000 messages: the same table and ids");
  free(got);
  {
    char *lng = malloc(PARAMS_MBOX_SCAN_BLOCK + 100);
    memset(lng, 'y', PARAMS_MBOX_SCAN_BLOCK + 99);
    lng[PARAMS_MBOX_SCAN_BLOCK + 99] = '\n';
    write_file(mbox_path, "From z@example.org Mon Jan  1 00:00:00 2024\nSubject: long\n\n",
               strlen("From z@example.org Mon Jan  1 00:00:00 2024\nSubject: long\n\n"),
               O_APPEND);
    write_file(mbox_path, lng, PARAMS_MBOX_SCAN_BLOCK + 100, O_APPEND);
    set_mtime(mbox_path, time(NULL) + 11);
    got = snapshot();
    free(ref);
    ref = full_scan();
    is_str(got, ref, "grown by a message with a line longer than a block");
    free(lng);
  }
  free(got);
  free(ref);
  free(buf);
}

/* Dovecot's X-IMAPbase / X-UID ids (uidl.h): the chain of UIDs survives a tail scan of
 * appended mail (the index keeps its state before the last message), and a rewrite
 * stores the ids in X-UIDL headers, so deleting the first message (and its X-IMAPbase)
 * changes no other id. */
static const char dovecot_mbox[] =
  "From a@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: one\n"
  "X-UID: 9\n"                     /* before the X-IMAPbase: not trusted */
  "X-IMAPbase: 7 0000000002\n"
  "X-UID: 1\n"
  "\n"
  "body one\n"
  "\n"
  "From b@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: two\n"
  "x-uid:   2   \n"
  "\n"
  "body two\n"
  "\n"
  "From c@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: three, never served by Dovecot (it would number it 3)\n"
  "X-IMAPbase: 8 0000000050\n"     /* only the first message's counts */
  "\n"
  "body three\n";

static const char dovecot_more[] =
  "\n"
  "From d@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: four\n"
  "X-UID: 4\n"
  "\n"
  "body four\n"
  "\n"
  "From e@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: forged, UID already used (Dovecot would number it 5)\n"
  "X-UID: 1\n"
  "\n"
  "body five\n"
  "\n"
  "From f@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: folded X-UID (6 taken)\n"
  "X-UID: 6\n"
  " more\n"
  "\n"
  "body six\n"
  "\n"
  "From g@example.org Mon Jan  1 00:00:00 2024\n"
  "Subject: seven\n"
  "X-UID: 7\n"
  "\n"
  "body seven\n";

static size_t count_of(const char *hay, const char *needle)
{
  size_t n = 0;

  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static void test_dovecot(void)
{
  char *ref, *got, *ids_before;
  unsigned long grew;
  struct conf c;
  struct mailbox mb;
  const char *err = NULL;
  size_t removed = 0;

  unlink(index_path);
  write_file(mbox_path, dovecot_mbox, sizeof dovecot_mbox - 1, O_TRUNC);
  set_mtime(mbox_path, time(NULL) - 100);
  got = snapshot();
  is_int(count_of(got, "00000007\n"), 2, "two Dovecot ids in the first three messages");
  ok(strstr(got, " 0000000100000007\n") && strstr(got, " 0000000200000007\n"),
     "X-UID 1 and 2 under UIDVALIDITY 7");
  ok(strstr(got, " 40 0 0000000100000007\n") != NULL, "flagged as Dovecot's");
  ok(strstr(got, "00000009") == NULL && strstr(got, "00000008") == NULL,
     "no X-UID before the X-IMAPbase, no X-IMAPbase but the first message's");
  free(got);

  write_file(mbox_path, dovecot_more, sizeof dovecot_more - 1, O_APPEND);
  set_mtime(mbox_path, time(NULL) - 50);
  grew = mbox_index_stats.grew;
  got = snapshot();
  is_int(mbox_index_stats.grew - grew, 1, "appended mail: tail scan");
  ref = full_scan();
  is_str(got, ref, "the tail scan gives the full scan's ids (the chain resumed)");
  ok(strstr(ref, " 0000000400000007\n") && strstr(ref, " 0000000700000007\n"),
     "X-UID 4 and 7 trusted");
  is_int(count_of(ref, "00000007\n"), 4, "not the forged X-UID 1, nor the folded one");
  free(got);

  /* Delete the first message, which holds the X-IMAPbase. */
  ids_before = strdup(strchr(strchr(ref, '\n') + 1, '\n') + 1);
  memset(&c, 0, sizeof c);
  c.lock_type = CONF_LOCK_NULL;
  if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
    mb.msgs[0].flags |= MAILBOX_MSG_DELETED;
    ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 1,
       "the first message deleted");
    mailbox_close(&mb);
  } else {
    ok(false, "open: %s", err ? err : "?");
  }
  {
    size_t len = 0;
    char *text;
    int fd = open(mbox_path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
      die("open");
    text = calloc(1, (size_t)st.st_size + 1);
    if (text == NULL || util_pread_all(fd, text, (size_t)st.st_size, 0) < 0)
      die("read");
    len = (size_t)st.st_size;
    close(fd);
    is_int(count_of(text, "\nX-UIDL: 0000000"), 3, "the Dovecot ids went into X-UIDL headers");
    ok(strstr(text, "X-IMAPbase: 7") == NULL && len > 0, "with the X-IMAPbase gone");
    free(text);
  }
  got = full_scan();
  {
    /* Same ids, in the same order, for the messages kept. */
    const char *a = ids_before, *b = strchr(got, '\n') + 1;
    bool same = true;
    for (;;) {
      const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
      if (ea == NULL || eb == NULL) {
        same = same && ea == NULL && eb == NULL;
        break;
      }
      const char *ia = ea, *ib = eb;
      while (ia > a && ia[-1] != ' ')
        ia--;
      while (ib > b && ib[-1] != ' ')
        ib--;
      if (ea - ia != eb - ib || memcmp(ia, ib, (size_t)(ea - ia)) != 0)
        same = false;
      a = ea + 1;
      b = eb + 1;
    }
    ok(same, "every other message keeps its id");
  }
  free(ids_before);
  free(got);
  free(ref);
}

int main(void)
{
  if (mkdtemp(tmpdir) == NULL)
    die("mkdtemp");
  snprintf(mbox_path, sizeof mbox_path, "%s/user", tmpdir);
  index_path = mbox_index_path(mbox_path);
  {
    char *want = util_xasprintf("%s/.user.pop3d-index", tmpdir);
    is_str(index_path, want, "index path");
    free(want);
  }

  test_hit();
  test_grew();
  test_modified();
  test_corrupt();
  test_no_index_dir();
  test_big();
  test_dovecot();

  unlink(index_path);
  free(index_path);
  unlink(mbox_path);
  rmdir(tmpdir);
  return tap_done();
}
