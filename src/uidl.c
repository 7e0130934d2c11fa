/* uidl.c - unique ids of messages: validity and the message hash.
 *
 * The hash runs two independent 64-bit lanes over little-endian 8-byte words, each a
 * multiply followed by a shift that folds the high bits back down, so that every input
 * bit reaches every output bit after the final mix.  It is fast (header blocks of every
 * message are hashed at open) and well dispersed; it is not meant to resist a forger,
 * and need not: equal ids are made unique by the caller.  The words are read in a fixed
 * byte order so that an id does not change when the mail moves to another machine.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "params.h"
#include "uidl.h"

#define UIDL_K1 0x9e3779b97f4a7c15ull
#define UIDL_K2 0xc2b2ae3d27d4eb4full
#define UIDL_K3 0x165667b19e3779f9ull
#define UIDL_K4 0xd6e8feb86659fd93ull

bool uidl_valid(const char *s, size_t len)
{
  if (s == NULL || len == 0 || len > PARAMS_UIDL_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x21 || ch > 0x7e)
      return false;
  }
  return true;
}

static inline uint64_t uidl_rotl(uint64_t x, unsigned r)
{
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t uidl_load_le(const unsigned char *p)
{
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
         (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
         (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline void uidl_mix(struct uidl_hash *h, uint64_t w)
{
  h->a = (h->a ^ w) * UIDL_K1;
  h->a ^= h->a >> 31;
  h->b = uidl_rotl(h->b + w, 27) * UIDL_K2;
  h->b ^= h->b >> 29;
}

void uidl_hash_init(struct uidl_hash *h)
{
  h->a = UIDL_K3;
  h->b = UIDL_K4;
  h->n = 0;
  h->tail = 0;
}

void uidl_hash_update(struct uidl_hash *h, const void *data, size_t len)
{
  const unsigned char *p = data;
  unsigned have = (unsigned)(h->n & 7);

  h->n += len;
  if (have != 0) {
    while (have < 8 && len > 0) {
      h->tail |= (uint64_t)*p++ << (8 * have);
      have++;
      len--;
    }
    if (have < 8)
      return;
    uidl_mix(h, h->tail);
    h->tail = 0;
  }
  while (len >= 8) {
    uidl_mix(h, uidl_load_le(p));
    p += 8;
    len -= 8;
  }
  for (unsigned i = 0; i < len; i++)
    h->tail |= (uint64_t)p[i] << (8 * i);
}

static uint64_t uidl_fold(uint64_t x)
{
  x ^= x >> 32;
  x *= UIDL_K2;
  x ^= x >> 29;
  x *= UIDL_K1;
  x ^= x >> 32;
  return x;
}

void uidl_hash_final(const struct uidl_hash *h, uint64_t size, char out[71])
{
  struct uidl_hash t = *h;
  uint64_t a, b;

  /* The partial word is mixed with the length, so "ab" and "ab\0" differ. */
  if (t.n & 7)
    uidl_mix(&t, t.tail);
  a = t.a ^ (t.n * UIDL_K3);
  b = t.b ^ (size * UIDL_K1);
  a += b;
  b += a;
  a = uidl_fold(a);
  b = uidl_fold(b ^ UIDL_K4);
  a += b;
  b += a;
  snprintf(out, 71, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}
