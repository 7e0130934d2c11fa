/* cmd_trans.c - the TRANSACTION state: STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <inttypes.h>
#include <string.h>

#include "commands.h"
#include "log.h"
#include "proto.h"
#include "session.h"

/* Parse a message number that must name an existing, undeleted message. */
static bool get_msg(struct session *s, const char *arg, struct cmd_outcome *o, size_t *i)
{
  const char *err = proto_parse_msgno(arg, s->mb.count, i);

  if (err != NULL) {
    cmd_err(o, NULL, "%s", err);
    return false;
  }
  if (s->mb.msgs[*i].flags & MAILBOX_MSG_DELETED) {
    cmd_err(o, NULL, "Message has been deleted");
    return false;
  }
  return true;
}

void cmd_stat(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t n = 0;
  uint64_t size = 0;

  for (size_t i = 0; i < s->mb.count; i++)
    if (!(s->mb.msgs[i].flags & MAILBOX_MSG_DELETED)) {
      n++;
      size += s->mb.msgs[i].size;
    }
  cmd_ok(o, "%zu %" PRIu64, n, size);
}

static void list_line(struct session *s, size_t i)
{
  const struct mailbox_msg *m = &s->mb.msgs[i];

  if (s->conf->scan_lines)
    proto_ml_printf(&s->t, "%zu %" PRIu64 " %" PRIu32, i + 1, m->size, m->lines);
  else
    proto_ml_printf(&s->t, "%zu %" PRIu64, i + 1, m->size);
}

static void list_body(struct session *s, const struct cmd_outcome *o)
{
  for (size_t i = 0; i < s->mb.count; i++)
    if (!(s->mb.msgs[i].flags & MAILBOX_MSG_DELETED))
      list_line(s, i);
  proto_ml_end(&s->t);
}

void cmd_list(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t i;

  if (arg == NULL) {
    size_t n = 0;
    uint64_t size = 0;
    for (size_t k = 0; k < s->mb.count; k++)
      if (!(s->mb.msgs[k].flags & MAILBOX_MSG_DELETED)) {
        n++;
        size += s->mb.msgs[k].size;
      }
    cmd_ok(o, "%zu messages (%" PRIu64 " octets)", n, size);
    o->body = list_body;
    return;
  }
  if (!get_msg(s, arg, o, &i))
    return;
  if (s->conf->scan_lines)
    cmd_ok(o, "%zu %" PRIu64 " %" PRIu32, i + 1, s->mb.msgs[i].size, s->mb.msgs[i].lines);
  else
    cmd_ok(o, "%zu %" PRIu64, i + 1, s->mb.msgs[i].size);
}

static void uidl_body(struct session *s, const struct cmd_outcome *o)
{
  for (size_t i = 0; i < s->mb.count; i++)
    if (!(s->mb.msgs[i].flags & MAILBOX_MSG_DELETED))
      proto_ml_printf(&s->t, "%zu %s", i + 1, mailbox_uid(&s->mb, i));
  proto_ml_end(&s->t);
}

void cmd_uidl(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t i;

  if (arg == NULL) {
    cmd_ok(o, "Unique-ID listing follows");
    o->body = uidl_body;
    return;
  }
  if (!get_msg(s, arg, o, &i))
    return;
  cmd_ok(o, "%zu %s", i + 1, mailbox_uid(&s->mb, i));
}

/* Stream message o->index (whole, or TOP's o->lines), then the terminator.  A maildrop
 * that can't be read after +OK can't be reported in the protocol any more: the session
 * is cut off (the client sees no terminator and retries later). */
static void message_body(struct session *s, const struct cmd_outcome *o)
{
  const struct mailbox_msg *m = &s->mb.msgs[o->index];
  const char *err = NULL;
  uint64_t octets = 0;
  int fd;

  if (s->mb.ops->msg_fd(&s->mb, o->index, &fd, &err) < 0 ||
      proto_send_message(&s->t, fd, m->start, m->end, s->mb.mboxrd, o->lines, &octets) < 0) {
    log_msg(LOG_ERR, "%s: reading message %zu failed: %s", s->auth.name, o->index + 1,
            err ? err : "maildrop changed or I/O error");
    s->end = SESSION_END_ERROR;
    s->t.status = TRANSPORT_ERROR;
    return;
  }
  proto_ml_end(&s->t);
  /* A client that stopped reading (the timeout) or went away did not get it all. */
  if (s->t.status != TRANSPORT_OK)
    return;
  s->mb.msgs[o->index].flags |= MAILBOX_MSG_RETRIEVED;
  if (o->lines < 0) {
    s->n_retrieved++;
    s->bytes_retrieved += octets;
  }
}

static bool maildrop_unchanged(struct session *s, struct cmd_outcome *o)
{
  const char *err = NULL;

  if (s->mb.ops->check(&s->mb, &err) == MAILBOX_OK)
    return true;
  log_msg(LOG_ERR, "%s: %s", s->auth.name, err ? err : "maildrop changed");
  cmd_err(o, "SYS/TEMP", "Mailbox changed by another program");
  return false;
}

void cmd_retr(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t i;

  if (!get_msg(s, arg, o, &i) || !maildrop_unchanged(s, o))
    return;
  cmd_ok(o, "%" PRIu64 " octets", s->mb.msgs[i].size);
  o->body = message_body;
  o->index = i;
  o->lines = -1;
}

void cmd_top(struct session *s, char *arg, struct cmd_outcome *o)
{
  char *sp = strchr(arg, ' ');
  uint64_t lines;
  const char *err;
  size_t i;

  if (sp == NULL) {
    cmd_err(o, NULL, "Invalid arguments");
    return;
  }
  *sp = '\0';
  if (!get_msg(s, arg, o, &i))
    return;
  if (util_parse_u64(sp + 1, 0, INT64_MAX, &lines, &err) < 0) {
    cmd_err(o, NULL, "Invalid arguments: line count %s", err);
    return;
  }
  if (!maildrop_unchanged(s, o))
    return;
  cmd_ok(o, "Top of message follows");
  o->body = message_body;
  o->index = i;
  o->lines = (long long)lines;
}

void cmd_dele(struct session *s, char *arg, struct cmd_outcome *o)
{
  size_t i;

  if (!get_msg(s, arg, o, &i))
    return;
  s->mb.msgs[i].flags |= MAILBOX_MSG_DELETED;
  cmd_ok(o, "Message %zu marked", i + 1);
}

void cmd_noop(struct session *s, char *arg, struct cmd_outcome *o)
{
  cmd_ok(o, "%s", "");
}

void cmd_rset(struct session *s, char *arg, struct cmd_outcome *o)
{
  for (size_t i = 0; i < s->mb.count; i++)
    s->mb.msgs[i].flags &= ~MAILBOX_MSG_DELETED;
  cmd_ok(o, "%zu messages", s->mb.count);
}

const struct command cmd_trans_table[] = {
  { "STAT", cmd_stat, CMD_ARG_NONE },
  { "LIST", cmd_list, 0 },
  { "RETR", cmd_retr, CMD_ARG_REQ },
  { "DELE", cmd_dele, CMD_ARG_REQ },
  { "NOOP", cmd_noop, CMD_ARG_NONE },
  { "RSET", cmd_rset, CMD_ARG_NONE },
  { "TOP", cmd_top, CMD_ARG_REQ },
  { "UIDL", cmd_uidl, 0 },
  { "QUIT", cmd_quit, CMD_ARG_NONE },
  { "CAPA", cmd_capa, CMD_ARG_NONE },
  { NULL, NULL, 0 },
};
