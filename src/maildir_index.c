/* maildir_index.c - the on-disk index of a Maildir or MH folder (see maildir_index.h).
 *
 * Layout (host byte order: the index never leaves the host that wrote it):
 *   header   struct mdx_header, its checksum the last field
 *   records  count x struct mdx_rec
 *   arena    the keys and ids the records point into (not NUL-terminated)
 * The checksum covers everything but itself.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox.h"
#include "mailbox_file.h"
#include "maildir_index.h"
#include "params.h"
#include "uidl.h"

#define MDX_MAGIC "P3MDIDX\n"
#define MDX_VERSION 1u
#define MDX_FLAGS (MAILDIR_INDEX_XUIDL | MAILDIR_INDEX_LINES_EXACT)

struct mdx_header {
  char magic[8];
  uint32_t version;
  uint32_t kind;
  uint32_t rec_size;
  uint32_t pad;
  uint64_t dev, ino;       /* the directory */
  int64_t scan_time;
  uint64_t count;
  uint64_t arena_len;
  uint64_t checksum;
};

struct mdx_rec {
  uint64_t ino, fsize, size;
  int64_t ctime_sec, ctime_nsec;
  uint32_t lines, flags, expire_mark, future_mark;
  uint32_t key_off, key_len, id_off, id_len;
};

_Static_assert(sizeof(struct mdx_header) == MAILDIR_INDEX_HEADER_SIZE, "header layout");
_Static_assert(sizeof(struct mdx_rec) % 8 == 0, "records keep 8-byte alignment");

/* The most an index can hold: every message at its longest name and id. */
#define MDX_ARENA_MAX ((uint64_t)PARAMS_MAILBOX_MESSAGES_MAX * \
                       (PARAMS_MAILDIR_NAME_MAX + PARAMS_UIDL_MAX))

struct maildir_index {
  const struct mdx_rec *recs;
  const char *arena;
  size_t count;
  size_t key_bytes;        /* sum of the keys' lengths plus one each */
  uint32_t *table;         /* open addressing: record index + 1, 0 = empty; built at
                            * the first lookup that the next record does not answer */
  size_t mask;
  size_t next;             /* the record after the last one found */
  int64_t now;
  void *image;             /* owned copy of the file, or NULL */
  size_t image_len;
  bool mapped;             /* image is an anonymous mapping (else malloc'd) */
};

struct maildir_index_stats maildir_index_stats;

#ifdef MAP_POPULATE
#define MDX_POPULATE MAP_POPULATE
#else
#define MDX_POPULATE 0
#endif

/* Four independent lanes so that the multiplies overlap: the checksum of a 50,000
 * message index costs about a millisecond. */
static uint64_t mdx_mix(uint64_t h, uint64_t w)
{
  h = (h ^ w) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

static uint64_t mdx_hash(uint64_t seed, const void *data, size_t len)
{
  const unsigned char *p = data;
  uint64_t a = seed, b = seed ^ 0xbf58476d1ce4e5b9ull, c = seed ^ 0x94d049bb133111ebull,
           d = seed ^ 0x2545f4914f6cdd1dull;

  for (; len >= 32; p += 32, len -= 32) {
    uint64_t w[4];
    memcpy(w, p, 32);
    a = mdx_mix(a, w[0]);
    b = mdx_mix(b, w[1]);
    c = mdx_mix(c, w[2]);
    d = mdx_mix(d, w[3]);
  }
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    a = mdx_mix(a, w);
  }
  for (; len > 0; p++, len--)
    b = mdx_mix(b, *p);
  return mdx_mix(mdx_mix(mdx_mix(a, b), c), d);
}

static uint64_t mdx_checksum(const struct mdx_header *h, const void *body, size_t blen)
{
  uint64_t x = mdx_hash(0x6a09e667f3bcc908ull, h, offsetof(struct mdx_header, checksum));
  return mdx_hash(x, body, blen);
}

static uint64_t key_hash(const char *key, size_t len, uint64_t ino)
{
  return mdx_mix(mdx_hash(0x510e527fade682d1ull, key, len), ino);
}

/* Is this a key the backend could have written?  Names never hold NUL or '/'; a
 * Maildir base name has no ':' and does not start with '.'; an MH key is a number. */
static bool key_ok(const char *k, size_t len, enum maildir_index_kind kind)
{
  if (len == 0 || len > PARAMS_MAILDIR_NAME_MAX)
    return false;
  if (kind == MAILDIR_INDEX_MH) {
    if (len > 10 || k[0] < '1' || k[0] > '9')
      return false;
    for (size_t i = 0; i < len; i++)
      if (k[i] < '0' || k[i] > '9')
        return false;
    return true;
  }
  if (k[0] == '.')
    return false;
  for (size_t i = 0; i < len; i++)
    if (k[i] == '\0' || k[i] == '/' || k[i] == ':')
      return false;
  return true;
}

/* Every field of a record within the bounds the scan can produce. */
static bool rec_ok(const struct mdx_rec *r, const char *arena, uint64_t alen,
                   enum maildir_index_kind kind)
{
  if ((uint64_t)r->key_off + r->key_len > alen || (uint64_t)r->id_off + r->id_len > alen ||
      !key_ok(arena + r->key_off, r->key_len, kind))
    return false;
  if ((r->flags & ~MDX_FLAGS) != 0 || r->id_len > PARAMS_UIDL_MAX ||
      (r->id_len > 0 && !uidl_valid(arena + r->id_off, r->id_len)))
    return false;
  /* A Maildir entry's id is its X-UIDL; an MH entry always has one. */
  if (kind == MAILDIR_INDEX_MAILDIR &&
      ((r->flags & MAILDIR_INDEX_XUIDL) != 0) != (r->id_len > 0))
    return false;
  if (kind == MAILDIR_INDEX_MH) {
    if (r->id_len == 0 || !(r->flags & MAILDIR_INDEX_LINES_EXACT) || r->ctime_nsec < 0 ||
        r->ctime_nsec >= 1000000000)
      return false;
  } else if (r->ctime_sec != 0 || r->ctime_nsec != 0) {
    return false;
  }
  /* The size rule: each byte once, at most a CR a line and CRLF after the last. */
  if (r->fsize > (uint64_t)INT64_MAX || r->size < r->fsize ||
      r->size > 2 * r->fsize + 2 || (r->fsize == 0) != (r->size == 0) ||
      (uint64_t)r->lines > r->fsize + 1)
    return false;
  if (r->expire_mark != 0 && r->future_mark != 0 && r->future_mark <= r->expire_mark)
    return false;
  return true;
}

static struct maildir_index *mdx_build(const void *data, size_t len,
                                       enum maildir_index_kind kind,
                                       const struct stat *dir_st, int64_t now)
{
  struct mdx_header h;
  struct maildir_index *ix;
  const char *body;
  size_t blen, count;

  if (len < sizeof h)
    return NULL;
  memcpy(&h, data, sizeof h);
  if (memcmp(h.magic, MDX_MAGIC, 8) != 0 || h.version != MDX_VERSION ||
      h.kind != (uint32_t)kind || h.rec_size != sizeof(struct mdx_rec) || h.pad != 0 ||
      h.dev != (uint64_t)dir_st->st_dev || h.ino != (uint64_t)dir_st->st_ino ||
      h.scan_time > now || h.scan_time <= 0 || h.count > PARAMS_MAILBOX_MESSAGES_MAX ||
      h.arena_len > MDX_ARENA_MAX ||
      h.count * sizeof(struct mdx_rec) + h.arena_len != (uint64_t)(len - sizeof h))
    return NULL;
  body = (const char *)data + sizeof h;
  blen = len - sizeof h;
  if (mdx_checksum(&h, body, blen) != h.checksum)
    return NULL;
  count = (size_t)h.count;
  /* Records are 8-byte aligned in the image (the header is 72 bytes). */
  ix = util_xcalloc(1, sizeof *ix);
  ix->recs = (const void *)body;
  ix->arena = body + count * sizeof(struct mdx_rec);
  ix->count = count;
  ix->now = now;
  for (size_t i = 0; i < count; i++) {
    const struct mdx_rec *r = &ix->recs[i];
    if (!rec_ok(r, ix->arena, h.arena_len, kind)) {
      maildir_index_free(ix);
      return NULL;
    }
    ix->key_bytes += (size_t)r->key_len + 1;
  }
  return ix;
}

static void mdx_table(struct maildir_index *ix)
{
  size_t tsize = 4;

  while (tsize < 2 * ix->count)
    tsize *= 2;
  ix->table = util_xcalloc(tsize, sizeof *ix->table);
  ix->mask = tsize - 1;
  for (size_t i = 0; i < ix->count; i++) {
    const struct mdx_rec *r = &ix->recs[i];
    size_t slot = (size_t)key_hash(ix->arena + r->key_off, r->key_len, r->ino) & ix->mask;
    while (ix->table[slot] != 0)
      slot = (slot + 1) & ix->mask;
    ix->table[slot] = (uint32_t)i + 1;
  }
}

static bool rec_is(const struct maildir_index *ix, const struct mdx_rec *r, const char *key,
                   size_t key_len, uint64_t ino)
{
  return r->ino == ino && r->key_len == key_len &&
         memcmp(ix->arena + r->key_off, key, key_len) == 0;
}

struct maildir_index *maildir_index_parse(const void *data, size_t len,
                                          enum maildir_index_kind kind,
                                          const struct stat *dir_st, int64_t now)
{
  void *copy;
  struct maildir_index *ix;

  /* A private, aligned copy: the records are read in place. */
  copy = util_xmalloc(len ? len : 1);
  if (len > 0)
    memcpy(copy, data, len);
  ix = mdx_build(copy, len, kind, dir_st, now);
  if (ix == NULL) {
    free(copy);
    return NULL;
  }
  ix->image = copy;
  return ix;
}

struct maildir_index *maildir_index_load(int dirfd, const char *name,
                                         enum maildir_index_kind kind,
                                         const struct stat *dir_st, int64_t now)
{
  struct maildir_index *ix = NULL;
  struct stat st;
  void *image = MAP_FAILED;
  size_t len = 0;
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

  if (fd < 0) {
    if (errno != ENOENT)
      maildir_index_stats.rejects++;   /* a symbolic link, or not readable */
    return NULL;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      st.st_nlink != 1 || (uint64_t)st.st_size < sizeof(struct mdx_header) ||
      (uint64_t)st.st_size > sizeof(struct mdx_header) +
                                 PARAMS_MAILBOX_MESSAGES_MAX * sizeof(struct mdx_rec) +
                                 MDX_ARENA_MAX ||
      (uint64_t)st.st_size > SIZE_MAX)
    goto out;
  /* A copy, not a mapping of the file (which another program could truncate under
   * us); memory populated in one call: page faults one page at a time would cost more
   * than the read itself. */
  len = (size_t)st.st_size;
  image = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MDX_POPULATE,
               -1, 0);
  if (image == MAP_FAILED || util_pread_all(fd, image, len, 0) < 0)
    goto out;
  ix = mdx_build(image, len, kind, dir_st, now);
  if (ix != NULL) {
    ix->image = image;
    ix->image_len = len;
    ix->mapped = true;
    image = MAP_FAILED;
  }
out:
  if (image != MAP_FAILED)
    munmap(image, len);
  close(fd);
  if (ix != NULL)
    maildir_index_stats.loads++;
  else
    maildir_index_stats.rejects++;
  return ix;
}

static void rec_entry(const struct maildir_index *ix, const struct mdx_rec *r,
                      struct maildir_index_entry *e)
{
  e->key = ix->arena + r->key_off;
  e->key_len = r->key_len;
  e->ino = r->ino;
  e->fsize = r->fsize;
  e->size = r->size;
  e->ctime_sec = r->ctime_sec;
  e->ctime_nsec = r->ctime_nsec;
  e->lines = r->lines;
  e->flags = r->flags;
  e->expire_mark = r->expire_mark;
  e->future_mark = r->future_mark;
  e->id = ix->arena + r->id_off;
  e->id_len = r->id_len;
}

bool maildir_index_entry_at(const struct maildir_index *ix, size_t i,
                            struct maildir_index_entry *e)
{
  if (ix == NULL || i >= ix->count)
    return false;
  rec_entry(ix, &ix->recs[i], e);
  return true;
}

void maildir_index_seal(void *image, size_t len)
{
  struct mdx_header h;

  if (len < sizeof h)
    return;
  memcpy(&h, image, sizeof h);
  h.checksum = mdx_checksum(&h, (const char *)image + sizeof h, len - sizeof h);
  memcpy(image, &h, sizeof h);
}

bool maildir_index_find(struct maildir_index *ix, const char *key, size_t key_len,
                        uint64_t ino, struct maildir_index_entry *e)
{
  const struct mdx_rec *r = NULL;

  if (ix == NULL || ix->count == 0)
    return false;
  /* Lookups come in delivery order, the order the index was written in: the record
   * after the last one found is usually the one, without hashing. */
  if (ix->next < ix->count && rec_is(ix, &ix->recs[ix->next], key, key_len, ino))
    r = &ix->recs[ix->next];
  if (r == NULL) {
    size_t slot;
    if (ix->table == NULL)
      mdx_table(ix);
    slot = (size_t)key_hash(key, key_len, ino) & ix->mask;
    for (uint32_t k; (k = ix->table[slot]) != 0; slot = (slot + 1) & ix->mask)
      if (rec_is(ix, &ix->recs[k - 1], key, key_len, ino)) {
        r = &ix->recs[k - 1];
        break;
      }
    if (r == NULL)
      return false;
  }
  ix->next = (size_t)(r - ix->recs) + 1;
  if (r->future_mark != 0 && ix->now >= (int64_t)r->future_mark)
    return false;
  rec_entry(ix, r, e);
  return true;
}

size_t maildir_index_count(const struct maildir_index *ix)
{
  return ix != NULL ? ix->count : 0;
}

size_t maildir_index_key_bytes(const struct maildir_index *ix)
{
  return ix != NULL ? ix->key_bytes : 0;
}

void maildir_index_free(struct maildir_index *ix)
{
  if (ix == NULL)
    return;
  free(ix->table);
  if (ix->mapped)
    munmap(ix->image, ix->image_len);
  else
    free(ix->image);
  free(ix);
}

void maildir_index_builder_init(struct maildir_index_builder *b)
{
  memset(b, 0, sizeof *b);
}

static uint32_t arena_add(struct maildir_index_builder *b, const char *s, size_t len)
{
  uint32_t off = (uint32_t)b->arena_len;

  if (b->arena_len + len > b->arena_cap) {
    size_t cap = b->arena_cap ? b->arena_cap : 8192;
    while (cap < b->arena_len + len)
      cap *= 2;
    b->arena = util_xreallocarray(b->arena, cap, 1);
    b->arena_cap = cap;
  }
  if (len > 0)
    memcpy(b->arena + b->arena_len, s, len);
  b->arena_len += len;
  return off;
}

bool maildir_index_add(struct maildir_index_builder *b, const struct maildir_index_entry *e)
{
  struct mdx_rec r;

  if (b->count >= PARAMS_MAILBOX_MESSAGES_MAX || e->key_len == 0 ||
      e->key_len > PARAMS_MAILDIR_NAME_MAX || e->id_len > PARAMS_UIDL_MAX ||
      b->arena_len + e->key_len + e->id_len > UINT32_MAX || e->fsize > (uint64_t)INT64_MAX)
    return false;
  memset(&r, 0, sizeof r);
  r.ino = e->ino;
  r.fsize = e->fsize;
  r.size = e->size;
  r.ctime_sec = e->ctime_sec;
  r.ctime_nsec = e->ctime_nsec;
  r.lines = e->lines;
  r.flags = e->flags & MDX_FLAGS;
  r.expire_mark = e->expire_mark;
  r.future_mark = e->future_mark;
  r.key_len = (uint32_t)e->key_len;
  r.id_len = (uint32_t)e->id_len;
  r.key_off = arena_add(b, e->key, e->key_len);
  r.id_off = arena_add(b, e->id, e->id_len);
  if (b->count == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 256;
    b->recs = util_xreallocarray(b->recs, b->cap, sizeof r);
  }
  memcpy((struct mdx_rec *)b->recs + b->count, &r, sizeof r);
  b->count++;
  return true;
}

void *maildir_index_image(const struct maildir_index_builder *b, enum maildir_index_kind kind,
                          const struct stat *dir_st, int64_t now, size_t *len_r)
{
  struct mdx_header h;
  size_t rlen = b->count * sizeof(struct mdx_rec), len = sizeof h + rlen + b->arena_len;
  char *img = util_xmalloc(len);

  memset(&h, 0, sizeof h);
  memcpy(h.magic, MDX_MAGIC, 8);
  h.version = MDX_VERSION;
  h.kind = (uint32_t)kind;
  h.rec_size = sizeof(struct mdx_rec);
  h.dev = (uint64_t)dir_st->st_dev;
  h.ino = (uint64_t)dir_st->st_ino;
  h.scan_time = now;
  h.count = b->count;
  h.arena_len = b->arena_len;
  if (rlen > 0)
    memcpy(img + sizeof h, b->recs, rlen);
  if (b->arena_len > 0)
    memcpy(img + sizeof h + rlen, b->arena, b->arena_len);
  h.checksum = mdx_checksum(&h, img + sizeof h, rlen + b->arena_len);
  memcpy(img, &h, sizeof h);
  *len_r = len;
  return img;
}

int maildir_index_write(int dirfd, const char *name, const struct maildir_index_builder *b,
                        enum maildir_index_kind kind, const struct stat *dir_st,
                        int64_t now)
{
  size_t len;
  char *img, *tmp;
  bool ok;
  int fd;

  img = maildir_index_image(b, kind, dir_st, now, &len);
  tmp = util_xasprintf("%s.%ld.tmp", name, (long)getpid());
  fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
              0600);
  if (fd < 0 && errno == EEXIST && unlinkat(dirfd, tmp, 0) == 0)
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                0600);
  if (fd < 0) {
    free(tmp);
    free(img);
    return -1;
  }
  /* The user's, like the maildrop (a no-op unless the process is more privileged). */
  ok = (fchown(fd, geteuid(), (gid_t)-1) == 0 || errno == EPERM) &&
       util_write_all(fd, img, len) == 0;
  if (close(fd) < 0)
    ok = false;
  if (!ok || renameat(dirfd, tmp, dirfd, name) < 0) {
    (void)unlinkat(dirfd, tmp, 0);
    free(tmp);
    free(img);
    return -1;
  }
  free(tmp);
  free(img);
  maildir_index_stats.writes++;
  return 0;
}

void maildir_index_builder_free(struct maildir_index_builder *b)
{
  free(b->recs);
  free(b->arena);
  memset(b, 0, sizeof *b);
}

void maildir_index_marks(const struct mailbox_file_info *fi, int64_t delivery, int64_t now,
                         uint32_t *expire_mark, uint32_t *future_mark)
{
  uint32_t fut = 0;

  *expire_mark = mailbox_file_mark(fi, delivery, now);
  /* A mark after now is trusted once its time comes (expire_mark_trusted); one past
   * what a mailbox_msg can hold never is. */
  for (size_t i = 0; i < fi->nmarks; i++) {
    int64_t t = fi->marks[i];
    if (delivery > 0 && t >= delivery && t > now && t <= (int64_t)UINT32_MAX &&
        (fut == 0 || (uint32_t)t < fut))
      fut = (uint32_t)t;
  }
  *future_mark = fut;
}
