/* replay.c - the main() of every fuzz target.  Without libFuzzer it runs the target once
 * on each file given on the command line (its corpus), so that `make check` replays every
 * corpus; with --enable-fuzzing it hands over to libFuzzer's driver.  GPL-3.0-or-later. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

#ifdef FUZZING
int LLVMFuzzerRunDriver(int *argc, char ***argv,
                        int (*one)(const uint8_t *data, size_t size));

int main(int argc, char **argv)
{
  return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
#else
int main(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    unsigned char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
      perror(argv[i]);
      return 2;
    }
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
      perror(argv[i]);
      return 2;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
  }
  return 0;
}
#endif
