/* fuzz.h - the libFuzzer entry point every fuzz target defines.  GPL-3.0-or-later. */
#ifndef POP3D_FUZZ_H
#define POP3D_FUZZ_H
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
