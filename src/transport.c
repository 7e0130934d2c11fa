/* transport.c - buffered, timed I/O over a plain fd pair or a TLS session on it.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls.h"
#include "transport.h"
#include "util.h"

static void set_nonblock(int fd)
{
  int fl = fcntl(fd, F_GETFL);

  if (fl >= 0 && !(fl & O_NONBLOCK))
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void set_nodelay(int fd)
{
  int one = 1;

  /* Fails harmlessly with ENOTSOCK/EOPNOTSUPP on pipes and UNIX sockets. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void transport_init(struct transport *t, int rfd, int wfd, size_t outbuf_size,
                    unsigned timeout)
{
  memset(t, 0, sizeof *t);
  t->rfd = rfd;
  t->wfd = wfd;
  t->timeout = timeout;
  if (outbuf_size < PARAMS_OUTBUF_MIN)
    outbuf_size = PARAMS_OUTBUF_MIN;
  if (outbuf_size > PARAMS_OUTBUF_MAX)
    outbuf_size = PARAMS_OUTBUF_MAX;
  t->out = util_xmalloc(outbuf_size);
  t->out_cap = outbuf_size;
  set_nonblock(rfd);
  set_nonblock(wfd);
  set_nodelay(wfd);
}

void transport_free(struct transport *t)
{
  tls_conn_free(t->tls);
  t->tls = NULL;
  free(t->out);
  t->out = NULL;
}

/* Wait until fd is ready for events, at most until deadline (util_now_ms() time; 0 =
 * none).  The wait is cut in slices so that the idle callback runs while a client
 * thinks. */
static enum transport_status wait_until(const struct transport *t, int fd, short events,
                                        uint64_t deadline)
{
  struct pollfd p = { .fd = fd, .events = events };

  for (;;) {
    uint64_t slice = (uint64_t)PARAMS_LOCK_TOUCH_INTERVAL * 1000u;
    int r;

    if (deadline) {
      uint64_t now = util_now_ms();
      if (now >= deadline)
        return TRANSPORT_TIMEOUT;
      if (deadline - now < slice)
        slice = deadline - now;
    }
    r = poll(&p, 1, (int)slice);
    if (r > 0)
      return TRANSPORT_OK;
    if (r == 0) {
      if (t->idle != NULL)
        t->idle(t->idle_arg);
      continue;
    }
    if (errno != EINTR)
      return TRANSPORT_ERROR;
  }
}

/* When the next wait must end: the session timeout counted from now, the line's idle
 * timer, the hard deadline, whichever comes first (0: never). */
static uint64_t next_deadline(const struct transport *t)
{
  uint64_t d = t->timeout ? util_now_ms() + (uint64_t)t->timeout * 1000u : 0;

  if (t->line_deadline != 0 && (d == 0 || t->line_deadline < d))
    d = t->line_deadline;
  if (t->hard_deadline != 0 && (d == 0 || t->hard_deadline < d))
    d = t->hard_deadline;
  return d;
}

/* Wait for fd with the session timeout counted from now. */
static enum transport_status wait_fd(const struct transport *t, int fd, short events)
{
  return wait_until(t, fd, events, next_deadline(t));
}

/* Wait for what the TLS layer asked for (a negative enum tls_io). */
static enum transport_status wait_tls(const struct transport *t, ssize_t want,
                                      uint64_t deadline)
{
  if (want == TLS_IO_WANT_READ)
    return wait_until(t, t->rfd, POLLIN, deadline);
  if (want == TLS_IO_WANT_WRITE)
    return wait_until(t, t->wfd, POLLOUT, deadline);
  return want == TLS_IO_CLOSED ? TRANSPORT_EOF : TRANSPORT_ERROR;
}

static enum transport_status fill_tls(struct transport *t)
{
  for (;;) {
    ssize_t r = tls_conn_recv(t->tls, t->in + t->in_end, sizeof t->in - t->in_end);
    enum transport_status w;

    if (r > 0) {
      t->in_end += (size_t)r;
      return TRANSPORT_OK;
    }
    w = wait_tls(t, r, next_deadline(t));
    if (w != TRANSPORT_OK)
      return t->status = w;
  }
}

static enum transport_status write_tls(struct transport *t, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = tls_conn_send(t->tls, p, n);
    enum transport_status s;

    if (w > 0) {
      p += w;
      n -= (size_t)w;
      t->bytes_out += (uint64_t)w;
      continue;
    }
    /* After WANT_WRITE the same data is offered again, as GnuTLS requires. */
    s = wait_tls(t, w, next_deadline(t));
    if (s != TRANSPORT_OK)
      return t->status = s;
  }
  return TRANSPORT_OK;
}

enum transport_status transport_fill(struct transport *t)
{
  if (t->status != TRANSPORT_OK)
    return t->status;
  if (t->in_start > 0) {
    memmove(t->in, t->in + t->in_start, t->in_end - t->in_start);
    t->in_end -= t->in_start;
    t->in_start = 0;
  }
  if (t->in_end == sizeof t->in)
    return TRANSPORT_OK;   /* full: the caller consumes first */
  if (t->tls != NULL)
    return fill_tls(t);
  for (;;) {
    ssize_t r = read(t->rfd, t->in + t->in_end, sizeof t->in - t->in_end);
    if (r > 0) {
      t->in_end += (size_t)r;
      return TRANSPORT_OK;
    }
    if (r == 0)
      return t->status = TRANSPORT_EOF;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      enum transport_status w = wait_fd(t, t->rfd, POLLIN);
      if (w != TRANSPORT_OK)
        return t->status = w;
      continue;
    }
    if (errno == ECONNRESET || errno == EPIPE)
      return t->status = TRANSPORT_EOF;
    return t->status = TRANSPORT_ERROR;
  }
}

static enum transport_status write_fd(struct transport *t, const char *p, size_t n)
{
  if (t->tls != NULL)
    return write_tls(t, p, n);
  while (n > 0) {
    ssize_t w = write(t->wfd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      t->bytes_out += (uint64_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      enum transport_status s = wait_fd(t, t->wfd, POLLOUT);
      if (s != TRANSPORT_OK)
        return t->status = s;
      continue;
    }
    return t->status = (errno == EPIPE || errno == ECONNRESET) ? TRANSPORT_EOF
                                                               : TRANSPORT_ERROR;
  }
  return TRANSPORT_OK;
}

enum transport_status transport_flush(struct transport *t)
{
  enum transport_status s;

  if (t->status != TRANSPORT_OK)
    return t->status;
  s = write_fd(t, t->out, t->out_len);
  t->out_len = 0;
  return s;
}

enum transport_status transport_write(struct transport *t, const void *p, size_t n)
{
  const char *c = p;

  if (t->status != TRANSPORT_OK)
    return t->status;
  while (n > 0) {
    size_t room = t->out_cap - t->out_len;
    if (room == 0) {
      if (transport_flush(t) != TRANSPORT_OK)
        return t->status;
      continue;
    }
    /* A large write with an empty buffer goes straight out, saving a copy. */
    if (t->out_len == 0 && n >= t->out_cap)
      return write_fd(t, c, n);
    if (room > n)
      room = n;
    memcpy(t->out + t->out_len, c, room);
    t->out_len += room;
    c += room;
    n -= room;
  }
  return TRANSPORT_OK;
}

enum transport_status transport_start_tls(struct transport *t, struct tls_conn *c,
                                          unsigned handshake_timeout, size_t *discarded_r,
                                          const char **error_r)
{
  unsigned limit = handshake_timeout ? handshake_timeout : t->timeout;
  uint64_t deadline = limit ? util_now_ms() + (uint64_t)limit * 1000u : 0;

  if (t->hard_deadline != 0 && (deadline == 0 || t->hard_deadline < deadline))
    deadline = t->hard_deadline;

  *discarded_r = 0;
  *error_r = NULL;
  if (transport_flush(t) != TRANSPORT_OK) {
    tls_conn_free(c);
    *error_r = "connection lost before the TLS handshake";
    return t->status;
  }
  /* Whatever the client sent before the handshake was sent in clear, perhaps by someone
   * in the middle: it is never read as a command (CVE-2011-0411 and its kind). */
  *discarded_r = t->in_end - t->in_start;
  t->in_start = t->in_end = 0;
  for (;;) {
    int r = tls_conn_handshake(c);
    enum transport_status w;

    if (r == TLS_IO_DONE)
      break;
    if (r != TLS_IO_WANT_READ && r != TLS_IO_WANT_WRITE) {
      *error_r = tls_conn_error(c);
      tls_conn_free(c);
      return t->status = TRANSPORT_ERROR;
    }
    w = wait_tls(t, r, deadline);
    if (w != TRANSPORT_OK) {
      *error_r = w == TRANSPORT_TIMEOUT ? "TLS handshake timed out"
                                         : "connection lost during the TLS handshake";
      tls_conn_free(c);
      return t->status = w;
    }
  }
  t->tls = c;
  return TRANSPORT_OK;
}

void transport_close(struct transport *t)
{
  uint64_t deadline;

  if (t->status == TRANSPORT_OK)
    (void)transport_flush(t);
  if (t->tls == NULL)
    return;
  deadline = util_now_ms() + (uint64_t)PARAMS_TLS_BYE_TIMEOUT * 1000u;
  while (t->status == TRANSPORT_OK) {
    int r = tls_conn_bye(t->tls);

    if (r == TLS_IO_DONE || wait_tls(t, r, deadline) != TRANSPORT_OK)
      break;
  }
  tls_conn_free(t->tls);
  t->tls = NULL;
}
