/* maildir_index.h - the on-disk index of a Maildir or MH folder, so that opening one
 * whose messages have not changed does not read every message file again.
 *
 * The directories are still read (readdir of new/ and cur/, or of the folder): that is
 * cheap and it is the truth about which messages exist.  The index maps each message
 * file to what the scan of its content found (size by the size rule, lines, X-UIDL or
 * the content id, expiry marks).  Its key:
 *  - Maildir: the unique base name (the part before ':') and the inode, both given by
 *    readdir, so a hit costs no system call at all.  Maildir files are never changed in
 *    place (the convention every MDA and reader follows, and pop3d's own rewrite is a
 *    new file renamed over the old one: a new inode); a move to cur/ or new flags keep
 *    both parts of the key.
 *  - MH: the number, the inode, the file size and the status change time (ctime, to
 *    the nanosecond): MH tools do edit messages in place (anno) and reuse numbers, so
 *    each file is stat'ed (still no open, no read).
 * The whole index is bound to the directory's device and inode, carries a checksum of
 * itself, and every field is checked before use: an index that does not fit is ignored
 * (and rebuilt), never trusted.
 * It is also pop3d's record of the maildrop (version 2; a version 1 index is read and
 * migrated, its messages counted as adopted): each entry's listed id, its expiry
 * record and whether it was there when pop3d adopted the maildrop, found by its key
 * alone (maildir_index_find_key) when the file changed (an expiry mark written into it
 * gives it a new inode); and the ids retired (uidl.h).  An entry that describes no
 * file any more (inode 0; MH: ctime 0) keeps only that record.  It is a regular file owned by the user with one link,
 * mode 0600, written to a temporary file and renamed into place.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_MAILDIR_INDEX_H
#define POP3D_MAILDIR_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "uidl.h"
#include "util.h"

/* The index files: Maildir++ folders are dot directories and Dovecot keeps its own
 * files (dovecot-uidlist) at the top under plain names, so a plain name there is
 * nobody's folder; in an MH folder a dot file is not a message (.mh_sequences). */
#define MAILDIR_INDEX_NAME "pop3d-index"
#define MH_INDEX_NAME ".pop3d-index"

enum maildir_index_kind {
  MAILDIR_INDEX_MAILDIR = 1,
  MAILDIR_INDEX_MH = 2,
};

/* Entry flags. */
#define MAILDIR_INDEX_XUIDL 0x1u        /* id is the message's own X-UIDL */
#define MAILDIR_INDEX_LINES_EXACT 0x2u  /* lines counted (not derived from Dovecot's W=) */

/* What the scan of one message file found, and its key. */
struct maildir_index_entry {
  const char *key;          /* Maildir: base name; MH: the number in decimal */
  size_t key_len;
  uint64_t ino;
  uint64_t fsize;           /* the file's size (mailbox_msg.end) */
  uint64_t size;            /* octets by the size rule */
  int64_t ctime_sec, ctime_nsec;   /* MH: the file's ctime; Maildir: 0 */
  uint32_t lines;
  uint32_t flags;
  uint32_t expire_mark;     /* the trusted mark at the scan (mailbox_msg.expire_mark) */
  uint32_t future_mark;     /* the earliest mark not yet trusted for being in the
                             * future (0: none): the entry is stale once it is reached */
  const char *id;           /* Maildir: X-UIDL value; MH: the id; id_len 0: none */
  size_t id_len;
  /* The record (expire_mark above is the expiry record: pop3d's mark, or an adopted
   * message's trusted header mark): */
  const char *listed;       /* the id it was listed with, listed_len 0: not known */
  size_t listed_len;
  bool adopted;             /* there when pop3d adopted the maildrop: its marks count */
};

struct maildir_index;

/* Bytes of the image before its records (tests and fuzzing). */
#define MAILDIR_INDEX_HEADER_SIZE 88

/* Counters for the tests and the benchmark. */
struct maildir_index_stats {
  unsigned long loads;      /* indexes accepted */
  unsigned long rejects;    /* index files present but ignored */
  unsigned long hits;       /* message files not read thanks to the index */
  unsigned long scans;      /* message files read */
  unsigned long writes;     /* indexes written */
};
extern struct maildir_index_stats maildir_index_stats;

/* Parse an index image of the directory whose fstat is dir_st.  NULL when it does not
 * fit (any field out of bounds, wrong checksum, another directory, a scan time after
 * now).  The entries keep pointers into the index: free it after use. */
struct maildir_index *maildir_index_parse(const void *data, size_t len,
                                          enum maildir_index_kind kind,
                                          const struct stat *dir_st, int64_t now);

/* Read and parse the index file name of the directory dirfd (fstat dir_st): a regular
 * file, not a symbolic link, owned by the effective user, one link.  NULL when there is
 * none or it is not usable. */
struct maildir_index *maildir_index_load(int dirfd, const char *name,
                                         enum maildir_index_kind kind,
                                         const struct stat *dir_st, int64_t now);

/* The entry of (key, ino), when there is one that is still true at the load's now
 * (its future mark not reached).  The caller checks the rest of its key (MH).  Fastest
 * when called in the order the entries were added.  The entry counts as found. */
bool maildir_index_find(struct maildir_index *ix, const char *key, size_t key_len,
                        uint64_t ino, struct maildir_index_entry *e);
/* The record of a message whose file changed: the first entry of key not found yet
 * (whatever its inode), which then counts as found.  own (own_len bytes), unless NULL:
 * the entry's id or listed id must be it (MH numbers are reused). */
bool maildir_index_find_key(struct maildir_index *ix, const char *key, size_t key_len,
                            const char *own, size_t own_len, struct maildir_index_entry *e);
/* MH, a renumbered folder: the first entry not found yet whose id or listed id is
 * own (own_len bytes), whatever its number, which then counts as found. */
bool maildir_index_find_id(struct maildir_index *ix, const char *own, size_t own_len,
                           struct maildir_index_entry *e);
/* Was entry i found (maildir_index_find, _find_key or _find_id)? */
bool maildir_index_found(const struct maildir_index *ix, size_t i);
/* When pop3d adopted the maildrop; the ids retired (strings owned by ix). */
int64_t maildir_index_adopted(const struct maildir_index *ix);
const struct uidl_retired_list *maildir_index_retired(const struct maildir_index *ix);

size_t maildir_index_count(const struct maildir_index *ix);
/* Entry i in file order (tests and fuzzing), whatever its marks. */
bool maildir_index_entry_at(const struct maildir_index *ix, size_t i,
                            struct maildir_index_entry *e);
/* Set the checksum of an image to match its bytes (tests and fuzzing: the parser's
 * other checks are reached only past it). */
void maildir_index_seal(void *image, size_t len);
/* The bytes of its keys, one more each (a hint to size tables). */
size_t maildir_index_key_bytes(const struct maildir_index *ix);
void maildir_index_free(struct maildir_index *ix);

/* An index being built: entries in message order. */
struct maildir_index_builder {
  void *recs;
  size_t count, cap;
  char *arena;
  size_t arena_len, arena_cap;
  int64_t adopted;                  /* when pop3d adopted the maildrop */
  struct uidl_retired_list retired; /* since 0: left out; strings not copied */
};

void maildir_index_builder_init(struct maildir_index_builder *b);
/* Add an entry (its strings are copied).  false when it can't be indexed (a field out
 * of the index's bounds): the message is then simply read again next time. */
bool maildir_index_add(struct maildir_index_builder *b, const struct maildir_index_entry *e);
/* Set the record of entry i: its listed id (copied), whether it was adopted, its
 * expiry record.  false when it can't (out of bounds). */
bool maildir_index_set_record(struct maildir_index_builder *b, size_t i, const char *listed,
                              size_t listed_len, bool adopted, uint32_t mark);
/* The image of the index (malloc'd, *len_r bytes). */
void *maildir_index_image(const struct maildir_index_builder *b, enum maildir_index_kind kind,
                          const struct stat *dir_st, int64_t now, size_t *len_r);
/* Write the index atomically into dirfd under name (a temporary file renamed over it),
 * owned by the effective user, mode 0600.  Best effort: 0, or -1. */
int maildir_index_write(int dirfd, const char *name, const struct maildir_index_builder *b,
                        enum maildir_index_kind kind, const struct stat *dir_st,
                        int64_t now);
void maildir_index_builder_free(struct maildir_index_builder *b);

/* Before an UPDATE writes expiry marks into messages (MAILBOX_MSG_MARK): record
 * mb->mark_time in the index file name of dirfd for the entries of those messages that
 * have no record yet, so that the next open knows the marks as pop3d's.  key_of gives
 * message i's key (buf: room for an MH number).  A failure is logged: the marks are
 * then only in the messages. */
struct mailbox;
void maildir_index_record_marks(int dirfd, const char *name, enum maildir_index_kind kind,
                                const struct mailbox *mb,
                                const char *(*key_of)(const struct mailbox *mb, size_t i,
                                                      char buf[16], size_t *len_r));

/* What an open of a Maildir or MH folder does with the record (doc/pop3d.texi,
 * "Unique ids", "Auto-expire"): each message keeps the listed id and the expiry
 * record of its entry; a message without an entry is new, adopted only when the folder
 * had no index at all (a mark in later mail is a sender's: ignored, logged once); the
 * listed ids of entries no message took retire. */
struct maildir_index_ids {
  struct mailbox *keep;     /* its uids: NUL-terminated copies of the kept ids */
  uint32_t *keep_off;       /* per message: offset in keep->uids, or MAILBOX_UID_NONE */
  bool *adopted, *warn;
  size_t *bidx;             /* per message: its entry in the builder, or SIZE_MAX */
  struct uidl_retired_list retired;
  bool adopting;            /* no index: everything there now is adopted */
  bool changed;             /* the index must be written */
  int64_t now;
};
void maildir_index_ids_init(struct maildir_index_ids *d, size_t n,
                            const struct maildir_index *ix, int64_t now);
/* Message k (mb->count before it is added): prior its entry (found by find or
 * find_key) or NULL, hdr the mark its scan trusted (for a found entry the same as
 * prior's).  Returns its expiry record. */
uint32_t maildir_index_ids_msg(struct maildir_index_ids *d, size_t k,
                               const struct maildir_index_entry *prior, uint32_t hdr);
/* After every message: the ids (uidl_assign), the retired ones.  0, or -1 with
 * *error_r. */
int maildir_index_ids_assign(struct maildir_index_ids *d, struct mailbox *mb,
                             const struct maildir_index *ix, const char *what,
                             const char **error_r) WUR;
/* The records into the builder's entries (those of bidx), with the adoption and the
 * retired ids (which it then holds). */
void maildir_index_ids_records(struct maildir_index_ids *d, const struct mailbox *mb,
                               const struct maildir_index *ix,
                               struct maildir_index_builder *b);
void maildir_index_ids_free(struct maildir_index_ids *d);

/* The expiry marks of a scan as the index keeps them: the mark trusted now (as
 * mailbox_file_mark) and the earliest one that will be trusted later. */
struct mailbox_file_info;
void maildir_index_marks(const struct mailbox_file_info *fi, int64_t delivery, int64_t now,
                         uint32_t *expire_mark, uint32_t *future_mark);

#endif
