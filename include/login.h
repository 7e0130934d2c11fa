/* login.h - what every way of logging in shares, on the worker's side: the monitor
 * checks every credential (monitor.h); the worker asks and turns the answer into the
 * reply.
 *
 * A failed login (USER/PASS, APOP, AUTH) is logged by the monitor with the client's
 * address in one stable line ("authentication failed for USER from ADDR: REASON", for
 * fail2ban), costs the session a delay that doubles with each failure, and after
 * PARAMS_AUTH_FAILURES_MAX failures ends the session.  Unknown users and wrong passwords
 * get the same answer after the same work.  A login that succeeds is not answered here:
 * the worker hands the client over (s->handoff) and the session process answers once
 * the maildrop is open.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_LOGIN_H
#define POP3D_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

struct session;
struct cmd_outcome;
struct sasl;

/* The delay before the answer to the failures'th failed login of a session:
 * 0 for none, then 1, 2, 4 seconds, never more than LOGIN_FAILURE_DELAY_MAX. */
#define LOGIN_FAILURE_DELAY_MAX 4
unsigned login_failure_delay(unsigned failures);

/* May plain-text passwords (USER/PASS, AUTH PLAIN, AUTH LOGIN) be used in this session
 * now?  Not before TLS when the session's tls-mode is `required'. */
bool login_plaintext_ok(const struct session *s);

/* The SASL mechanisms this session offers now, space-separated into buf (for CAPA's
 * "SASL ..." line and AUTH without an argument).  Returns the length, 0 when none. */
size_t login_sasl_mechs(const struct session *s, char *buf, size_t cap);

/* Ask the monitor: a password (mech PASS, PLAIN or LOGIN); a digest (type PS_APOP
 * against the greeting's stamp, PS_CRAM against the challenge of
 * login_cram_challenge()).  o gets the refusal, or s->handoff is set. */
void login_password(struct session *s, struct cmd_outcome *o, const char *mech,
                    const char *user, const char *password);
void login_digest(struct session *s, struct cmd_outcome *o, uint32_t type, const char *user,
                  const char *digest);
/* A CRAM-MD5 challenge from the monitor into buf.  0, or -1 with o filled. */
int login_cram_challenge(struct session *s, struct cmd_outcome *o, char *buf, size_t cap);
/* SCRAM-SHA-256: the salt, nonce and rounds from the monitor into x (after
 * sasl_start()); the proof checked by the monitor (true: out gets the
 * server-final-message); the login once the client took it.  -1/false: o filled. */
int login_scram_params(struct session *s, struct cmd_outcome *o, struct sasl *x);
bool login_scram_verify(struct session *s, struct cmd_outcome *o, struct sasl *x, char *out,
                        size_t cap);
void login_scram_done(struct session *s, struct cmd_outcome *o);

/* Handlers for the command table: APOP name digest (cmd_auth.c); AUTH [mechanism
 * [initial-response]] (cmd_sasl.c). */
void cmd_apop(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_auth_sasl(struct session *s, char *arg, struct cmd_outcome *o);

#endif
