/* dispatch.c - read -> look up -> check state -> run -> one reply, until QUIT, EOF,
 * timeout, abuse or a login's hand-over.  The only place that writes +OK / -ERR.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <string.h>

#include "commands.h"
#include "dispatch.h"
#include "log.h"
#include "proto.h"
#include "session.h"

static void transcript(const struct session *s, const struct command *cmd,
                       const char *line, size_t len)
{
  if (!s->transcript)
    return;
  if (cmd != NULL && (cmd->flags & CMD_SECRET))
    log_msg(LOG_DEBUG, "recv: %s ***", cmd->name);
  else
    log_msg(LOG_DEBUG, "recv: %.*s", (int)len, line);
}

/* Keep the maildrop lock fresh while the session waits. */
static void session_idle(void *arg)
{
  struct session *s = arg;

  if (s->mb_open && s->mb.ops->touch != NULL)
    s->mb.ops->touch(&s->mb);
}

/* Run one command line; returns false when the session is over. */
static bool run_line(struct session *s, char *line, size_t len)
{
  struct cmd_outcome o;
  const struct command *cmd, *other, *named;
  size_t nlen = strcspn(line, " ");
  char *arg = NULL;

  memset(&o, 0, sizeof o);
  cmd = commands_lookup(s->state, line, nlen);
  /* Another state's command gets RFC 1939's "-ERR" for the wrong state. */
  other = cmd == NULL ? commands_find(line, nlen) : NULL;
  named = cmd != NULL ? cmd : other;
  transcript(s, named, line, len);
  if (line[nlen] == ' ')
    arg = line + nlen + 1;

  if (other != NULL) {
    cmd_err(&o, NULL, "Incorrect state");
    o.bad = true;
  } else if (cmd == NULL) {
    cmd_err(&o, NULL, "Invalid command");
    o.bad = true;
  } else if (!session_command_offered(s, cmd)) {
    if (cmd->flags & CMD_STLS)
      cmd_err(&o, NULL, transport_is_tls(&s->t) ? "Command not permitted when TLS active"
                                                : "TLS not available");
    else
      cmd_err(&o, "AUTH", "Plaintext authentication requires TLS: use STLS first");
    o.bad = true;
  } else if ((cmd->flags & CMD_ARG_NONE) && arg != NULL) {
    cmd_err(&o, NULL, "Invalid arguments");
    o.bad = true;
  } else if ((cmd->flags & (CMD_ARG_REQ | CMD_ARG_REST)) && (arg == NULL || *arg == '\0')) {
    cmd_err(&o, NULL, "Invalid arguments");
    o.bad = true;
  } else {
    cmd->handler(s, arg, &o);
  }
  if (arg != NULL && named != NULL && (named->flags & CMD_SECRET))
    util_wipe(arg, strlen(arg));

  /* A login hands the client over: the session process gives the answer. */
  if (s->handoff)
    return false;
  proto_status(&s->t, o.status == CMD_OK, o.code, o.text);
  if (s->transcript)
    log_msg(LOG_DEBUG, "sent: %s%s%s%s %s", o.status == CMD_OK ? "+OK" : "-ERR",
            o.code ? " [" : "", o.code ? o.code : "", o.code ? "]" : "", o.text);
  if (o.status == CMD_OK && o.body != NULL)
    o.body(s, &o);

  if (o.bad) {
    if (++s->bad_commands >= PARAMS_BAD_COMMANDS_MAX) {
      proto_status(&s->t, false, NULL, "Too many bad commands, closing connection");
      log_msg(LOG_NOTICE, "closing the session of %s: too many bad commands", s->peer);
      s->end = SESSION_END_ABUSE;
      return false;
    }
  } else if (o.status == CMD_OK && s->state != SESSION_AUTHORIZATION) {
    /* Before login an answer that went well (CAPA, USER) forgives nothing: mixed with
     * bad commands it would keep a slot forever. */
    s->bad_commands = 0;
  }
  if (s->state == SESSION_AUTHORIZATION && !o.close &&
      ++s->preauth_commands >= PARAMS_PREAUTH_COMMANDS_MAX) {
    proto_status(&s->t, false, NULL, "Too many commands before login, closing connection");
    log_msg(LOG_NOTICE, "closing the session of %s: %u commands and no login", s->peer,
            s->preauth_commands);
    s->end = SESSION_END_ABUSE;
    return false;
  }
  if (s->t.status != TRANSPORT_OK && s->end == SESSION_END_NONE)
    s->end = s->t.status == TRANSPORT_TIMEOUT ? SESSION_END_TIMEOUT : SESSION_END_EOF;
  return !o.close && s->end == SESSION_END_NONE;
}

void dispatch_loop(struct session *s)
{
  char line[PARAMS_CMD_LINE_MAX + 1];

  s->t.idle = session_idle;
  s->t.idle_arg = s;
  for (;;) {
    size_t len = 0;
    enum proto_line r;

    /* Answer a whole batch of pipelined commands with as few writes as possible. */
    if (!proto_line_pending(&s->t)) {
      if (transport_flush(&s->t) != TRANSPORT_OK) {
        s->end = SESSION_END_EOF;
        return;
      }
      session_idle(s);
    }
    r = proto_read_line(&s->t, line, sizeof line, &len);
    switch (r) {
    case PROTO_LINE_OK:
      if (!run_line(s, line, len)) {
        util_wipe(line, sizeof line);
        return;
      }
      continue;
    case PROTO_LINE_TOOLONG:
      proto_status(&s->t, false, NULL, "Line too long");
      break;
    case PROTO_LINE_NUL:
      proto_status(&s->t, false, NULL, "Invalid command: NUL in line");
      break;
    case PROTO_LINE_EOF:
      s->end = SESSION_END_EOF;
      return;
    case PROTO_LINE_TIMEOUT:
      s->t.status = TRANSPORT_OK;   /* the write side may still work: say why */
      if (transport_past_deadline(&s->t)) {
        /* The login deadline: the last write gets a moment of its own. */
        s->t.hard_deadline = util_now_ms() + 1000;
        proto_status(&s->t, false, NULL, "Login timed out, closing connection");
        log_msg(LOG_NOTICE, "closing the session of %s: no login within %u s", s->peer,
                s->conf->login_timeout);
      } else {
        proto_status(&s->t, false, NULL, "Session timed out");
      }
      (void)transport_flush(&s->t);
      s->end = SESSION_END_TIMEOUT;
      return;
    case PROTO_LINE_ERROR:
      s->end = SESSION_END_ERROR;
      return;
    }
    if (++s->bad_commands >= PARAMS_BAD_COMMANDS_MAX) {
      proto_status(&s->t, false, NULL, "Too many bad commands, closing connection");
      s->end = SESSION_END_ABUSE;
      return;
    }
  }
}
