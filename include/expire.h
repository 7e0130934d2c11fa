/* expire.h - RFC 2449 EXPIRE: X-Expire-Timestamp marks and the expiry of retrieved mail.
 *
 * RETR and TOP flag a message (MAILBOX_MSG_RETRIEVED).  At QUIT, with `expire N`, each
 * retrieved message without a mark gets "X-Expire-Timestamp: <now>" added to its header
 * (MAILBOX_MSG_MARK, written by the backend's UPDATE); a message keeps its first mark.
 * With `delete-expired yes` (implied by `expire 0`), messages whose mark is N days old
 * are deleted at QUIT.  A session that ends without QUIT changes nothing.
 *
 * Marks are pop3d's own record: the maildrop's index keeps, per message (by its stable
 * id), the time pop3d marked it; the header pop3d adds too is for Mailutils, never read
 * back as the record.  A mark found in a message counts only when the message was in
 * the maildrop when pop3d adopted it (its first open without any index: Mailutils
 * marked it then, or a version of pop3d before the record); a mark in mail that came
 * later is a sender's: ignored (logged once), the message is marked when retrieved.
 * Even an adopted message's mark must be the store's: not older than the message's
 * delivery (the date of its From_ line, written by the MDA) and not in the future, so
 * "X-Expire-Timestamp: 0" never counts.  Of several trusted marks the earliest counts.
 * A message whose delivery time is unknown (no From_ line, or a date that can't be
 * read) never has a trusted mark, so it never expires: doubt keeps mail.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_EXPIRE_H
#define POP3D_EXPIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct conf;
struct mailbox;

#define EXPIRE_HEADER "X-Expire-Timestamp"

/* The delivery time in an mbox From_ line "From SENDER DATE" (the whole line, with or
 * without its LF).  DATE is read from the end of the line, so an envelope sender with
 * spaces can't stand in for it: "Www Mmm dd hh:mm[:ss] [ZONE] yyyy [+hhmm]", local
 * time unless a numeric offset is given.  true and *t_r, or false. */
bool expire_from_line_time(const char *line, size_t len, int64_t *t_r);

/* The value of an X-Expire-Timestamp header (after the colon): decimal Unix seconds,
 * blanks around it allowed.  true and *t_r, or false. */
bool expire_parse_mark(const char *v, size_t len, int64_t *t_r);

/* Is mark the store's own: delivery known, delivery <= mark <= now? */
bool expire_mark_trusted(int64_t mark, int64_t delivery, int64_t now);

/* Say once that the mark of message id of the maildrop what is ignored: it came after
 * pop3d adopted the maildrop (doc/pop3d.texi, "Auto-expire"). */
void expire_log_ignored(const char *what, const char *id);

/* Are expired messages deleted at QUIT (delete-expired, or expire 0)? */
bool expire_delete_on(const struct conf *c);

/* At QUIT, before the backend's update: flag MAILBOX_MSG_MARK on retrieved messages
 * without a mark (mb->mark_time = now) and MAILBOX_MSG_DELETED on expired ones.
 * Returns the number of messages deleted because they expired. */
size_t expire_prepare_update(struct mailbox *mb, const struct conf *c, time_t now);

#endif
