/* fuzz_maildir_index.c - the Maildir and MH index: builder, image and parser.
 *
 * The first byte picks the kind (bit 0: MH) and the number of entries (bits 1-3); the
 * entries' fields (key, inode, sizes, lines, flags, marks, ctime, id) are read from the
 * input that follows, and the rest of the input is then written over the image at the
 * offset its first two bytes give (bit 4: the image ends there), its checksum made
 * right (bit 5: with the records untouched, their checksum only).  Checks:
 *  - an image of the builder that the parser takes gives back exactly what it accepted;
 *  - whatever image the parser takes, its entries are within the bounds it promises,
 *    maildir_index_find finds each (first) one, and the entries built again into an
 *    image parse to the same entries;
 *  - the image written to a file loads as it parses;
 *  - the raw input as an image: refused unless it carries a right checksum.
 * GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "maildir_index.h"
#include "params.h"
#include "uidl.h"

static const int64_t now = 1800000000;
static int dir_fd = -1;

struct reader {
  const uint8_t *p;
  size_t n;
};

static uint64_t get(struct reader *r, unsigned bytes)
{
  uint64_t v = 0;

  for (unsigned i = 0; i < bytes && r->n > 0; i++, r->p++, r->n--)
    v |= (uint64_t)*r->p << (8 * i);
  return v;
}

static const char *get_str(struct reader *r, size_t max, size_t *len_r)
{
  const char *s = (const char *)r->p;
  size_t len = (size_t)get(r, 1) % (max + 1);

  s = (const char *)r->p;
  if (len > r->n)
    len = r->n;
  r->p += len;
  r->n -= len;
  *len_r = len;
  return s;
}

static bool same_entry(const struct maildir_index_entry *a, const struct maildir_index_entry *b)
{
  return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
         a->ino == b->ino && a->fsize == b->fsize && a->size == b->size &&
         a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec &&
         a->lines == b->lines && a->flags == b->flags && a->expire_mark == b->expire_mark &&
         a->future_mark == b->future_mark && a->id_len == b->id_len &&
         (a->id_len == 0 || memcmp(a->id, b->id, a->id_len) == 0);
}

static bool same_index(const struct maildir_index *x, const struct maildir_index *y)
{
  if (maildir_index_count(x) != maildir_index_count(y))
    return false;
  for (size_t i = 0; i < maildir_index_count(x); i++) {
    struct maildir_index_entry a, b;
    CHECK(maildir_index_entry_at(x, i, &a) && maildir_index_entry_at(y, i, &b));
    if (!same_entry(&a, &b))
      return false;
  }
  return true;
}

/* Does another entry have the key and inode of entry i? */
static bool has_twin(const struct maildir_index *ix, size_t i)
{
  struct maildir_index_entry e, f;

  CHECK(maildir_index_entry_at(ix, i, &e));
  for (size_t k = 0; k < maildir_index_count(ix); k++)
    if (k != i && maildir_index_entry_at(ix, k, &f) && f.ino == e.ino &&
        f.key_len == e.key_len && memcmp(f.key, e.key, e.key_len) == 0)
      return true;
  return false;
}

/* What the parser promises of every entry of an index it took. */
static void check_index(struct maildir_index *ix, enum maildir_index_kind kind,
                        const struct stat *d)
{
  struct maildir_index_builder b;
  struct maildir_index *again;
  uint8_t *img;
  size_t ilen;

  maildir_index_builder_init(&b);
  for (size_t i = 0; i < maildir_index_count(ix); i++) {
    struct maildir_index_entry e, f;
    CHECK(maildir_index_entry_at(ix, i, &e));
    CHECK(e.key_len > 0 && e.key_len <= PARAMS_MAILDIR_NAME_MAX && e.id_len <= PARAMS_UIDL_MAX);
    CHECK(memchr(e.key, '/', e.key_len) == NULL && memchr(e.key, '\0', e.key_len) == NULL);
    CHECK(e.size >= e.fsize && e.size <= 2 * e.fsize + 2 && e.lines <= e.fsize + 1);
    CHECK((e.flags & ~(MAILDIR_INDEX_XUIDL | MAILDIR_INDEX_LINES_EXACT)) == 0);
    if (e.id_len > 0)
      CHECK(uidl_valid(e.id, e.id_len));
    if (kind == MAILDIR_INDEX_MH)
      CHECK(e.id_len > 0 && e.ctime_nsec >= 0 && e.ctime_nsec < 1000000000);
    if (maildir_index_find(ix, e.key, e.key_len, e.ino, &f))
      CHECK(f.key_len == e.key_len && memcmp(f.key, e.key, e.key_len) == 0 &&
            f.ino == e.ino && (f.future_mark == 0 || f.future_mark > now));
    else
      CHECK((e.future_mark != 0 && e.future_mark <= now) || has_twin(ix, i));
    CHECK(maildir_index_add(&b, &e));
  }
  /* Built again, the same. */
  img = maildir_index_image(&b, kind, d, now, &ilen);
  maildir_index_builder_free(&b);
  again = maildir_index_parse(img, ilen, kind, d, now);
  CHECK(again != NULL && same_index(ix, again));
  maildir_index_free(again);
  free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct reader r = { data, size };
  unsigned opts = (unsigned)get(&r, 1);
  enum maildir_index_kind kind = (opts & 1) ? MAILDIR_INDEX_MH : MAILDIR_INDEX_MAILDIR;
  size_t n = (opts >> 1) & 7, ilen, off;
  struct maildir_index_entry *added = calloc(n + 1, sizeof *added);
  struct maildir_index_builder b;
  struct maildir_index *ix, *loaded;
  size_t nadded = 0;
  struct stat d;
  uint8_t *img;

  if (dir_fd < 0) {
    dir_fd = open(fuzz_tmpdir(), O_RDONLY | O_DIRECTORY);
    CHECK(dir_fd >= 0);
  }
  memset(&d, 0, sizeof d);
  d.st_dev = 7;
  d.st_ino = 77;
  CHECK(added != NULL);
  maildir_index_builder_init(&b);
  for (size_t i = 0; i < n; i++) {
    struct maildir_index_entry *e = &added[i];
    e->key = get_str(&r, 40, &e->key_len);
    e->ino = get(&r, 8);
    e->fsize = get(&r, 4);
    e->size = e->fsize + get(&r, 4) % (e->fsize + 3);
    e->lines = (uint32_t)get(&r, 4);
    e->flags = (uint32_t)get(&r, 1) & 3;
    e->expire_mark = (uint32_t)get(&r, 4);
    e->future_mark = (uint32_t)get(&r, 4);
    if (kind == MAILDIR_INDEX_MH) {
      e->ctime_sec = (int64_t)get(&r, 8);
      e->ctime_nsec = (int64_t)(get(&r, 4) % 1000000000u);
    }
    e->id = get_str(&r, PARAMS_UIDL_MAX, &e->id_len);
    if (maildir_index_add(&b, e))
      added[nadded++] = *e;    /* what the builder refused is not in the image */
  }
  img = maildir_index_image(&b, kind, &d, now, &ilen);
  maildir_index_builder_free(&b);

  /* What the builder wrote, the parser gives back (when it takes it). */
  ix = maildir_index_parse(img, ilen, kind, &d, now);
  if (ix != NULL) {
    CHECK(maildir_index_count(ix) == nadded);
    for (size_t i = 0; i < nadded; i++) {
      struct maildir_index_entry e;
      CHECK(maildir_index_entry_at(ix, i, &e) && same_entry(&e, &added[i]));
    }
    check_index(ix, kind, &d);
    maildir_index_free(ix);
  }

  /* The rest of the input over the image. */
  off = (size_t)get(&r, 2);
  off = (opts & 32) ? MAILDIR_INDEX_HEADER_SIZE + off % (ilen - MAILDIR_INDEX_HEADER_SIZE + 1)
                    : off % (ilen + 1);
  if ((opts & 16) || off + r.n > ilen) {
    size_t nlen = off + r.n;
    img = realloc(img, nlen + 1);
    CHECK(img != NULL);
    ilen = nlen;
  }
  memcpy(img + off, r.p, r.n);
  maildir_index_seal(img, ilen);
  ix = maildir_index_parse(img, ilen, kind, &d, now);
  if (ix != NULL)
    check_index(ix, kind, &d);

  /* From a file: the same.  (The directory's identity is its own now.) */
  if (ix != NULL && (opts & 64)) {
    struct stat real;
    int fd;
    CHECK(fstat(dir_fd, &real) == 0);
    maildir_index_free(ix);
    ix = NULL;
    /* Bound to the real directory: patch the key by building with its stat. */
    {
      struct maildir_index *p = maildir_index_parse(img, ilen, kind, &d, now);
      struct maildir_index_builder b2;
      uint8_t *img2;
      size_t len2;
      CHECK(p != NULL);
      maildir_index_builder_init(&b2);
      for (size_t i = 0; i < maildir_index_count(p); i++) {
        struct maildir_index_entry e;
        CHECK(maildir_index_entry_at(p, i, &e) && maildir_index_add(&b2, &e));
      }
      img2 = maildir_index_image(&b2, kind, &real, now, &len2);
      maildir_index_builder_free(&b2);
      fd = openat(dir_fd, "ix", O_WRONLY | O_CREAT | O_TRUNC, 0600);
      CHECK(fd >= 0 && util_write_all(fd, img2, len2) == 0 && close(fd) == 0);
      loaded = maildir_index_load(dir_fd, "ix", kind, &real, now);
      CHECK(loaded != NULL && same_index(p, loaded));
      maildir_index_free(loaded);
      maildir_index_free(p);
      free(img2);
    }
  }
  maildir_index_free(ix);
  free(img);

  /* The raw input. */
  ix = maildir_index_parse(data, size, kind, &d, now);
  maildir_index_free(ix);
  free(added);
  return 0;
}
