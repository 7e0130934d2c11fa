/* worker.c - the unprivileged pre-login process: sandbox, AUTHORIZATION, hand-over or
 * TLS relay (worker.h).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SECCOMP
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#endif

#include "log.h"
#include "privsep.h"
#include "proto.h"
#include "session.h"
#include "tls.h"
#include "worker.h"

static char sandbox_error[160];

#ifdef HAVE_SECCOMP
/* What reading, writing, polling, signing through the monitor and memory management
 * need.  Everything else fails with EACCES (the libraries cope: syslog's reconnect after
 * the log daemon restarted, which calls socket() and connect(), isatty), and these kill
 * the process at once: no exec, no tracing, no listening or socket pairs, no new
 * process, no namespace, no kernel module. */
static const int allowed[] = {
  SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
  SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
  SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(close), SCMP_SYS(shutdown),
  SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap),
  SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(rt_sigaction),
  SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
  SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
  SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getpid), SCMP_SYS(gettid),
  SCMP_SYS(getppid), SCMP_SYS(getrandom), SCMP_SYS(fcntl), SCMP_SYS(fstat),
  SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(futex), SCMP_SYS(setsockopt),
  SCMP_SYS(getsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(getuid),
  SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getresuid),
  SCMP_SYS(getresgid), SCMP_SYS(sched_yield), SCMP_SYS(restart_syscall),
  SCMP_SYS(tgkill), SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(sysinfo),
};
static const int killed[] = {
  SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv),
  SCMP_SYS(process_vm_writev), SCMP_SYS(socketpair), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(clone),
  SCMP_SYS(clone3), SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(unshare), SCMP_SYS(setns),
  SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(chroot), SCMP_SYS(pivot_root),
  SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(kexec_load), SCMP_SYS(bpf),
  SCMP_SYS(perf_event_open), SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key),
  SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup), SCMP_SYS(personality),
  SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid), SCMP_SYS(setregid),
  SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(setgroups), SCMP_SYS(kill),
};

static scmp_filter_ctx build_filter(int *err_r)
{
  scmp_filter_ctx f = seccomp_init(SCMP_ACT_ERRNO(EACCES));
  int r = 0;

  if (f == NULL) {
    *err_r = ENOMEM;
    return NULL;
  }
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && r == 0; i++)
    if (allowed[i] >= 0)
      r = seccomp_rule_add(f, SCMP_ACT_ALLOW, allowed[i], 0);
  for (size_t i = 0; i < sizeof killed / sizeof killed[0] && r == 0; i++)
    if (killed[i] >= 0)
      r = seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, killed[i], 0);
  if (r < 0) {
    seccomp_release(f);
    *err_r = -r;
    return NULL;
  }
  return f;
}

/* The filter compiled once, before serving (worker_init()), so that a connection only
 * loads it: BPF instructions as libseccomp exports them. */
static struct sock_filter *bpf;
static size_t bpf_len;

void worker_init(void)
{
  int err = 0, p[2];
  scmp_filter_ctx f = build_filter(&err);
  char *buf = NULL;
  size_t len = 0, cap = 0;

  if (f == NULL || pipe(p) < 0) {
    if (f != NULL)
      seccomp_release(f);
    return;
  }
  /* The program is a few hundred instructions: it fits the pipe's buffer. */
  if (seccomp_export_bpf(f, p[1]) == 0) {
    close(p[1]);
    for (;;) {
      ssize_t r;
      if (len == cap) {
        cap = cap ? cap * 2 : 4096;
        buf = util_xreallocarray(buf, cap, 1);
      }
      r = read(p[0], buf + len, cap - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      len += (size_t)r;
    }
  } else {
    close(p[1]);
  }
  close(p[0]);
  seccomp_release(f);
  if (len > 0 && len % sizeof(struct sock_filter) == 0 &&
      len / sizeof(struct sock_filter) <= BPF_MAXINSNS) {
    free(bpf);
    bpf = (struct sock_filter *)buf;
    bpf_len = len / sizeof(struct sock_filter);
  } else {
    free(buf);
  }
}

static int load_filter(const char **error_r)
{
  int err = 0, r;
  scmp_filter_ctx f;

  if (bpf != NULL) {
    struct sock_fprog prog = { .len = (unsigned short)bpf_len, .filter = bpf };
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0)
      return 0;
    err = errno;
  } else {
    f = build_filter(&err);
    if (f != NULL) {
      r = seccomp_load(f);
      seccomp_release(f);
      if (r == 0)
        return 0;
      err = -r;
    }
  }
  snprintf(sandbox_error, sizeof sandbox_error, "seccomp: %s", strerror(err));
  *error_r = sandbox_error;
  return -1;
}
#else
void worker_init(void)
{
}
#endif

static int limit(int resource, rlim_t v)
{
  struct rlimit rl = { v, v };

  return setrlimit(resource, &rl);
}

int worker_sandbox(const struct conf *c, uid_t uid, gid_t gid, int top,
                   const char **error_r)
{
  /* Before the chroot: what the log needs from the file system (syslog's socket is
   * already connected: log_open() uses LOG_NDELAY). */
  tzset();
  if (geteuid() == 0) {
    if (uid == (uid_t)-1) {
      *error_r = "privsep-user is unknown: refusing to run the pre-login stage as root";
      return -1;
    }
    if (privsep_drop_worker(uid, gid, c->privsep_chroot, error_r) < 0)
      return -1;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    snprintf(sandbox_error, sizeof sandbox_error, "no-new-privs: %s", strerror(errno));
    *error_r = sandbox_error;
    return -1;
  }
  /* The credentials changed: the parent-death signal is set now, not before. */
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() == 1) {
    *error_r = "the monitor is gone";
    return -1;
  }
  if (limit(RLIMIT_NOFILE, (rlim_t)top + 1 + PARAMS_WORKER_SPARE_FDS) < 0 ||
      limit(RLIMIT_NPROC, 0) < 0 || limit(RLIMIT_CORE, 0) < 0) {
    snprintf(sandbox_error, sizeof sandbox_error, "setrlimit: %s", strerror(errno));
    *error_r = sandbox_error;
    return -1;
  }
#ifdef HAVE_SECCOMP
  {
    const char *err = NULL;

    if (load_filter(&err) < 0)
      log_msg(LOG_WARNING, "worker: running without a system-call filter: %s", err);
  }
#else
  log_msg(LOG_DEBUG, "worker: built without libseccomp: no system-call filter");
#endif
  return 0;
}

/* ---- Hand-over and relay ----------------------------------------------------------- */

/* Plain: the monitor gets the client's descriptors and the input read ahead. */
static int hand_plain(struct session *s, int mfd)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  int rc;

  privsep_msg_init(m, PS_HANDOFF);
  privsep_put_bytes(m, s->t.in + s->t.in_start, s->t.in_end - s->t.in_start);
  privsep_put_fd(m, s->t.rfd);
  privsep_put_fd(m, s->t.wfd);
  rc = privsep_send(mfd, m);
  util_wipe(m->buf, m->len);
  free(m);
  return rc;
}

enum relay_io { IO_OK, IO_AGAIN_READ, IO_AGAIN_WRITE, IO_END };

static void bye(struct session *s)
{
  uint64_t deadline = util_now_ms() + (uint64_t)PARAMS_TLS_BYE_TIMEOUT * 1000u;

  for (;;) {
    int r = tls_conn_bye(s->t.tls);
    struct pollfd p = { .fd = r == TLS_IO_WANT_READ ? s->t.rfd : s->t.wfd,
                        .events = r == TLS_IO_WANT_READ ? POLLIN : POLLOUT };
    uint64_t now = util_now_ms();

    if ((r != TLS_IO_WANT_READ && r != TLS_IO_WANT_WRITE) || now >= deadline ||
        poll(&p, 1, (int)(deadline - now)) <= 0)
      return;
  }
}

/* Under TLS: relay between the client (TLS) and the session (plaintext on sfd) until
 * either side ends.  The session has the timeouts; this only moves bytes. */
static void relay(struct session *s, int sfd)
{
  char *up = util_xmalloc(PARAMS_RELAY_BLOCK), *down = util_xmalloc(PARAMS_RELAY_BLOCK);
  size_t up_len = 0, up_off = 0, down_len = 0, down_off = 0;
  bool client_eof = false, session_eof = false;

  /* What the client pipelined after its login goes first. */
  up_len = s->t.in_end - s->t.in_start;
  memcpy(up, s->t.in + s->t.in_start, up_len);
  /* The buffer still holds the lines already read, the login's among them: the relay
   * lives as long as the session and needs none of it. */
  util_wipe(s->t.in, sizeof s->t.in);
  s->t.in_start = s->t.in_end = 0;
  for (;;) {
    struct pollfd p[3];
    nfds_t n = 0;
    bool progress = false, want_cr = false, want_cw = false, want_sr = false,
         want_sw = false;

    if (!client_eof && up_len == 0) {
      ssize_t r = tls_conn_recv(s->t.tls, up, PARAMS_RELAY_BLOCK);
      if (r > 0) {
        up_len = (size_t)r;
        up_off = 0;
        progress = true;
      } else if (r == TLS_IO_WANT_READ) {
        want_cr = true;
      } else if (r == TLS_IO_WANT_WRITE) {
        want_cw = true;
      } else {
        client_eof = true;
        (void)shutdown(sfd, SHUT_WR);
      }
    }
    if (up_off < up_len) {
      ssize_t w = write(sfd, up + up_off, up_len - up_off);
      if (w > 0) {
        up_off += (size_t)w;
        progress = true;
        if (up_off == up_len)
          up_len = up_off = 0;
      } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
        want_sw = true;
      } else {
        break;                  /* the session is gone */
      }
    }
    if (!session_eof && down_len == 0) {
      ssize_t r = read(sfd, down, PARAMS_RELAY_BLOCK);
      if (r > 0) {
        down_len = (size_t)r;
        down_off = 0;
        progress = true;
      } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        want_sr = true;
      } else {
        session_eof = true;
      }
    }
    if (down_off < down_len) {
      ssize_t w = tls_conn_send(s->t.tls, down + down_off, down_len - down_off);
      if (w > 0) {
        down_off += (size_t)w;
        progress = true;
        if (down_off == down_len)
          down_len = down_off = 0;
      } else if (w == TLS_IO_WANT_WRITE) {
        want_cw = true;
      } else if (w == TLS_IO_WANT_READ) {
        want_cr = true;
      } else {
        break;                  /* the client is gone */
      }
    }
    if (session_eof && down_len == 0) {
      bye(s);
      break;
    }
    if (progress)
      continue;
    if (want_cr || want_cw)
      p[n++] = (struct pollfd){ .fd = want_cr ? s->t.rfd : s->t.wfd,
                                .events = want_cr ? POLLIN : POLLOUT };
    if (want_cr && want_cw)
      p[n++] = (struct pollfd){ .fd = s->t.wfd, .events = POLLOUT };
    if (want_sr || want_sw)
      p[n++] = (struct pollfd){ .fd = sfd, .events = (short)((want_sr ? POLLIN : 0) |
                                                             (want_sw ? POLLOUT : 0)) };
    if (n == 0)
      break;
    if (poll(p, n, -1) < 0 && errno != EINTR)
      break;
  }
  free(up);
  free(down);
}

static int hand_tls(struct session *s, int mfd)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const char *err = NULL;
  int sfd;

  privsep_msg_init(m, PS_HANDOFF_TLS);
  if (privsep_call(mfd, m, PS_RELAY, &err) < 0 || m->nfds != 1 || m->len != 0) {
    log_msg(LOG_ERR, "worker: no relay from the monitor: %s", err ? err : "malformed");
    privsep_msg_clear(m);
    free(m);
    return -1;
  }
  sfd = m->fds[0];
  m->nfds = 0;
  free(m);
  close(mfd);
  {
    int fl = fcntl(sfd, F_GETFL);
    if (fl >= 0)
      (void)fcntl(sfd, F_SETFL, fl | O_NONBLOCK);
  }
  relay(s, sfd);
  close(sfd);
  return 0;
}

int worker_run(const struct conf *c, const struct conf_server *srv, int rfd, int wfd,
               int mfd, uid_t uid, gid_t gid, const char *peer, const char *local,
               const char *stamp, bool apop)
{
  struct session s;
  const char *err = NULL;
  int code = EX_OK;

  session_init(&s, c, srv, rfd, wfd, peer, local);
  s.monitor_fd = mfd;
  /* From the connection to the login, TLS handshake included. */
  if (c->login_timeout > 0)
    s.t.hard_deadline = util_now_ms() + (uint64_t)c->login_timeout * 1000u;
  snprintf(s.stamp, sizeof s.stamp, "%s", stamp);
  s.apop = apop;
  tls_set_signer(mfd);
  session_prepare_tls(&s);
  if (worker_sandbox(c, uid, gid, rfd > wfd ? (rfd > mfd ? rfd : mfd) : (wfd > mfd ? wfd : mfd),
                     &err) < 0) {
    log_msg(LOG_ERR, "worker: can't enter the sandbox: %s", err);
    proto_status(&s.t, false, "SYS/TEMP", "Server unavailable");
    transport_close(&s.t);
    session_free(&s);
    return EX_OSERR;
  }
  session_authorization(&s);
  if (s.handoff) {
    /* The reply to the login is the session's: it comes after the maildrop opens. */
    if (transport_flush(&s.t) != TRANSPORT_OK)
      code = EX_OK;
    else if (!transport_is_tls(&s.t))
      code = hand_plain(&s, mfd) < 0 ? EX_SOFTWARE : EX_OK;
    else
      code = hand_tls(&s, mfd) < 0 ? EX_SOFTWARE : EX_OK;
    session_free(&s);
    return code;
  }
  transport_close(&s.t);
  code = session_finish(&s);
  session_free(&s);
  return code;
}
