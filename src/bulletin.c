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
#include <unistd.h>

#include "auth.h"
#include "bulletin.h"
#include "conf.h"
#include "log.h"
#include "mailbox.h"
#include "params.h"

/* The file of an mbox URL ("mbox:/x", "mbox:///x", "file:/x" or "/x"); NULL for other
 * schemes (maildir and MH bulletin sources are not read yet). */
static const char *bulletin_path(const char *url)
{
  static const char *const schemes[] = { "mbox:", "file:" };

  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    size_t n = strlen(schemes[i]);
    if (util_strncasecmp(url, schemes[i], n) == 0) {
      url += n;
      if (url[0] == '/' && url[1] == '/' && url[2] == '/')
        url += 2;
      break;
    }
  }
  return url[0] == '/' ? url : NULL;
}

void bulletin_prepare(struct bulletin *b, const struct conf *c, const char *user)
{
  const char *path;
  struct stat st;
  char err[160];
  bool found;

  b->on = false;
  b->src_fd = -1;
  b->db.fd = -1;
  b->db.path = NULL;
  b->last = 0;
  if (c->bulletin_source == NULL || c->bulletin_source[0] == '\0')
    return;
  path = bulletin_path(c->bulletin_source);
  if (path == NULL) {
    log_msg(LOG_ERR, "bulletin-source %s: only mbox bulletin sources are supported",
            c->bulletin_source);
    return;
  }
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
  const char *err = NULL;
  char *file = NULL, *tmp = NULL;
  int tfd = -1, src_fd;
  size_t total = 0, n = 0;
  uint64_t last = b->last, bytes = 0;
  bool changed = false;
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
  /* The descriptor goes to the mailbox (closed by mailbox_close); keep ours. */
  src_fd = fcntl(b->src_fd, F_DUPFD_CLOEXEC, 0);
  if (src_fd < 0 || mailbox_mbox_open_fd(&src, src_fd, c, &err) != MAILBOX_OK) {
    log_msg(LOG_ERR, "cannot read bulletin source %s: %s", c->bulletin_source,
            src_fd < 0 ? strerror(errno) : err ? err : "?");
    goto out;
  }
  r = util_xreallocarray(NULL, src.count ? src.count : 1, sizeof *r);
  for (size_t i = 0; i < src.count; i++) {
    struct mailbox_range br;
    if (!mailbox_mbox_block(&src, i, &br) || ++total <= last)
      continue;
    /* In order: what does not fit now comes at the next login. */
    if (n >= PARAMS_BULLETIN_MAX || bytes + (uint64_t)(br.end - br.from) > PARAMS_BULLETIN_BYTES)
      break;
    r[n++] = br;
    bytes += (uint64_t)(br.end - br.from);
  }
  if (n == 0)
    goto close_src;
  if (file != NULL) {
    tfd = popbull_begin(file, &tmp);
    if (tfd < 0) {
      log_msg(LOG_ERR, "%s: can't write %s: %s: no bulletins", u->name, file,
              strerror(errno));
      goto close_src;
    }
  }
  if (mb->ops->append(mb, src_fd, r, n, &err) != MAILBOX_OK) {
    log_msg(LOG_ERR, "%s: cannot deliver bulletins: %s", u->name, err ? err : "?");
    goto close_src;
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
close_src:
  mailbox_close(&src);
out:
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
