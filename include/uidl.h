/* uidl.h - stable unique ids of messages (RFC 1939 section 7).
 *
 * The rule (written out in doc/pop3d.texi, "Unique ids"):
 *  - an existing valid X-UIDL header (1..70 characters 0x21..0x7E) is the id, as
 *    Mailutils wrote it there;
 *  - otherwise the id is derived from the message itself (its From_ line and header
 *    block, and its size), never from time, so it survives the loss of any index;
 *  - when two messages would get the same id, the later gets a suffix, so ids are unique.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_UIDL_H
#define POP3D_UIDL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Is s[0..len) a valid unique id? */
bool uidl_valid(const char *s, size_t len);

/* Incremental 128-bit hash of message bytes (our own; not cryptographic). */
struct uidl_hash {
  uint64_t a, b;
  uint64_t n;      /* bytes hashed so far */
  uint64_t tail;   /* the last n % 8 bytes, not yet mixed (little-endian) */
};
void uidl_hash_init(struct uidl_hash *h);
void uidl_hash_update(struct uidl_hash *h, const void *p, size_t len);
/* Write the id (NUL-terminated, at most PARAMS_UIDL_MAX chars) to out[71]. */
void uidl_hash_final(const struct uidl_hash *h, uint64_t size, char out[71]);

#endif
