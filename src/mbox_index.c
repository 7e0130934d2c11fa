/* mbox_index.c - the on-disk index of an mbox maildrop (see mbox_index.h).
 *
 * Layout (host byte order: the index never leaves the host that wrote it):
 *   header   struct idx_header, its checksum the last field
 *   records  count x struct idx_rec
 *   arena    the NUL-separated unique ids, as the scan produced them
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
#include <sys/stat.h>
#include <unistd.h>

#include "mbox_index.h"
#include "spool.h"
#include "params.h"
#include "util.h"

#define IDX_MAGIC "P3MBIDX\n"
#define IDX_VERSION 2u

struct idx_header {
  char magic[8];
  uint32_t version;
  uint32_t rec_size;
  uint64_t dev, ino, size;
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
  uint64_t checksum;
};

struct idx_rec {
  uint64_t from, start, end, size;
  uint32_t lines, flags, uid, expire_mark;
};

/* The scanner's flags, which the index keeps. */
#define IDX_FLAGS (MAILBOX_MSG_XUIDL | MAILBOX_MSG_STATUS_D | MAILBOX_MSG_XUID)

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

static uint64_t idx_checksum(const struct idx_header *h, const char *body, size_t blen)
{
  uint64_t x = idx_hash(0x6a09e667f3bcc908ull, h, offsetof(struct idx_header, checksum));
  return idx_hash(x, body, blen);
}

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

/* Check the records and arena against the header; fill mb. */
static bool idx_fill(const struct idx_header *h, const char *body, struct mailbox *mb,
                     off_t **from_r)
{
  size_t count = (size_t)h->count, alen = (size_t)h->arena_len;
  const struct idx_rec *recs = (const void *)body;
  const char *arena = body + count * sizeof *recs;
  struct mailbox_msg *msgs = NULL;
  off_t *from = NULL;
  char *uids = NULL;
  uint64_t prev_end = 0, total = 0;
  uint32_t next_uid = 0;

  if (count > 0) {
    msgs = malloc(count * sizeof *msgs);
    from = malloc(count * sizeof *from);
    uids = malloc(alen);
    if (msgs == NULL || from == NULL || uids == NULL)
      goto bad;
  }
  if (alen > 0 && arena[alen - 1] != '\0')
    goto bad;
  for (size_t i = 0; i < count; i++) {
    struct idx_rec r;
    size_t ulen;
    uint64_t span;
    memcpy(&r, &recs[i], sizeof r);
    if (r.from < prev_end || r.start < r.from || r.end < r.start || r.end > h->scanned_end ||
        (r.flags & ~(uint32_t)IDX_FLAGS) != 0)
      goto bad;
    span = r.end - r.start;
    /* The size rule: at most a CR a line plus CRLF after the last. */
    if (r.size > 2 * span + 2 || r.lines > span + 1)
      goto bad;
    /* Ids are stored in message order, each once: the arena is read straight. */
    if (r.uid != next_uid || r.uid >= alen)
      goto bad;
    ulen = strlen(arena + r.uid);
    if (ulen == 0 || ulen > PARAMS_UIDL_MAX)
      goto bad;
    next_uid = r.uid + (uint32_t)ulen + 1;
    msgs[i].start = (off_t)r.start;
    msgs[i].end = (off_t)r.end;
    msgs[i].size = r.size;
    msgs[i].lines = r.lines;
    msgs[i].uid = r.uid;
    msgs[i].flags = r.flags;
    msgs[i].expire_mark = r.expire_mark;
    from[i] = (off_t)r.from;
    total += r.size;
    prev_end = r.end;
  }
  if (next_uid != alen)
    goto bad;
  if (alen > 0)
    memcpy(uids, arena, alen);
  mb->msgs = msgs;
  mb->count = count;
  mb->uids = uids;
  mb->uids_len = mb->uids_cap = alen;
  mb->total_size = total;
  *from_r = from;
  return true;
bad:
  free(msgs);
  free(from);
  free(uids);
  return false;
}

enum mbox_index_result mbox_index_load(const char *ipath, int mbox_fd, const struct stat *st,
                                       struct mailbox *mb, off_t **from_r,
                                       struct mbox_index_info *info, int64_t now)
{
  struct idx_header h;
  struct stat ist;
  char *body = NULL;
  size_t blen;
  enum mbox_index_result res = MBOX_INDEX_MISS;
  uint64_t tail;
  int fd = open(ipath, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

  if (fd < 0)
    goto out;
  if (fstat(fd, &ist) < 0 || !S_ISREG(ist.st_mode) || ist.st_uid != geteuid() ||
      ist.st_nlink != 1 || (uint64_t)ist.st_size < sizeof h ||
      util_pread_all(fd, &h, sizeof h, 0) < 0)
    goto out;
  if (memcmp(h.magic, IDX_MAGIC, 8) != 0 || h.version != IDX_VERSION ||
      h.rec_size != sizeof(struct idx_rec) || h.count > PARAMS_MAILBOX_MESSAGES_MAX ||
      h.arena_len >= MAILBOX_UID_NONE ||
      h.count * sizeof(struct idx_rec) + h.arena_len + sizeof h != (uint64_t)ist.st_size)
    goto out;
  /* The key: the same file, not shorter, and what was scanned still there. */
  if (h.dev != (uint64_t)st->st_dev || h.ino != (uint64_t)st->st_ino ||
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
  blen = (size_t)((uint64_t)ist.st_size - sizeof h);
  body = malloc(blen ? blen : 1);
  if (body == NULL || util_pread_all(fd, body, blen, sizeof h) < 0 || idx_checksum(&h, body, blen) != h.checksum) {
    res = MBOX_INDEX_MISS;
    goto out;
  }
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
  if (!idx_fill(&h, body, mb, from_r)) {
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
  if (res == MBOX_INDEX_HIT)
    mbox_index_stats.hits++;
  else if (res == MBOX_INDEX_GREW)
    mbox_index_stats.grew++;
  else
    mbox_index_stats.misses++;
  return res;
}

int mbox_index_write(const char *ipath, int mbox_fd, const struct stat *st,
                     const struct mailbox *mb, const off_t *from,
                     const struct mbox_index_info *info)
{
  struct idx_header h;
  struct idx_rec *recs;
  size_t blen, rlen;
  char *body, *tmp;
  int fd;

  if (mb->count > PARAMS_MAILBOX_MESSAGES_MAX || mb->uids_len >= MAILBOX_UID_NONE ||
      info->scanned_end != st->st_size)
    return -1;
  rlen = mb->count * sizeof *recs;
  blen = rlen + mb->uids_len;
  body = malloc(blen ? blen : 1);
  if (body == NULL)
    return -1;
  recs = (void *)body;
  for (size_t i = 0; i < mb->count; i++) {
    const struct mailbox_msg *m = &mb->msgs[i];
    struct idx_rec r;
    memset(&r, 0, sizeof r);
    r.from = (uint64_t)from[i];
    r.start = (uint64_t)m->start;
    r.end = (uint64_t)m->end;
    r.size = m->size;
    r.lines = m->lines;
    r.flags = m->flags & IDX_FLAGS;
    r.uid = m->uid;
    r.expire_mark = m->expire_mark;
    memcpy(&recs[i], &r, sizeof r);
  }
  if (mb->uids_len > 0)
    memcpy(body + rlen, mb->uids, mb->uids_len);
  memset(&h, 0, sizeof h);
  memcpy(h.magic, IDX_MAGIC, 8);
  h.version = IDX_VERSION;
  h.rec_size = sizeof(struct idx_rec);
  h.dev = (uint64_t)st->st_dev;
  h.ino = (uint64_t)st->st_ino;
  h.size = (uint64_t)st->st_size;
  h.mtime_sec = (int64_t)st->st_mtim.tv_sec;
  h.mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
  h.scanned_end = (uint64_t)info->scanned_end;
  h.count = mb->count;
  h.arena_len = mb->uids_len;
  h.future_mark = info->future_mark;
  h.chain_validity = info->chain_last.validity;
  h.chain_prev = info->chain_last.prev;
  h.chain_next = info->chain_last.next;
  if (idx_tail_hash(mbox_fd, info->scanned_end, &h.tail_hash) < 0) {
    free(body);
    return -1;
  }
  h.checksum = idx_checksum(&h, body, blen);

  tmp = util_xasprintf("%s.%08x", ipath, (unsigned)getpid());
  fd = spool_create(tmp);
  if (fd < 0 && errno == EEXIST && spool_unlink(tmp) == 0)
    fd = spool_create(tmp);
  if (fd < 0) {
    free(tmp);
    free(body);
    return -1;
  }
  {
    /* The maildrop user's (a no-op unless the process is more privileged). */
    bool ok = (fchown(fd, geteuid(), (gid_t)-1) == 0 || errno == EPERM) &&
              util_write_all(fd, &h, sizeof h) == 0 && util_write_all(fd, body, blen) == 0;
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
  h.checksum = idx_checksum(&h, (const char *)image + sizeof h, len - sizeof h);
  memcpy(image, &h, sizeof h);
  return 0;
}
