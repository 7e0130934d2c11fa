/* mailbox_maildir.c - Maildir maildrops (new/ and cur/; tmp/ is the MDA's).
 *
 * The POP3 view is the snapshot taken at open: the regular files of new/ and cur/ in
 * delivery order (the time prefix of the name, then the name).  A session keeps a name
 * and a few words a message; message files are opened one at a time while they are
 * streamed.  UPDATE touches only files of the snapshot: mail delivered meanwhile stays.
 * Another client may rename a file (new/ to cur/, new flags) under us: a message is
 * found again by its unique base name, the part of the name before ':', and its inode
 * (two files of cur/ and new/ may share a base name: both are messages).  The
 * messages marked deleted are removed all or none (the intent record of
 * mailbox_file.h).  A message file is read once: what its scan found is kept in the
 * index (maildir_index.h), keyed by base name and inode, both of which readdir gives.
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

/* Bit of maildir_priv.name[i]: the file is in new/ (else cur/). */
#define MD_IN_NEW 0x80000000u
#define MD_OFF_MASK 0x7fffffffu

struct maildir_priv {
  int dirfd;               /* the maildir; holds the session lock */
  int sub[2];              /* cur/ and new/ */
  char *names;             /* NUL-terminated file names */
  size_t names_len, names_cap;
  uint32_t *name;          /* per message: offset in names | MD_IN_NEW */
  uint64_t *ino;           /* per message: the inode of its file */
  int fd;                  /* the message file open for streaming, or -1 */
  size_t fd_index;
};

enum { SUB_CUR = 0, SUB_NEW = 1 };
static const char *const sub_names[2] = { "cur", "new" };

static uint32_t md_add_name(struct maildir_priv *pv, const char *s, size_t len,
                            const char **error_r)
{
  size_t need = pv->names_len + len + 1;
  uint32_t off = (uint32_t)pv->names_len;

  if (need > MD_OFF_MASK) {
    *error_r = "too many messages in the mailbox";
    return UINT32_MAX;
  }
  if (need > pv->names_cap) {
    size_t cap = pv->names_cap ? pv->names_cap : 4096;
    while (cap < need)
      cap *= 2;
    pv->names = util_xreallocarray(pv->names, cap, 1);
    pv->names_cap = cap;
  }
  memcpy(pv->names + off, s, len);
  pv->names[off + len] = '\0';
  pv->names_len = need;
  return off;
}

static const char *md_name(const struct maildir_priv *pv, size_t i)
{
  return pv->names + (pv->name[i] & MD_OFF_MASK);
}

static int md_sub(const struct maildir_priv *pv, size_t i)
{
  return (pv->name[i] & MD_IN_NEW) ? SUB_NEW : SUB_CUR;
}

static size_t base_len(const char *name)
{
  const char *c = strchr(name, ':');
  return c ? (size_t)(c - name) : strlen(name);
}

/* Delivery order: the leading number of the name (the delivery time), then the name. */
struct md_sort {
  uint64_t t;
  uint64_t ino;            /* d_ino: half of the index key */
  uint32_t name;
};

static const char *md_sort_names;

static int md_sort_cmp(const void *a, const void *b)
{
  const struct md_sort *x = a, *y = b;

  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  return strcmp(md_sort_names + (x->name & MD_OFF_MASK),
                md_sort_names + (y->name & MD_OFF_MASK));
}

/* Delivery order of v[0..n): a radix sort on the times (one pass for each byte in which
 * they differ: three for the usual span of years), then each run of equal times by
 * name.  A comparison sort of a big Maildir costs more than the rest of its opening
 * from the index. */
static void md_sort(struct md_sort *v, size_t n, const char *names)
{
  struct md_sort *tmp, *src = v, *dst;
  uint64_t or_all = 0, and_all = UINT64_MAX, diff;

  md_sort_names = names;
  if (n < 64) {
    if (n > 1)
      qsort(v, n, sizeof *v, md_sort_cmp);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    or_all |= v[i].t;
    and_all &= v[i].t;
  }
  diff = or_all ^ and_all;
  dst = tmp = util_xreallocarray(NULL, n, sizeof *tmp);
  for (unsigned shift = 0; shift < 64; shift += 8) {
    size_t pos[256], sum = 0;
    struct md_sort *t;
    if (((diff >> shift) & 0xff) == 0)
      continue;
    memset(pos, 0, sizeof pos);
    for (size_t i = 0; i < n; i++)
      pos[(src[i].t >> shift) & 0xff]++;
    for (size_t b = 0; b < 256; b++) {
      size_t c = pos[b];
      pos[b] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++)
      dst[pos[(src[i].t >> shift) & 0xff]++] = src[i];
    t = src;
    src = dst;
    dst = t;
  }
  if (src != v)
    memcpy(v, src, n * sizeof *v);
  free(tmp);
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && v[j].t == v[i].t)
      j++;
    if (j - i > 1)
      qsort(v + i, j - i, sizeof *v, md_sort_cmp);
    i = j;
  }
}

static uint64_t name_time(const char *s)
{
  uint64_t t = 0;

  for (; *s >= '0' && *s <= '9'; s++) {
    if (t > (UINT64_MAX - 9) / 10)
      return UINT64_MAX;
    t = t * 10 + (uint64_t)(*s - '0');
  }
  return t;
}

/* A size field "<key>=<digits>" among the ','-separated parts of the base name. */
static bool name_field(const char *name, size_t blen, char key, uint64_t *v)
{
  const char *p = memchr(name, ',', blen), *e = name + blen;

  while (p != NULL && p < e) {
    p++;
    if (p + 2 <= e && p[0] == key && p[1] == '=') {
      const char *q = p + 2;
      uint64_t n = 0;
      if (q >= e || *q < '0' || *q > '9')
        return false;
      for (; q < e && *q >= '0' && *q <= '9'; q++) {
        if (n > (UINT64_MAX - 9) / 10)
          return false;
        n = n * 10 + (uint64_t)(*q - '0');
      }
      if (q < e && *q != ',')
        return false;
      *v = n;
      return true;
    }
    p = memchr(p, ',', (size_t)(e - p));
  }
  return false;
}

static bool name_ok(const char *n)
{
  size_t len = strlen(n);

  return n[0] != '.' && len > 0 && len <= PARAMS_MAILDIR_NAME_MAX;
}

/* Does the info "2,FLAGS" of a name (its base blen bytes long) hold flag f? */
static bool name_has_flag(const char *name, size_t blen, char f)
{
  const char *c = name + blen;

  return c[0] == ':' && c[1] == '2' && c[2] == ',' && strchr(c + 3, f) != NULL;
}

/* The delivery time of a message (what its expiry mark must not precede): the time
 * prefix of its name ("1700000000.M1P2.host"), which the MDA writes and a sender
 * can't; a name without one gives the file's mtime (kept when pop3d rewrites it). */
static int64_t md_delivery(const char *name, const struct stat *st)
{
  uint64_t t = name_time(name);
  const char *p = name;

  while (*p >= '0' && *p <= '9')
    p++;
  if (p > name && *p == '.' && t > 0 && t <= (uint64_t)INT64_MAX)
    return (int64_t)t;
  return (int64_t)st->st_mtim.tv_sec;
}

/* Read the names of the regular files of one subdirectory into the table. */
static enum mailbox_status md_list(struct mailbox *mb, struct maildir_priv *pv, int sub,
                                   struct md_sort **v, size_t *n, size_t *cap,
                                   const char **error_r)
{
  int fd = dup(pv->sub[sub]);
  DIR *d;
  struct dirent *de;

  if (fd < 0 || (d = fdopendir(fd)) == NULL) {
    if (fd >= 0)
      close(fd);
    *error_r = "cannot read the maildir";
    return MAILBOX_TEMP;
  }
  rewinddir(d);
  while ((errno = 0, de = readdir(d)) != NULL) {
    uint32_t off;
    if (!name_ok(de->d_name))
      continue;
    if (de->d_type != DT_REG) {
      struct stat st;
      if (de->d_type != DT_UNKNOWN ||
          fstatat(pv->sub[sub], de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
          !S_ISREG(st.st_mode))
        continue;
    }
    if (*n >= PARAMS_MAILBOX_MESSAGES_MAX) {
      closedir(d);
      *error_r = "too many messages in the mailbox";
      return MAILBOX_PERM;
    }
    off = md_add_name(pv, de->d_name, strlen(de->d_name), error_r);
    if (off == UINT32_MAX) {
      closedir(d);
      return MAILBOX_PERM;
    }
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 256;
      *v = util_xreallocarray(*v, *cap, sizeof **v);
    }
    (*v)[*n].t = name_time(de->d_name);
    (*v)[*n].ino = (uint64_t)de->d_ino;
    (*v)[*n].name = off | (sub == SUB_NEW ? MD_IN_NEW : 0);
    (*n)++;
  }
  if (errno != 0) {
    closedir(d);
    *error_r = "cannot read the maildir";
    return MAILBOX_TEMP;
  }
  closedir(d);
  (void)mb;
  return MAILBOX_OK;
}

/* The unique id of a message: X-UIDL, then Dovecot's uidlist, then the base name (or a
 * hash of it when it is not a valid id). */
static uint32_t md_uid(struct mailbox *mb, const struct uidl_dovecot *dv, const char *name,
                       size_t blen, const char *xuidl, size_t xuidl_len)
{
  char id[PARAMS_UIDL_MAX + 1];
  int dk = dv->n ? uidl_dovecot_lookup(dv, name, blen, id) : UIDL_DOVECOT_NONE;

  if (dk == UIDL_DOVECOT_POP3)
    return mailbox_add_uid(mb, id, strlen(id));
  if (xuidl_len > 0)
    return mailbox_add_uid(mb, xuidl, xuidl_len);
  if (dk == UIDL_DOVECOT_UID)
    return mailbox_add_uid(mb, id, strlen(id));
  if (uidl_valid(name, blen))
    return mailbox_add_uid(mb, name, blen);
  {
    struct uidl_hash h;
    uidl_hash_init(&h);
    uidl_hash_update(&h, name, blen);
    uidl_hash_final(&h, blen, id);
    return mailbox_add_uid(mb, id, strlen(id));
  }
}

/* Size, lines and X-UIDL of a message file; the W= size Dovecot puts in names is taken
 * when S= matches the file and the file ends in LF (W= is then exactly the size rule,
 * the line count only for files without CRLF: *exact_r false). */
static int md_scan(int fd, const struct stat *st, const char *name, bool need_lines,
                   struct mailbox_file_info *fi, bool *exact_r, const char **error_r)
{
  size_t blen = base_len(name);
  uint64_t s, w;
  char last;

  if (!need_lines && st->st_size > 0 && name_field(name, blen, 'S', &s) &&
      name_field(name, blen, 'W', &w) && s == (uint64_t)st->st_size && w >= s &&
      w <= 2 * s && pread(fd, &last, 1, st->st_size - 1) == 1 && last == '\n') {
    if (mailbox_file_scan(fd, st->st_size, true, fi, error_r) < 0)
      return -1;
    fi->lines = w - s;      /* the bare LFs: exact for files without CRLF */
    fi->size = w;
    *exact_r = false;
    return 0;
  }
  *exact_r = true;
  return mailbox_file_scan(fd, st->st_size, false, fi, error_r);
}

/* The old index's entries of the messages v[0..upto), all found in it: the start of
 * the new index (which is built only once it differs from the old).  bidx[j]: the
 * entry of message j in ib. */
static void md_index_backfill(struct maildir_index *ix, struct maildir_index_builder *ib,
                              const struct maildir_priv *pv, const struct md_sort *v,
                              size_t upto, size_t *bidx)
{
  for (size_t j = 0; j < upto; j++) {
    const char *name = pv->names + (v[j].name & MD_OFF_MASK);
    struct maildir_index_entry e;
    if (maildir_index_find(ix, name, base_len(name), v[j].ino, &e) &&
        maildir_index_add(ib, &e))
      bidx[j] = ib->count - 1;
  }
}

/* The file of cur/ or new/ with base name base[0..blen) and inode ino (another client
 * may have renamed it: new/ to cur/, new flags).  Its subdirectory and name in *sub_r
 * and name (PARAMS_MAILDIR_NAME_MAX + 1 bytes); 0, or -1 when there is none. */
static int md_find(const struct maildir_priv *pv, const char *base, size_t blen, uint64_t ino,
                   int *sub_r, char *name)
{
  for (int k = 0; k < 2; k++) {
    int fd = dup(pv->sub[k]);
    DIR *d;
    struct dirent *de;
    if (fd < 0)
      return -1;
    d = fdopendir(fd);
    if (d == NULL) {
      close(fd);
      return -1;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
      struct stat st;
      if (strncmp(de->d_name, base, blen) != 0 ||
          (de->d_name[blen] != '\0' && de->d_name[blen] != ':') || !name_ok(de->d_name) ||
          fstatat(pv->sub[k], de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
          !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != ino)
        continue;
      strcpy(name, de->d_name);    /* name_ok: within PARAMS_MAILDIR_NAME_MAX */
      *sub_r = k;
      closedir(d);
      return 0;
    }
    closedir(d);
  }
  return -1;
}

/* ---- Completing an UPDATE that was interrupted (mailbox_file.h) ---- */

/* At most this many files of a record are looked for under another name: a record
 * is the user's to write, and more than this were never moved by a client between an
 * UPDATE and the next open. */
#define MD_LOST_MAX 100000

struct md_lost {
  uint64_t ino;
  char *base;              /* NUL-terminated base name */
};

struct md_recovery {
  struct maildir_priv *pv;
  struct md_lost *lost;    /* files not under their recorded name */
  size_t nlost, lost_cap;
  size_t removed, failed;
  bool touched[2];
};

static int sub_of(const char *word)
{
  for (int k = 0; k < 2; k++)
    if (strcmp(word, sub_names[k]) == 0)
      return k;
  return -1;
}

static void md_recover_unlink(struct md_recovery *s, int sub, const char *name)
{
  if (unlinkat(s->pv->sub[sub], name, 0) == 0) {
    s->removed++;
    s->touched[sub] = true;
    mailbox_file_step();
  } else if (errno != ENOENT) {
    s->failed++;
  }
}

static bool md_recover_file(void *arg, const struct mailbox_file_intent_rec *r, bool check)
{
  struct md_recovery *s = arg;
  int sub = sub_of(r->sub);
  struct stat st;

  if (sub < 0 || !name_ok(r->file))
    return false;
  if (check)
    return true;
  if (fstatat(s->pv->sub[sub], r->file, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(st.st_mode) && (uint64_t)st.st_ino == r->ino) {
    md_recover_unlink(s, sub, r->file);
  } else if (s->nlost < MD_LOST_MAX) {
    /* Renamed by another client (or removed): looked for once all are read. */
    if (s->nlost == s->lost_cap) {
      s->lost_cap = s->lost_cap ? 2 * s->lost_cap : 16;
      s->lost = util_xreallocarray(s->lost, s->lost_cap, sizeof *s->lost);
    }
    s->lost[s->nlost].ino = r->ino;
    s->lost[s->nlost].base = util_xasprintf("%.*s", (int)base_len(r->file), r->file);
    s->nlost++;
  }
  return true;
}

static int lost_cmp(const void *a, const void *b)
{
  const struct md_lost *x = a, *y = b;
  int c = strcmp(x->base, y->base);

  return c != 0 ? c : (x->ino > y->ino) - (x->ino < y->ino);
}

/* The files of the record not found under their name: one pass over cur/ and new/ for
 * a file with the same base name and inode. */
static void md_recover_lost(struct md_recovery *s)
{
  qsort(s->lost, s->nlost, sizeof *s->lost, lost_cmp);
  for (int k = 0; k < 2; k++) {
    int fd = dup(s->pv->sub[k]);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (d == NULL) {
      if (fd >= 0)
        close(fd);
      s->failed++;
      continue;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
      char base[PARAMS_MAILDIR_NAME_MAX + 1];
      struct md_lost key = { 0, base };
      struct stat st;
      size_t lo = 0, hi = s->nlost, blen = base_len(de->d_name);
      if (!name_ok(de->d_name) ||
          fstatat(s->pv->sub[k], de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
          !S_ISREG(st.st_mode))
        continue;
      memcpy(base, de->d_name, blen);
      base[blen] = '\0';
      key.ino = (uint64_t)st.st_ino;
      while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lost_cmp(&s->lost[mid], &key) < 0)
          lo = mid + 1;
        else
          hi = mid;
      }
      if (lo < s->nlost && lost_cmp(&s->lost[lo], &key) == 0)
        md_recover_unlink(s, k, de->d_name);
    }
    closedir(d);
  }
}

/* Complete the UPDATE a record left in the maildir says was decided, before the
 * messages are listed.  Problems are logged: the session goes on with what is there. */
static void md_recover(struct mailbox *mb, struct maildir_priv *pv)
{
  struct md_recovery s;
  const char *err = NULL;
  int r;

  memset(&s, 0, sizeof s);
  s.pv = pv;
  r = mailbox_file_intent_read(pv->dirfd, MAILBOX_FILE_INTENT_MAILDIR, md_recover_file, &s,
                               &err);
  if (r < 0)
    log_msg(LOG_ERR, "%s: the record of an interrupted UPDATE is not used (%s)", mb->path,
            err);
  if (r > 0 && s.nlost > 0)
    md_recover_lost(&s);
  for (size_t k = 0; k < s.nlost; k++)
    free(s.lost[k].base);
  free(s.lost);
  if (r <= 0)
    return;
  for (int k = 0; k < 2; k++)
    if (s.touched[k]) {
      if (mailbox_file_sync_dir(pv->sub[k]) < 0)
        s.failed++;
      mailbox_file_step();
    }
  if (s.failed > 0) {
    log_msg(LOG_ERR, "%s: an interrupted UPDATE could not be completed (%zu files not "
            "removed): tried again at the next open", mb->path, s.failed);
    return;
  }
  (void)unlinkat(pv->dirfd, MAILBOX_FILE_INTENT_MAILDIR, 0);
  mailbox_file_step();
  log_msg(LOG_NOTICE, "%s: completed an interrupted UPDATE (%zu messages removed)",
          mb->path, s.removed);
}

static void md_free_priv(struct mailbox *mb)
{
  struct maildir_priv *pv = mb->priv;

  if (pv == NULL)
    return;
  if (pv->fd >= 0)
    close(pv->fd);
  for (int k = 0; k < 2; k++)
    if (pv->sub[k] >= 0)
      close(pv->sub[k]);
  if (pv->dirfd >= 0)
    close(pv->dirfd);     /* releases the flock */
  free(pv->names);
  free(pv->name);
  free(pv->ino);
  free(pv);
  mb->priv = NULL;
}

/* Create a missing maildir as Mailutils and Dovecot do, never as root (pop3d opens
 * maildrops as their user; root would leave directories the user can't use). */
static int md_create(const char *path, const char **error_r)
{
  if (geteuid() == 0) {
    *error_r = "no such maildir (not created as root)";
    return -1;
  }
  if (mkdir(path, 0700) < 0 && errno != EEXIST) {
    *error_r = "cannot create the maildir";
    return -1;
  }
  return 0;
}

static enum mailbox_status md_open(struct mailbox *mb, const struct conf *c,
                                   const char **error_r)
{
  struct maildir_priv *pv = util_xcalloc(1, sizeof *pv);
  struct md_sort *v = NULL;
  size_t n = 0, cap = 0;
  struct uidl_dovecot dv;
  int status = MAILBOX_TEMP;
  struct stat st, dst;
  struct maildir_index *ix = NULL;
  struct maildir_index_builder ib;
  size_t reused = 0, added = 0;
  bool building = false;  /* ib holds the entries of the messages so far */
  int64_t now = (int64_t)time(NULL);
  struct maildir_index_ids ids;

  memset(&ids, 0, sizeof ids);
  memset(&dv, 0, sizeof dv);
  maildir_index_builder_init(&ib);
  pv->dirfd = pv->sub[0] = pv->sub[1] = pv->fd = -1;
  mb->priv = pv;
  mb->mboxrd = false;

  if (lstat(mb->path, &st) < 0 && errno == ENOENT && md_create(mb->path, error_r) < 0) {
    status = MAILBOX_PERM;
    goto fail;
  }
  pv->dirfd = mailbox_file_open_dir(AT_FDCWD, mb->path, &status, error_r);
  if (pv->dirfd < 0)
    goto fail;
  switch (mailbox_file_lock_dir(pv->dirfd, c)) {
  case 0:
    break;
  case 1:
    *error_r = "Mailbox in use";
    status = MAILBOX_INUSE;
    goto fail;
  default:
    *error_r = "cannot lock the maildir";
    status = MAILBOX_TEMP;
    goto fail;
  }
  for (int k = 0; k < 3; k++) {
    static const char *const all[3] = { "cur", "new", "tmp" };
    if (mkdirat(pv->dirfd, all[k], 0700) < 0 && errno != EEXIST) {
      if (k == 2)
        continue;       /* tmp/ is the MDA's business */
      *error_r = "cannot create the maildir's subdirectories";
      status = MAILBOX_PERM;
      goto fail;
    }
  }
  for (int k = 0; k < 2; k++) {
    pv->sub[k] = mailbox_file_open_dir(pv->dirfd, sub_names[k], &status, error_r);
    if (pv->sub[k] < 0)
      goto fail;
  }
  md_recover(mb, pv);
  if (fstat(pv->dirfd, &dst) == 0)
    ix = maildir_index_load(pv->dirfd, MAILDIR_INDEX_NAME, MAILDIR_INDEX_MAILDIR, &dst, now);
  else
    dst.st_ino = 0;       /* no index without the directory's identity */
  if (maildir_index_count(ix) > 0) {
    /* The tables at their likely size at once: growing them copies, and touches pages
     * the index spared. */
    size_t hint = maildir_index_count(ix) + 64, kb = maildir_index_key_bytes(ix);
    cap = hint;
    v = util_xreallocarray(NULL, cap, sizeof *v);
    pv->names_cap = kb + hint * 8;
    pv->names = util_xmalloc(pv->names_cap);
    mb->uids_cap = kb + hint;
    mb->uids = util_xmalloc(mb->uids_cap);
  }
  for (int k = 0; k < 2; k++) {
    status = md_list(mb, pv, k, &v, &n, &cap, error_r);
    if (status != MAILBOX_OK)
      goto fail;
  }
  md_sort(v, n, pv->names);
  if (uidl_dovecot_load(&dv, pv->dirfd) < 0)
    memset(&dv, 0, sizeof dv);

  mb->msgs = util_xreallocarray(NULL, n ? n : 1, sizeof *mb->msgs);
  maildir_index_ids_init(&ids, n, ix, now);
  pv->name = util_xreallocarray(NULL, n ? n : 1, sizeof *pv->name);
  pv->ino = util_xreallocarray(NULL, n ? n : 1, sizeof *pv->ino);
  for (size_t k = 0; k < n; k++) {
    const char *name = pv->names + (v[k].name & MD_OFF_MASK);
    size_t blen = base_len(name);
    struct mailbox_msg *m = &mb->msgs[mb->count];
    struct maildir_index_entry e, prior;
    struct mailbox_file_info fi;   /* e.id may point into it */
    uint64_t ino = v[k].ino;
    uint32_t uid;
    bool has_prior;

    if (maildir_index_find(ix, name, blen, v[k].ino, &e) &&
        (!c->scan_lines || (e.flags & MAILDIR_INDEX_LINES_EXACT))) {
      /* Known: the same file (name and inode) as when it was read. */
      maildir_index_stats.hits++;
      reused++;
      prior = e;
      has_prior = true;
      if (building && maildir_index_add(&ib, &e))
        ids.bidx[mb->count] = ib.count - 1;
    } else {
      int sub = (v[k].name & MD_IN_NEW) ? SUB_NEW : SUB_CUR, fd;
      bool exact;

      if (!building) {
        md_index_backfill(ix, &ib, pv, v, k, ids.bidx);
        building = true;
      }
      fd = openat(pv->sub[sub], name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
                                          O_NOCTTY);
      if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP)
          continue;       /* taken by another client meanwhile, or a symlink: not ours */
        *error_r = "cannot open a message";
        status = errno == EACCES ? MAILBOX_PERM : MAILBOX_TEMP;
        goto fail;
      }
      if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        continue;
      }
      if (md_scan(fd, &st, name, c->scan_lines, &fi, &exact, error_r) < 0) {
        close(fd);
        status = MAILBOX_TEMP;
        goto fail;
      }
      close(fd);
      maildir_index_stats.scans++;
      ino = (uint64_t)st.st_ino;      /* the file read */
      memset(&e, 0, sizeof e);
      e.key = name;
      e.key_len = blen;
      e.ino = (uint64_t)st.st_ino;
      e.fsize = (uint64_t)st.st_size;
      e.size = fi.size;
      e.lines = fi.lines > UINT32_MAX ? UINT32_MAX : (uint32_t)fi.lines;
      e.flags = (fi.xuidl_len > 0 ? MAILDIR_INDEX_XUIDL : 0) |
                (exact ? MAILDIR_INDEX_LINES_EXACT : 0);
      maildir_index_marks(&fi, md_delivery(name, &st), now, &e.expire_mark, &e.future_mark);
      e.id = fi.xuidl;
      e.id_len = fi.xuidl_len;
      /* Its record, when the file changed (a mark written into it is a new inode). */
      has_prior = maildir_index_find_key(ix, name, blen, NULL, 0, &prior);
      /* A cache entry only when readdir names the same inode (the key of the next
       * open); otherwise the record alone (inode 0 matches no file). */
      if ((uint64_t)st.st_ino != v[k].ino)
        e.ino = 0;
      if (maildir_index_add(&ib, &e)) {
        ids.bidx[mb->count] = ib.count - 1;
        added++;
      }
    }
    e.expire_mark = maildir_index_ids_msg(&ids, mb->count, has_prior ? &prior : NULL,
                                          e.expire_mark);
    uid = md_uid(mb, &dv, name, blen, e.id, e.id_len);
    if (uid == MAILBOX_UID_NONE) {
      *error_r = "out of memory";
      status = MAILBOX_TEMP;
      goto fail;
    }
    m->start = 0;
    m->end = (off_t)e.fsize;
    m->size = e.size;
    m->lines = e.lines;
    m->uid = uid;
    m->flags = name_has_flag(name, blen, 'T') ? MAILBOX_MSG_STATUS_D : 0;
    if (e.flags & MAILDIR_INDEX_XUIDL)
      m->flags |= MAILBOX_MSG_XUIDL;
    m->expire_mark = e.expire_mark;
    pv->name[mb->count] = v[k].name;
    pv->ino[mb->count] = ino;
    mb->count++;
    mb->total_size += e.size;
  }
  if (maildir_index_ids_assign(&ids, mb, ix, mb->path, error_r) < 0) {
    status = MAILBOX_TEMP;
    goto fail;
  }
  /* A new index when files were read, some the old one lists are gone, or the record
   * changed. */
  if (dst.st_ino != 0 && (added > 0 || maildir_index_count(ix) != reused || ids.changed)) {
    if (!building)
      md_index_backfill(ix, &ib, pv, v, n, ids.bidx);
    maildir_index_ids_records(&ids, mb, ix, &ib);
    (void)maildir_index_write(pv->dirfd, MAILDIR_INDEX_NAME, &ib, MAILDIR_INDEX_MAILDIR,
                              &dst, now);
  }
  maildir_index_free(ix);
  ix = NULL;
  maildir_index_builder_free(&ib);
  maildir_index_ids_free(&ids);
  free(v);
  v = NULL;
  uidl_dovecot_free(&dv);
  return MAILBOX_OK;

fail:
  maildir_index_ids_free(&ids);
  maildir_index_free(ix);
  maildir_index_builder_free(&ib);
  free(v);
  uidl_dovecot_free(&dv);
  md_free_priv(mb);
  return (enum mailbox_status)status;
}

static enum mailbox_status md_check(struct mailbox *mb, const char **error_r)
{
  /* Message files don't change in place; a moved one is found again by msg_fd. */
  (void)error_r;
  return mb->priv != NULL ? MAILBOX_OK : MAILBOX_TEMP;
}

/* Find message i again after another client renamed it.  Updates the table; 0, or -1
 * when it is gone. */
static int md_relocate(struct mailbox *mb, size_t i)
{
  struct maildir_priv *pv = mb->priv;
  const char *name = md_name(pv, i);
  char found[PARAMS_MAILDIR_NAME_MAX + 1];
  const char *err;
  uint32_t off;
  int sub;

  if (md_find(pv, name, base_len(name), pv->ino[i], &sub, found) < 0)
    return -1;
  off = md_add_name(pv, found, strlen(found), &err);
  if (off == UINT32_MAX)
    return -1;
  pv->name[i] = off | (sub == SUB_NEW ? MD_IN_NEW : 0);
  return 0;
}

static int md_msg_fd(struct mailbox *mb, size_t i, int *fd_r, const char **error_r)
{
  struct maildir_priv *pv = mb->priv;
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
  for (int attempt = 0;; attempt++) {
    fd = openat(pv->sub[md_sub(pv, i)], md_name(pv, i),
                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0)
      break;
    if (errno != ENOENT || attempt > 0 || md_relocate(mb, i) < 0) {
      *error_r = errno == ENOENT ? "message removed by another program"
                                 : "cannot open the message";
      return -1;
    }
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

/* renameat that never replaces an existing file. */
static int rename_noreplace(int from_dir, const char *from, int to_dir, const char *to)
{
#ifdef RENAME_NOREPLACE
  if (renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL && errno != ENOSYS)
    return -1;
#endif
  if (linkat(from_dir, from, to_dir, to, 0) < 0)
    return -1;
  if (unlinkat(from_dir, from, 0) < 0 && errno != ENOENT) {
    int e = errno;
    (void)unlinkat(to_dir, to, 0);
    errno = e;
    return -1;
  }
  return 0;
}

/* The name a message gets in cur/: its info "2,FLAGS" with S added (when seen) and T
 * removed (when undeleted); flags stay in ASCII order, as the Maildir convention asks.
 * NULL when the name does not change. */
static char *flags_name(const char *name, bool add_s, bool drop_t)
{
  size_t blen = base_len(name);
  const char *info = name[blen] == ':' ? name + blen + 1 : NULL;
  char flags[64];
  size_t nf = 0;
  bool have_s = false, changed = false;

  if (info != NULL && info[0] == '2' && info[1] == ',') {
    for (const char *f = info + 2; *f && nf < sizeof flags - 2; f++) {
      if (*f == 'T' && drop_t) {
        changed = true;
        continue;
      }
      if (*f == 'S')
        have_s = true;
      flags[nf++] = *f;
    }
  } else if (info != NULL) {
    return NULL;        /* an info we don't know: leave it alone */
  }
  if (add_s && !have_s) {
    size_t k = nf;
    while (k > 0 && (unsigned char)flags[k - 1] > 'S') {
      flags[k] = flags[k - 1];
      k--;
    }
    flags[k] = 'S';
    nf++;
    changed = true;
  }
  if (!changed)
    return NULL;
  flags[nf] = '\0';
  return util_xasprintf("%.*s:2,%s", (int)blen, name, flags);
}

static size_t md_mark_ins(void *arg, const char *eol, char *buf, size_t cap)
{
  const struct mailbox *mb = arg;
  int n = snprintf(buf, cap, EXPIRE_HEADER ": %lld%s", (long long)mb->mark_time, eol);

  return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Add the expiry mark to message i: the new content is written into tmp/ and renamed
 * over the message file, whose name (and so the message's id) stays; a crash leaves the
 * old file or the new one.  0, or -1 with *error_r. */
static int md_mark(struct mailbox *mb, int tmp_dir, size_t i, bool *touched,
                   const char **error_r)
{
  struct maildir_priv *pv = mb->priv;
  char tname[128];
  int fd, out, r;
  struct stat st;

  if (md_msg_fd(mb, i, &fd, error_r) < 0)
    return -1;
  if (fstat(fd, &st) < 0) {
    *error_r = "cannot examine a message";
    return -1;
  }
  snprintf(tname, sizeof tname, "%lld.P%ldQ%zu.pop3d-mark", (long long)time(NULL),
           (long)getpid(), i);
  out = openat(tmp_dir, tname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                                   O_NOCTTY, st.st_mode & 0600 ? st.st_mode & 0777 : 0600);
  if (out < 0) {
    *error_r = "cannot create a file in tmp/";
    return -1;
  }
  r = mailbox_file_copy_with(fd, mb->msgs[i].end, out, md_mark_ins, mb, error_r);
  if (r == 0 && fstat(out, &st) < 0) {
    *error_r = "cannot examine a message";
    r = -1;
  }
  if (close(out) < 0 && r == 0) {
    *error_r = "cannot write a message";
    r = -1;
  }
  if (r == 0 && renameat(tmp_dir, tname, pv->sub[md_sub(pv, i)], md_name(pv, i)) < 0) {
    *error_r = "cannot rename the marked message into place";
    r = -1;
  }
  if (r < 0) {
    (void)unlinkat(tmp_dir, tname, 0);
    return -1;
  }
  touched[md_sub(pv, i)] = true;
  pv->ino[i] = (uint64_t)st.st_ino;    /* the new file, under the same name */
  close(pv->fd);
  pv->fd = -1;
  return 0;
}

/* The file of message i now: 0 with *st (a regular file), 1 when it is gone, -1 on
 * an error (errno). */
static int md_locate(struct mailbox *mb, size_t i, struct stat *st)
{
  struct maildir_priv *pv = mb->priv;

  for (int attempt = 0;; attempt++) {
    if (fstatat(pv->sub[md_sub(pv, i)], md_name(pv, i), st, AT_SYMLINK_NOFOLLOW) == 0)
      return S_ISREG(st->st_mode) && (uint64_t)st->st_ino == pv->ino[i] ? 0 : 1;
    if (errno != ENOENT)
      return -1;
    if (attempt > 0 || md_relocate(mb, i) < 0)
      return 1;
  }
}

/* Remove the messages marked deleted, all or none: recorded first (mailbox_file.h),
 * then unlinked.  rec[i] is set for those recorded; *ndel_r counts those gone. */
static enum mailbox_status md_delete(struct mailbox *mb, bool *rec, size_t *ndel_r,
                                     const char **error_r)
{
  struct maildir_priv *pv = mb->priv;
  struct mailbox_file_intent w;
  size_t nrec = 0, failed = 0;
  bool begun = false, touched[2] = { false, false };

  *ndel_r = 0;
  for (size_t i = 0; i < mb->count; i++) {
    struct stat st;
    if (!(mb->msgs[i].flags & MAILBOX_MSG_DELETED))
      continue;
    switch (md_locate(mb, i, &st)) {
    case 0:
      if (!begun &&
          mailbox_file_intent_begin(&w, pv->dirfd, MAILBOX_FILE_INTENT_MAILDIR) < 0) {
        log_msg(LOG_ERR, "%s: cannot create " MAILBOX_FILE_INTENT_MAILDIR ".new: %s",
                mb->path, strerror(errno));
        *error_r = "cannot record the deletions";
        return MAILBOX_TEMP;
      }
      begun = true;
      mailbox_file_intent_add(&w, sub_names[md_sub(pv, i)], pv->ino[i], md_name(pv, i));
      rec[i] = true;
      nrec++;
      break;
    case 1:
      (*ndel_r)++;        /* another client removed it first (or replaced it) */
      break;
    default:
      log_msg(LOG_ERR, "%s: cannot examine %s/%s: %s", mb->path, sub_names[md_sub(pv, i)],
              md_name(pv, i), strerror(errno));
      if (begun)
        mailbox_file_intent_abort(&w);
      *error_r = "cannot remove some messages";
      return MAILBOX_TEMP;
    }
  }
  if (nrec == 0)
    return MAILBOX_OK;
  if (mailbox_file_intent_commit(&w, error_r) < 0) {
    log_msg(LOG_ERR, "%s: %s: %s", mb->path, *error_r, strerror(errno));
    *ndel_r = 0;
    return MAILBOX_TEMP;
  }
  /* Decided: from here on, an interruption is completed by the next open. */
  for (size_t i = 0; i < mb->count; i++) {
    int r = -1, e = 0;
    if (!rec[i])
      continue;
    for (int attempt = 0; attempt < 2; attempt++) {
      r = unlinkat(pv->sub[md_sub(pv, i)], md_name(pv, i), 0);
      if (r == 0)
        break;
      e = errno;
      if (e != ENOENT || attempt > 0 || md_relocate(mb, i) < 0)
        break;
    }
    if (r == 0 || e == ENOENT) {
      if (r == 0)
        touched[md_sub(pv, i)] = true;
      (*ndel_r)++;
      mailbox_file_step();
    } else {
      log_msg(LOG_ERR, "%s: cannot remove %s/%s: %s", mb->path, sub_names[md_sub(pv, i)],
              md_name(pv, i), strerror(e));
      failed++;
    }
  }
  for (int k = 0; k < 2; k++)
    if (touched[k]) {
      if (mailbox_file_sync_dir(pv->sub[k]) < 0) {
        log_msg(LOG_ERR, "%s: cannot sync %s/: %s", mb->path, sub_names[k],
                strerror(errno));
        failed++;
      }
      mailbox_file_step();
    }
  if (failed > 0) {
    /* The record stays: the next open tries again. */
    *error_r = "cannot remove some messages";
    return MAILBOX_TEMP;
  }
  (void)unlinkat(pv->dirfd, MAILBOX_FILE_INTENT_MAILDIR, 0);
  mailbox_file_step();
  return MAILBOX_OK;
}

/* Message i's index key: its base name. */
static const char *md_key(const struct mailbox *mb, size_t i, char buf[16], size_t *len_r)
{
  const char *name = md_name(mb->priv, i);

  (void)buf;
  *len_r = base_len(name);
  return name;
}

static enum mailbox_status md_update(struct mailbox *mb, size_t *deleted_r,
                                     const char **error_r)
{
  struct maildir_priv *pv = mb->priv;
  bool touched[2] = { false, false }, *rec;
  int tmp_dir = -1, st;
  enum mailbox_status ret;

  *deleted_r = 0;
  if (pv == NULL)
    return MAILBOX_OK;
  if (pv->fd >= 0) {
    close(pv->fd);
    pv->fd = -1;
  }
  rec = util_xcalloc(mb->count ? mb->count : 1, sizeof *rec);
  ret = md_delete(mb, rec, deleted_r, error_r);
  free(rec);
  if (ret != MAILBOX_OK)
    return ret;
  /* The marks are pop3d's record before they go into the messages (expire.h). */
  maildir_index_record_marks(pv->dirfd, MAILDIR_INDEX_NAME, MAILDIR_INDEX_MAILDIR, mb, md_key);
  for (size_t i = 0; i < mb->count; i++) {
    uint32_t f = mb->msgs[i].flags;
    bool undel = (f & MAILBOX_MSG_UNDELETE) && (f & MAILBOX_MSG_STATUS_D);
    if (f & MAILBOX_MSG_DELETED)
      continue;
    if (f & MAILBOX_MSG_MARK) {
      const char *err = NULL;
      if (tmp_dir < 0)
        tmp_dir = mailbox_file_open_dir(pv->dirfd, "tmp", &st, &err);
      if (tmp_dir < 0 || md_mark(mb, tmp_dir, i, touched, &err) < 0)
        log_msg(LOG_NOTICE, "%s: cannot add the expiry mark to %s: %s", mb->path,
                md_name(pv, i), err ? err : "?");
      mailbox_file_step();
    }
    if (!(f & MAILBOX_MSG_RETRIEVED) && !undel)
      continue;
    /* Seen: to cur/ with the S flag, as Mailutils and Dovecot do; undeleted: no T. */
    for (int attempt = 0; attempt < 2; attempt++) {
      int sub = md_sub(pv, i), r, e;
      char *to = flags_name(md_name(pv, i), (f & MAILBOX_MSG_RETRIEVED) != 0, undel);
      if (to == NULL && sub == SUB_CUR)
        break;
      if (to == NULL)
        to = util_xstrdup(md_name(pv, i));
      r = rename_noreplace(pv->sub[sub], md_name(pv, i), pv->sub[SUB_CUR], to);
      e = errno;
      free(to);
      if (r == 0) {
        touched[sub] = touched[SUB_CUR] = true;
        mailbox_file_step();
        break;
      }
      if (e != ENOENT || attempt > 0 || md_relocate(mb, i) < 0) {
        if (e != ENOENT)
          log_msg(LOG_NOTICE, "%s: cannot rename %s: %s", mb->path, md_name(pv, i),
                  strerror(e));
        break;
      }
    }
  }
  if (tmp_dir >= 0)
    close(tmp_dir);
  for (int k = 0; k < 2; k++)
    if (touched[k] && mailbox_file_sync_dir(pv->sub[k]) < 0) {
      log_msg(LOG_ERR, "%s: cannot sync %s/: %s", mb->path, sub_names[k], strerror(errno));
      *error_r = "cannot sync the maildir";
      return MAILBOX_TEMP;
    }
  return MAILBOX_OK;
}

/* Bulletins: each written into tmp/ and synced, then all renamed into new/.  Their
 * names carry the block's tag (mailbox_file_write_block): a bulletin whose tag is in a
 * name of the maildrop already was delivered by a session that stopped before it could
 * record it, and is not delivered again.  A crash leaves each bulletin whole or absent. */
static enum mailbox_status md_append(struct mailbox *mb, int src,
                                     const struct mailbox_range *r, size_t n,
                                     const char **error_r)
{
  struct maildir_priv *pv = mb->priv;
  char host[128], **tnames = NULL, **names = NULL;
  int tmp_dir, st = MAILBOX_TEMP;
  enum mailbox_status ret = MAILBOX_TEMP;
  size_t made = 0;
  struct timespec now;

  if (pv == NULL) {
    *error_r = "mailbox not open";
    return MAILBOX_TEMP;
  }
  if (clock_gettime(CLOCK_REALTIME, &now) < 0) {
    *error_r = "no clock";
    return MAILBOX_TEMP;
  }
  if (gethostname(host, sizeof host) < 0 || host[0] == '\0')
    strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  for (char *h = host; *h; h++)
    if (*h == '/' || *h == ':')
      *h = '_';
  tmp_dir = mailbox_file_open_dir(pv->dirfd, "tmp", &st, error_r);
  if (tmp_dir < 0)
    return (enum mailbox_status)st;
  tnames = util_xcalloc(n ? n : 1, sizeof *tnames);
  names = util_xcalloc(n ? n : 1, sizeof *names);
  for (size_t k = 0; k < n; k++) {
    char tag[17], *key;
    bool there = false;
    int fd;

    tnames[k] = util_xasprintf("%lld.P%ldB%zu.pop3d-bulletin", (long long)now.tv_sec,
                               (long)getpid(), k);
    fd = openat(tmp_dir, tnames[k], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                                        O_NOCTTY, 0600);
    if (fd < 0) {
      *error_r = "cannot create a file in tmp/";
      goto out;
    }
    made = k + 1;
    if (mailbox_file_write_block(src, &r[k], fd, tag, error_r) < 0) {
      close(fd);
      goto out;
    }
    if (close(fd) < 0) {
      *error_r = "cannot write a bulletin";
      goto out;
    }
    key = util_xasprintf("T%s.", tag);
    for (size_t i = 0; i < mb->count && !there; i++)
      there = strstr(md_name(pv, i), key) != NULL;
    free(key);
    if (there) {
      log_msg(LOG_NOTICE, "%s: bulletin %zu of %zu is there already (an earlier session "
              "stopped before recording it)", mb->path, k + 1, n);
      continue;
    }
    /* Delivery order within a second: microseconds, then the rank. */
    names[k] = util_xasprintf("%lld.M%06ldB%04zuT%s.%s", (long long)now.tv_sec,
                              (long)(now.tv_nsec / 1000), k, tag, host);
  }
  for (size_t k = 0; k < n; k++) {
    if (names[k] == NULL)
      continue;
    if (rename_noreplace(tmp_dir, tnames[k], pv->sub[SUB_NEW], names[k]) < 0) {
      *error_r = "cannot move a bulletin into new/";
      goto out;
    }
    free(tnames[k]);
    tnames[k] = NULL;
  }
  if (mailbox_file_sync_dir(pv->sub[SUB_NEW]) < 0) {
    *error_r = "cannot sync new/";
    goto out;
  }
  ret = MAILBOX_OK;
out:
  for (size_t k = 0; k < n; k++) {
    if (k < made && tnames[k] != NULL)
      (void)unlinkat(tmp_dir, tnames[k], 0);
    free(tnames[k]);
    free(names[k]);
  }
  free(tnames);
  free(names);
  close(tmp_dir);
  return ret;
}

static void md_close(struct mailbox *mb)
{
  md_free_priv(mb);
}

static void md_touch(struct mailbox *mb)
{
  (void)mb;
}

const struct mailbox_ops mailbox_maildir_ops = {
  .scheme = "maildir",
  .open = md_open,
  .check = md_check,
  .msg_fd = md_msg_fd,
  .update = md_update,
  .close = md_close,
  .touch = md_touch,
  .append = md_append,
};
