/* fuzz.h - the libFuzzer entry point every fuzz target defines, and what the targets
 * share (fuzz_util.c).  GPL-3.0-or-later. */
#ifndef POP3D_FUZZ_H
#define POP3D_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold: abort (a crash to libFuzzer) when it does not. */
#define CHECK(cond) do {                                                  \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                            \
    }                                                                     \
  } while (0)

/* The target's own directory, made on the first call (on tmpfs when there is one:
 * maildrop updates and databases sync what they write), removed with all it holds at
 * exit. */
const char *fuzz_tmpdir(void);
/* Remove path and all it holds; nothing there is fine. */
void fuzz_rm_rf(const char *path);
/* Write len bytes to path (created 0600, or truncated). */
void fuzz_write_file(const char *path, const void *data, size_t len);
struct mailbox;
/* Every message's id valid (uidl.h) and none twice. */
void fuzz_check_ids(const struct mailbox *mb);

#endif
