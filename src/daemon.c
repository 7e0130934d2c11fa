/* daemon.c - the standalone listener.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "daemon.h"
#include "log.h"
#include "monitor.h"
#include "params.h"
#include "session.h"

/* The implicit listener (no server block) is this index. */
#define IMPLICIT SIZE_MAX

struct listener {
  int fd;
  char *addr;              /* NULL: the wildcard address */
  unsigned port;
  unsigned backlog;
  size_t srv;              /* index into conf servers, or IMPLICIT */
  char name[128];
};

/* A live child: one connection's monitor. */
struct kid {
  pid_t pid;
  bool authed;                      /* its client logged in (the monitor said so) */
  char source[ACL_SOURCE_KEY_MAX];  /* acl_source_key(); "" for a UNIX socket client */
};

struct daemon {
  struct conf *c;
  const struct daemon_reload *reload;
  struct conf_server implicit;   /* what a listener without a server block uses */
  struct listener *ls;
  size_t nls;
  struct kid *kids;        /* live children, for the counts and for the shutdown */
  size_t nkids, kids_cap;
  int logins;              /* where monitors say a client logged in (SOCK_DGRAM) */
  struct refusals {
    time_t last_log;
    unsigned long n;
  } busy, preauth, per_source;
  char *pidfile;           /* the pidfile we wrote, removed at exit */
};

static volatile sig_atomic_t got_chld, got_term, got_hup;
static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
  int saved = errno;
  char b = (char)sig;

  if (sig == SIGCHLD)
    got_chld = 1;
  else if (sig == SIGHUP)
    got_hup = 1;
  else
    got_term++;
  if (sig_pipe[1] >= 0)
    (void)!write(sig_pipe[1], &b, 1);
  errno = saved;
}

static const struct conf_server *listener_server(const struct daemon *d,
                                                 const struct listener *l)
{
  return l->srv == IMPLICIT ? &d->implicit : &d->c->servers[l->srv];
}

static bool same_addr(const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void listener_name(struct listener *l)
{
  const char *h = l->addr;

  if (h != NULL && h[0] == '/')
    snprintf(l->name, sizeof l->name, "%s", h);
  else
    snprintf(l->name, sizeof l->name, "%s%s%s:%u", h && strchr(h, ':') ? "[" : "",
             h ? h : "*", h && strchr(h, ':') ? "]" : "", l->port);
}

/* What listen() gets for a configured backlog (see PARAMS_LISTEN_BACKLOG_MIN). */
static int listen_backlog(unsigned backlog)
{
  return backlog < PARAMS_LISTEN_BACKLOG_MIN ? PARAMS_LISTEN_BACKLOG_MIN : (int)backlog;
}

static int open_unix(const char *path, unsigned backlog)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int fd;

  if (strlen(path) >= sizeof sun.sun_path) {
    log_msg(LOG_ERR, "%s: socket path too long", path);
    return -1;
  }
  memcpy(sun.sun_path, path, strlen(path) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    log_msg(LOG_ERR, "%s: socket: %s", path, strerror(errno));
    return -1;
  }
  (void)unlink(path);
  if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
      listen(fd, listen_backlog(backlog)) < 0) {
    log_msg(LOG_ERR, "%s: can't listen: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* Bind and listen; fills l->fd.  host NULL is the wildcard: one dual-stack IPv6 socket
 * takes IPv4 too, IPv4 alone on hosts without IPv6. */
static int open_listener(struct listener *l)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
  struct addrinfo *res = NULL;
  const char *host = l->addr;
  char portstr[16];
  int fd, one = 1, r;

  listener_name(l);
  if (host != NULL && host[0] == '/') {
    l->fd = open_unix(host, l->backlog);
    return l->fd < 0 ? -1 : 0;
  }
  snprintf(portstr, sizeof portstr, "%u", l->port);
  if (host == NULL) {
    hints.ai_family = AF_INET6;
    r = getaddrinfo(NULL, portstr, &hints, &res);
    if (r == 0) {
      fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        close(fd);
      } else {
        freeaddrinfo(res);
        res = NULL;
      }
    }
    if (res == NULL) {
      hints.ai_family = AF_INET;
      r = getaddrinfo(NULL, portstr, &hints, &res);
    }
  } else {
    r = getaddrinfo(host, portstr, &hints, &res);
  }
  if (r != 0) {
    log_msg(LOG_ERR, "%s: %s", l->name, gai_strerror(r));
    return -1;
  }
  /* Non-blocking: a connection reset between poll() and accept() must not stall the
   * listener in accept(). */
  fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
              res->ai_protocol);
  if (fd < 0) {
    log_msg(LOG_ERR, "%s: socket: %s", l->name, strerror(errno));
    freeaddrinfo(res);
    return -1;
  }
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (res->ai_family == AF_INET6) {
    /* The wildcard takes IPv4 too; an explicit [::] or [::1] means IPv6 only, so that
     * a separate 0.0.0.0 block on the same port can bind. */
    int v6only = host != NULL;
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
      listen(fd, listen_backlog(l->backlog)) < 0) {
    log_msg(LOG_ERR, "%s: can't listen: %s", l->name, strerror(errno));
    close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  l->fd = fd;
  return 0;
}

/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: log and match them as the
 * IPv4 address they are. */
static void unmap_v4(struct sockaddr_storage *ss, socklen_t *len)
{
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
  struct sockaddr_in in = { .sin_family = AF_INET };

  if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
    return;
  in.sin_port = in6->sin6_port;
  memcpy(&in.sin_addr, in6->sin6_addr.s6_addr + 12, 4);
  memset(ss, 0, sizeof *ss);
  memcpy(ss, &in, sizeof in);
  *len = sizeof in;
}

static void addr_name(const struct sockaddr_storage *ss, socklen_t len, char *out,
                      size_t outlen)
{
  char host[NI_MAXHOST], serv[NI_MAXSERV];

  if (ss->ss_family == AF_UNIX) {
    snprintf(out, outlen, "local");
    return;
  }
  if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, outlen, "unknown");
    return;
  }
  snprintf(out, outlen, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static void kids_add(struct daemon *d, pid_t pid, const char *source)
{
  struct kid *k;

  if (d->nkids == d->kids_cap) {
    d->kids_cap = d->kids_cap ? 2 * d->kids_cap : 16;
    d->kids = util_xreallocarray(d->kids, d->kids_cap, sizeof *d->kids);
  }
  k = &d->kids[d->nkids++];
  k->pid = pid;
  k->authed = false;
  snprintf(k->source, sizeof k->source, "%s", source);
}

/* Read what the monitors said: each datagram is one client that logged in, its monitor
 * named by the kernel (SCM_CREDENTIALS), not by the message. */
static void read_logins(struct daemon *d)
{
  for (;;) {
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf };
    const struct cmsghdr *cm;
    struct ucred cred;

    if (d->logins < 0 || recvmsg(d->logins, &mh, MSG_DONTWAIT) < 0)
      return;
    cm = CMSG_FIRSTHDR(&mh);
    if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_CREDENTIALS ||
        cm->cmsg_len != CMSG_LEN(sizeof cred))
      continue;
    memcpy(&cred, CMSG_DATA(cm), sizeof cred);
    for (size_t i = 0; i < d->nkids; i++)
      if (d->kids[i].pid == cred.pid)
        d->kids[i].authed = true;
  }
}

/* The sessions not logged in yet, in all and from source. */
static void count_preauth(const struct daemon *d, const char *source, size_t *all,
                          size_t *same)
{
  *all = *same = 0;
  for (size_t i = 0; i < d->nkids; i++) {
    if (d->kids[i].authed)
      continue;
    (*all)++;
    if (source[0] != '\0' && strcmp(d->kids[i].source, source) == 0)
      (*same)++;
  }
}

/* The cap on sessions not logged in yet: max-preauth-children, by default three
 * quarters of max-children (rounded up); 0 for none of its own. */
static size_t preauth_cap(const struct conf *c)
{
  if (c->max_preauth_children != CONF_UNSET)
    return c->max_preauth_children;
  return c->max_children - c->max_children / 4;
}

/* Reap every child that has ended; only our own session children count, so the count
 * stays right whatever the way they ended. */
static void reap(struct daemon *d)
{
  int status;
  pid_t pid;

  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < d->nkids; i++)
      if (d->kids[i].pid == pid) {
        d->kids[i] = d->kids[--d->nkids];
        break;
      }
    if (WIFSIGNALED(status))
      log_msg(LOG_ERR, "child %ld terminated by signal %d", (long)pid, WTERMSIG(status));
  }
}

/* 0 when the pidfile is absent or stale (its process is gone), -1 when a live process
 * other than us holds it. */
static int pidfile_check(const char *path)
{
  char buf[32];
  ssize_t n;
  long pid;
  char *end;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0)
    return 0;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  errno = 0;
  pid = strtol(buf, &end, 10);
  if (errno != 0 || end == buf || pid <= 0 || (pid_t)pid != pid || (pid_t)pid == getpid())
    return 0;
  if (kill((pid_t)pid, 0) == 0 || errno == EPERM) {
    log_msg(LOG_ERR, "%s: pop3d is already running as pid %ld", path, pid);
    return -1;
  }
  log_msg(LOG_NOTICE, "%s: removing the stale pidfile of pid %ld", path, pid);
  return 0;
}

/* Written to a temporary name and renamed, so that a reader never sees a partial pid. */
static int write_pidfile(const char *path)
{
  char *tmp = util_xasprintf("%s.%ld.tmp", path, (long)getpid());
  char buf[32];
  int fd, n;

  (void)unlink(tmp);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(tmp);
    return -1;
  }
  n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  if (util_write_all(fd, buf, (size_t)n) < 0 || fsync(fd) < 0) {
    close(fd);
    (void)unlink(tmp);
    free(tmp);
    return -1;
  }
  if (close(fd) < 0 || rename(tmp, path) < 0) {
    (void)unlink(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return 0;
}

/* Detach: fork, setsid, fork again (never a controlling terminal), chdir /, standard
 * descriptors on /dev/null.  The process that was started waits on *ready until the
 * daemon has written its pidfile, so that "pop3d -d" returning means it serves. */
static int detach(int *ready_w)
{
  int p[2];
  pid_t pid;
  int fd;
  char b;

  if (pipe2(p, O_CLOEXEC) < 0)
    return -1;
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid > 0) {
    ssize_t n;

    close(p[1]);
    while ((n = read(p[0], &b, 1)) < 0 && errno == EINTR)
      ;
    _exit(n == 1 ? EX_OK : EX_OSERR);
  }
  close(p[0]);
  if (setsid() < 0)
    return -1;
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid > 0)
    _exit(EX_OK);
  if (chdir("/") < 0)
    return -1;
  fd = open("/dev/null", O_RDWR);
  if (fd < 0)
    return -1;
  (void)dup2(fd, 0);
  (void)dup2(fd, 1);
  (void)dup2(fd, 2);
  if (fd > 2)
    close(fd);
  *ready_w = p[1];
  return 0;
}

/* Refuse a connection at once with msg; log why at most every
 * PARAMS_BUSY_LOG_INTERVAL seconds per reason (what, its limit and how many). */
static void refuse(struct refusals *r, int fd, const char *msg, const char *what,
                   size_t limit)
{
  time_t now = time(NULL);

  /* Non-blocking: a client that doesn't read can't stall the listener. */
  (void)fcntl(fd, F_SETFL, O_NONBLOCK);
  (void)!write(fd, msg, strlen(msg));
  r->n++;
  if (now - r->last_log >= PARAMS_BUSY_LOG_INTERVAL) {
    log_msg(LOG_WARNING, "%s (%zu): refused %lu connection%s", what, limit, r->n,
            r->n == 1 ? "" : "s");
    r->last_log = now;
    r->n = 0;
  }
}

/* May one more client from source (its acl_source_key(), or "") start a session?  If
 * not, it has been told why and the refusal counted. */
static bool admit(struct daemon *d, int fd, const char *source)
{
  const struct conf *c = d->c;
  size_t all, same, cap = preauth_cap(c);

  if (c->max_children > 0 && d->nkids >= c->max_children) {
    refuse(&d->busy, fd, "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
           "too many children", c->max_children);
    return false;
  }
  read_logins(d);
  count_preauth(d, source, &all, &same);
  if (cap > 0 && all >= cap) {
    refuse(&d->preauth, fd, "-ERR [SYS/TEMP] Too many connections waiting to log in, "
           "try again later\r\n", "too many children not logged in", cap);
    return false;
  }
  if (c->max_preauth_per_source > 0 && same >= c->max_preauth_per_source) {
    char what[40 + ACL_SOURCE_KEY_MAX];

    snprintf(what, sizeof what, "too many children not logged in from %s", source);
    refuse(&d->per_source, fd, "-ERR [SYS/TEMP] Too many connections from your address, "
           "try again later\r\n", what, c->max_preauth_per_source);
    return false;
  }
  return true;
}

static void session_id(void)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  unsigned char rnd[8];
  char id[sizeof rnd + 3];

  if (util_random(rnd, sizeof rnd) < 0) {
    unsigned long v = (unsigned long)getpid() ^ (unsigned long)time(NULL);
    for (size_t i = 0; i < sizeof rnd; i++, v >>= 4)
      rnd[i] = (unsigned char)v;
  }
  for (size_t i = 0; i < sizeof rnd; i++)
    id[i] = alphabet[rnd[i] % 32];
  memcpy(id + sizeof rnd, ": ", 3);
  log_set_prefix(id);
}

/* The part of a connection that runs in its own process, the monitor: session id,
 * then monitor_run() (access control, worker, session). */
static int serve(const struct conf *c, const struct conf_server *srv, int fd,
                 const struct sockaddr_storage *ss, socklen_t sl)
{
  struct sockaddr_storage local;
  socklen_t ll = sizeof local;
  char peer[160], lname[160];
  int code;

  if (c->log_session_id)
    session_id();
  addr_name(ss, sl, peer, sizeof peer);
  if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0) {
    unmap_v4(&local, &ll);
    addr_name(&local, ll, lname, sizeof lname);
  } else {
    snprintf(lname, sizeof lname, "unknown");
  }
  code = monitor_run(c, srv, fd, fd, (const struct sockaddr *)ss, sl, peer, lname);
  log_set_prefix(NULL);
  return code;
}

static void child_setup(struct daemon *d)
{
  for (size_t k = 0; k < d->nls; k++)
    close(d->ls[k].fd);
  if (d->logins >= 0)
    close(d->logins);
  close(sig_pipe[0]);
  close(sig_pipe[1]);
  sig_pipe[0] = sig_pipe[1] = -1;
  signal(SIGCHLD, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGHUP, SIG_IGN);
}

/* Accept one connection; false when none was waiting. */
static bool accept_one(struct daemon *d, size_t i)
{
  const struct conf_server *srv = listener_server(d, &d->ls[i]);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char source[ACL_SOURCE_KEY_MAX] = "";
  pid_t pid;
  int fd;

  fd = accept4(d->ls[i].fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EMFILE || errno == ENFILE)
      log_msg(LOG_ERR, "accept: %s", strerror(errno));
    return false;
  }
  unmap_v4(&ss, &sl);
  reap(d);
  if (ss.ss_family != AF_UNIX &&
      acl_source_key((const struct sockaddr *)&ss, sl, d->c->source_prefix_ipv4,
                     d->c->source_prefix_ipv6, source, sizeof source) < 0)
    source[0] = '\0';
  if (!admit(d, fd, source)) {
    close(fd);
    return true;
  }
  pid = fork();
  if (pid < 0) {
    log_msg(LOG_ERR, "fork: %s", strerror(errno));
    close(fd);
    return true;
  }
  if (pid == 0) {
    child_setup(d);
    _exit(serve(d->c, srv, fd, &ss, sl));
  }
  close(fd);
  if (srv->single_process) {
    /* One client at a time, as Mailutils' debugging mode, but never in the listener's
     * own process: it would become the user who logs in. */
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
    return true;
  }
  kids_add(d, pid, source);
  return true;
}

static void implicit_from(struct conf_server *s, const struct conf *c)
{
  memset(s, 0, sizeof *s);
  s->port = c->port;
  s->timeout = c->timeout;
  s->backlog = PARAMS_BACKLOG_DEFAULT;
  s->tls_mode = CONF_TLS_UNSET;
}

/* The listeners a configuration asks for, not yet opened (fd -1). */
static struct listener *wanted(const struct conf *c, size_t *n)
{
  struct listener *v = util_xcalloc(c->nservers ? c->nservers : 1, sizeof *v);

  if (c->nservers == 0) {
    v[0].fd = -1;
    v[0].port = c->port;
    v[0].backlog = PARAMS_BACKLOG_DEFAULT;
    v[0].srv = IMPLICIT;
    listener_name(&v[0]);
    *n = 1;
    return v;
  }
  for (size_t i = 0; i < c->nservers; i++) {
    v[i].fd = -1;
    v[i].addr = c->servers[i].addr ? util_xstrdup(c->servers[i].addr) : NULL;
    v[i].port = c->servers[i].port;
    v[i].backlog = c->servers[i].backlog;
    v[i].srv = i;
    listener_name(&v[i]);
  }
  *n = c->nservers;
  return v;
}

static void listeners_free(struct listener *v, size_t n, bool close_fds)
{
  for (size_t i = 0; i < n; i++) {
    if (close_fds && v[i].fd >= 0)
      close(v[i].fd);
    free(v[i].addr);
  }
  free(v);
}

/* Open every wanted listener, taking over the socket of an old one with the same
 * address (old[k].fd becomes -1).  All or nothing: -1 leaves old as it was. */
static int open_all(struct listener *v, size_t n, struct listener *old, size_t nold)
{
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < nold; k++) {
      if (old[k].fd < 0 || old[k].port != v[i].port || !same_addr(old[k].addr, v[i].addr))
        continue;
      v[i].fd = old[k].fd;
      old[k].fd = -1;
      /* listen() again only changes the backlog of a listening socket. */
      if (old[k].backlog != v[i].backlog)
        (void)listen(v[i].fd, listen_backlog(v[i].backlog));
      break;
    }
    if (v[i].fd < 0 && open_listener(&v[i]) < 0) {
      /* Give the sockets taken over back. */
      for (size_t j = 0; j < i; j++)
        for (size_t k = 0; k < nold; k++)
          if (old[k].fd < 0 && old[k].port == v[j].port &&
              same_addr(old[k].addr, v[j].addr)) {
            old[k].fd = v[j].fd;
            v[j].fd = -1;
            break;
          }
      for (size_t j = 0; j < n; j++)
        if (v[j].fd >= 0) {
          close(v[j].fd);
          v[j].fd = -1;
        }
      return -1;
    }
  }
  return 0;
}

/* Log each line the parser printed. */
static void log_lines(char *text)
{
  for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
    log_msg(LOG_ERR, "%s", line);
}

static void set_pidfile(struct daemon *d, const char *path)
{
  if (same_addr(d->pidfile, path))
    return;
  if (path != NULL && write_pidfile(path) < 0) {
    log_msg(LOG_ERR, "can't write pidfile %s: %s", path, strerror(errno));
    return;
  }
  if (d->pidfile != NULL)
    (void)unlink(d->pidfile);
  free(d->pidfile);
  d->pidfile = path ? util_xstrdup(path) : NULL;
}

/* SIGHUP: build the configuration again; on any error keep the running one. */
static void reload(struct daemon *d)
{
  struct conf fresh;
  char *text = NULL;
  size_t textlen = 0;
  FILE *err;
  int errors;
  struct listener *v;
  size_t n;

  if (d->reload == NULL) {
    log_msg(LOG_NOTICE, "SIGHUP: no way to reload, keeping the configuration");
    return;
  }
  err = open_memstream(&text, &textlen);
  if (err == NULL) {
    log_msg(LOG_ERR, "SIGHUP: %s; keeping the configuration", strerror(errno));
    return;
  }
  errors = d->reload->load(&fresh, err, d->reload->arg);
  fclose(err);
  if (errors > 0) {
    log_lines(text);
    log_msg(LOG_ERR, "SIGHUP: %d configuration error%s, keeping the running "
            "configuration", errors, errors == 1 ? "" : "s");
    free(text);
    conf_free(&fresh);
    return;
  }
  if (text != NULL && text[0] != '\0')
    log_lines(text);
  free(text);
  /* Started as a daemon, attached or not: that can't change without a restart. */
  fresh.mode = CONF_MODE_DAEMON;
  fresh.foreground = d->c->foreground;
  v = wanted(&fresh, &n);
  if (open_all(v, n, d->ls, d->nls) < 0) {
    log_msg(LOG_ERR, "SIGHUP: can't open the new listeners, keeping the running "
            "configuration");
    listeners_free(v, n, true);
    conf_free(&fresh);
    return;
  }
  for (size_t k = 0; k < d->nls; k++)
    if (d->ls[k].fd >= 0)
      log_msg(LOG_INFO, "no longer listening on %s", d->ls[k].name);
  listeners_free(d->ls, d->nls, true);
  d->ls = v;
  d->nls = n;
  conf_free(d->c);
  *d->c = fresh;
  implicit_from(&d->implicit, d->c);
  log_open(d->c->log_tag, d->c->log_facility, d->c->log_syslog && !d->c->foreground,
           d->c->log_print_severity, d->c->log_severity);
  set_pidfile(d, d->c->pidfile);
  log_msg(LOG_NOTICE, "configuration reloaded; listening on %zu address%s", d->nls,
          d->nls == 1 ? "" : "es");
}

static void drain_signals(void)
{
  char drain[64];

  while (read(sig_pipe[0], drain, sizeof drain) > 0)
    ;
}

/* SIGTERM: no more connections; running sessions get PARAMS_SHUTDOWN_GRACE seconds
 * (a second SIGTERM cuts that short), then are terminated. */
static void shutdown_children(struct daemon *d)
{
  uint64_t deadline = util_now_ms() + PARAMS_SHUTDOWN_GRACE * 1000u;
  int first = got_term;

  reap(d);
  if (d->nkids > 0)
    log_msg(LOG_INFO, "stopping: waiting up to %d s for %zu session%s",
            PARAMS_SHUTDOWN_GRACE,
            d->nkids, d->nkids == 1 ? "" : "s");
  while (d->nkids > 0 && got_term == first) {
    struct pollfd p = { .fd = sig_pipe[0], .events = POLLIN };
    uint64_t now = util_now_ms();

    if (now >= deadline)
      break;
    (void)poll(&p, 1, (int)(deadline - now));
    drain_signals();
    reap(d);
  }
  if (d->nkids == 0)
    return;
  log_msg(LOG_NOTICE, "stopping: terminating %zu session%s", d->nkids,
          d->nkids == 1 ? "" : "s");
  for (size_t i = 0; i < d->nkids; i++)
    (void)kill(d->kids[i].pid, SIGTERM);
  deadline = util_now_ms() + 2000;
  while (d->nkids > 0 && util_now_ms() < deadline) {
    struct pollfd p = { .fd = sig_pipe[0], .events = POLLIN };

    (void)poll(&p, 1, 50);
    drain_signals();
    reap(d);
  }
  for (size_t i = 0; i < d->nkids; i++)
    (void)kill(d->kids[i].pid, SIGKILL);
  while (d->nkids > 0) {
    int status;
    pid_t pid = waitpid(d->kids[0].pid, &status, 0);

    if (pid < 0 && errno == EINTR)
      continue;
    d->kids[0] = d->kids[--d->nkids];
  }
}

/* A daemon started with a closed standard descriptor would get a listening socket as
 * fd 0, 1 or 2 and lose it to the /dev/null of detach. */
static void fill_std_fds(void)
{
  for (;;) {
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0)
      return;
    if (fd > 2) {
      close(fd);
      return;
    }
  }
}

/* The datagram socket on which monitors say that their client logged in: the
 * listener reads one end, every monitor inherits the other (monitor_set_login_note()). */
static int open_logins(struct daemon *d)
{
  int sp[2], on = 1;

  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0)
    return -1;
  if (setsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0 ||
      fcntl(sp[1], F_SETFL, O_NONBLOCK) < 0) {
    close(sp[0]);
    close(sp[1]);
    return -1;
  }
  d->logins = sp[0];
  monitor_set_login_note(sp[1]);
  return 0;
}

static int install_signals(void)
{
  struct sigaction sa;

  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return -1;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGCHLD, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
      sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
    return -1;
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

int daemon_run(struct conf *c, const struct daemon_reload *reload_how)
{
  struct daemon d;
  struct pollfd *pfd = NULL;
  size_t npfd = 0;
  int code = EX_OK, ready_w = -1;

  memset(&d, 0, sizeof d);
  d.c = c;
  d.logins = -1;
  d.reload = reload_how;
  implicit_from(&d.implicit, c);
  fill_std_fds();
  if (c->pidfile != NULL && pidfile_check(c->pidfile) < 0)
    return EX_UNAVAILABLE;
  d.ls = wanted(c, &d.nls);
  if (open_all(d.ls, d.nls, NULL, 0) < 0) {
    listeners_free(d.ls, d.nls, true);
    return EX_OSERR;
  }
  if (install_signals() < 0 || open_logins(&d) < 0) {
    log_msg(LOG_ERR, "signals: %s", strerror(errno));
    listeners_free(d.ls, d.nls, true);
    return EX_OSERR;
  }
  if (!c->foreground && detach(&ready_w) < 0) {
    log_msg(LOG_ERR, "can't detach: %s", strerror(errno));
    listeners_free(d.ls, d.nls, true);
    return EX_OSERR;
  }
  if (c->pidfile != NULL)
    set_pidfile(&d, c->pidfile);
  for (size_t i = 0; i < d.nls; i++)
    log_msg(LOG_INFO, "listening on %s", d.ls[i].name);
  if (ready_w >= 0) {
    (void)!write(ready_w, "", 1);
    close(ready_w);
  }

  while (!got_term) {
    int r;

    if (npfd != d.nls + 1) {
      free(pfd);
      npfd = d.nls + 1;
      pfd = util_xcalloc(npfd, sizeof *pfd);
    }
    for (size_t i = 0; i < d.nls; i++) {
      pfd[i].fd = d.ls[i].fd;
      pfd[i].events = POLLIN;
      pfd[i].revents = 0;
    }
    pfd[d.nls].fd = sig_pipe[0];
    pfd[d.nls].events = POLLIN;
    pfd[d.nls].revents = 0;
    r = poll(pfd, npfd, -1);
    if (r < 0 && errno != EINTR) {
      log_msg(LOG_ERR, "poll: %s", strerror(errno));
      code = EX_OSERR;
      break;
    }
    if (pfd[d.nls].revents & POLLIN)
      drain_signals();
    if (got_chld) {
      got_chld = 0;
      reap(&d);
    }
    if (got_term)
      break;
    if (got_hup) {
      got_hup = 0;
      reload(&d);
      continue;      /* the listener table may have changed */
    }
    if (r <= 0)
      continue;
    for (size_t i = 0; i < d.nls && !got_term; i++)
      /* Take a burst from the queue in one wake-up, a bounded number so that one
       * busy listener can't starve the others or the signals. */
      for (int k = 0; k < 64 && (pfd[i].revents & POLLIN) && !got_term; k++)
        if (!accept_one(&d, i))
          break;
  }
  log_msg(LOG_INFO, "stopping on signal: no more connections");
  for (size_t i = 0; i < d.nls; i++) {
    if (d.ls[i].fd >= 0)
      close(d.ls[i].fd);
    d.ls[i].fd = -1;
    if (d.ls[i].addr != NULL && d.ls[i].addr[0] == '/')
      (void)unlink(d.ls[i].addr);
  }
  shutdown_children(&d);
  if (d.pidfile != NULL)
    (void)unlink(d.pidfile);
  free(d.pidfile);
  free(d.kids);
  free(pfd);
  listeners_free(d.ls, d.nls, false);
  close(sig_pipe[0]);
  close(sig_pipe[1]);
  sig_pipe[0] = sig_pipe[1] = -1;
  close(d.logins);
  monitor_set_login_note(-1);
  return code;
}
