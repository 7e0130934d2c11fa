/* auth_system.c - getpwnam() and the shadow file, crypt(3).
 *
 * Honours what shadow(5) says about the account: a locked hash ("!...") refuses, an
 * expired account (sp_expire) or a password inactive past its grace period refuses,
 * the same tests pam_unix makes.  Expiry is checked only after the password matched,
 * so that it tells nothing to someone without the password.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <time.h>
#ifdef HAVE_SHADOW_H
# include <shadow.h>
#endif

#include "auth.h"
#include "auth_impl.h"

struct system_aging {
  long lstchg, max, inact, expire;   /* days, -1 = unset (shadow(5)) */
};

static enum auth_mod_result check_aging(struct auth_ctx *ctx, const struct system_aging *a)
{
  long today = (long)(time(NULL) / 86400);

  if (a->expire != -1 && today >= a->expire) {
    ctx->error = "account expired";
    return AUTH_MOD_DENIED;
  }
  if (a->lstchg > 0 && a->max != -1 && a->inact != -1 &&
      today - a->lstchg > a->max && today - a->lstchg > a->max + a->inact) {
    ctx->error = "account expired (password inactive)";
    return AUTH_MOD_DENIED;
  }
  return AUTH_MOD_OK;
}

static enum auth_mod_result system_authenticate(struct auth_ctx *ctx)
{
  struct passwd *pw;
  const char *hash;
  struct system_aging aging = { -1, -1, -1, -1 };
  enum auth_mod_result r = auth_getpwnam(ctx, ctx->user, &pw);

  if (r != AUTH_MOD_OK)
    return r;
  hash = pw->pw_passwd != NULL ? pw->pw_passwd : "";
  if (strlen(hash) <= 1) {
    /* "x" (or "*", ""): the hash is in the shadow file. */
#ifdef HAVE_SHADOW_H
    struct spwd *sp;

    errno = 0;
    sp = getspnam(ctx->user);
    if (sp == NULL) {
      switch (errno) {
      case 0: case ENOENT: case ESRCH: case EBADF:
        ctx->error = "no shadow entry";
        return AUTH_MOD_NOUSER;
      default:
        auth_set_error(ctx, "getspnam: %s", strerror(errno));
        return AUTH_MOD_TEMP;
      }
    }
    hash = sp->sp_pwdp != NULL ? sp->sp_pwdp : "";
    aging.lstchg = sp->sp_lstchg;
    aging.max = sp->sp_max;
    aging.inact = sp->sp_inact;
    aging.expire = sp->sp_expire;
#else
    ctx->error = "no shadow support";
    return AUTH_MOD_NOUSER;
#endif
  }
  if (hash[0] == '!') {
    ctx->error = "account locked";
    return AUTH_MOD_DENIED;
  }
  if (!auth_hash_usable(hash)) {
    ctx->error = hash[0] == '\0' ? "account has no password" : "account disabled";
    return AUTH_MOD_DENIED;
  }
  r = auth_check_hash(ctx, hash);
  if (r != AUTH_MOD_OK)
    return r;
  return check_aging(ctx, &aging);
}

static enum auth_mod_result system_authorize(struct auth_ctx *ctx, const char *name,
                                             struct auth_user *out)
{
  struct passwd *pw;
  enum auth_mod_result r = auth_getpwnam(ctx, name, &pw);

  if (r != AUTH_MOD_OK)
    return r;
  auth_user_from_passwd(out, name, pw);
  return AUTH_MOD_OK;
}

const struct auth_module auth_module_system = {
  .name = "system",
  .authenticate = system_authenticate,
  .authorize = system_authorize,
};
