/* login.c - the worker's side of every login: ask the monitor, answer the client.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "log.h"
#include "login.h"
#include "logindelay.h"
#include "privsep.h"
#include "sasl.h"
#include "session.h"

unsigned login_failure_delay(unsigned failures)
{
  if (failures == 0)
    return 0;
  if (failures > 3)
    return LOGIN_FAILURE_DELAY_MAX;
  return (1u << (failures - 1)) < LOGIN_FAILURE_DELAY_MAX ? 1u << (failures - 1)
                                                          : LOGIN_FAILURE_DELAY_MAX;
}

bool login_plaintext_ok(const struct session *s)
{
  /* As session_command_offered() judges CMD_CREDENTIALS commands (USER, PASS). */
  return s->tls.mode != CONF_TLS_REQUIRED || transport_is_tls(&s->t);
}

size_t login_sasl_mechs(const struct session *s, char *buf, size_t cap)
{
  bool plain = login_plaintext_ok(s);
  int n = snprintf(buf, cap, "%s%s%s", plain ? "PLAIN LOGIN" : "",
                   plain && s->apop ? " " : "", s->apop ? "CRAM-MD5 SCRAM-SHA-256" : "");

  return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Send m and wait for the answer of type want (in m).  false: the monitor is gone or
 * answered nonsense; o says so and the session ends. */
static bool ask(struct session *s, struct cmd_outcome *o, struct privsep_msg *m,
                uint32_t want)
{
  const char *err = "?";

  if (privsep_call(s->monitor_fd, m, want, &err) == 0 && m->nfds == 0)
    return true;
  if (m->nfds != 0)
    err = "descriptors with an answer";
  log_msg(LOG_ERR, "worker: no answer from the monitor: %s", err);
  privsep_msg_clear(m);
  cmd_err(o, "SYS/TEMP", "Cannot authenticate");
  o->close = true;
  s->end = SESSION_END_ERROR;
  return false;
}

/* A PS_RESULT: the login went through, or o gets the refusal. */
static void answer(struct session *s, struct cmd_outcome *o, struct privsep_msg *m)
{
  uint32_t r = PS_R_TEMP, close_it = 1;

  if (privsep_get_u32(m, &r) < 0 || privsep_get_u32(m, &close_it) < 0)
    r = PS_R_TEMP;
  switch (r) {
  case PS_R_OK:
    s->handoff = true;
    o->close = true;
    return;
  case PS_R_FAIL:
    cmd_err(o, "AUTH", "Bad login");
    break;
  case PS_R_LOGIN_DELAY:
    cmd_err(o, "LOGIN-DELAY", LOGINDELAY_REFUSAL);
    break;
  case PS_R_PERM:
    cmd_err(o, "SYS/PERM", "Cannot authenticate");
    break;
  default:
    cmd_err(o, "SYS/TEMP", "Cannot authenticate");
    break;
  }
  s->auth_failures++;
  if (close_it) {
    s->end = SESSION_END_ABUSE;
    o->close = true;
  }
}

void login_password(struct session *s, struct cmd_outcome *o, const char *mech,
                    const char *user, const char *password)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);

  privsep_msg_init(m, PS_PASS);
  privsep_put_str(m, mech);
  privsep_put_str(m, user);
  privsep_put_str(m, password);
  if (m->bad) {
    /* Longer than any name or password the monitor takes. */
    util_wipe(m->buf, sizeof m->buf);
    privsep_msg_init(m, PS_PASS);
    privsep_put_str(m, mech);
    privsep_put_str(m, "-");
    privsep_put_str(m, "-");
  }
  if (ask(s, o, m, PS_RESULT))
    answer(s, o, m);
  util_wipe(m, sizeof *m);
  free(m);
}

void login_digest(struct session *s, struct cmd_outcome *o, uint32_t type, const char *user,
                  const char *digest)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);

  privsep_msg_init(m, type);
  privsep_put_str(m, user);
  privsep_put_str(m, digest);
  if (ask(s, o, m, PS_RESULT))
    answer(s, o, m);
  free(m);
}

int login_cram_challenge(struct session *s, struct cmd_outcome *o, char *buf, size_t cap)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const char *ch;
  int rc = -1;

  privsep_msg_init(m, PS_CRAM_START);
  if (ask(s, o, m, PS_CHALLENGE)) {
    if (privsep_get_str(m, &ch) == 0 && strlen(ch) < cap) {
      memcpy(buf, ch, strlen(ch) + 1);
      rc = 0;
    } else {
      cmd_err(o, "SYS/TEMP", "Cannot authenticate");
    }
  }
  free(m);
  return rc;
}

int login_scram_params(struct session *s, struct cmd_outcome *o, struct sasl *x)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const unsigned char *salt;
  const char *nonce;
  size_t n;
  uint32_t rounds;
  int rc = -1;

  privsep_msg_init(m, PS_SCRAM_START);
  if (ask(s, o, m, PS_SCRAM_PARAMS)) {
    if (privsep_get_bytes(m, &salt, &n) == 0 && n == sizeof x->salt &&
        privsep_get_str(m, &nonce) == 0 && strlen(nonce) < sizeof x->snonce &&
        privsep_get_u32(m, &rounds) == 0 && rounds >= 4096 && rounds <= 1000000) {
      memcpy(x->salt, salt, n);
      memcpy(x->snonce, nonce, strlen(nonce) + 1);
      x->iterations = rounds;
      rc = 0;
    } else {
      cmd_err(o, "SYS/TEMP", "Cannot authenticate");
    }
  }
  free(m);
  return rc;
}

bool login_scram_verify(struct session *s, struct cmd_outcome *o, struct sasl *x, char *out,
                        size_t cap)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const char *final;
  uint32_t r = PS_R_TEMP, close_it = 1;
  bool ok = false;

  privsep_msg_init(m, PS_SCRAM_VERIFY);
  privsep_put_str(m, x->user);
  privsep_put_str(m, x->auth_message != NULL ? x->auth_message : "");
  privsep_put_bytes(m, x->proof, sizeof x->proof);
  util_wipe(x->proof, sizeof x->proof);
  if (!ask(s, o, m, PS_RESULT)) {
    free(m);
    return false;
  }
  if (privsep_get_u32(m, &r) == 0 && privsep_get_u32(m, &close_it) == 0 && r == PS_R_OK &&
      privsep_get_str(m, &final) == 0 && strlen(final) < cap) {
    memcpy(out, final, strlen(final) + 1);
    x->scram = SCRAM_VERIFIED;
    ok = true;
  } else {
    m->pos = 0;
    m->bad = false;
    answer(s, o, m);
    x->scram = SCRAM_OVER;
  }
  free(m);
  return ok;
}

void login_scram_done(struct session *s, struct cmd_outcome *o)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);

  privsep_msg_init(m, PS_SCRAM_DONE);
  if (ask(s, o, m, PS_RESULT))
    answer(s, o, m);
  free(m);
}
