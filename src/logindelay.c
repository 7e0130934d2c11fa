/* logindelay.c - RFC 2449 LOGIN-DELAY against the login statistics database.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdint.h>

#include "conf.h"
#include "log.h"
#include "logindelay.h"
#include "numdb.h"
#include "params.h"

bool logindelay_configured(const struct conf *c)
{
#ifdef HAVE_GDBM
  return c->login_delay > 0;
#else
  return false;
#endif
}

struct logindelay_arg {
  uint64_t now;
  unsigned delay;
  bool refused;
};

/* Refuse when the last login was less than the delay ago; record the login otherwise.
 * A last login in the future (the clock went back) does not lock the user out. */
static bool logindelay_step(uint64_t last, bool found, uint64_t *new_r, void *arg)
{
  struct logindelay_arg *a = arg;

  if (found && last <= a->now && a->now - last < a->delay) {
    a->refused = true;
    return false;
  }
  *new_r = a->now;
  return true;
}

enum logindelay_result logindelay_login(const struct conf *c, const char *user, time_t now)
{
  struct numdb db;
  struct logindelay_arg a = { .now = now < 0 ? 0 : (uint64_t)now, .delay = c->login_delay,
                              .refused = false };
  const char *path = c->stat_file && *c->stat_file ? c->stat_file : PARAMS_STAT_FILE;
  char err[160];
  uint64_t last;
  bool found;

  if (c->login_delay == 0)
    return LOGINDELAY_OFF;
#ifndef HAVE_GDBM
  log_msg(LOG_WARNING, "login-delay is set, but pop3d was built without GDBM: no delay");
  (void)db; (void)a; (void)path; (void)err; (void)last; (void)found; (void)user;
  return LOGINDELAY_OFF;
#else
  if (numdb_open(&db, path, true, err, sizeof err) < 0) {
    log_msg(LOG_ERR, "Unable to open statistics db: %s (%s)", err, path);
    return LOGINDELAY_OFF;
  }
  if (numdb_update(&db, user, &last, &found, logindelay_step, &a, err, sizeof err) < 0) {
    log_msg(LOG_ERR, "Unable to open statistics db: %s (%s)", err, path);
    numdb_close(&db);
    return LOGINDELAY_OFF;
  }
  numdb_close(&db);
  if (a.refused) {
    log_msg(LOG_INFO, "user %s tried to log in within the minimum login delay (%u s)",
            user, c->login_delay);
    return LOGINDELAY_REFUSE;
  }
  return LOGINDELAY_OK;
#endif
}
