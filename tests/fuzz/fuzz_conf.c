/* fuzz_conf.c - fuzz target of the pop3d.conf parser: the input is a config file; its
 * first line is also tried as a --set argument.  GPL-3.0-or-later. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static FILE *sink;
  struct conf c;
  char line[1024];
  const char *nl;
  size_t n;
  int r;

  /* Messages are part of what runs, so they are written, to a sink. */
  if (sink == NULL && (sink = fopen("/dev/null", "w")) == NULL)
    return 0;
  conf_init(&c);
  r = conf_load_buffer(&c, "fuzz.conf", (const char *)data, size, sink);
  if (r >= 0)
    r = conf_check(&c, sink);

  nl = memchr(data, '\n', size);
  n = nl != NULL ? (size_t)(nl - (const char *)data) : size;
  if (n >= sizeof line)
    n = sizeof line - 1;
  memcpy(line, data, n);
  line[n] = '\0';
  r = conf_set(&c, line, sink);
  (void)r;
  conf_free(&c);
  return 0;
}
