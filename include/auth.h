/* auth.h - one front for every authentication and authorization module.
 *
 * Modules (auth { authentication LIST; authorization LIST; }):
 *   generic   crypt(3) against the hash of the entry the authorization list found
 *   system    getpwnam() + shadow, crypt(3)
 *   pam       Linux-PAM, service `pam { service NAME; }` (default gnu-pop3d)
 *   sql       MySQL/MariaDB or PostgreSQL: Mailutils' getpwnam and getpass queries
 *             (a loadable module: auth_modules_load())
 *   virtdomain  user@domain (user!domain, user:domain, user%domain) against DIR/domain
 *             passwd-format files
 *   ldap      an LDAP directory (a loadable module)
 * The first module that says yes wins.  An unknown user costs the same as a known one
 * with a wrong password, gets the same answer and logs the same reason.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_AUTH_H
#define POP3D_AUTH_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "util.h"

struct conf;

struct auth_user {
  char *name;      /* the user's canonical name */
  uid_t uid;
  gid_t gid;
  char *home;
  char *mailbox;   /* maildrop URL from the authorization module, or NULL: use config */
  char *passwd;    /* the password hash the authorization module found (virtdomain, sql,
                      ldap), which `authentication generic' checks; NULL: none; wiped */
};

enum auth_status {
  AUTH_OK = 0,
  AUTH_FAIL = -1,    /* bad user or password: [AUTH] */
  AUTH_TEMP = -2,    /* server-side trouble: [SYS/TEMP] */
  AUTH_PERM = -3,    /* configuration selects something unusable: [SYS/PERM] */
};

/* The reason of a refused login, whether the user is unknown or the password (or the
 * APOP secret's digest) wrong: the log tells no more than the answer which names exist.
 * Locked or expired accounts and server trouble have reasons of their own. */
#define AUTH_BAD_LOGIN "bad user name or password"

/* Call once before serving, as root and before chroot or fork: makes the dummy hash
 * that unknown users cost of the same kind and cost as the site's own (the most
 * common method in the shadow database), or of the crypt library's default method.
 * Optional: without it the library default is used. */
void auth_init(void);

/* Load the modules (module.h) of the sql and ldap backends that the configuration's
 * lists use (the default lists too), once per process: pop3d calls it with the
 * configuration, in the listener or inetd process before it forks, so that every
 * process of a connection finds them loaded, and no process of a site that uses
 * neither maps their libraries.  One line per module that can't be loaded on err
 * ("sql: can't load module FILE: why"); returns their number. */
int auth_modules_load(const struct conf *c, FILE *err) WUR;

/* The client's address (numeric host) for PAM_RHOST, or NULL when unknown; set once per
 * connection by the monitor before auth_login().  PAM_TTY is "pop3". */
void auth_set_rhost(const char *rhost);

/* Authenticate user with password, then authorize (fill *out).  The password is not
 * kept.  *error_r gets a reason for the log (never shown to the client), valid until
 * the next call.  On failure *out holds nothing to free. */
enum auth_status auth_login(const struct conf *c, const char *user, const char *password,
                            struct auth_user *out, const char **error_r) WUR;
void auth_user_free(struct auth_user *u);

/* Authorize a user whose credentials were checked elsewhere (APOP, CRAM-MD5 and
 * SCRAM-SHA-256 check a secret of the APOP database): the `authorization' list alone,
 * as auth_login() runs it after a password.  Same results and *error_r as
 * auth_login(); an invalid name is AUTH_FAIL. */
enum auth_status auth_authorize(const struct conf *c, const char *name,
                                struct auth_user *out, const char **error_r) WUR;

/* A user name auth_login() accepts: 1 to PARAMS_USER_MAX bytes, no control character,
 * no '/' (':' separates a virtual domain, as `!' and `@' do).  (auth_login() checks it itself; exported for early checks.) */
bool auth_name_valid(const char *name);

/* Names of modules this build has, in Mailutils' default order, NULL-terminated. */
extern const char *const auth_modules[];

#endif
