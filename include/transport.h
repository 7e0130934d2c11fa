/* transport.h - buffered, timed reads and writes over a plain fd pair or a TLS session
 * on it.  The fds are made non-blocking; every wait is a poll() bounded by the session
 * timeout, so a client that stops reading (even in the middle of RETR) can't hold a
 * session, and its maildrop lock, forever.  Under TLS the same waits apply: the TLS
 * layer says which direction it needs and the poll waits for that.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_TRANSPORT_H
#define POP3D_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "params.h"
#include "util.h"

enum transport_status {
  TRANSPORT_OK = 0,
  TRANSPORT_EOF = -1,      /* the peer closed its side */
  TRANSPORT_TIMEOUT = -2,  /* no progress within the timeout */
  TRANSPORT_ERROR = -3,    /* I/O error (EPIPE, ECONNRESET, ...) */
};

struct tls_conn;

struct transport {
  int rfd, wfd;
  struct tls_conn *tls;            /* NULL: plain; else every byte goes through it */
  unsigned timeout;                /* seconds; 0 = none */
  char in[PARAMS_INBUF_SIZE];
  size_t in_start, in_end;         /* unread input is in[in_start, in_end) */
  char *out;
  size_t out_len, out_cap;
  enum transport_status status;    /* sticky: the first failure */
  /* util_now_ms() times (0: none): the idle timer of the line being read, started when
   * reading the line begins (so bytes without a line end don't restart it), and an
   * absolute end for every wait (the login deadline). */
  uint64_t line_deadline;
  uint64_t hard_deadline;
  uint64_t bytes_out;
  /* Called at least every PARAMS_LOCK_TOUCH_INTERVAL seconds while waiting for the peer
   * (keeps the maildrop's dotlock fresh during a long idle wait). */
  void (*idle)(void *arg);
  void *idle_arg;
};

/* Set up over rfd/wfd (the same socket, or stdin/stdout), with an output buffer of
 * outbuf_size bytes.  Makes the fds non-blocking and, for TCP, disables Nagle (all
 * output is buffered here, so every write is a whole reply or block). */
void transport_init(struct transport *t, int rfd, int wfd, size_t outbuf_size,
                    unsigned timeout);
void transport_free(struct transport *t);

/* Read more input into the buffer (waits up to the timeout).  TRANSPORT_OK when at least
 * one byte arrived. */
enum transport_status transport_fill(struct transport *t) WUR;

/* Queue bytes for output; flushes as the buffer fills.  Errors are sticky. */
enum transport_status transport_write(struct transport *t, const void *p, size_t n);
/* Write out everything queued. */
enum transport_status transport_flush(struct transport *t);

/* Switch to TLS (STLS, or POP3S before the greeting): flush what is queued in clear,
 * DISCARD all buffered input (bytes a client sent before the handshake must never be
 * read as commands inside TLS: STARTTLS command injection), then run the handshake,
 * within handshake_timeout seconds in all (0: within the session timeout).  The
 * transport takes c (and frees it on failure).  *discarded_r gets how many input bytes
 * were thrown away.  On failure the status is sticky (TRANSPORT_TIMEOUT or
 * TRANSPORT_ERROR) and *error_r says why. */
enum transport_status transport_start_tls(struct transport *t, struct tls_conn *c,
                                          unsigned handshake_timeout, size_t *discarded_r,
                                          const char **error_r) WUR;

/* Did the last timeout come from hard_deadline? */
static inline bool transport_past_deadline(const struct transport *t)
{ return t->hard_deadline != 0 && util_now_ms() >= t->hard_deadline; }

/* Is the transport inside TLS? */
static inline bool transport_is_tls(const struct transport *t) { return t->tls != NULL; }

/* End of the session: flush, then under TLS send close_notify (waiting at most
 * PARAMS_TLS_BYE_TIMEOUT seconds for a client that stopped reading). */
void transport_close(struct transport *t);

#endif
