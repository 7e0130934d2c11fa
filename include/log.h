/* log.h - syslog or stderr logging, and the session transcript.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_LOG_H
#define POP3D_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "util.h"

/* Where log lines go.  to_stderr: foreground/debugging; otherwise syslog with tag and
 * facility.  Before log_open() lines go to stderr. */
void log_open(const char *tag, int facility, bool to_syslog, bool print_severity,
              int min_severity);
/* Prefix every following line (e.g. a session id); NULL clears it. */
void log_set_prefix(const char *prefix);
void log_msg(int prio, const char *fmt, ...) PRINTF(2, 3);
/* Parse a facility name ("mail", "local0", a number); -1 when unknown. */
int log_facility_parse(const char *name);
/* Parse a severity name ("info", ...); -1 when unknown. */
int log_severity_parse(const char *name);

#endif
