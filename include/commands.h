/* commands.h - the command tables, one per state: {name, handler, flags}.  CAPA is
 * derived from them.  Handlers return an outcome; only the session loop writes +OK / -ERR.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_COMMANDS_H
#define POP3D_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

struct session;

enum cmd_status {
  CMD_OK,          /* +OK text, then body() if set */
  CMD_ERR,         /* -ERR [code] text */
};

struct cmd_outcome {
  enum cmd_status status;
  const char *code;            /* RFC 2449/3206 response code, or NULL */
  char text[160];
  /* Multi-line body written after the +OK line (LIST, UIDL, CAPA, RETR, TOP). */
  void (*body)(struct session *s, const struct cmd_outcome *o);
  size_t index;                /* message index for body() */
  long long lines;             /* TOP line count for body() */
  bool close;                  /* end the session after this reply */
  bool bad;                    /* counts as a bad command */
};

/* Command flags. */
#define CMD_ARG_NONE    0x01u  /* takes no argument */
#define CMD_ARG_REQ     0x02u  /* needs an argument */
#define CMD_ARG_REST    0x04u  /* the argument is the rest of the line (PASS) */
#define CMD_SECRET      0x08u  /* the argument is a secret: never logged */
#define CMD_CREDENTIALS 0x10u  /* carries credentials: refused before TLS under
                                  tls-mode required (USER, PASS, APOP, AUTH) */
#define CMD_STLS        0x20u  /* offered only while TLS can still be started */

struct command {
  const char *name;
  void (*handler)(struct session *s, char *arg, struct cmd_outcome *o);
  unsigned flags;
};

/* The command table of each state, beside its handlers, ended by a NULL name. */
extern const struct command cmd_auth_table[];    /* cmd_auth.c: AUTHORIZATION */
extern const struct command cmd_trans_table[];   /* cmd_trans.c: TRANSACTION */

/* Look up a command by name (case-insensitive) in the table of state st (an enum
 * session_state), or in any state's (commands_find).  NULL if unknown. */
enum session_state;
const struct command *commands_lookup(enum session_state st, const char *name, size_t len);
const struct command *commands_find(const char *name, size_t len);

/* CAPA for the current state: the capability lines, derived from the command table and
 * the configuration. */
void commands_capa(struct session *s, const struct cmd_outcome *o);

/* Handlers (cmd_auth.c, cmd_trans.c). */
void cmd_user(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_pass(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_quit(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_capa(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_stat(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_list(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_retr(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_dele(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_noop(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_rset(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_top(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_uidl(struct session *s, char *arg, struct cmd_outcome *o);
void cmd_stls(struct session *s, char *arg, struct cmd_outcome *o);   /* session.c */

/* Fill o as an error / success with a formatted text. */
void cmd_err(struct cmd_outcome *o, const char *code, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
void cmd_ok(struct cmd_outcome *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
