/* numdb.c - user name -> decimal number, in a GDBM file shared by every session.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_GDBM
# include <gdbm.h>
#endif

#include "log.h"
#include "numdb.h"
#include "params.h"

int numdb_open(struct numdb *db, const char *path, bool create, char *err, size_t errlen)
{
  struct stat st;
  int fd;

  db->fd = -1;
  db->path = NULL;
#ifndef HAVE_GDBM
  (void)path;
  (void)create;
  snprintf(err, errlen, "pop3d was built without GDBM");
  return -1;
#else
  fd = open(path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK |
            (create ? O_CREAT : 0), 0600);
  if (fd < 0) {
    snprintf(err, errlen, "%s", errno == ELOOP ? "is a symbolic link" : strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) < 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "not a regular file");
  } else if (st.st_uid != 0 && st.st_uid != geteuid()) {
    snprintf(err, errlen, "owned by uid %lu, neither root nor us", (unsigned long)st.st_uid);
  } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(err, errlen, "writable by group or others");
  } else if (st.st_nlink != 1) {
    snprintf(err, errlen, "has %lu hard links", (unsigned long)st.st_nlink);
  } else {
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
      snprintf(err, errlen, "%s", strerror(errno));
      close(fd);
      return -1;
    }
    db->fd = fd;
    db->path = util_xstrdup(path);
    return 0;
  }
  close(fd);
  return -1;
#endif
}

void numdb_close(struct numdb *db)
{
  if (db->fd >= 0)
    close(db->fd);
  db->fd = -1;
  free(db->path);
  db->path = NULL;
}

#ifdef HAVE_GDBM
/* A GDBM handle on a duplicate of db->fd, holding GDBM's writer lock.  Another session
 * holding it makes us retry for a bounded time. */
static GDBM_FILE numdb_lock(struct numdb *db, char *err, size_t errlen)
{
  uint64_t start = util_now_ms();

  for (;;) {
    int fd = fcntl(db->fd, F_DUPFD_CLOEXEC, 0);
    GDBM_FILE g;
    int ge;

    if (fd < 0) {
      snprintf(err, errlen, "%s", strerror(errno));
      return NULL;
    }
    /* Duplicates share the file offset, which an earlier handle moved. */
    if (lseek(fd, 0, SEEK_SET) < 0) {
      snprintf(err, errlen, "%s", strerror(errno));
      close(fd);
      return NULL;
    }
    g = gdbm_fd_open(fd, db->path, 0, GDBM_WRCREAT | GDBM_SYNC | GDBM_CLOERROR, NULL);
    if (g != NULL)
      return g;
    ge = gdbm_errno;
    if ((ge == GDBM_CANT_BE_WRITER || ge == GDBM_CANT_BE_READER) &&
        util_now_ms() - start < PARAMS_NUMDB_LOCK_WAIT_MS) {
      unsigned char r = 0;
      if (util_random(&r, 1) != 0)
        r = 0;
      util_sleep_ms(2u + r / 25u);         /* 2 to 12 ms: sessions don't move in step */
      continue;
    }
    if (ge == GDBM_CANT_BE_WRITER || ge == GDBM_CANT_BE_READER)
      snprintf(err, errlen, "locked by another process for more than %u ms",
               (unsigned)PARAMS_NUMDB_LOCK_WAIT_MS);
    else
      snprintf(err, errlen, "%s", gdbm_strerror(ge));
    return NULL;
  }
}

/* The handle for one step on an open database, or NULL with a reason in err. */
static GDBM_FILE numdb_begin(struct numdb *db, char *err, size_t errlen)
{
  if (db->fd < 0) {
    snprintf(err, errlen, "database not open");
    return NULL;
  }
  return numdb_lock(db, err, errlen);
}

/* Close the step's handle (which writes it out): ret, or -1 when that fails. */
static int numdb_end(GDBM_FILE g, int ret, char *err, size_t errlen)
{
  if (gdbm_close(g) != 0 && ret == 0) {
    snprintf(err, errlen, "%s", gdbm_strerror(gdbm_errno));
    return -1;
  }
  return ret;
}

/* The stored value as a number: decimal digits only, as Mailutils writes them. */
static int numdb_parse(const char *p, size_t n, uint64_t *out)
{
  uint64_t v = 0;

  if (n == 0 || n > 20)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9' || __builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, (uint64_t)(p[i] - '0'), &v))
      return -1;
  }
  *out = v;
  return 0;
}
#endif

int numdb_update(struct numdb *db, const char *key, uint64_t *val_r, bool *found_r,
                 numdb_update_fn update, void *arg, char *err, size_t errlen)
{
#ifndef HAVE_GDBM
  (void)db; (void)key; (void)update; (void)arg;
  *val_r = 0;
  *found_r = false;
  snprintf(err, errlen, "pop3d was built without GDBM");
  return -1;
#else
  GDBM_FILE g;
  datum k, v;
  uint64_t old = 0, nv;
  int ret = -1;

  *val_r = 0;
  *found_r = false;
  g = numdb_begin(db, err, errlen);
  if (g == NULL)
    return -1;
  k.dptr = (char *)key;
  k.dsize = (int)strlen(key);
  v = gdbm_fetch(g, k);
  if (v.dptr != NULL) {
    int bad = numdb_parse(v.dptr, (size_t)v.dsize, &old);
    free(v.dptr);
    if (bad < 0 && update == NULL) {
      snprintf(err, errlen, "malformed value for %s", key);
      goto out;
    }
    /* An update replaces a value it can't read (and says so). */
    if (bad < 0)
      log_msg(LOG_WARNING, "%s: malformed value for %s replaced", db->path, key);
    else
      *found_r = true;
  } else if (gdbm_errno != GDBM_ITEM_NOT_FOUND) {
    snprintf(err, errlen, "%s", gdbm_strerror(gdbm_errno));
    goto out;
  }
  *val_r = old;
  if (update != NULL && update(old, *found_r, &nv, arg)) {
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)nv);
    v.dptr = text;
    v.dsize = (int)strlen(text);
    if (gdbm_store(g, k, v, GDBM_REPLACE) != 0) {
      snprintf(err, errlen, "%s", gdbm_strerror(gdbm_errno));
      goto out;
    }
  }
  ret = 0;
out:
  ret = numdb_end(g, ret, err, errlen);
  return ret;
#endif
}

int numdb_read(struct numdb *db, const char *const *keys, size_t n, uint64_t *vals,
               bool *found, char *err, size_t errlen)
{
#ifndef HAVE_GDBM
  (void)db; (void)keys; (void)n; (void)vals; (void)found;
  snprintf(err, errlen, "pop3d was built without GDBM");
  return -1;
#else
  GDBM_FILE g = numdb_begin(db, err, errlen);
  int ret = 0;

  if (g == NULL)
    return -1;
  for (size_t i = 0; i < n; i++) {
    datum k = { .dptr = (char *)keys[i], .dsize = (int)strlen(keys[i]) };
    datum v = gdbm_fetch(g, k);

    vals[i] = 0;
    found[i] = false;
    if (v.dptr != NULL) {
      found[i] = numdb_parse(v.dptr, (size_t)v.dsize, &vals[i]) == 0;
      free(v.dptr);
    } else if (gdbm_errno != GDBM_ITEM_NOT_FOUND && ret == 0) {
      snprintf(err, errlen, "%s", gdbm_strerror(gdbm_errno));
      ret = -1;
    }
  }
  return numdb_end(g, ret, err, errlen);
#endif
}

int numdb_delete(struct numdb *db, const char *key, char *err, size_t errlen)
{
#ifndef HAVE_GDBM
  (void)db; (void)key;
  snprintf(err, errlen, "pop3d was built without GDBM");
  return -1;
#else
  GDBM_FILE g;
  datum k = { .dptr = (char *)key, .dsize = (int)strlen(key) };
  int ret = 0;

  g = numdb_begin(db, err, errlen);
  if (g == NULL)
    return -1;
  if (gdbm_delete(g, k) != 0 && gdbm_errno != GDBM_ITEM_NOT_FOUND) {
    snprintf(err, errlen, "%s", gdbm_strerror(gdbm_errno));
    ret = -1;
  }
  ret = numdb_end(g, ret, err, errlen);
  return ret;
#endif
}

long numdb_sweep(struct numdb *db, const char *prefix, numdb_keep_fn keep, void *arg,
                 char *err, size_t errlen)
{
#ifndef HAVE_GDBM
  (void)db; (void)prefix; (void)keep; (void)arg;
  snprintf(err, errlen, "pop3d was built without GDBM");
  return -1;
#else
  size_t plen = strlen(prefix), ngone = 0, cap = 0;
  datum *gone = NULL;
  GDBM_FILE g;
  datum k;
  long kept = 0;
  int ret = 0;

  g = numdb_begin(db, err, errlen);
  if (g == NULL)
    return -1;
  /* Deleting while walking the keys may skip some: collect, then delete. */
  for (k = gdbm_firstkey(g); k.dptr != NULL;) {
    datum next = gdbm_nextkey(g, k), v;
    uint64_t n;
    bool drop = false;

    if (k.dsize >= 0 && (size_t)k.dsize >= plen && memcmp(k.dptr, prefix, plen) == 0) {
      v = gdbm_fetch(g, k);
      drop = v.dptr == NULL || numdb_parse(v.dptr, (size_t)v.dsize, &n) < 0 ||
             !keep(n, arg);
      free(v.dptr);
      kept += !drop;
    }
    if (drop) {
      if (ngone == cap) {
        cap = cap ? 2 * cap : 64;
        gone = util_xreallocarray(gone, cap, sizeof *gone);
      }
      gone[ngone++] = k;
    } else {
      free(k.dptr);
    }
    k = next;
  }
  for (size_t i = 0; i < ngone; i++) {
    if (gdbm_delete(g, gone[i]) != 0 && gdbm_errno != GDBM_ITEM_NOT_FOUND && ret == 0) {
      snprintf(err, errlen, "%s", gdbm_strerror(gdbm_errno));
      ret = -1;
    }
    free(gone[i].dptr);
  }
  free(gone);
  ret = numdb_end(g, ret, err, errlen);
  return ret < 0 ? -1 : kept;
#endif
}

static bool numdb_set(uint64_t old, bool found, uint64_t *new_r, void *arg)
{
  (void)old;
  (void)found;
  *new_r = *(const uint64_t *)arg;
  return true;
}

int numdb_put(struct numdb *db, const char *key, uint64_t val, char *err, size_t errlen)
{
  uint64_t old;
  bool found;

  return numdb_update(db, key, &old, &found, numdb_set, &val, err, errlen);
}
