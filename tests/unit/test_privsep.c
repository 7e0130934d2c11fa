/* test_privsep.c - the monitor's message codec, its decoder of worker requests, and the
 * names a session may ask the monitor to touch in a shared spool.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <syslog.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "monitor.h"
#include "privsep.h"
#include "spool.h"
#include "tap.h"
#include "tls.h"

static void test_names(void)
{
  static const struct {
    enum spool_op op;
    const char *name, *to;
    bool want;
  } t[] = {
    { SPOOL_CREATE, "alice.lock", NULL, true },
    { SPOOL_CREATE, ".alice.pop3d-aB3dE9", NULL, true },
    { SPOOL_CREATE, ".alice.pop3d-index.0000abcd", NULL, true },
    { SPOOL_CREATE, "alice", NULL, false },              /* the maildrop itself */
    { SPOOL_CREATE, "bob.lock", NULL, false },           /* another user's lock */
    { SPOOL_CREATE, ".alice.pop3d-aB3dE", NULL, false }, /* 5 characters */
    { SPOOL_CREATE, ".alice.pop3d-x.pop3d-aB3dE9", NULL, false },
    { SPOOL_CREATE, "../alice.lock", NULL, false },
    { SPOOL_CREATE, ".alice.pop3d-index.0000ABCD", NULL, false },
    { SPOOL_UNLINK, "alice.lock", NULL, true },
    { SPOOL_UNLINK, "alice", NULL, false },
    { SPOOL_UNLINK, ".alice.pop3d-index", NULL, false },
    { SPOOL_TOUCH, "alice.lock", NULL, true },
    { SPOOL_TOUCH, "alice", NULL, false },
    { SPOOL_RENAME, ".alice.pop3d-aB3dE9", "alice", true },
    { SPOOL_RENAME, ".alice.pop3d-index.0000abcd", ".alice.pop3d-index", true },
    { SPOOL_RENAME, ".alice.pop3d-aB3dE9", "bob", false },
    { SPOOL_RENAME, ".alice.pop3d-aB3dE9", ".alice.pop3d-index", false },
    { SPOOL_RENAME, "alice.lock", "alice", false },
    { SPOOL_RENAME, ".alice.pop3d-aB3dE9", NULL, false },
    { SPOOL_LINK, ".alice.pop3d-aB3dE9", "alice", true },
    { SPOOL_LINK, ".alice.pop3d-aB3dE9", "alice.lock", false },
    { (enum spool_op)99, "alice.lock", NULL, false },
  };

  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    ok(spool_name_allowed(t[i].op, "alice", t[i].name, t[i].to) == t[i].want,
       "spool op %d on %s%s%s: %s", (int)t[i].op, t[i].name, t[i].to ? " -> " : "",
       t[i].to ? t[i].to : "", t[i].want ? "allowed" : "refused");
  ok(!spool_name_allowed(SPOOL_CREATE, "..", "...lock", NULL), "base .. refused");
  ok(!spool_name_allowed(SPOOL_CREATE, "", ".lock", NULL), "empty base refused");
}

static void test_split(void)
{
  const char *base = NULL;
  char *d = spool_split("mbox:///var/mail/alice", &base);

  ok(d != NULL && strcmp(d, "/var/mail") == 0 && strcmp(base, "alice") == 0, "mbox URL");
  free(d);
  d = spool_split("/home/a/Mail/inbox", &base);
  ok(d != NULL && strcmp(d, "/home/a/Mail") == 0 && strcmp(base, "inbox") == 0, "a path");
  free(d);
  ok(spool_split("relative/x", &base) == NULL, "relative: none");
  ok(spool_split("/x/", &base) == NULL, "a directory: none");
}

static void test_codec(void)
{
  struct privsep_msg m, r;
  struct monitor_req q;
  int sp[2];
  const char *err = NULL;

  privsep_msg_init(&m, PS_PASS);
  privsep_put_str(&m, "PASS");
  privsep_put_str(&m, "alice");
  privsep_put_str(&m, "secret");
  ok(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0, "socketpair");
  ok(privsep_send(sp[0], &m) == 0, "send");
  ok(privsep_recv(sp[1], &r, 1000, &err) == 1, "receive");
  ok(monitor_decode(&r, &q) == 0 && strcmp(q.user, "alice") == 0 &&
     strcmp(q.secret, "secret") == 0, "decoded");
  ok(monitor_allowed(MONITOR_PREAUTH, PS_PASS), "PASS before login");
  ok(!monitor_allowed(MONITOR_AUTHED, PS_PASS), "no PASS after login");
  ok(!monitor_allowed(MONITOR_PREAUTH, PS_HANDOFF), "no hand-over before login");
  ok(!monitor_allowed(MONITOR_PREAUTH, PS_SCRAM_VERIFY), "no SCRAM proof before its start");
  ok(!monitor_allowed(MONITOR_PREAUTH, PS_CRAM), "no CRAM digest before its challenge");

  /* A field longer than the message: bad. */
  {
    unsigned char raw[] = { 0, 0, 0, PS_APOP, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff };
    ok(privsep_msg_parse(&r, raw, sizeof raw) == 0 && monitor_decode(&r, &q) < 0,
       "a field longer than its message");
  }
  /* A header that lies about the length. */
  {
    unsigned char raw[] = { 0, 0, 0, PS_APOP, 0, 0, 0, 9, 1, 2 };
    ok(privsep_msg_parse(&r, raw, sizeof raw) < 0, "a header with the wrong length");
  }
  /* A string with a NUL inside, or without its NUL. */
  {
    unsigned char raw[] = { 0, 0, 0, PS_APOP, 0, 0, 0, 16, 0, 0, 0, 3, 'a', 0, 0,
                            0, 0, 0, 1, 0, 0, 0, 0, 0 };
    ok(privsep_msg_parse(&r, raw, 24) == 0 && monitor_decode(&r, &q) < 0,
       "a string with a NUL inside");
  }
  /* Trailing bytes after the last field. */
  privsep_msg_init(&m, PS_CRAM_START);
  privsep_put_u32(&m, 7);
  ok(privsep_send(sp[0], &m) == 0 && privsep_recv(sp[1], &r, 1000, &err) == 1 &&
     monitor_decode(&r, &q) < 0, "trailing bytes");
  /* An oversized datagram is refused, not cut. */
  {
    static unsigned char big[PRIVSEP_MSG_MAX + 64];
    memset(big, 0, sizeof big);
    big[7] = 1;
    ok(send(sp[0], big, sizeof big, 0) == (ssize_t)sizeof big &&
       privsep_recv(sp[1], &r, 1000, &err) < 0, "an oversized datagram");
  }
  /* The peer closed. */
  close(sp[0]);
  ok(privsep_recv(sp[1], &r, 1000, &err) == 0, "end of the peer");
  close(sp[1]);
}

static char last_log[4096];

/* Play a worker: queue raw datagrams (a zero length closes the worker's side), then
 * run the monitor's dialogue over them. */
static int play(const struct conf *c, const unsigned char *const *dgrams,
                const size_t *lens, size_t n, bool close_after)
{
  int sp[2], r;

  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) < 0)
    return -9;
  for (size_t i = 0; i < n; i++)
    if (send(sp[0], dgrams[i], lens[i], 0) != (ssize_t)lens[i])
      return -9;
  if (close_after)
    shutdown(sp[0], SHUT_WR);
  /* What the monitor logs goes to a file, read back into last_log. */
  {
    FILE *tmp = tmpfile();
    int saved = dup(2);
    size_t got;

    fflush(stderr);
    dup2(fileno(tmp), 2);
    r = monitor_dialogue(c, sp[1], -1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    got = fread(last_log, 1, sizeof last_log - 1, tmp);
    last_log[got] = '\0';
    fclose(tmp);
  }
  close(sp[0]);
  close(sp[1]);
  return r;
}

static size_t encode(unsigned char *buf, uint32_t type, const char *s1)
{
  struct privsep_msg m;
  size_t n;

  privsep_msg_init(&m, type);
  if (s1 != NULL)
    privsep_put_str(&m, s1);
  n = 8 + m.len;
  for (int i = 0; i < 4; i++) {
    buf[i] = (unsigned char)(type >> (24 - 8 * i));
    buf[4 + i] = (unsigned char)((uint32_t)m.len >> (24 - 8 * i));
  }
  memcpy(buf + 8, m.buf, m.len);
  return n;
}

/* A PS_SIGN request: kind, algorithm, n bytes of data. */
static size_t encode_sign(unsigned char *buf, uint32_t kind, const unsigned char *data,
                          size_t n)
{
  struct privsep_msg m;

  privsep_msg_init(&m, PS_SIGN);
  privsep_put_u32(&m, kind);
  privsep_put_u32(&m, 0);
  privsep_put_bytes(&m, data, n);
  for (int i = 0; i < 4; i++) {
    buf[i] = (unsigned char)((uint32_t)PS_SIGN >> (24 - 8 * i));
    buf[4 + i] = (unsigned char)((uint32_t)m.len >> (24 - 8 * i));
  }
  memcpy(buf + 8, m.buf, m.len);
  return 8 + m.len;
}

/* The monitor signs once per connection, and only what a handshake signs. */
static void test_key_oracle(void)
{
  static const char context[] = "TLS 1.3, server CertificateVerify";
  unsigned char tv[64 + sizeof context + 32], a[512], b[512], other[100];
  const unsigned char *d[2] = { a, b };
  size_t l[2];
  struct conf c;

  conf_init(&c);
  memset(tv, ' ', 64);
  memcpy(tv + 64, context, sizeof context);
  memset(tv + 64 + sizeof context, 0x5a, 32);
  memset(other, 'x', sizeof other);
  l[0] = encode_sign(a, TLS_SIGN_DATA, tv, sizeof tv);
  ok(play(&c, d, l, 1, true) == 0, "one CertificateVerify to sign: served");
  l[1] = encode_sign(b, TLS_SIGN_DATA, tv, sizeof tv);
  ok(play(&c, d, l, 2, true) == -1 && strstr(last_log, "one more private-key request"),
     "a second one: the session is closed, and logged");
  l[0] = encode_sign(a, TLS_SIGN_DATA, other, sizeof other);
  ok(play(&c, d, l, 1, true) == -1 && strstr(last_log, "malformed private-key request"),
     "arbitrary data to sign: refused, and logged");
  conf_free(&c);
}

/* A worker that breaks the protocol gets the session closed (-1) and a log line, never
 * a crash; one that behaves and then ends gets 0. */
static void test_bad_worker(void)
{
  struct conf c;
  static unsigned char big[PRIVSEP_MSG_MAX + 100];
  unsigned char a[256], b[256];
  const unsigned char *d[2];
  size_t l[2];

  conf_init(&c);
  log_open("test_privsep", 0, false, false, LOG_DEBUG);

  l[0] = encode(a, PS_CRAM_START, NULL);
  d[0] = a;
  ok(play(&c, d, l, 1, true) == 0, "a challenge asked for, then the worker ends: 0");

  ok(strstr(last_log, "monitor:") == NULL, "and nothing to complain about");

  l[0] = encode(a, PS_HANDOFF, NULL);
  ok(play(&c, d, l, 1, true) == -1, "a hand-over before any login: broken");
  ok(strstr(last_log, "monitor: bad hand-over") != NULL, "with a log line");

  l[0] = encode(a, PS_CRAM, "alice");
  ok(play(&c, d, l, 1, true) == -1, "a CRAM-MD5 answer without its challenge: broken");

  l[0] = encode(a, PS_SCRAM_DONE, NULL);
  ok(play(&c, d, l, 1, true) == -1, "a SCRAM end without a verified proof: broken");

  l[0] = encode(a, 250, NULL);
  ok(play(&c, d, l, 1, true) == -1, "an unknown message type: broken");

  l[0] = encode(a, PS_PASS, "only-one-field");
  ok(play(&c, d, l, 1, true) == -1, "PASS with a missing field: broken");

  memset(big, 0, sizeof big);
  big[3] = PS_PASS;
  big[6] = (unsigned char)((sizeof big - 8) >> 8);
  big[7] = (unsigned char)(sizeof big - 8);
  d[0] = big;
  l[0] = sizeof big;
  ok(play(&c, d, l, 1, true) == -1, "an oversized datagram: broken");
  ok(strstr(last_log, "truncated or too long") != NULL, "logged as too long");

  l[0] = 5;
  d[0] = a;
  ok(play(&c, d, l, 1, true) == -1, "a datagram shorter than a header: broken");

  l[0] = encode(a, PS_SCRAM_START, NULL);
  l[1] = encode(b, PS_CRAM, "alice");
  d[0] = a;
  d[1] = b;
  ok(play(&c, d, l, 2, true) == -1, "SCRAM started, then a CRAM-MD5 answer: broken");
  conf_free(&c);
}

int main(void)
{
  test_names();
  test_split();
  test_codec();
  test_bad_worker();
  test_key_oracle();
  return tap_done();
}
