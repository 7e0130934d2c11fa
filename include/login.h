/* login.h - what every way of logging in shares: the step after a successful
 * authentication, the answer to a failed one, and the defence against guessing.
 *
 * A failed login (USER/PASS, APOP, AUTH) is logged with the client's address in one
 * stable line ("authentication failed for USER from ADDR: REASON", for fail2ban), costs
 * the session a delay that doubles with each failure, and after PARAMS_AUTH_FAILURES_MAX
 * failures ends the session.  Unknown users and wrong passwords get the same answer
 * after the same work.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_LOGIN_H
#define POP3D_LOGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"

struct session;
struct cmd_outcome;

/* The delay before the answer to the failures'th failed login of a session:
 * 0 for none, then 1, 2, 4 seconds, never more than LOGIN_FAILURE_DELAY_MAX. */
#define LOGIN_FAILURE_DELAY_MAX 4
unsigned login_failure_delay(unsigned failures);

/* After a successful authentication: s->auth holds the authorized user (name, uid,
 * gid, home, mailbox).  Does what a successful PASS does next (marks the session
 * authenticated, applies login-delay, opens the maildrop, replies). */
void session_login_ok(struct session *s, struct cmd_outcome *o);

/* After a failed one: log "authentication failed for USER from ADDR: MECH: REASON"
 * (USER is "-" when not a valid name), count the failure, wait login_failure_delay(),
 * fill o with "[AUTH] Bad login" (AUTH_FAIL) or "[SYS/TEMP]" / "[SYS/PERM] Cannot
 * authenticate", and end the session after PARAMS_AUTH_FAILURES_MAX failures. */
void login_failed(struct session *s, struct cmd_outcome *o, const char *mech,
                  const char *user, enum auth_status st, const char *reason);

/* May plain-text passwords (USER/PASS, AUTH PLAIN, AUTH LOGIN) be used in this session
 * now?  Not before TLS when the session's tls-mode is `required'. */
bool login_plaintext_ok(const struct session *s);

/* The SASL mechanisms this session offers now, space-separated into buf (for CAPA's
 * "SASL ..." line and AUTH without an argument).  Returns the length, 0 when none. */
size_t login_sasl_mechs(const struct session *s, char *buf, size_t cap);

/* Handlers (cmd_apop.c) for the command table: APOP name digest; AUTH [mechanism
 * [initial-response]]. */
void cmd_apop(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_auth_sasl(struct session *s, char *arg, struct cmd_outcome *o);

#endif
