/* session.c - greeting, then read -> look up -> check state -> run -> reply, until QUIT,
 * EOF, timeout or abuse.  The only place that writes +OK / -ERR.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "apop.h"
#include "commands.h"
#include "log.h"
#include "proto.h"
#include "session.h"

static void make_stamp(struct session *s)
{
  unsigned char rnd[8];
  char host[256];
  char hex[sizeof rnd * 2 + 1];

  if (util_random(rnd, sizeof rnd) < 0)
    memset(rnd, 0, sizeof rnd);   /* the stamp is only unique then, not unpredictable */
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  if (gethostname(host, sizeof host) < 0 || host[0] == '\0')
    strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  snprintf(s->stamp, sizeof s->stamp, "<%ld.%lld.%s@%.60s>", (long)getpid(),
           (long long)time(NULL), hex, host);
}

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

static const char *end_name(enum session_end e)
{
  switch (e) {
  case SESSION_END_QUIT: return "QUIT";
  case SESSION_END_EOF: return "EOF";
  case SESSION_END_TIMEOUT: return "timeout";
  case SESSION_END_ABUSE: return "too many errors";
  case SESSION_END_ERROR: return "error";
  default: return "unknown";
  }
}

/* Keep the maildrop lock fresh while the session waits. */
static void session_idle(void *arg)
{
  struct session *s = arg;

  if (s->mb_open && s->mb.ops->touch != NULL)
    s->mb.ops->touch(&s->mb);
}

bool session_command_offered(const struct session *s, const struct command *cmd)
{
  if (cmd->flags & CMD_STLS)
    return s->tls_creds != NULL && !transport_is_tls(&s->t) &&
           (s->tls.mode == CONF_TLS_ONDEMAND || s->tls.mode == CONF_TLS_REQUIRED);
  if (cmd->flags & CMD_CREDENTIALS)
    return s->tls.mode != CONF_TLS_REQUIRED || transport_is_tls(&s->t);
  return true;
}

/* Start TLS on the session's transport: the handshake, bounded in time.  Returns false
 * (with s->end set) when the session can't go on. */
static bool start_tls(struct session *s)
{
  const char *err = NULL;
  struct tls_conn *conn = tls_conn_new(s->tls_creds, s->t.rfd, s->t.wfd, &err);
  size_t discarded = 0;
  enum transport_status st;
  char desc[200];

  if (conn == NULL) {
    log_msg(LOG_ERR, "TLS: can't start a session with %s: %s", s->peer, err);
    s->t.status = TRANSPORT_ERROR;
    s->end = SESSION_END_ERROR;
    return false;
  }
  st = transport_start_tls(&s->t, conn, s->tls.handshake_timeout, &discarded, &err);
  if (discarded > 0)
    log_msg(LOG_NOTICE, "TLS: discarded %zu bytes sent by %s before the handshake", discarded,
            s->peer);
  if (st != TRANSPORT_OK) {
    log_msg(LOG_NOTICE, "TLS: handshake with %s failed: %s", s->peer, err ? err : "?");
    s->end = st == TRANSPORT_TIMEOUT ? SESSION_END_TIMEOUT : SESSION_END_ERROR;
    return false;
  }
  tls_conn_describe(s->t.tls, desc, sizeof desc);
  log_msg(LOG_INFO, "TLS established with %s: %s", s->peer, desc);
  return true;
}

/* After "+OK Begin TLS negotiation" has been queued: send it in clear, then the
 * handshake.  The client starts over inside TLS (RFC 2595 section 4): what it said
 * before, USER included, is forgotten. */
static void stls_body(struct session *s, const struct cmd_outcome *o)
{
  if (!start_tls(s))
    return;
  util_free_secret(s->user);
  s->user = NULL;
}

void cmd_stls(struct session *s, char *arg, struct cmd_outcome *o)
{
  cmd_ok(o, "Begin TLS negotiation");
  o->body = stls_body;
}

/* Run one command line; returns false when the session is over. */
static bool run_line(struct session *s, char *line, size_t len)
{
  struct cmd_outcome o;
  const struct command *cmd;
  size_t nlen = strcspn(line, " ");
  char *arg = NULL;

  memset(&o, 0, sizeof o);
  cmd = commands_find(line, nlen);
  transcript(s, cmd, line, len);
  if (line[nlen] == ' ')
    arg = line + nlen + 1;

  if (cmd == NULL) {
    cmd_err(&o, NULL, "Invalid command");
    o.bad = true;
  } else if (!(cmd->states & s->state)) {
    cmd_err(&o, NULL, "Incorrect state");
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
  if (cmd != NULL && (cmd->flags & CMD_SECRET) && arg != NULL)
    util_wipe(arg, strlen(arg));

  proto_status(&s->t, o.status == CMD_OK, o.code, o.text);
  if (s->transcript)
    log_msg(LOG_DEBUG, "sent: %s%s%s%s %s", o.status == CMD_OK ? "+OK" : "-ERR",
            o.code ? " [" : "", o.code ? o.code : "", o.code ? "]" : "", o.text);
  if (o.status == CMD_OK && o.body != NULL)
    o.body(s, &o);

  if (o.bad) {
    if (++s->bad_commands >= PARAMS_BAD_COMMANDS_MAX) {
      proto_status(&s->t, false, NULL, "Too many bad commands, closing connection");
      s->end = SESSION_END_ABUSE;
      return false;
    }
  } else if (o.status == CMD_OK) {
    s->bad_commands = 0;
  }
  if (s->t.status != TRANSPORT_OK && s->end == SESSION_END_NONE)
    s->end = s->t.status == TRANSPORT_TIMEOUT ? SESSION_END_TIMEOUT : SESSION_END_EOF;
  return !o.close && s->end == SESSION_END_NONE;
}

static void loop(struct session *s)
{
  char line[PARAMS_CMD_LINE_MAX + 1];

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
      if (!run_line(s, line, len))
        return;
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
      proto_status(&s->t, false, NULL, "Session timed out");
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

int session_run(const struct conf *c, const struct conf_server *srv, int rfd, int wfd,
                const char *peer, const char *local)
{
  struct session s;
  char greeting[200];
  int code;

  memset(&s, 0, sizeof s);
  s.conf = c;
  s.state = SESSION_AUTHORIZATION;
  s.srv = srv;
  s.peer = peer ? peer : "stdin";
  s.local = local ? local : "stdout";
  /* Mailutils: the global transcript applies in inetd mode, the server block's otherwise. */
  s.transcript = srv ? srv->transcript : c->transcript;
  s.started = time(NULL);
  transport_init(&s.t, rfd, wfd, c->output_buffer_size, srv ? srv->timeout : c->timeout);
  s.t.idle = session_idle;
  s.t.idle_arg = &s;
  make_stamp(&s);
  s.apop = apop_available(c);
  log_msg(LOG_INFO, "session started: client %s, server %s", s.peer, s.local);

  tls_settings_for(c, srv, &s.tls);
  if (s.tls.mode != CONF_TLS_NO) {
    const char *err = NULL;

    s.tls_creds = tls_creds_get(c, &s.tls, &err);
    if (s.tls_creds == NULL) {
      /* STLS is then not offered; under `required' no login is possible. */
      log_msg(LOG_ERR, "TLS not available: %s", err);
    }
  }
  if (s.tls.mode == CONF_TLS_CONNECTION && (s.tls_creds == NULL || !start_tls(&s))) {
    if (s.end == SESSION_END_NONE)
      s.end = SESSION_END_ERROR;
    goto done;
  }

  /* RFC 1939 section 7: the timestamp belongs to servers that offer APOP, and clients
   * (curl among them) pick APOP whenever they see one, without falling back to USER.
   * So it is announced only together with APOP. */
  if (s.apop)
    snprintf(greeting, sizeof greeting, "POP3 Ready %s", s.stamp);
  else
    snprintf(greeting, sizeof greeting, "POP3 Ready");
  proto_status(&s.t, true, NULL, greeting);
  loop(&s);
  transport_close(&s.t);

done:
  if (s.mb_open) {
    /* Without a successful QUIT nothing is deleted: just unlock. */
    mailbox_close(&s.mb);
    s.mb_open = false;
  }
  log_msg(LOG_INFO, "session ended: client %s, user %s, %zu messages (%llu octets) "
          "retrieved, %zu deleted, %lld s, %s", s.peer,
          s.authenticated ? s.auth.name : "-", s.n_retrieved,
          (unsigned long long)s.bytes_retrieved, s.n_deleted,
          (long long)(time(NULL) - s.started), end_name(s.end));

  switch (s.end) {
  case SESSION_END_QUIT:
    code = s.update_failed ? EX_SOFTWARE : EX_OK;
    break;
  case SESSION_END_TIMEOUT:
    code = EX_TEMPFAIL;
    break;
  case SESSION_END_EOF:
    code = s.state == SESSION_TRANSACTION ? EX_PROTOCOL : EX_OK;
    break;
  case SESSION_END_ERROR:
    code = EX_IOERR;
    break;
  default:
    code = EX_OK;
    break;
  }
  util_free_secret(s.user);
  if (s.authenticated)
    auth_user_free(&s.auth);
  transport_free(&s.t);
  return code;
}
