/* privsep.h - the only place that changes the process identity.
 *
 * What runs as root (when pop3d is started as root): main, the listener (daemon.c),
 * reading the configuration, and the AUTHORIZATION state of a session up to
 * privsep_drop().  Everything that touches a maildrop runs after privsep_drop().
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_PRIVSEP_H
#define POP3D_PRIVSEP_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

struct auth_user;

/* Become the user for good: setgroups (the user's groups, plus extra_gid when it is not
 * (gid_t)-1: the spool directory's group, needed to create dotlocks and the rewritten
 * mbox in a group-writable spool such as Debian's /var/mail), setgid, setuid, each
 * checked, then proven irreversible (setuid(0) must fail).  When the process is not
 * root it can only serve its own uid: any other user is refused.  0 or -1. */
int privsep_drop(const struct auth_user *u, gid_t extra_gid, const char **error_r) WUR;

#endif
