/* cmd_auth.c - the AUTHORIZATION state: USER, PASS, APOP, QUIT.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apop.h"
#include "auth.h"
#include "commands.h"
#include "expire.h"
#include "log.h"
#include "login.h"
#include "mailbox.h"
#include "md5.h"
#include "privsep.h"
#include "session.h"

void cmd_user(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t len = strlen(arg);

  if (len > PARAMS_USER_MAX || strchr(arg, ' ') != NULL || !auth_name_valid(arg)) {
    cmd_err(o, NULL, "Invalid arguments");
    o->bad = true;
    return;
  }
  util_free_secret(s->user);
  s->user = util_xstrdup(arg);
  cmd_ok(o, "Password required");
}

void cmd_pass(struct session *s, char *arg, struct cmd_outcome *o)
{
  if (s->user == NULL) {
    cmd_err(o, NULL, "Incorrect state: USER first");
    o->bad = true;
    return;
  }
  login_password(s, o, "PASS", s->user, arg);
  util_free_secret(s->user);
  s->user = NULL;
}

void cmd_apop(struct session *s, char *arg, struct cmd_outcome *o)
{
  char *sp = strchr(arg, ' ');

  util_free_secret(s->user);
  s->user = NULL;
  if (!s->apop) {
    /* Not offered (no usable database, no stamp in the greeting): as if unknown. */
    cmd_err(o, NULL, "Invalid command");
    o->bad = true;
    return;
  }
  if (sp == NULL || !apop_is_digest(sp + 1) || strlen(arg) > PARAMS_USER_MAX + 1 + MD5_HEX_SIZE) {
    cmd_err(o, NULL, "Invalid arguments");
    o->bad = true;
    return;
  }
  *sp = '\0';
  login_digest(s, o, PS_APOP, arg, sp + 1);
}

void cmd_quit(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t deleted = 0, expired;
  const char *err = NULL;

  o->close = true;
  s->end = SESSION_END_QUIT;
  if (s->state != SESSION_TRANSACTION) {
    cmd_ok(o, "POP3 server signing off");
    return;
  }
  s->state = SESSION_UPDATE;
  expired = expire_prepare_update(&s->mb, s->conf, time(NULL));
  if (s->conf->undelete)
    for (size_t i = 0; i < s->mb.count; i++)
      if (s->mb.msgs[i].flags & MAILBOX_MSG_STATUS_D)
        s->mb.msgs[i].flags |= MAILBOX_MSG_UNDELETE;
  if (expired > 0)
    log_msg(LOG_INFO, "%s: %zu expired messages to delete", s->auth.name, expired);
  if (s->mb.ops->update(&s->mb, &deleted, &err) != MAILBOX_OK) {
    log_msg(LOG_ERR, "%s: update failed: %s", s->auth.name, err ? err : "?");
    s->update_failed = true;
  }
  s->n_deleted = deleted;
  /* The lock goes before the answer does: a client that logs in again as soon as it
   * reads it finds the maildrop free. */
  mailbox_close(&s->mb);
  s->mb_open = false;
  if (s->update_failed)
    cmd_err(o, "SYS/TEMP", "Some deleted messages not removed");
  else
    cmd_ok(o, "POP3 server signing off (%zu messages deleted)", deleted);
}

const struct command cmd_auth_table[] = {
  { "USER", cmd_user, CMD_ARG_REQ | CMD_CREDENTIALS },
  { "PASS", cmd_pass, CMD_ARG_REST | CMD_SECRET | CMD_CREDENTIALS },
  { "STLS", cmd_stls, CMD_ARG_NONE | CMD_STLS },
  { "APOP", cmd_apop, CMD_ARG_REQ | CMD_SECRET | CMD_CREDENTIALS },
  { "AUTH", cmd_auth_sasl, CMD_SECRET | CMD_CREDENTIALS },
  { "QUIT", cmd_quit, CMD_ARG_NONE },
  { "CAPA", cmd_capa, CMD_ARG_NONE },
  { NULL, NULL, 0 },
};
