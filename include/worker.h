/* worker.h - the unprivileged pre-login process of a connection: sandbox set-up, the
 * AUTHORIZATION state (greeting, CAPA, USER/PASS, APOP, AUTH, STLS and the TLS
 * handshake), then the hand-over of the client to the monitor, or, under TLS, the relay
 * between the client and the session.
 *
 * The sandbox, in this order: the TLS credentials (certificate, and a private key that
 * only signs through the monitor) and the log are made ready; chroot into privsep-chroot;
 * no supplementary group, the privsep user's gid and uid (when started as root);
 * no-new-privs; parent-death signal; rlimits (no descriptors beyond a few, no new process,
 * no core; the log may be a file, so file size is not limited); a seccomp filter (libseccomp) that allows the
 * system calls of reading, writing, polling and memory management, answers EACCES to the
 * rest (socket() and connect() among them: syslog reconnects with them) and kills the
 * process on exec, ptrace, bind/listen/accept, fork and namespace calls.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_WORKER_H
#define POP3D_WORKER_H

#include <stdbool.h>
#include <sys/types.h>

#include "conf.h"

/* Before serving: compile the system-call filter once (every worker then only loads
 * it). */
void worker_init(void);

/* Run the worker of one connection on rfd/wfd; mfd is its socket to the monitor; uid
 * and gid the privsep user ((uid_t)-1 when not root); stamp the APOP timestamp of the
 * greeting (announced when apop).  Returns the exit code. */
int worker_run(const struct conf *c, const struct conf_server *srv, int rfd, int wfd,
               int mfd, uid_t uid, gid_t gid, const char *peer, const char *local,
               const char *stamp, bool apop);

/* Enter the sandbox described above; top is the highest descriptor the worker holds (the
 * limit leaves PARAMS_WORKER_SPARE_FDS more).  0 or -1. */
int worker_sandbox(const struct conf *c, uid_t uid, gid_t gid, int top,
                   const char **error_r);

#endif
