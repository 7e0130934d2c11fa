/* apop.h - the APOP secrets database (apop-database-file), its safety checks, and the
 * APOP (RFC 1939 section 7) and CRAM-MD5 (RFC 2195) digests made from its secrets
 * (SCRAM-SHA-256 uses them too: sasl.h).
 *
 * The database is what GNU Mailutils' popauth writes: a GDBM file whose keys are user
 * names and whose values are the secrets, both without a terminating NUL.  A file that
 * is not GDBM is read as plain text, one `user:secret' a line, `#' comments, as
 * Mailutils reads it when built without DBM.  The file is opened first and the opened
 * descriptor is checked (apop-database-safety, apop-database-owner): no check-then-use
 * gap.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_APOP_H
#define POP3D_APOP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "auth.h"
#include "md5.h"
#include "util.h"

struct conf;
struct conf_strlist;

/* Mailutils' defaults: the DBM file when built with GDBM, the plain-text one without. */
#ifdef HAVE_GDBM
# define APOP_DEFAULT_FILE "/etc/apop.db"
#else
# define APOP_DEFAULT_FILE "/etc/apop.passwd"
#endif

/* A plain-text database larger than this is refused (it is read whole). */
#define APOP_TEXT_MAX (16u * 1024 * 1024)
/* Longest secret used; longer ones are refused as malformed. */
#define APOP_SECRET_MAX 1024

/* Safety checks (apop-database-safety names, plus the owner check that `all' implies). */
enum apop_check {
  APOP_CHECK_OWNER = 1u << 0,      /* owned by apop-database-owner (default: our euid) */
  APOP_CHECK_GWRFIL = 1u << 1,     /* not group-writable */
  APOP_CHECK_AWRFIL = 1u << 2,     /* not world-writable */
  APOP_CHECK_GRDFIL = 1u << 3,     /* not group-readable */
  APOP_CHECK_ARDFIL = 1u << 4,     /* not world-readable */
  APOP_CHECK_LINKWRDIR = 1u << 5,  /* not a symlink in a group- or world-writable dir */
  APOP_CHECK_GWRDIR = 1u << 6,     /* not in a group-writable directory */
  APOP_CHECK_AWRDIR = 1u << 7,     /* not in a world-writable directory */
  APOP_CHECK_ALL = (1u << 8) - 1,
};

/* The checks a list of names selects.  Names are applied in order: `all', `none', NAME
 * or +NAME (add), -NAME (remove).  A list that starts with + or - modifies the default
 * (all); one that starts with a bare name starts from nothing.  Unknown names (the
 * configuration parser has already refused them) are ignored. */
unsigned apop_checks(const struct conf_strlist *names);

/* Open path (a file name, or a gdbm:// or file:// URL) for reading and run checks on
 * the opened descriptor and its directory.  Returns the descriptor (close-on-exec), or
 * -1 with *error_r: errno is ENOENT when the file does not exist, EPERM when a check
 * failed, something else otherwise. */
int apop_open_checked(const char *path, unsigned checks, uid_t owner,
                      const char **error_r) WUR;

struct apop_db;

/* Open the configured database (apop-database-file, -owner, -safety).  0, or -1 with
 * *error_r and errno as apop_open_checked (EINVAL: bad apop-database-owner). */
int apop_db_open(const struct conf *c, struct apop_db **db_r, const char **error_r) WUR;
int apop_db_open_path(const char *path, unsigned checks, uid_t owner,
                      struct apop_db **db_r, const char **error_r) WUR;
/* The secret of user: 1 with *secret_r (malloc'd; free with util_free_secret), 0 when
 * the user has none, -1 on a read error (*error_r). */
int apop_db_lookup(struct apop_db *db, const char *user, char **secret_r,
                   const char **error_r) WUR;
void apop_db_close(struct apop_db *db);

/* Is the configured database there and safe to use (so APOP, CRAM-MD5 and
 * SCRAM-SHA-256 may be offered)?  Logs why not, except when the file simply does not exist. */
bool apop_available(const struct conf *c);

/* The user's secret from the configured database.  AUTH_OK with *secret_r;
 * AUTH_FAIL with *secret_r NULL when the user has no secret (*error_r is
 * AUTH_BAD_LOGIN, the reason of a wrong digest too); AUTH_TEMP / AUTH_PERM when the
 * database can't be used (*error_r says why). */
enum auth_status apop_secret(const struct conf *c, const char *user, char **secret_r,
                             const char **error_r) WUR;

/* APOP: is digest (32 hex digits, either case) MD5(stamp secret)?  CRAM-MD5: is it
 * HMAC-MD5 keyed with secret of challenge?  secret NULL (a user without one) costs the
 * same work against a dummy secret and is false.  Constant-time comparison. */
/* Is p an MD5 digest in hex (32 digits of either case), as APOP and CRAM-MD5 send? */
bool apop_is_digest(const char *p);
bool apop_digest_ok(const char *stamp, const char *secret, const char *digest);
bool apop_cram_ok(const char *challenge, const char *secret, const char *digest);

/* A user authenticated by a secret from this database is then authorized by
 * auth_authorize() (auth.h), as auth_login() authorizes after a password. */

/* The uid apop-database-owner names (a user name or a number), or our euid when unset.
 * 0 or -1. */
int apop_owner(const struct conf *c, uid_t *uid_r, const char **error_r) WUR;

#endif
