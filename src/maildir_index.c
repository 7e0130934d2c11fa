/* maildir_index.c - the on-disk index of a Maildir or MH folder (see maildir_index.h).
 *
 * Layout (host byte order: the index never leaves the host that wrote it), version 2:
 *   header   struct mdx_header, its checksum the last field
 *   records  count x struct mdx_rec
 *   retired  nretired x struct mdx_ret: ids retired and since when (uidl.h)
 *   arena    the keys and ids the records point into (not NUL-terminated)
 * The checksum covers everything but itself.  Version 1 (no listed ids, no adoption,
 * no retired ids) is read and migrated: its entries count as adopted.
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
#include <time.h>
#include <unistd.h>

#include "expire.h"
#include "log.h"
#include "mailbox.h"
#include "mailbox_file.h"
#include "maildir_index.h"
#include "params.h"
#include "uidl.h"

#define MDX_MAGIC "P3MDIDX\n"
#define MDX_VERSION 2u
#define MDX_VERSION_1 1u
#define MDX_FLAGS (MAILDIR_INDEX_XUIDL | MAILDIR_INDEX_LINES_EXACT)
#define MDX_ADOPTED 0x1u         /* mdx_rec.xflags */

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
  int64_t adopted;         /* when pop3d adopted the maildrop */
  uint64_t nretired;
  uint64_t checksum;
};

struct mdx_rec {
  uint64_t ino, fsize, size;
  int64_t ctime_sec, ctime_nsec;
  uint32_t lines, flags, expire_mark, future_mark;
  uint32_t key_off, key_len, id_off, id_len;
  uint32_t listed_off, listed_len, xflags, pad;
};

struct mdx_ret {
  int64_t since;
  uint32_t off, len;
};

/* Version 1, migrated. */
struct mdx_header_1 {
  char magic[8];
  uint32_t version, kind, rec_size, pad;
  uint64_t dev, ino;
  int64_t scan_time;
  uint64_t count, arena_len, checksum;
};

struct mdx_rec_1 {
  uint64_t ino, fsize, size;
  int64_t ctime_sec, ctime_nsec;
  uint32_t lines, flags, expire_mark, future_mark;
  uint32_t key_off, key_len, id_off, id_len;
};

_Static_assert(sizeof(struct mdx_header) == MAILDIR_INDEX_HEADER_SIZE, "header layout");
_Static_assert(sizeof(struct mdx_rec) % 8 == 0, "records keep 8-byte alignment");
_Static_assert(sizeof(struct mdx_ret) % 8 == 0, "records keep 8-byte alignment");
_Static_assert(sizeof(struct mdx_header_1) == 72, "version 1 header layout");
_Static_assert(offsetof(struct mdx_rec, listed_off) == sizeof(struct mdx_rec_1),
               "a version 2 record begins as a version 1 record");

/* The most an index can hold: every message at its longest name and id. */
#define MDX_ARENA_MAX ((uint64_t)PARAMS_MAILBOX_MESSAGES_MAX * \
                       (PARAMS_MAILDIR_NAME_MAX + PARAMS_UIDL_MAX))

struct maildir_index {
  const struct mdx_rec *recs;
  const char *arena;
  size_t count;
  bool *found;             /* per record: found by a lookup */
  struct mdx_rec *owned;   /* records converted from version 1 */
  int64_t adopted;
  struct uidl_retired_list retired;
  char *retired_text;      /* the retired ids, NUL-terminated */
  size_t key_bytes;        /* sum of the keys' lengths plus one each */
  uint32_t *table;         /* open addressing: record index + 1, 0 = empty; built at
                            * the first lookup that the next record does not answer */
  uint32_t *by_id;         /* the same by id and listed id (two slots a record), built
                            * at the first find_id */
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

/* hlen: the header's bytes before its checksum. */
static uint64_t mdx_checksum(const void *h, size_t hlen, const void *body, size_t blen)
{
  uint64_t x = mdx_hash(0x6a09e667f3bcc908ull, h, hlen);
  return mdx_hash(x, body, blen);
}

#define MDX_SUM_LEN offsetof(struct mdx_header, checksum)
#define MDX_SUM_LEN_1 offsetof(struct mdx_header_1, checksum)

/* The key alone: an entry is also looked up whatever its inode (find_key). */
static uint64_t key_hash(const char *key, size_t len)
{
  return mdx_hash(0x510e527fade682d1ull, key, len);
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
  if ((r->xflags & ~MDX_ADOPTED) != 0 || r->pad != 0 ||
      (uint64_t)r->listed_off + r->listed_len > alen ||
      (r->listed_len > 0 && !uidl_valid(arena + r->listed_off, r->listed_len)))
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

/* Version 1 records as version 2 ones: adopted, no listed id. */
static struct mdx_rec *mdx_convert_1(const char *body, size_t count)
{
  struct mdx_rec *v = util_xcalloc(count ? count : 1, sizeof *v);

  /* A version 2 record begins with the fields of a version 1 record. */
  for (size_t i = 0; i < count; i++) {
    memcpy(&v[i], body + i * sizeof(struct mdx_rec_1), sizeof(struct mdx_rec_1));
    v[i].xflags = MDX_ADOPTED;
  }
  return v;
}

/* The retired ids rets[0..n) of arena[0..alen), copied NUL-terminated. */
static bool mdx_retired(struct maildir_index *ix, const char *rets, size_t n,
                        const char *arena, uint64_t alen)
{
  size_t len = 0;
  char *t;

  for (size_t k = 0; k < n; k++) {
    struct mdx_ret r;
    memcpy(&r, rets + k * sizeof r, sizeof r);
    if (r.since <= 0 || (uint64_t)r.off + r.len > alen || !uidl_valid(arena + r.off, r.len))
      return false;
    len += r.len + 1;
  }
  t = ix->retired_text = util_xmalloc(len ? len : 1);
  for (size_t k = 0; k < n; k++) {
    struct mdx_ret r;
    memcpy(&r, rets + k * sizeof r, sizeof r);
    memcpy(t, arena + r.off, r.len);
    t[r.len] = '\0';
    uidl_retired_add(&ix->retired, t, r.since);
    t += r.len + 1;
  }
  return true;
}

static struct maildir_index *mdx_build(const void *data, size_t len,
                                       enum maildir_index_kind kind,
                                       const struct stat *dir_st, int64_t now)
{
  struct mdx_header h;
  struct maildir_index *ix;
  const char *body;
  size_t blen, count, rsize, nret = 0;

  if (len < sizeof(struct mdx_header_1))
    return NULL;
  memset(&h, 0, sizeof h);
  memcpy(&h, data, offsetof(struct mdx_header, adopted));
  if (memcmp(h.magic, MDX_MAGIC, 8) != 0)
    return NULL;
  if (h.version == MDX_VERSION_1) {
    struct mdx_header_1 h1;
    memcpy(&h1, data, sizeof h1);
    h.checksum = h1.checksum;
    h.adopted = h1.scan_time;
    rsize = sizeof(struct mdx_rec_1);
    body = (const char *)data + sizeof h1;
    blen = len - sizeof h1;
    if (mdx_checksum(&h1, MDX_SUM_LEN_1, body, blen) != h1.checksum)
      return NULL;
  } else if (h.version == MDX_VERSION && len >= sizeof h) {
    memcpy(&h, data, sizeof h);
    rsize = sizeof(struct mdx_rec);
    body = (const char *)data + sizeof h;
    blen = len - sizeof h;
    nret = h.nretired > UIDL_RETIRED_MAX ? SIZE_MAX : (size_t)h.nretired;
    if (h.nretired > UIDL_RETIRED_MAX || mdx_checksum(&h, MDX_SUM_LEN, body, blen) != h.checksum)
      return NULL;
  } else {
    return NULL;
  }
  if (h.kind != (uint32_t)kind || h.rec_size != rsize || h.pad != 0 ||
      h.dev != (uint64_t)dir_st->st_dev || h.ino != (uint64_t)dir_st->st_ino ||
      h.scan_time > now || h.scan_time <= 0 || h.count > PARAMS_MAILBOX_MESSAGES_MAX ||
      h.arena_len > MDX_ARENA_MAX || h.adopted <= 0 || h.adopted > now ||
      h.count * rsize + nret * sizeof(struct mdx_ret) + h.arena_len != (uint64_t)blen)
    return NULL;
  count = (size_t)h.count;
  ix = util_xcalloc(1, sizeof *ix);
  ix->arena = body + count * rsize + nret * sizeof(struct mdx_ret);
  if (h.version == MDX_VERSION_1) {
    ix->owned = mdx_convert_1(body, count);
    ix->recs = ix->owned;
  } else {
    /* Records are 8-byte aligned in the image (the header is 88 bytes). */
    ix->recs = (const void *)body;
  }
  ix->count = count;
  ix->now = now;
  ix->adopted = h.adopted;
  ix->found = util_xcalloc(count ? count : 1, sizeof *ix->found);
  for (size_t i = 0; i < count; i++) {
    const struct mdx_rec *r = &ix->recs[i];
    if (!rec_ok(r, ix->arena, h.arena_len, kind)) {
      maildir_index_free(ix);
      return NULL;
    }
    ix->key_bytes += (size_t)r->key_len + 1;
  }
  if (!mdx_retired(ix, body + count * rsize, nret, ix->arena, h.arena_len)) {
    maildir_index_free(ix);
    return NULL;
  }
  return ix;
}

static void mdx_table_sized(struct maildir_index *ix);

static void mdx_table(struct maildir_index *ix)
{
  size_t tsize = 4;

  while (tsize < 2 * ix->count)
    tsize *= 2;
  ix->mask = tsize - 1;
  mdx_table_sized(ix);
}

/* The key table at the size ix->mask gives. */
static void mdx_table_sized(struct maildir_index *ix)
{
  ix->table = util_xcalloc(ix->mask + 1, sizeof *ix->table);
  for (size_t i = 0; i < ix->count; i++) {
    const struct mdx_rec *r = &ix->recs[i];
    size_t slot = (size_t)key_hash(ix->arena + r->key_off, r->key_len) & ix->mask;
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
  e->listed = ix->arena + r->listed_off;
  e->listed_len = r->listed_len;
  e->adopted = (r->xflags & MDX_ADOPTED) != 0;
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
  h.checksum = mdx_checksum(&h, MDX_SUM_LEN, (const char *)image + sizeof h, len - sizeof h);
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
    slot = (size_t)key_hash(key, key_len) & ix->mask;
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
  ix->found[r - ix->recs] = true;
  rec_entry(ix, r, e);
  return true;
}

/* Is own[0..own_len) the id or the listed id of r? */
static bool rec_own(const struct maildir_index *ix, const struct mdx_rec *r, const char *own,
                    size_t own_len)
{
  return (r->id_len == own_len && memcmp(ix->arena + r->id_off, own, own_len) == 0) ||
         (r->listed_len == own_len && memcmp(ix->arena + r->listed_off, own, own_len) == 0);
}

/* Entry best (SIZE_MAX: none) counts as found. */
static bool mdx_take(struct maildir_index *ix, size_t best, struct maildir_index_entry *e)
{
  if (best == SIZE_MAX)
    return false;
  ix->found[best] = true;
  rec_entry(ix, &ix->recs[best], e);
  return true;
}

bool maildir_index_find_key(struct maildir_index *ix, const char *key, size_t key_len,
                            const char *own, size_t own_len, struct maildir_index_entry *e)
{
  size_t best = SIZE_MAX, slot;

  if (ix == NULL || ix->count == 0)
    return false;
  if (ix->table == NULL)
    mdx_table(ix);
  slot = (size_t)key_hash(key, key_len) & ix->mask;
  for (uint32_t k; (k = ix->table[slot]) != 0; slot = (slot + 1) & ix->mask) {
    const struct mdx_rec *r = &ix->recs[k - 1];
    if (!ix->found[k - 1] && k - 1 < best && r->key_len == key_len &&
        memcmp(ix->arena + r->key_off, key, key_len) == 0 &&
        (own == NULL || rec_own(ix, r, own, own_len)))
      best = k - 1;
  }
  return mdx_take(ix, best, e);
}

static void mdx_id_slot(struct maildir_index *ix, const char *id, size_t len, uint32_t k)
{
  size_t slot = (size_t)key_hash(id, len) & ix->mask;

  while (ix->by_id[slot] != 0)
    slot = (slot + 1) & ix->mask;
  ix->by_id[slot] = k;
}

bool maildir_index_find_id(struct maildir_index *ix, const char *own, size_t own_len,
                           struct maildir_index_entry *e)
{
  size_t best = SIZE_MAX, slot;

  if (ix == NULL || ix->count == 0 || own_len == 0)
    return false;
  if (ix->table == NULL)
    mdx_table(ix);        /* sets the size: at least twice the records */
  if (ix->by_id == NULL) {
    /* Twice as many slots as the key table: two a record. */
    ix->mask = ix->mask * 2 + 1;
    free(ix->table);
    ix->table = NULL;
    mdx_table_sized(ix);
    ix->by_id = util_xcalloc(ix->mask + 1, sizeof *ix->by_id);
    for (size_t i = 0; i < ix->count; i++) {
      const struct mdx_rec *r = &ix->recs[i];
      if (r->id_len > 0)
        mdx_id_slot(ix, ix->arena + r->id_off, r->id_len, (uint32_t)i + 1);
      if (r->listed_len > 0)
        mdx_id_slot(ix, ix->arena + r->listed_off, r->listed_len, (uint32_t)i + 1);
    }
  }
  slot = (size_t)key_hash(own, own_len) & ix->mask;
  for (uint32_t k; (k = ix->by_id[slot]) != 0; slot = (slot + 1) & ix->mask)
    if (!ix->found[k - 1] && k - 1 < best && rec_own(ix, &ix->recs[k - 1], own, own_len))
      best = k - 1;
  return mdx_take(ix, best, e);
}

bool maildir_index_found(const struct maildir_index *ix, size_t i)
{
  return ix != NULL && i < ix->count && ix->found[i];
}

int64_t maildir_index_adopted(const struct maildir_index *ix)
{
  return ix != NULL ? ix->adopted : 0;
}

const struct uidl_retired_list *maildir_index_retired(const struct maildir_index *ix)
{
  return &ix->retired;
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
  free(ix->by_id);
  free(ix->found);
  free(ix->owned);
  free(ix->retired_text);
  uidl_retired_free(&ix->retired);
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
      e->listed_len > PARAMS_UIDL_MAX ||
      b->arena_len + e->key_len + e->id_len + e->listed_len > UINT32_MAX ||
      e->fsize > (uint64_t)INT64_MAX)
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
  r.listed_len = (uint32_t)e->listed_len;
  r.listed_off = arena_add(b, e->listed, e->listed_len);
  r.xflags = e->adopted ? MDX_ADOPTED : 0;
  if (b->count == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 256;
    b->recs = util_xreallocarray(b->recs, b->cap, sizeof r);
  }
  memcpy((struct mdx_rec *)b->recs + b->count, &r, sizeof r);
  b->count++;
  return true;
}

bool maildir_index_set_record(struct maildir_index_builder *b, size_t i, const char *listed,
                              size_t listed_len, bool adopted, uint32_t mark)
{
  struct mdx_rec *r = (struct mdx_rec *)b->recs + i;

  if (i >= b->count || listed_len > PARAMS_UIDL_MAX ||
      b->arena_len + listed_len > UINT32_MAX)
    return false;
  r->listed_len = (uint32_t)listed_len;
  r->listed_off = arena_add(b, listed, listed_len);
  r->xflags = adopted ? MDX_ADOPTED : 0;
  r->expire_mark = mark;
  if (r->future_mark != 0 && r->future_mark <= mark)
    r->future_mark = 0;
  return true;
}

void *maildir_index_image(const struct maildir_index_builder *b, enum maildir_index_kind kind,
                          const struct stat *dir_st, int64_t now, size_t *len_r)
{
  struct mdx_header h;
  size_t rlen = b->count * sizeof(struct mdx_rec), nret = 0, tlen, len;
  struct maildir_index_builder tail;     /* the arena with the retired ids after it */
  struct mdx_ret *rets;
  char *img;

  for (size_t k = 0; k < b->retired.n; k++)
    if (b->retired.v[k].since > 0 && nret < UIDL_RETIRED_MAX)
      nret++;
  tlen = nret * sizeof *rets;
  rets = util_xcalloc(nret ? nret : 1, sizeof *rets);
  memset(&tail, 0, sizeof tail);
  (void)arena_add(&tail, b->arena, b->arena_len);
  for (size_t k = 0, j = 0; j < nret; k++)
    if (b->retired.v[k].since > 0) {
      size_t l = strlen(b->retired.v[k].id);
      rets[j].since = b->retired.v[k].since;
      rets[j].len = (uint32_t)l;
      rets[j].off = arena_add(&tail, b->retired.v[k].id, l);
      j++;
    }
  len = sizeof h + rlen + tlen + tail.arena_len;
  img = util_xmalloc(len);
  memset(&h, 0, sizeof h);
  memcpy(h.magic, MDX_MAGIC, 8);
  h.version = MDX_VERSION;
  h.kind = (uint32_t)kind;
  h.rec_size = sizeof(struct mdx_rec);
  h.dev = (uint64_t)dir_st->st_dev;
  h.ino = (uint64_t)dir_st->st_ino;
  h.scan_time = now;
  h.count = b->count;
  h.arena_len = tail.arena_len;
  h.adopted = b->adopted > 0 && b->adopted <= now ? b->adopted : now;
  h.nretired = nret;
  if (rlen > 0)
    memcpy(img + sizeof h, b->recs, rlen);
  if (tlen > 0)
    memcpy(img + sizeof h + rlen, rets, tlen);
  if (tail.arena_len > 0)
    memcpy(img + sizeof h + rlen + tlen, tail.arena, tail.arena_len);
  h.checksum = mdx_checksum(&h, MDX_SUM_LEN, img + sizeof h, rlen + tlen + tail.arena_len);
  memcpy(img, &h, sizeof h);
  free(rets);
  free(tail.arena);
  *len_r = len;
  return img;
}

/* durable: fsynced before it replaces the old one (the record of an UPDATE). */
static int mdx_write(int dirfd, const char *name, const struct maildir_index_builder *b,
                     enum maildir_index_kind kind, const struct stat *dir_st, int64_t now,
                     bool durable)
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
       util_write_all(fd, img, len) == 0 && (!durable || fsync(fd) == 0);
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

int maildir_index_write(int dirfd, const char *name, const struct maildir_index_builder *b,
                        enum maildir_index_kind kind, const struct stat *dir_st,
                        int64_t now)
{
  return mdx_write(dirfd, name, b, kind, dir_st, now, false);
}

void maildir_index_builder_free(struct maildir_index_builder *b)
{
  free(b->recs);
  free(b->arena);
  uidl_retired_free(&b->retired);
  memset(b, 0, sizeof *b);
}

/* Record mark for the entries of keys[0..n) that have none (the first entry of each key
 * not taken yet: a Maildir base name in cur/ and new/ is two messages, each in keys). */
static int mdx_record(int dirfd, const char *name, enum maildir_index_kind kind,
                      const struct stat *dir_st, int64_t now, const char *const *keys,
                      const size_t *key_lens, size_t n, uint32_t mark)
{
  struct maildir_index *ix = maildir_index_load(dirfd, name, kind, dir_st, now);
  struct maildir_index_builder b;
  int r;

  if (ix == NULL)
    return -1;
  for (size_t k = 0; k < n; k++) {
    struct maildir_index_entry e;
    (void)maildir_index_find_key(ix, keys[k], key_lens[k], NULL, 0, &e);
  }
  maildir_index_builder_init(&b);
  b.adopted = ix->adopted;
  for (size_t k = 0; k < ix->retired.n; k++)
    uidl_retired_add(&b.retired, ix->retired.v[k].id, ix->retired.v[k].since);
  for (size_t i = 0; i < ix->count; i++) {
    struct maildir_index_entry e;
    rec_entry(ix, &ix->recs[i], &e);
    if (ix->found[i] && e.expire_mark == 0)
      e.expire_mark = mark;
    if (e.future_mark != 0 && e.future_mark <= e.expire_mark)
      e.future_mark = 0;
    (void)maildir_index_add(&b, &e);
  }
  r = mdx_write(dirfd, name, &b, kind, dir_st, now, true);
  maildir_index_builder_free(&b);
  maildir_index_free(ix);
  return r;
}

void maildir_index_record_marks(int dirfd, const char *name, enum maildir_index_kind kind,
                                const struct mailbox *mb,
                                const char *(*key_of)(const struct mailbox *mb, size_t i,
                                                      char buf[16], size_t *len_r))
{
  size_t n = 0, cnt = mb->count ? mb->count : 1;
  const char **keys = util_xcalloc(cnt, sizeof *keys);
  size_t *lens = util_xcalloc(cnt, sizeof *lens);
  char (*bufs)[16] = util_xcalloc(cnt, sizeof *bufs);
  struct stat dst;

  for (size_t i = 0; i < mb->count; i++)
    if ((mb->msgs[i].flags & (MAILBOX_MSG_MARK | MAILBOX_MSG_DELETED)) == MAILBOX_MSG_MARK) {
      keys[n] = key_of(mb, i, bufs[n], &lens[n]);
      n++;
    }
  if (n > 0 && (mb->mark_time <= 0 || mb->mark_time > (int64_t)UINT32_MAX ||
                fstat(dirfd, &dst) < 0 ||
                mdx_record(dirfd, name, kind, &dst, (int64_t)time(NULL), keys, lens, n,
                           (uint32_t)mb->mark_time) < 0))
    log_msg(LOG_NOTICE, "%s: cannot record the expiry marks in %s: they are written into "
            "the messages only", mb->path, name);
  free(keys);
  free(lens);
  free(bufs);
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

void maildir_index_ids_init(struct maildir_index_ids *d, size_t n,
                            const struct maildir_index *ix, int64_t now)
{
  memset(d, 0, sizeof *d);
  d->keep = util_xcalloc(1, sizeof *d->keep);
  d->keep_off = util_xreallocarray(NULL, n ? n : 1, sizeof *d->keep_off);
  d->adopted = util_xcalloc(n ? n : 1, sizeof *d->adopted);
  d->warn = util_xcalloc(n ? n : 1, sizeof *d->warn);
  d->bidx = util_xreallocarray(NULL, n ? n : 1, sizeof *d->bidx);
  for (size_t k = 0; k < n; k++) {
    d->keep_off[k] = MAILBOX_UID_NONE;
    d->bidx[k] = SIZE_MAX;
  }
  d->adopting = ix == NULL;
  d->changed = ix == NULL;
  d->now = now;
}

uint32_t maildir_index_ids_msg(struct maildir_index_ids *d, size_t k,
                               const struct maildir_index_entry *prior, uint32_t hdr)
{
  uint32_t mark;

  if (prior != NULL) {
    d->adopted[k] = prior->adopted;
    mark = prior->expire_mark != 0 ? prior->expire_mark : prior->adopted ? hdr : 0;
    if (prior->listed_len > 0)
      d->keep_off[k] = mailbox_add_uid(d->keep, prior->listed, prior->listed_len);
    if (mark != prior->expire_mark)
      d->changed = true;
  } else {
    d->adopted[k] = d->adopting;
    mark = d->adopting ? hdr : 0;
    d->warn[k] = !d->adopting && hdr != 0;
    d->changed = true;
  }
  return mark;
}

int maildir_index_ids_assign(struct maildir_index_ids *d, struct mailbox *mb,
                             const struct maildir_index *ix, const char *what,
                             const char **error_r)
{
  const char **keep = util_xcalloc(mb->count ? mb->count : 1, sizeof *keep);
  size_t first_gone = d->keep->uids_len;
  int r;

  /* The ids of the entries no message took: their messages are gone. */
  for (size_t i = 0; i < maildir_index_count(ix); i++) {
    struct maildir_index_entry e;
    if (!maildir_index_found(ix, i) && maildir_index_entry_at(ix, i, &e) && e.listed_len > 0)
      (void)mailbox_add_uid(d->keep, e.listed, e.listed_len);
  }
  if (ix != NULL)
    for (size_t k = 0; k < ix->retired.n; k++)
      uidl_retired_add(&d->retired, ix->retired.v[k].id, ix->retired.v[k].since);
  for (size_t off = first_gone; off < d->keep->uids_len; off += strlen(d->keep->uids + off) + 1) {
    uidl_retired_add(&d->retired, d->keep->uids + off, d->now);
    d->changed = true;
  }
  for (size_t k = 0; k < mb->count; k++)
    if (d->keep_off[k] != MAILBOX_UID_NONE)
      keep[k] = d->keep->uids + d->keep_off[k];
  r = uidl_assign(mb, keep, d->retired.v, d->retired.n, d->now, error_r);
  for (size_t k = 0; r == 0 && k < mb->count; k++) {
    if (keep[k] == NULL || strcmp(keep[k], mailbox_uid(mb, k)) != 0)
      d->changed = true;
    if (d->warn[k])
      expire_log_ignored(what, mailbox_uid(mb, k));
  }
  uidl_retired_prune(&d->retired);
  free(keep);
  return r;
}

void maildir_index_ids_records(struct maildir_index_ids *d, const struct mailbox *mb,
                               const struct maildir_index *ix,
                               struct maildir_index_builder *b)
{
  for (size_t k = 0; k < mb->count; k++) {
    const char *id = mailbox_uid(mb, k);
    if (d->bidx[k] != SIZE_MAX)
      (void)maildir_index_set_record(b, d->bidx[k], id, strlen(id), d->adopted[k],
                                     mb->msgs[k].expire_mark);
  }
  b->adopted = d->adopting || ix == NULL ? d->now : ix->adopted;
  uidl_retired_free(&b->retired);
  b->retired = d->retired;
  memset(&d->retired, 0, sizeof d->retired);
}

void maildir_index_ids_free(struct maildir_index_ids *d)
{
  if (d->keep != NULL) {
    free(d->keep->uids);
    free(d->keep);
  }
  free(d->keep_off);
  free(d->adopted);
  free(d->warn);
  free(d->bidx);
  uidl_retired_free(&d->retired);
  memset(d, 0, sizeof *d);
}
