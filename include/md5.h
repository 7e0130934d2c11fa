/* md5.h - MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), for APOP and CRAM-MD5.
 *
 * MD5 is broken as a collision-resistant hash; APOP (RFC 1939 section 7) and CRAM-MD5
 * (RFC 2195) are defined with it and use it only as a keyed digest of a fresh challenge.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_MD5_H
#define POP3D_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_DIGEST_SIZE 16
#define MD5_BLOCK_SIZE 64
#define MD5_HEX_SIZE (2 * MD5_DIGEST_SIZE + 1)

struct md5 {
  uint32_t h[4];
  uint64_t len;                 /* bytes hashed so far */
  unsigned char buf[MD5_BLOCK_SIZE];
  size_t buflen;
};

void md5_init(struct md5 *m);
void md5_update(struct md5 *m, const void *data, size_t n);
/* Write the digest and wipe the context. */
void md5_final(struct md5 *m, unsigned char out[MD5_DIGEST_SIZE]);
/* One call: the digest of n bytes. */
void md5(const void *data, size_t n, unsigned char out[MD5_DIGEST_SIZE]);

/* HMAC-MD5 of msg under key (any length). */
void hmac_md5(const void *key, size_t keylen, const void *msg, size_t msglen,
              unsigned char out[MD5_DIGEST_SIZE]);

/* Lower-case hexadecimal of a digest, NUL-terminated. */
void md5_hex(const unsigned char d[MD5_DIGEST_SIZE], char out[MD5_HEX_SIZE]);

#endif
