/* commands.c - the command table and CAPA.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "login.h"
#include "proto.h"
#include "session.h"

#define AUTH SESSION_AUTHORIZATION
#define TRANS SESSION_TRANSACTION

/* The tables of the states, beside their handlers (cmd_auth.c, cmd_trans.c). */
static const struct command *table_of(enum session_state st)
{
  switch (st) {
  case SESSION_AUTHORIZATION:
    return cmd_auth_table;
  case SESSION_TRANSACTION:
    return cmd_trans_table;
  default:
    return NULL;      /* UPDATE reads no command */
  }
}

const struct command *commands_lookup(enum session_state st, const char *name, size_t len)
{
  const struct command *t = table_of(st);

  for (; t != NULL && t->name != NULL; t++)
    if (strlen(t->name) == len && util_strncasecmp(t->name, name, len) == 0)
      return t;
  return NULL;
}

const struct command *commands_find(const char *name, size_t len)
{
  const struct command *c = commands_lookup(AUTH, name, len);

  return c != NULL ? c : commands_lookup(TRANS, name, len);
}

/* Capabilities and the commands that bring them: a capability is listed only in the
 * states where its command is offered in this session (TOP and UIDL are announced before
 * login too, since they will be offered after it, as RFC 2449's examples do). */
static const struct capa {
  const char *name;          /* capability line */
  const char *command;       /* listed when this command exists in the table */
  unsigned states;
} capas[] = {
  { "TOP", "TOP", AUTH | TRANS },
  { "UIDL", "UIDL", AUTH | TRANS },
  { "USER", "USER", AUTH },
  { "STLS", "STLS", AUTH },
  { "RESP-CODES", NULL, AUTH | TRANS },
  { "AUTH-RESP-CODE", NULL, AUTH | TRANS },
  { "PIPELINING", NULL, AUTH | TRANS },
};

void commands_capa(struct session *s, const struct cmd_outcome *o)
{
  const struct conf *c = s->conf;

  for (size_t i = 0; i < sizeof capas / sizeof capas[0]; i++) {
    if (!(capas[i].states & s->state))
      continue;
    if (capas[i].command) {
      /* Announced before login for what the next state offers (TOP, UIDL). */
      const struct command *cmd = commands_find(capas[i].command, strlen(capas[i].command));
      if (cmd == NULL || !session_command_offered(s, cmd))
        continue;
    }
    proto_ml_line(&s->t, capas[i].name, strlen(capas[i].name));
  }
  if (s->state == SESSION_AUTHORIZATION) {
    const struct command *auth = commands_lookup(AUTH, "AUTH", 4);
    char mechs[64];

    if (auth != NULL && session_command_offered(s, auth) &&
        login_sasl_mechs(s, mechs, sizeof mechs) > 0)
      proto_ml_printf(&s->t, "SASL %s", mechs);
  }
  if (c->scan_lines)
    proto_ml_printf(&s->t, "XLINES");
#ifdef HAVE_GDBM
  /* Before login the delay that will apply; after it only if it did (a statistics db
   * that can't be opened turns it off, see logindelay.h). */
  if (c->login_delay > 0 && (s->state == SESSION_AUTHORIZATION || s->login_delay_on))
    proto_ml_printf(&s->t, "LOGIN-DELAY %u", c->login_delay);
#endif
  if (c->expire < 0)
    proto_ml_printf(&s->t, "EXPIRE NEVER");
  else
    proto_ml_printf(&s->t, "EXPIRE %ld", c->expire);
  proto_ml_printf(&s->t, "IMPLEMENTATION %s", PACKAGE_NAME);
  proto_ml_end(&s->t);
}

void cmd_err(struct cmd_outcome *o, const char *code, const char *fmt, ...)
{
  va_list ap;

  o->status = CMD_ERR;
  o->code = code;
  va_start(ap, fmt);
  vsnprintf(o->text, sizeof o->text, fmt, ap);
  va_end(ap);
}

void cmd_ok(struct cmd_outcome *o, const char *fmt, ...)
{
  va_list ap;

  o->status = CMD_OK;
  va_start(ap, fmt);
  vsnprintf(o->text, sizeof o->text, fmt, ap);
  va_end(ap);
}

void cmd_capa(struct session *s, char *arg, struct cmd_outcome *o)
{
  cmd_ok(o, "Capability list follows");
  o->body = commands_capa;
}
