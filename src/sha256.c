/* sha256.c - SHA-256 after FIPS 180-4 section 6.2, HMAC after RFC 2104, PBKDF2 after
 * RFC 8018 section 5.2.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <string.h>

#include "sha256.h"
#include "util.h"

/* The first 32 bits of the fractional parts of the cube roots of the first 64 primes
 * (FIPS 180-4 section 4.2.2). */
static const uint32_t sha256_k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
  0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
  0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
  0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
  0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
  0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
  0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
  return (x >> n) | (x << (32 - n));
}

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
  uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6],
           hh = h[7];

  /* The message is read as big-endian 32-bit words whatever the host order. */
  for (unsigned i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (unsigned i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);

    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  for (unsigned i = 0; i < 64; i++) {
    uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = hh + s1 + ch + sha256_k[i] + w[i];
    uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = s0 + maj;

    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
  util_wipe(w, sizeof w);
}

void sha256_init(struct sha256 *c)
{
  /* The first 32 bits of the fractional parts of the square roots of the first 8
   * primes (section 5.3.3). */
  static const uint32_t h0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
    0x5be0cd19,
  };

  memcpy(c->h, h0, sizeof c->h);
  c->len = 0;
  c->buflen = 0;
}

void sha256_update(struct sha256 *c, const void *data, size_t n)
{
  const unsigned char *p = data;

  c->len += n;
  if (c->buflen > 0) {
    size_t take = SHA256_BLOCK_SIZE - c->buflen;

    if (take > n)
      take = n;
    memcpy(c->buf + c->buflen, p, take);
    c->buflen += take;
    p += take;
    n -= take;
    if (c->buflen < SHA256_BLOCK_SIZE)
      return;
    sha256_block(c->h, c->buf);
    c->buflen = 0;
  }
  for (; n >= SHA256_BLOCK_SIZE; p += SHA256_BLOCK_SIZE, n -= SHA256_BLOCK_SIZE)
    sha256_block(c->h, p);
  if (n > 0) {
    memcpy(c->buf, p, n);
    c->buflen = n;
  }
}

void sha256_final(struct sha256 *c, unsigned char out[SHA256_DIGEST_SIZE])
{
  static const unsigned char pad[SHA256_BLOCK_SIZE] = { 0x80 };
  unsigned char lenbytes[8];
  uint64_t bits = c->len * 8;

  /* A 1 bit, zeros up to 56 mod 64, then the bit length, big-endian. */
  for (unsigned i = 0; i < 8; i++)
    lenbytes[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, pad, c->buflen < 56 ? 56 - c->buflen : 120 - c->buflen);
  sha256_update(c, lenbytes, sizeof lenbytes);
  for (unsigned i = 0; i < 8; i++)
    for (unsigned j = 0; j < 4; j++)
      out[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
  util_wipe(c, sizeof *c);
}

void sha256(const void *data, size_t n, unsigned char out[SHA256_DIGEST_SIZE])
{
  struct sha256 c;

  sha256_init(&c);
  sha256_update(&c, data, n);
  sha256_final(&c, out);
}

void hmac_sha256_init(struct hmac_sha256 *h, const void *key, size_t keylen)
{
  unsigned char k[SHA256_BLOCK_SIZE], pad[SHA256_BLOCK_SIZE];

  memset(k, 0, sizeof k);
  if (keylen > SHA256_BLOCK_SIZE)
    sha256(key, keylen, k);
  else if (keylen > 0)
    memcpy(k, key, keylen);
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x36;
  sha256_init(&h->inner);
  sha256_update(&h->inner, pad, sizeof pad);
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x5c;
  sha256_init(&h->outer);
  sha256_update(&h->outer, pad, sizeof pad);
  util_wipe(k, sizeof k);
  util_wipe(pad, sizeof pad);
}

void hmac_sha256_update(struct hmac_sha256 *h, const void *data, size_t n)
{
  sha256_update(&h->inner, data, n);
}

void hmac_sha256_final(struct hmac_sha256 *h, unsigned char out[SHA256_DIGEST_SIZE])
{
  unsigned char inner[SHA256_DIGEST_SIZE];

  sha256_final(&h->inner, inner);
  sha256_update(&h->outer, inner, sizeof inner);
  sha256_final(&h->outer, out);
  util_wipe(inner, sizeof inner);
}

void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                 unsigned char out[SHA256_DIGEST_SIZE])
{
  struct hmac_sha256 h;

  hmac_sha256_init(&h, key, keylen);
  hmac_sha256_update(&h, msg, msglen);
  hmac_sha256_final(&h, out);
}

void pbkdf2_sha256(const void *password, size_t pwlen, const void *salt, size_t saltlen,
                   unsigned iterations, unsigned char *out, size_t outlen)
{
  struct hmac_sha256 keyed, h;
  unsigned char u[SHA256_DIGEST_SIZE], t[SHA256_DIGEST_SIZE], idx[4];

  hmac_sha256_init(&keyed, password, pwlen);
  for (uint32_t block = 1; outlen > 0; block++) {
    size_t n = outlen < SHA256_DIGEST_SIZE ? outlen : SHA256_DIGEST_SIZE;

    /* U1 = PRF(P, S || INT(i)); Uj = PRF(P, Uj-1); T = U1 ^ U2 ^ ... ^ Uc */
    idx[0] = (unsigned char)(block >> 24);
    idx[1] = (unsigned char)(block >> 16);
    idx[2] = (unsigned char)(block >> 8);
    idx[3] = (unsigned char)block;
    h = keyed;
    hmac_sha256_update(&h, salt, saltlen);
    hmac_sha256_update(&h, idx, sizeof idx);
    hmac_sha256_final(&h, u);
    memcpy(t, u, sizeof t);
    for (unsigned j = 1; j < iterations; j++) {
      h = keyed;
      hmac_sha256_update(&h, u, sizeof u);
      hmac_sha256_final(&h, u);
      for (size_t k = 0; k < sizeof t; k++)
        t[k] ^= u[k];
    }
    memcpy(out, t, n);
    out += n;
    outlen -= n;
  }
  util_wipe(&keyed, sizeof keyed);
  util_wipe(u, sizeof u);
  util_wipe(t, sizeof t);
}
