/* privsep.c - the one place that changes the process identity.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "privsep.h"
#include "util.h"

/* Room for a formatted error, valid until the next call. */
static char privsep_error[128];

static bool has_gid(const gid_t *v, size_t n, gid_t g)
{
  for (size_t i = 0; i < n; i++)
    if (v[i] == g)
      return true;
  return false;
}

/* The user's supplementary groups: gid first, extra_gid second (when set), then the
 * groups of the group database, at most the kernel's limit.  Returns a malloc'd
 * array of *n. */
static gid_t *user_groups(const struct auth_user *u, gid_t extra_gid, size_t *n)
{
  long lmax = sysconf(_SC_NGROUPS_MAX);
  size_t max = lmax > 0 && lmax < 65536 ? (size_t)lmax : 65536;
  gid_t *v = util_xcalloc(max, sizeof *v);
  int ng = 64;
  gid_t *db = NULL;

  *n = 0;
  v[(*n)++] = u->gid;
  if (extra_gid != (gid_t)-1 && extra_gid != u->gid)
    v[(*n)++] = extra_gid;
  if (u->name == NULL)
    return v;
  /* getgrouplist() tells the size it needs when the array is too small. */
  for (int tries = 0;; tries++) {
    int want = ng;

    db = util_xreallocarray(db, (size_t)ng, sizeof *db);
    if (getgrouplist(u->name, u->gid, db, &want) >= 0) {
      ng = want;
      break;
    }
    if (tries == 3 || (size_t)ng > max) {
      ng = -1;
      break;
    }
    ng = want > ng ? want : ng * 2;
  }
  if (ng < 0) {
    log_msg(LOG_WARNING, "privsep: can't list the groups of %s: using its primary group",
            u->name);
    ng = 0;
  }
  for (int i = 0; i < ng; i++) {
    if (has_gid(v, *n, db[i]))
      continue;
    if (*n == max) {
      log_msg(LOG_WARNING, "privsep: %s is in more than %zu groups: the rest are dropped",
              u->name, max);
      break;
    }
    v[(*n)++] = db[i];
  }
  free(db);
  return v;
}

/* Not root: only our own uid can be served, and nothing changes. */
static int drop_unprivileged(const struct auth_user *u, const char **error_r)
{
  uid_t ruid = getuid(), euid = geteuid();

  if (u->uid != ruid || u->uid != euid) {
    snprintf(privsep_error, sizeof privsep_error,
             "not running as root: can only serve uid %lu", (unsigned long)euid);
    *error_r = privsep_error;
    return -1;
  }
  return 0;
}

int privsep_drop(const struct auth_user *u, gid_t extra_gid, const char **error_r)
{
  gid_t *groups;
  size_t ngroups;
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;

  if (u->uid == 0) {
    *error_r = "refusing to serve uid 0";
    return -1;
  }
  if (u->uid == (uid_t)-1 || u->gid == (gid_t)-1) {
    *error_r = "invalid uid or gid";
    return -1;
  }
  if (geteuid() != 0)
    return drop_unprivileged(u, error_r);

  groups = user_groups(u, extra_gid, &ngroups);
  if (setgroups(ngroups, groups) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "setgroups: %s", strerror(errno));
    free(groups);
    *error_r = privsep_error;
    return -1;
  }
  free(groups);
  if (setresgid(u->gid, u->gid, u->gid) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "setgid(%lu): %s",
             (unsigned long)u->gid, strerror(errno));
    *error_r = privsep_error;
    return -1;
  }
  if (setresuid(u->uid, u->uid, u->uid) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "setuid(%lu): %s",
             (unsigned long)u->uid, strerror(errno));
    *error_r = privsep_error;
    return -1;
  }

  /* Prove it can't be undone: root must be out of reach, every id must be the user's. */
  if (setuid(0) == 0 || seteuid(0) == 0) {
    *error_r = "could regain root after dropping privileges";
    return -1;
  }
  if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "getresuid: %s", strerror(errno));
    *error_r = privsep_error;
    return -1;
  }
  if (ruid != u->uid || euid != u->uid || suid != u->uid || geteuid() != u->uid ||
      rgid != u->gid || egid != u->gid || sgid != u->gid || getegid() != u->gid) {
    *error_r = "identity change did not take effect";
    return -1;
  }
  if (u->gid != 0 && setgid(0) == 0) {
    *error_r = "could regain group 0 after dropping privileges";
    return -1;
  }
  return 0;
}
