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

struct mailbox_file_info {
  uint64_t size;              /* the size rule of mailbox.h with mboxrd off */
  uint64_t lines;
  size_t xuidl_len;           /* 0: no valid X-UIDL header */
  char xuidl[PARAMS_UIDL_MAX + 1];
  char hash_id[PARAMS_UIDL_MAX + 1];   /* derived from the header block and the size */
  bool header_done;           /* the header block ended within what was read */
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

/* MH: the new contents of .mh_sequences text[0..len) with the numbers del[0..ndel)
 * (sorted) out of every sequence and seen[0..nseen) out of `unseen'; lines that are not
 * "name: numbers and ranges" are kept as they are, a sequence left empty goes.  A
 * malloc'd buffer (*len_r bytes), or NULL when nothing changes. */
char *mailbox_mh_sequences_rewrite(const char *text, size_t len, const uint32_t *del,
                                   size_t ndel, const uint32_t *seen, size_t nseen,
                                   size_t *len_r);

#endif
