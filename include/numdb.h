/* numdb.h - a GDBM file that maps user names to decimal numbers, shared by every
 * session: the login statistics of login-delay (last login time) and the bulletin-db
 * (last bulletin delivered).
 *
 * The format is Mailutils': the key is the user name without a terminating NUL, the
 * value the number in decimal ASCII, also without NUL, so a database Mailutils wrote
 * keeps working.  The file is opened without following a symbolic link and checked on
 * the open descriptor (a regular file owned by root or by us, writable by nobody else);
 * a new one is created with mode 0600.  Every access takes GDBM's own lock with a
 * bounded retry, so concurrent sessions neither corrupt it nor lose updates, and none
 * waits longer than PARAMS_NUMDB_LOCK_WAIT_MS for another.
 *
 * The descriptor may be opened while root and used after privsep_drop(): that is how a
 * session updates a root-owned database once it runs as the user.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_NUMDB_H
#define POP3D_NUMDB_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct numdb {
  int fd;            /* -1: not open */
  char *path;
};

/* Open path for reading and writing; create it (0600) when create is set.  0, or -1
 * with a reason in err (e.g. "Permission denied", "not a regular file", or that this
 * build has no GDBM). */
int numdb_open(struct numdb *db, const char *path, bool create, char *err,
               size_t errlen) WUR;

/* Under the lock: read key's number (*found_r false and *val_r 0 when absent), then, if
 * update is not NULL and returns true, store the number it put in *new_r.  One atomic
 * step for every session using the file.  0, or -1 with a reason in err.  A value that
 * is not a decimal number is an error for a plain read (update NULL); an update is
 * called as if the key were absent and replaces it. */
typedef bool (*numdb_update_fn)(uint64_t old, bool found, uint64_t *new_r, void *arg);
int numdb_update(struct numdb *db, const char *key, uint64_t *val_r, bool *found_r,
                 numdb_update_fn update, void *arg, char *err, size_t errlen) WUR;

/* Read n keys under one lock: vals[i] and found[i] as numdb_update() gives them for a
 * plain read, except that a value that is not a number counts as absent.  0, or -1 with
 * a reason in err. */
int numdb_read(struct numdb *db, const char *const *keys, size_t n, uint64_t *vals,
               bool *found, char *err, size_t errlen) WUR;

/* Store key = val unconditionally.  0 or -1 with a reason in err. */
int numdb_put(struct numdb *db, const char *key, uint64_t val, char *err,
              size_t errlen) WUR;

/* Remove key (absent is fine).  0 or -1 with a reason in err. */
int numdb_delete(struct numdb *db, const char *key, char *err, size_t errlen) WUR;

/* Under the lock: remove every key that starts with prefix and whose number keep()
 * rejects, or that is not a number.  Returns how many such keys were kept, or -1 with a
 * reason in err. */
typedef bool (*numdb_keep_fn)(uint64_t val, void *arg);
long numdb_sweep(struct numdb *db, const char *prefix, numdb_keep_fn keep, void *arg,
                 char *err, size_t errlen) WUR;

void numdb_close(struct numdb *db);

#endif
