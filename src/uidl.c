/* uidl.c - unique ids of messages: validity and the message hash.
 *
 * The hash runs two independent 64-bit lanes over little-endian 8-byte words, each a
 * multiply followed by a shift that folds the high bits back down, so that every input
 * bit reaches every output bit after the final mix.  It is fast (header blocks of every
 * message are hashed at open) and well dispersed; it is not meant to resist a forger,
 * and need not: equal ids are made unique by the caller.  The words are read in a fixed
 * byte order so that an id does not change when the mail moves to another machine.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox.h"
#include "params.h"
#include "uidl.h"

#define UIDL_K1 0x9e3779b97f4a7c15ull
#define UIDL_K2 0xc2b2ae3d27d4eb4full
#define UIDL_K3 0x165667b19e3779f9ull
#define UIDL_K4 0xd6e8feb86659fd93ull

bool uidl_valid(const char *s, size_t len)
{
  if (s == NULL || len == 0 || len > PARAMS_UIDL_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x21 || ch > 0x7e)
      return false;
  }
  return true;
}

static inline uint64_t uidl_rotl(uint64_t x, unsigned r)
{
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t uidl_load_le(const unsigned char *p)
{
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
         (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
         (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline void uidl_mix(struct uidl_hash *h, uint64_t w)
{
  h->a = (h->a ^ w) * UIDL_K1;
  h->a ^= h->a >> 31;
  h->b = uidl_rotl(h->b + w, 27) * UIDL_K2;
  h->b ^= h->b >> 29;
}

void uidl_hash_init(struct uidl_hash *h)
{
  h->a = UIDL_K3;
  h->b = UIDL_K4;
  h->n = 0;
  h->tail = 0;
}

void uidl_hash_update(struct uidl_hash *h, const void *data, size_t len)
{
  const unsigned char *p = data;
  unsigned have = (unsigned)(h->n & 7);

  h->n += len;
  if (have != 0) {
    while (have < 8 && len > 0) {
      h->tail |= (uint64_t)*p++ << (8 * have);
      have++;
      len--;
    }
    if (have < 8)
      return;
    uidl_mix(h, h->tail);
    h->tail = 0;
  }
  while (len >= 8) {
    uidl_mix(h, uidl_load_le(p));
    p += 8;
    len -= 8;
  }
  for (unsigned i = 0; i < len; i++)
    h->tail |= (uint64_t)p[i] << (8 * i);
}

static uint64_t uidl_fold(uint64_t x)
{
  x ^= x >> 32;
  x *= UIDL_K2;
  x ^= x >> 29;
  x *= UIDL_K1;
  x ^= x >> 32;
  return x;
}

static void uidl_hash_words(const struct uidl_hash *h, uint64_t size, uint64_t *a_r,
                            uint64_t *b_r)
{
  struct uidl_hash t = *h;
  uint64_t a, b;

  /* The partial word is mixed with the length, so "ab" and "ab\0" differ. */
  if (t.n & 7)
    uidl_mix(&t, t.tail);
  a = t.a ^ (t.n * UIDL_K3);
  b = t.b ^ (size * UIDL_K1);
  a += b;
  b += a;
  a = uidl_fold(a);
  b = uidl_fold(b ^ UIDL_K4);
  a += b;
  b += a;
  *a_r = a;
  *b_r = b;
}

void uidl_hash_final(const struct uidl_hash *h, uint64_t size, char out[71])
{
  uint64_t a, b;

  uidl_hash_words(h, size, &a, &b);
  snprintf(out, 71, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

uint64_t uidl_hash_value(const struct uidl_hash *h, uint64_t size)
{
  uint64_t a, b;

  uidl_hash_words(h, size, &a, &b);
  return a != 0 ? a : 1;
}

/* ---- Dovecot's dovecot-uidlist ---- */

/* Parse a decimal uint32 at *p (no sign, no leading junk); advances *p. */
static bool dv_u32(const char **p, const char *e, uint32_t *out)
{
  const char *q = *p;
  uint64_t v = 0;

  if (q >= e || *q < '0' || *q > '9')
    return false;
  while (q < e && *q >= '0' && *q <= '9') {
    v = v * 10 + (uint64_t)(*q - '0');
    if (v > UINT32_MAX)
      return false;
    q++;
  }
  *p = q;
  *out = (uint32_t)v;
  return true;
}

static const char *dv_text;

static int dv_cmp(const void *a, const void *b)
{
  const struct uidl_dovecot_entry *x = a, *y = b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(dv_text + x->name, dv_text + y->name, n);

  if (c != 0)
    return c;
  return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* One record line [p, e) of a version 1 or 3 file. */
static bool dv_record(struct uidl_dovecot *d, int version, const char *p, const char *e,
                      struct uidl_dovecot_entry *r)
{
  const char *name;

  memset(r, 0, sizeof *r);
  if (!dv_u32(&p, e, &r->uid) || r->uid == 0 || p >= e || *p != ' ')
    return false;
  p++;
  if (version == 1) {
    name = p;
  } else {
    /* Keys up to " :" (or a lone ":" when there are none). */
    while (p < e && *p != ':') {
      const char *k = p;
      while (p < e && *p != ' ')
        p++;
      if (*k == 'P' && p - k > 1) {
        r->pop3 = (uint32_t)(k + 1 - d->text);
        r->pop3_len = (uint32_t)(p - k - 1);
      }
      if (p < e)
        p++;
    }
    if (p >= e)
      return false;
    name = p + 1;
  }
  {
    const char *colon = memchr(name, ':', (size_t)(e - name));
    const char *ne = colon ? colon : e;
    if (ne == name || memchr(name, '/', (size_t)(ne - name)) != NULL)
      return false;
    r->name = (uint32_t)(name - d->text);
    r->name_len = (uint32_t)(ne - name);
  }
  if (r->pop3_len > 0 && !uidl_valid(d->text + r->pop3, r->pop3_len))
    r->pop3_len = 0;
  return true;
}

int uidl_dovecot_parse(struct uidl_dovecot *d, char *text, size_t len)
{
  const char *p = text, *e = text + len, *nl;
  int version;
  size_t cap = 0;

  memset(d, 0, sizeof *d);
  d->text = text;
  if (len >= UINT32_MAX)
    goto bad;
  /* The header line. */
  nl = memchr(p, '\n', len);
  if (nl == NULL || nl - p < 3 || (p[0] != '1' && p[0] != '3') || p[1] != ' ')
    goto bad;
  version = p[0] - '0';
  p += 2;
  if (version == 1) {
    if (!dv_u32(&p, nl, &d->uidvalidity))
      goto bad;
  } else {
    while (p < nl) {
      const char *k = p;
      while (p < nl && *p != ' ')
        p++;
      if (*k == 'V') {
        const char *q = k + 1;
        if (!dv_u32(&q, p, &d->uidvalidity) || q != p)
          goto bad;
      }
      if (p < nl)
        p++;
    }
  }
  if (d->uidvalidity == 0)
    goto bad;
  for (p = nl + 1; p < e; p = nl + 1) {
    struct uidl_dovecot_entry r;
    nl = memchr(p, '\n', (size_t)(e - p));
    if (nl == NULL)
      break;          /* a record being written: not there yet */
    if (!dv_record(d, version, p, nl, &r))
      continue;
    if (d->n == cap) {
      cap = cap ? cap * 2 : 256;
      d->v = util_xreallocarray(d->v, cap, sizeof *d->v);
    }
    d->v[d->n++] = r;
  }
  dv_text = d->text;
  if (d->n > 1)
    qsort(d->v, d->n, sizeof *d->v, dv_cmp);
  return 0;
bad:
  uidl_dovecot_free(d);
  return -1;
}

int uidl_dovecot_load(struct uidl_dovecot *d, int dirfd)
{
  int fd = openat(dirfd, "dovecot-uidlist", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  char *text;
  size_t got = 0;

  memset(d, 0, sizeof *d);
  if (fd < 0)
    return -1;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      (uint64_t)st.st_size > PARAMS_DOVECOT_UIDLIST_MAX) {
    close(fd);
    return -1;
  }
  text = util_xmalloc((size_t)st.st_size + 1);
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  text[got] = '\0';
  return uidl_dovecot_parse(d, text, got);
}

int uidl_dovecot_lookup(const struct uidl_dovecot *d, const char *base, size_t len,
                         char out[71])
{
  size_t lo = 0, hi = d->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct uidl_dovecot_entry *r = &d->v[mid];
    size_t n = r->name_len < len ? r->name_len : len;
    int c = memcmp(d->text + r->name, base, n);
    if (c == 0)
      c = r->name_len < len ? -1 : r->name_len > len;
    if (c == 0) {
      if (r->pop3_len > 0) {
        memcpy(out, d->text + r->pop3, r->pop3_len);
        out[r->pop3_len] = '\0';
        return UIDL_DOVECOT_POP3;
      }
      uidl_dovecot_format(r->uid, d->uidvalidity, out);
      return UIDL_DOVECOT_UID;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return UIDL_DOVECOT_NONE;
}

void uidl_dovecot_free(struct uidl_dovecot *d)
{
  free(d->v);
  free(d->text);
  memset(d, 0, sizeof *d);
}

/* ---- Dovecot's mbox X-IMAPbase and X-UID ---- */

void uidl_dovecot_format(uint32_t uid, uint32_t validity, char out[71])
{
  /* Dovecot's X modifier prints lower-case hex (tests/e2e/test_migration.py). */
  snprintf(out, 71, "%08x%08x", (unsigned)uid, (unsigned)validity);
}

static bool is_lwsp(char ch)
{
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

bool uidl_ximapbase_parse(const char *v, size_t len, uint32_t *validity, uint32_t *last)
{
  const char *p = v, *e = v + len;

  while (p < e && is_lwsp(*p))
    p++;
  /* UIDVALIDITY, then a space or the end; then the last UID, then blanks or the end
   * (keywords may follow).  Dovecot pads the last UID to ten digits; others do not. */
  if (!dv_u32(&p, e, validity) || *validity == 0 || (p < e && *p != ' '))
    return false;
  while (p < e && is_lwsp(*p))
    p++;
  *last = 0;
  if (p < e && !dv_u32(&p, e, last))
    return false;
  return p == e || is_lwsp(*p);
}

void uidl_chain_start(struct uidl_mbox_chain *c, uint32_t validity, uint32_t last)
{
  c->validity = validity;
  c->prev = 0;
  c->next = (uint64_t)last + 1;
}

bool uidl_chain_xuid(const struct uidl_mbox_chain *c, const char *v, size_t len,
                     uint32_t *uid)
{
  const char *p = v, *e = v + len;
  uint32_t value = 0;

  if (c->validity == 0)
    return false;
  while (p < e && is_lwsp(*p))
    p++;
  if (p < e && !dv_u32(&p, e, &value))
    return false;
  for (; p < e; p++)
    if (!is_lwsp(*p))
      return false;
  if (value > c->next || value <= c->prev)
    return false;
  *uid = value;
  return true;
}

void uidl_chain_end(struct uidl_mbox_chain *c, uint32_t uid, bool pseudo)
{
  if (c->validity == 0)
    return;
  if (uid == 0) {
    if (pseudo)
      return;
    if (c->next > UINT32_MAX) {
      /* Dovecot would renumber the maildrop: nothing after this is trusted (an
       * inactive chain is all zero, as uidl_chain_valid wants it in an index). */
      memset(c, 0, sizeof *c);
      return;
    }
    uid = (uint32_t)c->next;
  }
  if (uid == c->next)
    c->next++;
  c->prev = uid;
}

bool uidl_chain_valid(const struct uidl_mbox_chain *c)
{
  if (c->validity == 0)
    return c->prev == 0 && c->next == 0;
  return c->next >= 1 && c->next <= (uint64_t)UINT32_MAX + 1 && c->prev < c->next;
}

/* ---- Ids kept and retired ---- */

/* The table of ids in use or retired: a slot names an id of mb->uids (ext 0) or a
 * retired one (ext: its index + 1), and the next suffix to try for that id. */
struct assign_slot {
  uint32_t off;
  uint32_t ext;
  uint32_t next;
  bool used;
};

struct assign_tab {
  struct assign_slot *s;
  size_t mask;
  const struct mailbox *mb;
  const struct uidl_retired *retired;
};

static uint64_t str_key(const char *s, size_t len)
{
  struct uidl_hash h;

  uidl_hash_init(&h);
  uidl_hash_update(&h, s, len);
  return uidl_hash_value(&h, len);
}

static const char *slot_str(const struct assign_tab *t, const struct assign_slot *sl)
{
  return sl->ext ? t->retired[sl->ext - 1].id : t->mb->uids + sl->off;
}

/* The slot of s[0..len): the one holding it, or the empty one where it goes. */
static struct assign_slot *tab_find(const struct assign_tab *t, const char *s, size_t len)
{
  size_t i = (size_t)str_key(s, len) & t->mask;

  for (;; i = (i + 1) & t->mask) {
    struct assign_slot *sl = &t->s[i];
    const char *o;
    if (!sl->used)
      return sl;
    o = slot_str(t, sl);
    if (strncmp(o, s, len) == 0 && o[len] == '\0')
      return sl;
  }
}

bool uidl_retired_in_force(const struct uidl_retired *r, int64_t now)
{
  return r->since > 0 && r->since <= now + 86400 && now - r->since < UIDL_RETIRE_SECONDS;
}

int uidl_assign(struct mailbox *mb, const char *const *keep, struct uidl_retired *retired,
                size_t nretired, int64_t now, const char **error_r)
{
  struct assign_tab t;
  size_t cap = 16, total = mb->count + nretired;
  bool *done;

  if (mb->count == 0) {
    for (size_t k = 0; k < nretired; k++)
      if (!uidl_retired_in_force(&retired[k], now))
        retired[k].since = 0;
    return 0;
  }
  while (cap < total * 2)
    cap *= 2;
  t.s = calloc(cap, sizeof *t.s);
  done = calloc(mb->count, sizeof *done);
  if (t.s == NULL || done == NULL) {
    free(t.s);
    free(done);
    *error_r = "out of memory";
    return -1;
  }
  t.mask = cap - 1;
  t.mb = mb;
  t.retired = retired;
  /* First the ids the index remembers: a message keeps its own (the first of two
   * messages that claim one). */
  for (size_t i = 0; keep != NULL && i < mb->count; i++) {
    size_t len;
    struct assign_slot *sl;
    uint32_t off;
    if (keep[i] == NULL)
      continue;
    len = strlen(keep[i]);
    if (!uidl_valid(keep[i], len))
      continue;
    sl = tab_find(&t, keep[i], len);
    if (sl->used)
      continue;
    if (strcmp(mailbox_uid(mb, i), keep[i]) == 0) {
      off = mb->msgs[i].uid;
    } else {
      off = mailbox_add_uid(mb, keep[i], len);
      if (off == MAILBOX_UID_NONE)
        goto nomem;
    }
    sl->used = true;
    sl->off = off;
    mb->msgs[i].uid = off;
    done[i] = true;
  }
  /* Then the retired ids still in force. */
  for (size_t k = 0; k < nretired; k++) {
    struct assign_slot *sl;
    if (!uidl_retired_in_force(&retired[k], now)) {
      retired[k].since = 0;
      continue;
    }
    sl = tab_find(&t, retired[k].id, strlen(retired[k].id));
    if (sl->used) {
      retired[k].since = 0;       /* in use (or twice in the list) */
      continue;
    }
    sl->used = true;
    sl->ext = (uint32_t)k + 1;
  }
  /* Then every other message in order, as mailbox_unique_uids does it. */
  for (size_t i = 0; i < mb->count; i++) {
    const char *id;
    size_t len;
    struct assign_slot *base;
    char cand[PARAMS_UIDL_MAX + 1];

    if (done[i])
      continue;
    id = mailbox_uid(mb, i);
    len = strlen(id);
    base = tab_find(&t, id, len);
    if (!base->used) {
      base->used = true;
      base->off = mb->msgs[i].uid;
      continue;
    }
    if (base->next < 2)
      base->next = 2;
    for (;;) {
      char suffix[16];
      size_t sl = (size_t)snprintf(suffix, sizeof suffix, "-%u", (unsigned)base->next);
      size_t keep_len = len;
      struct assign_slot *slot;
      uint32_t off;

      base->next++;
      if (keep_len + sl > PARAMS_UIDL_MAX)
        keep_len = PARAMS_UIDL_MAX - sl;
      memcpy(cand, mailbox_uid(mb, i), keep_len);
      memcpy(cand + keep_len, suffix, sl);
      cand[keep_len + sl] = '\0';
      slot = tab_find(&t, cand, keep_len + sl);
      if (slot->used)
        continue;
      off = mailbox_add_uid(mb, cand, keep_len + sl);
      if (off == MAILBOX_UID_NONE)
        goto nomem;
      slot->used = true;
      slot->off = off;
      mb->msgs[i].uid = off;
      break;
    }
  }
  free(t.s);
  free(done);
  return 0;
nomem:
  free(t.s);
  free(done);
  *error_r = "out of memory";
  return -1;
}

void uidl_retired_add(struct uidl_retired_list *l, const char *id, int64_t since)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = util_xreallocarray(l->v, l->cap, sizeof *l->v);
  }
  l->v[l->n].id = id;
  l->v[l->n].since = since;
  l->n++;
}

static int retired_newest_first(const void *a, const void *b)
{
  const struct uidl_retired *x = a, *y = b;

  return x->since > y->since ? -1 : x->since < y->since;
}

void uidl_retired_prune(struct uidl_retired_list *l)
{
  size_t k = 0;

  for (size_t i = 0; i < l->n; i++)
    if (l->v[i].since > 0)
      l->v[k++] = l->v[i];
  l->n = k;
  if (l->n > UIDL_RETIRED_MAX) {
    qsort(l->v, l->n, sizeof *l->v, retired_newest_first);
    l->n = UIDL_RETIRED_MAX;
  }
}

void uidl_retired_free(struct uidl_retired_list *l)
{
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* ---- Finding messages again after a rewrite ---- */

static const struct uidl_prior *match_prior;
static bool match_by_listed;

static int match_cmp(const void *a, const void *b)
{
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  const char *sx = match_by_listed ? match_prior[x].listed : match_prior[x].own;
  const char *sy = match_by_listed ? match_prior[y].listed : match_prior[y].own;
  int c = strcmp(sx, sy);

  if (c != 0)
    return c;
  return x < y ? -1 : x > y;
}

/* The first entry of the sorted order[0..np) whose key is s, or np. */
static size_t match_lower(const size_t *order, size_t np, const char *s)
{
  size_t lo = 0, hi = np;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct uidl_prior *p = &match_prior[order[mid]];
    if (strcmp(match_by_listed ? p->listed : p->own, s) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* May record r be message i's in this pass?  0: the same disc, not going; 1: the same
 * disc, going; 2: the same own id, not going; 3: the listed id, not going. */
static bool match_ok(const struct uidl_prior *r, int pass, uint64_t disc)
{
  if (pass < 2)
    return r->disc != 0 && r->disc == disc && r->going == (pass == 1);
  return !r->going;
}

void uidl_match(const struct uidl_prior *p, size_t np, const struct mailbox *mb,
                const uint64_t *disc, size_t *match)
{
  size_t *order;
  bool *used;

  for (size_t i = 0; i < mb->count; i++)
    match[i] = SIZE_MAX;
  if (np == 0 || mb->count == 0)
    return;
  order = util_xreallocarray(NULL, np, sizeof *order);
  used = util_xcalloc(np, sizeof *used);
  for (size_t k = 0; k < np; k++)
    order[k] = k;
  match_prior = p;
  for (int pass = 0; pass < 4; pass++) {
    if (pass == 0 || pass == 3) {
      match_by_listed = pass == 3;
      qsort(order, np, sizeof *order, match_cmp);
    }
    for (size_t i = 0; i < mb->count; i++) {
      const char *own = mailbox_uid(mb, i);
      if (match[i] != SIZE_MAX)
        continue;
      for (size_t j = match_lower(order, np, own); j < np; j++) {
        const struct uidl_prior *r = &p[order[j]];
        if (strcmp(match_by_listed ? r->listed : r->own, own) != 0)
          break;
        if (used[order[j]] || !match_ok(r, pass, disc[i]))
          continue;
        used[order[j]] = true;
        match[i] = order[j];
        break;
      }
    }
  }
  match_prior = NULL;
  free(order);
  free(used);
}
