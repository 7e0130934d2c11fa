/* mbox_index.h - the on-disk index of an mbox maildrop, so that opening one that has not
 * changed (or only grew: new mail) does not read every message again.
 *
 * The index is a cache, never a source of truth: it is keyed by the maildrop's device,
 * inode, size and mtime (nanoseconds), carries a checksum of itself, and every field is
 * bounds-checked before use; anything that does not fit is ignored and rebuilt by the
 * next full scan.  It lives beside the maildrop as ".NAME.pop3d-index", mode 0600,
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
};

/* Counters for the tests: bytes read by the mbox scanner, index loads and writes. */
struct mbox_index_stats {
  uint64_t scanned_bytes;
  unsigned long hits, grew, misses, writes;
};
extern struct mbox_index_stats mbox_index_stats;

/* The index file of the maildrop at path (malloc'd), or NULL (path too long). */
char *mbox_index_path(const char *mbox_path);

/* Load the index at ipath for the maildrop open (and locked) on mbox_fd, whose fstat is
 * st.  On a hit or growth mb->msgs, mb->count, mb->uids (the ids before
 * mailbox_unique_uids), mb->total_size, *from_r (the From_ offsets, count entries) and
 * *info are set; mb must hold no messages.  now: the current time (expiry marks). */
enum mbox_index_result mbox_index_load(const char *ipath, int mbox_fd, const struct stat *st,
                                       struct mailbox *mb, off_t **from_r,
                                       struct mbox_index_info *info, int64_t now);

/* Write the index of the table mb (ids before mailbox_unique_uids) for the maildrop on
 * mbox_fd with fstat st, atomically (a temporary file renamed over the old index).
 * Best effort: -1 when it can't (there is then no index, or the old, stale one). */
int mbox_index_write(const char *ipath, int mbox_fd, const struct stat *st,
                     const struct mailbox *mb, const off_t *from,
                     const struct mbox_index_info *info);
/* Tests and fuzzing: make an index image (len bytes) fit the maildrop on mbox_fd, whose
 * fstat is st, so that the loader's other checks are reached: its device and inode, its
 * size and mtime (when its scanned_end is st's size; when it is less, its size and tail
 * hash as if the maildrop grew since), and its checksum.  0, or -1 (shorter than a
 * header, or the maildrop can't be read). */
int mbox_index_seal(void *image, size_t len, int mbox_fd, const struct stat *st);

#endif
