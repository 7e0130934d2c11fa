/* test_mbox.c - the mbox maildrop: parsing, sizes, unique ids, UPDATE, crash safety and
 * its leftovers, locking, refusals, URLs.  GPL-3.0-or-later. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "lock.h"
#include "mailbox.h"
#include "params.h"
#include "tap.h"
#include "uidl.h"

static char tmpdir[] = "/tmp/test_mbox.XXXXXX";
static char mbox_path[256];

static void conf_for_test(struct conf *c, enum conf_lock_type type)
{
  memset(c, 0, sizeof *c);
  c->lock_type = type;
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

static char *read_whole(const char *path, size_t *len_r)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, len = 0, n;

  if (f == NULL) {
    *len_r = 0;
    return NULL;
  }
  do {
    if (len + 65536 > cap) {
      cap = cap * 2 + 65536;
      buf = realloc(buf, cap);
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  fclose(f);
  *len_r = len;
  return buf;
}

/* The size rule of mailbox.h, done the slow way: transform the message byte by byte
 * into what RETR sends (before dot-stuffing) and measure that. */
static uint64_t ref_size(const char *m, size_t len, bool mboxrd, uint64_t *lines_r)
{
  char *out = malloc(len * 2 + 2);
  size_t o = 0, i = 0;
  uint64_t lines = 0;

  while (i < len) {
    size_t s = i, e, k;
    bool lf = false;
    while (i < len && m[i] != '\n')
      i++;
    e = i;              /* the line's text, without its LF */
    if (i < len) {
      lf = true;
      i++;
    }
    k = s;
    if (mboxrd && e > s && m[s] == '>') {
      size_t q = s;
      while (q < e && m[q] == '>')
        q++;
      if (e - q >= 5 && memcmp(m + q, "From ", 5) == 0)
        k++;            /* one '>' less */
    }
    while (k < e)
      out[o++] = m[k++];
    if (lf) {
      if (!(e > s && m[e - 1] == '\r'))
        out[o++] = '\r';
      out[o++] = '\n';
      lines++;
    } else if (e > s) {
      out[o++] = '\r';
      out[o++] = '\n';
      lines++;
    }
  }
  free(out);
  *lines_r = lines;
  return o;
}

static const char *msg_bytes(const char *file, const struct mailbox *mb, size_t i,
                             size_t *len_r)
{
  *len_r = (size_t)(mb->msgs[i].end - mb->msgs[i].start);
  return file + mb->msgs[i].start;
}

static bool is_hex_id(const char *s)
{
  if (strlen(s) != 32)
    return false;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return false;
  return true;
}

/* ---- parse table ---- */

#define HEX "<hex>"

struct parse_case {
  const char *name;
  const char *data;
  size_t count;
  const char *body[6];   /* exact bytes of each message */
  const char *uid[6];    /* expected id, HEX for a derived one, NULL: don't check */
};

static const struct parse_case parse_cases[] = {
  { "empty file", "", 0, { NULL }, { NULL } },
  { "single message",
    "From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n", 1,
    { "Subject: x\n\nbody\n" }, { HEX } },
  { "several messages",
    "From a\nS: 1\n\nb1\n\nFrom b\nS: 2\n\nb2\n\nFrom c\nS: 3\n\nb3\n", 3,
    { "S: 1\n\nb1\n", "S: 2\n\nb2\n", "S: 3\n\nb3\n" }, { HEX, HEX, HEX } },
  { "trailing separator at EOF",
    "From a\nS: 1\n\nb1\n\nFrom b\nS: 2\n\nb2\n\n", 2,
    { "S: 1\n\nb1\n", "S: 2\n\nb2\n" }, { NULL } },
  { "body ends with blank lines",
    "From a\nS: 1\n\nb1\n\n\n\nFrom b\nS: 2\n\nb2\n\n\n", 2,
    { "S: 1\n\nb1\n\n\n", "S: 2\n\nb2\n\n" }, { NULL } },
  { "no trailing newline", "From a\nS: 1\n\nbody", 1, { "S: 1\n\nbody" }, { NULL } },
  { "From_ line only, no newline", "From a", 1, { "" }, { HEX } },
  { "empty message", "From a\n\nFrom b\nS: 2\n\nx\n", 2, { "", "S: 2\n\nx\n" }, { NULL } },
  { "two empty messages", "From a\n\nFrom b\n\n", 2, { "", "" }, { NULL } },
  { "CRLF headers and body",
    "From a\r\nS: 1\r\nT: 2\r\n\r\nbody\r\n\r\nFrom b\r\nS: 3\r\n\r\nb\r\n", 2,
    { "S: 1\r\nT: 2\r\n\r\nbody\r\n", "S: 3\r\n\r\nb\r\n" }, { NULL } },
  { "CRLF separator, LF message",
    "From a\nS: 1\n\nx\n\r\nFrom b\nS: 2\n\ny\n", 2,
    { "S: 1\n\nx\n", "S: 2\n\ny\n" }, { NULL } },
  { ">From lines", "From a\nS: 1\n\n>From x\n>>From y\n>Fromage\nFrom z\n", 1,
    { "S: 1\n\n>From x\n>>From y\n>Fromage\nFrom z\n" }, { NULL } },
  { "From in body without blank line before",
    "From a\nS: 1\n\nhello\nFrom me to you\nbye\n", 1,
    { "S: 1\n\nhello\nFrom me to you\nbye\n" }, { NULL } },
  { "From after blank line in body starts a message",
    "From a\nS:1\n\nx\n\nFrom b\n\ny\n", 2, { "S:1\n\nx\n", "\ny\n" }, { NULL } },
  { "X-UIDL honoured",
    "From a\nX-UIDL:  abc123 \nS: 1\n\nb\n\nFrom b\nx-uidl: Q1\r\n\r\nb\n", 2,
    { "X-UIDL:  abc123 \nS: 1\n\nb\n", "x-uidl: Q1\r\n\r\nb\n" }, { "abc123", "Q1" } },
  { "duplicate X-UIDL made unique",
    "From a\nX-UIDL: dup\n\n1\n\nFrom b\nX-UIDL: dup\n\n2\n\nFrom c\nX-UIDL: dup\n\n3\n"
    "\nFrom d\nX-UIDL: dup-2\n\n4\n", 4,
    { NULL }, { "dup", "dup-2", "dup-3", "dup-2-2" } },
  { "identical messages made unique",
    "From a\nS: same\n\nx\n\nFrom a\nS: same\n\nx\n", 2, { NULL }, { HEX, NULL } },
  { "invalid X-UIDL ignored",
    "From a\nX-UIDL: has space\n\nb\n\nFrom b\nS: 1\n\nX-UIDL: inbody\n\n"
    "From c\nX-UIDL: 01234567890123456789012345678901234567890123456789012345678901234567890\n\n"
    "\nFrom d\nX-UIDL: folded\n more\n\nx\n\nFrom e\nX-UIDL:\n\n", 5,
    { NULL }, { HEX, HEX, HEX, HEX, HEX } },
  { "second X-UIDL after invalid one",
    "From a\nX-UIDL: bad id\nX-UIDL: good\n\nb\n", 1, { NULL }, { "good" } },
  { "text before the first From_ line",
    "garbage\nmore\n\nFrom a\nS:1\n\nb\n", 2, { "garbage\nmore\n", "S:1\n\nb\n" }, { NULL } },
  { "blank lines before the first From_ line",
    "\n\r\n\nFrom a\nS:1\n\nb\n", 1, { "S:1\n\nb\n" }, { NULL } },
  { "no From_ line at all", "just text\nno newline", 1, { "just text\nno newline" },
    { HEX } },
  { "NUL bytes", "From a\nS: \0\0\n\n\0body\0\n", 1, { NULL }, { HEX } },
  { "lone CR last line", "From a\nS: 1\n\n\r", 1, { "S: 1\n\n\r" }, { NULL } },
};

/* Table entries hold NULs in one case: its length is written out here. */
static size_t case_len(const struct parse_case *pc)
{
  if (strcmp(pc->name, "NUL bytes") == 0)
    return sizeof "From a\nS: \0\0\n\n\0body\0\n" - 1;
  return strlen(pc->data);
}

static void check_sizes(const char *file, const struct mailbox *mb, const char *what)
{
  bool good = true;
  uint64_t total = 0;

  for (size_t i = 0; i < mb->count; i++) {
    size_t len;
    const char *m = msg_bytes(file, mb, i, &len);
    uint64_t lines, sz = ref_size(m, len, mb->mboxrd, &lines);
    if (sz != mb->msgs[i].size || lines != mb->msgs[i].lines) {
      printf("# %s msg %zu: size %llu lines %u, reference %llu / %llu\n", what, i,
             (unsigned long long)mb->msgs[i].size, mb->msgs[i].lines,
             (unsigned long long)sz, (unsigned long long)lines);
      good = false;
    }
    total += mb->msgs[i].size;
  }
  ok(good, "%s: sizes and lines match the reference transform", what);
  ok(total == mb->total_size, "%s: total size", what);
}

static void test_parse(void)
{
  struct conf c;

  conf_for_test(&c, CONF_LOCK_DEFAULT);
  for (size_t k = 0; k < sizeof parse_cases / sizeof parse_cases[0]; k++) {
    const struct parse_case *pc = &parse_cases[k];
    size_t len = case_len(pc);
    struct mailbox mb;
    const char *err = NULL;
    enum mailbox_status st;

    write_file(mbox_path, pc->data, len);
    st = mailbox_open(&mb, mbox_path, &c, &err);
    is_int(st, MAILBOX_OK, "%s: opens (%s)", pc->name, st ? err : "ok");
    if (st != MAILBOX_OK)
      continue;
    is_int(mb.count, pc->count, "%s: message count", pc->name);
    for (size_t i = 0; i < mb.count && i < 6; i++) {
      size_t ml;
      const char *m = msg_bytes(pc->data, &mb, i, &ml);
      ok(mb.msgs[i].start <= mb.msgs[i].end && (size_t)mb.msgs[i].end <= len,
         "%s: msg %zu range within the file", pc->name, i);
      if (pc->body[i] != NULL)
        ok(ml == strlen(pc->body[i]) && memcmp(m, pc->body[i], ml) == 0,
           "%s: msg %zu content", pc->name, i);
      if (pc->uid[i] != NULL && strcmp(pc->uid[i], HEX) == 0)
        ok(is_hex_id(mailbox_uid(&mb, i)), "%s: msg %zu derived id %s", pc->name, i,
           mailbox_uid(&mb, i));
      else if (pc->uid[i] != NULL)
        is_str(mailbox_uid(&mb, i), pc->uid[i], "%s: msg %zu id", pc->name, i);
    }
    /* Every id is valid and unique. */
    {
      bool uniq = true, valid = true;
      for (size_t i = 0; i < mb.count; i++) {
        const char *a = mailbox_uid(&mb, i);
        if (!uidl_valid(a, strlen(a)))
          valid = false;
        for (size_t j = i + 1; j < mb.count; j++)
          if (strcmp(a, mailbox_uid(&mb, j)) == 0)
            uniq = false;
      }
      ok(valid && uniq, "%s: ids valid and unique", pc->name);
    }
    check_sizes(pc->data, &mb, pc->name);
    mailbox_close(&mb);
  }
}

/* Hand-computed sizes, so the reference itself is checked. */
static void test_size_literals(void)
{
  static const struct { const char *data; uint64_t size; uint32_t lines; } cases[] = {
    { "From a\nS: 1\n\nbody\n", 6 + 2 + 6, 3 },
    { "From a\nS: 1\r\n\r\nbody\r\n", 6 + 2 + 6, 3 },
    { "From a\nS: 1\n\nbody", 6 + 2 + 6, 3 },
    { "From a\n\n>From x\n", 2 + 8, 2 },    /* empty header; ">From x" is sent "From x" */
    { "From a\nS: 1\n\n>>From x\n>From\n", 6 + 2 + 9 + 7, 4 },
    { "From a\n\nFrom b\n", 0, 0 },
    { "From a\nx\n\n\n\n", 3 + 2 + 2, 3 },
  };
  struct conf c;

  conf_for_test(&c, CONF_LOCK_NULL);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    struct mailbox mb;
    const char *err;
    write_file(mbox_path, cases[k].data, strlen(cases[k].data));
    if (mailbox_open(&mb, mbox_path, &c, &err) != MAILBOX_OK || mb.count == 0) {
      ok(0, "size literal %zu opens", k);
      continue;
    }
    is_int(mb.msgs[0].size, cases[k].size, "size literal %zu: size", k);
    is_int(mb.msgs[0].lines, cases[k].lines, "size literal %zu: lines", k);
    mailbox_close(&mb);
  }
}

static void test_hostile(void)
{
  struct conf c;
  struct mailbox mb;
  const char *err;
  size_t n = 1000000, len;
  char *big;

  conf_for_test(&c, CONF_LOCK_NULL);

  /* A million tiny messages. */
  big = malloc(n * 8);
  for (size_t i = 0; i < n; i++)
    memcpy(big + i * 8, "From x\n\n", 8);
  write_file(mbox_path, big, n * 8);
  if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
    bool uniq = strcmp(mailbox_uid(&mb, 0), mailbox_uid(&mb, 1)) != 0 &&
                strcmp(mailbox_uid(&mb, 1), mailbox_uid(&mb, n - 1)) != 0;
    is_int(mb.count, n, "a million empty messages");
    ok(uniq, "their ids are unique (%s, %s, %s)", mailbox_uid(&mb, 0), mailbox_uid(&mb, 1),
       mailbox_uid(&mb, n - 1));
    mailbox_close(&mb);
  } else {
    ok(0, "a million empty messages open: %s", err);
  }

  /* One huge line without a newline; one of '>' characters. */
  len = 8u << 20;
  big = realloc(big, len);
  memset(big, 'x', len);
  memcpy(big, "From a\n", 7);
  write_file(mbox_path, big, len);
  ok(mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK && mb.count == 1 &&
     mb.msgs[0].size == len - 7 + 2, "8 MiB line without newline");
  mailbox_close(&mb);
  memset(big + 7, '>', len - 7 - 6);
  memcpy(big + len - 6, "From \n", 6);
  write_file(mbox_path, big, len);
  ok(mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK && mb.count == 1 &&
     mb.msgs[0].size == len - 7 - 1 + 1, "8 MiB >>>From_ line");
  mailbox_close(&mb);

  /* "From " everywhere, with and without blank lines; NULs everywhere. */
  for (size_t i = 0; i + 6 <= len; i += 6)
    memcpy(big + i, i % 12 ? "From \n" : "\nFrom ", 6);
  write_file(mbox_path, big, len);
  if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
    ok(mb.count > 0, "From_ everywhere: %zu messages", mb.count);
    check_sizes(big, &mb, "From_ everywhere");
    mailbox_close(&mb);
  } else {
    ok(0, "From_ everywhere opens");
  }
  /* Lines around the scanner's block size (1 MiB), split at every awkward place. */
  {
    static const size_t lens[] = { 5, 1000, (1u << 20) - 9, (1u << 20) - 8, (1u << 20) - 7,
                                   (1u << 20) - 2, (1u << 20) - 1, 1u << 20, (1u << 20) + 1,
                                   (2u << 20) + 3 };
    bool good = true;
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
      size_t L = lens[k], o = 0;
      char *m = malloc(6 * L + 200);
      o += (size_t)sprintf(m + o, "From a\nS: 1\n\n>>");
      memset(m + o, 'x', L);
      o += L;
      o += (size_t)sprintf(m + o, "\r\n\nFrom b\nX-Long: ");
      memset(m + o, 'y', L);
      o += L;
      o += (size_t)sprintf(m + o, "\n\nbody\n\nFrom ");
      memset(m + o, 'z', L);
      o += L;
      o += (size_t)sprintf(m + o, "\nS: 2\n\n");
      memset(m + o, '>', L);
      o += L;
      o += (size_t)sprintf(m + o, "From x\n");
      memset(m + o, 'w', L);
      o += L;
      m[o++] = '\r';
      write_file(mbox_path, m, o);
      if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
        uint64_t lines;
        if (mb.count != 3 || mb.msgs[0].end - mb.msgs[0].start != (off_t)(L + 2 + 6 + 2) ||
            mb.msgs[2].end != (off_t)o) {
          printf("# long lines %zu: %zu messages\n", L, mb.count);
          good = false;
        }
        for (size_t i = 0; i < mb.count; i++) {
          size_t ml;
          const char *b = msg_bytes(m, &mb, i, &ml);
          if (ref_size(b, ml, true, &lines) != mb.msgs[i].size || lines != mb.msgs[i].lines) {
            printf("# long lines %zu: message %zu size %llu\n", L, i,
                   (unsigned long long)mb.msgs[i].size);
            good = false;
          }
        }
        mailbox_close(&mb);
      } else {
        good = false;
      }
      free(m);
    }
    ok(good, "lines around the block size: boundaries and sizes exact");
  }

  memset(big, 0, len);
  write_file(mbox_path, big, len);
  ok(mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK && mb.count == 1,
     "all NULs: one headless message");
  mailbox_close(&mb);
  free(big);
}

/* ---- building mailboxes from blocks ---- */

struct blocks {
  char **b;       /* From_ line, message, separator */
  size_t n;
};

static void blocks_make(struct blocks *bl, size_t n, bool last_unterminated)
{
  bl->b = calloc(n, sizeof *bl->b);
  bl->n = n;
  for (size_t i = 0; i < n; i++) {
    bool last = i + 1 == n;
    const char *eol = i % 3 == 1 ? "\r\n" : "\n";
    char uidl[64] = "";
    if (i % 4 == 0)
      snprintf(uidl, sizeof uidl, "X-UIDL: uid-%zu%s", i, eol);
    bl->b[i] = util_xasprintf(
      "From sender%zu@example.org Mon Jan  1 00:00:%02zu 2024\n"
      "%sSubject: message %zu%s%s"
      "line one of %zu%s>From escaped%sFrom in the body%s"
      "last%s%s",
      i, i % 60, uidl, i, eol, eol, i, eol, eol, eol,
      last && last_unterminated ? "" : eol, last && last_unterminated ? "" : "\n");
  }
}

static char *blocks_join(const struct blocks *bl, const bool *skip, size_t *len_r)
{
  size_t len = 0;
  char *s, *p;

  for (size_t i = 0; i < bl->n; i++)
    if (skip == NULL || !skip[i])
      len += strlen(bl->b[i]);
  s = p = malloc(len + 1);
  for (size_t i = 0; i < bl->n; i++)
    if (skip == NULL || !skip[i]) {
      size_t l = strlen(bl->b[i]);
      memcpy(p, bl->b[i], l);
      p += l;
    }
  *p = '\0';
  *len_r = len;
  return s;
}

static void blocks_free(struct blocks *bl)
{
  for (size_t i = 0; i < bl->n; i++)
    free(bl->b[i]);
  free(bl->b);
}

static bool file_equals(const char *path, const char *want, size_t wlen)
{
  size_t len;
  char *got = read_whole(path, &len);
  bool eq = got != NULL && len == wlen && memcmp(got, want, len) == 0;

  free(got);
  return eq;
}

static void test_update(void)
{
  struct blocks bl;
  struct conf c;
  struct mailbox mb, mb2;
  const char *err;
  size_t olen, nlen, removed;
  bool del[10] = { false };
  char *orig, *want, *ids[10];
  struct stat st;

  conf_for_test(&c, CONF_LOCK_DEFAULT);
  blocks_make(&bl, 10, true);
  orig = blocks_join(&bl, NULL, &olen);
  write_file(mbox_path, orig, olen);
  chmod(mbox_path, 0640);

  if (mailbox_open(&mb, mbox_path, &c, &err) != MAILBOX_OK) {
    ok(0, "update: open: %s", err);
    return;
  }
  is_int(mb.count, 10, "update: 10 messages");
  check_sizes(orig, &mb, "update mailbox");
  is_str(mailbox_uid(&mb, 4), "uid-4", "update: X-UIDL of message 5");
  for (size_t i = 0; i < 10; i++)
    ids[i] = strdup(mailbox_uid(&mb, i));

  /* Nothing deleted: nothing written. */
  stat(mbox_path, &st);
  ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 0 &&
     file_equals(mbox_path, orig, olen), "update with nothing deleted changes nothing");

  del[0] = del[4] = del[9] = true;
  for (size_t i = 0; i < 10; i++)
    if (del[i])
      mb.msgs[i].flags |= MAILBOX_MSG_DELETED;
  ok(mb.ops->check(&mb, &err) == MAILBOX_OK, "check before update");
  ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK, "update succeeds");
  is_int(removed, 3, "update removed 3");
  want = blocks_join(&bl, del, &nlen);
  ok(file_equals(mbox_path, want, nlen), "update: kept messages byte-identical");
  ok(access(mbox_path, F_OK) == 0 && stat(mbox_path, &st) == 0 && (st.st_mode & 07777) == 0640,
     "update keeps the mode");
  {
    char lockname[300];
    snprintf(lockname, sizeof lockname, "%s.lock", mbox_path);
    ok(access(lockname, F_OK) == 0, "dotlock held after update until close");
    mailbox_close(&mb);
    ok(access(lockname, F_OK) != 0, "dotlock removed at close");
  }

  if (mailbox_open(&mb2, mbox_path, &c, &err) == MAILBOX_OK) {
    bool same = mb2.count == 7;
    for (size_t i = 0, j = 0; same && i < 10; i++) {
      if (del[i])
        continue;
      if (strcmp(mailbox_uid(&mb2, j), ids[i]) != 0)
        same = false;
      j++;
    }
    ok(same, "ids of kept messages unchanged after update");
    check_sizes(want, &mb2, "after update");
    mailbox_close(&mb2);
  } else {
    ok(0, "reopen after update: %s", err);
  }
  free(want);

  /* Delete all. */
  write_file(mbox_path, orig, olen);
  if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
    for (size_t i = 0; i < mb.count; i++)
      mb.msgs[i].flags |= MAILBOX_MSG_DELETED;
    ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 10,
       "delete all");
    mailbox_close(&mb);
    ok(file_equals(mbox_path, "", 0), "delete all leaves an empty file");
  }

  /* Mail appended after the scan survives. */
  {
    static const char extra[] = "\nFrom new@example.org Tue Jan  2 00:00:00 2024\n"
                                "Subject: new\n\nappended\n";
    bool d2[10] = { true, false, true };
    blocks_free(&bl);
    blocks_make(&bl, 10, false);
    free(orig);
    orig = blocks_join(&bl, NULL, &olen);
    write_file(mbox_path, orig, olen);
    if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
      int fd = open(mbox_path, O_WRONLY | O_APPEND);
      ok(fd >= 0 && util_write_all(fd, extra + 1, sizeof extra - 2) == 0,
         "append after the scan");
      close(fd);
      ok(mb.ops->check(&mb, &err) == MAILBOX_OK, "appending is not a change");
      mb.msgs[0].flags |= MAILBOX_MSG_DELETED;
      mb.msgs[2].flags |= MAILBOX_MSG_DELETED;
      ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 2,
         "update with appended mail");
      mailbox_close(&mb);
      want = blocks_join(&bl, d2, &nlen);
      want = realloc(want, nlen + sizeof extra);
      memcpy(want + nlen, extra + 1, sizeof extra - 2);
      nlen += sizeof extra - 2;
      ok(file_equals(mbox_path, want, nlen), "appended mail survives update");
      free(want);
      if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
        is_int(mb.count, 9, "appended message is there after update");
        mailbox_close(&mb);
      }
    }
  }

  /* check(): a truncation or a replacement is a change. */
  write_file(mbox_path, orig, olen);
  if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
    size_t removed2;
    ok(truncate(mbox_path, (off_t)olen - 10) == 0, "truncate behind our back");
    is_int(mb.ops->check(&mb, &err), MAILBOX_TEMP, "check sees the truncation");
    mb.msgs[0].flags |= MAILBOX_MSG_DELETED;
    is_int(mb.ops->update(&mb, &removed2, &err), MAILBOX_TEMP,
           "update refuses a changed mailbox");
    mailbox_close(&mb);
  }
  write_file(mbox_path, orig, olen);
  if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
    char other[300];
    snprintf(other, sizeof other, "%s.other", mbox_path);
    write_file(other, orig, olen);
    ok(rename(other, mbox_path) == 0, "replace behind our back");
    is_int(mb.ops->check(&mb, &err), MAILBOX_TEMP, "check sees the replacement");
    mailbox_close(&mb);
  }
  for (size_t i = 0; i < 10; i++)
    free(ids[i]);
  free(orig);
  blocks_free(&bl);
}

static void remove_leftovers(void)
{
  char cmd[512];

  snprintf(cmd, sizeof cmd, "rm -f %s.lock %s/.mbox.pop3d-*", mbox_path, tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "cleanup failed\n");
}

static size_t count_leftovers(void)
{
  char cmd[512];
  FILE *p;
  size_t n = 0;

  /* The temporary copies and index files, not the index itself. */
  snprintf(cmd, sizeof cmd,
           "ls -a %s | grep -cE '^\\.mbox\\.pop3d-([A-Za-z0-9]{6}|index\\.[0-9a-f]{8})$'",
           tmpdir);
  p = popen(cmd, "r");
  if (p != NULL) {
    if (fscanf(p, "%zu", &n) != 1)
      n = 0;
    pclose(p);
  }
  return n;
}

static void crash_child(const bool *del)
{
  struct conf c;
  struct mailbox mb;
  const char *err;
  size_t removed;

  conf_for_test(&c, CONF_LOCK_DEFAULT);
  if (mailbox_open(&mb, mbox_path, &c, &err) != MAILBOX_OK)
    _exit(3);
  for (size_t i = 0; i < mb.count; i++)
    if (del[i])
      mb.msgs[i].flags |= MAILBOX_MSG_DELETED;
  if (mb.ops->update(&mb, &removed, &err) != MAILBOX_OK)
    _exit(4);
  mailbox_close(&mb);
  _exit(0);
}

/* The session after a killed one: it breaks the dead session's dotlock (pid-check) and
 * so removes what it left.  Does the mailbox open? */
static bool next_session(void)
{
  struct conf c;
  struct mailbox mb;
  const char *err;

  conf_for_test(&c, CONF_LOCK_DEFAULT);
  c.lock_pid_check = true;
  if (mailbox_open(&mb, mbox_path, &c, &err) != MAILBOX_OK)
    return false;
  mailbox_close(&mb);
  return true;
}

static bool exists(const char *path)
{
  struct stat st;

  return lstat(path, &st) == 0;
}

/* What an interrupted update left goes at once when the next session breaks the dead
 * one's lock; what is not a leftover of this maildrop stays. */
static void test_leftovers(void)
{
  static const char *gone[] = { ".mbox.pop3d-Ab3dE9", ".mbox.pop3d-zzzzzz",
                                ".mbox.pop3d-index.0000abcd" };
  static const char *kept[] = { ".mbox.pop3d-Ab3dE", ".mbox.pop3d-Ab3dE9x",
                                ".mbox.pop3d-index.0000abcg", ".mbox.pop3d-index",
                                ".mbox2.pop3d-Ab3dE9", "mbox.pop3d-Ab3dE9" };
  char path[512], lock[300], target[300];
  struct conf c;
  struct mailbox mb;
  const char *err;
  size_t removed;
  int fd;

  conf_for_test(&c, CONF_LOCK_DEFAULT);
  write_file(mbox_path, "From a@b Mon Jan  1 00:00:00 2024\n\nx\n", 35);
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, gone[i]);
    write_file(path, "old", 3);
  }
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, kept[i]);
    write_file(path, "keep", 4);
  }
  /* Never followed nor removed: a symbolic link or a directory with a leftover's name. */
  snprintf(target, sizeof target, "%s/target", tmpdir);
  write_file(target, "t", 1);
  snprintf(path, sizeof path, "%s/.mbox.pop3d-Link01", tmpdir);
  ok(symlink(target, path) == 0, "leftovers: a symbolic link with a temporary's name");
  snprintf(path, sizeof path, "%s/.mbox.pop3d-Dir001", tmpdir);
  ok(mkdir(path, 0700) == 0, "leftovers: a directory with a temporary's name");

  /* A live holder's files are not leftovers: without a broken lock, young files stay;
   * but the one name an update gives its new maildrop before the rename is a dead
   * holder's whenever we hold the lock (a delivery agent may have removed its
   * dotlock): it goes at once. */
  snprintf(path, sizeof path, "%s/.mbox.pop3d-000000", tmpdir);
  write_file(path, "linked", 6);
  ok(next_session(), "leftovers: the next session opens");
  ok(!exists(path), "leftovers: the new maildrop a killed update named goes at once");
  is_int(count_leftovers(), 5, "leftovers: young files stay when no holder died");

  /* A dead holder's dotlock: broken at once (pid-check), and its files go. */
  snprintf(lock, sizeof lock, "%s.lock", mbox_path);
  fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
  ok(fd >= 0 && util_write_all(fd, "999999999\n", 10) == 0 && close(fd) == 0,
     "leftovers: a dead session's dotlock");
  ok(next_session(), "leftovers: the next session breaks it");
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, gone[i]);
    ok(!exists(path), "leftovers: %s removed", gone[i]);
  }
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, kept[i]);
    ok(exists(path), "leftovers: %s kept", kept[i]);
  }
  snprintf(path, sizeof path, "%s/.mbox.pop3d-Link01", tmpdir);
  ok(exists(path) && exists(target), "leftovers: the symbolic link and its target kept");
  snprintf(path, sizeof path, "%s/.mbox.pop3d-Dir001", tmpdir);
  ok(exists(path), "leftovers: the directory kept");
  ok(!exists(lock), "leftovers: the dotlock released");

  /* An update removes them too, holding the lock, whatever their age. */
  snprintf(path, sizeof path, "%s/%s", tmpdir, gone[0]);
  write_file(path, "old", 3);
  if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
    mb.msgs[0].flags |= MAILBOX_MSG_DELETED;
    ok(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 1,
       "leftovers: an update");
    mailbox_close(&mb);
  }
  ok(!exists(path), "leftovers: removed by the update");
  is_int(count_leftovers(), 2, "leftovers: the update left none of its own");

  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, kept[i]);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/.mbox.pop3d-Link01", tmpdir);
  unlink(path);
  snprintf(path, sizeof path, "%s/.mbox.pop3d-Dir001", tmpdir);
  rmdir(path);
  unlink(target);
}

static void test_crash(void)
{
  enum { N = 5000, ROUNDS = 200 };
  struct blocks bl;
  bool *del = calloc(N, sizeof *del);
  size_t olen, nlen, n_old = 0, n_new = 0, n_bad = 0, leftovers = 0, after_next = 0;
  size_t n_opened = 0;
  char *orig, *want;
  uint64_t t0, full_us;
  pid_t pid;
  int status;

  blocks_make(&bl, N, false);
  for (size_t i = 0; i < N; i++)
    del[i] = i % 3 == 0;
  orig = blocks_join(&bl, NULL, &olen);
  want = blocks_join(&bl, del, &nlen);

  /* How long does an uninterrupted run take? */
  write_file(mbox_path, orig, olen);
  remove_leftovers();
  t0 = util_now_ms();
  pid = fork();
  if (pid == 0)
    crash_child(del);
  waitpid(pid, &status, 0);
  full_us = (util_now_ms() - t0) * 1000 + 1000;
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && file_equals(mbox_path, want, nlen),
     "crash test: an uninterrupted run gives the new mailbox (%llu us)",
     (unsigned long long)full_us);

  for (unsigned r = 0; r < ROUNDS; r++) {
    useconds_t delay = (useconds_t)(full_us * r / (ROUNDS - ROUNDS / 5));
    write_file(mbox_path, orig, olen);
    remove_leftovers();
    pid = fork();
    if (pid == 0)
      crash_child(del);
    if (delay > 0)
      usleep(delay);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    if (file_equals(mbox_path, orig, olen))
      n_old++;
    else if (file_equals(mbox_path, want, nlen))
      n_new++;
    else
      n_bad++;
    leftovers += count_leftovers();
    /* The next session clears what the killed one left, at once. */
    if (next_session())
      n_opened++;
    after_next += count_leftovers();
  }
  is_int(n_bad, 0, "SIGKILL at %d delays: every mailbox old (%zu) or new (%zu)", ROUNDS,
         n_old, n_new);
  printf("# %zu temporary files left by killed updates\n", leftovers);
  is_int(n_opened, ROUNDS, "SIGKILL at %d delays: the next session opens every time",
         ROUNDS);
  is_int(after_next, 0, "SIGKILL at %d delays: no temporary file after the next session",
         ROUNDS);
  remove_leftovers();
  free(orig);
  free(want);
  free(del);
  blocks_free(&bl);
}

/* ---- locking ---- */

/* A child opens the mailbox with type and holds it until told to go. */
static pid_t hold_in_child(enum conf_lock_type type, int *go_fd)
{
  int ready[2], go[2];
  pid_t pid;
  char ch;

  if (pipe(ready) < 0 || pipe(go) < 0)
    exit(2);
  pid = fork();
  if (pid == 0) {
    struct conf c;
    struct mailbox mb;
    const char *err;
    close(ready[0]);
    close(go[1]);
    conf_for_test(&c, type);
    if (mailbox_open(&mb, mbox_path, &c, &err) != MAILBOX_OK)
      _exit(3);
    ch = 'r';
    if (write(ready[1], &ch, 1) != 1)
      _exit(4);
    if (read(go[0], &ch, 1) < 0)
      _exit(5);
    mailbox_close(&mb);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  if (read(ready[0], &ch, 1) != 1)
    ch = 0;
  close(ready[0]);
  *go_fd = go[1];
  return ch == 'r' ? pid : -1;
}

static void release_child(pid_t pid, int go_fd)
{
  int status;

  close(go_fd);
  waitpid(pid, &status, 0);
}

static void test_locking(void)
{
  static const struct { enum conf_lock_type type; const char *name; } types[] = {
    { CONF_LOCK_DEFAULT, "default" }, { CONF_LOCK_DOTLOCK, "dotlock" },
    { CONF_LOCK_KERNEL, "kernel" }, { CONF_LOCK_EXTERNAL, "external" },
  };
  static const char data[] = "From a\nS: 1\n\nx\n";
  char lockname[300];
  struct conf c;
  struct mailbox mb;
  const char *err;

  snprintf(lockname, sizeof lockname, "%s.lock", mbox_path);
  write_file(mbox_path, data, sizeof data - 1);
  remove_leftovers();
  for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
    int go;
    pid_t pid = hold_in_child(types[k].type, &go);
    enum mailbox_status st;
    uint64_t t0;
    ok(pid > 0, "%s: a first session holds the mailbox", types[k].name);
    if (pid <= 0)
      continue;
    conf_for_test(&c, types[k].type);
    t0 = util_now_ms();
    st = mailbox_open(&mb, mbox_path, &c, &err);
    is_int(st, MAILBOX_INUSE, "%s: a second open is refused as in use", types[k].name);
    ok(util_now_ms() - t0 < 1000, "%s: refused without waiting", types[k].name);
    if (st == MAILBOX_OK)
      mailbox_close(&mb);
    release_child(pid, go);
    st = mailbox_open(&mb, mbox_path, &c, &err);
    is_int(st, MAILBOX_OK, "%s: opens after the first session ends", types[k].name);
    if (st == MAILBOX_OK)
      mailbox_close(&mb);
    ok(access(lockname, F_OK) != 0, "%s: no dotlock left", types[k].name);
  }

  /* Retries: a holder that lets go during our retries. */
  {
    int go;
    pid_t pid = hold_in_child(CONF_LOCK_DEFAULT, &go);
    pid_t rel = fork();
    if (rel == 0) {
      usleep(300000);
      close(go);
      _exit(0);
    }
    close(go);
    conf_for_test(&c, CONF_LOCK_DEFAULT);
    c.lock_retry_count = 5;
    c.lock_retry_sleep = 1;
    is_int(mailbox_open(&mb, mbox_path, &c, &err), MAILBOX_OK,
           "retries get the lock once the holder lets go");
    mailbox_close(&mb);
    waitpid(rel, NULL, 0);
    waitpid(pid, NULL, 0);
  }

  /* A stale dotlock is removed; a fresh one is respected. */
  {
    struct timespec ts[2];
    conf_for_test(&c, CONF_LOCK_DEFAULT);
    write_file(lockname, "99999999\n", 9);
    is_int(mailbox_open(&mb, mbox_path, &c, &err), MAILBOX_INUSE, "fresh dotlock respected");
    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 1000;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    utimensat(AT_FDCWD, lockname, ts, 0);
    is_int(mailbox_open(&mb, mbox_path, &c, &err), MAILBOX_OK, "stale dotlock removed");
    mailbox_close(&mb);
    ok(access(lockname, F_OK) != 0, "no dotlock after close");

    /* pid-check: the lock of a dead process. */
    {
      pid_t dead = fork();
      char buf[32];
      if (dead == 0)
        _exit(0);
      waitpid(dead, NULL, 0);
      snprintf(buf, sizeof buf, "%ld\n", (long)dead);
      write_file(lockname, buf, strlen(buf));
      c.lock_pid_check = true;
      is_int(mailbox_open(&mb, mbox_path, &c, &err), MAILBOX_OK,
             "pid-check: dotlock of a dead process removed");
      mailbox_close(&mb);
      c.lock_pid_check = false;
    }

    /* A dotlock that is not ours any more is left alone at release. */
    if (mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK) {
      unlink(lockname);
      write_file(lockname, "1\n", 2);
      mailbox_close(&mb);
      ok(access(lockname, F_OK) == 0, "someone else's dotlock is not removed");
      unlink(lockname);
    }
  }

  /* Null locking: two sessions at once. */
  {
    struct mailbox a, b;
    conf_for_test(&c, CONF_LOCK_NULL);
    ok(mailbox_open(&a, mbox_path, &c, &err) == MAILBOX_OK &&
       mailbox_open(&b, mbox_path, &c, &err) == MAILBOX_OK, "null locking");
    mailbox_close(&a);
    mailbox_close(&b);
  }

  /* Directory not writable: fcntl only. */
  if (geteuid() != 0) {
    char sub[300], path[320];
    snprintf(sub, sizeof sub, "%s/ro", tmpdir);
    snprintf(path, sizeof path, "%s/mbox", sub);
    mkdir(sub, 0700);
    write_file(path, data, sizeof data - 1);
    chmod(sub, 0500);
    conf_for_test(&c, CONF_LOCK_DEFAULT);
    if (mailbox_open(&mb, path, &c, &err) == MAILBOX_OK) {
      char lk[340];
      struct flock fl;
      int fd = open(path, O_RDWR);
      snprintf(lk, sizeof lk, "%s.lock", path);
      ok(access(lk, F_OK) != 0, "unwritable directory: opens without a dotlock");
      /* A lock held by this process is reported by F_GETLK only to others: ask a child. */
      if (fork() == 0) {
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        _exit(fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 0 : 1);
      } else {
        int status;
        wait(&status);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "unwritable directory: fcntl lock held");
      }
      close(fd);
      mailbox_close(&mb);
    } else {
      ok(0, "unwritable directory: %s", err);
    }
    chmod(sub, 0700);
    unlink(path);
    rmdir(sub);
  }

  /* lock_touch refreshes an old dotlock. */
  {
    struct lock l;
    int fd = open(mbox_path, O_RDWR);
    struct stat st;
    conf_for_test(&c, CONF_LOCK_DOTLOCK);
    if (fd >= 0 && lock_acquire(&l, fd, mbox_path, &c, &err) == LOCK_OK) {
      struct timespec ts[2];
      ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 500;
      ts[0].tv_nsec = ts[1].tv_nsec = 0;
      utimensat(AT_FDCWD, lockname, ts, 0);
      l.touched -= PARAMS_LOCK_TOUCH_INTERVAL + 1;
      lock_touch(&l);
      ok(stat(lockname, &st) == 0 && time(NULL) - st.st_mtime < 100, "lock_touch");
      lock_release(&l);
      ok(access(lockname, F_OK) != 0, "lock_release removes the dotlock");
    } else {
      ok(0, "lock_acquire: %s", err);
    }
    if (fd >= 0)
      close(fd);
  }
}

static void test_refusals(void)
{
  static const char data[] = "From a\nS: 1\n\nx\n";
  char path[300], target[300];
  struct conf c;
  struct mailbox mb;
  const char *err;

  conf_for_test(&c, CONF_LOCK_DEFAULT);
  snprintf(target, sizeof target, "%s/target", tmpdir);
  write_file(target, data, sizeof data - 1);

  snprintf(path, sizeof path, "%s/link", tmpdir);
  ok(symlink(target, path) == 0, "make a symlink");
  is_int(mailbox_open(&mb, path, &c, &err), MAILBOX_PERM, "symlink refused");
  unlink(path);

  snprintf(path, sizeof path, "%s/fifo", tmpdir);
  mkfifo(path, 0600);
  is_int(mailbox_open(&mb, path, &c, &err), MAILBOX_PERM, "FIFO refused");
  unlink(path);

  snprintf(path, sizeof path, "%s/dir", tmpdir);
  mkdir(path, 0700);
  is_int(mailbox_open(&mb, path, &c, &err), MAILBOX_PERM, "directory refused");
  rmdir(path);

  snprintf(path, sizeof path, "%s/hard", tmpdir);
  ok(link(target, path) == 0, "make a hard link");
  is_int(mailbox_open(&mb, path, &c, &err), MAILBOX_PERM, "hard-linked mailbox refused");
  unlink(path);

  if (geteuid() == 0) {
    ok(chown(target, 65534, 65534) == 0, "give the mailbox to another user");
    is_int(mailbox_open(&mb, target, &c, &err), MAILBOX_PERM,
           "mailbox of another user refused");
    ok(chown(target, 0, 0) == 0, "take it back");
  }

  snprintf(path, sizeof path, "%s/missing", tmpdir);
  if (mailbox_open(&mb, path, &c, &err) == MAILBOX_OK) {
    size_t removed;
    ok(mb.count == 0 && mb.total_size == 0, "missing mailbox is empty");
    ok(mb.ops->check(&mb, &err) == MAILBOX_OK &&
       mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 0,
       "missing mailbox: check and update");
    mailbox_close(&mb);
    ok(access(path, F_OK) != 0, "missing mailbox not created");
  } else {
    ok(0, "missing mailbox opens: %s", err);
  }
  unlink(target);
}

static void test_urls(void)
{
  static const struct {
    const char *spool, *pattern, *type, *user, *home, *want;
  } cases[] = {
    { "/var/mail", NULL, NULL, "joe", NULL, "mbox:/var/mail/joe" },
    { "/var/mail/", NULL, NULL, "joe", NULL, "mbox:/var/mail/joe" },
    { NULL, NULL, NULL, "joe", NULL, "mbox:/var/mail/joe" },
    { "mbox:/var/spool/mail", NULL, NULL, "joe", NULL, "mbox:/var/spool/mail/joe" },
    { "/srv/mail", NULL, "maildir", "joe", NULL, "maildir:/srv/mail/joe" },
    { NULL, "${home}/Mail/inbox", NULL, "joe", "/home/joe", "mbox:/home/joe/Mail/inbox" },
    { NULL, "/var/vmail/${domain}/${user}", NULL, "joe@ex.org", NULL,
      "mbox:/var/vmail/ex.org/joe@ex.org" },
    { NULL, "/var/vmail/${domain}/$user", NULL, "joe", NULL, "mbox:/var/vmail//joe" },
    { NULL, "maildir:/x/${user}", "mbox", "joe", NULL, "maildir:/x/joe" },
    { NULL, "/x/${user}", NULL, "../x", NULL, NULL },
    { NULL, "/x/${user}", NULL, "a/b", NULL, NULL },
    { NULL, "/x/${user}", NULL, ".hidden", NULL, NULL },
    { NULL, "/x/${user}", NULL, "", NULL, NULL },
    { "/var/mail", NULL, NULL, "..", NULL, NULL },
    { NULL, "/x/${domain}/y", NULL, "joe@..", NULL, NULL },
    { NULL, "${home}/mbox", NULL, "joe", "/home/../etc", NULL },
    { NULL, "${home}/mbox", NULL, "joe", NULL, NULL },
    { NULL, "/x/${foo}", NULL, "joe", NULL, NULL },
    { NULL, "/x/${user", NULL, "joe", NULL, NULL },
  };
  struct conf c;

  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const char *err = NULL;
    char *url;
    memset(&c, 0, sizeof c);
    c.mail_spool = (char *)cases[k].spool;
    c.mailbox_pattern = (char *)cases[k].pattern;
    c.mailbox_type = (char *)cases[k].type;
    url = mailbox_url_for(&c, cases[k].user, cases[k].home, &err);
    is_str(url, cases[k].want, "url %zu (%s)", k, url ? "ok" : err);
    free(url);
  }
}

static void test_open_urls(void)
{
  static const char data[] = "From a\nS: 1\n\nx\n";
  static const struct { const char *fmt; enum mailbox_status want; } cases[] = {
    { "%s", MAILBOX_OK }, { "mbox:%s", MAILBOX_OK }, { "mbox://%s", MAILBOX_OK },
    { "file:%s", MAILBOX_OK }, { "MBOX:%s", MAILBOX_OK },
    { "maildir:%s", MAILBOX_PERM }, { "mh:%s", MAILBOX_PERM },
    { "imap://host%s", MAILBOX_PERM }, { "mbox://host%s", MAILBOX_PERM },
    { "relative", MAILBOX_PERM }, { "mbox:relative", MAILBOX_PERM },
    { "%s/../x", MAILBOX_PERM },
  };
  struct conf c;

  conf_for_test(&c, CONF_LOCK_DEFAULT);
  write_file(mbox_path, data, sizeof data - 1);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char url[400];
    struct mailbox mb;
    const char *err = NULL;
    enum mailbox_status st;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(url, sizeof url, cases[k].fmt, mbox_path);
#pragma GCC diagnostic pop
    st = mailbox_open(&mb, url, &c, &err);
    is_int(st, cases[k].want, "open %s (%s)", url, st ? err : "ok");
    if (st == MAILBOX_OK) {
      ok(mb.count == 1, "open %s: one message", url);
      mailbox_close(&mb);
    }
  }
  {
    struct mailbox mb;
    const char *err;
    ok(mailbox_open(&mb, "imap://x/y", &c, &err) == MAILBOX_PERM, "failed open");
    mailbox_close(&mb);   /* a failed open leaves a mailbox that can be closed */
    ok(1, "close after failed open");
  }
}

int main(void)
{
  char cmd[300];

  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(mbox_path, sizeof mbox_path, "%s/mbox", tmpdir);
  test_urls();
  test_open_urls();
  test_parse();
  test_size_literals();
  test_hostile();
  test_update();
  test_locking();
  test_refusals();
  test_leftovers();
  test_crash();
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", tmpdir);
  return tap_done();
}
