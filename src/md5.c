/* md5.c - MD5 after the description of RFC 1321, and HMAC-MD5 after RFC 2104.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <string.h>

#include "md5.h"
#include "util.h"

/* T[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 section 3.4. */
static const uint32_t md5_t[64] = {
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
  0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
  0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
  0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
  0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
  0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
  0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
  0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
  0xeb86d391,
};

/* Left-rotation amounts, four per round. */
static const unsigned char md5_s[4][4] = {
  { 7, 12, 17, 22 }, { 5, 9, 14, 20 }, { 4, 11, 16, 23 }, { 6, 10, 15, 21 },
};

static uint32_t rotl(uint32_t x, unsigned n)
{
  return (x << n) | (x >> (32 - n));
}

static void md5_block(uint32_t h[4], const unsigned char *p)
{
  uint32_t x[16], a = h[0], b = h[1], c = h[2], d = h[3];

  /* The message is read as little-endian 32-bit words whatever the host order. */
  for (unsigned i = 0; i < 16; i++)
    x[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
           (uint32_t)p[4 * i + 3] << 24;
  for (unsigned i = 0; i < 64; i++) {
    uint32_t f, tmp;
    unsigned k, round = i / 16;

    switch (round) {
    case 0: f = (b & c) | (~b & d); k = i; break;
    case 1: f = (b & d) | (c & ~d); k = (5 * i + 1) % 16; break;
    case 2: f = b ^ c ^ d; k = (3 * i + 5) % 16; break;
    default: f = c ^ (b | ~d); k = (7 * i) % 16; break;
    }
    tmp = d;
    d = c;
    c = b;
    b = b + rotl(a + f + x[k] + md5_t[i], md5_s[round][i % 4]);
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  util_wipe(x, sizeof x);
}

void md5_init(struct md5 *m)
{
  m->h[0] = 0x67452301;
  m->h[1] = 0xefcdab89;
  m->h[2] = 0x98badcfe;
  m->h[3] = 0x10325476;
  m->len = 0;
  m->buflen = 0;
}

void md5_update(struct md5 *m, const void *data, size_t n)
{
  const unsigned char *p = data;

  m->len += n;
  if (m->buflen > 0) {
    size_t take = MD5_BLOCK_SIZE - m->buflen;

    if (take > n)
      take = n;
    memcpy(m->buf + m->buflen, p, take);
    m->buflen += take;
    p += take;
    n -= take;
    if (m->buflen < MD5_BLOCK_SIZE)
      return;
    md5_block(m->h, m->buf);
    m->buflen = 0;
  }
  for (; n >= MD5_BLOCK_SIZE; p += MD5_BLOCK_SIZE, n -= MD5_BLOCK_SIZE)
    md5_block(m->h, p);
  if (n > 0) {
    memcpy(m->buf, p, n);
    m->buflen = n;
  }
}

void md5_final(struct md5 *m, unsigned char out[MD5_DIGEST_SIZE])
{
  static const unsigned char pad[MD5_BLOCK_SIZE] = { 0x80 };
  unsigned char lenbytes[8];
  uint64_t bits = m->len * 8;

  /* A 1 bit, zeros up to 56 mod 64, then the bit length, little-endian. */
  for (unsigned i = 0; i < 8; i++)
    lenbytes[i] = (unsigned char)(bits >> (8 * i));
  md5_update(m, pad, m->buflen < 56 ? 56 - m->buflen : 120 - m->buflen);
  md5_update(m, lenbytes, sizeof lenbytes);
  for (unsigned i = 0; i < 4; i++)
    for (unsigned j = 0; j < 4; j++)
      out[4 * i + j] = (unsigned char)(m->h[i] >> (8 * j));
  util_wipe(m, sizeof *m);
}

void md5(const void *data, size_t n, unsigned char out[MD5_DIGEST_SIZE])
{
  struct md5 m;

  md5_init(&m);
  md5_update(&m, data, n);
  md5_final(&m, out);
}

void hmac_md5(const void *key, size_t keylen, const void *msg, size_t msglen,
              unsigned char out[MD5_DIGEST_SIZE])
{
  unsigned char k[MD5_BLOCK_SIZE], pad[MD5_BLOCK_SIZE], inner[MD5_DIGEST_SIZE];
  struct md5 m;

  memset(k, 0, sizeof k);
  if (keylen > MD5_BLOCK_SIZE)
    md5(key, keylen, k);
  else if (keylen > 0)
    memcpy(k, key, keylen);

  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x36;
  md5_init(&m);
  md5_update(&m, pad, sizeof pad);
  md5_update(&m, msg, msglen);
  md5_final(&m, inner);

  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x5c;
  md5_init(&m);
  md5_update(&m, pad, sizeof pad);
  md5_update(&m, inner, sizeof inner);
  md5_final(&m, out);

  util_wipe(k, sizeof k);
  util_wipe(pad, sizeof pad);
  util_wipe(inner, sizeof inner);
}

void md5_hex(const unsigned char d[MD5_DIGEST_SIZE], char out[MD5_HEX_SIZE])
{
  static const char hex[] = "0123456789abcdef";

  for (size_t i = 0; i < MD5_DIGEST_SIZE; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[2 * MD5_DIGEST_SIZE] = '\0';
}
