/* cmd_apop.c - APOP (RFC 1939 section 7) and AUTH (RFC 5034: PLAIN, LOGIN, CRAM-MD5,
 * SCRAM-SHA-256), and what every way of logging in shares (login.h).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apop.h"
#include "commands.h"
#include "log.h"
#include "login.h"
#include "proto.h"
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

static void pause_seconds(unsigned sec)
{
  struct timespec ts = { .tv_sec = (time_t)sec, .tv_nsec = 0 };

  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

void login_failed(struct session *s, struct cmd_outcome *o, const char *mech,
                  const char *user, enum auth_status st, const char *reason)
{
  log_msg(LOG_NOTICE, "authentication failed for %s from %s: %s: %s",
          auth_name_valid(user) ? user : "-", s->peer, mech, reason ? reason : "?");
  s->auth_failures++;
  pause_seconds(login_failure_delay(s->auth_failures));
  if (st == AUTH_FAIL)
    cmd_err(o, "AUTH", "Bad login");
  else
    cmd_err(o, st == AUTH_TEMP ? "SYS/TEMP" : "SYS/PERM", "Cannot authenticate");
  if (s->auth_failures >= PARAMS_AUTH_FAILURES_MAX) {
    s->end = SESSION_END_ABUSE;
    o->close = true;
  }
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

static bool is_hex32(const char *p)
{
  size_t n = 0;

  for (; p[n] != '\0'; n++)
    if (!((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f') ||
          (p[n] >= 'A' && p[n] <= 'F')))
      return false;
  return n == 2 * MD5_DIGEST_SIZE;
}

/* A user authenticated by a secret of the APOP database: authorize and log in. */
static void secret_login_ok(struct session *s, struct cmd_outcome *o, const char *mech,
                            const char *user)
{
  const char *err = NULL;
  enum auth_status st = auth_authorize(s->conf, user, &s->auth, &err);

  if (st != AUTH_OK) {
    login_failed(s, o, mech, user, st, err);
    return;
  }
  session_login_ok(s, o);
}

/* The user's secret from the database: AUTH_OK with *secret_r, or a failure with
 * *secret_r NULL and *err_r.  An invalid name is not looked up. */
static enum auth_status user_secret(const struct session *s, const char *user,
                                    char **secret_r, const char **err_r)
{
  *secret_r = NULL;
  if (!auth_name_valid(user)) {
    *err_r = "invalid user name";
    return AUTH_FAIL;
  }
  return apop_secret(s->conf, user, secret_r, err_r);
}

/* A refused secret login (st from user_secret(), AUTH_OK when the secret was there but
 * the client's answer was wrong). */
static void secret_refused(struct session *s, struct cmd_outcome *o, const char *mech,
                           const char *user, enum auth_status st, const char *err,
                           const char *wrong)
{
  if (st == AUTH_OK)
    err = wrong;
  if (st == AUTH_PERM || st == AUTH_TEMP)
    log_msg(LOG_ERR, "%s", err);
  /* A database that went missing or unsafe since the greeting looks like an unknown
   * user to the client; the log above says what happened. */
  login_failed(s, o, mech, user, st == AUTH_TEMP ? AUTH_TEMP : AUTH_FAIL, err);
}

/* Check digest for user against the database with check (APOP or CRAM-MD5 digest);
 * the same work whether or not the user has a secret. */
static void secret_login(struct session *s, struct cmd_outcome *o, const char *mech,
                         const char *user, const char *text, const char *digest,
                         bool (*check)(const char *, const char *, const char *))
{
  char *secret = NULL;
  const char *err = NULL;
  enum auth_status st = user_secret(s, user, &secret, &err);
  bool ok = check(text, secret, digest);

  util_free_secret(secret);
  if (st == AUTH_OK && ok)
    secret_login_ok(s, o, mech, user);
  else
    secret_refused(s, o, mech, user, st, err, "wrong digest");
}

/* SCRAM-SHA-256: check the client's proof with the user's secret; when it holds, out
 * gets the server-final-message.  The same work (Hi() on a dummy secret) whether or
 * not the user has a secret.  false: refused, o filled. */
static bool scram_check(struct session *s, struct cmd_outcome *o, struct sasl *x,
                        char *out, size_t cap)
{
  char *secret = NULL;
  const char *err = NULL;
  enum auth_status st = user_secret(s, x->user, &secret, &err);
  bool ok = sasl_scram_verify(x, secret, out, cap);

  util_free_secret(secret);
  if (st == AUTH_OK && ok)
    return true;
  secret_refused(s, o, sasl_mech_name(x->mech), x->user, st, err, "wrong proof");
  return false;
}

void cmd_apop(struct session *s, char *arg, struct cmd_outcome *o)
{
  char *sp = strchr(arg, ' ');

  util_free_secret(s->user);
  s->user = NULL;
  if (!s->apop) {
    /* Not offered (no usable database, no stamp in the greeting): as if unknown. */
    cmd_err(o, NULL, "Invalid command");
    o->bad = true;
    return;
  }
  if (sp == NULL || !is_hex32(sp + 1)) {
    cmd_err(o, NULL, "Invalid arguments");
    o->bad = true;
    return;
  }
  *sp = '\0';
  secret_login(s, o, "APOP", arg, s->stamp, sp + 1, apop_digest_ok);
}

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

/* A fresh CRAM-MD5 challenge: a msg-id with random bytes, the time and our host. */
static void cram_challenge(const struct session *s, char *buf, size_t cap)
{
  unsigned char r[8];
  char hex[MD5_HEX_SIZE];
  const char *at = strchr(s->stamp, '@');
  unsigned char d[MD5_DIGEST_SIZE];

  if (util_random(r, sizeof r) < 0)
    memset(r, 0, sizeof r);
  md5(r, sizeof r, d);
  md5_hex(d, hex);
  hex[16] = '\0';
  snprintf(buf, cap, "<%s.%lld%s", hex, (long long)time(NULL),
           at != NULL ? at : "@localhost>");
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
    line[0] = '\0';
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

void cmd_auth_sasl(struct session *s, char *arg, struct cmd_outcome *o)
{
  char *mech, *initial = NULL, *line, out[SASL_CHALLENGE_MAX], challenge[160] = "";
  enum sasl_mech m;
  enum sasl_result r;
  struct sasl x;
  const char *err = NULL;
  enum auth_status st;

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
  if (m == SASL_CRAM_MD5)
    cram_challenge(s, challenge, sizeof challenge);
  sasl_start(&x, m, challenge);
  if (m == SASL_SCRAM_SHA_256 && x.scram == SCRAM_OVER) {
    log_msg(LOG_ERR, "SCRAM-SHA-256: no random salt and nonce: %s", strerror(errno));
    cmd_err(o, "SYS/TEMP", "Cannot authenticate");
    sasl_free(&x);
    return;
  }
  line = util_xmalloc(SASL_LINE_MAX + 2);
  r = sasl_step(&x, initial, out, sizeof out);
  for (;;) {
    /* SCRAM: the proof is checked mid-exchange; the server's signature then goes out
     * as one more challenge, which the client answers with an empty line. */
    if (r == SASL_VERIFY && scram_check(s, o, &x, out, sizeof out))
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
    /* The proof was refused: scram_check() has answered. */
    break;
  case SASL_DONE:
    if (m == SASL_CRAM_MD5) {
      secret_login(s, o, "CRAM-MD5", x.user, x.challenge, x.digest, apop_cram_ok);
      break;
    }
    if (m == SASL_SCRAM_SHA_256) {
      secret_login_ok(s, o, "SCRAM-SHA-256", x.user);
      break;
    }
    st = auth_login(s->conf, x.user, x.password, &s->auth, &err);
    util_free_secret(x.password);
    x.password = NULL;
    if (st != AUTH_OK)
      login_failed(s, o, sasl_mech_name(m), x.user, st, err);
    else
      session_login_ok(s, o);
    break;
  case SASL_CONTINUE:
    break;
  }
  sasl_free(&x);
}
