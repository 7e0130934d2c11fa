/* lock.h - maildrop locking as the `locking` statement says: fcntl + dotlock by
 * default, interoperating with Debian's MDAs (procmail, postfix local, mailutils mda,
 * dovecot-lda), bounded retries, stale dotlocks expire.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_LOCK_H
#define POP3D_LOCK_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "util.h"

struct conf;

struct lock {
  int fd;                /* the locked maildrop fd (fcntl), -1 if none */
  char *dotlock;         /* path of our dotlock, NULL if none */
  bool fcntl_held;
  time_t touched;        /* last time the dotlock's mtime was refreshed */
  dev_t dotlock_dev;     /* identity of the dotlock we created: release removes it only */
  ino_t dotlock_ino;     /* if it is still ours */
  bool broke_stale;      /* a stale dotlock was removed to take it: its holder died, maybe
                            in the middle of an update (whose leftovers are now ours) */
};

enum lock_status { LOCK_OK = 0, LOCK_BUSY = -1, LOCK_ERROR = -2 };

/* An empty lock (nothing held); lock_release() of it does nothing. */
void lock_init(struct lock *l);

/* Lock the maildrop open on fd (path for the dotlock name), with c's retry policy
 * (retry-count attempts, retry-sleep apart; a count of 0 means one attempt, an
 * expire-timeout of 0 means PARAMS_LOCK_EXPIRE_TIMEOUT).  LOCK_BUSY when another holder
 * keeps it.  l is initialized here. */
enum lock_status lock_acquire(struct lock *l, int fd, const char *path,
                              const struct conf *c, const char **error_r) WUR;
/* Refresh the dotlock's mtime if more than PARAMS_LOCK_TOUCH_INTERVAL has passed. */
void lock_touch(struct lock *l);
void lock_release(struct lock *l);

/* Is anything held (false with `locking { type null; }`)? */
static inline bool lock_held(const struct lock *l)
{
  return l->dotlock != NULL || l->fcntl_held;
}

#endif
