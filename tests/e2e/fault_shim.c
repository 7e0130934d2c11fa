/* fault_shim.c - an LD_PRELOAD library that makes a filesystem misbehave for pop3d,
 * under the control of the environment:
 *
 *   POP3D_FAULT_MATCH     fsync() and fdatasync() of files whose name (/proc/self/fd)
 *                         contains this string are affected, no other;
 *   POP3D_FAULT_FSYNC     "eio": they fail with EIO; "hang": the first writes the
 *                         process id to the file POP3D_FAULT_MARK, then waits for a
 *                         signal (the test kills the process there);
 *   POP3D_FAULT_NO_TMPFILE  set: open() and openat() with O_TMPFILE fail with
 *                         EOPNOTSUPP, as on a filesystem without nameless files.
 *
 * Built by test_faults.py with the system's C compiler.  GPL-3.0-or-later.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int affected(int fd)
{
  const char *match = getenv("POP3D_FAULT_MATCH");
  char link[64], name[4096];
  ssize_t n;

  if (match == NULL || *match == '\0')
    return 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink(link, name, sizeof name - 1);
  if (n < 0)
    return 0;
  name[n] = '\0';
  return strstr(name, match) != NULL;
}

static int fault(int fd)
{
  const char *what = getenv("POP3D_FAULT_FSYNC");

  if (what == NULL || !affected(fd))
    return 0;
  if (strcmp(what, "eio") == 0) {
    errno = EIO;
    return -1;
  }
  if (strcmp(what, "hang") == 0) {
    const char *mark = getenv("POP3D_FAULT_MARK");
    if (mark != NULL) {
      char tmp[4200];
      FILE *f;
      snprintf(tmp, sizeof tmp, "%s.tmp", mark);
      f = fopen(tmp, "w");
      if (f != NULL) {
        fprintf(f, "%ld\n", (long)getpid());
        if (fclose(f) == 0)
          rename(tmp, mark);
      }
    }
    for (;;)
      pause();
  }
  return 0;
}

int fsync(int fd)
{
  static int (*real)(int);

  if (fault(fd) < 0)
    return -1;
  if (real == NULL)
    real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return real(fd);
}

int fdatasync(int fd)
{
  static int (*real)(int);

  if (fault(fd) < 0)
    return -1;
  if (real == NULL)
    real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  return real(fd);
}

/* Has a call with these flags a mode argument (glibc's __OPEN_NEEDS_MODE)? */
#define NEEDS_MODE(flags) (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE)
#define MODE_ARG(flags, mode)                                                     \
  do {                                                                            \
    va_list ap;                                                                   \
    va_start(ap, flags);                                                          \
    mode = NEEDS_MODE(flags) ? va_arg(ap, mode_t) : 0;                            \
    va_end(ap);                                                                   \
  } while (0)

static int open_at(int dirfd, const char *path, int flags, mode_t mode)
{
  static int (*real)(int, const char *, int, ...);

  if ((flags & O_TMPFILE) == O_TMPFILE && getenv("POP3D_FAULT_NO_TMPFILE") != NULL) {
    errno = EOPNOTSUPP;
    return -1;
  }
  if (real == NULL)
    real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
  return real(dirfd, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
  mode_t mode;

  MODE_ARG(flags, mode);
  return open_at(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
  mode_t mode;

  MODE_ARG(flags, mode);
  return open_at(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
  mode_t mode;

  MODE_ARG(flags, mode);
  return open_at(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
  mode_t mode;

  MODE_ARG(flags, mode);
  return open_at(AT_FDCWD, path, flags, mode);
}
