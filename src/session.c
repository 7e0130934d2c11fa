/* session.c - struct session: set-up, the greeting and TLS of the worker's part, and the
 * session process that becomes the user (monitor.h draws the processes).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "bulletin.h"
#include "commands.h"
#include "dispatch.h"
#include "log.h"
#include "privsep.h"
#include "proto.h"
#include "session.h"
#include "spool.h"

void session_make_stamp(char *buf, size_t cap)
{
  unsigned char rnd[8];
  char host[256];
  char hex[sizeof rnd * 2 + 1];

  if (util_random(rnd, sizeof rnd) < 0)
    memset(rnd, 0, sizeof rnd);   /* the stamp is only unique then, not unpredictable */
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  if (gethostname(host, sizeof host) < 0 || host[0] == '\0')
    strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  snprintf(buf, cap, "<%ld.%lld.%s@%.60s>", (long)getpid(), (long long)time(NULL), hex,
           host);
}

static const char *end_name(enum session_end e)
{
  switch (e) {
  case SESSION_END_QUIT: return "QUIT";
  case SESSION_END_EOF: return "EOF";
  case SESSION_END_TIMEOUT: return "timeout";
  case SESSION_END_ABUSE: return "too many errors";
  case SESSION_END_ERROR: return "error";
  default: return "unknown";
  }
}

bool session_command_offered(const struct session *s, const struct command *cmd)
{
  if (cmd->flags & CMD_STLS)
    return s->tls_creds != NULL && !transport_is_tls(&s->t) &&
           (s->tls.mode == CONF_TLS_ONDEMAND || s->tls.mode == CONF_TLS_REQUIRED);
  if (cmd->flags & CMD_CREDENTIALS)
    return s->tls.mode != CONF_TLS_REQUIRED || transport_is_tls(&s->t);
  return true;
}

/* Start TLS on the session's transport: the handshake, bounded in time.  Returns false
 * (with s->end set) when the session can't go on. */
static bool start_tls(struct session *s)
{
  const char *err = NULL;
  struct tls_conn *conn = tls_conn_new(s->tls_creds, s->t.rfd, s->t.wfd, &err);
  size_t discarded = 0;
  enum transport_status st;
  char desc[200];

  if (conn == NULL) {
    log_msg(LOG_ERR, "TLS: can't start a session with %s: %s", s->peer, err);
    s->t.status = TRANSPORT_ERROR;
    s->end = SESSION_END_ERROR;
    return false;
  }
  st = transport_start_tls(&s->t, conn, s->tls.handshake_timeout, &discarded, &err);
  if (discarded > 0)
    log_msg(LOG_NOTICE, "TLS: discarded %zu bytes sent by %s before the handshake", discarded,
            s->peer);
  if (st != TRANSPORT_OK) {
    log_msg(LOG_NOTICE, "TLS: handshake with %s failed: %s", s->peer, err ? err : "?");
    s->end = st == TRANSPORT_TIMEOUT ? SESSION_END_TIMEOUT : SESSION_END_ERROR;
    return false;
  }
  tls_conn_describe(s->t.tls, desc, sizeof desc);
  log_msg(LOG_INFO, "TLS established with %s: %s", s->peer, desc);
  return true;
}

/* After "+OK Begin TLS negotiation" has been queued: send it in clear, then the
 * handshake.  The client starts over inside TLS (RFC 2595 section 4): what it said
 * before, USER included, is forgotten. */
static void stls_body(struct session *s, const struct cmd_outcome *o)
{
  (void)o;
  if (!start_tls(s))
    return;
  util_free_secret(s->user);
  s->user = NULL;
}

void cmd_stls(struct session *s, char *arg, struct cmd_outcome *o)
{
  (void)s;
  (void)arg;
  cmd_ok(o, "Begin TLS negotiation");
  o->body = stls_body;
}

void session_init(struct session *s, const struct conf *c, const struct conf_server *srv,
                  int rfd, int wfd, const char *peer, const char *local)
{
  memset(s, 0, sizeof *s);
  s->conf = c;
  s->state = SESSION_AUTHORIZATION;
  s->srv = srv;
  s->monitor_fd = -1;
  s->peer = peer ? peer : "stdin";
  s->local = local ? local : "stdout";
  /* Mailutils: the global transcript applies in inetd mode, the server block's otherwise. */
  s->transcript = srv ? srv->transcript : c->transcript;
  s->started = time(NULL);
  transport_init(&s->t, rfd, wfd, c->output_buffer_size, srv ? srv->timeout : c->timeout);
  tls_settings_for(c, srv, &s->tls);
}

void session_prepare_tls(struct session *s)
{
  if (s->tls.mode != CONF_TLS_NO) {
    const char *err = NULL;

    s->tls_creds = tls_creds_get(s->conf, &s->tls, &err);
    if (s->tls_creds == NULL) {
      /* STLS is then not offered; under `required' no login is possible. */
      log_msg(LOG_ERR, "TLS not available: %s", err);
    }
  }
}

void session_authorization(struct session *s)
{
  char greeting[200];

  if (s->tls.mode == CONF_TLS_CONNECTION && (s->tls_creds == NULL || !start_tls(s))) {
    if (s->end == SESSION_END_NONE)
      s->end = SESSION_END_ERROR;
    return;
  }
  /* RFC 1939 section 7: the timestamp belongs to servers that offer APOP, and clients
   * (curl among them) pick APOP whenever they see one, without falling back to USER.
   * So it is announced only together with APOP. */
  if (s->apop)
    snprintf(greeting, sizeof greeting, "POP3 Ready %s", s->stamp);
  else
    snprintf(greeting, sizeof greeting, "POP3 Ready");
  proto_status(&s->t, true, NULL, greeting);
  dispatch_loop(s);
}

int session_finish(struct session *s)
{
  int code;

  if (s->mb_open) {
    /* Without a successful QUIT nothing is deleted: just unlock. */
    mailbox_close(&s->mb);
    s->mb_open = false;
  }
  log_msg(LOG_INFO, "session ended: client %s, user %s, %zu messages (%llu octets) "
          "retrieved, %zu deleted, %lld s, %s", s->peer,
          s->authenticated ? s->auth.name : "-", s->n_retrieved,
          (unsigned long long)s->bytes_retrieved, s->n_deleted,
          (long long)(time(NULL) - s->started), end_name(s->end));

  switch (s->end) {
  case SESSION_END_QUIT:
    code = s->update_failed ? EX_SOFTWARE : EX_OK;
    break;
  case SESSION_END_TIMEOUT:
    code = EX_TEMPFAIL;
    break;
  case SESSION_END_EOF:
    code = s->state == SESSION_TRANSACTION ? EX_PROTOCOL : EX_OK;
    break;
  case SESSION_END_ERROR:
    code = EX_IOERR;
    break;
  default:
    code = EX_OK;
    break;
  }
  return code;
}

void session_free(struct session *s)
{
  util_free_secret(s->user);
  s->user = NULL;
  if (s->authenticated)
    auth_user_free(&s->auth);
  s->authenticated = false;
  transport_free(&s->t);
}

/* ---- The session process ----------------------------------------------------------- */

/* Whatever root opened before the drop and a library kept (a cached passwd file, say)
 * is not the user's to hold: close files and directories owned by root. */
static void close_root_files(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int dfd;

  if (d == NULL)
    return;
  dfd = dirfd(d);
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    int fd;

    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    fd = atoi(e->d_name);
    if (fd > 2 && fd != dfd && fstat(fd, &st) == 0 && st.st_uid == 0 &&
        (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
      close(fd);
  }
  closedir(d);
}

/* Open the maildrop as its user.  Before the drop, while root: what is shared by all
 * users (the bulletin source and db).  After it: the maildrop, and the bulletins it is
 * owed, which are in it by the time the session reads its next command.  Answers the
 * login; false when the session can't go on. */
static bool open_maildrop(struct session *s)
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
    proto_status(&s->t, false, "SYS/PERM", "Cannot open mailbox");
    return false;
  }
  bulletin_prepare(&bull, s->conf, s->auth.name);
  /* The user's groups only: what needs a shared spool's group, the monitor does. */
  if (privsep_drop(&s->auth, (gid_t)-1, &err) < 0) {
    log_msg(LOG_ERR, "%s: can't switch to the user: %s", s->auth.name, err);
    proto_status(&s->t, false, "SYS/PERM", "Cannot authenticate");
    bulletin_free(&bull);
    free(url);
    return false;
  }
  /* The credentials changed: the parent-death signal is set now, not before. */
  (void)prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
  {
    const char *base;
    char *dir = spool_split(url, &base);

    if (dir != NULL && access(dir, W_OK) < 0)
      spool_set_broker(s->monitor_fd, dir);
    free(dir);
  }
  st = mailbox_open(&s->mb, url, s->conf, &err);
  if (st == MAILBOX_OK && bulletin_deliver(&bull, s->conf, &s->auth, &s->mb)) {
    /* The maildrop was replaced: read it again, bulletins included. */
    mailbox_close(&s->mb);
    st = mailbox_open(&s->mb, url, s->conf, &err);
  }
  bulletin_free(&bull);
  close_root_files();
  if (st != MAILBOX_OK) {
    log_msg(LOG_ERR, "%s: can't open maildrop %s: %s", s->auth.name, url,
            err ? err : "?");
    if (st == MAILBOX_INUSE)
      proto_status(&s->t, false, "IN-USE", "Mailbox in use");
    else if (st == MAILBOX_TEMP)
      proto_status(&s->t, false, "SYS/TEMP", "Cannot open mailbox");
    else
      proto_status(&s->t, false, "SYS/PERM", "Cannot open mailbox");
    free(url);
    return false;
  }
  free(url);
  s->mb_open = true;
  s->state = SESSION_TRANSACTION;
  log_msg(LOG_INFO, "user %s logged in from %s, %zu messages", s->auth.name, s->peer,
          s->mb.count);
  {
    char text[160];
    snprintf(text, sizeof text, "opened mailbox for %s", s->auth.name);
    proto_status(&s->t, true, NULL, text);
  }
  return true;
}

/* PS_SESSION: name, uid, gid, home, mailbox, login-delay, the input the worker read
 * ahead; the client's two descriptors.  Sets the session up on them. */
static int take_login(struct session *s, struct privsep_msg *m, const struct conf *c,
                      const struct conf_server *srv, const char *peer, const char *local)
{
  const char *name, *home, *mailbox;
  const unsigned char *input;
  size_t ninput;
  uint32_t uid, gid, delay;

  if (m->type != PS_SESSION || m->nfds != 2 || privsep_get_str(m, &name) < 0 ||
      privsep_get_u32(m, &uid) < 0 || privsep_get_u32(m, &gid) < 0 ||
      privsep_get_str(m, &home) < 0 || privsep_get_str(m, &mailbox) < 0 ||
      privsep_get_u32(m, &delay) < 0 || privsep_get_bytes(m, &input, &ninput) < 0 ||
      !privsep_msg_done(m) || ninput > sizeof s->t.in)
    return -1;
  session_init(s, c, srv, m->fds[0], m->fds[1], peer, local);
  m->nfds = 0;
  s->auth.name = util_xstrdup(name);
  s->auth.uid = (uid_t)uid;
  s->auth.gid = (gid_t)gid;
  s->auth.home = home[0] != '\0' ? util_xstrdup(home) : NULL;
  s->auth.mailbox = mailbox[0] != '\0' ? util_xstrdup(mailbox) : NULL;
  s->authenticated = true;
  s->login_delay_on = delay != 0;
  memcpy(s->t.in, input, ninput);
  s->t.in_end = ninput;
  return 0;
}

int session_run_user(const struct conf *c, const struct conf_server *srv, int fd,
                     const char *peer, const char *local)
{
  struct session s;
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const char *err = NULL;
  int r, code;

  r = privsep_recv(fd, m, -1, &err);
  if (r <= 0) {
    /* No login: the worker ended the session and logged it. */
    privsep_msg_clear(m);
    free(m);
    close(fd);
    return EX_OK;
  }
  if (take_login(&s, m, c, srv, peer, local) < 0) {
    log_msg(LOG_ERR, "session: malformed hand-over from the monitor");
    privsep_msg_clear(m);
    free(m);
    close(fd);
    return EX_SOFTWARE;
  }
  privsep_msg_clear(m);
  free(m);
  s.monitor_fd = fd;
  if (open_maildrop(&s))
    dispatch_loop(&s);
  transport_close(&s.t);
  code = session_finish(&s);
  close(s.t.rfd);
  if (s.t.wfd != s.t.rfd)
    close(s.t.wfd);
  session_free(&s);
  close(fd);
  return code;
}
