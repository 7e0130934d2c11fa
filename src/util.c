/* util.c - small helpers shared by every module.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                   const char **error_r)
{
  uint64_t v = 0;

  if (s == NULL || *s == '\0') {
    *error_r = "empty number";
    return -1;
  }
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') {
      *error_r = "not a number";
      return -1;
    }
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v)) {
      *error_r = "number too large";
      return -1;
    }
  }
  if (v < min) {
    *error_r = "number too small";
    return -1;
  }
  if (v > max) {
    *error_r = "number too large";
    return -1;
  }
  *out = v;
  return 0;
}

int util_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out,
                    const char **error_r)
{
  uint64_t v;

  if (util_parse_u64(s, min, max, &v, error_r) < 0)
    return -1;
  *out = (unsigned)v;
  return 0;
}

static void *check_alloc(void *p)
{
  if (p == NULL) {
    fputs("pop3d: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *util_xmalloc(size_t n)
{
  return check_alloc(malloc(n ? n : 1));
}

void *util_xcalloc(size_t n, size_t size)
{
  return check_alloc(calloc(n ? n : 1, size ? size : 1));
}

void *util_xreallocarray(void *p, size_t n, size_t size)
{
  size_t total;

  if (!util_mul_size(n, size, &total)) {
    fputs("pop3d: allocation size overflow\n", stderr);
    abort();
  }
  return check_alloc(realloc(p, total ? total : 1));
}

char *util_xstrdup(const char *s)
{
  return check_alloc(strdup(s));
}

char *util_xstrndup(const char *s, size_t n)
{
  return check_alloc(strndup(s, n));
}

char *util_xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *s;
  int r;

  va_start(ap, fmt);
  r = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (r < 0)
    check_alloc(NULL);
  return s;
}

bool util_memeq_ct(const void *a, const void *b, size_t n)
{
  const volatile unsigned char *x = a, *y = b;
  unsigned char d = 0;

  for (size_t i = 0; i < n; i++)
    d |= x[i] ^ y[i];
  return d == 0;
}

bool util_streq_ct(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d = (unsigned char)(la != lb);

  /* Walk b entirely; read a cyclically so that the time depends on b only. */
  for (size_t i = 0; i < lb; i++)
    d |= (unsigned char)(b[i] ^ (la ? a[i % la] : 0));
  return d == 0;
}

void util_wipe(void *p, size_t n)
{
  if (p != NULL)
    explicit_bzero(p, n);
}

void util_free_secret(char *s)
{
  if (s != NULL) {
    util_wipe(s, strlen(s));
    free(s);
  }
}

int util_random(void *buf, size_t n)
{
  unsigned char *p = buf;

  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int util_strncasecmp(const char *a, const char *b, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];
    if (ca >= 'A' && ca <= 'Z')
      ca = (unsigned char)(ca - 'A' + 'a');
    if (cb >= 'A' && cb <= 'Z')
      cb = (unsigned char)(cb - 'A' + 'a');
    if (ca != cb)
      return ca - cb;
    if (ca == '\0')
      return 0;
  }
  return 0;
}

int util_write_all(int fd, const void *buf, size_t n)
{
  const char *p = buf;

  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int util_pread_all(int fd, void *buf, size_t n, off_t off)
{
  char *p = buf;

  while (n > 0) {
    ssize_t r = pread(fd, p, n, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    p += r;
    off += r;
    n -= (size_t)r;
  }
  return 0;
}

uint64_t util_now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void util_sleep_ms(uint64_t ms)
{
  struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };

  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}
