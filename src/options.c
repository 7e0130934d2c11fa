/* options.c - the command line, as GNU Mailutils pop3d spells it.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "conf.h"
#include "options.h"
#include "params.h"

enum {
  OPT_FOREGROUND = 256, OPT_NO_FOREGROUND, OPT_CONFIG_FILE, OPT_CONFIG_LINT,
  OPT_CONFIG_VERBOSE, OPT_NO_SITE_CONFIG, OPT_NO_CONFIG, OPT_SET, OPT_CONFIG_HELP,
  OPT_SHOW_CONFIG, OPT_DEBUG_LEVEL, OPT_DEBUG_LINE_INFO, OPT_NO_DEBUG_LINE_INFO,
  OPT_LOG_FACILITY, OPT_USAGE, OPT_HELP, OPT_NO_INETD,
};

static const struct option longopts[] = {
  { "inetd", no_argument, NULL, 'i' },
  { "no-inetd", no_argument, NULL, OPT_NO_INETD },
  { "daemon", optional_argument, NULL, 'd' },
  { "foreground", no_argument, NULL, OPT_FOREGROUND },
  { "no-foreground", no_argument, NULL, OPT_NO_FOREGROUND },
  { "config-file", required_argument, NULL, OPT_CONFIG_FILE },
  { "config-lint", no_argument, NULL, OPT_CONFIG_LINT },
  { "config-verbose", no_argument, NULL, OPT_CONFIG_VERBOSE },
  { "no-site-config", no_argument, NULL, OPT_NO_SITE_CONFIG },
  { "no-config", no_argument, NULL, OPT_NO_CONFIG },
  { "set", required_argument, NULL, OPT_SET },
  { "config-help", no_argument, NULL, OPT_CONFIG_HELP },
  { "show-config-options", no_argument, NULL, OPT_SHOW_CONFIG },
  { "debug-level", required_argument, NULL, OPT_DEBUG_LEVEL },
  { "debug-line-info", no_argument, NULL, OPT_DEBUG_LINE_INFO },
  { "no-debug-line-info", no_argument, NULL, OPT_NO_DEBUG_LINE_INFO },
  { "log-facility", required_argument, NULL, OPT_LOG_FACILITY },
  { "help", no_argument, NULL, OPT_HELP },
  { "usage", no_argument, NULL, OPT_USAGE },
  { "version", no_argument, NULL, 'V' },
  { NULL, 0, NULL, 0 },
};

void options_usage(FILE *out)
{
  fputs("Usage: pop3d [-iV?] [-d[NUMBER]] [--[no-]inetd] [--daemon[=NUMBER]] [--foreground]\n"
        "            [--no-foreground] [--config-file=FILE] [--config-lint]\n"
        "            [--config-verbose] [--no-site-config] [--no-config]\n"
        "            [--set=PARAM=VALUE] [--config-help] [--show-config-options]\n"
        "            [--debug-level=LEVEL] [--[no-]debug-line-info]\n"
        "            [--log-facility=FACILITY] [--help] [--usage] [--version]\n", out);
}

void options_help(FILE *out)
{
  fputs("Usage: pop3d [OPTION...]\n"
        "GNU Mailutils compatible POP3 daemon.\n\n"
        "  -i, --inetd                run in inetd mode: one session on stdin/stdout\n"
        "      --no-inetd             cancel an earlier --inetd (the mode statement, or\n"
        "                             inetd mode by default, applies)\n"
        "  -d, --daemon[=NUMBER]      run as a standalone daemon, at most NUMBER\n"
        "                             children at once (default 10)\n"
        "      --foreground           remain in foreground\n"
        "      --no-foreground        detach (the default in daemon mode)\n\n"
        " Configuration handling:\n"
        "      --config-file=FILE     load this configuration file (implies --no-config)\n"
        "      --config-lint          check the configuration and exit\n"
        "      --config-verbose       verbosely log parsing of the configuration files\n"
        "      --no-site-config, --no-config\n"
        "                             do not load the site configuration file\n"
        "      --set=PARAM=VALUE      set a configuration parameter\n"
        "      --config-help          show configuration file summary\n"
        "      --show-config-options  show compilation options\n\n"
        " Logging and debugging:\n"
        "      --debug-level=LEVEL    set Mailutils debugging level\n"
        "      --[no-]debug-line-info show source info with debugging messages\n"
        "      --log-facility=FACILITY\n"
        "                             output logs to syslog FACILITY\n\n"
        "  -?, --help                 give this help list\n"
        "      --usage                give a short usage message\n"
        "  -V, --version              print program version\n\n"
        "Report bugs to <" PACKAGE_BUGREPORT ">.\n", out);
}

int options_parse(struct options *o, int argc, char **argv, FILE *err)
{
  int c;

  memset(o, 0, sizeof *o);
  o->mode = -1;
  o->foreground = -1;
  o->debug_line_info = -1;
  optind = 0;     /* re-initialise getopt (unit tests parse many command lines) */
  opterr = 0;
  for (;;) {
    const char *e;

    c = getopt_long(argc, argv, "+id::V?", longopts, NULL);
    if (c == -1)
      break;

    switch (c) {
    case 'i':
      o->mode = CONF_MODE_INETD;
      break;
    case OPT_NO_INETD:
      /* As Mailutils: it undoes --inetd and selects nothing itself. */
      if (o->mode == CONF_MODE_INETD)
        o->mode = -1;
      break;
    case 'd':
      o->mode = CONF_MODE_DAEMON;
      if (optarg != NULL) {
        if (util_parse_uint(optarg, 0, PARAMS_MAX_CHILDREN_MAX, &o->max_children, &e) < 0) {
          fprintf(err, "pop3d: invalid number of children `%s': %s\n", optarg, e);
          goto usage;
        }
        o->max_children_set = true;
      }
      break;
    case OPT_FOREGROUND: o->foreground = 1; break;
    case OPT_NO_FOREGROUND: o->foreground = 0; break;
    case OPT_CONFIG_FILE:
      o->config_file = optarg;
      o->no_site_config = true;
      break;
    case OPT_CONFIG_LINT: o->config_lint = true; break;
    case OPT_CONFIG_VERBOSE: o->config_verbose = true; break;
    case OPT_NO_SITE_CONFIG:
    case OPT_NO_CONFIG: o->no_site_config = true; break;
    case OPT_SET:
      o->sets = util_xreallocarray(o->sets, o->nsets + 1, sizeof *o->sets);
      o->sets[o->nsets++] = optarg;
      break;
    case OPT_CONFIG_HELP: o->config_help = true; break;
    case OPT_SHOW_CONFIG: o->show_config_options = true; break;
    case OPT_DEBUG_LEVEL: o->debug_level = optarg; break;
    case OPT_DEBUG_LINE_INFO: o->debug_line_info = 1; break;
    case OPT_NO_DEBUG_LINE_INFO: o->debug_line_info = 0; break;
    case OPT_LOG_FACILITY: o->log_facility = optarg; break;
    case OPT_HELP: o->help = true; break;
    case OPT_USAGE: o->usage = true; break;
    case 'V': o->version = true; break;
    case '?':
      /* '?' is both an option and getopt's error mark (and optopt is stale then). */
      if (optind > 0 && strcmp(argv[optind - 1], "-?") == 0) {
        o->help = true;
        break;
      }
      if (optopt != 0)
        fprintf(err, "pop3d: invalid option -- '%c'\n", optopt);
      else
        fprintf(err, "pop3d: unrecognized option '%s'\n", argv[optind - 1]);
      goto usage;
    default:
      fprintf(err, "pop3d: invalid option\n");
      goto usage;
    }
  }
  if (optind < argc) {
    fprintf(err, "pop3d: unexpected argument `%s'\n", argv[optind]);
    goto usage;
  }
  return 0;

usage:
  fputs("Try 'pop3d --help' or 'pop3d --usage' for more information.\n", err);
  options_free(o);
  return EX_USAGE;
}

void options_free(struct options *o)
{
  free(o->sets);
  o->sets = NULL;
  o->nsets = 0;
}
