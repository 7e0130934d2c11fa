/* session.h - one POP3 session: everything a connection needs lives in struct session.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_SESSION_H
#define POP3D_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "auth.h"
#include "conf.h"
#include "mailbox.h"
#include "params.h"
#include "tls.h"
#include "transport.h"

struct command;

/* RFC 1939 states, as bits so the command table can allow several. */
enum session_state {
  SESSION_AUTHORIZATION = 1u << 0,
  SESSION_TRANSACTION = 1u << 1,
  SESSION_UPDATE = 1u << 2,
};

/* How a session ended (for the log and the exit code). */
enum session_end {
  SESSION_END_NONE,
  SESSION_END_QUIT,
  SESSION_END_EOF,
  SESSION_END_TIMEOUT,
  SESSION_END_ERROR,
  SESSION_END_ABUSE,      /* too many bad commands or failed logins */
};

struct session {
  const struct conf *conf;
  struct transport t;
  enum session_state state;
  enum session_end end;
  char stamp[128];                /* APOP greeting timestamp <pid.time.random@host> */
  bool apop;                      /* APOP offered (and the stamp announced) */
  char *user;                     /* from USER, until PASS */
  int monitor_fd;                 /* worker: its socket to the monitor; else -1 */
  bool handoff;                   /* worker: logged in, hand the client over */
  struct auth_user auth;
  bool authenticated;
  bool login_delay_on;            /* login-delay was enforced for this login */
  struct mailbox mb;
  bool mb_open;
  unsigned bad_commands;
  unsigned preauth_commands;      /* commands before login, whatever their answer */
  unsigned auth_failures;
  bool update_failed;             /* QUIT could not apply every deletion */
  const struct conf_server *srv;  /* server block, NULL in inetd mode */
  const char *peer;               /* client address for the log */
  const char *local;              /* server address for the log */
  bool transcript;
  struct tls_settings tls;        /* the TLS this session may use (tls.mode: which) */
  struct tls_creds *tls_creds;    /* NULL: TLS can't be started in this session */
  time_t started;
  /* Summary for the log. */
  size_t n_retrieved;
  uint64_t bytes_retrieved;
  size_t n_deleted;
};

/* Set up a session on rfd/wfd.  srv is the server block the connection came in on (its
 * timeout, transcript and TLS settings), or NULL in inetd mode (the global ones).  peer
 * and local name the two ends for the log. */
void session_init(struct session *s, const struct conf *c, const struct conf_server *srv,
                  int rfd, int wfd, const char *peer, const char *local);
/* Load what TLS needs (before the worker's chroot). */
void session_prepare_tls(struct session *s);
/* The worker's part: POP3S handshake, greeting, the AUTHORIZATION state until login
 * (s->handoff), QUIT, EOF, timeout or abuse. */
void session_authorization(struct session *s);
/* Log the end of the session; returns the process exit code (sysexits, as Mailutils: 0,
 * 70 software, 74 I/O, 75 timeout, 76 EOF in TRANSACTION). */
int session_finish(struct session *s);
void session_free(struct session *s);
/* The session process: wait on fd (from the monitor) for PS_SESSION, prepare bulletins,
 * become the user, open the maildrop, answer the login and run TRANSACTION and UPDATE.
 * Returns the exit code; 0 when the monitor closes fd without a login. */
int session_run_user(const struct conf *c, const struct conf_server *srv, int fd,
                     const char *peer, const char *local);
/* An APOP timestamp <pid.time.random@host> into buf. */
void session_make_stamp(char *buf, size_t cap);

/* Is cmd offered now as far as TLS goes?  STLS (CMD_STLS) only before TLS and only when
 * this session can start it; commands that carry credentials (CMD_CREDENTIALS) not
 * before TLS under tls-mode required.  The session loop refuses what this says no to,
 * and CAPA lists only what it says yes to. */
bool session_command_offered(const struct session *s, const struct command *cmd);

#endif
