/* privsep.h - the only place that changes the process identity, and the typed,
 * length-checked messages the monitor exchanges with its worker and its session
 * process (monitor.h draws the processes and lists what runs as root).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_PRIVSEP_H
#define POP3D_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct auth_user;

/* Become the user for good: setgroups (the user's groups, plus extra_gid when it is not
 * (gid_t)-1: the spool directory's group, needed to create dotlocks and the rewritten
 * mbox in a group-writable spool such as Debian's /var/mail), setgid, setuid, each
 * checked, then proven irreversible (setuid(0) must fail).  When the process is not
 * root it can only serve its own uid: any other user is refused.  0 or -1. */
int privsep_drop(const struct auth_user *u, gid_t extra_gid, const char **error_r) WUR;

/* Become the unprivileged privsep user (privsep-user) for good, with no supplementary
 * group, inside the empty directory root_dir (chroot; NULL: no chroot).  Only when
 * root; otherwise nothing changes.  0 or -1. */
int privsep_drop_worker(uid_t uid, gid_t gid, const char *root_dir, const char **error_r) WUR;

/* ---- Messages ----------------------------------------------------------------------
 * One message is one datagram of a SOCK_SEQPACKET socketpair: a 4-byte type, a 4-byte
 * payload length, the payload, and up to PRIVSEP_FDS_MAX descriptors.  The payload is a
 * sequence of fields: u32 (4 bytes, big-endian), bytes (u32 length + bytes) and str
 * (bytes that end in one NUL and hold no other).  Every read is bounded by what was
 * received: a short, long, truncated or mistyped message is an error, never a guess. */
#define PRIVSEP_MSG_MAX 16384
#define PRIVSEP_FDS_MAX 2

enum privsep_type {
  /* worker -> monitor */
  PS_PASS = 1,          /* str mech, str user, str password */
  PS_APOP,              /* str user, str hex digest (against the greeting's stamp) */
  PS_CRAM_START,        /* (empty): a CRAM-MD5 challenge, please */
  PS_CRAM,              /* str user, str hex digest (against that challenge) */
  PS_SCRAM_START,       /* (empty): salt, server nonce and rounds, please */
  PS_SCRAM_VERIFY,      /* str user, str auth-message, bytes proof */
  PS_SCRAM_DONE,        /* (empty): the client accepted the server's signature */
  PS_HANDOFF,           /* bytes unread input; fds: the client's read and write ends */
  PS_HANDOFF_TLS,       /* (empty): give me a relay socket for the session */
  PS_SIGN,              /* u32 kind, u32 algorithm, bytes data: a TLS key signature */
  /* monitor -> worker */
  PS_RESULT = 64,       /* u32 enum privsep_result, u32 close; SCRAM: str server-final */
  PS_CHALLENGE,         /* str CRAM-MD5 challenge */
  PS_SCRAM_PARAMS,      /* bytes salt, str server nonce, u32 rounds */
  PS_RELAY,             /* fd: the worker's end of the relay */
  PS_SIGNATURE,         /* u32 status (0 ok), bytes signature */
  /* monitor -> session */
  PS_SESSION = 96,      /* str name, u32 uid, u32 gid, str home, str mailbox, u32 login-delay,
                           bytes unread input; fds: the client's read and write ends */
  /* session -> monitor, and the answer (spool.h) */
  PS_SPOOL = 100,       /* u32 enum spool_op, str name, str to ("" when none) */
  PS_SPOOL_RESULT,      /* u32 errno (0: done); fd: the file SPOOL_CREATE made */
};

enum privsep_result {
  PS_R_OK = 0,
  PS_R_FAIL,            /* [AUTH] Bad login */
  PS_R_TEMP,            /* [SYS/TEMP] */
  PS_R_PERM,            /* [SYS/PERM] */
  PS_R_LOGIN_DELAY,     /* [LOGIN-DELAY] */
};

struct privsep_msg {
  uint32_t type;
  size_t len;           /* payload bytes in buf */
  size_t pos;           /* read position */
  bool bad;             /* a put overflowed or a get found a malformed field */
  int fds[PRIVSEP_FDS_MAX];
  size_t nfds;
  unsigned char buf[PRIVSEP_MSG_MAX];
};

void privsep_msg_init(struct privsep_msg *m, uint32_t type);
void privsep_put_u32(struct privsep_msg *m, uint32_t v);
void privsep_put_bytes(struct privsep_msg *m, const void *p, size_t n);
void privsep_put_str(struct privsep_msg *m, const char *s);
/* Attach a descriptor (sent with the message, not closed by it). */
void privsep_put_fd(struct privsep_msg *m, int fd);
/* Each get returns -1 (and marks the message bad) on a missing or malformed field.
 * Strings and bytes point into the message. */
int privsep_get_u32(struct privsep_msg *m, uint32_t *v) WUR;
int privsep_get_bytes(struct privsep_msg *m, const unsigned char **p, size_t *n) WUR;
int privsep_get_str(struct privsep_msg *m, const char **s) WUR;
/* All fields read and none bad? */
bool privsep_msg_done(const struct privsep_msg *m);
/* Parse a received datagram (header and payload) into m; 0 or -1. */
int privsep_msg_parse(struct privsep_msg *m, const void *data, size_t n) WUR;
/* Send m (and its fds) on fd.  0 or -1. */
int privsep_send(int fd, const struct privsep_msg *m) WUR;
/* Receive one message (waiting up to timeout_ms, -1: no bound).  1 received, 0 the peer
 * closed, -1 error, timeout or malformed (*error_r says which).  Received descriptors
 * beyond what fits are closed; those in m->fds belong to the caller. */
int privsep_recv(int fd, struct privsep_msg *m, int timeout_ms, const char **error_r) WUR;
/* One request and its answer: send m on fd, wipe its payload (it may hold a password),
 * and receive the answer into m, waiting up to PARAMS_MONITOR_REPLY_TIMEOUT_MS.  0 when
 * an answer of type want came (its descriptors in m->fds); -1 otherwise, with *error_r
 * and m cleared. */
int privsep_call(int fd, struct privsep_msg *m, uint32_t want, const char **error_r) WUR;

/* Wipe the payload (it may have held a password) and close the descriptors left. */
void privsep_msg_clear(struct privsep_msg *m);

#endif
