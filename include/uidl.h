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

#include "util.h"

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

/* Dovecot's maildir index of IMAP UIDs, "dovecot-uidlist", read so that a maildrop last
 * served by Dovecot keeps its POP3 ids: Dovecot's default pop3_uidl_format %08Xu%08Xv
 * (IMAP UID and UIDVALIDITY in upper-case hex), or the id recorded in a record's P
 * field (Dovecot's migration field).  Formats read: version 1 ("1 UIDVALIDITY NEXTUID",
 * records "UID FILENAME") and version 3 ("3 V<uidvalidity> N<nextuid> ...", records
 * "UID [KEYvalue ...] :FILENAME").  Records are matched by the file's base name (the
 * part before ':').  A file with a bad header is ignored; a bad record is skipped. */
struct uidl_dovecot_entry {
  uint32_t uid;
  uint32_t name, name_len;    /* base name: offset and length in text */
  uint32_t pop3, pop3_len;    /* P field, pop3_len 0 if none */
};
struct uidl_dovecot {
  uint32_t uidvalidity;
  struct uidl_dovecot_entry *v;
  size_t n;
  char *text;
};

/* Parse text[0..len) (malloc'd; d owns it afterwards, even on failure).  0, or -1 when
 * it is not a uidlist (d is then empty). */
int uidl_dovecot_parse(struct uidl_dovecot *d, char *text, size_t len) WUR;
/* Read and parse "dovecot-uidlist" in the directory dirfd.  0, or -1 when there is none
 * or it is unusable (d is then empty and can be freed). */
int uidl_dovecot_load(struct uidl_dovecot *d, int dirfd) WUR;
/* The id Dovecot gives the message of base name base[0..len), written to out:
 * UIDL_DOVECOT_POP3 (the record's P field), UIDL_DOVECOT_UID (UID and UIDVALIDITY), or
 * UIDL_DOVECOT_NONE when the uidlist does not know it. */
enum { UIDL_DOVECOT_NONE = 0, UIDL_DOVECOT_UID = 1, UIDL_DOVECOT_POP3 = 2 };
int uidl_dovecot_lookup(const struct uidl_dovecot *d, const char *base, size_t len,
                         char out[71]);
void uidl_dovecot_free(struct uidl_dovecot *d);

#endif
