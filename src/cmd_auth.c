/* cmd_auth.c - the AUTHORIZATION state: USER, PASS, QUIT.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"
#include "commands.h"
#include "log.h"
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

static void open_maildrop(struct session *s, struct cmd_outcome *o)
{
  const char *err = NULL;
  char *url;
  enum mailbox_status st;

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
  if (privsep_drop(&s->auth, spool_group(url), &err) < 0) {
    log_msg(LOG_ERR, "%s: can't switch to the user: %s", s->auth.name, err);
    cmd_err(o, "SYS/PERM", "Cannot authenticate");
    o->close = true;
    free(url);
    return;
  }
  st = mailbox_open(&s->mb, url, s->conf, &err);
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
    log_msg(LOG_NOTICE, "authentication failed for %s from %s: %s", s->user, s->peer,
            err ? err : "?");
    util_free_secret(s->user);
    s->user = NULL;
    if (st == AUTH_FAIL)
      cmd_err(o, "AUTH", "Bad login");
    else
      cmd_err(o, st == AUTH_TEMP ? "SYS/TEMP" : "SYS/PERM", "Cannot authenticate");
    if (++s->auth_failures >= PARAMS_AUTH_FAILURES_MAX) {
      s->end = SESSION_END_ABUSE;
      o->close = true;
    }
    return;
  }
  util_free_secret(s->user);
  s->user = NULL;
  s->authenticated = true;
  open_maildrop(s, o);
}

void cmd_quit(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t deleted = 0;
  const char *err = NULL;

  o->close = true;
  s->end = SESSION_END_QUIT;
  if (s->state != SESSION_TRANSACTION) {
    cmd_ok(o, "POP3 server signing off");
    return;
  }
  s->state = SESSION_UPDATE;
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
