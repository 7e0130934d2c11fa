/* sha256.h - SHA-256 (FIPS 180-4), HMAC-SHA-256 (RFC 2104) and PBKDF2 with
 * HMAC-SHA-256 (RFC 8018 section 5.2), for SCRAM-SHA-256 (RFC 7677).
 *
 * Kept beside md5.c rather than borrowed from GnuTLS: tls.c stays the only file that
 * includes GnuTLS, and a build without GnuTLS still offers SCRAM-SHA-256.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_SHA256_H
#define POP3D_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_BLOCK_SIZE 64

struct sha256 {
  uint32_t h[8];
  uint64_t len;                 /* bytes hashed so far */
  unsigned char buf[SHA256_BLOCK_SIZE];
  size_t buflen;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t n);
/* Write the digest and wipe the context. */
void sha256_final(struct sha256 *c, unsigned char out[SHA256_DIGEST_SIZE]);
/* One call: the digest of n bytes. */
void sha256(const void *data, size_t n, unsigned char out[SHA256_DIGEST_SIZE]);

/* HMAC-SHA-256 keyed once, fed many times: the keyed state can be copied to start
 * another MAC with the same key (PBKDF2 does that thousands of times). */
struct hmac_sha256 {
  struct sha256 inner, outer;
};

void hmac_sha256_init(struct hmac_sha256 *h, const void *key, size_t keylen);
void hmac_sha256_update(struct hmac_sha256 *h, const void *data, size_t n);
/* Write the MAC and wipe the context. */
void hmac_sha256_final(struct hmac_sha256 *h, unsigned char out[SHA256_DIGEST_SIZE]);
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                 unsigned char out[SHA256_DIGEST_SIZE]);

/* PBKDF2-HMAC-SHA-256 of password and salt, iterations rounds (at least 1), outlen
 * bytes of output.  SCRAM's Hi() is this with outlen SHA256_DIGEST_SIZE. */
void pbkdf2_sha256(const void *password, size_t pwlen, const void *salt, size_t saltlen,
                   unsigned iterations, unsigned char *out, size_t outlen);

#endif
