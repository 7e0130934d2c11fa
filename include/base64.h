/* base64.h - RFC 4648 base64 (standard alphabet, padded), as SASL (RFC 5034) uses it.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_BASE64_H
#define POP3D_BASE64_H

#include <stddef.h>

#include "util.h"

/* Size of the encoding of n bytes, without the NUL. */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Encode n bytes into out (cap bytes, NUL-terminated).  Returns the length written, or
 * (size_t)-1 when cap is too small (out is then an empty string if cap > 0). */
size_t base64_encode(const void *in, size_t n, char *out, size_t cap) WUR;

/* Decode the len characters of in strictly: the standard alphabet only, padding to a
 * multiple of four, no whitespace, no data after padding, and zero bits in the unused
 * part of the last group (RFC 4648 section 3.5).  out gets at most cap bytes; a NUL is
 * added after them when room remains (decoded data may itself hold NULs).  Returns 0
 * with *n_r set, or -1 on malformed input or too small a buffer. */
int base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                  size_t *n_r) WUR;

#endif
