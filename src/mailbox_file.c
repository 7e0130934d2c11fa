/* mailbox_file.c - the scan of one message file and the directory lock, shared by the
 * maildir and MH backends.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "expire.h"
#include "mailbox.h"
#include "mailbox_file.h"
#include "uidl.h"

/* An X-UIDL line longer than this can't hold a valid id (name, blanks, 70 characters). */
#define HLINE_MAX 256

struct file_scan {
  struct mailbox_file_info *fi;
  struct uidl_hash hash;
  bool in_header;
  bool prev_cr;             /* the last byte of the current line so far is CR */
  bool xuidl_open;          /* the last header line was a valid X-UIDL */
  uint64_t line_len;        /* bytes of the current line so far */
  size_t hlen;
  bool hoverflow;
  char hline[HLINE_MAX];
};

static void scan_init(struct file_scan *s, struct mailbox_file_info *fi)
{
  memset(fi, 0, sizeof *fi);
  memset(s, 0, sizeof *s);
  s->fi = fi;
  s->in_header = true;
  uidl_hash_init(&s->hash);
}

static bool blank(const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
      return false;
  return true;
}

/* A whole header line is in s->hline (unless it overflowed). */
static void header_line_end(struct file_scan *s)
{
  struct mailbox_file_info *fi = s->fi;
  const char *p = s->hline;
  size_t n = s->hlen;

  if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
    /* A folded X-UIDL with more text is not a valid id. */
    if (s->xuidl_open && (s->hoverflow || !blank(p, n)))
      fi->xuidl_len = 0;
    return;
  }
  s->xuidl_open = false;
  if (!s->hoverflow && fi->nmarks < MAILBOX_FILE_MARKS_MAX &&
      n > sizeof EXPIRE_HEADER && util_strncasecmp(p, EXPIRE_HEADER ":", sizeof EXPIRE_HEADER) == 0 &&
      expire_parse_mark(p + sizeof EXPIRE_HEADER, n - sizeof EXPIRE_HEADER,
                        &fi->marks[fi->nmarks]))
    fi->nmarks++;
  if (s->hoverflow || fi->xuidl_len > 0 || n < 7 || util_strncasecmp(p, "X-UIDL:", 7) != 0)
    return;
  {
    const char *v = p + 7, *e = p + n;
    while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
      e--;
    while (v < e && (*v == ' ' || *v == '\t'))
      v++;
    if (uidl_valid(v, (size_t)(e - v))) {
      fi->xuidl_len = (size_t)(e - v);
      memcpy(fi->xuidl, v, fi->xuidl_len);
      fi->xuidl[fi->xuidl_len] = '\0';
      s->xuidl_open = true;
    }
  }
}

static void header_bytes(struct file_scan *s, const char *p, size_t n)
{
  if (s->hoverflow)
    return;
  if (n > sizeof s->hline - s->hlen) {
    s->hoverflow = true;
    return;
  }
  memcpy(s->hline + s->hlen, p, n);
  s->hlen += n;
}

/* Feed [p, p+n); returns false once the header is over and header_only asks to stop. */
static bool scan_feed(struct file_scan *s, const char *p, size_t n, bool header_only)
{
  struct mailbox_file_info *fi = s->fi;
  const char *e = p + n;

  while (p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    size_t seg = (size_t)((nl ? nl : e) - p);

    fi->size += seg;
    if (s->in_header) {
      uidl_hash_update(&s->hash, p, nl ? seg + 1 : seg);
      header_bytes(s, p, seg);
    }
    if (seg > 0)
      s->prev_cr = p[seg - 1] == '\r';
    s->line_len += seg;
    if (nl == NULL)
      break;
    /* The size rule: CRLF as is, a bare LF gets its CR. */
    fi->size += s->prev_cr ? 1 : 2;
    fi->lines++;
    if (s->in_header) {
      if (s->line_len == 0 || (s->line_len == 1 && s->prev_cr)) {
        s->in_header = false;
        fi->header_done = true;
      } else {
        header_line_end(s);
      }
      s->hlen = 0;
      s->hoverflow = false;
    }
    s->line_len = 0;
    s->prev_cr = false;
    p = nl + 1;
    if (header_only && !s->in_header)
      return false;
  }
  return true;
}

static void scan_end(struct file_scan *s)
{
  struct mailbox_file_info *fi = s->fi;

  if (s->line_len > 0) {
    /* A last line without LF gets CRLF. */
    fi->size += 2;
    fi->lines++;
    if (s->in_header)
      header_line_end(s);
  }
  uidl_hash_final(&s->hash, fi->size, fi->hash_id);
}

void mailbox_file_scan_buffer(const char *data, size_t len, struct mailbox_file_info *fi)
{
  struct file_scan s;

  scan_init(&s, fi);
  scan_feed(&s, data, len, false);
  scan_end(&s);
}

int mailbox_file_scan(int fd, off_t len, bool header_only, struct mailbox_file_info *fi,
                      const char **error_r)
{
  static char *buf;
  struct file_scan s;
  off_t off = 0;

  if (buf == NULL)
    buf = util_xmalloc(PARAMS_READ_BLOCK);
  scan_init(&s, fi);
  while (off < len) {
    size_t want = (uint64_t)(len - off) < PARAMS_READ_BLOCK ? (size_t)(len - off)
                                                             : PARAMS_READ_BLOCK;
    ssize_t n = pread(fd, buf, want, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      *error_r = n < 0 ? "cannot read a message" : "message changed by another program";
      return -1;
    }
    off += n;
    if (!scan_feed(&s, buf, (size_t)n, header_only)) {
      uidl_hash_final(&s.hash, fi->size, fi->hash_id);
      return 0;
    }
  }
  scan_end(&s);
  return 0;
}

int mailbox_file_lock_dir(int dirfd, const struct conf *c)
{
  unsigned tries = c->lock_retry_count ? c->lock_retry_count : 1;

  if (c->lock_type == CONF_LOCK_NULL)
    return 0;
  for (unsigned i = 0;; i++) {
    if (flock(dirfd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno != EWOULDBLOCK)
      return -1;
    if (i + 1 >= tries)
      return 1;
    if (c->lock_retry_sleep > 0)
      sleep(c->lock_retry_sleep);
  }
}

int mailbox_file_open_dir(int at, const char *path, int *status_r, const char **error_r)
{
  int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;

  if (fd < 0) {
    switch (errno) {
    case ENOENT:
      *error_r = "no such mailbox directory";
      break;
    case ELOOP:
      *error_r = "mailbox directory is a symbolic link";
      break;
    case ENOTDIR:
      *error_r = "mailbox is not a directory";
      break;
    case EACCES:
    case EPERM:
      *error_r = "mailbox directory is not accessible";
      break;
    default:
      *error_r = "cannot open the mailbox directory";
      *status_r = MAILBOX_TEMP;
      return -1;
    }
    *status_r = MAILBOX_PERM;
    return -1;
  }
  if (fstat(fd, &st) < 0) {
    close(fd);
    *error_r = "cannot examine the mailbox directory";
    *status_r = MAILBOX_TEMP;
    return -1;
  }
  if (st.st_uid != geteuid()) {
    close(fd);
    *error_r = "mailbox directory is not owned by its user";
    *status_r = MAILBOX_PERM;
    return -1;
  }
  return fd;
}

int mailbox_file_sync_dir(int dirfd)
{
  if (fsync(dirfd) < 0 && errno != EINVAL && errno != EROFS)
    return -1;
  return 0;
}

uint32_t mailbox_file_mark(const struct mailbox_file_info *fi, int64_t delivery,
                           int64_t now)
{
  uint32_t best = 0;

  for (size_t i = 0; i < fi->nmarks; i++) {
    int64_t t = fi->marks[i];
    if (expire_mark_trusted(t, delivery, now) && t <= (int64_t)UINT32_MAX &&
        (best == 0 || (uint32_t)t < best))
      best = (uint32_t)t;
  }
  return best;
}

static int copy_range(int in_fd, off_t from, off_t to, int out_fd, char *buf,
                      const char **error_r)
{
  while (from < to) {
    size_t want = (uint64_t)(to - from) < PARAMS_READ_BLOCK ? (size_t)(to - from)
                                                            : PARAMS_READ_BLOCK;
    ssize_t n = pread(in_fd, buf, want, from);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      *error_r = n < 0 ? "cannot read a message" : "message changed by another program";
      return -1;
    }
    if (util_write_all(out_fd, buf, (size_t)n) < 0) {
      *error_r = "cannot write a message";
      return -1;
    }
    from += n;
  }
  return 0;
}

int mailbox_file_copy_with(int in_fd, off_t len, int out_fd,
                           size_t (*mkins)(void *arg, const char *eol, char *buf,
                                           size_t cap),
                           void *arg, const char **error_r)
{
  char *buf = util_xmalloc(PARAMS_READ_BLOCK);
  char ins[PARAMS_UIDL_MAX + 128];
  off_t pos = 0, ls = 0, hdr_end = -1;
  bool crlf = false, prev_cr = false, need_lf = false;
  size_t il = 0;
  struct stat st;
  int ret = -1;

  /* Where the header ends: the first empty line. */
  while (pos < len && hdr_end < 0) {
    size_t want = (uint64_t)(len - pos) < PARAMS_READ_BLOCK ? (size_t)(len - pos)
                                                            : PARAMS_READ_BLOCK;
    ssize_t n = pread(in_fd, buf, want, pos);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      *error_r = n < 0 ? "cannot read a message" : "message changed by another program";
      goto out;
    }
    for (ssize_t k = 0; k < n; k++) {
      off_t at = pos + k;
      if (buf[k] == '\n') {
        off_t ll = at - ls;
        if (ll == 0 || (ll == 1 && prev_cr)) {
          hdr_end = ls;
          crlf = ll == 1;
          break;
        }
        ls = at + 1;
        prev_cr = false;
      } else {
        prev_cr = buf[k] == '\r';
      }
    }
    pos += n;
  }
  if (hdr_end < 0) {
    /* No body: the header runs to the end; its last line may lack its LF. */
    char last = '\n';
    if (len > 0 && pread(in_fd, &last, 1, len - 1) != 1) {
      *error_r = "cannot read a message";
      goto out;
    }
    need_lf = last != '\n';
    hdr_end = len;
  }
  if (need_lf)
    il = (size_t)snprintf(ins, sizeof ins, "%s", crlf ? "\r\n" : "\n");
  il += mkins(arg, crlf ? "\r\n" : "\n", ins + il, sizeof ins - il);
  if (copy_range(in_fd, 0, hdr_end, out_fd, buf, error_r) < 0)
    goto out;
  if (util_write_all(out_fd, ins, il) < 0) {
    *error_r = "cannot write a message";
    goto out;
  }
  if (copy_range(in_fd, hdr_end, len, out_fd, buf, error_r) < 0)
    goto out;
  if (fstat(in_fd, &st) == 0) {
    struct timespec ts[2] = { st.st_atim, st.st_mtim };
    (void)futimens(out_fd, ts);
  }
  if (fsync(out_fd) < 0) {
    *error_r = "cannot sync a message";
    goto out;
  }
  ret = 0;
out:
  free(buf);
  return ret;
}

int mailbox_file_write_block(int src, const struct mailbox_range *r, int out_fd,
                             char tag[17], const char **error_r)
{
  size_t len = (size_t)(r->end - r->from), got = 0, o = 0;
  char *buf, id[71];
  struct uidl_hash h;
  const char *p, *e;
  int ret = -1;

  if (r->end < r->from || (uint64_t)(r->end - r->from) > PARAMS_BULLETIN_BYTES) {
    *error_r = "bulletin too large";
    return -1;
  }
  buf = util_xmalloc(len ? len : 1);
  while (got < len) {
    ssize_t n = pread(src, buf + got, len - got, r->from + (off_t)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      *error_r = "cannot read the bulletin source";
      goto out;
    }
    got += (size_t)n;
  }
  uidl_hash_init(&h);
  uidl_hash_update(&h, buf, len);
  uidl_hash_final(&h, len, id);
  memcpy(tag, id, 16);
  tag[16] = '\0';
  p = memchr(buf, '\n', len);
  p = p ? p + 1 : buf + len;
  e = buf + len;
  /* Unescape in place: o is where the next output byte goes. */
  o = 0;
  while (p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    const char *le = nl ? nl + 1 : e, *q = p;
    while (q < le && *q == '>')
      q++;
    if (q > p && (size_t)(le - q) >= 5 && memcmp(q, "From ", 5) == 0)
      p++;
    memmove(buf + o, p, (size_t)(le - p));
    o += (size_t)(le - p);
    p = le;
  }
  if (util_write_all(out_fd, buf, o) < 0 || fsync(out_fd) < 0) {
    *error_r = "cannot write a bulletin";
    goto out;
  }
  ret = 0;
out:
  free(buf);
  return ret;
}

/* ---- The intent record of an UPDATE ---- */

void (*mailbox_file_step_hook)(void);

/* The longest line of a record: a sub, an inode, a file name, two blanks. */
#define INTENT_SUB_MAX 8
#define INTENT_LINE_MAX (INTENT_SUB_MAX + 1 + 20 + 1 + PARAMS_MAILDIR_NAME_MAX)

static bool intent_file_ok(const char *f, size_t len)
{
  return len > 0 && len <= PARAMS_MAILDIR_NAME_MAX && f[0] != '.' &&
         memchr(f, '/', len) == NULL && memchr(f, '\0', len) == NULL;
}

static bool intent_sub_ok(const char *s, size_t len)
{
  if (len == 0 || len > INTENT_SUB_MAX)
    return false;
  for (size_t i = 0; i < len; i++)
    if (s[i] < 'a' || s[i] > 'z')
      return false;
  return true;
}

static void intent_flush(struct mailbox_file_intent *w)
{
  if (w->len > 0 && !w->failed && util_write_all(w->fd, w->buf, w->len) < 0)
    w->failed = true;
  w->len = 0;
}

/* Append a line and its NUL. */
static void intent_put(struct mailbox_file_intent *w, const char *line, size_t n)
{
  if (w->len + n + 1 > sizeof w->buf)
    intent_flush(w);
  memcpy(w->buf + w->len, line, n);
  w->buf[w->len + n] = '\0';
  w->len += n + 1;
}

uint64_t mailbox_file_mh_identity(const struct stat *st)
{
  uint64_t t = (uint64_t)st->st_ctim.tv_sec * 1000000000u + (uint64_t)st->st_ctim.tv_nsec;

  /* A 64-bit mix (splitmix64's finaliser) of the change time, with the inode. */
  t ^= t >> 30;
  t *= UINT64_C(0xbf58476d1ce4e5b9);
  t ^= t >> 27;
  t *= UINT64_C(0x94d049bb133111eb);
  t ^= t >> 31;
  return (uint64_t)st->st_ino ^ t;
}

int mailbox_file_intent_begin(struct mailbox_file_intent *w, int dirfd, const char *name)
{
  w->dirfd = dirfd;
  w->name = name;
  w->count = 0;
  w->failed = false;
  w->len = 0;
  w->tmp = util_xasprintf("%s.new", name);
  (void)unlinkat(dirfd, w->tmp, 0);
  w->fd = openat(dirfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
                                    O_NOCTTY, 0600);
  if (w->fd < 0) {
    free(w->tmp);
    w->tmp = NULL;
    return -1;
  }
  intent_put(w, MAILBOX_FILE_INTENT_MAGIC, sizeof MAILBOX_FILE_INTENT_MAGIC - 1);
  mailbox_file_step();
  return 0;
}

void mailbox_file_intent_add(struct mailbox_file_intent *w, const char *sub, uint64_t ino,
                             const char *file)
{
  char line[INTENT_LINE_MAX + 1];
  size_t sl = strlen(sub), fl = strlen(file);
  int n;

  if (!intent_sub_ok(sub, sl) || !intent_file_ok(file, fl)) {
    w->failed = true;     /* never a record that would be refused */
    return;
  }
  n = snprintf(line, sizeof line, "%s %llu %s", sub, (unsigned long long)ino, file);
  if (n < 0 || (size_t)n >= sizeof line) {
    w->failed = true;
    return;
  }
  intent_put(w, line, (size_t)n);
  w->count++;
}

void mailbox_file_intent_abort(struct mailbox_file_intent *w)
{
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
  if (w->tmp != NULL) {
    (void)unlinkat(w->dirfd, w->tmp, 0);
    free(w->tmp);
    w->tmp = NULL;
  }
}

int mailbox_file_intent_commit(struct mailbox_file_intent *w, const char **error_r)
{
  char line[32];
  int n = snprintf(line, sizeof line, "end %llu", (unsigned long long)w->count);
  int fd = w->fd;

  intent_put(w, line, (size_t)n);
  intent_flush(w);
  w->fd = -1;
  if (w->failed || fsync(fd) < 0) {
    close(fd);
    *error_r = "cannot write the record of the deletions";
    mailbox_file_intent_abort(w);
    return -1;
  }
  mailbox_file_step();
  if (close(fd) < 0 || renameat(w->dirfd, w->tmp, w->dirfd, w->name) < 0) {
    *error_r = "cannot put the record of the deletions in place";
    mailbox_file_intent_abort(w);
    return -1;
  }
  mailbox_file_step();
  if (mailbox_file_sync_dir(w->dirfd) < 0) {
    /* Not known to be durable: undo the decision rather than act on it. */
    (void)unlinkat(w->dirfd, w->name, 0);
    *error_r = "cannot sync the record of the deletions";
    mailbox_file_intent_abort(w);
    return -1;
  }
  mailbox_file_step();
  free(w->tmp);
  w->tmp = NULL;
  return 0;
}

/* Parse the line of a file (NUL-terminated, len bytes; NULs are put in it): 1 with *r,
 * 2 for the end line with *count_r, 0 when it is not of the form. */
static int intent_line(char *line, size_t len, struct mailbox_file_intent_rec *r,
                       uint64_t *count_r)
{
  char *p = memchr(line, ' ', len), *q;
  uint64_t v = 0;

  if (p == NULL || !intent_sub_ok(line, (size_t)(p - line)))
    return 0;
  *p++ = '\0';
  for (q = p; *q >= '0' && *q <= '9' && q - p < 20; q++) {
    if (v > (UINT64_MAX - 9) / 10)
      return 0;
    v = v * 10 + (uint64_t)(*q - '0');
  }
  if (q == p)
    return 0;
  if (strcmp(line, "end") == 0) {
    *count_r = v;
    return *q == '\0' ? 2 : 0;
  }
  if (*q != ' ' || !intent_file_ok(q + 1, len - (size_t)(q + 1 - line)))
    return 0;
  r->sub = line;
  r->ino = v;
  r->file = q + 1;
  return 1;
}

/* One pass over the record: check every line (check), or give each file to fn. */
static int intent_pass(int fd, off_t size,
                       bool (*fn)(void *arg, const struct mailbox_file_intent_rec *r,
                                  bool check),
                       void *arg, bool check, const char **error_r)
{
  char buf[4 * (INTENT_LINE_MAX + 1)];
  size_t start = 0, have = 0;
  off_t off = 0;
  uint64_t n = 0, count = 0;
  int state = 0;          /* 0: before the first line, 1: files, 2: after the end */

  for (;;) {
    char *line = buf + start, *nul = memchr(line, '\0', have - start);
    struct mailbox_file_intent_rec r;
    size_t len;
    if (nul == NULL) {
      size_t want;
      if (off >= size)
        break;
      memmove(buf, line, have - start);
      have -= start;
      start = 0;
      if (have > INTENT_LINE_MAX) {
        *error_r = "a line too long";
        return -1;
      }
      want = sizeof buf - have;
      if ((uint64_t)(size - off) < want)
        want = (size_t)(size - off);
      if (util_pread_all(fd, buf + have, want, off) < 0) {
        *error_r = "cannot read it";
        return -1;
      }
      have += want;
      off += (off_t)want;
      continue;
    }
    len = (size_t)(nul - line);
    start += len + 1;
    if (state == 0) {
      if (strcmp(line, MAILBOX_FILE_INTENT_MAGIC) != 0) {
        *error_r = "not an update record";
        return -1;
      }
      state = 1;
      continue;
    }
    if (state == 2) {
      *error_r = "bytes after its end";
      return -1;
    }
    switch (intent_line(line, len, &r, &count)) {
    case 1:
      if (n >= PARAMS_MAILBOX_MESSAGES_MAX) {
        *error_r = "too many files";
        return -1;
      }
      n++;
      if (!fn(arg, &r, check) && check) {
        *error_r = "a file outside the maildrop";
        return -1;
      }
      break;
    case 2:
      if (count != n) {
        *error_r = "a wrong count";
        return -1;
      }
      state = 2;
      break;
    default:
      *error_r = "a malformed line";
      return -1;
    }
  }
  if (have > start || state != 2) {
    *error_r = "truncated";
    return -1;
  }
  return 0;
}

int mailbox_file_intent_read(int dirfd, const char *name,
                             bool (*fn)(void *arg, const struct mailbox_file_intent_rec *r,
                                        bool check),
                             void *arg, const char **error_r)
{
  char tmp[256];
  struct stat st;
  int fd, r = -1;

  /* An UPDATE stopped before its decision: it removed nothing. */
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.new", name) < sizeof tmp)
    (void)unlinkat(dirfd, tmp, 0);
  fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    *error_r = errno == ELOOP ? "a symbolic link" : "it cannot be opened";
    (void)unlinkat(dirfd, name, 0);
    return -1;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      st.st_nlink != 1) {
    *error_r = "not a regular file of the user with one link";
  } else if ((uint64_t)st.st_size >
             ((uint64_t)PARAMS_MAILBOX_MESSAGES_MAX + 2) * (INTENT_LINE_MAX + 1)) {
    *error_r = "too large";
  } else if (intent_pass(fd, st.st_size, fn, arg, true, error_r) == 0) {
    /* The lines are checked again as they are acted on: the user may change the file
     * meanwhile, but can only name their own messages.  A failure now keeps the record
     * for the next open (which refuses it if it is no longer good). */
    r = intent_pass(fd, st.st_size, fn, arg, false, error_r) == 0 ? 1 : -2;
  }
  close(fd);
  if (r == -1)
    (void)unlinkat(dirfd, name, 0);
  return r < 0 ? -1 : r;
}
