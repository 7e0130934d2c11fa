/* mod_tcpwrap.c - the module tcpwrap.so (module.h): tcp-wrappers' hosts_access() for
 * acl_tcpwrap_check(), which loads it in the tcp-wrappers child of a connection, so that
 * libwrap and the libraries it needs are mapped by that child alone.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdbool.h>
#include <syslog.h>
#include <tcpd.h>

#include "conf.h"
#include "module.h"

/* libwrap leaves these to the program: the syslog priorities of its own lines.  Its
 * references find them here, in the module that brought it in. */
POP3D_MODULE_EXPORT int allow_severity = LOG_INFO;
POP3D_MODULE_EXPORT int deny_severity = LOG_WARNING;

static bool tcpwrap_check(const struct conf *c, int fd)
{
  struct request_info req;

  /* libwrap reads its tables from these globals. */
  if (c->tcpwrap_allow_table != NULL)
    hosts_allow_table = c->tcpwrap_allow_table;
  if (c->tcpwrap_deny_table != NULL)
    hosts_deny_table = c->tcpwrap_deny_table;
  request_init(&req, RQ_DAEMON, c->tcpwrap_daemon ? c->tcpwrap_daemon : "pop3d",
               RQ_FILE, fd, 0);
  fromhost(&req);
  return hosts_access(&req) != 0;
}

POP3D_MODULE_EXPORT const struct pop3d_module pop3d_module = {
  POP3D_MODULE_HEADER("tcpwrap"),
  .tcpwrap_check = tcpwrap_check,
};
