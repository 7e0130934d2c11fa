/* cmd_sasl.c - AUTH (RFC 5034): PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256 exchanges in the
 * worker; every credential is checked by the monitor (login.h).
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
#include "privsep.h"
#include "proto.h"
#include "sasl.h"
#include "session.h"

/* AUTH without an argument: the mechanisms, one a line (RFC 1734's form, which some
 * clients still probe). */
static void mechs_body(struct session *s, const struct cmd_outcome *o)
{
  char buf[64], *p, *save = NULL;

  (void)o;
  if (login_sasl_mechs(s, buf, sizeof buf) > 0)
    for (p = strtok_r(buf, " ", &save); p != NULL; p = strtok_r(NULL, " ", &save))
      proto_ml_printf(&s->t, "%s", p);
  proto_ml_end(&s->t);
}

/* The mechanisms that use the APOP database's secrets need it; the others send a
 * password and obey tls-mode required. */
static bool mech_uses_secret(enum sasl_mech m)
{
  return m == SASL_CRAM_MD5 || m == SASL_SCRAM_SHA_256;
}

static bool mech_offered(const struct session *s, enum sasl_mech m)
{
  if (mech_uses_secret(m))
    return s->apop;
  return login_plaintext_ok(s);
}

/* Send a challenge and read the answer.  false when the session is over (o filled). */
static bool exchange(struct session *s, struct cmd_outcome *o, const char *challenge,
                     char *line, size_t cap)
{
  size_t len = 0;

  transport_write(&s->t, "+ ", 2);
  transport_write(&s->t, challenge, strlen(challenge));
  transport_write(&s->t, "\r\n", 2);
  if (transport_flush(&s->t) != TRANSPORT_OK) {
    s->end = SESSION_END_EOF;
    o->close = true;
    cmd_err(o, NULL, "Connection lost");
    return false;
  }
  switch (proto_read_line(&s->t, line, cap, &len)) {
  case PROTO_LINE_OK:
    return true;
  case PROTO_LINE_TOOLONG:
  case PROTO_LINE_NUL:
    strcpy(line, "!");        /* not base64: answered as a malformed response */
    return true;
  case PROTO_LINE_TIMEOUT:
    s->t.status = TRANSPORT_OK;
    s->end = SESSION_END_TIMEOUT;
    cmd_err(o, NULL, "Session timed out");
    break;
  case PROTO_LINE_EOF:
    s->end = SESSION_END_EOF;
    cmd_err(o, NULL, "Connection closed");
    break;
  case PROTO_LINE_ERROR:
    s->end = SESSION_END_ERROR;
    cmd_err(o, NULL, "I/O error");
    break;
  }
  o->close = true;
  return false;
}

/* Start mechanism m: the monitor's challenge material first.  false: o filled. */
static bool start(struct session *s, struct cmd_outcome *o, struct sasl *x, enum sasl_mech m)
{
  char challenge[160] = "";

  if (m == SASL_CRAM_MD5 && login_cram_challenge(s, o, challenge, sizeof challenge) < 0)
    return false;
  sasl_start(x, m, challenge);
  if (m == SASL_SCRAM_SHA_256 && login_scram_params(s, o, x) < 0) {
    sasl_free(x);
    return false;
  }
  return true;
}

void cmd_auth_sasl(struct session *s, char *arg, struct cmd_outcome *o)
{
  char *mech, *initial = NULL, *line, out[SASL_CHALLENGE_MAX];
  enum sasl_mech m;
  enum sasl_result r;
  struct sasl x;

  util_free_secret(s->user);
  s->user = NULL;
  if (arg == NULL) {
    cmd_ok(o, "List of supported mechanisms follows");
    o->body = mechs_body;
    return;
  }
  mech = arg;
  if ((initial = strchr(arg, ' ')) != NULL)
    *initial++ = '\0';
  if (sasl_mech_find(mech, &m) < 0) {
    cmd_err(o, NULL, "Unrecognized authentication type");
    o->bad = true;
    return;
  }
  if (!mech_offered(s, m)) {
    if (mech_uses_secret(m))
      cmd_err(o, NULL, "Authentication mechanism not available");
    else
      cmd_err(o, "AUTH", "Plaintext authentication requires TLS: use STLS first");
    o->bad = true;
    return;
  }
  if (!start(s, o, &x, m))
    return;
  line = util_xmalloc(SASL_LINE_MAX + 2);
  r = sasl_step(&x, initial, out, sizeof out);
  for (;;) {
    /* SCRAM: the proof is checked mid-exchange (by the monitor); the server's signature
     * then goes out as one more challenge, which the client answers with an empty
     * line. */
    if (r == SASL_VERIFY && login_scram_verify(s, o, &x, out, sizeof out))
      r = SASL_CONTINUE;
    if (r != SASL_CONTINUE)
      break;
    if (!exchange(s, o, out, line, SASL_LINE_MAX + 2)) {
      if (initial != NULL)
        util_wipe(initial, strlen(initial));
      util_wipe(line, SASL_LINE_MAX + 2);
      free(line);
      sasl_free(&x);
      return;
    }
    r = sasl_step(&x, line, out, sizeof out);
    util_wipe(line, SASL_LINE_MAX + 2);
  }
  free(line);
  /* The session wipes its argument only up to the NUL put after the mechanism. */
  if (initial != NULL)
    util_wipe(initial, strlen(initial));
  switch (r) {
  case SASL_CANCEL:
    cmd_err(o, NULL, "Authentication cancelled");
    break;
  case SASL_BAD:
    cmd_err(o, NULL, "Invalid SASL response");
    o->bad = true;
    break;
  case SASL_VERIFY:
    /* The proof was refused: login_scram_verify() has answered. */
    break;
  case SASL_DONE:
    if (m == SASL_CRAM_MD5)
      login_digest(s, o, PS_CRAM, x.user, x.digest);
    else if (m == SASL_SCRAM_SHA_256)
      login_scram_done(s, o);
    else
      login_password(s, o, sasl_mech_name(m), x.user, x.password);
    break;
  case SASL_CONTINUE:
    break;
  }
  sasl_free(&x);
}
