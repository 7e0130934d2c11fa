/* auth_generic.c - Mailutils' generic module: crypt(3) against the password hash of the
 * entry the authorization list found for the user (the passwd database, a virtdomain
 * file, sql, ldap), as Mailutils' mu_authenticate_generic() does.
 *
 * An entry whose password lives elsewhere ("x": shadow) or none at all is not this
 * module's to judge: it says NOUSER and lets `system' or `pam' decide.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <pwd.h>

#include "auth.h"
#include "auth_impl.h"

static enum auth_mod_result generic_authenticate(struct auth_ctx *ctx)
{
  if (ctx->entry == NULL) {
    /* The lookup could not answer: neither can this module. */
    if (ctx->entry_result == AUTH_MOD_TEMP) {
      ctx->error = "the authorization lookup failed";
      return AUTH_MOD_TEMP;
    }
    ctx->error = AUTH_BAD_LOGIN;
    return AUTH_MOD_NOUSER;
  }
  if (!auth_hash_usable(ctx->entry->passwd)) {
    ctx->error = "no password hash in the user's entry";
    return AUTH_MOD_NOUSER;
  }
  return auth_check_hash(ctx, ctx->entry->passwd);
}

/* Shared with `system`: both authorize from getpwnam(). */
static enum auth_mod_result generic_authorize(struct auth_ctx *ctx, const char *name,
                                              struct auth_user *out)
{
  struct passwd *pw;
  enum auth_mod_result r = auth_getpwnam(ctx, name, &pw);

  if (r != AUTH_MOD_OK)
    return r;
  auth_user_from_passwd(out, name, pw);
  return AUTH_MOD_OK;
}

const struct auth_module auth_module_generic = {
  .name = "generic",
  .authenticate = generic_authenticate,
  .authorize = generic_authorize,
};
