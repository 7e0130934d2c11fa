/* cmd_auth.c - the AUTHORIZATION state: USER, PASS, QUIT.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth.h"
#include "bulletin.h"
#include "commands.h"
#include "expire.h"
#include "log.h"
#include "login.h"
#include "logindelay.h"
#include "mailbox.h"
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

/* The group that may create files in the maildrop's directory (Debian's /var/mail is
 * root:mail 2775): the session keeps it so that it can create dotlocks and write the
 * rewritten mbox beside the old one.  (gid_t)-1 when none is needed or usable. */
static gid_t spool_group(const char *url)
{
  const char *path = strchr(url, ':');
  char *dir, *slash;
  struct stat st;
  gid_t g = (gid_t)-1;

  path = (path != NULL && path[1] == '/') ? path + 1 : url;
  while (path[0] == '/' && path[1] == '/')
    path++;
  dir = util_xstrdup(path);
  slash = strrchr(dir, '/');
  if (slash != NULL) {
    if (slash == dir)
      slash[1] = '\0';
    else
      *slash = '\0';
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_IWGRP) &&
        !(st.st_mode & S_IWOTH) && st.st_gid != 0)
      g = st.st_gid;
  }
  free(dir);
  return g;
}

/* Open the maildrop as its user.  Before the drop, while root: what is shared by all
 * users (the bulletin source and db).  After it: the maildrop, and the bulletins it is
 * owed, which are in it by the time the session reads its next command. */
static void open_maildrop(struct session *s, struct cmd_outcome *o)
{
  const char *err = NULL;
  char *url;
  enum mailbox_status st;
  struct bulletin bull;

  if (s->auth.mailbox != NULL)
    url = util_xstrdup(s->auth.mailbox);
  else
    url = mailbox_url_for(s->conf, s->auth.name, s->auth.home, &err);
  if (url == NULL) {
    log_msg(LOG_ERR, "%s: no maildrop: %s", s->auth.name, err ? err : "?");
    cmd_err(o, "SYS/PERM", "Cannot open mailbox");
    o->close = true;
    return;
  }
  bulletin_prepare(&bull, s->conf, s->auth.name);
  if (privsep_drop(&s->auth, spool_group(url), &err) < 0) {
    log_msg(LOG_ERR, "%s: can't switch to the user: %s", s->auth.name, err);
    cmd_err(o, "SYS/PERM", "Cannot authenticate");
    o->close = true;
    bulletin_free(&bull);
    free(url);
    return;
  }
  st = mailbox_open(&s->mb, url, s->conf, &err);
  if (st == MAILBOX_OK && bulletin_deliver(&bull, s->conf, &s->auth, &s->mb)) {
    /* The maildrop was replaced: read it again, bulletins included. */
    mailbox_close(&s->mb);
    st = mailbox_open(&s->mb, url, s->conf, &err);
  }
  bulletin_free(&bull);
  if (st != MAILBOX_OK) {
    log_msg(LOG_ERR, "%s: can't open maildrop %s: %s", s->auth.name, url,
            err ? err : "?");
    if (st == MAILBOX_INUSE)
      cmd_err(o, "IN-USE", "Mailbox in use");
    else if (st == MAILBOX_TEMP)
      cmd_err(o, "SYS/TEMP", "Cannot open mailbox");
    else
      cmd_err(o, "SYS/PERM", "Cannot open mailbox");
    o->close = true;
    free(url);
    return;
  }
  free(url);
  s->mb_open = true;
  s->state = SESSION_TRANSACTION;
  log_msg(LOG_INFO, "user %s logged in from %s, %zu messages", s->auth.name, s->peer,
          s->mb.count);
  cmd_ok(o, "opened mailbox for %s", s->auth.name);
}

/* After a successful authentication by any mechanism (login.h).  The login delay is
 * checked and recorded here, still as root: its database is shared by all users. */
void session_login_ok(struct session *s, struct cmd_outcome *o)
{
  s->authenticated = true;
  switch (logindelay_login(s->conf, s->auth.name, time(NULL))) {
  case LOGINDELAY_REFUSE:
    auth_user_free(&s->auth);
    s->authenticated = false;
    cmd_err(o, "LOGIN-DELAY", LOGINDELAY_REFUSAL);
    return;
  case LOGINDELAY_OK:
    s->login_delay_on = true;
    break;
  case LOGINDELAY_OFF:
    break;
  }
  open_maildrop(s, o);
}

void cmd_pass(struct session *s, char *arg, struct cmd_outcome *o)
{
  const char *err = NULL;
  enum auth_status st;

  if (s->user == NULL) {
    cmd_err(o, NULL, "Incorrect state: USER first");
    o->bad = true;
    return;
  }
  st = auth_login(s->conf, s->user, arg, &s->auth, &err);
  if (st != AUTH_OK) {
    login_failed(s, o, "PASS", s->user, st, err);
    util_free_secret(s->user);
    s->user = NULL;
    return;
  }
  util_free_secret(s->user);
  s->user = NULL;
  session_login_ok(s, o);
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
    s->n_deleted = deleted;
    cmd_err(o, "SYS/TEMP", "Some deleted messages not removed");
    return;
  }
  s->n_deleted = deleted;
  cmd_ok(o, "POP3 server signing off (%zu messages deleted)", deleted);
}
