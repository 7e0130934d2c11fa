/* fuzz_maildir.c - what pop3d reads of Maildir and MH maildrops, on arbitrary bytes.
 *
 * The first byte picks the target, the rest is its input:
 *  0  the header scan of a message file (size rule, lines, X-UIDL, expiry marks), from a
 *     buffer and from a file, whole and header only;
 *  1  a Maildir holding one message whose file name (the first line after two bytes of
 *     options, made a legal file name) and content come from the input: names with
 *     Dovecot's S=/W= fields, info and flags; opened twice (the second time from the
 *     index), then with a second message RETR'd and DELE'd through update, and opened
 *     again with and without the index;
 *  2  an MH folder whose .mh_sequences and message come from the input, updated with
 *     deletions and seen messages; and the sequence rewriter directly;
 *  3  the index loader: an index image whose records and keys are the input (its
 *     checksum made right, so that every other check is reached).
 * Sizes and lines must match the size rule done the slow way, ids must be valid and
 * unique, and the listings with and without the index must agree.  GPL-3.0-or-later. */
#include <config.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"
#include "mailbox.h"
#include "mailbox_file.h"
#include "maildir_index.h"
#include "params.h"
#include "uidl.h"

static const char *fuzz_dir;

/* The size rule (mboxrd off), the slow way. */
static uint64_t ref_size(const uint8_t *m, size_t len, uint64_t *lines_r)
{
  uint64_t out = 0, lines = 0;
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
    out += e - s;
    if (lf) {
      out += (e > s && m[e - 1] == '\r') ? 1 : 2;
      lines++;
    } else if (e > s) {
      out += 2;
      lines++;
    }
  }
  *lines_r = lines;
  return out;
}

static void check_info(const struct mailbox_file_info *fi, const uint8_t *data, size_t len)
{
  uint64_t lines, size = ref_size(data, len, &lines);

  CHECK(fi->size == size && fi->lines == lines);
  CHECK(fi->xuidl_len <= PARAMS_UIDL_MAX);
  if (fi->xuidl_len > 0)
    CHECK(uidl_valid(fi->xuidl, fi->xuidl_len) && strlen(fi->xuidl) == fi->xuidl_len);
  CHECK(uidl_valid(fi->hash_id, strlen(fi->hash_id)));
  CHECK(fi->nmarks <= MAILBOX_FILE_MARKS_MAX);
}

static void fuzz_scan(const uint8_t *data, size_t len)
{
  struct mailbox_file_info fi, ff, fh;
  char path[600];
  const char *err;
  int fd;

  mailbox_file_scan_buffer((const char *)data, len, &fi);
  check_info(&fi, data, len);
  snprintf(path, sizeof path, "%s/msg", fuzz_dir);
  fuzz_write_file(path, data, len);
  fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  CHECK(mailbox_file_scan(fd, (off_t)len, false, &ff, &err) == 0);
  CHECK(fi.size == ff.size && fi.lines == ff.lines && fi.xuidl_len == ff.xuidl_len &&
        strcmp(fi.xuidl, ff.xuidl) == 0 && strcmp(fi.hash_id, ff.hash_id) == 0 &&
        fi.nmarks == ff.nmarks && fi.header_done == ff.header_done);
  CHECK(mailbox_file_scan(fd, (off_t)len, true, &fh, &err) == 0);
  CHECK(fh.size <= fi.size && fh.lines <= fi.lines && fh.xuidl_len == fi.xuidl_len &&
        fh.nmarks == fi.nmarks);
  CHECK(mailbox_file_scan(fd, (off_t)len + 1, false, &ff, &err) < 0);
  close(fd);
  unlink(path);
}

/* Every message's numbers as a string; checks ids are valid and unique. */
static char *listing(const struct mailbox *mb)
{
  size_t cap = 64 + mb->count * 160;
  char *out = malloc(cap), *p = out;

  CHECK(out != NULL);
  fuzz_check_ids(mb);
  p += snprintf(p, cap, "%zu %llu|", mb->count, (unsigned long long)mb->total_size);
  for (size_t i = 0; i < mb->count; i++) {
    const char *id = mailbox_uid(mb, i);
    p += snprintf(p, cap - (size_t)(p - out), "%s %llu %u %u %u|", id,
                  (unsigned long long)mb->msgs[i].size, (unsigned)mb->msgs[i].lines,
                  (unsigned)mb->msgs[i].flags, (unsigned)mb->msgs[i].expire_mark);
  }
  return out;
}

/* A legal file name from the input's first line: no '/', no NUL, not a dot name,
 * within the name limit. */
static size_t make_name(const uint8_t *data, size_t len, char *name, size_t *used)
{
  size_t n = 0, i = 0;

  for (; i < len && data[i] != '\n' && n < 200; i++)
    name[n++] = (data[i] == '/' || data[i] == '\0') ? '_' : (char)data[i];
  *used = i < len ? i + 1 : i;
  if (n == 0 || name[0] == '.')
    name[0] = 'm', n = n ? n : 1;
  name[n] = '\0';
  return n;
}

static void fuzz_maildir(const uint8_t *data, size_t len)
{
  char dir[300], p[600], url[400], name[256], ipath[400], kept[PARAMS_UIDL_MAX + 1];
  size_t used, removed, blen;
  struct conf c;
  struct mailbox mb;
  const char *err;
  char *first, *again;
  bool in_cur = len > 0 && (data[0] & 1), scan_lines = len > 1 && (data[1] & 1);
  size_t skip = len < 2 ? len : 2;

  /* Two bytes of options, then the name's line and the content. */
  data += skip;
  len -= skip;
  make_name(data, len, name, &used);
  blen = strcspn(name, ":");
  snprintf(dir, sizeof dir, "%s/Maildir", fuzz_dir);
  snprintf(url, sizeof url, "maildir:%s", dir);
  snprintf(ipath, sizeof ipath, "%s/" MAILDIR_INDEX_NAME, dir);
  CHECK(mkdir(dir, 0700) == 0);
  snprintf(p, sizeof p, "%s/cur", dir);
  CHECK(mkdir(p, 0700) == 0);
  snprintf(p, sizeof p, "%s/new", dir);
  CHECK(mkdir(p, 0700) == 0);
  snprintf(p, sizeof p, "%s/%s/%s", dir, in_cur ? "cur" : "new", name);
  fuzz_write_file(p, data + used, len - used);

  memset(&c, 0, sizeof c);
  c.lock_type = CONF_LOCK_NULL;
  c.scan_lines = scan_lines;
  CHECK(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK);
  CHECK(mb.count == 1);
  first = listing(&mb);
  CHECK(mb.msgs[0].end == (off_t)(len - used));
  CHECK(mb.msgs[0].size >= (uint64_t)mb.msgs[0].end &&
        mb.msgs[0].size <= 2 * (uint64_t)mb.msgs[0].end + 2);
  /* Dovecot's W= is taken as the size when S= is the file's: exact only for names
   * Dovecot wrote. */
  if (c.scan_lines || memmem(name, blen, ",W=", 3) == NULL) {
    uint64_t lines;
    CHECK(mb.msgs[0].size == ref_size(data + used, len - used, &lines));
    CHECK(mb.msgs[0].lines == lines);
  }
  mailbox_close(&mb);

  /* From the index: the same. */
  CHECK(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK);
  again = listing(&mb);
  CHECK(strcmp(first, again) == 0);
  free(again);
  mailbox_close(&mb);

  /* A second message, its X-UIDL the name: duplicates and odd ids; then RETR of one
   * (a move to cur/ with the S flag) and DELE of the other. */
  snprintf(p, sizeof p, "%s/new/1700000000.M1P1.host", dir);
  if (access(p, F_OK) == 0)   /* the input's message has that name: not a second one */
    snprintf(p, sizeof p, "%s/new/1700000000.M2P2.host", dir);
  {
    char m[400];
    int n = snprintf(m, sizeof m, "X-UIDL: %s\nSubject: x\n\nbody\n", name);
    fuzz_write_file(p, m, (size_t)n);
  }
  CHECK(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK);
  CHECK(mb.count == 2);
  free(listing(&mb));
  snprintf(kept, sizeof kept, "%s", mailbox_uid(&mb, 0));
  mb.msgs[0].flags |= MAILBOX_MSG_RETRIEVED;
  mb.msgs[1].flags |= MAILBOX_MSG_DELETED;
  CHECK(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 1);
  mailbox_close(&mb);

  /* The message left keeps its id, its twin gone or not (ids never change); without
   * the index its id is derived again. */
  CHECK(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK);
  CHECK(mb.count == 1 && strcmp(mailbox_uid(&mb, 0), kept) == 0);
  again = listing(&mb);
  mailbox_close(&mb);
  unlink(ipath);
  CHECK(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK);
  CHECK(mb.count == 1);
  mailbox_close(&mb);
  free(again);
  free(first);
  fuzz_rm_rf(dir);
}

static void fuzz_mh(const uint8_t *data, size_t len)
{
  char dir[300], p[600], url[400];
  uint32_t del[8], seen[8];
  size_t ndel = 0, nseen = 0, olen, removed;
  struct conf c;
  struct mailbox mb;
  const char *err;
  char *out;

  /* The rewriter alone, with numbers from the input. */
  for (size_t i = 0; i < len && i < 8; i++) {
    if (data[i] & 1)
      del[ndel++] = (uint32_t)data[i] % 16 + 1;
    else
      seen[nseen++] = (uint32_t)data[i] % 16 + 1;
  }
  for (size_t i = 1; i < ndel; i++)
    for (size_t j = i; j > 0 && del[j - 1] > del[j]; j--) {
      uint32_t t = del[j];
      del[j] = del[j - 1];
      del[j - 1] = t;
    }
  out = mailbox_mh_sequences_rewrite((const char *)data, len, del, ndel, seen, nseen, &olen);
  if (out != NULL) {
    CHECK(strlen(out) <= olen);
    free(out);
  }

  /* A folder: messages 1 to 3, the input as .mh_sequences and as message 2. */
  snprintf(dir, sizeof dir, "%s/inbox", fuzz_dir);
  snprintf(url, sizeof url, "mh:%s", dir);
  CHECK(mkdir(dir, 0700) == 0);
  snprintf(p, sizeof p, "%s/.mh_sequences", dir);
  fuzz_write_file(p, data, len);
  for (int k = 1; k <= 3; k++) {
    snprintf(p, sizeof p, "%s/%d", dir, k);
    if (k == 2)
      fuzz_write_file(p, data, len);
    else
      fuzz_write_file(p, "Subject: x\n\nbody\n", 17);
  }
  memset(&c, 0, sizeof c);
  c.lock_type = CONF_LOCK_NULL;
  CHECK(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK);
  CHECK(mb.count == 3);
  {
    uint64_t lines;
    CHECK(mb.msgs[1].size == ref_size(data, len, &lines) && mb.msgs[1].lines == lines);
    free(listing(&mb));
  }
  mb.msgs[0].flags |= MAILBOX_MSG_DELETED;
  mb.msgs[1].flags |= MAILBOX_MSG_RETRIEVED;
  CHECK(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK && removed == 1);
  mailbox_close(&mb);
  CHECK(mailbox_open(&mb, url, &c, &err) == MAILBOX_OK);
  CHECK(mb.count == 2);
  free(listing(&mb));
  mailbox_close(&mb);
  fuzz_rm_rf(dir);
}

static void fuzz_index(const uint8_t *data, size_t len)
{
  const int64_t now = 1800000000;
  enum maildir_index_kind kind = len > 0 && (data[0] & 1) ? MAILDIR_INDEX_MH
                                                            : MAILDIR_INDEX_MAILDIR;
  struct maildir_index_builder b;
  struct maildir_index *ix;
  struct stat d;
  size_t n = len > 1 ? data[1] % 6 : 0, ilen, from;
  uint8_t *img;

  memset(&d, 0, sizeof d);
  d.st_dev = 7;
  d.st_ino = 77;
  /* A valid image with n entries, then its bytes from the input (the records and keys,
   * or with the low bit of data[0] clear also the header), the checksum made right. */
  maildir_index_builder_init(&b);
  for (size_t i = 0; i < n; i++) {
    struct maildir_index_entry e;
    char key[16];
    memset(&e, 0, sizeof e);
    snprintf(key, sizeof key, "%zu", i + 1);
    e.key = key;
    e.key_len = strlen(key);
    e.ino = i;
    e.fsize = 10;
    e.size = 12;
    e.lines = 2;
    e.id = "some-id";
    e.id_len = kind == MAILDIR_INDEX_MH ? 7 : 0;
    e.flags = MAILDIR_INDEX_LINES_EXACT;
    CHECK(maildir_index_add(&b, &e));
  }
  img = maildir_index_image(&b, kind, &d, now, &ilen);
  maildir_index_builder_free(&b);
  from = len > 0 && (data[0] & 2) ? 8 : MAILDIR_INDEX_HEADER_SIZE;
  for (size_t i = 2; i < len && from + i - 2 < ilen; i++)
    img[from + i - 2] = data[i];
  maildir_index_seal(img, ilen);
  ix = maildir_index_parse(img, ilen, kind, &d, now);
  for (size_t i = 0; i < maildir_index_count(ix); i++) {
    struct maildir_index_entry e, f;
    CHECK(maildir_index_entry_at(ix, i, &e));
    CHECK(e.key_len > 0 && e.key_len <= PARAMS_MAILDIR_NAME_MAX && e.id_len <= PARAMS_UIDL_MAX);
    CHECK(memchr(e.key, '/', e.key_len) == NULL);
    CHECK(e.size >= e.fsize && e.size <= 2 * e.fsize + 2 && e.lines <= e.fsize + 1);
    if (e.id_len > 0)
      CHECK(uidl_valid(e.id, e.id_len));
    if (maildir_index_find(ix, e.key, e.key_len, e.ino, &f))
      CHECK(f.key_len == e.key_len && memcmp(f.key, e.key, e.key_len) == 0 && f.ino == e.ino &&
            (f.future_mark == 0 || f.future_mark > now));
  }
  maildir_index_free(ix);
  /* The raw input as an image: refused unless it carries its own right checksum. */
  ix = maildir_index_parse(data, len, kind, &d, now);
  maildir_index_free(ix);
  free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static bool ready;

  if (!ready) {
    fuzz_dir = fuzz_tmpdir();
    umask(077);
    ready = true;
  }
  if (size == 0)
    return 0;
  switch (data[0] % 4) {
  case 0:
    fuzz_scan(data + 1, size - 1);
    break;
  case 1:
    fuzz_maildir(data + 1, size - 1);
    break;
  case 2:
    fuzz_mh(data + 1, size - 1);
    break;
  default:
    fuzz_index(data + 1, size - 1);
    break;
  }
  return 0;
}
