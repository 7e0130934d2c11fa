/* bulletin.c - bulletins appended to the user's maildrop at login.
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
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bulletin.h"
#include "conf.h"
#include "log.h"
#include "mailbox.h"
#include "params.h"

enum bulletin_kind { BULLETIN_NONE, BULLETIN_MBOX, BULLETIN_MAILDIR, BULLETIN_MH };

/* The kind and file system path of a bulletin-source URL: "mbox:", "file:", "maildir:"
 * or "mh:" followed by an absolute path (or by "//" and one), or an absolute path alone,
 * which is an mbox when it is a file, a Maildir when it is a directory with cur/ and
 * new/, and an MH folder when it is another directory.  BULLETIN_NONE (and *path_r
 * NULL) for anything else. */
static enum bulletin_kind bulletin_kind_of(const char *url, const char **path_r)
{
  static const struct {
    const char *scheme;
    enum bulletin_kind kind;
  } schemes[] = {
    { "mbox:", BULLETIN_MBOX }, { "file:", BULLETIN_MBOX },
    { "maildir:", BULLETIN_MAILDIR }, { "mh:", BULLETIN_MH },
  };
  enum bulletin_kind kind = BULLETIN_NONE;
  struct stat st;

  *path_r = NULL;
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    size_t n = strlen(schemes[i].scheme);
    if (util_strncasecmp(url, schemes[i].scheme, n) == 0) {
      url += n;
      if (url[0] == '/' && url[1] == '/' && url[2] == '/')
        url += 2;
      kind = schemes[i].kind;
      break;
    }
  }
  if (url[0] != '/')
    return BULLETIN_NONE;
  *path_r = url;
  if (kind != BULLETIN_NONE)
    return kind;
  /* Not a directory (or not there, or not to be looked at): the mbox checks say why. */
  if (lstat(url, &st) < 0 || !S_ISDIR(st.st_mode))
    return BULLETIN_MBOX;
  {
    char *cur = util_xasprintf("%s/cur", url), *new = util_xasprintf("%s/new", url);
    bool md = lstat(cur, &st) == 0 && S_ISDIR(st.st_mode) && lstat(new, &st) == 0 &&
              S_ISDIR(st.st_mode);
    free(cur);
    free(new);
    return md ? BULLETIN_MAILDIR : BULLETIN_MH;
  }
}

/* Is the directory at (at, name) one nobody but its owner can write?  Checked on the
 * open descriptor; a symbolic link is refused.  0, 1 when it does not exist, -1. */
static int dir_safe(int at, const char *name, const char *what)
{
  int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  struct stat st;
  bool ok;

  if (fd < 0) {
    if (errno == ENOENT)
      return 1;
    log_msg(LOG_ERR, "bulletin source %s: %s", what,
            errno == ELOOP ? "is a symbolic link" : strerror(errno));
    return -1;
  }
  ok = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && !(st.st_mode & S_IWOTH);
  close(fd);
  if (!ok) {
    log_msg(LOG_ERR, "bulletin source %s: not a directory, or writable by anyone", what);
    return -1;
  }
  return 0;
}

/* Open a Maildir or MH source (as root: the folder must be root's, as the backends want
 * a folder to be their user's) without a lock: sessions only read it, and a lock held
 * by one would turn the others' bulletins away; these formats are written a message
 * file at a time, renamed into place whole (the manual asks that of MH sources too).
 * The modes are checked on descriptors here, the backend opens the same names again:
 * only who may rename in the source's parent directory could swap it in between.
 * 0, 1 when it does not exist yet (no bulletins), -1. */
static int bulletin_open_dir(struct bulletin *b, const struct conf *c, const char *path,
                             enum bulletin_kind kind)
{
  struct conf cc = *c;
  const char *err = NULL;
  char *url;
  int rc = dir_safe(AT_FDCWD, path, path);

  if (rc != 0)
    return rc;
  if (kind == BULLETIN_MAILDIR) {
    char *cur = util_xasprintf("%s/cur", path), *new = util_xasprintf("%s/new", path);
    rc = dir_safe(AT_FDCWD, cur, cur);
    if (rc == 0)
      rc = dir_safe(AT_FDCWD, new, new);
    free(cur);
    free(new);
    if (rc != 0) {
      if (rc > 0)
        log_msg(LOG_ERR, "bulletin source %s: not a Maildir (no cur/ or new/)", path);
      return -1;
    }
  }
  cc.lock_type = CONF_LOCK_NULL;
  cc.autodetect_accuracy = (char *)"0";
  url = util_xasprintf("%s:%s", kind == BULLETIN_MAILDIR ? "maildir" : "mh", path);
  b->dir = util_xcalloc(1, sizeof *b->dir);
  if (mailbox_open(b->dir, url, &cc, &err) != MAILBOX_OK) {
    log_msg(LOG_ERR, "cannot open bulletin source %s: %s", path, err ? err : "?");
    free(b->dir);
    b->dir = NULL;
    rc = -1;
  }
  free(url);
  return rc;
}

/* ---- the mbox form of Maildir and MH bulletins ---- */

/* An unlinked file for the copy: O_TMPFILE where the file system has it, else a
 * mkstemp name removed at once.  The descriptor outlives the switch to the user. */
static int bulletin_tmpfile(void)
{
  static const char dir[] = "/tmp";
  char name[sizeof dir + 32];
  int fd;

#ifdef O_TMPFILE
  fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0)
    return fd;
#endif
  snprintf(name, sizeof name, "%s/pop3d-bulletins.XXXXXX", dir);
  fd = mkostemp(name, O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (unlink(name) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Buffered writes to the copy, counting the offset. */
struct copy_out {
  int fd;
  off_t pos;
  size_t n;
  bool failed;
  char buf[65536];
};

static void out_flush(struct copy_out *o)
{
  if (!o->failed && o->n > 0 && util_write_all(o->fd, o->buf, o->n) < 0)
    o->failed = true;
  o->n = 0;
}

static void out_put(struct copy_out *o, const char *p, size_t n)
{
  o->pos += (off_t)n;
  while (n > 0) {
    size_t k = sizeof o->buf - o->n;
    if (k > n)
      k = n;
    memcpy(o->buf + o->n, p, k);
    o->n += k;
    p += k;
    n -= k;
    if (o->n == sizeof o->buf)
      out_flush(o);
  }
}

static void out_gts(struct copy_out *o, uint64_t n)
{
  static const char gts[64] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";

  while (n > 0) {
    size_t k = n > sizeof gts ? sizeof gts : (size_t)n;
    out_put(o, gts, k);
    n -= k;
  }
}

/* mboxrd quoting of a message stream: a line matching ^>*From_ gets one more '>', the
 * exact inverse of what mbox readers (proto.c) and mailbox_file_write_block take off. */
struct quoter {
  bool bol;          /* at the start of a line: counting '>', then matching "From " */
  uint64_t gt;
  unsigned fm;
};

static const char from_[] = "From ";

static void quote_feed(struct quoter *q, struct copy_out *o, const char *p, size_t n)
{
  size_t i = 0;

  while (i < n) {
    if (q->bol) {
      char ch = p[i];
      if (q->fm == 0 && ch == '>') {
        q->gt++;
        i++;
      } else if (ch == from_[q->fm]) {
        i++;
        if (++q->fm == 5) {
          out_gts(o, q->gt + 1);
          out_put(o, from_, 5);
          q->bol = false;
        }
      } else {
        out_gts(o, q->gt);
        out_put(o, from_, q->fm);
        q->bol = false;
      }
      continue;
    }
    {
      const char *lf = memchr(p + i, '\n', n - i);
      size_t k = lf ? (size_t)(lf - (p + i)) + 1 : n - i;
      out_put(o, p + i, k);
      i += k;
      if (lf != NULL) {
        q->bol = true;
        q->gt = 0;
        q->fm = 0;
      }
    }
  }
}

static void quote_end(struct quoter *q, struct copy_out *o)
{
  if (q->bol) {
    out_gts(o, q->gt);
    out_put(o, from_, q->fm);
  }
}

/* "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n" for time t (UTC, asctime form, the
 * same in every locale). */
static size_t from_line(char *buf, size_t cap, time_t t)
{
  static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
  static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  struct tm tm;
  int n;

  if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
      tm.tm_mon > 11) {
    t = 0;
    if (gmtime_r(&t, &tm) == NULL)
      memset(&tm, 0, sizeof tm);
  }
  n = snprintf(buf, cap, "From MAILER-DAEMON %s %s %2d %02d:%02d:%02d %lld\n",
               days[tm.tm_wday % 7], months[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, (long long)tm.tm_year + 1900);
  return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static void copy_free(struct bulletin *b)
{
  if (b->copy_fd >= 0)
    close(b->copy_fd);
  b->copy_fd = -1;
  free(b->copy_r);
  b->copy_r = NULL;
  b->copy_n = 0;
  b->copy_first = 0;
  b->copy_to_end = false;
}

/* Copy the bulletins after number `last' of the Maildir / MH source into copy_fd in mbox
 * form, within the limits of one login.  A message that can't be read, or one anyone
 * may write, ends the copy there (the ones before it are delivered). */
static void bulletin_copy(struct bulletin *b, uint64_t last)
{
  struct mailbox *src = b->dir;
  struct copy_out *o = NULL;
  char *buf = NULL;
  size_t cap = 0;
  uint64_t bytes = 0;

  copy_free(b);
  b->copy_first = last + 1;
  if (last >= (uint64_t)src->count) {
    b->copy_to_end = true;
    return;
  }
  for (size_t i = (size_t)last; i < src->count; i++) {
    const struct mailbox_msg *m = &src->msgs[i];
    const char *err = NULL;
    struct quoter q = { .bol = true, .gt = 0, .fm = 0 };
    char fl[80];
    size_t fl_len;
    struct stat st;
    off_t at, from;
    int fd;

    if (b->copy_n >= PARAMS_BULLETIN_MAX)
      goto stop;
    if (src->ops->msg_fd(src, i, &fd, &err) < 0) {
      log_msg(LOG_ERR, "bulletin source %s: cannot read bulletin %zu: %s", src->path,
              i + 1, err ? err : "?");
      goto stop;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IWOTH)) {
      log_msg(LOG_ERR, "bulletin source %s: bulletin %zu is writable by anyone: not "
              "delivered", src->path, i + 1);
      goto stop;
    }
    fl_len = from_line(fl, sizeof fl, st.st_mtim.tv_sec);
    /* At least this big once quoted: what can't fit now comes at the next login. */
    if (m->end < m->start ||
        bytes + fl_len + (uint64_t)(m->end - m->start) > PARAMS_BULLETIN_BYTES) {
      if (b->copy_n == 0)
        log_msg(LOG_ERR, "bulletin source %s: bulletin %zu is larger than %u bytes: "
                "it and those after it are not delivered", src->path, i + 1,
                (unsigned)PARAMS_BULLETIN_BYTES);
      goto stop;
    }
    if (o == NULL) {
      o = util_xcalloc(1, sizeof *o);
      o->fd = bulletin_tmpfile();
      if (o->fd < 0) {
        log_msg(LOG_ERR, "cannot make a temporary file for bulletins: %s", strerror(errno));
        goto stop;
      }
      b->copy_fd = o->fd;
      b->copy_r = util_xreallocarray(NULL, PARAMS_BULLETIN_MAX, sizeof *b->copy_r);
      buf = util_xmalloc(cap = 65536);
    }
    from = o->pos;
    out_put(o, fl, fl_len);
    for (at = m->start; at < m->end;) {
      size_t want = (uint64_t)(m->end - at) < cap ? (size_t)(m->end - at) : cap;
      ssize_t got = pread(fd, buf, want, at);
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0) {
        log_msg(LOG_ERR, "bulletin source %s: cannot read bulletin %zu: %s", src->path,
                i + 1, got < 0 ? strerror(errno) : "shorter than when listed");
        goto undo;
      }
      quote_feed(&q, o, buf, (size_t)got);
      at += got;
    }
    quote_end(&q, o);
    if (bytes + (uint64_t)(o->pos - from) > PARAMS_BULLETIN_BYTES) {
      if (b->copy_n == 0)
        log_msg(LOG_ERR, "bulletin source %s: bulletin %zu is larger than %u bytes: "
                "it and those after it are not delivered", src->path, i + 1,
                (unsigned)PARAMS_BULLETIN_BYTES);
      goto undo;
    }
    out_flush(o);
    if (o->failed) {
      log_msg(LOG_ERR, "cannot write the temporary file of bulletins: %s", strerror(errno));
      goto fail;
    }
    b->copy_r[b->copy_n].from = from;
    b->copy_r[b->copy_n].end = o->pos;
    b->copy_n++;
    bytes += (uint64_t)(o->pos - from);
    continue;
  undo:
    /* Back to the end of the last whole bulletin. */
    o->n = 0;
    o->pos = from;
    if (ftruncate(o->fd, from) < 0 || lseek(o->fd, from, SEEK_SET) < 0)
      goto fail;
    goto stop;
  }
  b->copy_to_end = true;
stop:
  free(buf);
  free(o);
  return;
fail:
  free(buf);
  free(o);
  copy_free(b);
  b->copy_first = last + 1;
}

/* Does the copy hold what a user whose number is `last' is owed now? */
static bool copy_covers(const struct bulletin *b, uint64_t last)
{
  if (b->copy_first == 0 || last + 1 < b->copy_first)
    return false;
  return last + 1 < b->copy_first + b->copy_n || b->copy_to_end;
}

void bulletin_prepare(struct bulletin *b, const struct conf *c, const char *user)
{
  const char *path;
  struct stat st;
  char err[160];
  bool found;
  enum bulletin_kind kind;

  b->on = false;
  b->src_fd = -1;
  b->dir = NULL;
  b->copy_fd = -1;
  b->copy_r = NULL;
  b->copy_n = 0;
  b->copy_first = 0;
  b->copy_to_end = false;
  b->db.fd = -1;
  b->db.path = NULL;
  b->last = 0;
  if (c->bulletin_source == NULL || c->bulletin_source[0] == '\0')
    return;
  kind = bulletin_kind_of(c->bulletin_source, &path);
  if (kind == BULLETIN_NONE) {
    log_msg(LOG_ERR, "bulletin-source %s: not an mbox, Maildir or MH folder given by "
            "an absolute name", c->bulletin_source);
    return;
  }
  if (kind == BULLETIN_MBOX) {
    b->src_fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (b->src_fd < 0) {
      if (errno != ENOENT)     /* no bulletins yet: nothing to say */
        log_msg(LOG_ERR, "cannot open bulletin source %s: %s", path, strerror(errno));
      return;
    }
    /* Whoever can write it can put mail into every maildrop. */
    if (fstat(b->src_fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IWOTH)) {
      log_msg(LOG_ERR, "bulletin source %s: not a regular file, or writable by anyone", path);
      goto off;
    }
  } else if (bulletin_open_dir(b, c, path, kind) != 0) {
    goto off;
  }
  if (c->bulletin_db != NULL && c->bulletin_db[0] != '\0') {
#ifdef HAVE_GDBM
    if (numdb_open(&b->db, c->bulletin_db, true, err, sizeof err) < 0 ||
        numdb_update(&b->db, user, &b->last, &found, NULL, NULL, err, sizeof err) < 0) {
      /* Not ~/.popbull instead: two records of one number would deliver twice. */
      log_msg(LOG_ERR, "unable to use bulletin db %s: %s: no bulletins this time",
              c->bulletin_db, err);
      goto off;
    }
#else
    (void)err;
    (void)found;
    log_msg(LOG_WARNING, "bulletin-db is set, but pop3d was built without GDBM: "
            "using ~/.popbull");
#endif
  }
  /* With a db the number is known now: copy while the source's files are readable. */
  if (b->dir != NULL && b->db.fd >= 0)
    bulletin_copy(b, b->last);
  b->on = true;
  return;
off:
  bulletin_free(b);
}

void bulletin_free(struct bulletin *b)
{
  if (b->src_fd >= 0)
    close(b->src_fd);
  b->src_fd = -1;
  copy_free(b);
  if (b->dir != NULL) {
    mailbox_close(b->dir);
    free(b->dir);
    b->dir = NULL;
  }
  numdb_close(&b->db);
  b->on = false;
}

/* ~/.popbull: a decimal number, then a newline.  0 and *n_r, 1 when there is none, -1
 * when it can't be read or holds something else. */
static int popbull_read(const char *file, uint64_t *n_r)
{
  char buf[64];
  ssize_t len;
  const char *err;
  int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

  *n_r = 0;
  if (fd < 0)
    return errno == ENOENT ? 1 : -1;
  do
    len = read(fd, buf, sizeof buf - 1);
  while (len < 0 && errno == EINTR);
  close(fd);
  if (len < 0)
    return -1;
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
    len--;
  buf[len] = '\0';
  return util_parse_u64(buf, 0, UINT64_MAX, n_r, &err);
}

/* Write ~/.popbull anew: a temporary file beside it, renamed over it.  The temporary
 * file is created first (tmp_fd_r), before the bulletins are delivered, so that a home
 * we can't write stops the delivery instead of repeating it at every login. */
static int popbull_begin(const char *file, char **tmp_r)
{
  char *tmp = util_xasprintf("%s.%ld.tmp", file, (long)getpid());
  int fd;

  unlink(tmp);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) {
    free(tmp);
    return -1;
  }
  *tmp_r = tmp;
  return fd;
}

static int popbull_commit(int fd, const char *tmp, const char *file, uint64_t n)
{
  char text[32];
  int len = snprintf(text, sizeof text, "%llu\n", (unsigned long long)n);

  if (util_write_all(fd, text, (size_t)len) < 0 || fsync(fd) < 0) {
    close(fd);
    return -1;
  }
  if (close(fd) < 0)
    return -1;
  return rename(tmp, file);
}

bool bulletin_deliver(struct bulletin *b, const struct conf *c, const struct auth_user *u,
                      struct mailbox *mb)
{
  struct mailbox src;
  struct mailbox_range *r = NULL;
  const struct mailbox_range *rr = NULL;
  const char *err = NULL;
  char *file = NULL, *tmp = NULL;
  int tfd = -1, src_fd = -1;
  size_t total = 0, n = 0;
  uint64_t last = b->last, bytes = 0;
  bool changed = false, src_open = false;
  char dberr[160];

  if (!b->on)
    return false;
  if (mb->ops->append == NULL) {
    log_msg(LOG_NOTICE, "%s: bulletins can't be added to this type of mailbox", u->name);
    return false;
  }
  if (b->db.fd >= 0) {
    /* Again, now that the maildrop is locked: another session of this user may have
     * delivered and recorded since the read as root, and its user deleted them. */
    bool found;
    if (numdb_update(&b->db, u->name, &last, &found, NULL, NULL, dberr, sizeof dberr) < 0) {
      log_msg(LOG_ERR, "unable to use bulletin db %s: %s: no bulletins this time",
              c->bulletin_db, dberr);
      goto out;
    }
  } else {
    int rc;
    if (u->home == NULL || u->home[0] != '/') {
      log_msg(LOG_ERR, "%s: no home directory for ~/.popbull: no bulletins", u->name);
      return false;
    }
    file = util_xasprintf("%s/.popbull", u->home);
    rc = popbull_read(file, &last);
    if (rc < 0) {
      log_msg(LOG_ERR, "%s: unreadable or malformed: no bulletins", file);
      goto out;
    }
  }
  if (b->dir != NULL) {
    /* A Maildir or MH source: its copy in mbox form, made now unless made as root for
     * this very number. */
    uint64_t skip;
    if (!copy_covers(b, last))
      bulletin_copy(b, last);
    skip = last + 1 - b->copy_first;
    if (b->copy_fd < 0 || skip >= b->copy_n)
      goto out;
    src_fd = b->copy_fd;
    rr = b->copy_r + skip;
    n = b->copy_n - (size_t)skip;
  } else {
    /* The descriptor goes to the mailbox (closed by mailbox_close); keep ours. */
    src_fd = fcntl(b->src_fd, F_DUPFD_CLOEXEC, 0);
    if (src_fd < 0 || mailbox_mbox_open_fd(&src, src_fd, c, &err) != MAILBOX_OK) {
      log_msg(LOG_ERR, "cannot read bulletin source %s: %s", c->bulletin_source,
              src_fd < 0 ? strerror(errno) : err ? err : "?");
      goto out;
    }
    src_open = true;
    r = util_xreallocarray(NULL, src.count ? src.count : 1, sizeof *r);
    for (size_t i = 0; i < src.count; i++) {
      struct mailbox_range br;
      if (!mailbox_mbox_block(&src, i, &br) || ++total <= last)
        continue;
      /* In order: what does not fit now comes at the next login. */
      if (n >= PARAMS_BULLETIN_MAX ||
          bytes + (uint64_t)(br.end - br.from) > PARAMS_BULLETIN_BYTES) {
        if (n == 0)
          log_msg(LOG_ERR, "bulletin source %s: bulletin %zu is larger than %u bytes: it "
                  "and those after it are not delivered", c->bulletin_source, total,
                  (unsigned)PARAMS_BULLETIN_BYTES);
        break;
      }
      r[n++] = br;
      bytes += (uint64_t)(br.end - br.from);
    }
    rr = r;
  }
  if (n == 0)
    goto out;
  if (file != NULL) {
    tfd = popbull_begin(file, &tmp);
    if (tfd < 0) {
      log_msg(LOG_ERR, "%s: can't write %s: %s: no bulletins", u->name, file,
              strerror(errno));
      goto out;
    }
  }
  if (mb->ops->append(mb, src_fd, rr, n, &err) != MAILBOX_OK) {
    log_msg(LOG_ERR, "%s: cannot deliver bulletins: %s", u->name, err ? err : "?");
    goto out;
  }
  changed = true;
  log_msg(LOG_INFO, "user %s: delivered bulletins %llu to %llu", u->name,
          (unsigned long long)last + 1, (unsigned long long)(last + n));
  if (file != NULL) {
    int rc = popbull_commit(tfd, tmp, file, last + n);
    tfd = -1;
    if (rc < 0)
      log_msg(LOG_ERR, "%s: cannot record the last bulletin in %s: %s", u->name, file,
              strerror(errno));
    else {
      free(tmp);
      tmp = NULL;
    }
  } else if (numdb_put(&b->db, u->name, last + n, dberr, sizeof dberr) < 0) {
    log_msg(LOG_ERR, "%s: cannot record the last bulletin in %s: %s", u->name,
            c->bulletin_db, dberr);
  }
out:
  if (src_open)
    mailbox_close(&src);
  if (tfd >= 0)
    close(tfd);
  if (tmp != NULL) {
    unlink(tmp);
    free(tmp);
  }
  free(r);
  free(file);
  return changed;
}
