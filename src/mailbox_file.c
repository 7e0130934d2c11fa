/* mailbox_file.c - the scan of one message file and the directory lock, shared by the
 * maildir and MH backends.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
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
