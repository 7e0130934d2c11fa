/* monitor.h - one connection's root process: it parses no byte from the network.
 *
 * Per connection, in inetd and in standalone mode:
 *
 *   listener (root) --fork--> monitor (root) --fork--> session-to-be (root, idle)
 *                                 |        \--fork--> worker (privsep user, empty chroot,
 *                                 |                    no-new-privs, rlimits, seccomp):
 *                                 |                    greeting, CAPA, USER/PASS/APOP/AUTH,
 *                                 |                    STLS and the TLS handshake
 *                                 |<-- typed messages (privsep.h): credentials, TLS key
 *                                 |    signatures, then the client socket or a relay
 *                                 \--> session: drops to the mail user, TRANSACTION, UPDATE
 *
 * The session-to-be is forked just before the monitor handles its first secret (the
 * request is peeked, not read), so its memory holds no password, hash or key when it
 * becomes the user; under TLS the worker stays as the
 * session's relay (plaintext over a socketpair).  See monitor.c for what runs as root.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_MONITOR_H
#define POP3D_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "conf.h"
#include "privsep.h"
#include "util.h"

/* At start-up and on reload, as root: look up privsep-user (it must exist and not be
 * root) and create privsep-chroot when it is missing (root-owned, 0755, empty).  Prints
 * one line per problem to err and returns their number.  Not root: nothing to check. */
int monitor_init(const struct conf *c, FILE *err) WUR;
/* The same checks for --config-lint, which changes nothing: a missing privsep-chroot is
 * not a problem (it will be made). */
int monitor_lint(const struct conf *c, FILE *err) WUR;

/* Serve one connection on rfd/wfd (the same socket, or inetd's stdin and stdout): access
 * control, then the worker, then the session.  peer_sa is the client's address (NULL
 * when unknown); peer and local name the two ends for the log.  Returns the exit code. */
int monitor_run(const struct conf *c, const struct conf_server *srv, int rfd, int wfd,
                const struct sockaddr *peer_sa, socklen_t peer_len, const char *peer,
                const char *local);

/* The standalone listener's datagram socket on which a monitor says, once, that its
 * client logged in (the listener counts the sessions not logged in yet per source and
 * in all); the kernel names the sender.  -1 closes it (inetd mode has none). */
void monitor_set_login_note(int fd);

/* The monitor's side of the dialogue with a worker on wfd (sfd: the session-to-be's
 * socket), as monitor_run() runs it: 0 when the worker ended the session, 1 when it
 * handed the client over, -1 when it broke the protocol (logged).  Exported for the
 * tests, which play the worker. */
int monitor_dialogue(const struct conf *c, int wfd, int sfd);

/* A worker's request, decoded and checked for form only (monitor_decode) and for order
 * (monitor_allowed): the parts of the monitor that see the worker's bytes, exported for
 * the fuzz target. */
struct monitor_req {
  uint32_t type;
  const char *mech, *user, *secret, *auth_message;
  const unsigned char *bytes;   /* SCRAM proof, unread input, or data to sign */
  size_t nbytes;
  uint32_t kind, algo;
};
int monitor_decode(struct privsep_msg *m, struct monitor_req *r) WUR;

/* Where the monitor is in the login: which requests it takes next. */
enum monitor_phase {
  MONITOR_PREAUTH,        /* credentials, challenges, signatures */
  MONITOR_CRAM,           /* a CRAM-MD5 challenge is out */
  MONITOR_SCRAM,          /* SCRAM parameters are out */
  MONITOR_SCRAM_VERIFIED, /* the proof held: waiting for PS_SCRAM_DONE */
  MONITOR_AUTHED,         /* logged in: only the hand-over */
};
bool monitor_allowed(enum monitor_phase ph, uint32_t type);

/* A request of the user's session in a shared spool (PS_SPOOL), decoded and checked for
 * form only; spool_name_allowed() decides on the names.  to is NULL when the request has
 * none.  Exported for the fuzz target. */
struct monitor_spool_req {
  uint32_t op;
  const char *name, *to;
};
int monitor_decode_spool(struct privsep_msg *m, struct monitor_spool_req *r) WUR;

#endif
