/* bulletin.h - bulletins: announcements appended to every user's maildrop at login.
 *
 * bulletin-source names a mailbox (mbox) of announcements; bulletin N is its Nth
 * message.  Each user's last bulletin number is kept in bulletin-db (numdb.h, Mailutils'
 * format) or, without a db, in ~/.popbull (a decimal number and a newline); when both
 * exist the db wins.  A user without a number has received none yet.
 *
 * Privileges: the source and the db are shared and usually root's, so both are opened
 * (and the db checked by reading the user's number) while the session is still root;
 * the number is read again once the maildrop is locked (another session of the user
 * may have delivered meanwhile), then the maildrop is written and the number recorded
 * through the descriptors opened before, all after privsep_drop() and before the
 * session reads another command.  ~/.popbull is read and written as the user.
 *
 * Never half, at most once: the maildrop is rewritten with the bulletins at its end and
 * renamed into place (mailbox_ops.append), then the number is recorded.  A crash between
 * the two leaves the bulletins at the end of the maildrop; the next login sees them
 * there and does not append them again (unless other mail arrived after them).
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

struct bulletin {
  bool on;             /* a usable source, and a way to know the user's number */
  int src_fd;          /* the source mbox, opened while root */
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
