/* mailbox_file.h - what the one-file-per-message backends (maildir, MH) share: the scan
 * of one message file (size rule, lines, X-UIDL, header hash) and directory locking.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_MAILBOX_FILE_H
#define POP3D_MAILBOX_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "params.h"
#include "util.h"

struct conf;

#define MAILBOX_FILE_MARKS_MAX 4

struct mailbox_file_info {
  uint64_t size;              /* the size rule of mailbox.h with mboxrd off */
  uint64_t lines;
  size_t xuidl_len;           /* 0: no valid X-UIDL header */
  char xuidl[PARAMS_UIDL_MAX + 1];
  char hash_id[PARAMS_UIDL_MAX + 1];   /* derived from the header block and the size */
  bool header_done;           /* the header block ended within what was read */
  size_t nmarks;              /* X-Expire-Timestamp values of the header (the first few) */
  int64_t marks[MAILBOX_FILE_MARKS_MAX];
};

/* Scan the first len bytes of fd (from offset 0).  With header_only, stop once the header
 * block is over (size and lines are then those of the part read).  0, or -1 with
 * *error_r when the file is shorter than len or can't be read. */
int mailbox_file_scan(int fd, off_t len, bool header_only, struct mailbox_file_info *fi,
                      const char **error_r) WUR;

/* The same over a buffer (unit tests and fuzzing); never fails. */
void mailbox_file_scan_buffer(const char *data, size_t len, struct mailbox_file_info *fi);

/* Take the session lock of a maildrop directory open on dirfd (flock, exclusive, not
 * waiting beyond c's retry policy).  0, 1 when another session holds it, -1 on error.
 * The lock lasts while dirfd is open.  The `null' locking type takes no lock. */
int mailbox_file_lock_dir(int dirfd, const struct conf *c) WUR;

/* Open a directory of a maildrop as its owner: no symlink, a directory, owned by the
 * effective user.  Returns the fd or -1 with *error_r and *status_r (a mailbox_status). */
int mailbox_file_open_dir(int at, const char *path, int *status_r, const char **error_r);

/* fsync a directory, ignoring file systems that can't. */
int mailbox_file_sync_dir(int dirfd);

/* The earliest of fi's marks that expire_mark_trusted() accepts for a message delivered
 * at delivery, as a mailbox_msg.expire_mark (0: none). */
uint32_t mailbox_file_mark(const struct mailbox_file_info *fi, int64_t delivery,
                           int64_t now);

/* Write to out_fd a copy of the len bytes of in_fd with ins[0..ilen) added at the end of
 * the header (before its blank line, or at the end of a message without body, after an
 * added line end), in the header's line-end style (*crlf_r set before ins is needed:
 * ins is built by the caller through mkins).  The copy gets in_fd's times (its mtime
 * is the delivery time of MH messages) and is fsynced.  0, or -1 with *error_r. */
int mailbox_file_copy_with(int in_fd, off_t len, int out_fd,
                           size_t (*mkins)(void *arg, const char *eol, char *buf,
                                           size_t cap),
                           void *arg, const char **error_r) WUR;

/* Write to out_fd the message of the mbox block r of src (its From_ line left out, one
 * '>' taken from ^>+From_ lines, as an mboxrd reader does) and fsync it.  tag gets 16
 * hex digits derived from the whole block, the same for the same bulletin each time:
 * the one-file-per-message backends put it into the file name, so that bulletins
 * already delivered by a session that stopped before recording them are recognised.
 * 0, or -1 with *error_r. */
struct mailbox_range;
int mailbox_file_write_block(int src, const struct mailbox_range *r, int out_fd,
                             char tag[17], const char **error_r) WUR;

/* MH: the new contents of .mh_sequences text[0..len) with the numbers del[0..ndel)
 * (sorted) out of every sequence and seen[0..nseen) out of `unseen'; lines that are not
 * "name: numbers and ranges" are kept as they are, a sequence left empty goes.  A
 * malloc'd buffer (*len_r bytes), or NULL when nothing changes. */
char *mailbox_mh_sequences_rewrite(const char *text, size_t len, const uint32_t *del,
                                   size_t ndel, const uint32_t *seen, size_t nseen,
                                   size_t *len_r);

#endif
