/* penalty.c - login penalties shared by every session of the host (penalty.h).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acl.h"
#include "conf.h"
#include "log.h"
#include "numdb.h"
#include "params.h"
#include "penalty.h"

#define COUNT_MAX 255u

/* "ip:" or "user:" and the rest; false when it doesn't fit (it is then not counted). */
static bool key_of(char *buf, size_t cap, const char *kind, const char *name)
{
  int n = snprintf(buf, cap, "%s:%s", kind, name);

  return n > 0 && (size_t)n < cap;
}

static unsigned count_of(uint64_t v, uint64_t now)
{
  uint64_t when = v >> 8;

  /* A last failure in the future (the clock went back) still counts. */
  if (when < now && now - when >= PARAMS_LOGIN_PENALTY_WINDOW)
    return 0;
  return (unsigned)(v & COUNT_MAX);
}

unsigned penalty_delay(unsigned failures, unsigned max)
{
  unsigned over;

  if (failures <= PARAMS_LOGIN_PENALTY_FREE)
    return 0;
  over = failures - PARAMS_LOGIN_PENALTY_FREE;
  if (over >= 16 || (1u << over) > max)
    return max;
  return 1u << over;
}

static bool usable(const struct conf *c)
{
#ifdef HAVE_GDBM
  return c->login_penalty_max > 0 && c->login_penalty_file != NULL &&
         c->login_penalty_file[0] != '\0';
#else
  (void)c;
  return false;
#endif
}

static int open_db(const struct conf *c, struct numdb *db)
{
  char err[160];

  if (numdb_open(db, c->login_penalty_file, true, err, sizeof err) == 0)
    return 0;
  log_msg(LOG_ERR, "login penalties: %s: %s", c->login_penalty_file, err);
  return -1;
}

/* The keys of an attempt: up to two. */
struct keys {
  char v[2][16 + (PARAMS_USER_MAX > ACL_SOURCE_KEY_MAX ? PARAMS_USER_MAX
                                                        : ACL_SOURCE_KEY_MAX)];
  size_t n;
};

static void keys_of(struct keys *k, const char *source, const char *user)
{
  k->n = 0;
  if (source != NULL && key_of(k->v[k->n], sizeof k->v[0], "ip", source))
    k->n++;
  if (user != NULL && key_of(k->v[k->n], sizeof k->v[0], "user", user))
    k->n++;
}

struct fail_arg {
  uint64_t now;
};

static bool fail_step(uint64_t old, bool found, uint64_t *new_r, void *arg)
{
  const struct fail_arg *a = arg;
  unsigned n = found ? count_of(old, a->now) : 0;

  if (n < COUNT_MAX)
    n++;
  *new_r = a->now << 8 | n;
  return true;
}

static bool sweep_due(uint64_t last, bool found, uint64_t *new_r, void *arg)
{
  const struct fail_arg *a = arg;

  if (found && last <= a->now && a->now - last < PARAMS_LOGIN_PENALTY_SWEEP)
    return false;
  *new_r = a->now;
  return true;
}

static bool still_counts(uint64_t v, void *arg)
{
  const struct fail_arg *a = arg;

  return count_of(v, a->now) > 0;
}

/* Now and then, the failures that no longer count go; a file that grew too big all the
 * same (a flood of sources or names) starts afresh. */
static void tidy(struct numdb *db, void *arg)
{
  const struct fail_arg *a = arg;
  char err[160];
  uint64_t last;
  bool found;
  struct stat st;

  if (fstat(db->fd, &st) == 0 && st.st_size > (off_t)PARAMS_LOGIN_PENALTY_FILE_MAX) {
    if (unlink(db->path) < 0)
      log_msg(LOG_ERR, "login penalties: %s: can't remove: %s", db->path, strerror(errno));
    else
      log_msg(LOG_WARNING, "login penalties: %s grew past %u bytes: started afresh",
              db->path, (unsigned)PARAMS_LOGIN_PENALTY_FILE_MAX);
    return;
  }
  if (numdb_update(db, "sweep", &last, &found, sweep_due, (void *)a, err, sizeof err) < 0) {
    log_msg(LOG_WARNING, "login penalties: %s: %s", db->path, err);
    return;
  }
  if (found && last <= a->now && a->now - last < PARAMS_LOGIN_PENALTY_SWEEP)
    return;
  for (size_t i = 0; i < 2; i++)
    if (numdb_sweep(db, i == 0 ? "ip:" : "user:", still_counts, (void *)a, err,
                    sizeof err) < 0)
      log_msg(LOG_WARNING, "login penalties: %s: %s", db->path, err);
}

/* Run step on each key of an attempt (logged when it fails); then, if after is set, on
 * the database. */
typedef int (*key_step)(struct numdb *db, const char *key, void *arg, char *err,
                        size_t errlen);

static void each_key(const struct conf *c, const char *source, const char *user,
                     key_step step, void *arg, void (*after)(struct numdb *, void *))
{
  struct numdb db;
  struct keys k;

  if (!usable(c))
    return;
  keys_of(&k, source, user);
  if (k.n == 0 || open_db(c, &db) < 0)
    return;
  for (size_t i = 0; i < k.n; i++) {
    char err[160];

    if (step(&db, k.v[i], arg, err, sizeof err) < 0)
      log_msg(LOG_WARNING, "login penalties: %s: %s", db.path, err);
  }
  if (after != NULL)
    after(&db, arg);
  numdb_close(&db);
}

static int count_failure(struct numdb *db, const char *key, void *arg, char *err,
                         size_t errlen)
{
  uint64_t old;
  bool found;

  return numdb_update(db, key, &old, &found, fail_step, arg, err, errlen);
}

static int clear(struct numdb *db, const char *key, void *arg, char *err, size_t errlen)
{
  (void)arg;
  return numdb_delete(db, key, err, errlen);
}

unsigned penalty_before(const struct conf *c, const char *source, const char *user,
                        time_t now, bool *recorded_r)
{
  const char *names[2];
  uint64_t vals[2], t = now < 0 ? 0 : (uint64_t)now;
  bool found[2];
  char err[160];
  struct numdb db;
  struct keys k;
  unsigned most = 0;

  *recorded_r = false;
  if (!usable(c))
    return 0;
  keys_of(&k, source, user);
  if (k.n == 0 || open_db(c, &db) < 0)
    return 0;
  for (size_t i = 0; i < k.n; i++)
    names[i] = k.v[i];
  /* Both keys in one step: this runs before every login. */
  if (numdb_read(&db, names, k.n, vals, found, err, sizeof err) < 0)
    log_msg(LOG_WARNING, "login penalties: %s: %s", db.path, err);
  else
    for (size_t i = 0; i < k.n; i++)
      if (found[i]) {
        unsigned n = count_of(vals[i], t);

        *recorded_r = true;
        if (n > most)
          most = n;
      }
  numdb_close(&db);
  return penalty_delay(most, c->login_penalty_max);
}

void penalty_failed(const struct conf *c, const char *source, const char *user,
                    time_t now)
{
  struct fail_arg a = { .now = now < 0 ? 0 : (uint64_t)now };

  each_key(c, source, user, count_failure, &a, tidy);
}

void penalty_succeeded(const struct conf *c, const char *source, const char *user)
{
  each_key(c, source, user, clear, NULL, NULL);
}
