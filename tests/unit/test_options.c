/* test_options.c - the Mailutils-compatible command line.  GPL-3.0-or-later. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "options.h"
#include "tap.h"

#define MAXARGS 8

static int parse(struct options *o, const char *const *args, char *errbuf, size_t errlen)
{
  char *argv[MAXARGS + 2];
  int argc = 0;
  FILE *err = fmemopen(errbuf, errlen, "w");
  int r;

  argv[argc++] = (char *)"pop3d";
  for (; args[argc - 1] != NULL; argc++)
    argv[argc] = (char *)args[argc - 1];
  argv[argc] = NULL;
  memset(errbuf, 0, errlen);
  r = options_parse(o, argc, argv, err);
  fclose(err);
  return r;
}

int main(void)
{
  struct options o;
  char err[1024];

  {
    const char *a[] = { NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "no options");
    is_int(o.mode, -1, "mode unset (inetd is the configured default)");
    options_free(&o);
  }
  {
    const char *a[] = { "--no-inetd", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "--no-inetd is accepted, as by Mailutils");
    is_int(o.mode, -1, "and selects no mode itself");
    options_free(&o);
  }
  {
    const char *a[] = { "-i", "--no-inetd", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "-i --no-inetd");
    is_int(o.mode, -1, "--no-inetd undoes -i");
    options_free(&o);
  }
  {
    const char *a[] = { "-d", "--no-inetd", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "-d --no-inetd");
    ok(o.mode == CONF_MODE_DAEMON, "--no-inetd leaves -d alone");
    options_free(&o);
  }
  {
    const char *a[] = { "-d", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "-d");
    ok(o.mode == CONF_MODE_DAEMON && !o.max_children_set, "-d: daemon, default children");
    options_free(&o);
  }
  {
    const char *a[] = { "-d20", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "-d20");
    ok(o.mode == CONF_MODE_DAEMON && o.max_children_set && o.max_children == 20,
       "-d20: 20 children");
    options_free(&o);
  }
  {
    const char *a[] = { "--daemon=5", "--foreground", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "--daemon=5 --foreground");
    ok(o.max_children == 5 && o.foreground == 1, "--daemon=5 --foreground values");
    options_free(&o);
  }
  {
    const char *a[] = { "-d", "20", NULL };
    is_int(parse(&o, a, err, sizeof err), 64, "-d 20 (space) is a stray argument: usage");
  }
  {
    const char *a[] = { "-dx", NULL };
    is_int(parse(&o, a, err, sizeof err), 64, "-dx: bad number");
  }
  {
    const char *a[] = { "--bogus", NULL };
    is_int(parse(&o, a, err, sizeof err), 64, "unknown long option: 64");
    ok(strstr(err, "--bogus") != NULL && strstr(err, "--help") != NULL,
       "unknown option named, usage hint");
  }
  {
    const char *a[] = { "-x", NULL };
    is_int(parse(&o, a, err, sizeof err), 64, "unknown short option: 64");
  }
  {
    const char *a[] = { "--config-file=/x.conf", "--config-lint", "--set=a.b=c",
                        "--set", "timeout=3", "--config-verbose", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "config options");
    ok(o.config_file && strcmp(o.config_file, "/x.conf") == 0 && o.no_site_config &&
       o.config_lint && o.config_verbose, "--config-file implies --no-config");
    ok(o.nsets == 2 && strcmp(o.sets[0], "a.b=c") == 0 && strcmp(o.sets[1], "timeout=3") == 0,
       "--set in order");
    options_free(&o);
  }
  {
    const char *a[] = { "-i", "--no-foreground", "--log-facility=local1", "--debug-level=tls",
                        "--no-debug-line-info", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "misc options");
    ok(o.mode == CONF_MODE_INETD && o.foreground == 0 && strcmp(o.log_facility, "local1") == 0 &&
       strcmp(o.debug_level, "tls") == 0 && o.debug_line_info == 0, "misc values");
    options_free(&o);
  }
  {
    const char *a[] = { "-?", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "-? is help");
    if (!o.help) printf("# %s\n", err);
    ok(o.help, "-? sets help");
    options_free(&o);
  }
  {
    const char *a[] = { "-V", "--usage", "--show-config-options", "--config-help",
                        "--no-site-config", NULL };
    is_int(parse(&o, a, err, sizeof err), 0, "info options");
    ok(o.version && o.usage && o.show_config_options && o.config_help && o.no_site_config,
       "info flags");
    options_free(&o);
  }
  {
    const char *a[] = { "--config-file", NULL };
    is_int(parse(&o, a, err, sizeof err), 64, "--config-file without its argument");
  }
  return tap_done();
}
