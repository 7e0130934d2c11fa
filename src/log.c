/* log.c - syslog or stderr logging.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

static bool log_syslog;
static bool log_print_severity;
static int log_min = LOG_DEBUG;
static char log_prefix[64];

static const struct { const char *name; int value; } facilities[] = {
  { "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV }, { "mail", LOG_MAIL },
  { "daemon", LOG_DAEMON }, { "user", LOG_USER },
  { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
  { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
  { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static const char *const severities[] = {
  "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

int log_facility_parse(const char *name)
{
  unsigned n;
  const char *err;

  for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
    if (strcmp(name, facilities[i].name) == 0)
      return facilities[i].value;
  if (util_parse_uint(name, 0, 23, &n, &err) == 0)
    return (int)(n << 3);
  return -1;
}

int log_severity_parse(const char *name)
{
  for (int i = 0; i < 8; i++)
    if (strcmp(name, severities[i]) == 0)
      return i;
  if (strcmp(name, "err") == 0)
    return LOG_ERR;
  return -1;
}

void log_open(const char *tag, int facility, bool to_syslog, bool print_severity,
              int min_severity)
{
  /* A reload may change the tag or the facility. */
  if (log_syslog)
    closelog();
  log_syslog = to_syslog;
  log_print_severity = print_severity;
  log_min = min_severity;
  if (to_syslog)
    openlog(tag, LOG_PID | LOG_NDELAY, facility);
}

void log_set_prefix(const char *prefix)
{
  if (prefix == NULL)
    log_prefix[0] = '\0';
  else
    snprintf(log_prefix, sizeof log_prefix, "%s", prefix);
}

void log_msg(int prio, const char *fmt, ...)
{
  char raw[1024], buf[4 * sizeof raw];
  va_list ap;
  int sev = prio & LOG_PRIMASK;
  size_t o = 0;

  if (sev > log_min)
    return;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  /* Never let a control character or a byte that is not ASCII from the network reach the
   * log as it came: \xNN instead (the backslash too, so that the log is unambiguous). */
  for (const unsigned char *p = (const unsigned char *)raw; *p && o + 5 < sizeof buf; p++) {
    if (*p < 0x20 || *p >= 0x7f || *p == '\\') {
      static const char hex[] = "0123456789abcdef";
      buf[o++] = '\\';
      buf[o++] = 'x';
      buf[o++] = hex[*p >> 4];
      buf[o++] = hex[*p & 15];
    } else {
      buf[o++] = (char)*p;
    }
  }
  buf[o] = '\0';
  if (log_syslog) {
    syslog(prio, "%s%s%s%s", log_print_severity ? severities[sev] : "",
           log_print_severity ? ": " : "", log_prefix, buf);
  } else {
    fprintf(stderr, "pop3d: %s%s%s%s\n", log_print_severity ? severities[sev] : "",
            log_print_severity ? ": " : "", log_prefix, buf);
    fflush(stderr);
  }
}
