/* auth_impl.h - the interface between auth.c and its backends (auth_*.c).
 *
 * A backend answers for one user at a time.  "I don't know this user" (NOUSER) lets the
 * next module of the list try; DENIED means the user is known and the credentials were
 * refused; TEMP means the backend could not answer (server-side trouble).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_AUTH_IMPL_H
#define POP3D_AUTH_IMPL_H

#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "util.h"

struct conf;

enum auth_mod_result {
  AUTH_MOD_OK,
  AUTH_MOD_NOUSER,   /* not this module's user, or it can't decide: try the next */
  AUTH_MOD_DENIED,   /* the user is known and was refused (bad password, expired...) */
  AUTH_MOD_TEMP,     /* the module could not answer */
};

/* Hashes that did not match in one login, each checked once. */
#define AUTH_FAILED_HASHES 4

/* State of one auth_login() call, shared by the modules it runs. */
struct auth_ctx {
  const struct conf *conf;
  const char *user;         /* the name as the client gave it (already validated) */
  const char *password;
  char *canon;              /* canonical name set by the authenticating module, or NULL */
  /* As Mailutils, the authorization list looks the user up before the authentication
   * list runs: entry is what it found (its passwd is what `generic' checks; its name
   * the one `sql' asks getpass for), NULL if nobody knows the user or the lookup was
   * not needed; entry_result says which (TEMP: a module could not answer). */
  const struct auth_user *entry;
  enum auth_mod_result entry_result;
  bool hashed;              /* a full-cost password check was made (crypt or PAM) */
  char *failed_hash[AUTH_FAILED_HASHES];  /* hashes that did not match: not checked twice */
  const char *error;        /* reason of the last module, for the log */
  char errbuf[192];         /* storage for a formatted reason */
};

struct auth_module {
  const char *name;
  /* Check ctx->password for ctx->user.  May set ctx->canon (malloc'd). */
  enum auth_mod_result (*authenticate)(struct auth_ctx *ctx);
  /* Fill out for name (the canonical name).  NULL: the module does no authorization. */
  enum auth_mod_result (*authorize)(struct auth_ctx *ctx, const char *name,
                                    struct auth_user *out);
  /* Whether the configuration gives the module what it needs to authenticate (authz
   * false) or authorize (true); a module that can't is left out of the lists.  NULL:
   * always. */
  bool (*usable)(const struct conf *c, bool authz);
  /* Let go of what the module keeps between attempts (a database connection) once a
   * login succeeded.  NULL: nothing kept. */
  void (*release)(void);
  /* A module in a loadable module (sql, ldap: module.h): where auth_modules_load() puts
   * the loaded module's own entry, whose functions auth.c calls in place of the three
   * above (NULL here).  usable() stays this entry's, and judges the configuration; the
   * module is left out of the lists while it is not loaded.  NULL for the modules built
   * into pop3d. */
  const struct auth_module **backend;
};

/* PAM_RHOST of this connection (auth_set_rhost()), or NULL. */
const char *auth_rhost(void);

extern const struct auth_module auth_module_generic;
extern const struct auth_module auth_module_system;
extern const struct auth_module auth_module_pam;
extern const struct auth_module auth_module_virtdomain;
extern const struct auth_module auth_module_sql;
extern const struct auth_module auth_module_ldap;

/* True if hash can be given to crypt(3): not empty, not a placeholder such as "x",
 * "*" or a locked "!..." entry. */
bool auth_hash_usable(const char *hash);

/* crypt(3) ctx->password with hash as setting and compare in constant time.  OK or
 * DENIED (AUTH_BAD_LOGIN); a hash crypt can't use is DENIED without counting as a
 * full-cost check. */
enum auth_mod_result auth_check_hash(struct auth_ctx *ctx, const char *hash);

/* getpwnam() with its errors sorted: OK (*pw set), NOUSER, TEMP (ctx->error set). */
enum auth_mod_result auth_getpwnam(struct auth_ctx *ctx, const char *name,
                                   struct passwd **pw);

/* Fill out from a passwd entry; name is the canonical name to record. */
void auth_user_from_passwd(struct auth_user *out, const char *name,
                           const struct passwd *pw);

/* Set ctx->error to a formatted reason (kept in ctx->errbuf). */
void auth_set_error(struct auth_ctx *ctx, const char *fmt, ...) PRINTF(2, 3);

#endif
