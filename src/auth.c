/* auth.c - the front of the authentication and authorization modules.
 *
 * auth_login() runs, as Mailutils does, the authorization list for the name first when
 * an authentication module needs what it finds (generic checks its password hash, sql
 * asks getpass for its name), then the authentication list (first success wins), then
 * uses that entry, or runs the authorization list for the canonical name a module
 * reported (PAM); auth_authorize() runs only the authorization list, for logins (APOP,
 * CRAM-MD5, SCRAM-SHA-256) whose secret was checked elsewhere.
 * A refused login costs the same whoever the user: one full-cost check (a password
 * hash, or the PAM call) for each password store of the list, made up with dummy hashes
 * of the site's kind where a module had nothing to check (unknown user, locked
 * account...); and an unknown user logs what a wrong password logs (AUTH_BAD_LOGIN).
 * So neither the time of the answer nor the log tells whether the user exists.
 * sql and ldap are loadable modules (module.h): auth_modules_load() loads those the
 * lists use, and their entries here call through what it loaded.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_CRYPT_H
# include <crypt.h>
#endif
#ifdef HAVE_SHADOW_H
# include <shadow.h>
#endif

#include "auth.h"
#include "auth_impl.h"
#include "auth_ldap.h"
#include "auth_sql.h"
#include "conf.h"
#include "log.h"
#include "module.h"
#include "params.h"
#include "util.h"

const char *const auth_modules[] = {
  "generic",
  "system",
#ifdef HAVE_PAM
  "pam",
#endif
#if defined(HAVE_MYSQL) || defined(HAVE_PGSQL)
  "sql",
#endif
  "virtdomain",
#ifdef HAVE_LDAP
  "ldap",
#endif
  NULL,
};

/* sql and ldap: their entries call through the modules auth_modules_load() loads. */
static const struct auth_module *sql_backend, *ldap_backend;

const struct auth_module auth_module_sql = {
  .name = "sql",
  .usable = auth_sql_usable,
  .backend = &sql_backend,
};

const struct auth_module auth_module_ldap = {
  .name = "ldap",
  .usable = auth_ldap_usable,
  .backend = &ldap_backend,
};

/* Every module this file knows, built or stub (the PAM stub says it is not built). */
static const struct auth_module *const module_table[] = {
  &auth_module_generic,
  &auth_module_system,
  &auth_module_pam,
  &auth_module_sql,
  &auth_module_virtdomain,
  &auth_module_ldap,
};

/* Mailutils modules pop3d does not build; conf_check() refuses them before serving. */
static const char *const modules_not_built[] = {
#if !defined(HAVE_MYSQL) && !defined(HAVE_PGSQL)
  "sql",
#endif
#ifndef HAVE_LDAP
  "ldap",
#endif
  "radius", "gsasl", "tls", NULL,
};

#ifndef CRYPT_OUTPUT_SIZE
# define CRYPT_OUTPUT_SIZE_MAX 384
#else
# define CRYPT_OUTPUT_SIZE_MAX CRYPT_OUTPUT_SIZE
#endif

/* Reason of the last failure, valid until the next auth_login(). */
static char auth_error[256];

void auth_set_error(struct auth_ctx *ctx, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(ctx->errbuf, sizeof ctx->errbuf, fmt, ap);
  va_end(ap);
  ctx->error = ctx->errbuf;
}

bool auth_name_valid(const char *name)
{
  size_t n;

  if (name == NULL)
    return false;
  n = strlen(name);
  if (n == 0 || n > PARAMS_USER_MAX)
    return false;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (*p < 0x20 || *p == 0x7f || *p == '/')
      return false;
  return true;
}

bool auth_hash_usable(const char *hash)
{
  /* Real hashes are at least the 13 characters of DES crypt; "x", "*", "!", "*LK*",
   * "!!" and the like are placeholders or locks. */
  return hash != NULL && strlen(hash) >= 13 && hash[0] != '!' && hash[0] != '*';
}

/* crypt(3) password with setting.  Returns 1 when the result equals expect (expect may
 * be NULL: only the cost is wanted), 0 when it does not, -1 when crypt refused the
 * setting, -2 on allocation failure. */
static int run_crypt(const char *password, const char *setting, const char *expect)
{
  struct crypt_data *cd = calloc(1, sizeof *cd);
  const char *r;
  int res;

  if (cd == NULL)
    return -2;
  r = crypt_r(password, setting, cd);
  /* libxcrypt returns a "*0"/"*1" failure token (or NULL) for settings it can't use. */
  if (r == NULL || r[0] == '*')
    res = -1;
  else if (expect == NULL)
    res = 0;
  else
    res = util_streq_ct(r, expect) ? 1 : 0;
  util_wipe(cd, sizeof *cd);
  free(cd);
  return res;
}

/* The setting of the dummy hash.  auth_init() copies the kind and cost of the site's
 * own hashes; without it, the default method of the crypt library (what passwd uses
 * for new hashes), made once per process. */
static char dummy[CRYPT_OUTPUT_SIZE_MAX];

/* PAM_RHOST: the client of this process's connection. */
static char rhost[64];

void auth_set_rhost(const char *h)
{
  snprintf(rhost, sizeof rhost, "%s", h != NULL ? h : "");
}

const char *auth_rhost(void)
{
  return rhost[0] != '\0' ? rhost : NULL;
}

static const char *dummy_setting(void)
{
  if (dummy[0] == '\0') {
#ifdef CRYPT_GENSALT_OUTPUT_SIZE
    if (crypt_gensalt_rn(NULL, 0, NULL, 0, dummy, (int)sizeof dummy) == NULL ||
        dummy[0] == '*')
#endif
      snprintf(dummy, sizeof dummy, "%s", "$6$pop3dDummySalt$");
  }
  return dummy;
}

#ifdef HAVE_SHADOW_H
/* The method part of a hash: "$id$" up to the parameters, "" for DES. */
static size_t hash_method_len(const char *h)
{
  const char *p;

  if (h[0] != '$' || (p = strchr(h + 1, '$')) == NULL)
    return 0;
  return (size_t)(p + 1 - h);
}

#endif

void auth_init(void)
{
#ifdef HAVE_SHADOW_H
  /* The most common method among the first entries of the shadow database, and one
   * hash of that method (its salt and cost) as the dummy's setting. */
  enum { SAMPLE = 1000, KINDS = 8 };
  struct { char method[16]; char hash[CRYPT_OUTPUT_SIZE_MAX]; unsigned n; } k[KINDS];
  size_t nk = 0, best = 0;
  struct spwd *sp;
  unsigned seen = 0;

  memset(k, 0, sizeof k);
  setspent();
  while (seen < SAMPLE && (sp = getspent()) != NULL) {
    size_t ml, i;

    seen++;
    if (!auth_hash_usable(sp->sp_pwdp) || strlen(sp->sp_pwdp) >= sizeof k[0].hash)
      continue;
    ml = hash_method_len(sp->sp_pwdp);
    if (ml >= sizeof k[0].method)
      continue;
    for (i = 0; i < nk; i++)
      if (strlen(k[i].method) == ml && strncmp(k[i].method, sp->sp_pwdp, ml) == 0)
        break;
    if (i == nk) {
      if (nk == KINDS)
        continue;
      memcpy(k[nk].method, sp->sp_pwdp, ml);
      snprintf(k[nk].hash, sizeof k[nk].hash, "%s", sp->sp_pwdp);
      nk++;
    }
    k[i].n++;
  }
  endspent();
  for (size_t i = 1; i < nk; i++)
    if (k[i].n > k[best].n)
      best = i;
  if (nk > 0) {
    /* The method and cost of that hash, with a salt of our own: the dummy is never a
     * copy of a real entry (it would be root's, often, in every process's memory). */
    char setting[CRYPT_OUTPUT_SIZE_MAX];
    char *last;

    snprintf(setting, sizeof setting, "%s", k[best].hash);
    last = strrchr(setting, '$');
    if (last != NULL && last > setting) {
      char *salt = last - 1;
      static const char alphabet[] =
        "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
      unsigned char rnd[64];

      *last = '\0';
      while (salt > setting && *salt != '$')
        salt--;
      salt++;
      if (util_random(rnd, sizeof rnd) == 0 && strlen(salt) <= sizeof rnd) {
        for (size_t i = 0; salt[i] != '\0'; i++)
          salt[i] = alphabet[rnd[i] % 64];
        size_t l = strlen(setting);
        if (run_crypt("", setting, NULL) == 0 && l + 2 <= sizeof dummy) {
          memcpy(dummy, setting, l);
          dummy[l] = '$';
          dummy[l + 1] = '\0';
        }
      }
      util_wipe(rnd, sizeof rnd);
    }
    util_wipe(setting, sizeof setting);
  }
  util_wipe(k, sizeof k);
#endif
  (void)dummy_setting();
}

static void dummy_cost(const char *password)
{
  (void)run_crypt(password, dummy_setting(), NULL);
}

enum auth_mod_result auth_check_hash(struct auth_ctx *ctx, const char *hash)
{
  int r;

  /* generic checks the hash system, virtdomain or sql checks too: hash it once. */
  for (size_t i = 0; i < AUTH_FAILED_HASHES; i++)
    if (ctx->failed_hash[i] != NULL && strcmp(ctx->failed_hash[i], hash) == 0) {
      ctx->error = AUTH_BAD_LOGIN;
      return AUTH_MOD_DENIED;
    }
  r = run_crypt(ctx->password, hash, hash);
  switch (r) {
  case 1:
    ctx->hashed = true;
    return AUTH_MOD_OK;
  case 0:
    ctx->hashed = true;
    util_free_secret(ctx->failed_hash[AUTH_FAILED_HASHES - 1]);
    memmove(ctx->failed_hash + 1, ctx->failed_hash,
            (AUTH_FAILED_HASHES - 1) * sizeof ctx->failed_hash[0]);
    ctx->failed_hash[0] = util_xstrdup(hash);
    ctx->error = AUTH_BAD_LOGIN;
    return AUTH_MOD_DENIED;
  case -1:
    ctx->error = "password hash of an unsupported kind";
    return AUTH_MOD_DENIED;
  default:
    ctx->error = "out of memory";
    return AUTH_MOD_TEMP;
  }
}

enum auth_mod_result auth_getpwnam(struct auth_ctx *ctx, const char *name,
                                   struct passwd **pw)
{
  errno = 0;
  *pw = getpwnam(name);
  if (*pw != NULL)
    return AUTH_MOD_OK;
  switch (errno) {
  case 0: case ENOENT: case ESRCH: case EBADF: case EPERM:
    ctx->error = AUTH_BAD_LOGIN;
    return AUTH_MOD_NOUSER;
  default:
    auth_set_error(ctx, "getpwnam: %s", strerror(errno));
    return AUTH_MOD_TEMP;
  }
}

void auth_user_from_passwd(struct auth_user *out, const char *name,
                           const struct passwd *pw)
{
  out->name = util_xstrdup(name);
  out->uid = pw->pw_uid;
  out->gid = pw->pw_gid;
  out->home = util_xstrdup(pw->pw_dir != NULL ? pw->pw_dir : "");
  out->mailbox = NULL;
  out->passwd = util_xstrdup(pw->pw_passwd != NULL ? pw->pw_passwd : "");
}

void auth_user_free(struct auth_user *u)
{
  if (u == NULL)
    return;
  free(u->name);
  free(u->home);
  free(u->mailbox);
  util_free_secret(u->passwd);
  u->name = u->home = u->mailbox = u->passwd = NULL;
}

/* The functions that run for m: its own, or those of the loadable module loaded for it
 * (NULL: not loaded). */
static const struct auth_module *backend_of(const struct auth_module *m)
{
  return m->backend != NULL ? *m->backend : m;
}

/* Whether m can run in an authentication (authz false) or authorization list: it has
 * what that takes, and a configuration that lets it serve. */
static bool runnable(const struct conf *c, const struct auth_module *m, bool authz)
{
  const struct auth_module *b = backend_of(m);

  return b != NULL && (!authz || b->authorize != NULL) &&
         (m->usable == NULL || m->usable(c, authz));
}

static const struct auth_module *module_find(const char *name)
{
  for (size_t i = 0; i < sizeof module_table / sizeof module_table[0]; i++)
    if (strcmp(module_table[i]->name, name) == 0)
      return module_table[i];
  return NULL;
}

static bool module_not_built(const char *name)
{
  for (size_t i = 0; modules_not_built[i] != NULL; i++)
    if (strcmp(modules_not_built[i], name) == 0)
      return true;
  return false;
}

/* Where a configured list starts: after its last `clear'. */
static size_t list_start(const struct conf_strlist *l)
{
  size_t start = 0;

  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], "clear") == 0)
      start = i + 1;
  return start;
}

/* The modules to run, in order: the configured list after its last `clear`, or the
 * default order when nothing was configured; those without what they need (no
 * authorization, a module whose configuration can't serve, a loadable module not
 * loaded) left out.  Returns a malloc'd array of *n. */
static const struct auth_module **module_list(const struct conf *c,
                                              const struct conf_strlist *l, bool authz,
                                              size_t *n)
{
  const struct auth_module **v;
  size_t start = list_start(l);

  *n = 0;
  if (l->n == 0) {
    v = util_xcalloc(sizeof auth_modules / sizeof auth_modules[0], sizeof *v);
    for (size_t i = 0; auth_modules[i] != NULL; i++) {
      const struct auth_module *m = module_find(auth_modules[i]);
      if (m != NULL && runnable(c, m, authz))
        v[(*n)++] = m;
    }
    return v;
  }
  v = util_xcalloc(l->n, sizeof *v);
  for (size_t i = start; i < l->n; i++) {
    const struct auth_module *m = module_find(l->v[i]);
    if (m == NULL) {
      if (!module_not_built(l->v[i]))
        log_msg(LOG_WARNING, "auth: unknown module `%s' ignored", l->v[i]);
      continue;
    }
    if (runnable(c, m, authz))
      v[(*n)++] = m;
  }
  return v;
}

static bool listed(const struct auth_module *const *mods, size_t nmods,
                   const struct auth_module *m)
{
  for (size_t i = 0; i < nmods; i++)
    if (mods[i] == m)
      return true;
  return false;
}

/* Where m first comes in the authorization list (generic and system both read the
 * passwd database: the first of them), or nz. */
static size_t authz_pos(const struct auth_module *const *authz, size_t nz,
                        const struct auth_module *m)
{
  bool passwd = m == &auth_module_generic || m == &auth_module_system;

  for (size_t i = 0; i < nz; i++)
    if (authz[i] == m || (passwd && (authz[i] == &auth_module_generic ||
                                     authz[i] == &auth_module_system)))
      return i;
  return nz;
}

/* The full-cost checks a login whose entry came from authorization module p (NULL: no
 * entry) can make with the authentication list mods.  generic checks the entry's hash,
 * which system (passwd) or virtdomain check as well (auth_check_hash() hashes it once);
 * system or virtdomain check nothing for a name that an earlier authorization lookup of
 * theirs did not find. */
static unsigned class_checks(const struct auth_module *p,
                             const struct auth_module *const *mods, size_t nmods,
                             const struct auth_module *const *authz, size_t nz)
{
  size_t pp = p != NULL ? authz_pos(authz, nz, p) : nz;
  const struct auth_module *same = p == &auth_module_generic ? &auth_module_system : p;
  unsigned n = 0;

  if (same != &auth_module_system && same != &auth_module_virtdomain)
    same = NULL;                      /* sql, ldap: getpass may read another column */
  for (size_t i = 0; i < nmods; i++) {
    const struct auth_module *m = mods[i];

#ifndef HAVE_PAM
    if (m == &auth_module_pam)
      continue;
#endif
    if (listed(mods, i, m))
      continue;
    if (m == &auth_module_generic) {
      if (p != NULL && (same == NULL || !listed(mods, nmods, same)))
        n++;
    } else if (m == &auth_module_system || m == &auth_module_virtdomain) {
      if (authz_pos(authz, nz, m) >= pp)
        n++;
    } else {
      n++;
    }
  }
  return n;
}

/* The full-cost checks a refused login makes, known user or not: the most any known
 * user's own checks can be (a class of users for each authorization module), and at
 * least one.  A known user's checks count against it: it never costs more than an
 * unknown one. */
static unsigned checks_due(const struct conf *c, const struct auth_module *const *mods,
                           size_t nmods)
{
  const struct auth_module **authz;
  size_t nz;
  unsigned due;

  authz = module_list(c, &c->authorization, true, &nz);
  due = class_checks(NULL, mods, nmods, authz, nz);
  for (size_t i = 0; i < nz; i++) {
    unsigned n = class_checks(authz[i], mods, nmods, authz, nz);
    if (n > due)
      due = n;
  }
  free(authz);
  return due > 0 ? due : 1;
}

static enum auth_status finish(struct auth_ctx *ctx, enum auth_status st,
                               const char *reason, const char **error_r)
{
  snprintf(auth_error, sizeof auth_error, "%s", reason != NULL ? reason : "");
  *error_r = st == AUTH_OK ? NULL : auth_error;
  for (size_t i = 0; i < AUTH_FAILED_HASHES; i++) {
    util_free_secret(ctx->failed_hash[i]);
    ctx->failed_hash[i] = NULL;
  }
  free(ctx->canon);
  ctx->canon = NULL;
  util_wipe(ctx->errbuf, sizeof ctx->errbuf);
  if (st == AUTH_OK)
    for (size_t i = 0; i < sizeof module_table / sizeof module_table[0]; i++) {
      const struct auth_module *b = backend_of(module_table[i]);

      if (b != NULL && b->release != NULL)
        b->release();
    }
  return st;
}

/* The authorization list for name: the first module that knows the user fills *out.
 * OK, NOUSER (nobody knows it; *reason says so) or TEMP (*reason: the first module
 * that could not answer); AUTH_MOD_DENIED when the list is empty. */
static enum auth_mod_result lookup(struct auth_ctx *ctx, const char *name,
                                   struct auth_user *out, char *reason, size_t size)
{
  const struct auth_module **mods;
  size_t nmods;

  snprintf(reason, size, "%s", "authenticated, but no authorization module knows the user");
  mods = module_list(ctx->conf, &ctx->conf->authorization, true, &nmods);
  for (size_t i = 0; i < nmods; i++) {
    enum auth_mod_result r;

    ctx->error = NULL;
    r = backend_of(mods[i])->authorize(ctx, name, out);
    if (r == AUTH_MOD_OK) {
      free(mods);
      return AUTH_MOD_OK;
    }
    auth_user_free(out);
    if (r == AUTH_MOD_TEMP && ctx->entry_result != AUTH_MOD_TEMP) {
      snprintf(reason, size, "%s: %s", mods[i]->name,
               ctx->error ? ctx->error : "temporary failure");
      ctx->entry_result = AUTH_MOD_TEMP;
    }
  }
  free(mods);
  ctx->error = NULL;
  if (nmods == 0) {
    snprintf(reason, size, "%s", "no usable authorization module configured");
    return AUTH_MOD_DENIED;
  }
  return ctx->entry_result == AUTH_MOD_TEMP ? AUTH_MOD_TEMP : AUTH_MOD_NOUSER;
}

/* The authorization list for name (already authenticated).  Ends ctx (finish()). */
static enum auth_status authorize(struct auth_ctx *ctx, const char *name,
                                  struct auth_user *out, const char **error_r)
{
  char reason[sizeof ctx->errbuf];
  enum auth_mod_result r;

  ctx->entry_result = AUTH_MOD_NOUSER;
  r = lookup(ctx, name, out, reason, sizeof reason);
  switch (r) {
  case AUTH_MOD_OK:
    return finish(ctx, AUTH_OK, NULL, error_r);
  case AUTH_MOD_TEMP:
    return finish(ctx, AUTH_TEMP, reason, error_r);
  case AUTH_MOD_DENIED:
    return finish(ctx, AUTH_PERM, reason, error_r);
  default:
    return finish(ctx, AUTH_FAIL, reason, error_r);
  }
}

/* Authentication modules that read what the authorization list found. */
static bool needs_entry(const struct auth_module *const *mods, size_t nmods)
{
  return listed(mods, nmods, &auth_module_generic) || listed(mods, nmods, &auth_module_sql);
}

enum auth_status auth_login(const struct conf *c, const char *user, const char *password,
                            struct auth_user *out, const char **error_r)
{
  struct auth_ctx ctx;
  const struct auth_module **mods;
  size_t nmods;
  char denied[sizeof ctx.errbuf] = "", temp[sizeof ctx.errbuf] = "";
  char entry_reason[sizeof ctx.errbuf] = "";
  bool authenticated = false;
  const char *name;
  unsigned due;

  memset(&ctx, 0, sizeof ctx);
  ctx.conf = c;
  ctx.user = user;
  ctx.password = password != NULL ? password : "";
  ctx.entry_result = AUTH_MOD_NOUSER;
  memset(out, 0, sizeof *out);
  out->uid = (uid_t)-1;
  out->gid = (gid_t)-1;

  mods = module_list(c, &c->authentication, false, &nmods);
  due = checks_due(c, mods, nmods);
  /* A name no module could take: its syntax is the client's choice, so the log may
   * say so; the cost is that of any refusal. */
  if (!auth_name_valid(user)) {
    free(mods);
    for (; due > 0; due--)
      dummy_cost(ctx.password);
    return finish(&ctx, AUTH_FAIL, "invalid user name", error_r);
  }
  /* Mailutils' order: who the user is (mu_get_auth_by_name), then the password
   * against that (mu_authenticate).  The lookup is the same work, known user or not. */
  if (needs_entry(mods, nmods)) {
    ctx.entry_result = lookup(&ctx, user, out, entry_reason, sizeof entry_reason);
    if (ctx.entry_result == AUTH_MOD_OK)
      ctx.entry = out;
    else if (ctx.entry_result == AUTH_MOD_TEMP)
      snprintf(temp, sizeof temp, "%s", entry_reason);
  }
  for (size_t i = 0; i < nmods && !authenticated; i++) {
    enum auth_mod_result r;

    ctx.error = NULL;
    ctx.hashed = false;
    r = backend_of(mods[i])->authenticate(&ctx);
    if (ctx.hashed && due > 0)
      due--;
    switch (r) {
    case AUTH_MOD_OK:
      authenticated = true;
      break;
    case AUTH_MOD_DENIED:
      /* The first refusal of a known user is the most telling reason. */
      if (denied[0] == '\0')
        snprintf(denied, sizeof denied, "%s", ctx.error ? ctx.error : AUTH_BAD_LOGIN);
      break;
    case AUTH_MOD_TEMP:
      if (temp[0] == '\0')
        snprintf(temp, sizeof temp, "%s: %s", mods[i]->name,
                 ctx.error ? ctx.error : "temporary failure");
      break;
    case AUTH_MOD_NOUSER:
      /* A module that authenticated someone else's name must not leak a canon. */
      free(ctx.canon);
      ctx.canon = NULL;
      break;
    }
  }
  free(mods);

  if (!authenticated) {
    auth_user_free(out);
    for (; due > 0; due--)
      dummy_cost(ctx.password);
    if (nmods == 0)
      return finish(&ctx, AUTH_PERM, "no usable authentication module configured",
                    error_r);
    /* A module that could not answer might have said yes: whether another one knew
     * the user must not turn that into a refusal. */
    if (temp[0] != '\0')
      return finish(&ctx, AUTH_TEMP, temp, error_r);
    if (denied[0] != '\0')
      return finish(&ctx, AUTH_FAIL, denied, error_r);
    return finish(&ctx, AUTH_FAIL, AUTH_BAD_LOGIN, error_r);
  }

  name = ctx.canon != NULL ? ctx.canon : user;
  if (ctx.entry != NULL && strcmp(name, user) == 0) {
    /* The hash has done its work: the monitor keeps the entry for the session. */
    util_free_secret(out->passwd);
    out->passwd = NULL;
    return finish(&ctx, AUTH_OK, NULL, error_r);
  }
  auth_user_free(out);
  ctx.entry = NULL;
  return authorize(&ctx, name, out, error_r);
}

enum auth_status auth_authorize(const struct conf *c, const char *name,
                                struct auth_user *out, const char **error_r)
{
  struct auth_ctx ctx;

  memset(&ctx, 0, sizeof ctx);
  ctx.conf = c;
  ctx.user = name;
  ctx.password = "";
  memset(out, 0, sizeof *out);
  out->uid = (uid_t)-1;
  out->gid = (gid_t)-1;
  if (!auth_name_valid(name))
    return finish(&ctx, AUTH_FAIL, "invalid user name", error_r);
  return authorize(&ctx, name, out, error_r);
}

/* Whether a list (as module_list() reads it) names the module. */
static bool list_names(const struct conf_strlist *l, const char *name)
{
  if (l->n == 0) {
    for (size_t i = 0; auth_modules[i] != NULL; i++)
      if (strcmp(auth_modules[i], name) == 0)
        return true;
    return false;
  }
  for (size_t i = list_start(l); i < l->n; i++)
    if (strcmp(l->v[i], name) == 0)
      return true;
  return false;
}

int auth_modules_load(const struct conf *c, FILE *err)
{
  int n = 0;

  for (size_t i = 0; i < sizeof module_table / sizeof module_table[0]; i++) {
    const struct auth_module *m = module_table[i];
    const struct pop3d_module *mod;
    const char *e;

    if (m->backend == NULL || *m->backend != NULL)
      continue;
    if (!(list_names(&c->authentication, m->name) && m->usable(c, false)) &&
        !(list_names(&c->authorization, m->name) && m->usable(c, true)))
      continue;
    mod = module_load(m->name, &e);
    if (mod == NULL || mod->auth == NULL) {
      fprintf(err, "%s: %s\n", m->name, mod == NULL ? e : "not an authentication module");
      n++;
      continue;
    }
    *m->backend = mod->auth;
  }
  return n;
}
