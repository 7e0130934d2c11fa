/* monitor.c - one connection's root process.
 *
 *   inetd --fd 0/1--.
 *                   +--> monitor (root) ---fork---> session-to-be (root, waits)
 *   listener -fork--'       |  \------fork---> worker (privsep user, empty chroot,
 *                           |                  no-new-privs, rlimits, seccomp)
 *                           |<== PS_* messages: credentials, challenges, signatures,
 *                           |    then the client's fds or a relay request
 *                           '==> PS_SESSION to the session-to-be: user, fds, input
 *
 * What runs as root, and nothing else (a design change to add to it):
 *   - main(): the command line, the configuration, the TLS preflight (which reads the
 *     private key in a throw-away child), monitor_init();
 *   - the listener (daemon.c): accept, limits, fork, reap, signals, pidfile;
 *   - this file: acl (the kernel's peer address, no network byte), the monitor's loop
 *     over its worker's typed messages (monitor_decode(), fuzzed), password checks
 *     (auth_login: PAM, shadow, virtdomain, the LDAP and SQL clients and what their
 *     servers answer), APOP/CRAM-MD5/SCRAM checks against the APOP database, login
 *     delay and login penalties (their GDBM files), TLS private-key signatures
 *     (tls_sign()), and after the login the session's requests in a shared spool
 *     (serve_session(), spool.c);
 *   - the session process from its fork until privsep_drop(): it receives PS_SESSION,
 *     reads the bulletin source and database (bulletin_prepare()), then becomes the user
 *     before it opens the maildrop or reads the client's first byte.
 * tcp-wrappers (libwrap and its DNS lookups) run in a child that is the privsep user,
 * only when a table holds a rule.  Every child of this process forgets the passwords of
 * the sql and ldap blocks first thing (forget_child_state()).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "apop.h"
#include "auth.h"
#include "base64.h"
#include "log.h"
#include "login.h"
#include "logindelay.h"
#include "monitor.h"
#include "penalty.h"
#include "sasl.h"
#include "session.h"
#include "spool.h"
#include "mailbox.h"
#include "tls.h"
#include "worker.h"

/* Where to say that the client logged in (the listener's per-source and pre-auth
 * counts); -1 in inetd mode.  Never inherited by the worker or the session. */
static int login_note = -1;

void monitor_set_login_note(int fd)
{
  if (fd < 0 && login_note >= 0)
    close(login_note);
  login_note = fd;
}

/* A descriptor that is not a socket (a terminal, a pipe) may share its open file with
 * other programs, a shell for one: the worker and the session make it non-blocking,
 * and its flags are put back when the connection ends. */
struct shared_fd {
  int fd;                      /* a duplicate, or -1 */
  int flags;
};

/* The client's two descriptors, kept by monitor_run(). */
static struct shared_fd kept[2] = { { -1, 0 }, { -1, 0 } };

static void shared_fd_keep(struct shared_fd *k, int fd)
{
  struct stat st;

  k->fd = -1;
  if (fstat(fd, &st) < 0 || S_ISSOCK(st.st_mode))
    return;
  k->flags = fcntl(fd, F_GETFL);
  if (k->flags >= 0)
    k->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static void shared_fd_restore(struct shared_fd *k)
{
  if (k->fd < 0)
    return;
  (void)fcntl(k->fd, F_SETFL, k->flags);
  close(k->fd);
  k->fd = -1;
}

/* The monitor after the login, and its children: nothing more to say to the listener,
 * and the client's descriptors' flags are the monitor's to put back. */
static void forget_login_note(void)
{
  if (login_note >= 0)
    close(login_note);
  login_note = -1;
  for (size_t i = 0; i < 2; i++)
    if (kept[i].fd >= 0) {
      close(kept[i].fd);
      kept[i].fd = -1;
    }
}

/* In a child of the monitor (tcp-wrappers, worker, session): the above, and the
 * passwords of the sql and ldap blocks, which are the monitor's alone.  c is this
 * process's own copy of the listener's configuration (not const there). */
static void forget_child_state(const struct conf *c)
{
  forget_login_note();
  conf_forget_secrets((struct conf *)c);
}

/* The privsep user, looked up by monitor_init(). */
static uid_t ps_uid = (uid_t)-1;
static gid_t ps_gid = (gid_t)-1;

static int make_dir(const char *path, FILE *err)
{
  char *p = util_xstrdup(path);
  int rc = 0;

  /* Each missing component, root-owned and not writable by others. */
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char save = *s;
      *s = '\0';
      if (mkdir(p, 0755) < 0 && errno != EEXIST) {
        fprintf(err, "pop3d: privsep-chroot: can't create %s: %s\n", p, strerror(errno));
        rc = -1;
        break;
      }
      *s = save;
      if (save == '\0')
        break;
    }
  }
  free(p);
  return rc;
}

/* Does the directory fd hold nothing but . and ..?  Closes fd. */
static bool dir_empty(int fd)
{
  DIR *d = fdopendir(fd);
  const struct dirent *e;
  bool empty = true;

  if (d == NULL) {
    close(fd);
    return false;
  }
  while (empty && (e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      empty = false;
  closedir(d);
  return empty;
}

/* The checks of monitor_init(); create: make a missing privsep-chroot (otherwise, as
 * for --config-lint, a missing one is fine: it will be made). */
static int check_privsep(const struct conf *c, FILE *err, bool create)
{
  const struct passwd *pw;
  struct stat st;
  int fd, n = 0;

  if (geteuid() != 0)
    return 0;
  pw = getpwnam(c->privsep_user);
  if (pw == NULL) {
    fprintf(err, "pop3d: privsep-user: no such user `%s': create it (adduser --system "
            "--group --no-create-home --home /nonexistent %s) or name another one\n",
            c->privsep_user, c->privsep_user);
    n++;
  } else if (pw->pw_uid == 0 || pw->pw_gid == 0) {
    fprintf(err, "pop3d: privsep-user: `%s' is root or in group 0: name an unprivileged "
            "user of its own\n", c->privsep_user);
    n++;
  } else {
    ps_uid = pw->pw_uid;
    ps_gid = pw->pw_gid;
  }
  if (c->privsep_chroot[0] != '/') {
    fprintf(err, "pop3d: privsep-chroot: `%s' is not an absolute name\n", c->privsep_chroot);
    return n + 1;
  }
  if (lstat(c->privsep_chroot, &st) < 0 && errno == ENOENT) {
    if (!create)
      return n;
    if (make_dir(c->privsep_chroot, err) < 0)
      return n + 1;
  }
  fd = open(c->privsep_chroot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) < 0) {
    fprintf(err, "pop3d: privsep-chroot: %s: %s\n", c->privsep_chroot, strerror(errno));
    n++;
  } else if (st.st_uid != 0 || (st.st_mode & 022)) {
    fprintf(err, "pop3d: privsep-chroot: %s must be owned by root and writable by root "
            "only\n", c->privsep_chroot);
    n++;
  } else if (!dir_empty(fd)) {
    fprintf(err, "pop3d: privsep-chroot: %s must be empty\n", c->privsep_chroot);
    n++;
    fd = -1;   /* dir_empty() closed it */
  } else {
    fd = -1;
  }
  if (fd >= 0)
    close(fd);
  return n;
}

int monitor_init(const struct conf *c, FILE *err)
{
  return check_privsep(c, err, true);
}

int monitor_lint(const struct conf *c, FILE *err)
{
  return check_privsep(c, err, false);
}

/* ---- Access control ---------------------------------------------------------------- */

/* tcp-wrappers, in a child that is the privsep user: libwrap reads its tables and asks
 * the DNS about the client, which is network input. */
static bool tcpwrap_allows(const struct conf *c, int fd)
{
  pid_t pid;
  int status;

  if (!acl_tcpwrap_has_rules(c))
    return true;
  pid = fork();
  if (pid < 0) {
    log_msg(LOG_ERR, "tcp-wrappers: fork: %s", strerror(errno));
    return false;
  }
  if (pid == 0) {
    const char *err = NULL;

    forget_child_state(c);
    tls_tickets_forget();
    if (privsep_drop_worker(ps_uid, ps_gid, NULL, &err) < 0) {
      log_msg(LOG_ERR, "tcp-wrappers: %s", err);
      _exit(2);
    }
    (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    _exit(acl_tcpwrap_check(c, fd) ? 0 : 1);
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- The worker's requests --------------------------------------------------------- */

int monitor_decode(struct privsep_msg *m, struct monitor_req *r)
{
  memset(r, 0, sizeof *r);
  r->type = m->type;
  switch (m->type) {
  case PS_PASS:
    if (privsep_get_str(m, &r->mech) < 0 || privsep_get_str(m, &r->user) < 0 ||
        privsep_get_str(m, &r->secret) < 0)
      return -1;
    break;
  case PS_APOP:
  case PS_CRAM:
    if (privsep_get_str(m, &r->user) < 0 || privsep_get_str(m, &r->secret) < 0)
      return -1;
    break;
  case PS_SCRAM_VERIFY:
    if (privsep_get_str(m, &r->user) < 0 || privsep_get_str(m, &r->auth_message) < 0 ||
        privsep_get_bytes(m, &r->bytes, &r->nbytes) < 0 || r->nbytes != SHA256_DIGEST_SIZE)
      return -1;
    break;
  case PS_HANDOFF:
    if (privsep_get_bytes(m, &r->bytes, &r->nbytes) < 0 || r->nbytes > PARAMS_INBUF_SIZE ||
        m->nfds != 2)
      return -1;
    break;
  case PS_SIGN:
    if (privsep_get_u32(m, &r->kind) < 0 || privsep_get_u32(m, &r->algo) < 0 ||
        privsep_get_bytes(m, &r->bytes, &r->nbytes) < 0)
      return -1;
    break;
  case PS_CRAM_START:
  case PS_SCRAM_START:
  case PS_SCRAM_DONE:
  case PS_HANDOFF_TLS:
    break;
  default:
    return -1;
  }
  /* Only a hand-over carries descriptors. */
  if (m->type != PS_HANDOFF && m->nfds != 0)
    return -1;
  if (r->mech != NULL && strlen(r->mech) > 32)
    return -1;
  if (r->user != NULL && strlen(r->user) > PARAMS_USER_MAX)
    return -1;
  if (r->secret != NULL && strlen(r->secret) > SASL_SECRET_MAX)
    return -1;
  return privsep_msg_done(m) ? 0 : -1;
}

bool monitor_allowed(enum monitor_phase ph, uint32_t type)
{
  switch (type) {
  case PS_PASS:
  case PS_APOP:
  case PS_CRAM_START:
  case PS_SCRAM_START:
    /* A new exchange may always replace one that the client abandoned. */
    return ph != MONITOR_AUTHED;
  case PS_SIGN:
    return ph != MONITOR_AUTHED;
  case PS_CRAM:
    return ph == MONITOR_CRAM;
  case PS_SCRAM_VERIFY:
    return ph == MONITOR_SCRAM;
  case PS_SCRAM_DONE:
    return ph == MONITOR_SCRAM_VERIFIED;
  case PS_HANDOFF:
  case PS_HANDOFF_TLS:
    return ph == MONITOR_AUTHED;
  default:
    return false;
  }
}

struct monitor {
  const struct conf *c;
  const struct conf_server *srv;
  const char *local;
  bool lazy;                   /* fork the session-to-be on the first request that needs it */
  uint64_t deadline;           /* util_now_ms() by which the worker must be done; 0 none */
  struct tls_settings tls;     /* whose key signs for the worker */
  const char *peer;
  char stamp[128];
  bool apop;
  enum monitor_phase phase;
  char cram[160];
  unsigned char salt[SCRAM_SALT_SIZE];
  char snonce[SCRAM_SNONCE_MAX + 1];
  char *scram_user;            /* whose proof held */
  unsigned failures;
  char source[ACL_SOURCE_KEY_MAX];  /* acl_source_key(); "" when not an IP client */
  char *tried;                 /* the name of the login attempt in progress (penalties) */
  bool penalty_recorded;       /* it or the source had failures on record */
  struct auth_user user;
  bool login_delay_on;
  unsigned key_ops;            /* private-key operations done for the worker */
  pid_t worker, session;
  int wfd, sfd;
};

/* The answer to a login attempt. */
static void result(struct privsep_msg *out, enum privsep_result r, bool close_it)
{
  privsep_msg_init(out, PS_RESULT);
  privsep_put_u32(out, (uint32_t)r);
  privsep_put_u32(out, close_it ? 1 : 0);
}

/* Before credentials are checked: the login penalty of the source and the name, the
 * same wait whatever the answer will be. */
static void penalize(struct monitor *m, const char *user)
{
  const char *name = auth_name_valid(user) ? user : NULL;
  unsigned sec;

  free(m->tried);
  m->tried = name != NULL ? util_xstrdup(name) : NULL;
  sec = penalty_before(m->c, m->source[0] != '\0' ? m->source : NULL, name, time(NULL),
                       &m->penalty_recorded);
  if (sec == 0)
    return;
  log_msg(LOG_INFO, "login penalty for %s from %s: %u s", name != NULL ? name : "-",
          m->peer, sec);
  util_sleep_ms((uint64_t)sec * 1000u);
}

/* A refused login: one stable log line (fail2ban), the shared penalty, the growing
 * delay, the answer. */
static void failed(struct monitor *m, struct privsep_msg *out, const char *mech,
                   const char *user, enum auth_status st, const char *reason)
{
  bool last;

  log_msg(LOG_NOTICE, "authentication failed for %s from %s: %s: %s",
          auth_name_valid(user) ? user : "-", m->peer, mech, reason ? reason : "?");
  /* A temporary failure (PAM or a database down) is not the client's. */
  if (st == AUTH_FAIL)
    penalty_failed(m->c, m->source[0] != '\0' ? m->source : NULL,
                   auth_name_valid(user) ? user : NULL, time(NULL));
  free(m->tried);
  m->tried = NULL;
  m->failures++;
  util_sleep_ms((uint64_t)login_failure_delay(m->failures) * 1000u);
  last = m->failures >= PARAMS_AUTH_FAILURES_MAX;
  result(out, st == AUTH_FAIL ? PS_R_FAIL : st == AUTH_TEMP ? PS_R_TEMP : PS_R_PERM, last);
  m->phase = MONITOR_PREAUTH;
}

/* Credentials held: the login delay, then the hand-over. */
static void succeeded(struct monitor *m, struct privsep_msg *out)
{
  switch (logindelay_login(m->c, m->user.name, time(NULL))) {
  case LOGINDELAY_REFUSE:
    log_msg(LOG_INFO, "%s: refused by login-delay", m->user.name);
    auth_user_free(&m->user);
    result(out, PS_R_LOGIN_DELAY, false);
    m->phase = MONITOR_PREAUTH;
    return;
  case LOGINDELAY_OK:
    m->login_delay_on = true;
    break;
  case LOGINDELAY_OFF:
    break;
  }
  if (m->penalty_recorded)
    penalty_succeeded(m->c, m->source[0] != '\0' ? m->source : NULL, m->tried);
  free(m->tried);
  m->tried = NULL;
  m->phase = MONITOR_AUTHED;
  result(out, PS_R_OK, false);
}

/* The user's secret from the APOP database, the same work whether or not there is one. */
static enum auth_status user_secret(const struct monitor *m, const char *user,
                                    char **secret_r, const char **err_r)
{
  *secret_r = NULL;
  if (!auth_name_valid(user)) {
    *err_r = "invalid user name";
    return AUTH_FAIL;
  }
  return apop_secret(m->c, user, secret_r, err_r);
}

/* A user whose secret held: authorize, then as any login. */
static void secret_ok(struct monitor *m, struct privsep_msg *out, const char *mech,
                      const char *user)
{
  const char *err = NULL;
  enum auth_status st = auth_authorize(m->c, user, &m->user, &err);

  if (st != AUTH_OK)
    failed(m, out, mech, user, st, err);
  else
    succeeded(m, out);
}

static void secret_refused(struct monitor *m, struct privsep_msg *out, const char *mech,
                           const char *user, enum auth_status st, const char *err,
                           const char *wrong)
{
  if (st == AUTH_OK)
    err = wrong;
  if (st == AUTH_PERM || st == AUTH_TEMP)
    log_msg(LOG_ERR, "%s", err);
  failed(m, out, mech, user, st == AUTH_TEMP ? AUTH_TEMP : AUTH_FAIL, err);
}

static void check_digest(struct monitor *m, struct privsep_msg *out, const char *mech,
                         const char *user, const char *text, const char *digest,
                         bool (*check)(const char *, const char *, const char *))
{
  char *secret = NULL;
  const char *err = NULL;
  enum auth_status st;
  bool ok;

  penalize(m, user);
  st = user_secret(m, user, &secret, &err);
  ok = apop_is_digest(digest) && check(text, secret, digest);

  util_free_secret(secret);
  if (st == AUTH_OK && ok)
    secret_ok(m, out, mech, user);
  else
    secret_refused(m, out, mech, user, st, err, AUTH_BAD_LOGIN);
}

static void do_pass(struct monitor *m, const struct monitor_req *r, struct privsep_msg *out)
{
  static const char *const mechs[] = { "PASS", "PLAIN", "LOGIN" };
  const char *mech = NULL, *err = NULL;
  enum auth_status st;

  for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
    if (strcmp(r->mech, mechs[i]) == 0)
      mech = mechs[i];
  penalize(m, r->user);
  if (mech == NULL) {
    failed(m, out, "?", r->user, AUTH_FAIL, "unknown mechanism");
    return;
  }
  st = auth_login(m->c, r->user, r->secret, &m->user, &err);
  if (st != AUTH_OK)
    failed(m, out, mech, r->user, st, err);
  else
    succeeded(m, out);
}

/* A CRAM-MD5 challenge: a msg-id with random bytes, the time and the stamp's host. */
static void do_cram_start(struct monitor *m, struct privsep_msg *out)
{
  unsigned char r[8];
  const char *at = strchr(m->stamp, '@');
  char hex[17];

  if (util_random(r, sizeof r) < 0)
    memset(r, 0, sizeof r);
  for (size_t i = 0; i < sizeof r; i++)
    snprintf(hex + 2 * i, 3, "%02x", r[i]);
  snprintf(m->cram, sizeof m->cram, "<%s.%lld%s", hex, (long long)time(NULL),
           at != NULL ? at : "@localhost>");
  m->phase = MONITOR_CRAM;
  privsep_msg_init(out, PS_CHALLENGE);
  privsep_put_str(out, m->cram);
}

static void do_scram_start(struct monitor *m, struct privsep_msg *out)
{
  struct sasl x;

  /* sasl_start() draws the salt and the nonce; the worker only repeats them. */
  sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
  if (x.scram == SCRAM_OVER) {
    sasl_free(&x);
    log_msg(LOG_ERR, "SCRAM-SHA-256: no random salt and nonce");
    result(out, PS_R_TEMP, false);
    m->phase = MONITOR_PREAUTH;
    return;
  }
  memcpy(m->salt, x.salt, sizeof m->salt);
  snprintf(m->snonce, sizeof m->snonce, "%s", x.snonce);
  sasl_free(&x);
  m->phase = MONITOR_SCRAM;
  privsep_msg_init(out, PS_SCRAM_PARAMS);
  privsep_put_bytes(out, m->salt, sizeof m->salt);
  privsep_put_str(out, m->snonce);
  privsep_put_u32(out, SCRAM_ITERATIONS);
}

static void do_scram_verify(struct monitor *m, const struct monitor_req *r,
                            struct privsep_msg *out)
{
  char expect[SCRAM_SNONCE_MAX + BASE64_ENCODED_LEN(SCRAM_SALT_SIZE) + 32];
  char salt64[BASE64_ENCODED_LEN(SCRAM_SALT_SIZE) + 1];
  char final[SASL_CHALLENGE_MAX];
  char *secret = NULL;
  const char *err = NULL;
  enum auth_status st;
  struct sasl x;
  bool ok;

  /* The exchange must be the one this monitor started: its server-first-message (our
   * fresh nonce, salt and rounds) inside the AuthMessage, so a recorded exchange can't
   * be replayed through a worker. */
  if (base64_encode(m->salt, sizeof m->salt, salt64, sizeof salt64) == (size_t)-1)
    salt64[0] = '\0';
  snprintf(expect, sizeof expect, "%s,s=%s,i=%u,", m->snonce, salt64, SCRAM_ITERATIONS);
  memset(&x, 0, sizeof x);
  x.mech = SASL_SCRAM_SHA_256;
  x.scram = SCRAM_PROOF;
  x.iterations = SCRAM_ITERATIONS;
  memcpy(x.salt, m->salt, sizeof x.salt);
  memcpy(x.proof, r->bytes, sizeof x.proof);
  x.auth_message = util_xstrdup(r->auth_message);
  penalize(m, r->user);
  st = user_secret(m, r->user, &secret, &err);
  ok = sasl_scram_verify(&x, secret, final, sizeof final) &&
       strstr(r->auth_message, expect) != NULL;
  util_free_secret(secret);
  sasl_free(&x);
  util_wipe(m->snonce, sizeof m->snonce);
  if (st == AUTH_OK && ok) {
    free(m->scram_user);
    m->scram_user = util_xstrdup(r->user);
    m->phase = MONITOR_SCRAM_VERIFIED;
    result(out, PS_R_OK, false);
    privsep_put_str(out, final);
    return;
  }
  secret_refused(m, out, "SCRAM-SHA-256", r->user, st, err, AUTH_BAD_LOGIN);
}

/* Handle one request; out gets the answer (type 0: none).  -1: the worker broke the
 * protocol. */
static int handle(struct monitor *m, struct privsep_msg *in, struct privsep_msg *out)
{
  struct monitor_req r;
  char *user;

  privsep_msg_init(out, 0);
  if (monitor_decode(in, &r) < 0) {
    log_msg(LOG_ERR, "monitor: malformed message (type %lu, %zu bytes) from the worker",
            (unsigned long)in->type, in->len);
    return -1;
  }
  if (!monitor_allowed(m->phase, r.type)) {
    log_msg(LOG_ERR, "monitor: message type %lu out of order from the worker",
            (unsigned long)r.type);
    return -1;
  }
  switch (r.type) {
  case PS_PASS:
    do_pass(m, &r, out);
    break;
  case PS_APOP:
    if (!m->apop)
      failed(m, out, "APOP", r.user, AUTH_FAIL, "APOP not offered");
    else
      check_digest(m, out, "APOP", r.user, m->stamp, r.secret, apop_digest_ok);
    break;
  case PS_CRAM_START:
    do_cram_start(m, out);
    break;
  case PS_CRAM:
    check_digest(m, out, "CRAM-MD5", r.user, m->cram, r.secret, apop_cram_ok);
    break;
  case PS_SCRAM_START:
    do_scram_start(m, out);
    break;
  case PS_SCRAM_VERIFY:
    do_scram_verify(m, &r, out);
    break;
  case PS_SCRAM_DONE:
    user = m->scram_user;
    m->scram_user = NULL;
    secret_ok(m, out, "SCRAM-SHA-256", user);
    free(user);
    break;
  case PS_SIGN:
    /* One handshake needs one operation, on data of a handshake's shape: a worker
     * taken over gets no signing service out of the monitor. */
    if (++m->key_ops > PARAMS_TLS_KEY_OPS_MAX ||
        !tls_sign_request_ok(r.kind, r.bytes, r.nbytes)) {
      log_msg(LOG_ERR, "monitor: %s private-key request from the worker (kind %lu, %zu "
              "bytes)", m->key_ops > PARAMS_TLS_KEY_OPS_MAX ? "one more" : "malformed",
              (unsigned long)(r.kind & 0xffu), r.nbytes);
      return -1;
    }
    tls_sign(m->c, &m->tls, r.kind, r.algo, r.bytes, r.nbytes, out);
    break;
  default:
    return -1;
  }
  return 0;
}

/* ---- The session ------------------------------------------------------------------- */

/* Give the session-to-be what it needs: the user, the login's facts, the client's
 * descriptors and the input the worker had read but not used. */
static int start_session(struct monitor *m, int rfd, int wfd, const unsigned char *input,
                         size_t ninput)
{
  struct privsep_msg *out = util_xmalloc(sizeof *out);
  int rc;

  privsep_msg_init(out, PS_SESSION);
  privsep_put_str(out, m->user.name);
  privsep_put_u32(out, (uint32_t)m->user.uid);
  privsep_put_u32(out, (uint32_t)m->user.gid);
  privsep_put_str(out, m->user.home != NULL ? m->user.home : "");
  privsep_put_str(out, m->user.mailbox != NULL ? m->user.mailbox : "");
  privsep_put_u32(out, m->login_delay_on ? 1 : 0);
  privsep_put_bytes(out, input, ninput);
  privsep_put_fd(out, rfd);
  privsep_put_fd(out, wfd);
  rc = privsep_send(m->sfd, out);
  free(out);
  return rc;
}

int monitor_decode_spool(struct privsep_msg *m, struct monitor_spool_req *r)
{
  memset(r, 0, sizeof *r);
  if (m->type != PS_SPOOL || m->nfds != 0 || privsep_get_u32(m, &r->op) < 0 ||
      privsep_get_str(m, &r->name) < 0 || privsep_get_str(m, &r->to) < 0 ||
      !privsep_msg_done(m))
    return -1;
  if (r->to[0] == '\0')
    r->to = NULL;
  return 0;
}

/* After the hand-over: do what the session can't in a shared spool (spool.h), until
 * it ends. */
static void serve_session(struct monitor *m)
{
  struct privsep_msg *in = util_xmalloc(sizeof *in);
  const char *base = NULL, *err = NULL;
  char *url, *dir = NULL;
  int dirfd = -2;

  privsep_msg_init(in, 0);
  url = m->user.mailbox != NULL ? util_xstrdup(m->user.mailbox)
                                : mailbox_url_for(m->c, m->user.name, m->user.home, &err);
  if (url != NULL)
    dir = spool_split(url, &base);
  for (;;) {
    struct monitor_spool_req q;
    int r = privsep_recv(m->sfd, in, -1, &err), fd = -1, e;

    if (r <= 0)
      break;
    if (monitor_decode_spool(in, &q) < 0) {
      log_msg(LOG_ERR, "monitor: malformed message from the session: no more spool help");
      privsep_msg_clear(in);
      break;
    }
    if (dir == NULL || !spool_name_allowed((enum spool_op)q.op, base, q.name, q.to)) {
      log_msg(LOG_WARNING, "monitor: %s: refused spool request %lu on `%.80s'",
              m->user.name, (unsigned long)q.op, q.name);
      e = EPERM;
    } else {
      if (dirfd == -2)
        dirfd = spool_broker_dir(dir, m->user.uid);
      e = dirfd < 0 ? EACCES
                    : spool_serve(dirfd, base, m->user.uid, (enum spool_op)q.op, q.name,
                                  q.to, &fd);
    }
    privsep_msg_clear(in);
    privsep_msg_init(in, PS_SPOOL_RESULT);
    privsep_put_u32(in, (uint32_t)e);
    if (fd >= 0)
      privsep_put_fd(in, fd);
    r = privsep_send(m->sfd, in);
    if (fd >= 0)
      close(fd);
    in->nfds = 0;
    if (r < 0)
      break;
  }
  if (dirfd >= 0)
    close(dirfd);
  free(dir);
  free(url);
  free(in);
}

static int wait_child(pid_t pid)
{
  int status;

  if (pid <= 0)
    return EX_OK;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return EX_SOFTWARE;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  log_msg(LOG_ERR, "process %ld killed by signal %d", (long)pid, WTERMSIG(status));
  return EX_SOFTWARE;
}

/* The hand-over: plain, the worker's descriptors go to the session; under TLS the
 * session gets one end of a new relay and the worker the other. */
static int handoff(struct monitor *m, struct privsep_msg *in, bool *tls_r)
{
  struct monitor_req r;
  int pair[2];
  int rc;

  if (monitor_decode(in, &r) < 0)
    return -1;
  if (r.type == PS_HANDOFF) {
    rc = start_session(m, in->fds[0], in->fds[1], r.bytes, r.nbytes);
    *tls_r = false;
    return rc;
  }
  *tls_r = true;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
    log_msg(LOG_ERR, "monitor: relay socketpair: %s", strerror(errno));
    return -1;
  }
  {
    struct privsep_msg *out = util_xmalloc(sizeof *out);

    privsep_msg_init(out, PS_RELAY);
    privsep_put_fd(out, pair[0]);
    rc = privsep_send(m->wfd, out);
    free(out);
  }
  close(pair[0]);
  if (rc == 0)
    rc = start_session(m, pair[1], pair[1], NULL, 0);
  close(pair[1]);
  return rc;
}

static void null_fds(int rfd, int wfd)
{
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

  /* inetd's 0 and 1 stay taken (by /dev/null) so no later open lands on them. */
  for (int i = 0; i < 2; i++) {
    int fd = i == 0 ? rfd : wfd;
    if (fd <= 2 && nul >= 0)
      (void)dup2(nul, fd);
    else if (fd > 2 && (i == 0 || wfd != rfd))
      close(fd);
  }
  if (nul > 2)
    close(nul);
}

/* Fork the session-to-be now, while this process holds no secret.  0 or -1. */
static int spawn_session(struct monitor *m)
{
  int sp[2];

  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
    log_msg(LOG_ERR, "monitor: socketpair: %s", strerror(errno));
    return -1;
  }
  m->session = fork();
  if (m->session < 0) {
    log_msg(LOG_ERR, "monitor: fork: %s", strerror(errno));
    m->session = 0;
    close(sp[0]);
    close(sp[1]);
    return -1;
  }
  if (m->session == 0) {
    forget_child_state(m->c);
    close(m->wfd);
    close(sp[0]);
    _exit(session_run_user(m->c, m->srv, sp[1], m->peer, m->local));
  }
  close(sp[1]);
  m->sfd = sp[0];
  return 0;
}

/* Before the next request is read: a request that brings a secret (a password, a
 * digest, a proof, data to sign with the key) is preceded by the fork of the
 * session-to-be, so that its memory never held one.  A challenge or SCRAM's parameters
 * bring none.  Connections that end before a login attempt never fork it. */
/* How long the next wait for the worker may take (poll()'s milliseconds). */
static int wait_ms(const struct monitor *m)
{
  uint64_t now = util_now_ms();

  if (m->deadline == 0)
    return -1;
  return now >= m->deadline ? 0 : (int)(m->deadline - now);
}

static int before_request(struct monitor *m)
{
  unsigned char hdr[4];
  struct pollfd p = { .fd = m->wfd, .events = POLLIN };
  ssize_t n;
  uint32_t type;

  if (!m->lazy || m->session != 0)
    return 0;
  while (poll(&p, 1, wait_ms(m)) < 0)
    if (errno != EINTR)
      return 0;                       /* the read that follows says what went wrong */
  do
    n = recv(m->wfd, hdr, sizeof hdr, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return 0;
  type = n == 4 ? (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3]
                : 0;
  if (type == PS_CRAM_START || type == PS_SCRAM_START)
    return 0;
  return spawn_session(m);
}

/* The worker's requests until it ends (0), hands the client over (1, *tls_r says how)
 * or breaks the protocol (-1, logged). */
static int dialogue(struct monitor *m, bool *tls_r)
{
  struct privsep_msg *in = util_xmalloc(sizeof *in), *out = util_xmalloc(sizeof *out);
  int rc = 0;

  privsep_msg_init(in, 0);
  privsep_msg_init(out, 0);
  for (;;) {
    const char *err = NULL;
    int r;

    if (before_request(m) < 0) {
      rc = -1;
      break;
    }
    r = privsep_recv(m->wfd, in, wait_ms(m), &err);
    if (r == 0)
      break;                          /* the worker ended the session */
    if (r < 0) {
      log_msg(LOG_ERR, "monitor: from the worker: %s", err);
      rc = -1;
      break;
    }
    if (in->type == PS_HANDOFF || in->type == PS_HANDOFF_TLS) {
      if (!monitor_allowed(m->phase, in->type) || handoff(m, in, tls_r) < 0) {
        log_msg(LOG_ERR, "monitor: bad hand-over from the worker");
        rc = -1;
      } else {
        rc = 1;
      }
      privsep_msg_clear(in);
      break;
    }
    r = handle(m, in, out);
    privsep_msg_clear(in);
    if (r < 0) {
      rc = -1;
      break;
    }
    if (out->type != 0 && privsep_send(m->wfd, out) < 0) {
      log_msg(LOG_ERR, "monitor: to the worker: %s", strerror(errno));
      rc = -1;
      break;
    }
    util_wipe(out->buf, out->len);
  }
  privsep_msg_clear(out);
  free(out);
  free(in);
  return rc;
}

int monitor_dialogue(const struct conf *c, int wfd, int sfd)
{
  struct monitor m;
  bool tls = false;
  int r;

  memset(&m, 0, sizeof m);
  m.c = c;
  tls_settings_for(c, NULL, &m.tls);
  m.peer = "test";
  m.wfd = wfd;
  m.sfd = sfd;
  session_make_stamp(m.stamp, sizeof m.stamp);
  r = dialogue(&m, &tls);
  auth_user_free(&m.user);
  free(m.scram_user);
  free(m.tried);
  return r;
}

static int serve_connection(const struct conf *c, const struct conf_server *srv, int rfd,
                            int wfd, const struct sockaddr *peer_sa, socklen_t peer_len,
                            const char *peer, const char *local)
{
  struct monitor m;
  int wp[2], code = EX_OK;
  bool tls = false, handed = false, broken = false;
  int r;

  if (peer_sa != NULL && peer_sa->sa_family != AF_UNIX &&
      (!acl_check(&c->acl, peer_sa, peer_len) ||
       (srv != NULL && !acl_check(&srv->acl, peer_sa, peer_len)))) {
    log_msg(LOG_NOTICE, "Denying connection from %s", peer);
    return EX_OK;
  }
  if (peer_sa != NULL && peer_sa->sa_family != AF_UNIX && !tcpwrap_allows(c, rfd)) {
    log_msg(LOG_NOTICE, "Denying connection from %s (tcp-wrappers)", peer);
    return EX_OK;
  }
  memset(&m, 0, sizeof m);
  m.c = c;
  m.srv = srv;
  m.local = local;
  m.lazy = true;
  if (c->login_timeout > 0)
    m.deadline = util_now_ms() +
                 ((uint64_t)c->login_timeout + PARAMS_MONITOR_LOGIN_SLACK) * 1000u;
  tls_settings_for(c, srv, &m.tls);
  m.peer = peer;
  m.wfd = m.sfd = -1;
  session_make_stamp(m.stamp, sizeof m.stamp);
  if (peer_sa == NULL || peer_sa->sa_family == AF_UNIX ||
      acl_source_key(peer_sa, peer_len, c->source_prefix_ipv4, c->source_prefix_ipv6,
                     m.source, sizeof m.source) < 0)
    m.source[0] = '\0';
  if (peer_sa != NULL && peer_sa->sa_family != AF_UNIX) {
    char host[NI_MAXHOST];
    if (getnameinfo(peer_sa, peer_len, host, sizeof host, NULL, 0, NI_NUMERICHOST) == 0)
      auth_set_rhost(host);
  }
  m.apop = apop_available(c);
  log_msg(LOG_INFO, "session started: client %s, server %s", peer, local);

  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, wp) < 0) {
    log_msg(LOG_ERR, "monitor: socketpair: %s", strerror(errno));
    return EX_OSERR;
  }
  m.worker = fork();
  if (m.worker < 0) {
    log_msg(LOG_ERR, "monitor: fork: %s", strerror(errno));
    return EX_OSERR;
  }
  if (m.worker == 0) {
    forget_child_state(c);
    close(wp[0]);
    _exit(worker_run(c, srv, rfd, wfd, wp[1], ps_uid, ps_gid, peer, local, m.stamp,
                     m.apop));
  }
  close(wp[1]);
  /* The worker has the session tickets' key; the session-to-be, forked later, must not. */
  tls_tickets_forget();
  m.wfd = wp[0];
  null_fds(rfd, wfd);

  r = dialogue(&m, &tls);
  handed = r == 1;
  broken = r < 0;
  free(m.scram_user);
  free(m.tried);
  if (!handed) {
    auth_user_free(&m.user);
    /* The worker is done or misbehaved: it goes, and so does the session-to-be. */
    if (m.sfd >= 0)
      close(m.sfd);
    m.sfd = -1;
    if (broken) {
      log_msg(LOG_ERR, "monitor: closing the session of %s", peer);
      (void)kill(m.worker, SIGKILL);
    }
    code = wait_child(m.worker);
    (void)wait_child(m.session);
    close(m.wfd);
    return broken ? EX_PROTOCOL : code;
  }
  if (login_note >= 0) {
    (void)send(login_note, "L", 1, MSG_DONTWAIT);
    forget_login_note();
  }
  if (!tls) {
    /* The worker handed the client over and ends. */
    close(m.wfd);
    (void)wait_child(m.worker);
  }
  serve_session(&m);
  auth_user_free(&m.user);
  close(m.sfd);
  code = wait_child(m.session);
  if (tls) {
    close(m.wfd);
    (void)wait_child(m.worker);
  }
  return code;
}

int monitor_run(const struct conf *c, const struct conf_server *srv, int rfd, int wfd,
                const struct sockaddr *peer_sa, socklen_t peer_len, const char *peer,
                const char *local)
{
  int code;

  shared_fd_keep(&kept[0], rfd);
  shared_fd_keep(&kept[1], wfd);
  code = serve_connection(c, srv, rfd, wfd, peer_sa, peer_len, peer, local);
  shared_fd_restore(&kept[0]);
  shared_fd_restore(&kept[1]);
  return code;
}
