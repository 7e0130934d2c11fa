/* main.c - command line, configuration, pick the mode; nothing else.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>

#include "auth.h"
#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "monitor.h"
#include "worker.h"
#include "options.h"
#include "session.h"

static void show_config_options(void)
{
  printf("VERSION=%s\n", PACKAGE_VERSION);
  printf("SYSCONFDIR=%s\n", SYSCONFDIR);
#ifdef HAVE_GNUTLS
  puts("WITH_GNUTLS");
#else
  puts("WITHOUT_GNUTLS\t# TLS (STLS, POP3S) not built in");
#endif
#ifdef HAVE_GDBM
  puts("WITH_GDBM");
#else
  puts("WITHOUT_GDBM\t# login-delay and bulletin-db not built in");
#endif
#ifdef HAVE_PAM
  puts("WITH_PAM");
#else
  puts("WITHOUT_PAM\t# the pam authentication module not built in");
#endif
#ifdef HAVE_MYSQL
  puts("HAVE_MYSQL");
#else
  puts("WITHOUT_MYSQL\t# the sql module's mysql interface not built in");
#endif
#ifdef HAVE_PGSQL
  puts("HAVE_PGSQL");
#else
  puts("WITHOUT_PGSQL\t# the sql module's postgres interface not built in");
#endif
#ifdef HAVE_LIBWRAP
  puts("WITH_LIBWRAP");
#else
  puts("WITHOUT_LIBWRAP\t# tcp-wrappers not built in");
#endif
#ifdef HAVE_LDAP
  puts("WITH_LDAP");
#else
  puts("WITHOUT_LDAP\t# the ldap authentication module not built in");
#endif
  puts("DEFAULT_MAILBOX_TYPE=mbox");
  puts("MAILBOX_TYPES=mbox maildir mh");
}

/* inetd's client: its address (for acl, tcp-wrappers, PAM and the log) when stdin is
 * an inet socket. */
static const char *stdin_peer(struct sockaddr_storage *ss, socklen_t *sl, char *buf,
                              size_t len)
{
  char host[NI_MAXHOST], serv[NI_MAXSERV];

  *sl = sizeof *ss;
  if (getpeername(0, (struct sockaddr *)ss, sl) < 0 ||
      (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) ||
      getnameinfo((struct sockaddr *)ss, *sl, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    *sl = 0;
    return "stdin";
  }
  if (ss->ss_family == AF_INET6) {
    /* v4-mapped clients of a v6 socket are matched as v4 addresses by acl. */
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
    if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
      struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = a6->sin6_port };
      memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
      memcpy(ss, &a4, sizeof a4);
      *sl = sizeof a4;
    }
  }
  snprintf(buf, len, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
  return buf;
}

/* Build the configuration from the files, the --set list and the command line, in that
 * order (the command line wins).  Used at start-up and again on SIGHUP, so that a reload
 * sees exactly what a restart would.  Returns the number of errors, printed to err. */
static int build_conf(struct conf *c, FILE *err, const void *arg)
{
  const struct options *o = arg;
  int errors = 0, r;

  conf_init(c);
  c->verbose = o->config_verbose;
  if (o->config_file != NULL) {
    r = conf_load_file(c, o->config_file, err);
    errors += r < 0 ? 1 : r;
  } else if (!o->no_site_config) {
    r = conf_load_site(c, err);
    errors += r < 0 ? 1 : r;
  }
  for (size_t i = 0; i < o->nsets; i++)
    if (conf_set(c, o->sets[i], err) < 0)
      errors++;
  if (o->mode >= 0) {
    c->mode = (enum conf_mode)o->mode;
    c->mode_set = true;
  }
  if (o->max_children_set)
    c->max_children = o->max_children;
  if (o->foreground >= 0)
    c->foreground = o->foreground == 1;
  if (o->log_facility != NULL) {
    int f = log_facility_parse(o->log_facility);
    if (f < 0) {
      fprintf(err, "pop3d: --log-facility: unknown facility `%s'\n", o->log_facility);
      errors++;
    } else {
      c->log_facility = f;
    }
  }
  if (o->debug_level != NULL) {
    free(c->debug_level);
    c->debug_level = util_xstrdup(o->debug_level);
  }
  if (o->debug_line_info >= 0)
    c->debug_line_info = o->debug_line_info == 1;
  errors += conf_check(c, err);
  return errors;
}

int main(int argc, char **argv)
{
  struct options o;
  struct conf c;
  int errors, r;
  char peer[160];

  r = options_parse(&o, argc, argv, stderr);
  if (r != 0)
    return r;
  if (o.help) {
    options_help(stdout);
    return EX_OK;
  }
  if (o.usage) {
    options_usage(stdout);
    return EX_OK;
  }
  if (o.version) {
    printf("pop3d (%s) %s\n"
           "License GPLv3+: GNU GPL version 3 or later <https://gnu.org/licenses/gpl.html>\n"
           "This is free software: you are free to change and redistribute it.\n"
           "There is NO WARRANTY, to the extent permitted by law.\n",
           PACKAGE_NAME, PACKAGE_VERSION);
    return EX_OK;
  }
  if (o.config_help) {
    conf_help(stdout);
    return EX_OK;
  }
  if (o.show_config_options) {
    show_config_options();
    return EX_OK;
  }

  errors = build_conf(&c, stderr, &o);
  if (o.config_lint) {
    conf_free(&c);
    options_free(&o);
    return errors ? EX_CONFIG : EX_OK;
  }
  if (errors) {
    fprintf(stderr, "pop3d: %d configuration error%s, not starting\n", errors,
            errors == 1 ? "" : "s");
    conf_free(&c);
    options_free(&o);
    return EX_CONFIG;
  }

  signal(SIGPIPE, SIG_IGN);
  if (monitor_init(&c, stderr) > 0) {
    fprintf(stderr, "pop3d: privilege separation can't be set up, not starting\n");
    conf_free(&c);
    options_free(&o);
    return EX_CONFIG;
  }
  auth_init();
  worker_init();
  if (c.mode == CONF_MODE_DAEMON) {
    const struct daemon_reload reload = { .load = build_conf, .arg = &o };
    bool to_syslog = c.log_syslog && !c.foreground;

    log_open(c.log_tag, c.log_facility, to_syslog, c.log_print_severity, c.log_severity);
    r = daemon_run(&c, &reload);
  } else {
    /* inetd gives us the socket as stdin, stdout and stderr: never log to stderr then,
     * unless the configuration says so (`logging { syslog no; }`, for debugging).
     * interactive mode is the same session on the terminal. */
    log_open(c.log_tag, c.log_facility, c.log_syslog, c.log_print_severity, c.log_severity);
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    const char *who = stdin_peer(&ss, &sl, peer, sizeof peer);

    r = monitor_run(&c, NULL, 0, 1, sl > 0 ? (const struct sockaddr *)&ss : NULL, sl, who,
                    "stdout");
  }
  conf_free(&c);
  options_free(&o);
  return r;
}
