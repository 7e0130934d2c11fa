/* options.h - the Mailutils-compatible command line.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_OPTIONS_H
#define POP3D_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util.h"

struct options {
  int mode;                  /* -1 unset, else enum conf_mode */
  unsigned max_children;
  bool max_children_set;
  int foreground;            /* -1 unset, 0, 1 */
  const char *config_file;
  bool no_site_config;
  bool config_lint;
  bool config_verbose;
  bool config_help;
  bool show_config_options;
  bool help, usage, version;
  const char **sets;         /* --set arguments, in order */
  size_t nsets;
  const char *debug_level;
  int debug_line_info;       /* -1 unset */
  const char *log_facility;
};

/* Parse argv.  Returns 0, or 64 (EX_USAGE) after printing the problem and a usage hint
 * to err.  o->sets points into argv. */
int options_parse(struct options *o, int argc, char **argv, FILE *err) WUR;
void options_free(struct options *o);
void options_help(FILE *out);
void options_usage(FILE *out);

#endif
