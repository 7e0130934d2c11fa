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
 * (and rebuilt), never trusted.  It is a regular file owned by the user with one link,
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
};

struct maildir_index;

/* Bytes of the image before its records (tests and fuzzing). */
#define MAILDIR_INDEX_HEADER_SIZE 72

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
 * when called in the order the entries were added. */
bool maildir_index_find(struct maildir_index *ix, const char *key, size_t key_len,
                        uint64_t ino, struct maildir_index_entry *e);

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
};

void maildir_index_builder_init(struct maildir_index_builder *b);
/* Add an entry (its strings are copied).  false when it can't be indexed (a field out
 * of the index's bounds): the message is then simply read again next time. */
bool maildir_index_add(struct maildir_index_builder *b, const struct maildir_index_entry *e);
/* The image of the index (malloc'd, *len_r bytes). */
void *maildir_index_image(const struct maildir_index_builder *b, enum maildir_index_kind kind,
                          const struct stat *dir_st, int64_t now, size_t *len_r);
/* Write the index atomically into dirfd under name (a temporary file renamed over it),
 * owned by the effective user, mode 0600.  Best effort: 0, or -1. */
int maildir_index_write(int dirfd, const char *name, const struct maildir_index_builder *b,
                        enum maildir_index_kind kind, const struct stat *dir_st,
                        int64_t now);
void maildir_index_builder_free(struct maildir_index_builder *b);

/* The expiry marks of a scan as the index keeps them: the mark trusted now (as
 * mailbox_file_mark) and the earliest one that will be trusted later. */
struct mailbox_file_info;
void maildir_index_marks(const struct mailbox_file_info *fi, int64_t delivery, int64_t now,
                         uint32_t *expire_mark, uint32_t *future_mark);

#endif
