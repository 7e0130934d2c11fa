/* spool.c - a session's operations in its maildrop's directory, done by the monitor when
 * the directory is a shared spool the session can't write (spool.h).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef HAVE_LINUX_OPENAT2_H
#include <linux/openat2.h>
#endif

#include "log.h"
#include "mbox_index.h"
#include "params.h"
#include "privsep.h"
#include "spool.h"

/* ---- The session side -------------------------------------------------------------- */

static int broker_fd = -1;
static char *broker_dir;

void spool_set_broker(int fd, const char *dir)
{
  broker_fd = fd;
  free(broker_dir);
  broker_dir = dir != NULL ? util_xstrdup(dir) : NULL;
}

/* The file name of path when it lies in the brokered directory, else NULL. */
static const char *brokered(const char *path)
{
  size_t n;

  if (broker_fd < 0 || broker_dir == NULL)
    return NULL;
  n = strlen(broker_dir);
  if (strncmp(path, broker_dir, n) != 0 || path[n] != '/' || strchr(path + n + 1, '/'))
    return NULL;
  return path + n + 1;
}

/* Is dir the brokered directory? */
static bool brokered_dir(const char *dir)
{
  return broker_fd >= 0 && broker_dir != NULL && strcmp(dir, broker_dir) == 0;
}

/* Does the monitor answer op with a file? */
static bool gives_fd(enum spool_op op)
{
  return op == SPOOL_CREATE || op == SPOOL_TMPFILE;
}

/* Ask the monitor; -1 with errno on failure, else 0 (and *fd_r a created file). */
static int ask(enum spool_op op, const char *name, const char *to, int *fd_r)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const char *err = NULL;
  uint32_t e = EIO;
  int rc = -1;

  if (fd_r != NULL)
    *fd_r = -1;
  privsep_msg_init(m, PS_SPOOL);
  privsep_put_u32(m, (uint32_t)op);
  privsep_put_str(m, name);
  privsep_put_str(m, to != NULL ? to : "");
  if (privsep_call(broker_fd, m, PS_SPOOL_RESULT, &err) == 0 &&
      privsep_get_u32(m, &e) == 0 && privsep_msg_done(m) &&
      m->nfds == (e == 0 && gives_fd(op) ? 1u : 0u)) {
    if (e == 0) {
      rc = 0;
      if (gives_fd(op)) {
        *fd_r = m->fds[0];
        m->nfds = 0;
      }
    }
  } else {
    log_msg(LOG_ERR, "session: no answer from the monitor to a spool request");
    e = EIO;
  }
  privsep_msg_clear(m);
  free(m);
  if (rc < 0)
    errno = e != 0 && e < 4096 ? (int)e : EIO;
  return rc;
}

/* The last component of a path in the brokered directory. */
static const char *base_of(const char *path)
{
  const char *s = strrchr(path, '/');

  return s != NULL ? s + 1 : path;
}

int spool_create(const char *path)
{
  const char *name = brokered(path);
  int fd;

  if (name == NULL)
    return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  return ask(SPOOL_CREATE, name, NULL, &fd) < 0 ? -1 : fd;
}

int spool_unlink(const char *path)
{
  const char *name = brokered(path);

  return name == NULL ? unlink(path) : ask(SPOOL_UNLINK, name, NULL, NULL);
}

int spool_unlink_at(int dirfd, const char *dir, const char *name)
{
  if (brokered_dir(dir))
    return ask(SPOOL_UNLINK, name, NULL, NULL);
  return unlinkat(dirfd, name, 0);
}

int spool_rename(const char *from, const char *to)
{
  const char *a = brokered(from), *b = brokered(to);

  if (a == NULL || b == NULL)
    return rename(from, to);
  return ask(SPOOL_RENAME, a, base_of(to), NULL);
}

int spool_link(const char *from, const char *to)
{
  const char *a = brokered(from), *b = brokered(to);

  if (a == NULL || b == NULL)
    return link(from, to);
  return ask(SPOOL_LINK, a, base_of(to), NULL);
}

int spool_touch(const char *path)
{
  const char *name = brokered(path);

  if (name == NULL)
    return utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
  return ask(SPOOL_TOUCH, name, NULL, NULL);
}

/* Name the nameless file fd name in dirfd.  linkat(AT_EMPTY_PATH) needs
 * CAP_DAC_READ_SEARCH; without it the file's /proc/self/fd link serves (a process may
 * always follow its own). */
static int link_fd_at(int fd, int dirfd, const char *name)
{
  char proc[sizeof "/proc/self/fd/" + 12];

  if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
    return 0;
  if (errno != ENOENT && errno != EPERM)
    return -1;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
}

/* A nameless file in dirfd, mode 0600 whatever the umask. */
static int tmpfile_at(int dirfd)
{
  int fd;

  /* Without /proc a process that lacks CAP_DAC_READ_SEARCH could not name it. */
  if (access("/proc/self/fd", X_OK) < 0) {
    errno = EOPNOTSUPP;
    return -1;
  }
  fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd >= 0 && fchmod(fd, 0600) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int spool_tmpfile(const char *dir)
{
  int fd, dfd;

  if (brokered_dir(dir))
    return ask(SPOOL_TMPFILE, "", NULL, &fd) < 0 ? -1 : fd;
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -1;
  fd = tmpfile_at(dfd);
  if (fd < 0) {
    int e = errno;
    close(dfd);
    errno = e;
    return -1;
  }
  close(dfd);
  return fd;
}

int spool_link_fd(int fd, const char *path)
{
  const char *name = brokered(path);

  /* The monitor names the file it made: its own descriptor of it (spool_serve()). */
  return name == NULL ? link_fd_at(fd, AT_FDCWD, path) : ask(SPOOL_LINKFD, name, NULL, NULL);
}

/* ---- The monitor side -------------------------------------------------------------- */

static bool is_suffix(const char *s, size_t n, bool hex)
{
  if (strlen(s) != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = hex ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                  : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    if (!ok)
      return false;
  }
  return true;
}

/* ".base<mark>" followed by what, or NULL. */
static const char *after(const char *name, const char *base, const char *mark)
{
  size_t bl = strlen(base), ml = strlen(mark);

  if (name[0] != '.' || strncmp(name + 1, base, bl) != 0 || strncmp(name + 1 + bl, mark, ml))
    return NULL;
  return name + 1 + bl + ml;
}

static bool is_temp(const char *name, const char *base)
{
  const char *rest = after(name, base, ".pop3d-");

  return rest != NULL && is_suffix(rest, 6, false);
}

static bool is_index(const char *name, const char *base)
{
  const char *rest = after(name, base, MBOX_INDEX_SUFFIX);

  return rest != NULL && *rest == '\0';
}

static bool is_index_temp(const char *name, const char *base)
{
  const char *rest = after(name, base, MBOX_INDEX_SUFFIX ".");

  return rest != NULL && is_suffix(rest, 8, true);
}

bool spool_is_temp_name(const char *base, const char *name)
{
  return is_temp(name, base) || is_index_temp(name, base);
}

static bool is_dotlock(const char *name, const char *base)
{
  size_t bl = strlen(base);

  return strncmp(name, base, bl) == 0 && strcmp(name + bl, ".lock") == 0;
}

bool spool_name_allowed(enum spool_op op, const char *base, const char *name, const char *to)
{
  if (base[0] == '\0' || strchr(base, '/') || strcmp(base, ".") == 0 ||
      strcmp(base, "..") == 0 || strchr(name, '/') || (to != NULL && strchr(to, '/')))
    return false;
  switch (op) {
  case SPOOL_CREATE:
  case SPOOL_UNLINK:
    return is_dotlock(name, base) || is_temp(name, base) || is_index_temp(name, base);
  case SPOOL_TOUCH:
    return is_dotlock(name, base);
  case SPOOL_RENAME:
    return to != NULL && ((is_temp(name, base) && strcmp(to, base) == 0) ||
                          (is_index_temp(name, base) && is_index(to, base)));
  case SPOOL_LINK:
    return to != NULL && is_temp(name, base) && strcmp(to, base) == 0;
  case SPOOL_TMPFILE:
    return name[0] == '\0' && to == NULL;
  case SPOOL_LINKFD:
    return to == NULL &&
           (is_temp(name, base) || strcmp(name, base) == 0 || is_dotlock(name, base));
  default:
    return false;
  }
}

char *spool_split(const char *url, const char **base_r)
{
  const char *path = strchr(url, ':');
  char *dir, *slash;

  path = (path != NULL && path[1] == '/') ? path + 1 : url;
  if (path[0] != '/')
    return NULL;
  while (path[0] == '/' && path[1] == '/')
    path++;
  dir = util_xstrdup(path);
  slash = strrchr(dir, '/');
  if (slash == NULL || slash[1] == '\0' || slash == dir) {
    free(dir);
    return NULL;
  }
  *slash = '\0';
  *base_r = slash + 1;
  return dir;
}

/* Open dir following no symbolic link in any component (openat2 RESOLVE_NO_SYMLINKS;
 * where the kernel lacks it, the resolved name must be the name itself and the last
 * component is opened with O_NOFOLLOW). */
static int open_no_symlinks(const char *dir)
{
#if defined(SYS_openat2) && defined(HAVE_LINUX_OPENAT2_H)
  struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                          .resolve = RESOLVE_NO_SYMLINKS };
  long fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof how);

  if (fd >= 0 || errno != ENOSYS)
    return (int)fd;
#endif
  {
    char real[PATH_MAX];

    if (realpath(dir, real) == NULL || strcmp(real, dir) != 0) {
      errno = ELOOP;
      return -1;
    }
    return open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
}

int spool_broker_dir(const char *dir, uid_t uid)
{
  struct stat st;
  int fd = open_no_symlinks(dir);

  if (fd < 0) {
    if (errno == ELOOP)
      log_msg(LOG_WARNING, "spool %s: a symbolic link in the name: the session can't lock "
              "or rewrite maildrops there (name the real directory)", dir);
    return -1;
  }
  /* Only a shared spool the user can't write: root's, group-writable (the group the
   * session no longer has), never one a user could have made. */
  if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || st.st_uid == uid ||
      !(st.st_mode & S_IWGRP) || ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))) {
    close(fd);
    return -1;
  }
  return fd;
}

int spool_serve(int dirfd, const char *base, uid_t uid, enum spool_op op, const char *name,
                const char *to, int *fd_r)
{
  /* The nameless file last made for the session (a monitor serves one session): the
   * session writes it through the descriptor it was given, the monitor names it through
   * this one.  The session can have no other file named that way. */
  static int made = -1;
  struct stat st;
  int fd;

  *fd_r = -1;
  switch (op) {
  case SPOOL_CREATE:
    fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                0600);
    if (fd < 0)
      return errno;
    if (fchown(fd, uid, (gid_t)-1) < 0) {
      int e = errno;
      close(fd);
      (void)unlinkat(dirfd, name, 0);
      return e;
    }
    *fd_r = fd;
    return 0;
  case SPOOL_TMPFILE:
    /* Made here, as root, where the session can't; it is the session's to write. */
    if (made >= 0)
      close(made);
    made = -1;
    fd = tmpfile_at(dirfd);
    if (fd < 0)
      return errno;
    if (fchown(fd, uid, (gid_t)-1) < 0 || (made = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
      int e = errno;
      close(fd);
      return e;
    }
    *fd_r = fd;
    return 0;
  case SPOOL_LINKFD:
    if (made < 0)
      return EBADF;
    if (link_fd_at(made, dirfd, name) < 0)
      return errno;
    close(made);
    made = -1;
    return 0;
  case SPOOL_UNLINK:
    return unlinkat(dirfd, name, 0) < 0 ? errno : 0;
  case SPOOL_TOUCH:
    return utimensat(dirfd, name, NULL, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
  case SPOOL_RENAME:
  case SPOOL_LINK:
    /* The source is the user's own temporary; what it replaces is the user's too. */
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return errno;
    if (!S_ISREG(st.st_mode) || st.st_uid != uid)
      return EPERM;
    if (fstatat(dirfd, to, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (!S_ISREG(st.st_mode) || st.st_uid != uid))
      return EPERM;
    if (op == SPOOL_LINK)
      return linkat(dirfd, name, dirfd, to, 0) < 0 ? errno : 0;
    return renameat(dirfd, name, dirfd, to) < 0 ? errno : 0;
  default:
    (void)base;
    return EINVAL;
  }
}
