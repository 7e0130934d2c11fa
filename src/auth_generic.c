/* auth_generic.c - crypt(3) against the password field of getpwnam().
 *
 * A passwd entry whose password lives elsewhere ("x": shadow) is not this module's to
 * judge: it says NOUSER and lets `system` or `pam` decide.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <pwd.h>

#include "auth.h"
#include "auth_impl.h"

static enum auth_mod_result generic_authenticate(struct auth_ctx *ctx)
{
  struct passwd *pw;
  enum auth_mod_result r = auth_getpwnam(ctx, ctx->user, &pw);

  if (r != AUTH_MOD_OK)
    return r;
  if (!auth_hash_usable(pw->pw_passwd)) {
    ctx->error = "no password hash in passwd";
    return AUTH_MOD_NOUSER;
  }
  return auth_check_hash(ctx, pw->pw_passwd);
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
