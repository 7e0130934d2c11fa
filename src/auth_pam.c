/* auth_pam.c - Linux-PAM authentication (service `pam { service NAME; }`).
 *
 * PAM has no authorization here: a PAM-authenticated user is authorized by the
 * authorization list (getpwnam) under the name PAM reports as PAM_USER, which modules
 * may have changed (canonical case, realm stripped...).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_impl.h"
#include "conf.h"
#include "params.h"

#ifdef HAVE_PAM
#include <security/pam_appl.h>

struct pam_appdata {
  const char *password;
};

static void responses_free(struct pam_response *resp, int n)
{
  for (int i = 0; i < n; i++)
    util_free_secret(resp[i].resp);
  free(resp);
}

/* Every prompt gets the password; informational messages get no answer.  PAM frees
 * the responses (and the copies of the password in them). */
static int pam_conversation(int num_msg, const struct pam_message **msg,
                            struct pam_response **resp_r, void *appdata)
{
  const struct pam_appdata *app = appdata;
  struct pam_response *resp;

  if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
    return PAM_CONV_ERR;
  /* Some modules pass no response pointer with purely informational messages. */
  if (resp_r == NULL) {
    for (int i = 0; i < num_msg; i++)
      if (msg[i]->msg_style != PAM_ERROR_MSG && msg[i]->msg_style != PAM_TEXT_INFO)
        return PAM_CONV_ERR;
    return PAM_SUCCESS;
  }
  *resp_r = NULL;
  resp = calloc((size_t)num_msg, sizeof *resp);
  if (resp == NULL)
    return PAM_BUF_ERR;
  for (int i = 0; i < num_msg; i++) {
    switch (msg[i]->msg_style) {
    case PAM_PROMPT_ECHO_OFF:
    case PAM_PROMPT_ECHO_ON:
      resp[i].resp = strdup(app->password);
      if (resp[i].resp == NULL) {
        responses_free(resp, i);
        return PAM_BUF_ERR;
      }
      break;
    case PAM_ERROR_MSG:
    case PAM_TEXT_INFO:
      break;
    default:
      responses_free(resp, i);
      return PAM_CONV_ERR;
    }
  }
  *resp_r = resp;
  return PAM_SUCCESS;
}

static enum auth_mod_result pam_result(int status)
{
  switch (status) {
  case PAM_SUCCESS:
    return AUTH_MOD_OK;
  case PAM_USER_UNKNOWN:
    return AUTH_MOD_NOUSER;
  case PAM_AUTH_ERR:
  case PAM_CRED_INSUFFICIENT:
  case PAM_MAXTRIES:
  case PAM_PERM_DENIED:
  case PAM_ACCT_EXPIRED:
  case PAM_NEW_AUTHTOK_REQD:
  case PAM_AUTHTOK_EXPIRED:
    return AUTH_MOD_DENIED;
  default:
    /* PAM_AUTHINFO_UNAVAIL, PAM_SYSTEM_ERR, PAM_BUF_ERR, PAM_ABORT, PAM_CONV_ERR... */
    return AUTH_MOD_TEMP;
  }
}

static enum auth_mod_result pam_authenticate_user(struct auth_ctx *ctx)
{
  struct pam_appdata app = { ctx->password };
  struct pam_conv conv = { pam_conversation, &app };
  const char *service = ctx->conf->pam_service != NULL ? ctx->conf->pam_service
                                                       : PARAMS_PAM_SERVICE;
  pam_handle_t *ph = NULL;
  const void *item = NULL;
  enum auth_mod_result r;
  int status;

  status = pam_start(service, ctx->user, &conv, &ph);
  if (status != PAM_SUCCESS) {
    auth_set_error(ctx, "PAM: pam_start: %s", pam_strerror(ph, status));
    if (ph != NULL)
      pam_end(ph, status);
    return AUTH_MOD_TEMP;
  }
  /* Who connects, for pam_access, pam_faillock, pam_time and the log. */
  if (auth_rhost() != NULL)
    (void)pam_set_item(ph, PAM_RHOST, auth_rhost());
  (void)pam_set_item(ph, PAM_TTY, "pop3");
  status = pam_authenticate(ph, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  /* Whatever PAM said about a user it knows, it did the expensive work. */
  if (status != PAM_USER_UNKNOWN)
    ctx->hashed = true;
  if (status == PAM_SUCCESS)
    status = pam_acct_mgmt(ph, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  if (status == PAM_SUCCESS) {
    status = pam_get_item(ph, PAM_USER, &item);
    if (status == PAM_SUCCESS && !auth_name_valid(item)) {
      ctx->error = "PAM: module returned an invalid user name";
      pam_end(ph, PAM_SUCCESS);
      return AUTH_MOD_DENIED;
    }
  }
  r = pam_result(status);
  if (r == AUTH_MOD_OK) {
    if (strcmp(item, ctx->user) != 0)
      ctx->canon = util_xstrdup(item);
  } else if (status == PAM_USER_UNKNOWN || status == PAM_AUTH_ERR) {
    /* Most stacks say AUTH_ERR for unknown users too; either way, the same reason. */
    ctx->error = AUTH_BAD_LOGIN;
  } else {
    auth_set_error(ctx, "PAM: %s", pam_strerror(ph, status));
  }
  pam_end(ph, status);
  return r;
}

const struct auth_module auth_module_pam = {
  .name = "pam",
  .authenticate = pam_authenticate_user,
  .authorize = NULL,
};

#else /* !HAVE_PAM */

static enum auth_mod_result pam_not_built(struct auth_ctx *ctx)
{
  ctx->error = "PAM support not built";
  return AUTH_MOD_TEMP;
}

const struct auth_module auth_module_pam = {
  .name = "pam",
  .authenticate = pam_not_built,
  .authorize = NULL,
};

#endif
