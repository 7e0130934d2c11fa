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
#include <sys/stat.h>
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

/* ---- The intent record of an UPDATE (Maildir and MH) ----
 *
 * UPDATE removes the messages marked deleted all or none, whenever it is killed:
 *  1. it writes the list of the files it is going to remove into "<name>.new" beside
 *     the record's place, fsyncs it, renames it to <name> and fsyncs the directory:
 *     from then on the removal is decided;
 *  2. it unlinks the files, fsyncs their directories, then removes <name>.
 * Opening the maildrop (under its session lock) first completes a record it finds:
 * each file still there with the recorded inode is unlinked, again and again until it
 * succeeds (so it is idempotent), and removes a "<name>.new" (an UPDATE stopped before
 * its decision had removed nothing: that is the roll back).
 *
 * The record holds NUL-terminated lines: "pop3d-update 1", then "<sub> <inode> <file>"
 * for each file, then "end <count>".  For MH the <inode> field is
 * mailbox_file_mh_identity(): the number of a message removed before a kill is the next
 * delivery's, often in the very inode just freed.  <sub> is a word the backend gives the directory
 * of the file ("cur", "new", "msg"), <file> a plain name: not empty, at most
 * PARAMS_MAILDIR_NAME_MAX bytes, no '/', no leading '.'.  The record lies in a
 * directory its user can write to, so it is hostile input: a record that is not a
 * regular file of the user with one link, or that does not keep to this form in every
 * byte, is refused whole and removed. */
#define MAILBOX_FILE_INTENT_MAGIC "pop3d-update 1"
/* Its name: at the top of a Maildir (a plain name there is nobody's folder), and a dot
 * file of an MH folder (not a message). */
#define MAILBOX_FILE_INTENT_MAILDIR "pop3d-update"
#define MAILBOX_FILE_INTENT_MH ".pop3d-update"

struct mailbox_file_intent {
  int dirfd;                  /* where the record goes */
  const char *name;
  char *tmp;                  /* "<name>.new" */
  int fd;                     /* tmp being written, or -1 */
  uint64_t count;
  bool failed;                /* a write failed (reported by commit) */
  size_t len;
  char buf[8192];
};

/* The identity an MH record gives a message: its inode and its change time mixed, so
 * that a file linked later under a freed number, even into a reused inode, never
 * matches (link() sets the change time). */
uint64_t mailbox_file_mh_identity(const struct stat *st);

/* Start a record: creates "<name>.new" in dirfd (replacing a leftover).  0, or -1. */
int mailbox_file_intent_begin(struct mailbox_file_intent *w, int dirfd, const char *name) WUR;
/* Add a file (its name checked by the caller: it comes from readdir). */
void mailbox_file_intent_add(struct mailbox_file_intent *w, const char *sub, uint64_t ino,
                             const char *file);
/* Make the record durable under its name (step 1 above).  0, or -1 with *error_r and
 * nothing left behind. */
int mailbox_file_intent_commit(struct mailbox_file_intent *w, const char **error_r) WUR;
/* Drop a record begun but not committed. */
void mailbox_file_intent_abort(struct mailbox_file_intent *w);

/* One file of a record read back. */
struct mailbox_file_intent_rec {
  const char *sub;
  uint64_t ino;
  const char *file;
};

/* Read the record name of dirfd (which removes a "<name>.new" found there).  Each line
 * is checked by its form and by fn(arg, rec, true), which returns false for a sub or
 * file the backend does not know; only when all are good is each given to
 * fn(arg, rec, false) to act on.  0: no record; 1: every file given to fn (the caller
 * removes the record once it is done); -1 with *error_r: refused and removed, or (a
 * read error while acting) kept for the next open. */
int mailbox_file_intent_read(int dirfd, const char *name,
                             bool (*fn)(void *arg, const struct mailbox_file_intent_rec *r,
                                        bool check),
                             void *arg, const char **error_r);

/* Called after each step of an UPDATE and of its completion (crash tests kill the
 * process there); NULL in the daemon. */
extern void (*mailbox_file_step_hook)(void);
static inline void mailbox_file_step(void)
{
  if (mailbox_file_step_hook != NULL)
    mailbox_file_step_hook();
}

#endif
