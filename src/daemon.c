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

#include "daemon.h"
#include "log.h"
#include "params.h"
#include "session.h"

struct listener {
  int fd;
  const struct conf_server *server;   /* NULL: the implicit wildcard listener */
  char name[128];
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
    got_term = 1;
  if (sig_pipe[1] >= 0)
    (void)!write(sig_pipe[1], &b, 1);
  errno = saved;
}

static int open_listener(struct listener *l, const struct conf_server *srv,
                         const char *host, unsigned port, unsigned backlog)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
  struct addrinfo *res = NULL;
  char portstr[16];
  int fd, one = 1, r;

  memset(l, 0, sizeof *l);
  l->server = srv;
  if (host != NULL && host[0] == '/') {
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(host) >= sizeof sun.sun_path) {
      log_msg(LOG_ERR, "%s: socket path too long", host);
      return -1;
    }
    strcpy(sun.sun_path, host);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return -1;
    (void)unlink(host);
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, (int)backlog) < 0) {
      log_msg(LOG_ERR, "%s: can't listen: %s", host, strerror(errno));
      close(fd);
      return -1;
    }
    snprintf(l->name, sizeof l->name, "%s", host);
    l->fd = fd;
    return 0;
  }
  snprintf(portstr, sizeof portstr, "%u", port);
  if (host == NULL) {
    /* The wildcard listener: one dual-stack IPv6 socket takes IPv4 too; IPv4 alone on
     * hosts without IPv6. */
    hints.ai_family = AF_INET6;
    r = getaddrinfo(NULL, portstr, &hints, &res);
    if (r == 0) {
      fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0)
        close(fd);
      else {
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
    log_msg(LOG_ERR, "%s:%u: %s", host ? host : "*", port, gai_strerror(r));
    return -1;
  }
  fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd < 0) {
    log_msg(LOG_ERR, "socket: %s", strerror(errno));
    freeaddrinfo(res);
    return -1;
  }
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (res->ai_family == AF_INET6 && host == NULL) {
    int zero = 0;   /* the wildcard listener takes IPv4 too */
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, (int)backlog) < 0) {
    log_msg(LOG_ERR, "%s:%u: can't listen: %s", host ? host : "*", port, strerror(errno));
    close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  snprintf(l->name, sizeof l->name, "%s%s%s:%u", host && strchr(host, ':') ? "[" : "",
           host ? host : "*", host && strchr(host, ':') ? "]" : "", port);
  l->fd = fd;
  return 0;
}

static void peer_name(const struct sockaddr_storage *ss, socklen_t len, char *out,
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

static void reap(unsigned *children)
{
  int status;
  pid_t pid;

  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (*children > 0)
      (*children)--;
    if (WIFSIGNALED(status))
      log_msg(LOG_ERR, "child %ld killed by signal %d", (long)pid, WTERMSIG(status));
  }
}

static int write_pidfile(const char *path)
{
  char tmp[4096], buf[32];
  int fd, n;

  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return -1;
  (void)unlink(tmp);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  if (util_write_all(fd, buf, (size_t)n) < 0 || fsync(fd) < 0 || close(fd) < 0 ||
      rename(tmp, path) < 0) {
    (void)unlink(tmp);
    return -1;
  }
  return 0;
}

static int detach(void)
{
  pid_t pid = fork();
  int fd;

  if (pid < 0)
    return -1;
  if (pid > 0)
    _exit(0);
  if (setsid() < 0)
    return -1;
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid > 0)
    _exit(0);
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
  return 0;
}

static void refuse_busy(int fd, time_t *last_log, unsigned max)
{
  static const char msg[] = "-ERR [SYS/TEMP] Too many connections, try again later\r\n";
  time_t now = time(NULL);

  /* Non-blocking: a client that doesn't read can't stall the listener. */
  (void)fcntl(fd, F_SETFL, O_NONBLOCK);
  (void)!write(fd, msg, sizeof msg - 1);
  if (now != *last_log) {
    log_msg(LOG_WARNING, "too many children (%u): refusing connection", max);
    *last_log = now;
  }
}

int daemon_run(struct conf *c)
{
  struct listener *ls;
  size_t nls = 0;
  struct pollfd *pfd;
  unsigned children = 0;
  time_t last_busy_log = 0;
  struct sigaction sa;
  int code = EX_OK;

  ls = util_xcalloc(c->nservers ? c->nservers : 1, sizeof *ls);
  if (c->nservers == 0) {
    if (open_listener(&ls[0], NULL, NULL, c->port, PARAMS_BACKLOG_DEFAULT) < 0)
      return EX_OSERR;
    nls = 1;
  }
  for (size_t i = 0; i < c->nservers; i++) {
    const struct conf_server *srv = &c->servers[i];
    if (open_listener(&ls[nls], srv, srv->addr, srv->port, srv->backlog) < 0)
      return EX_OSERR;
    nls++;
  }
  if (!c->foreground && detach() < 0) {
    log_msg(LOG_ERR, "can't detach: %s", strerror(errno));
    return EX_OSERR;
  }
  if (c->pidfile != NULL && write_pidfile(c->pidfile) < 0)
    log_msg(LOG_ERR, "can't write pidfile %s: %s", c->pidfile, strerror(errno));

  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return EX_OSERR;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  pfd = util_xcalloc(nls + 1, sizeof *pfd);
  for (size_t i = 0; i < nls; i++) {
    pfd[i].fd = ls[i].fd;
    pfd[i].events = POLLIN;
    log_msg(LOG_INFO, "listening on %s", ls[i].name);
  }
  pfd[nls].fd = sig_pipe[0];
  pfd[nls].events = POLLIN;

  while (!got_term) {
    int r = poll(pfd, nls + 1, -1);

    if (r < 0 && errno != EINTR) {
      log_msg(LOG_ERR, "poll: %s", strerror(errno));
      code = EX_OSERR;
      break;
    }
    if (pfd[nls].revents & POLLIN) {
      char drain[64];
      while (read(sig_pipe[0], drain, sizeof drain) > 0)
        ;
    }
    if (got_chld) {
      got_chld = 0;
      reap(&children);
    }
    if (got_hup) {
      got_hup = 0;
      log_msg(LOG_NOTICE, "SIGHUP received: configuration reload is not supported yet, "
              "continuing with the current configuration");
    }
    if (r <= 0)
      continue;
    for (size_t i = 0; i < nls && !got_term; i++) {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      char peer[160];
      const struct conf_server *srv = ls[i].server;
      pid_t pid;
      int fd;

      if (!(pfd[i].revents & POLLIN))
        continue;
      fd = accept4(ls[i].fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
      if (fd < 0)
        continue;
      reap(&children);
      if (c->max_children > 0 && children >= c->max_children) {
        refuse_busy(fd, &last_busy_log, c->max_children);
        close(fd);
        continue;
      }
      peer_name(&ss, sl, peer, sizeof peer);
      if (srv != NULL && srv->single_process) {
        (void)session_run(c, srv, fd, fd, peer, ls[i].name);
        close(fd);
        continue;
      }
      pid = fork();
      if (pid < 0) {
        log_msg(LOG_ERR, "fork: %s", strerror(errno));
        close(fd);
        continue;
      }
      if (pid == 0) {
        for (size_t k = 0; k < nls; k++)
          close(ls[k].fd);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_IGN);
        _exit(session_run(c, srv, fd, fd, peer, ls[i].name));
      }
      children++;
      close(fd);
    }
  }
  log_msg(LOG_INFO, "stopping: %u sessions still running finish on their own", children);
  for (size_t i = 0; i < nls; i++)
    close(ls[i].fd);
  if (c->pidfile != NULL)
    (void)unlink(c->pidfile);
  free(pfd);
  free(ls);
  return code;
}
