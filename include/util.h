/* util.h - strict number parsing, checked arithmetic, timing-safe compare, wiping.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_UTIL_H
#define POP3D_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WUR __attribute__((warn_unused_result))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Parse a decimal unsigned number: digits only (no sign, no space, no junk), value in
 * [min, max].  0 on success, -1 on any error (with *error_r set). */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                   const char **error_r) WUR;
int util_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out,
                    const char **error_r) WUR;

/* Checked size arithmetic: false on overflow. */
static inline bool util_add_size(size_t a, size_t b, size_t *r)
{ return !__builtin_add_overflow(a, b, r); }
static inline bool util_mul_size(size_t a, size_t b, size_t *r)
{ return !__builtin_mul_overflow(a, b, r); }

/* Allocation that aborts on failure (used only for small bounded allocations). */
void *util_xmalloc(size_t n);
void *util_xcalloc(size_t n, size_t size);
void *util_xreallocarray(void *p, size_t n, size_t size);
char *util_xstrdup(const char *s);
char *util_xstrndup(const char *s, size_t n);
char *util_xasprintf(const char *fmt, ...) PRINTF(1, 2);

/* Constant-time comparison of two byte strings of equal length. */
bool util_memeq_ct(const void *a, const void *b, size_t n);
/* Constant-time comparison of NUL-terminated strings (time depends only on len of b). */
bool util_streq_ct(const char *a, const char *b);
/* Wipe memory so the compiler can't elide it. */
void util_wipe(void *p, size_t n);
/* Wipe and free a string. */
void util_free_secret(char *s);

/* Fill buf with n bytes from the kernel's random source.  0 or -1. */
int util_random(void *buf, size_t n) WUR;

/* Case-insensitive ASCII comparison of at most n bytes (locale-free). */
int util_strncasecmp(const char *a, const char *b, size_t n);

/* Write all of buf to fd, retrying on EINTR and short writes.  0 or -1. */
int util_write_all(int fd, const void *buf, size_t n) WUR;

/* Read exactly n bytes of fd at offset off, retrying on EINTR and short reads.  0, or -1
 * on an error or when the file ends first. */
int util_pread_all(int fd, void *buf, size_t n, off_t off) WUR;

/* Monotonic clock in milliseconds. */
uint64_t util_now_ms(void);

/* Sleep ms milliseconds, the whole time even when a signal interrupts. */
void util_sleep_ms(uint64_t ms);

#endif
