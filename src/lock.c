/* lock.c - maildrop locking: dotlock and fcntl, as the `locking` statement says.
 *
 * Debian's MDAs (postfix local, procmail, mailutils mda, dovecot-lda) take PATH.lock
 * (created with O_EXCL) and/or an fcntl write lock on the mbox.  We take both by
 * default and never wait holding one of them while the other is busy, so two lockers
 * that take them in opposite orders can't deadlock.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "lock.h"
#include "spool.h"
#include "log.h"
#include "params.h"
#include "util.h"

enum dotlock_result { DOTLOCK_OK, DOTLOCK_BUSY, DOTLOCK_NODIR, DOTLOCK_ERROR };

void lock_init(struct lock *l)
{
  l->fd = -1;
  l->dotlock = NULL;
  l->fcntl_held = false;
  l->touched = 0;
  l->dotlock_dev = 0;
  l->dotlock_ino = 0;
  l->broke_stale = false;
}

/* The pid written in a dotlock, or 0 if there is none that parses. */
static pid_t dotlock_pid(const char *name)
{
  char buf[32];
  ssize_t n;
  long v = 0;
  int fd = open(name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

  if (fd < 0)
    return 0;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  for (const char *p = buf; *p && *p != '\n'; p++) {
    if (*p == ' ' || *p == '\t')
      continue;
    if (*p < '0' || *p > '9' || v > 100000000L)
      return 0;
    v = v * 10 + (*p - '0');
  }
  return (pid_t)v;
}

static bool dotlock_stale(const char *name, const struct stat *st, const struct conf *c)
{
  time_t expire = c->lock_expire_timeout ? (time_t)c->lock_expire_timeout
                                         : (time_t)PARAMS_LOCK_EXPIRE_TIMEOUT;
  time_t now = time(NULL);

  if (now >= st->st_mtime && now - st->st_mtime >= expire)
    return true;
  if (c->lock_pid_check) {
    pid_t pid = dotlock_pid(name);
    if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
      return true;
  }
  return false;
}

/* Create the dotlock name holding our pid: 0, or -1 with errno (EEXIST: it is there).
 * It is written nameless and then linked, so that it never exists without the pid: a
 * holder killed between creating and writing it would leave an empty dotlock that
 * pid-check can't judge, locking its user out for expire-timeout.  Where the filesystem
 * lacks nameless files it is created, then written. */
static int dotlock_create(const char *name, struct stat *st)
{
  const char *slash = strrchr(name, '/');
  char *dir = slash == NULL ? util_xstrdup(".")
              : slash == name ? util_xstrdup("/") : util_xstrndup(name, (size_t)(slash - name));
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  int fd = spool_tmpfile(dir), e;
  bool named = false;

  free(dir);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    fd = spool_create(name);
    named = true;
  }
  if (fd < 0)
    return -1;
  if (util_write_all(fd, buf, (size_t)n) < 0 || fstat(fd, st) < 0) {
    e = errno;
    close(fd);
    if (named)
      spool_unlink(name);
    errno = e != EEXIST ? e : EIO;
    return -1;
  }
  if (!named && spool_link_fd(fd, name) < 0) {
    e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  close(fd);
  return 0;
}

static enum dotlock_result dotlock_try(struct lock *l, const char *name,
                                       const struct conf *c, const char **error_r)
{
  /* Two passes: a stale lock removed in the first may be taken in the second. */
  for (int pass = 0; pass < 3; pass++) {
    struct stat st, again;

    if (dotlock_create(name, &st) == 0) {
      l->dotlock_dev = st.st_dev;
      l->dotlock_ino = st.st_ino;
      l->touched = time(NULL);
      return DOTLOCK_OK;
    }
    if (errno == EACCES || errno == EPERM || errno == EROFS)
      return DOTLOCK_NODIR;
    if (errno != EEXIST) {
      *error_r = "cannot create lock file";
      return DOTLOCK_ERROR;
    }
    if (lstat(name, &st) < 0) {
      if (errno == ENOENT)
        continue;
      *error_r = "cannot examine lock file";
      return DOTLOCK_ERROR;
    }
    if (!dotlock_stale(name, &st, c))
      return DOTLOCK_BUSY;
    /* Remove it only if it is still the one judged stale. */
    if (lstat(name, &again) < 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino)
      continue;
    if (spool_unlink(name) < 0 && errno != ENOENT) {
      if (errno == EACCES || errno == EPERM || errno == EROFS)
        return DOTLOCK_BUSY;
      *error_r = "cannot remove stale lock file";
      return DOTLOCK_ERROR;
    }
    log_msg(LOG_NOTICE, "removed stale lock file %s", name);
    l->broke_stale = true;
  }
  return DOTLOCK_BUSY;
}

static void dotlock_drop(struct lock *l)
{
  struct stat st;

  if (l->dotlock == NULL)
    return;
  /* Ours if it is the file we created (inode numbers are reused, so the pid too). */
  if (lstat(l->dotlock, &st) == 0 && st.st_dev == l->dotlock_dev &&
      st.st_ino == l->dotlock_ino && dotlock_pid(l->dotlock) == getpid()) {
    if (spool_unlink(l->dotlock) < 0 && errno != ENOENT)
      log_msg(LOG_WARNING, "cannot remove lock file %s: %s", l->dotlock, strerror(errno));
  }
  free(l->dotlock);
  l->dotlock = NULL;
  l->dotlock_dev = 0;
  l->dotlock_ino = 0;
}

static void fcntl_drop(struct lock *l)
{
  if (l->fcntl_held && l->fd >= 0) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    (void)fcntl(l->fd, F_SETLK, &fl);
  }
  l->fcntl_held = false;
  l->fd = -1;
}

enum lock_status lock_acquire(struct lock *l, int fd, const char *path,
                              const struct conf *c, const char **error_r)
{
  bool want_dot = false, want_fcntl = false;
  unsigned attempts = c->lock_retry_count ? c->lock_retry_count : 1, step = 1;
  uint64_t deadline, now;
  char *name = NULL;
  size_t plen;

  lock_init(l);
  switch (c->lock_type) {
  case CONF_LOCK_DEFAULT:
    want_dot = want_fcntl = true;
    break;
  case CONF_LOCK_EXTERNAL:
    log_msg(LOG_WARNING, "external locker is not supported; using a dotlock");
    want_dot = true;
    break;
  case CONF_LOCK_DOTLOCK:
    want_dot = true;
    break;
  case CONF_LOCK_KERNEL:
    want_fcntl = true;
    break;
  case CONF_LOCK_NULL:
    return LOCK_OK;
  }
  if (want_dot) {
    plen = strlen(path);
    if (plen > 4096) {
      *error_r = "mailbox path too long";
      return LOCK_ERROR;
    }
    name = util_xmalloc(plen + sizeof ".lock");
    memcpy(name, path, plen);
    memcpy(name + plen, ".lock", sizeof ".lock");
  }

  /* retry-count attempts retry-sleep apart make the time to wait in all; within it the
   * lock is looked at every few milliseconds, so that it is taken as soon as it is
   * released, not up to retry-sleep later. */
  deadline = util_now_ms() + (uint64_t)(attempts - 1) * c->lock_retry_sleep * 1000u;
  for (;;) {
    bool busy = false;

    if (want_dot && l->dotlock == NULL) {
      switch (dotlock_try(l, name, c, error_r)) {
      case DOTLOCK_OK:
        l->dotlock = util_xstrdup(name);
        break;
      case DOTLOCK_BUSY:
        busy = true;
        break;
      case DOTLOCK_NODIR:
        /* Like many MDAs: no dotlock where the directory is not ours to write. */
        log_msg(LOG_WARNING, "cannot create %s (%s); using fcntl locking only", name,
                strerror(errno));
        want_dot = false;
        want_fcntl = true;
        break;
      case DOTLOCK_ERROR:
        free(name);
        lock_release(l);
        return LOCK_ERROR;
      }
    }
    if (!busy && want_fcntl && !l->fcntl_held) {
      struct flock fl;
      memset(&fl, 0, sizeof fl);
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (fcntl(fd, F_SETLK, &fl) == 0) {
        l->fcntl_held = true;
        l->fd = fd;
      } else if (errno == EACCES || errno == EAGAIN) {
        busy = true;
      } else {
        *error_r = "cannot lock the mailbox (fcntl)";
        free(name);
        lock_release(l);
        return LOCK_ERROR;
      }
    }
    if (!busy) {
      free(name);
      return LOCK_OK;
    }
    /* Don't sit on half a lock while waiting: its other holder may need it. */
    dotlock_drop(l);
    fcntl_drop(l);
    now = util_now_ms();
    if (now >= deadline)
      break;
    if (step > deadline - now)
      step = (unsigned)(deadline - now);
    util_sleep_ms(step);
    if (step < PARAMS_LOCK_POLL_MAX_MS)
      step = step * 2 < PARAMS_LOCK_POLL_MAX_MS ? step * 2 : PARAMS_LOCK_POLL_MAX_MS;
  }
  free(name);
  *error_r = "mailbox is locked";
  return LOCK_BUSY;
}

void lock_touch(struct lock *l)
{
  time_t now;

  if (l->dotlock == NULL)
    return;
  now = time(NULL);
  if (now - l->touched < PARAMS_LOCK_TOUCH_INTERVAL && now >= l->touched)
    return;
  if (spool_touch(l->dotlock) < 0)
    log_msg(LOG_WARNING, "cannot refresh lock file %s: %s", l->dotlock, strerror(errno));
  l->touched = now;
}

void lock_release(struct lock *l)
{
  dotlock_drop(l);
  fcntl_drop(l);
  lock_init(l);
}
