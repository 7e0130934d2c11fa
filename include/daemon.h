/* daemon.h - the standalone listener: binds the configured addresses, forks a child per
 * connection (never more than max-children at once), reaps children, handles signals
 * (SIGHUP reloads, SIGTERM/SIGINT stop), keeps the pidfile.  It never parses a byte from
 * the network: access control and the session run in the child.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_DAEMON_H
#define POP3D_DAEMON_H

#include <stdio.h>

#include "conf.h"

/* How to build the configuration again on SIGHUP: load() fills a fresh struct conf
 * from the same files, --set list and command-line overrides as at start-up, prints
 * problems as "FILE:LINE: message" lines to err and returns their number. */
struct daemon_reload {
  int (*load)(struct conf *c, FILE *err, const void *arg);
  const void *arg;
};

/* Run the listener until SIGTERM/SIGINT.  c is replaced in place on a successful
 * reload (the caller still frees it).  reload may be NULL: SIGHUP is then only logged.
 * Returns the process exit code. */
int daemon_run(struct conf *c, const struct daemon_reload *reload) WUR;

#endif
