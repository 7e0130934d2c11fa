/* spool.h - what a session needs of its maildrop's directory: create a file there
 * (dotlock, temporary copy, index) or a nameless one (O_TMPFILE) to name later, remove,
 * rename, link and touch one.
 *
 * A session has no group beyond its user's.  When the maildrop's directory is a shared
 * spool it can't write (Debian's /var/mail is root:mail 2775), it asks its monitor
 * (spool_set_broker()): the monitor does the operation as root, in that directory only,
 * on the maildrop's own names only (spool_name_allowed()), and hands created files over
 * owned by the user.  Elsewhere (a Maildir or mbox in the user's home) the calls are the
 * plain system calls.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_SPOOL_H
#define POP3D_SPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

enum spool_op {
  SPOOL_CREATE = 1,   /* name: O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600 */
  SPOOL_UNLINK,       /* name */
  SPOOL_RENAME,       /* name -> to */
  SPOOL_LINK,         /* name -> to */
  SPOOL_TOUCH,        /* name: its times to now, without following a link */
  SPOOL_TMPFILE,      /* a nameless file (O_TMPFILE) in the directory, mode 0600 */
  SPOOL_LINKFD,       /* the nameless file made last -> name (never replacing one) */
};

/* The session side: paths in dir (no trailing slash) go to the monitor on fd. */
void spool_set_broker(int fd, const char *dir);

/* As open(path, O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC|O_NOCTTY, 0600), unlink,
 * rename, link and utimensat(AT_SYMLINK_NOFOLLOW): -1 with errno on failure. */
int spool_create(const char *path) WUR;
int spool_unlink(const char *path);
/* Remove name from directory dir, open on dirfd (unlinkat(), never following a link). */
int spool_unlink_at(int dirfd, const char *dir, const char *name);
int spool_rename(const char *from, const char *to) WUR;
int spool_link(const char *from, const char *to) WUR;
int spool_touch(const char *path);

/* A nameless file in directory dir (O_TMPFILE), O_RDWR, mode 0600, the user's: it
 * vanishes with the process unless spool_link_fd() names it.  -1 with errno on failure;
 * EOPNOTSUPP, EISDIR or EINVAL where the filesystem or the kernel lacks nameless files
 * (or /proc is missing to name them): use spool_create() then. */
int spool_tmpfile(const char *dir) WUR;
/* Give the nameless file fd from spool_tmpfile() the name path in the same directory,
 * which must not exist (EEXIST). */
int spool_link_fd(int fd, const char *path) WUR;

/* The monitor side.  May a session whose maildrop is called base do op on name (and
 * to)?  Names are plain file names of the maildrop's directory: the dotlock
 * "base.lock", temporary copies ".base.pop3d-XXXXXX", the index ".base.pop3d-index" and
 * its temporary ".base.pop3d-index.XXXXXXXX"; renames and links only from a temporary
 * to base or to the index; a nameless file (name "") becomes a temporary copy, base or
 * the dotlock. */
bool spool_name_allowed(enum spool_op op, const char *base, const char *name, const char *to);

/* Is name a temporary file of the maildrop base (a copy or an index being written)? */
bool spool_is_temp_name(const char *base, const char *name);

/* The directory and file name of a maildrop URL (mbox:, or a path); NULL when it has
 * none.  *base_r points into the result's storage (free the result only). */
char *spool_split(const char *url, const char **base_r);

/* The monitor: open the directory of a maildrop for brokering, without following any
 * symbolic link, and only when the session needs it (root-owned, group-writable, not the
 * user's).  The fd, or -1 (then the session does without). */
int spool_broker_dir(const char *dir, uid_t uid);

/* The monitor: carry out one request of its session (already checked by
 * spool_name_allowed()) in dirfd for uid.  Returns 0 or an errno; *fd_r gets a created
 * file (or -1).  SPOOL_LINKFD names the file of the last SPOOL_TMPFILE, whose descriptor
 * the monitor keeps until then. */
int spool_serve(int dirfd, const char *base, uid_t uid, enum spool_op op, const char *name,
                const char *to, int *fd_r);

#endif
