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
/* The first 64 bits of that id as a number (never 0): what tells apart two messages
 * that give the same id (uidl_match). */
uint64_t uidl_hash_value(const struct uidl_hash *h, uint64_t size);

/* ---- Ids that never change (doc/pop3d.texi, "Unique ids") ----
 *
 * The id a message is first listed with is its id for good: the maildrop's index
 * remembers it (keep[] of uidl_assign), whatever the messages around it become.  An id
 * whose message is gone is retired: it is not handed out again for UIDL_RETIRE_DAYS
 * days after pop3d found the message gone, long enough for a client that leaves mail
 * on the server and checks rarely to have forgotten it.  A message new to the index gets
 * its own id (X-UIDL, Dovecot's, or derived from its content) when that is neither in
 * use nor retired, else its own id with the first free suffix "-2", "-3", ...  Without
 * any index (and so nothing kept or retired) this is exactly the rule of
 * mailbox_unique_uids: the ids are derived again as they were first listed, but for a
 * duplicate whose twin listed before it is gone (it is then listed without its suffix). */
#define UIDL_RETIRE_DAYS 180
#define UIDL_RETIRE_SECONDS ((int64_t)UIDL_RETIRE_DAYS * 86400)
/* The most retired ids an index keeps (the most recent ones). */
#define UIDL_RETIRED_MAX 1000000u

struct uidl_retired {
  const char *id;     /* NUL-terminated, valid (uidl_valid) */
  int64_t since;      /* when its message was found gone; 0: no longer retired */
};

/* Is r still retired at now (not for longer than UIDL_RETIRE_SECONDS, not from the
 * future)? */
bool uidl_retired_in_force(const struct uidl_retired *r, int64_t now);

struct mailbox;

/* Give each message of mb its listed id.  Before: mb->msgs[i].uid is the message's own
 * id.  keep[i] (keep may be NULL): the id the index remembers for message i, or NULL.
 * retired[0..nretired): ids not to hand out while in force at now; those no longer in
 * force, and those a message keeps, get since 0 (the caller then drops them).  0, or -1
 * with *error_r (out of memory). */
int uidl_assign(struct mailbox *mb, const char *const *keep, struct uidl_retired *retired,
                size_t nretired, int64_t now, const char **error_r) WUR;

/* A growable list of retired ids (the strings are not copied). */
struct uidl_retired_list {
  struct uidl_retired *v;
  size_t n, cap;
};
void uidl_retired_add(struct uidl_retired_list *l, const char *id, int64_t since);
/* Drop the entries with since 0 and keep at most UIDL_RETIRED_MAX, the most recent. */
void uidl_retired_prune(struct uidl_retired_list *l);
void uidl_retired_free(struct uidl_retired_list *l);

/* What an index remembers of a message of a maildrop that has no stable name for its
 * messages (mbox): found again after the maildrop was rewritten. */
struct uidl_prior {
  const char *own;     /* the id the message gave itself (NUL-terminated) */
  const char *listed;  /* the id it was listed with */
  uint64_t disc;       /* what tells apart equal own ids (uidl_hash_value), 0: unknown */
  bool going;          /* deleted at an UPDATE that may not have finished */
};
/* Which prior record each message of mb is (its own id mailbox_uid(mb, i), disc[i]):
 * match[i] = the record's index or SIZE_MAX.  First the same own id and disc (a record
 * not going before one going), then the same own id in order (not going: a header pop3d
 * changed), then an own id that is a record's listed id (pop3d wrote it into the
 * message as X-UIDL).  Each record matches one message at most. */
void uidl_match(const struct uidl_prior *p, size_t np, const struct mailbox *mb,
                const uint64_t *disc, size_t *match);

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
