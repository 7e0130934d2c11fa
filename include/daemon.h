/* daemon.h - the standalone listener: binds the configured addresses, forks a child per
 * connection (never more than max-children at once), reaps children, handles signals.
 * It never parses a byte from the network.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_DAEMON_H
#define POP3D_DAEMON_H

#include "conf.h"

/* Run the listener until SIGTERM/SIGINT.  Returns the process exit code. */
int daemon_run(struct conf *c);

#endif
