/* base64.c - RFC 4648 base64, strict on input.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdint.h>

#include "base64.h"

static const char alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const void *in, size_t n, char *out, size_t cap)
{
  const unsigned char *p = in;
  size_t need, o = 0;

  if (n > (SIZE_MAX - 3) / 4 * 3 - 3 || (need = BASE64_ENCODED_LEN(n)) >= cap) {
    if (cap > 0)
      out[0] = '\0';
    return (size_t)-1;
  }
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    size_t left = n - i;

    if (left > 1)
      v |= (uint32_t)p[i + 1] << 8;
    if (left > 2)
      v |= p[i + 2];
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    out[o++] = left > 1 ? alphabet[v >> 6 & 63] : '=';
    out[o++] = left > 2 ? alphabet[v & 63] : '=';
  }
  out[o] = '\0';
  return need;
}

static int value_of(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int base64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *n_r)
{
  size_t o = 0;

  *n_r = 0;
  if (len % 4 != 0)
    return -1;
  for (size_t i = 0; i < len; i += 4) {
    int v[4];
    unsigned pad = 0;
    uint32_t w;

    for (unsigned j = 0; j < 4; j++) {
      unsigned char c = (unsigned char)in[i + j];

      if (c == '=') {
        /* Padding only in the last group, only in its last two places, and nothing
         * but padding after it. */
        if (i + 4 != len || j < 2)
          return -1;
        pad++;
        v[j] = 0;
        continue;
      }
      if (pad > 0 || (v[j] = value_of(c)) < 0)
        return -1;
    }
    w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    /* Non-canonical encodings (unused bits set) are refused. */
    if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
      return -1;
    if (cap - o < 3 - pad)
      return -1;
    out[o++] = (unsigned char)(w >> 16);
    if (pad < 2)
      out[o++] = (unsigned char)(w >> 8);
    if (pad < 1)
      out[o++] = (unsigned char)w;
  }
  if (o < cap)
    out[o] = '\0';
  *n_r = o;
  return 0;
}
