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

/* Dovecot's mbox UIDs.  Dovecot keeps them in the mbox itself: "X-IMAPbase: UIDVALIDITY
 * LAST-UID [keywords]" in the first message's header and "X-UID: UID" in every message it
 * has served, and gives the POP3 id %08Xu%08Xv from them.  pop3d trusts an X-UID only as
 * Dovecot does (its mbox-sync parser): the first message carries a valid X-IMAPbase
 * before any X-UID of its own, and each X-UID is above the UID of the message before
 * and at most the next UID Dovecot would assign; a message without a trusted X-UID is
 * given that next UID (Dovecot would number it so), which moves the chain on, but keeps
 * pop3d's own id: Dovecot never served it.  A sender can therefore not forge an id
 * below what the maildrop already holds. */
struct uidl_mbox_chain {
  uint32_t validity;  /* 0: no valid X-IMAPbase in the first message, no X-UID trusted */
  uint32_t prev;      /* UID of the previous message */
  uint64_t next;      /* UID Dovecot would give the next message without one */
};
/* An X-IMAPbase (or c-client X-IMAP) value v[0..len) (after the colon, leading blanks
 * included, no line end): its UIDVALIDITY (never 0) and last UID. */
bool uidl_ximapbase_parse(const char *v, size_t len, uint32_t *validity, uint32_t *last);
/* Start the chain at the first message's X-IMAPbase. */
void uidl_chain_start(struct uidl_mbox_chain *c, uint32_t validity, uint32_t last);
/* Is the X-UID value v[0..len) trusted next in the chain?  Sets *uid; the chain moves on
 * only at uidl_chain_end. */
bool uidl_chain_xuid(const struct uidl_mbox_chain *c, const char *v, size_t len,
                     uint32_t *uid);
/* The end of a message: uid is its trusted X-UID or 0 (pseudo: c-client's folder
 * data message, which Dovecot does not number). */
void uidl_chain_end(struct uidl_mbox_chain *c, uint32_t uid, bool pseudo);
/* Is the chain state (from an index) possible? */
bool uidl_chain_valid(const struct uidl_mbox_chain *c);
/* Dovecot's default POP3 id of UID uid: %08Xu%08Xv, which Dovecot prints in lower case. */
void uidl_dovecot_format(uint32_t uid, uint32_t validity, char out[71]);

#endif
