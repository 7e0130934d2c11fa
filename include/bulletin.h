/* bulletin.h - bulletins: announcements appended to every user's maildrop at login.
 *
 * bulletin-source names a mailbox of announcements (an mbox file, a Maildir or an MH
 * folder); bulletin N is its Nth message in the order the mailbox backend lists them
 * (mbox: file order; Maildir: delivery time; MH: message number), as in Mailutils.
 * Each user's last bulletin number is kept in bulletin-db (numdb.h, Mailutils' format)
 * or, without a db, in ~/.popbull (a decimal number and a newline); when both exist the
 * db wins.  A user without a number has received none yet.
 *
 * The maildrop's append operation takes whole mbox messages (From_ line included, with
 * mboxrd ">From " quoting) of one file.  An mbox source is that file; the bulletins of
 * a Maildir or MH source are first copied into an unlinked temporary file in that form
 * (a From_ line dated by the message file's mtime, so that the same bulletin gives the
 * same bytes at every login and a crashed delivery is recognised), so that every
 * maildrop format receives exactly the bytes of the source message.
 *
 * Privileges: the source and the db are shared and usually root's, so both are opened
 * (and the db checked by reading the user's number) while the session is still root;
 * with a db, the pending bulletins of a Maildir or MH source are copied then too (a
 * ~/.popbull is only read as the user, so without a db the copy is made after the
 * switch, and the source's files must then be readable by the user, as in Mailutils);
 * the number is read again once the maildrop is locked (another session of the user
 * may have delivered meanwhile), then the maildrop is written and the number recorded
 * through the descriptors opened before, all after privsep_drop() and before the
 * session reads another command.  ~/.popbull is read and written as the user.
 *
 * Never half, at most once: mailbox_ops.append adds the bulletins whole (an mbox is
 * rewritten with them at its end and renamed into place; a Maildir or MH folder gets a
 * file each, written and synced before it is renamed or linked in), then the number is
 * recorded.  A crash between the two is recognised at the next login (an mbox finds
 * them at its end unless other mail arrived after them; a Maildir or MH folder by
 * their content tag) and they are not appended again.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_BULLETIN_H
#define POP3D_BULLETIN_H

#include <stdbool.h>
#include <stdint.h>

#include "numdb.h"

struct conf;
struct auth_user;
struct mailbox;
struct mailbox_range;

struct bulletin {
  bool on;             /* a usable source, and a way to know the user's number */
  int src_fd;          /* the source mbox, opened while root */
  struct mailbox *dir; /* or the Maildir / MH source, opened while root (else NULL) */
  int copy_fd;         /* bulletins of dir in mbox form (unlinked file), or -1 */
  struct mailbox_range *copy_r;   /* their blocks in copy_fd */
  size_t copy_n;
  uint64_t copy_first; /* the number of the bulletin copy_r[0] is (or would be) */
  bool copy_to_end;    /* the copy goes up to the last message of dir */
  struct numdb db;     /* bulletin-db, opened while root (fd -1: use ~/.popbull) */
  uint64_t last;       /* the user's last bulletin (from the db) */
};

/* As root, before privsep_drop(): open the source and the db and read the user's
 * number.  Problems are logged and turn bulletins off for this login. */
void bulletin_prepare(struct bulletin *b, const struct conf *c, const char *user);

/* As the user, with the maildrop mb open: append the pending bulletins and record the
 * number.  Returns true when the maildrop was changed (the caller reopens it). */
bool bulletin_deliver(struct bulletin *b, const struct conf *c, const struct auth_user *u,
                      struct mailbox *mb);

/* Close what bulletin_prepare() opened. */
void bulletin_free(struct bulletin *b);

#endif
