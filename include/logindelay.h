/* logindelay.h - RFC 2449 LOGIN-DELAY: a minimum time between two logins of a user.
 *
 * Each user's last login time lives in the login statistics database (stat-file,
 * numdb.h: key the user name, value decimal Unix seconds, Mailutils' format).  The
 * database is shared by all users and owned by root, so the check and the update run
 * while the session is still root, right after a valid password and before
 * privsep_drop().  A login within the delay is refused and not recorded (a client that
 * polls a little too often is not locked out for good); any other login is recorded in
 * the same locked step, so two concurrent logins can't both pass.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_LOGINDELAY_H
#define POP3D_LOGINDELAY_H

#include <stdbool.h>
#include <time.h>

struct conf;

enum logindelay_result {
  LOGINDELAY_OK,       /* in force, and this login is allowed (and recorded) */
  LOGINDELAY_REFUSE,   /* within the delay: -ERR [LOGIN-DELAY] */
  LOGINDELAY_OFF,      /* not configured, or the database is unusable (logged) */
};

/* The refusal text of Mailutils (with the LOGIN-DELAY response code). */
#define LOGINDELAY_REFUSAL "Attempt to log in within the minimum login delay interval"

/* Is a delay configured and can this build enforce it (GDBM)? */
bool logindelay_configured(const struct conf *c);

/* Check user's login at now against the database and record it.  When the database
 * can't be opened for reading and writing, logs "Unable to open statistics db: REASON"
 * and returns LOGINDELAY_OFF. */
enum logindelay_result logindelay_login(const struct conf *c, const char *user, time_t now);

#endif
