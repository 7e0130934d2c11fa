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
#include "tls.h"
#include "worker.h"
#include "options.h"
#include "session.h"

/* What GNU Mailutils' --show-config-options prints, in its format and with its key
 * names (scripts probe for a feature with them), for what pop3d has built in; then
 * pop3d's own keys. */
static void show_config_options(void)
{
  static const struct {
    const char *key, *doc;        /* doc NULL: Mailutils prints none either */
  } keys[] = {
    { "IPV6", "IPv6 support" },
#ifdef HAVE_PAM
    { "USE_LIBPAM", "PAM support" },
#endif
#ifdef HAVE_GDBM
    { "WITH_GDBM", "GNU DBM" },
#endif
#ifdef HAVE_GNUTLS
    { "WITH_GNUTLS", "TLS support using GNU TLS" },
#endif
#ifdef HAVE_MYSQL
    { "HAVE_MYSQL", "MySQL" },
#endif
#ifdef HAVE_PGSQL
    { "HAVE_PGSQL", "PostgreSQL" },
#endif
#ifdef HAVE_LDAP
    { "WITH_LDAP", NULL },
#endif
#ifdef HAVE_LIBWRAP
    { "WITH_LIBWRAP", "Support for TCP wrappers" },
#endif
    { "ENABLE_VIRTUAL_DOMAINS", "Support for virtual mail domains" },
    { "ENABLE_POP", "POP3 protocol support" },
    { "ENABLE_MH", "MH mail storage support" },
    { "ENABLE_MAILDIR", "Maildir mail storage support" },
#ifdef HAVE_SECCOMP
    { "WITH_SECCOMP", "System call filter of the pre-login process (pop3d)" },
#endif
  };

  printf("VERSION=%s \t- Version of this package\n", PACKAGE_VERSION);
  printf("SYSCONFDIR=%s \t- System configuration directory\n", SYSCONFDIR);
  printf("MAILSPOOLDIR=%s \t- Default mail spool directory\n", PARAMS_MAIL_SPOOL);
  puts("SCHEME=mbox \t- Default mailbox type");
  puts("LOG_FACILITY=mail \t- Default syslog facility");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (keys[i].doc != NULL)
      printf("%s \t- %s\n", keys[i].key, keys[i].doc);
    else
      puts(keys[i].key);
  puts("MAILBOX_TYPES=mbox maildir mh \t- Mailbox types (pop3d)");
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
  c->lint = o->config_lint;
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
  /* The sql and ldap modules the lists use, here so that a reload that starts using one
   * loads it too, and --config-lint says what a start would. */
  errors += auth_modules_load(c, err);
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
    /* What would stop it starting (as root) is a lint error too. */
    errors += monitor_lint(&c, stderr);
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
    if (tls_built() && tls_tickets_init() < 0)
      log_msg(LOG_WARNING, "TLS session tickets: no key; clients resume no session");
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
