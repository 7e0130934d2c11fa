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
