/* fuzz_sasl.c - the SASL exchanges and base64 on arbitrary client lines.  The first
 * byte picks the mechanism (bits 0-1: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256) and
 * whether AUTH carried an initial response (bit 2); the rest is split at LF into client
 * lines.  SCRAM runs with a fixed salt and server nonce and one Hi() round, and its
 * proofs are checked against the secret "pencil", so that a corpus can reach the end
 * of a successful exchange.  Also checks that base64 decoding of the whole input,
 * when it succeeds, round-trips.  GPL-3.0-or-later. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "fuzz.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sasl x;
  char out[SASL_CHALLENGE_MAX], *copy, *line, *next;
  enum sasl_result r;
  enum sasl_mech m;
  bool initial;

  if (size == 0)
    return 0;
  m = (enum sasl_mech)(data[0] & 3);
  initial = (data[0] & 4) != 0;
  copy = malloc(size);
  memcpy(copy, data + 1, size - 1);
  copy[size - 1] = '\0';

  {
    size_t cap = size, n;
    unsigned char *dec = malloc(cap);
    if (base64_decode(copy, size - 1, dec, cap, &n) == 0) {
      char *enc = malloc(BASE64_ENCODED_LEN(n) + 1);
      if (base64_encode(dec, n, enc, BASE64_ENCODED_LEN(n) + 1) != size - 1 ||
          memcmp(enc, copy, size - 1) != 0)
        abort();
      free(enc);
    }
    free(dec);
  }

  sasl_start(&x, m, "<1896.697170952@postoffice.example.net>");
  if (m == SASL_SCRAM_SHA_256) {
    x.scram = SCRAM_FIRST;
    x.iterations = 1;
    memset(x.salt, 0x5a, sizeof x.salt);
    strcpy(x.snonce, "fuzzServerNonce");
  }
  next = copy;
  if (initial) {
    line = copy;
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    r = sasl_step(&x, line, out, sizeof out);
  } else {
    r = sasl_step(&x, NULL, out, sizeof out);
  }
  for (;;) {
    if (r == SASL_VERIFY) {
      if (x.user == NULL)
        abort();
      r = sasl_scram_verify(&x, "pencil", out, sizeof out) ? SASL_CONTINUE : SASL_BAD;
    }
    if (r != SASL_CONTINUE || next == NULL)
      break;
    line = next;
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    r = sasl_step(&x, line, out, sizeof out);
  }
  if (r == SASL_DONE &&
      (x.user == NULL || ((m == SASL_PLAIN || m == SASL_LOGIN) && x.password == NULL)))
    abort();
  sasl_free(&x);
  free(copy);
  return 0;
}
