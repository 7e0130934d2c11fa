/* fuzz_options.c - the command line parser on arbitrary argument vectors: the input is
 * split at NUL bytes into arguments.  GPL-3.0-or-later. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *copy = malloc(size + 1);
  char *argv[66];
  int argc = 0;
  struct options o;
  FILE *err = fopen("/dev/null", "w");

  memcpy(copy, data, size);
  copy[size] = '\0';
  argv[argc++] = (char *)"pop3d";
  for (size_t i = 0; i < size && argc < 64;) {
    argv[argc++] = copy + i;
    i += strlen(copy + i) + 1;
  }
  argv[argc] = NULL;
  if (options_parse(&o, argc, argv, err) == 0)
    options_free(&o);
  fclose(err);
  free(copy);
  return 0;
}
