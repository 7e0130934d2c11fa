/* mbox_index.c - the on-disk index of an mbox maildrop (see mbox_index.h).
 *
 * Layout (host byte order: the index never leaves the host that wrote it), version 3:
 *   header   struct idx_header, its checksum the last field
 *   records  count x struct idx_rec: the table, each message's own and listed id, its
 *            expiry record and whether it was there at the adoption
 *   retired  nretired x struct idx_ret: ids retired and since when (uidl.h)
 *   arena    the NUL-terminated ids the records point into
 * The checksum covers everything but itself.  Version 2 (no record of listed ids,
 * retired ids or the adoption) is read once and migrated: its messages count as
 * adopted, so that their marks stay honoured as they were (mbox_index.h).
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
#include <sys/stat.h>
#include <unistd.h>

#include "mbox_index.h"
#include "spool.h"
#include "params.h"
#include "util.h"

#define IDX_MAGIC "P3MBIDX\n"
#define IDX_VERSION 3u
#define IDX_VERSION_2 2u     /* read and migrated (mbox_index_prior) */

struct idx_header {
  char magic[8];
  uint32_t version;
  uint32_t rec_size;
  uint64_t dev, ino, size;  /* all 0: no table of the file, only the record */
  int64_t mtime_sec, mtime_nsec;
  uint64_t scanned_end;
  uint64_t count;
  uint64_t arena_len;
  uint64_t tail_hash;
  uint32_t future_mark;
  uint32_t chain_validity;  /* Dovecot's UID chain before the last message (uidl.h) */
  uint32_t chain_prev;
  uint32_t pad;
  uint64_t chain_next;
  int64_t adopted;          /* version 3: when pop3d adopted the maildrop */
  uint64_t nretired;        /* version 3 */
  uint64_t checksum;
};

/* Version 3: the ids are offsets of NUL-terminated strings in the arena. */
struct idx_rec {
  uint64_t from, start, end, size;
  uint32_t lines, flags, mark, own;
  uint32_t listed, xflags;
  uint64_t disc;
};

struct idx_ret {
  int64_t since;
  uint32_t id, pad;
};

/* Version 2: the own ids in message order, each once, an arena read straight. */
struct idx_header_2 {
  char magic[8];
  uint32_t version;
  uint32_t rec_size;
  uint64_t dev, ino, size;
  int64_t mtime_sec, mtime_nsec;
  uint64_t scanned_end;
  uint64_t count;
  uint64_t arena_len;
  uint64_t tail_hash;
  uint32_t future_mark, chain_validity, chain_prev, pad;
  uint64_t chain_next;
  uint64_t checksum;
};

struct idx_rec_2 {
  uint64_t from, start, end, size;
  uint32_t lines, flags, uid, expire_mark;
};

/* The scanner's flags, which the index keeps. */
#define IDX_FLAGS (MAILBOX_MSG_XUIDL | MAILBOX_MSG_STATUS_D | MAILBOX_MSG_XUID)
#define IDX_XFLAGS (MBOX_INDEX_ADOPTED | MBOX_INDEX_GOING)

struct mbox_index_stats mbox_index_stats;

static uint64_t idx_hash(uint64_t h, const void *data, size_t len)
{
  const unsigned char *p = data;

  for (; len >= 8; p += 8, len -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  for (; len > 0; p++, len--) {
    h = (h ^ *p) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

/* hlen: the header's bytes before its checksum. */
static uint64_t idx_checksum(const void *h, size_t hlen, const char *body, size_t blen)
{
  uint64_t x = idx_hash(0x6a09e667f3bcc908ull, h, hlen);
  return idx_hash(x, body, blen);
}

#define IDX_SUM_LEN offsetof(struct idx_header, checksum)
#define IDX_SUM_LEN_2 offsetof(struct idx_header_2, checksum)

/* The hash of the MBOX_INDEX_TAIL bytes before end (fewer at the start of the file). */
static int idx_tail_hash(int fd, off_t end, uint64_t *hash_r)
{
  char buf[MBOX_INDEX_TAIL];
  off_t from = end > MBOX_INDEX_TAIL ? end - MBOX_INDEX_TAIL : 0;
  size_t want = (size_t)(end - from);

  if (util_pread_all(fd, buf, want, from) < 0)
    return -1;
  *hash_r = idx_hash((uint64_t)end, buf, want);
  return 0;
}

char *mbox_index_path(const char *mbox_path)
{
  const char *slash = strrchr(mbox_path, '/');
  size_t dlen = slash ? (size_t)(slash - mbox_path) + 1 : 0;
  const char *base = mbox_path + dlen;

  if (*base == '\0' || strlen(mbox_path) + sizeof MBOX_INDEX_SUFFIX + 1 > PARAMS_MAILBOX_URL_MAX)
    return NULL;
  return util_xasprintf("%.*s.%s" MBOX_INDEX_SUFFIX, (int)dlen, mbox_path, base);
}

/* The string at off of the arena[0..alen): NUL-terminated inside it, a valid id. */
static const char *idx_str(const char *arena, uint64_t alen, uint32_t off)
{
  const char *p, *nul;

  if (off >= alen)
    return NULL;
  p = arena + off;
  nul = memchr(p, '\0', (size_t)(alen - off) < PARAMS_UIDL_MAX + 1 ? (size_t)(alen - off)
                                                                  : PARAMS_UIDL_MAX + 1);
  if (nul == NULL || !uidl_valid(p, (size_t)(nul - p)))
    return NULL;
  return p;
}

void mbox_index_prior_free(struct mbox_index_prior *p)
{
  free(p->rec);
  free(p->flags);
  free(p->mark);
  free(p->arena);
  uidl_retired_free(&p->retired);
  memset(p, 0, sizeof *p);
}

static void prior_alloc(struct mbox_index_prior *p, size_t count, char *arena)
{
  p->count = count;
  p->arena = arena;
  p->rec = util_xcalloc(count ? count : 1, sizeof *p->rec);
  p->flags = util_xcalloc(count ? count : 1, sizeof *p->flags);
  p->mark = util_xcalloc(count ? count : 1, sizeof *p->mark);
}

/* Version 3: the record of every message and the retired ids (body: records, retired,
 * arena; it becomes p's).  false when any of it is out of bounds. */
static bool idx_prior(const struct idx_header *h, char *body, struct mbox_index_prior *p,
                      int64_t now)
{
  size_t count = (size_t)h->count, nret = (size_t)h->nretired;
  const struct idx_rec *recs = (const void *)body;
  const struct idx_ret *rets = (const void *)(body + count * sizeof *recs);
  const char *arena = (const char *)(rets + nret);
  uint64_t alen = h->arena_len;

  if (h->adopted <= 0 || h->adopted > now + 86400)
    return false;
  prior_alloc(p, count, body);
  p->adopted = h->adopted;
  for (size_t i = 0; i < count; i++) {
    struct idx_rec r;
    memcpy(&r, &recs[i], sizeof r);
    p->rec[i].own = idx_str(arena, alen, r.own);
    p->rec[i].listed = idx_str(arena, alen, r.listed);
    if (p->rec[i].own == NULL || p->rec[i].listed == NULL || (r.xflags & ~IDX_XFLAGS) != 0 ||
        (r.flags & ~(uint32_t)IDX_FLAGS) != 0)
      goto bad;
    p->rec[i].disc = r.disc;
    p->rec[i].going = (r.xflags & MBOX_INDEX_GOING) != 0;
    p->flags[i] = r.xflags;
    p->mark[i] = r.mark;
  }
  for (size_t k = 0; k < nret; k++) {
    struct idx_ret r;
    const char *id;
    memcpy(&r, &rets[k], sizeof r);
    id = idx_str(arena, alen, r.id);
    if (id == NULL || r.since <= 0)
      goto bad;
    uidl_retired_add(&p->retired, id, r.since);
  }
  p->found = true;
  return true;
bad:
  p->arena = NULL;
  mbox_index_prior_free(p);
  return false;
}

/* Version 2 (migration): every message it lists was there before; its id is the one
 * mailbox_unique_uids gave it, its mark the one the scan trusted. */
static bool idx_prior_2(const struct idx_header_2 *h, char *body, struct mbox_index_prior *p,
                        int64_t now)
{
  size_t count = (size_t)h->count, alen = (size_t)h->arena_len;
  const struct idx_rec_2 *recs = (const void *)body;
  const char *arena = body + count * sizeof *recs;
  struct mailbox tmp;
  const char *err;
  bool ok = false;

  memset(&tmp, 0, sizeof tmp);
  tmp.msgs = util_xcalloc(count ? count : 1, sizeof *tmp.msgs);
  prior_alloc(p, count, NULL);
  for (size_t i = 0; i < count; i++) {
    struct idx_rec_2 r;
    const char *id;
    memcpy(&r, &recs[i], sizeof r);
    id = idx_str(arena, alen, r.uid);
    if (id == NULL || (tmp.msgs[tmp.count].uid = mailbox_add_uid(&tmp, id, strlen(id))) ==
                          MAILBOX_UID_NONE)
      goto out;
    p->mark[i] = r.expire_mark;
    p->flags[i] = MBOX_INDEX_ADOPTED;
    tmp.count++;
  }
  if (mailbox_unique_uids(&tmp, &err) < 0)
    goto out;
  /* Own ids and listed ids both in the one arena, which p keeps. */
  p->arena = tmp.uids;
  tmp.uids = NULL;
  {
    /* The own id of message i is the first string at or after its record's offset: the
     * ids were stored in order, so the first count strings of tmp's arena. */
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
      p->rec[i].own = p->arena + off;
      off += strlen(p->arena + off) + 1;
      p->rec[i].listed = p->arena + tmp.msgs[i].uid;
    }
  }
  p->adopted = now;
  p->found = true;
  ok = true;
out:
  free(tmp.msgs);
  free(tmp.uids);
  if (!ok)
    mbox_index_prior_free(p);
  return ok;
}

/* Version 3: the table of the maildrop from the records (the index fits the file). */
static bool idx_fill(const struct idx_header *h, const struct mbox_index_prior *p,
                     const char *body, struct mailbox *mb, off_t **from_r,
                     struct mbox_index_msg **xm_r)
{
  size_t count = (size_t)h->count;
  const struct idx_rec *recs = (const void *)body;
  struct mailbox_msg *msgs = NULL;
  struct mbox_index_msg *xm = NULL;
  off_t *from = NULL;
  uint64_t prev_end = 0, total = 0;

  if (count > 0) {
    msgs = malloc(count * sizeof *msgs);
    from = malloc(count * sizeof *from);
    xm = malloc(count * sizeof *xm);
    if (msgs == NULL || from == NULL || xm == NULL)
      goto bad;
  }
  for (size_t i = 0; i < count; i++) {
    struct idx_rec r;
    uint64_t span;
    uint32_t off;
    memcpy(&r, &recs[i], sizeof r);
    if (r.from < prev_end || r.start < r.from || r.end < r.start || r.end > h->scanned_end)
      goto bad;
    span = r.end - r.start;
    /* The size rule: at most a CR a line plus CRLF after the last. */
    if (r.size > 2 * span + 2 || r.lines > span + 1)
      goto bad;
    off = mailbox_add_uid(mb, p->rec[i].own, strlen(p->rec[i].own));
    if (off == MAILBOX_UID_NONE)
      goto bad;
    msgs[i].start = (off_t)r.start;
    msgs[i].end = (off_t)r.end;
    msgs[i].size = r.size;
    msgs[i].lines = r.lines;
    msgs[i].uid = off;
    msgs[i].flags = r.flags;
    msgs[i].expire_mark = r.mark;
    xm[i].own = off;
    xm[i].flags = r.xflags;
    xm[i].mark = r.mark;
    xm[i].disc = r.disc;
    from[i] = (off_t)r.from;
    total += r.size;
    prev_end = r.end;
  }
  mb->msgs = msgs;
  mb->count = count;
  mb->total_size = total;
  *from_r = from;
  *xm_r = xm;
  return true;
bad:
  free(msgs);
  free(from);
  free(xm);
  free(mb->uids);
  mb->uids = NULL;
  mb->uids_len = mb->uids_cap = 0;
  return false;
}

/* Read version 2 (migrated to a record, never used as a table). */
static void idx_load_2(int fd, const struct stat *ist, struct mbox_index_prior *prior,
                       int64_t now)
{
  struct idx_header_2 h;
  char *body;
  size_t blen;

  if ((uint64_t)ist->st_size < sizeof h || util_pread_all(fd, &h, sizeof h, 0) < 0 ||
      h.rec_size != sizeof(struct idx_rec_2) || h.count > PARAMS_MAILBOX_MESSAGES_MAX ||
      h.arena_len >= MAILBOX_UID_NONE ||
      h.count * sizeof(struct idx_rec_2) + h.arena_len + sizeof h != (uint64_t)ist->st_size)
    return;
  blen = (size_t)((uint64_t)ist->st_size - sizeof h);
  body = malloc(blen ? blen : 1);
  if (body != NULL && util_pread_all(fd, body, blen, sizeof h) == 0 &&
      idx_checksum(&h, IDX_SUM_LEN_2, body, blen) == h.checksum)
    (void)idx_prior_2(&h, body, prior, now);
  free(body);
}

enum mbox_index_result mbox_index_load(const char *ipath, int mbox_fd, const struct stat *st,
                                       struct mailbox *mb, off_t **from_r,
                                       struct mbox_index_msg **xm_r,
                                       struct mbox_index_info *info,
                                       struct mbox_index_prior *prior, int64_t now)
{
  struct idx_header h;
  struct stat ist;
  char *body = NULL;
  size_t blen;
  enum mbox_index_result res = MBOX_INDEX_MISS;
  uint64_t tail;
  int fd = open(ipath, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

  memset(prior, 0, sizeof *prior);
  if (fd < 0)
    goto out;
  if (fstat(fd, &ist) < 0 || !S_ISREG(ist.st_mode) || ist.st_uid != geteuid() ||
      ist.st_nlink != 1 || (uint64_t)ist.st_size < offsetof(struct idx_header, rec_size) ||
      util_pread_all(fd, &h, offsetof(struct idx_header, rec_size), 0) < 0 ||
      memcmp(h.magic, IDX_MAGIC, 8) != 0)
    goto out;
  if (h.version == IDX_VERSION_2) {
    idx_load_2(fd, &ist, prior, now);
    goto out;
  }
  if (h.version != IDX_VERSION || (uint64_t)ist.st_size < sizeof h ||
      util_pread_all(fd, &h, sizeof h, 0) < 0)
    goto out;
  if (h.rec_size != sizeof(struct idx_rec) || h.count > PARAMS_MAILBOX_MESSAGES_MAX ||
      h.nretired > UIDL_RETIRED_MAX || h.arena_len >= MAILBOX_UID_NONE ||
      h.count * sizeof(struct idx_rec) + h.nretired * sizeof(struct idx_ret) + h.arena_len +
              sizeof h != (uint64_t)ist.st_size)
    goto out;
  blen = (size_t)((uint64_t)ist.st_size - sizeof h);
  body = malloc(blen ? blen : 1);
  if (body == NULL || util_pread_all(fd, body, blen, sizeof h) < 0 ||
      idx_checksum(&h, IDX_SUM_LEN, body, blen) != h.checksum)
    goto out;
  if (!idx_prior(&h, body, prior, now))
    goto out;
  body = NULL;          /* prior's arena now */
  /* The key: the same file, not shorter, and what was scanned still there. */
  if (h.dev != (uint64_t)st->st_dev || h.ino != (uint64_t)st->st_ino || h.dev + h.ino == 0 ||
      h.size != h.scanned_end || h.scanned_end > (uint64_t)st->st_size ||
      (h.future_mark != 0 && now >= (int64_t)h.future_mark))
    goto out;
  if (h.size == (uint64_t)st->st_size && h.mtime_sec == (int64_t)st->st_mtim.tv_sec &&
      h.mtime_nsec == (int64_t)st->st_mtim.tv_nsec)
    res = MBOX_INDEX_HIT;
  else if (h.size < (uint64_t)st->st_size)
    res = MBOX_INDEX_GREW;
  else
    goto out;
  if (res == MBOX_INDEX_GREW &&
      (idx_tail_hash(mbox_fd, (off_t)h.scanned_end, &tail) < 0 || tail != h.tail_hash)) {
    res = MBOX_INDEX_MISS;
    goto out;
  }
  {
    struct uidl_mbox_chain c = { h.chain_validity, h.chain_prev, h.chain_next };
    if (!uidl_chain_valid(&c)) {
      res = MBOX_INDEX_MISS;
      goto out;
    }
  }
  if (!idx_fill(&h, prior, prior->arena, mb, from_r, xm_r)) {
    res = MBOX_INDEX_MISS;
    goto out;
  }
  info->scanned_end = (off_t)h.scanned_end;
  info->future_mark = h.future_mark;
  info->chain_last.validity = h.chain_validity;
  info->chain_last.prev = h.chain_prev;
  info->chain_last.next = h.chain_next;
out:
  free(body);
  if (fd >= 0)
    close(fd);
  info->adopted = prior->adopted;
  if (res == MBOX_INDEX_HIT)
    mbox_index_stats.hits++;
  else if (res == MBOX_INDEX_GREW)
    mbox_index_stats.grew++;
  else
    mbox_index_stats.misses++;
  return res;
}

static uint32_t idx_arena_add(struct mailbox *ar, const char *id, bool *overflow)
{
  uint32_t off = mailbox_add_uid(ar, id, strlen(id));

  if (off == MAILBOX_UID_NONE)
    *overflow = true;
  return off;
}

int mbox_index_write(const char *ipath, int mbox_fd, const struct stat *st,
                     const struct mailbox *mb, const off_t *from,
                     const struct mbox_index_msg *xm, const struct mbox_index_info *info,
                     const struct uidl_retired *ret, size_t nret)
{
  struct idx_header h;
  struct idx_rec *recs;
  struct idx_ret *rets;
  struct mailbox ar;      /* its uids: the arena of the image */
  bool overflow = false;
  size_t blen, rlen, tlen, nkeep = 0;
  char *body, *tmp;
  int fd;

  if (mb->count > PARAMS_MAILBOX_MESSAGES_MAX ||
      (st != NULL && info->scanned_end != st->st_size))
    return -1;
  for (size_t k = 0; k < nret; k++)
    if (ret[k].since > 0)
      nkeep++;
  if (nkeep > UIDL_RETIRED_MAX)
    return -1;
  memset(&ar, 0, sizeof ar);
  rlen = mb->count * sizeof *recs;
  tlen = nkeep * sizeof *rets;
  recs = util_xcalloc(mb->count ? mb->count : 1, sizeof *recs);
  rets = util_xcalloc(nkeep ? nkeep : 1, sizeof *rets);
  for (size_t i = 0; i < mb->count; i++) {
    const struct mailbox_msg *m = &mb->msgs[i];
    recs[i].from = st != NULL ? (uint64_t)from[i] : 0;
    recs[i].start = st != NULL ? (uint64_t)m->start : 0;
    recs[i].end = st != NULL ? (uint64_t)m->end : 0;
    recs[i].size = st != NULL ? m->size : 0;
    recs[i].lines = st != NULL ? m->lines : 0;
    recs[i].flags = m->flags & IDX_FLAGS;
    recs[i].mark = xm[i].mark;
    recs[i].own = idx_arena_add(&ar, mb->uids + xm[i].own, &overflow);
    recs[i].listed = idx_arena_add(&ar, mailbox_uid(mb, i), &overflow);
    recs[i].xflags = xm[i].flags & IDX_XFLAGS;
    recs[i].disc = xm[i].disc;
  }
  for (size_t k = 0, j = 0; k < nret; k++)
    if (ret[k].since > 0) {
      rets[j].since = ret[k].since;
      rets[j].id = idx_arena_add(&ar, ret[k].id, &overflow);
      j++;
    }
  if (overflow) {
    free(recs);
    free(rets);
    free(ar.uids);
    return -1;
  }
  blen = rlen + tlen + ar.uids_len;
  body = util_xmalloc(blen ? blen : 1);
  memcpy(body, recs, rlen);
  memcpy(body + rlen, rets, tlen);
  if (ar.uids_len > 0)
    memcpy(body + rlen + tlen, ar.uids, ar.uids_len);
  free(recs);
  free(rets);
  free(ar.uids);
  memset(&h, 0, sizeof h);
  memcpy(h.magic, IDX_MAGIC, 8);
  h.version = IDX_VERSION;
  h.rec_size = sizeof(struct idx_rec);
  if (st != NULL) {
    h.dev = (uint64_t)st->st_dev;
    h.ino = (uint64_t)st->st_ino;
    h.size = (uint64_t)st->st_size;
    h.mtime_sec = (int64_t)st->st_mtim.tv_sec;
    h.mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
    h.scanned_end = (uint64_t)info->scanned_end;
    h.future_mark = info->future_mark;
    h.chain_validity = info->chain_last.validity;
    h.chain_prev = info->chain_last.prev;
    h.chain_next = info->chain_last.next;
  }
  h.count = mb->count;
  h.arena_len = ar.uids_len;
  h.adopted = info->adopted;
  h.nretired = nkeep;
  if (st != NULL && idx_tail_hash(mbox_fd, info->scanned_end, &h.tail_hash) < 0) {
    free(body);
    return -1;
  }
  h.checksum = idx_checksum(&h, IDX_SUM_LEN, body, blen);

  /* Under the maildrop's lock the temporary file has one name, which the next open
   * removes when a killed session left it (mbox_index_clean); without the lock
   * (adopting a missing maildrop) a name of its own. */
  tmp = info->unlocked ? util_xasprintf("%s.%08x", ipath, (unsigned)getpid())
                       : util_xasprintf("%s" MBOX_INDEX_TEMP, ipath);
  fd = spool_create(tmp);
  if (fd < 0 && errno == EEXIST && spool_unlink(tmp) == 0)
    fd = spool_create(tmp);
  if (fd < 0) {
    free(tmp);
    free(body);
    return -1;
  }
  {
    /* The maildrop user's (a no-op unless the process is more privileged).  Written
     * before an UPDATE (st NULL), it is durable before the maildrop changes: it holds
     * the marks and the deletions that the next open must know. */
    bool ok = (fchown(fd, geteuid(), (gid_t)-1) == 0 || errno == EPERM) &&
              util_write_all(fd, &h, sizeof h) == 0 && util_write_all(fd, body, blen) == 0 &&
              (st != NULL || fsync(fd) == 0);
    if (close(fd) < 0)
      ok = false;
    fd = ok ? spool_rename(tmp, ipath) : -1;
  }
  if (fd < 0) {
    spool_unlink(tmp);
    free(tmp);
    free(body);
    return -1;
  }
  free(tmp);
  free(body);
  mbox_index_stats.writes++;
  return 0;
}

void mbox_index_clean(const char *ipath)
{
  char *tmp = util_xasprintf("%s" MBOX_INDEX_TEMP, ipath);

  (void)spool_unlink(tmp);
  free(tmp);
}

int mbox_index_seal(void *image, size_t len, int mbox_fd, const struct stat *st)
{
  struct idx_header h;

  if (len < sizeof h)
    return -1;
  memcpy(&h, image, sizeof h);
  h.dev = (uint64_t)st->st_dev;
  h.ino = (uint64_t)st->st_ino;
  if (h.scanned_end == (uint64_t)st->st_size) {
    h.size = h.scanned_end;
    h.mtime_sec = (int64_t)st->st_mtim.tv_sec;
    h.mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
  } else if (h.scanned_end < (uint64_t)st->st_size) {
    h.size = h.scanned_end;
    if (idx_tail_hash(mbox_fd, (off_t)h.scanned_end, &h.tail_hash) < 0)
      return -1;
  }
  h.checksum = idx_checksum(&h, IDX_SUM_LEN, (const char *)image + sizeof h, len - sizeof h);
  memcpy(image, &h, sizeof h);
  return 0;
}
