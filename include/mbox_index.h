/* mbox_index.h - the on-disk index of an mbox maildrop, so that opening one that has not
 * changed (or only grew: new mail) does not read every message again.
 *
 * As a cache of the scan it is never a source of truth: that part is keyed by the
 * maildrop's device, inode, size and mtime (nanoseconds), carries a checksum of itself,
 * and every field is bounds-checked before use; anything that does not fit is ignored
 * and rebuilt by the next full scan.  It is also pop3d's record of the maildrop, kept
 * when the cache no longer fits (the maildrop was rewritten): the id each message was
 * listed with, the ids retired, which messages were there when pop3d adopted the
 * maildrop, and the expiry marks (mbox_index_prior).  Losing it loses that record
 * (doc/pop3d.texi, "Unique ids", says what is derived again).  It lives beside the maildrop as ".NAME.pop3d-index", mode 0600,
 * owned by the maildrop's user; where that can't be written there is no index.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_MBOX_INDEX_H
#define POP3D_MBOX_INDEX_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "mailbox.h"
#include "uidl.h"

#define MBOX_INDEX_SUFFIX ".pop3d-index"
/* The temporary file of an index written under the maildrop's lock, after its name. */
#define MBOX_INDEX_TEMP ".00000000"
/* The bytes before the scanned end whose hash proves the old part unchanged when the
 * maildrop grew (the last message is scanned again in any case). */
#define MBOX_INDEX_TAIL 4096

enum mbox_index_result {
  MBOX_INDEX_MISS = 0,   /* no usable index: scan the whole maildrop */
  MBOX_INDEX_HIT,        /* the table is loaded, the maildrop is as indexed */
  MBOX_INDEX_GREW,       /* the table is loaded, bytes were appended after scanned_end */
};

/* What the index holds besides the message table. */
struct mbox_index_info {
  off_t scanned_end;     /* bytes the indexed scan covered */
  uint32_t future_mark;  /* earliest X-Expire-Timestamp ignored for being in the future
                          * at the scan (0: none); once reached the index is stale */
  struct uidl_mbox_chain chain_last;  /* Dovecot's UID chain before the last message */
  int64_t adopted;       /* when pop3d adopted the maildrop (mbox_index_prior) */
  bool unlocked;         /* written without the maildrop's lock (mbox_index_write) */
};

/* What the index keeps of each message besides its mailbox_msg (whose uid is then its
 * listed id): its record for the ids and the expiry (doc/pop3d.texi, "Unique ids",
 * "Auto-expire"). */
#define MBOX_INDEX_ADOPTED 0x1u  /* present when pop3d adopted the maildrop: the
                                  * X-Expire-Timestamp marks in it count (Mailutils') */
#define MBOX_INDEX_GOING   0x2u  /* deleted by an UPDATE: its id retires once it is gone */
struct mbox_index_msg {
  uint32_t own;          /* offset in mailbox.uids of the id the message gives itself */
  uint32_t flags;        /* MBOX_INDEX_* */
  uint32_t mark;         /* pop3d's expiry record: when it was first retrieved (or an
                          * adopted message's Mailutils mark), 0: none */
  uint64_t disc;         /* uidl_hash_value of its From_ line and header */
};

/* Everything a readable index remembers, whether or not it still fits the maildrop:
 * how the maildrop's messages were listed, the retired ids, the adoption.  Version 2
 * indexes (before ids and marks were pop3d's own record) are read as adopted: every
 * message they list keeps its marks, and its id as mailbox_unique_uids gave it. */
struct mbox_index_prior {
  bool found;            /* an index was read (false: none, or not usable: adopt now) */
  int64_t adopted;       /* when pop3d adopted the maildrop */
  size_t count;
  struct uidl_prior *rec;   /* strings in arena */
  uint32_t *flags, *mark;   /* per record */
  struct uidl_retired_list retired;
  char *arena;
};
void mbox_index_prior_free(struct mbox_index_prior *p);

/* Counters for the tests: bytes read by the mbox scanner, index loads and writes. */
struct mbox_index_stats {
  uint64_t scanned_bytes;
  unsigned long hits, grew, misses, writes;
};
extern struct mbox_index_stats mbox_index_stats;

/* The index file of the maildrop at path (malloc'd), or NULL (path too long). */
char *mbox_index_path(const char *mbox_path);

/* Load the index at ipath for the maildrop open (and locked) on mbox_fd, whose fstat is
 * st.  On a hit or growth mb->msgs, mb->count, mb->uids (each message's uid its own id),
 * mb->total_size, *from_r and *xm_r (count entries each) and *info are set; mb must hold
 * no messages.  *prior is filled whenever the index is readable (a hit or growth: its
 * records are those of the table).  now: the current time (expiry marks). */
enum mbox_index_result mbox_index_load(const char *ipath, int mbox_fd, const struct stat *st,
                                       struct mailbox *mb, off_t **from_r,
                                       struct mbox_index_msg **xm_r,
                                       struct mbox_index_info *info,
                                       struct mbox_index_prior *prior, int64_t now);

/* Write the index of the table mb (each uid its listed id; xm the rest) for the
 * maildrop on mbox_fd with fstat st, atomically (a temporary file renamed over the old
 * index), with the retired ids ret[0..nret) whose since is not 0.  st NULL: the table
 * does not describe the file any more (an UPDATE is about to replace it): only what is
 * remembered is kept, the next open scans.  Best effort: -1 when it can't (there is
 * then no index, or the old one). */
int mbox_index_write(const char *ipath, int mbox_fd, const struct stat *st,
                     const struct mailbox *mb, const off_t *from,
                     const struct mbox_index_msg *xm, const struct mbox_index_info *info,
                     const struct uidl_retired *ret, size_t nret);
/* Remove the temporary file a session killed while it wrote the index left (under
 * the maildrop's lock: no live session is writing it). */
void mbox_index_clean(const char *ipath);
/* Tests and fuzzing: make an index image (len bytes) fit the maildrop on mbox_fd, whose
 * fstat is st, so that the loader's other checks are reached: its device and inode, its
 * size and mtime (when its scanned_end is st's size; when it is less, its size and tail
 * hash as if the maildrop grew since), and its checksum.  0, or -1 (shorter than a
 * header, or the maildrop can't be read). */
int mbox_index_seal(void *image, size_t len, int mbox_fd, const struct stat *st);

#endif
