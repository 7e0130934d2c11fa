/* test_privsep.c - the monitor's message codec, its decoder of worker requests, and the
 * names a session may ask the monitor to touch in a shared spool.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor.h"
#include "privsep.h"
#include "spool.h"
#include "tap.h"

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

int main(void)
{
  test_names();
  test_split();
  test_codec();
  return tap_done();
}
