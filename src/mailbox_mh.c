/* mailbox_mh.c - MH folders: a message a file, named by its number.
 *
 * The view is the numbered regular files of the folder at open, in numeric order; names
 * that are not plain numbers (",N" backups, dot files, "007") are not messages.  DELE
 * + QUIT unlinks the file and removes its number from every sequence in .mh_sequences
 * (a RETR'd message leaves `unseen'), rewriting that file through a temporary file and
 * rename so that a crash leaves the old or the new one.  The messages marked deleted
 * are removed all or none (the intent record of mailbox_file.h): a record left by an
 * interrupted UPDATE is completed at the next open, .mh_sequences included.  What the
 * scan of a message found is kept in the index (maildir_index.h), keyed by number,
 * inode, size and ctime.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "expire.h"
#include "log.h"
#include "mailbox.h"
#include "mailbox_file.h"
#include "maildir_index.h"
#include "params.h"
#include "uidl.h"

#define MH_SEQUENCES ".mh_sequences"
#define MH_SEQUENCES_MAX (16u * 1024 * 1024)

struct mh_priv {
  int dirfd;
  uint32_t *num;           /* per message: its number */
  int fd;
  size_t fd_index;
};

/* A message number: digits only, no leading zero, within uint32. */
static bool mh_number(const char *s, uint32_t *n)
{
  uint64_t v = 0;

  if (*s < '1' || *s > '9')
    return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return false;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > UINT32_MAX)
      return false;
  }
  *n = (uint32_t)v;
  return true;
}

static int cmp_u32(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

  return x < y ? -1 : x > y;
}

/* The clock file systems stamp ctime with (the coarse one on Linux), read before any
 * message is examined. */
static void mh_clock(struct timespec *t0)
{
#ifdef CLOCK_REALTIME_COARSE
  if (clock_gettime(CLOCK_REALTIME_COARSE, t0) == 0)
    return;
#endif
  t0->tv_sec = time(NULL) - 1;
  t0->tv_nsec = 0;
}

/* May the file examined with st go into the index?  Only when its ctime is before t0:
 * a change made after it was examined then gets a later ctime, and the index entry
 * does not match any more.  A file changed within the same clock tick is read again
 * next time. */
static bool mh_settled(const struct stat *st, const struct timespec *t0)
{
  return st->st_ctim.tv_sec < t0->tv_sec ||
         (st->st_ctim.tv_sec == t0->tv_sec && st->st_ctim.tv_nsec < t0->tv_nsec);
}

/* Is message file name (nlen bytes) the one the index knows: the same inode, size and
 * ctime (MH tools edit messages in place)?  Fills *e. */
static bool mh_index_hit(struct maildir_index *ix, int dirfd, const char *name,
                         size_t nlen, struct maildir_index_entry *e)
{
  struct stat st;

  return ix != NULL && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISREG(st.st_mode) && maildir_index_find(ix, name, nlen, (uint64_t)st.st_ino, e) &&
         e->fsize == (uint64_t)st.st_size && e->ctime_sec == (int64_t)st.st_ctim.tv_sec &&
         e->ctime_nsec == (int64_t)st.st_ctim.tv_nsec;
}

/* The old index's entries of the messages v[0..upto), all found in it: the start of
 * the new index (which is built only once it differs from the old).  bidx[j]: the
 * entry of message j in ib. */
static void mh_index_backfill(struct maildir_index *ix, struct maildir_index_builder *ib,
                              int dirfd, const uint32_t *v, size_t upto, size_t *bidx)
{
  for (size_t j = 0; j < upto; j++) {
    char name[16];
    size_t nlen = (size_t)snprintf(name, sizeof name, "%u", (unsigned)v[j]);
    struct maildir_index_entry e;
    if (mh_index_hit(ix, dirfd, name, nlen, &e) && maildir_index_add(ib, &e))
      bidx[j] = ib->count - 1;
  }
}

static void mh_update_sequences(struct mailbox *mb, const uint32_t *del, size_t ndel,
                                const uint32_t *seen, size_t nseen);

/* ---- Completing an UPDATE that was interrupted (mailbox_file.h) ---- */

struct mh_recovery {
  int dirfd;
  uint32_t *del;           /* numbers now free of their recorded message */
  size_t ndel, cap;
  size_t removed, failed;
};

static bool mh_recover_file(void *arg, const struct mailbox_file_intent_rec *r, bool check)
{
  struct mh_recovery *s = arg;
  struct stat st;
  uint32_t num;

  if (strcmp(r->sub, "msg") != 0 || !mh_number(r->file, &num))
    return false;
  if (check)
    return true;
  if (fstatat(s->dirfd, r->file, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    /* Another file under the number (a delivery after the interruption) stays. */
    if (!S_ISREG(st.st_mode) || mailbox_file_mh_identity(&st) != r->ino)
      return true;
    if (unlinkat(s->dirfd, r->file, 0) < 0 && errno != ENOENT) {
      s->failed++;
      return true;
    }
    s->removed++;
    mailbox_file_step();
  } else if (errno != ENOENT) {
    s->failed++;
    return true;
  }
  if (s->ndel == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->del = util_xreallocarray(s->del, s->cap, sizeof *s->del);
  }
  s->del[s->ndel++] = num;
  return true;
}

/* Complete the UPDATE a record left in the folder says was decided, before the
 * messages are listed.  Problems are logged: the session goes on with what is there. */
static void mh_recover(struct mailbox *mb, int dirfd)
{
  struct mh_recovery s;
  const char *err = NULL;
  int r;

  memset(&s, 0, sizeof s);
  s.dirfd = dirfd;
  r = mailbox_file_intent_read(dirfd, MAILBOX_FILE_INTENT_MH, mh_recover_file, &s, &err);
  if (r < 0)
    log_msg(LOG_ERR, "%s: the record of an interrupted UPDATE is not used (%s)", mb->path,
            err);
  if (r > 0) {
    if (mailbox_file_sync_dir(dirfd) < 0)
      s.failed++;
    mailbox_file_step();
    if (s.ndel > 1)
      qsort(s.del, s.ndel, sizeof *s.del, cmp_u32);
    if (s.ndel > 0) {
      mh_update_sequences(mb, s.del, s.ndel, NULL, 0);
      if (mailbox_file_sync_dir(dirfd) < 0)
        s.failed++;
      mailbox_file_step();
    }
    if (s.failed > 0) {
      log_msg(LOG_ERR, "%s: an interrupted UPDATE could not be completed (%zu files not "
              "removed): tried again at the next open", mb->path, s.failed);
    } else {
      (void)unlinkat(dirfd, MAILBOX_FILE_INTENT_MH, 0);
      mailbox_file_step();
      log_msg(LOG_NOTICE, "%s: completed an interrupted UPDATE (%zu messages removed)",
              mb->path, s.removed);
    }
  }
  free(s.del);
}

static void mh_free_priv(struct mailbox *mb)
{
  struct mh_priv *pv = mb->priv;

  if (pv == NULL)
    return;
  if (pv->fd >= 0)
    close(pv->fd);
  if (pv->dirfd >= 0)
    close(pv->dirfd);
  free(pv->num);
  free(pv);
  mb->priv = NULL;
}

static enum mailbox_status mh_open(struct mailbox *mb, const struct conf *c,
                                   const char **error_r)
{
  struct mh_priv *pv = util_xcalloc(1, sizeof *pv);
  uint32_t *v = NULL;
  size_t n = 0, cap = 0;
  int status = MAILBOX_TEMP, fd;
  DIR *d = NULL;
  struct dirent *de;
  struct stat dst;
  struct timespec t0;
  struct maildir_index *ix = NULL;
  struct maildir_index_builder ib;
  size_t reused = 0, added = 0;
  bool building = false;  /* ib holds the entries of the messages so far */
  int64_t now = (int64_t)time(NULL);
  struct maildir_index_ids ids;

  memset(&ids, 0, sizeof ids);
  maildir_index_builder_init(&ib);
  pv->dirfd = pv->fd = -1;
  mb->priv = pv;
  mb->mboxrd = false;

  pv->dirfd = mailbox_file_open_dir(AT_FDCWD, mb->path, &status, error_r);
  if (pv->dirfd < 0) {
    if (errno == ENOENT) {
      /* No folder yet: an empty mailbox, as for a missing mbox. */
      mh_free_priv(mb);
      mb->priv = NULL;
      return MAILBOX_OK;
    }
    goto fail;
  }
  switch (mailbox_file_lock_dir(pv->dirfd, c)) {
  case 0:
    break;
  case 1:
    *error_r = "Mailbox in use";
    status = MAILBOX_INUSE;
    goto fail;
  default:
    *error_r = "cannot lock the folder";
    status = MAILBOX_TEMP;
    goto fail;
  }
  mh_recover(mb, pv->dirfd);
  fd = dup(pv->dirfd);
  if (fd < 0 || (d = fdopendir(fd)) == NULL) {
    if (fd >= 0)
      close(fd);
    *error_r = "cannot read the folder";
    goto fail;
  }
  while ((errno = 0, de = readdir(d)) != NULL) {
    uint32_t num;
    if (!mh_number(de->d_name, &num))
      continue;
    if (de->d_type != DT_REG) {
      struct stat st;
      if (de->d_type != DT_UNKNOWN ||
          fstatat(pv->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
          !S_ISREG(st.st_mode))
        continue;
    }
    if (n >= PARAMS_MAILBOX_MESSAGES_MAX) {
      *error_r = "too many messages in the mailbox";
      status = MAILBOX_PERM;
      goto fail;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      v = util_xreallocarray(v, cap, sizeof *v);
    }
    v[n++] = num;
  }
  if (errno != 0) {
    *error_r = "cannot read the folder";
    goto fail;
  }
  closedir(d);
  d = NULL;
  if (n > 1)
    qsort(v, n, sizeof *v, cmp_u32);

  mh_clock(&t0);
  if (fstat(pv->dirfd, &dst) == 0)
    ix = maildir_index_load(pv->dirfd, MH_INDEX_NAME, MAILDIR_INDEX_MH, &dst, now);
  else
    dst.st_ino = 0;       /* no index without the folder's identity */

  mb->msgs = util_xreallocarray(NULL, n ? n : 1, sizeof *mb->msgs);
  maildir_index_ids_init(&ids, n, ix, now);
  pv->num = util_xreallocarray(NULL, n ? n : 1, sizeof *pv->num);
  for (size_t k = 0; k < n; k++) {
    char name[16];
    size_t nlen;
    struct stat st;
    struct mailbox_file_info fi;
    struct maildir_index_entry e, prior;
    struct mailbox_msg *m = &mb->msgs[mb->count];
    uint32_t uid;
    bool has_prior;

    nlen = (size_t)snprintf(name, sizeof name, "%u", (unsigned)v[k]);
    if (mh_index_hit(ix, pv->dirfd, name, nlen, &e)) {
      maildir_index_stats.hits++;
      reused++;
      prior = e;
      has_prior = true;
      if (building && maildir_index_add(&ib, &e))
        ids.bidx[mb->count] = ib.count - 1;
    } else {
      if (!building) {
        mh_index_backfill(ix, &ib, pv->dirfd, v, k, ids.bidx);
        building = true;
      }
      fd = openat(pv->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP)
          continue;
        *error_r = "cannot open a message";
        status = errno == EACCES ? MAILBOX_PERM : MAILBOX_TEMP;
        goto fail;
      }
      if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        continue;
      }
      if (mailbox_file_scan(fd, st.st_size, false, &fi, error_r) < 0) {
        close(fd);
        goto fail;
      }
      close(fd);
      maildir_index_stats.scans++;
      memset(&e, 0, sizeof e);
      e.key = name;
      e.key_len = nlen;
      e.ino = (uint64_t)st.st_ino;
      e.fsize = (uint64_t)st.st_size;
      e.size = fi.size;
      e.lines = fi.lines > UINT32_MAX ? UINT32_MAX : (uint32_t)fi.lines;
      e.ctime_sec = (int64_t)st.st_ctim.tv_sec;
      e.ctime_nsec = (int64_t)st.st_ctim.tv_nsec;
      e.flags = MAILDIR_INDEX_LINES_EXACT | (fi.xuidl_len > 0 ? MAILDIR_INDEX_XUIDL : 0);
      /* The delivery time is the file's mtime (pop3d keeps it when it adds a mark). */
      maildir_index_marks(&fi, (int64_t)st.st_mtim.tv_sec, now, &e.expire_mark,
                          &e.future_mark);
      /* X-UIDL (Mailutils writes it), else the content: a renumbered folder (folder
       * -pack, sortm) must not give a different message an id a client already knows. */
      if (fi.xuidl_len > 0) {
        e.id = fi.xuidl;
        e.id_len = fi.xuidl_len;
      } else {
        e.id = fi.hash_id;
        e.id_len = strlen(fi.hash_id);
      }
      /* Its record when the file changed: the entry of its number, if that is this
       * message (its id, or the id pop3d wrote into it); numbers are reused. */
      has_prior = maildir_index_find_key(ix, name, nlen, e.id, e.id_len, &prior) ||
                  maildir_index_find_id(ix, e.id, e.id_len, &prior);
      /* A file changed within this clock tick is the record alone (ctime 0 matches no
       * file): read again next time. */
      if (!mh_settled(&st, &t0))
        e.ctime_sec = e.ctime_nsec = 0;
      if (maildir_index_add(&ib, &e)) {
        ids.bidx[mb->count] = ib.count - 1;
        added++;
      }
    }
    e.expire_mark = maildir_index_ids_msg(&ids, mb->count, has_prior ? &prior : NULL,
                                          e.expire_mark);
    uid = mailbox_add_uid(mb, e.id, e.id_len);
    if (uid == MAILBOX_UID_NONE) {
      *error_r = "out of memory";
      goto fail;
    }
    m->start = 0;
    m->end = (off_t)e.fsize;
    m->size = e.size;
    m->lines = e.lines;
    m->uid = uid;
    m->flags = (e.flags & MAILDIR_INDEX_XUIDL) ? MAILBOX_MSG_XUIDL : 0;
    m->expire_mark = e.expire_mark;
    pv->num[mb->count] = v[k];
    mb->count++;
    mb->total_size += e.size;
  }
  if (maildir_index_ids_assign(&ids, mb, ix, mb->path, error_r) < 0)
    goto fail;
  if (dst.st_ino != 0 && (added > 0 || maildir_index_count(ix) != reused || ids.changed)) {
    if (!building)
      mh_index_backfill(ix, &ib, pv->dirfd, v, n, ids.bidx);
    maildir_index_ids_records(&ids, mb, ix, &ib);
    (void)maildir_index_write(pv->dirfd, MH_INDEX_NAME, &ib, MAILDIR_INDEX_MH, &dst, now);
  }
  maildir_index_free(ix);
  ix = NULL;
  maildir_index_builder_free(&ib);
  maildir_index_ids_free(&ids);
  free(v);
  v = NULL;
  return MAILBOX_OK;

fail:
  maildir_index_ids_free(&ids);
  maildir_index_free(ix);
  maildir_index_builder_free(&ib);
  if (d != NULL)
    closedir(d);
  free(v);
  mh_free_priv(mb);
  return (enum mailbox_status)status;
}

static enum mailbox_status mh_check(struct mailbox *mb, const char **error_r)
{
  (void)mb;
  (void)error_r;
  return MAILBOX_OK;
}

static int mh_msg_fd(struct mailbox *mb, size_t i, int *fd_r, const char **error_r)
{
  struct mh_priv *pv = mb->priv;
  char name[16];
  struct stat st;
  int fd;

  if (pv == NULL || i >= mb->count) {
    *error_r = "no such message";
    return -1;
  }
  if (pv->fd >= 0 && pv->fd_index == i) {
    *fd_r = pv->fd;
    return 0;
  }
  if (pv->fd >= 0) {
    close(pv->fd);
    pv->fd = -1;
  }
  snprintf(name, sizeof name, "%u", (unsigned)pv->num[i]);
  fd = openat(pv->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    *error_r = errno == ENOENT ? "message removed by another program"
                               : "cannot open the message";
    return -1;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != mb->msgs[i].end) {
    close(fd);
    *error_r = "message changed by another program";
    return -1;
  }
  pv->fd = fd;
  pv->fd_index = i;
  *fd_r = fd;
  return 0;
}

/* ---- .mh_sequences ---- */

struct numset {
  const uint32_t *v;       /* sorted */
  size_t n;
};

/* First index of s with value >= x. */
static size_t numset_lower(const struct numset *s, uint32_t x)
{
  size_t lo = 0, hi = s->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->v[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

struct sbuf {
  char *s;
  size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1)
      cap *= 2;
    b->s = util_xreallocarray(b->s, cap, 1);
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}

static void sb_range(struct sbuf *b, uint32_t a, uint32_t z, bool *any)
{
  char t[32];
  int n = a == z ? snprintf(t, sizeof t, " %u", (unsigned)a)
                 : snprintf(t, sizeof t, " %u-%u", (unsigned)a, (unsigned)z);
  sb_add(b, t, (size_t)n);
  *any = true;
}

/* Rewrite the value of one sequence [p, e) without the numbers of rm.  Returns false
 * when the value is not a list of numbers and ranges (then it is kept as it is). */
static bool seq_filter(struct sbuf *out, const char *p, const char *e, const struct numset *rm,
                       bool *changed, bool *any)
{
  struct sbuf tmp = { NULL, 0, 0 };
  bool ch = false;

  *any = false;
  while (p < e) {
    uint64_t a = 0, z;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
      p++;
    if (p >= e)
      break;
    if (*p < '0' || *p > '9')
      goto bad;
    for (; p < e && *p >= '0' && *p <= '9'; p++)
      if ((a = a * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
        goto bad;
    z = a;
    if (p < e && *p == '-') {
      p++;
      if (p >= e || *p < '0' || *p > '9')
        goto bad;
      for (z = 0; p < e && *p >= '0' && *p <= '9'; p++)
        if ((z = z * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
          goto bad;
    }
    if (p < e && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
      goto bad;
    if (z < a)
      goto bad;
    {
      size_t k = numset_lower(rm, (uint32_t)a);
      uint64_t from = a;
      for (; k < rm->n && rm->v[k] <= z; k++) {
        ch = true;
        if (rm->v[k] > from)
          sb_range(&tmp, (uint32_t)from, rm->v[k] - 1, any);
        from = (uint64_t)rm->v[k] + 1;
      }
      if (from <= z)
        sb_range(&tmp, (uint32_t)from, (uint32_t)z, any);
    }
  }
  if (tmp.n > 0)
    sb_add(out, tmp.s, tmp.n);
  free(tmp.s);
  *changed = *changed || ch;
  return true;
bad:
  free(tmp.s);
  return false;
}

char *mailbox_mh_sequences_rewrite(const char *text, size_t len, const uint32_t *del,
                                   size_t ndel, const uint32_t *seen, size_t nseen,
                                   size_t *len_r)
{
  struct numset sdel = { del, ndel };
  uint32_t *both = NULL;
  struct numset sboth;
  struct sbuf out = { NULL, 0, 0 };
  const char *p = text, *e = text + len;
  bool changed = false;

  both = util_xreallocarray(NULL, ndel + nseen + 1, sizeof *both);
  memcpy(both, del, ndel * sizeof *del);
  if (nseen > 0)
    memcpy(both + ndel, seen, nseen * sizeof *seen);
  qsort(both, ndel + nseen, sizeof *both, cmp_u32);
  sboth.v = both;
  sboth.n = ndel + nseen;

  while (p < e) {
    /* A logical line: the line and its continuation lines (leading blank). */
    const char *ls = p, *le, *colon;
    do {
      const char *nl = memchr(p, '\n', (size_t)(e - p));
      p = nl ? nl + 1 : e;
    } while (p < e && (*p == ' ' || *p == '\t'));
    le = p;
    colon = memchr(ls, ':', (size_t)(le - ls));
    if (colon == NULL || colon == ls) {
      sb_add(&out, ls, (size_t)(le - ls));
      continue;
    }
    {
      size_t mark = out.n;
      bool any, unseen = (size_t)(colon - ls) == 6 && memcmp(ls, "unseen", 6) == 0;
      bool ch = false;
      sb_add(&out, ls, (size_t)(colon - ls) + 1);
      if (!seq_filter(&out, colon + 1, le, unseen ? &sboth : &sdel, &ch, &any)) {
        out.n = mark;
        sb_add(&out, ls, (size_t)(le - ls));
        continue;
      }
      if (!ch) {
        out.n = mark;
        sb_add(&out, ls, (size_t)(le - ls));
        continue;
      }
      changed = true;
      if (!any)
        out.n = mark;   /* an empty sequence goes, as nmh drops it */
      else
        sb_add(&out, "\n", 1);
    }
  }
  free(both);
  if (!changed) {
    free(out.s);
    return NULL;
  }
  if (out.s == NULL)
    sb_add(&out, "", 0);
  out.s[out.n] = '\0';    /* a sequence dropped last leaves its bytes past the end */
  *len_r = out.n;
  return out.s;
}

static void mh_update_sequences(struct mailbox *mb, const uint32_t *del, size_t ndel,
                                const uint32_t *seen, size_t nseen)
{
  struct mh_priv *pv = mb->priv;
  int fd = openat(pv->dirfd, MH_SEQUENCES, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  char *text = NULL, *out = NULL, tmp[64];
  size_t got = 0, olen = 0;
  int tfd = -1;

  if (fd < 0)
    return;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MH_SEQUENCES_MAX)
    goto out;
  text = util_xmalloc((size_t)st.st_size + 1);
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  out = mailbox_mh_sequences_rewrite(text, got, del, ndel, seen, nseen, &olen);
  if (out == NULL)
    goto out;
  for (int i = 0; i < 100 && tfd < 0; i++) {
    unsigned char r[4];
    if (util_random(r, sizeof r) < 0)
      goto out;
    snprintf(tmp, sizeof tmp, MH_SEQUENCES ".pop3d-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    tfd = openat(pv->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 st.st_mode & 0666);
    if (tfd < 0 && errno != EEXIST)
      goto out;
  }
  if (tfd < 0)
    goto out;
  if (util_write_all(tfd, out, olen) < 0 || fsync(tfd) < 0 || close(tfd) < 0 ||
      renameat(pv->dirfd, tmp, pv->dirfd, MH_SEQUENCES) < 0) {
    log_msg(LOG_ERR, "%s: cannot rewrite " MH_SEQUENCES ": %s", mb->path, strerror(errno));
    (void)unlinkat(pv->dirfd, tmp, 0);
    tfd = -1;
    goto out;
  }
  tfd = -1;
out:
  if (tfd >= 0) {
    close(tfd);
    (void)unlinkat(pv->dirfd, tmp, 0);
  }
  close(fd);
  free(text);
  free(out);
}

struct mh_ins {
  const struct mailbox *mb;
  size_t i;
};

/* The expiry mark, and the id when it is the content hash (the new header would change
 * it) rather than the message's own X-UIDL. */
static size_t mh_mark_ins(void *arg, const char *eol, char *buf, size_t cap)
{
  const struct mh_ins *a = arg;
  const struct mailbox *mb = a->mb;
  int n = snprintf(buf, cap, EXPIRE_HEADER ": %lld%s", (long long)mb->mark_time, eol), k = 0;

  if (n < 0 || (size_t)n >= cap)
    return 0;
  if (!(mb->msgs[a->i].flags & MAILBOX_MSG_XUIDL)) {
    k = snprintf(buf + n, cap - (size_t)n, "X-UIDL: %s%s", mailbox_uid(mb, a->i), eol);
    if (k < 0 || (size_t)k >= cap - (size_t)n)
      return 0;
  }
  return (size_t)n + (size_t)k;
}

/* Add the expiry mark to message i: a temporary dot file in the folder (not a message
 * to MH), renamed over the message; a crash leaves the old file or the new one. */
static int mh_mark(struct mailbox *mb, size_t i, const char **error_r)
{
  struct mh_priv *pv = mb->priv;
  struct mh_ins a = { mb, i };
  char tname[64], name[16];
  struct stat st;
  int fd, out, r;

  if (mh_msg_fd(mb, i, &fd, error_r) < 0)
    return -1;
  if (fstat(fd, &st) < 0) {
    *error_r = "cannot examine a message";
    return -1;
  }
  snprintf(name, sizeof name, "%u", (unsigned)pv->num[i]);
  snprintf(tname, sizeof tname, ".pop3d-mark.%ld.%zu", (long)getpid(), i);
  (void)unlinkat(pv->dirfd, tname, 0);
  out = openat(pv->dirfd, tname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                                     O_NOCTTY, 0600);
  if (out < 0) {
    *error_r = "cannot create a temporary file in the folder";
    return -1;
  }
  r = mailbox_file_copy_with(fd, mb->msgs[i].end, out, mh_mark_ins, &a, error_r);
  if (r == 0)
    (void)fchmod(out, st.st_mode & 0777);
  if (close(out) < 0 && r == 0) {
    *error_r = "cannot write a message";
    r = -1;
  }
  if (r == 0 && renameat(pv->dirfd, tname, pv->dirfd, name) < 0) {
    *error_r = "cannot rename the marked message into place";
    r = -1;
  }
  if (r < 0)
    (void)unlinkat(pv->dirfd, tname, 0);
  close(pv->fd);
  pv->fd = -1;
  return r;
}

/* Remove the messages marked deleted, all or none: recorded first (mailbox_file.h),
 * then unlinked.  The numbers now free go to del (*ndel_r); *rec_r tells whether a
 * record was committed (removed by the caller once .mh_sequences is rewritten). */
static enum mailbox_status mh_delete(struct mailbox *mb, uint32_t *del, size_t *ndel_r,
                                     bool *rec_r, const char **error_r)
{
  struct mh_priv *pv = mb->priv;
  struct mailbox_file_intent w;
  bool *rec = util_xcalloc(mb->count ? mb->count : 1, sizeof *rec);
  size_t failed = 0;
  bool begun = false;
  enum mailbox_status ret = MAILBOX_TEMP;

  *ndel_r = 0;
  *rec_r = false;
  for (size_t i = 0; i < mb->count; i++) {
    char name[16];
    struct stat st;
    if (!(mb->msgs[i].flags & MAILBOX_MSG_DELETED))
      continue;
    snprintf(name, sizeof name, "%u", (unsigned)pv->num[i]);
    if (fstatat(pv->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) {
        del[(*ndel_r)++] = pv->num[i];     /* another program removed it first */
        continue;
      }
      log_msg(LOG_ERR, "%s: cannot examine message %s: %s", mb->path, name,
              strerror(errno));
      *error_r = "cannot remove some messages";
      goto out;
    }
    if (!S_ISREG(st.st_mode))
      continue;
    if (!begun && mailbox_file_intent_begin(&w, pv->dirfd, MAILBOX_FILE_INTENT_MH) < 0) {
      log_msg(LOG_ERR, "%s: cannot create " MAILBOX_FILE_INTENT_MH ".new: %s", mb->path,
              strerror(errno));
      *error_r = "cannot record the deletions";
      goto out;
    }
    begun = true;
    mailbox_file_intent_add(&w, "msg", mailbox_file_mh_identity(&st), name);
    rec[i] = true;
  }
  if (begun) {
    begun = false;        /* committed, or dropped by the commit */
    if (mailbox_file_intent_commit(&w, error_r) < 0) {
      log_msg(LOG_ERR, "%s: %s: %s", mb->path, *error_r, strerror(errno));
      *ndel_r = 0;
      goto out;
    }
    *rec_r = true;
  }
  /* Decided: from here on, an interruption is completed by the next open. */
  for (size_t i = 0; i < mb->count; i++) {
    char name[16];
    if (!rec[i])
      continue;
    snprintf(name, sizeof name, "%u", (unsigned)pv->num[i]);
    if (unlinkat(pv->dirfd, name, 0) == 0 || errno == ENOENT) {
      del[(*ndel_r)++] = pv->num[i];
      mailbox_file_step();
    } else {
      log_msg(LOG_ERR, "%s: cannot remove message %s: %s", mb->path, name, strerror(errno));
      failed++;
    }
  }
  if (*ndel_r > 0) {
    if (mailbox_file_sync_dir(pv->dirfd) < 0) {
      log_msg(LOG_ERR, "%s: cannot sync the folder: %s", mb->path, strerror(errno));
      failed++;
    }
    mailbox_file_step();
  }
  if (failed > 0) {
    *rec_r = false;       /* kept: the next open tries again */
    *error_r = "cannot remove some messages";
    goto out;
  }
  ret = MAILBOX_OK;
out:
  if (begun)
    mailbox_file_intent_abort(&w);
  free(rec);
  return ret;
}

/* Message i's index key: its number. */
static const char *mh_key(const struct mailbox *mb, size_t i, char buf[16], size_t *len_r)
{
  const struct mh_priv *pv = mb->priv;

  *len_r = (size_t)snprintf(buf, 16, "%u", (unsigned)pv->num[i]);
  return buf;
}

static enum mailbox_status mh_update(struct mailbox *mb, size_t *deleted_r,
                                     const char **error_r)
{
  struct mh_priv *pv = mb->priv;
  uint32_t *del = NULL, *seen = NULL;
  size_t ndel = 0, nseen = 0;
  bool marked = false, recorded = false;
  enum mailbox_status ret;

  *deleted_r = 0;
  if (pv == NULL)
    return MAILBOX_OK;
  if (pv->fd >= 0) {
    close(pv->fd);
    pv->fd = -1;
  }
  del = util_xreallocarray(NULL, mb->count + 1, sizeof *del);
  seen = util_xreallocarray(NULL, mb->count + 1, sizeof *seen);
  ret = mh_delete(mb, del, &ndel, &recorded, error_r);
  if (ret != MAILBOX_OK) {
    free(del);
    free(seen);
    return ret;
  }
  /* The marks are pop3d's record before they go into the messages (expire.h). */
  maildir_index_record_marks(pv->dirfd, MH_INDEX_NAME, MAILDIR_INDEX_MH, mb, mh_key);
  for (size_t i = 0; i < mb->count; i++) {
    if (mb->msgs[i].flags & MAILBOX_MSG_DELETED)
      continue;
    if (mb->msgs[i].flags & MAILBOX_MSG_MARK) {
      const char *err = NULL;
      if (mh_mark(mb, i, &err) < 0)
        log_msg(LOG_NOTICE, "%s: cannot add the expiry mark to message %u: %s", mb->path,
                (unsigned)pv->num[i], err ? err : "?");
      else
        marked = true;
      mailbox_file_step();
    }
    if (mb->msgs[i].flags & MAILBOX_MSG_RETRIEVED)
      seen[nseen++] = pv->num[i];
  }
  if (marked && mailbox_file_sync_dir(pv->dirfd) < 0) {
    log_msg(LOG_ERR, "%s: cannot sync the folder: %s", mb->path, strerror(errno));
    ret = MAILBOX_TEMP;
    *error_r = "cannot sync the folder";
  }
  if (ndel > 0 || nseen > 0) {
    mh_update_sequences(mb, del, ndel, seen, nseen);
    mailbox_file_step();
  }
  if (recorded) {
    /* .mh_sequences durable before the record that would redo it goes. */
    if (ndel > 0 && mailbox_file_sync_dir(pv->dirfd) < 0)
      log_msg(LOG_ERR, "%s: cannot sync the folder: %s", mb->path, strerror(errno));
    (void)unlinkat(pv->dirfd, MAILBOX_FILE_INTENT_MH, 0);
    mailbox_file_step();
  }
  free(del);
  free(seen);
  *deleted_r = ndel;
  return ret;
}

/* The highest message number in the folder now (other programs may have added some). */
static int mh_last(int dirfd, uint32_t *last_r)
{
  int fd = dup(dirfd);
  DIR *d;
  struct dirent *de;

  *last_r = 0;
  if (fd < 0 || (d = fdopendir(fd)) == NULL) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  rewinddir(d);
  while ((errno = 0, de = readdir(d)) != NULL) {
    uint32_t num;
    if (mh_number(de->d_name, &num) && num > *last_r)
      *last_r = num;
  }
  if (errno != 0) {
    closedir(d);
    return -1;
  }
  closedir(d);
  return 0;
}

/* Bulletins: each written to a temporary dot file of the folder and synced, then all
 * linked to the next free numbers.  A bulletin whose content id equals one of the
 * folder's ids was delivered by a session that stopped before recording it, and is not
 * delivered again.  A crash leaves each bulletin whole or absent. */
static enum mailbox_status mh_append(struct mailbox *mb, int src,
                                     const struct mailbox_range *r, size_t n,
                                     const char **error_r)
{
  struct mh_priv *pv = mb->priv;
  char **tnames;
  bool *skip;
  size_t made = 0;
  uint32_t last;
  enum mailbox_status ret = MAILBOX_TEMP;

  if (pv == NULL) {
    *error_r = "no folder";
    return MAILBOX_TEMP;
  }
  tnames = util_xcalloc(n ? n : 1, sizeof *tnames);
  skip = util_xcalloc(n ? n : 1, sizeof *skip);
  for (size_t k = 0; k < n; k++) {
    char tag[17];
    struct mailbox_file_info fi;
    struct stat st;
    int fd;

    tnames[k] = util_xasprintf(".pop3d-bulletin.%ld.%zu", (long)getpid(), k);
    (void)unlinkat(pv->dirfd, tnames[k], 0);
    fd = openat(pv->dirfd, tnames[k], O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                                          O_NOCTTY, 0600);
    if (fd < 0) {
      *error_r = "cannot create a temporary file in the folder";
      goto out;
    }
    made = k + 1;
    if (mailbox_file_write_block(src, &r[k], fd, tag, error_r) < 0 || fstat(fd, &st) < 0 ||
        mailbox_file_scan(fd, st.st_size, false, &fi, error_r) < 0) {
      close(fd);
      goto out;
    }
    if (close(fd) < 0) {
      *error_r = "cannot write a bulletin";
      goto out;
    }
    for (size_t i = 0; i < mb->count && !skip[k]; i++) {
      const char *id = fi.xuidl_len > 0 ? fi.xuidl : fi.hash_id;
      skip[k] = strcmp(mailbox_uid(mb, i), id) == 0;
    }
    if (skip[k])
      log_msg(LOG_NOTICE, "%s: bulletin %zu of %zu is there already (an earlier session "
              "stopped before recording it)", mb->path, k + 1, n);
  }
  if (mh_last(pv->dirfd, &last) < 0) {
    *error_r = "cannot read the folder";
    goto out;
  }
  for (size_t k = 0; k < n; k++) {
    char name[16];
    if (skip[k])
      continue;
    for (;;) {
      if (last >= UINT32_MAX - 1) {
        *error_r = "message numbers exhausted";
        goto out;
      }
      snprintf(name, sizeof name, "%u", (unsigned)++last);
      /* link: never over a message another program has just added. */
      if (linkat(pv->dirfd, tnames[k], pv->dirfd, name, 0) == 0)
        break;
      if (errno != EEXIST) {
        *error_r = "cannot add a bulletin to the folder";
        goto out;
      }
    }
    (void)unlinkat(pv->dirfd, tnames[k], 0);
    free(tnames[k]);
    tnames[k] = NULL;
  }
  if (mailbox_file_sync_dir(pv->dirfd) < 0) {
    *error_r = "cannot sync the folder";
    goto out;
  }
  ret = MAILBOX_OK;
out:
  for (size_t k = 0; k < n; k++) {
    if (k < made && tnames[k] != NULL)
      (void)unlinkat(pv->dirfd, tnames[k], 0);
    free(tnames[k]);
  }
  free(tnames);
  free(skip);
  return ret;
}

static void mh_close(struct mailbox *mb)
{
  mh_free_priv(mb);
}

static void mh_touch(struct mailbox *mb)
{
  (void)mb;
}

const struct mailbox_ops mailbox_mh_ops = {
  .scheme = "mh",
  .open = mh_open,
  .check = mh_check,
  .msg_fd = mh_msg_fd,
  .update = mh_update,
  .close = mh_close,
  .touch = mh_touch,
  .append = mh_append,
};
