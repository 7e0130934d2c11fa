/* test_sasl.c - base64 (RFC 4648 section 10 and malformed input) and the PLAIN, LOGIN
 * and CRAM-MD5 exchanges, with cancel, bad base64 and overlong responses.
 * GPL-3.0-or-later. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sasl.h"
#include "tap.h"

static const char *b64(const void *p, size_t n)
{
  static char out[1024];

  if (base64_encode(p, n, out, sizeof out) == (size_t)-1)
    return "(too long)";
  return out;
}

static void base64_tests(void)
{
  static const struct { const char *plain, *enc; } v[] = {
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  };
  static const char *const bad[] = {
    "Zg=", "Zg", "Z===", "====", "Zg==Zg==", "Zh==", "Zm9=", "Zm9v\n", " Zm9v",
    "Zm9v ", "Zm9v*AAA", "Zm-v", "Zm_v", "Zg=a", "=Zm9", "Zm9vY===",
  };
  unsigned char out[64];
  size_t n;
  char small[5];

  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    is_str(b64(v[i].plain, strlen(v[i].plain)), v[i].enc, "encode \"%s\"", v[i].plain);
    ok(base64_decode(v[i].enc, strlen(v[i].enc), out, sizeof out, &n) == 0 &&
       n == strlen(v[i].plain) && memcmp(out, v[i].plain, n) == 0,
       "decode \"%s\"", v[i].enc);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ok(base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n) < 0,
       "malformed base64 refused: \"%s\"", bad[i]);
  ok(base64_decode("Zm9vYmFy", 8, out, 5, &n) < 0, "decode: output buffer too small");
  ok(base64_encode("foob", 4, small, sizeof small) == (size_t)-1 && small[0] == '\0',
     "encode: output buffer too small");
  {
    const unsigned char bin[] = { 0, 0xff, 0xfe, 0x80, 0x00, 0x01 };
    const char *e = b64(bin, sizeof bin);
    ok(base64_decode(e, strlen(e), out, sizeof out, &n) == 0 && n == sizeof bin &&
       memcmp(out, bin, n) == 0, "binary round trip (%s)", e);
  }
}

static void mech_tests(void)
{
  enum sasl_mech m;

  ok(sasl_mech_find("plain", &m) == 0 && m == SASL_PLAIN, "mechanism names: plain");
  ok(sasl_mech_find("Cram-Md5", &m) == 0 && m == SASL_CRAM_MD5, "mechanism names: Cram-Md5");
  ok(sasl_mech_find("LOGIN", &m) == 0 && m == SASL_LOGIN, "mechanism names: LOGIN");
  ok(sasl_mech_find("SCRAM-SHA-1", &m) < 0, "unknown mechanism");
  ok(sasl_mech_find("PLAINX", &m) < 0 && sasl_mech_find("PLAI", &m) < 0,
     "no prefix matches");
}

static void plain_tests(void)
{
  struct sasl x;
  char out[SASL_CHALLENGE_MAX];
  const char msg[] = "\0tim\0tanstaaf";
  const char msg_z[] = "tim\0tim\0tanstaaf";
  const char msg_other[] = "root\0tim\0tanstaaf";
  const char msg_nul[] = "\0tim\0tan\0staaf";
  const char msg_nopass[] = "\0tim\0";
  const char msg_nouser[] = "\0\0pw";
  char enc[1024];

  sasl_start(&x, SASL_PLAIN, NULL);
  snprintf(enc, sizeof enc, "%s", b64(msg, sizeof msg - 1));
  ok(sasl_step(&x, enc, out, sizeof out) == SASL_DONE, "PLAIN with an initial response");
  is_str(x.user, "tim", "PLAIN user");
  is_str(x.password, "tanstaaf", "PLAIN password");
  sasl_free(&x);

  sasl_start(&x, SASL_PLAIN, NULL);
  ok(sasl_step(&x, NULL, out, sizeof out) == SASL_CONTINUE && out[0] == '\0',
     "PLAIN without an initial response: empty challenge");
  ok(sasl_step(&x, enc, out, sizeof out) == SASL_DONE && strcmp(x.user, "tim") == 0,
     "PLAIN response after the challenge");
  sasl_free(&x);

  sasl_start(&x, SASL_PLAIN, NULL);
  snprintf(enc, sizeof enc, "%s", b64(msg_z, sizeof msg_z - 1));
  ok(sasl_step(&x, enc, out, sizeof out) == SASL_DONE, "PLAIN authzid = authcid");
  sasl_free(&x);

  const struct { const char *m; size_t n; const char *what; } bad[] = {
    { msg_other, sizeof msg_other - 1, "authzid of someone else" },
    { msg_nul, sizeof msg_nul - 1, "NUL in the password" },
    { msg_nopass, sizeof msg_nopass - 1, "empty password" },
    { msg_nouser, sizeof msg_nouser - 1, "empty user" },
    { "timtanstaaf", 11, "no NUL separators" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sasl_start(&x, SASL_PLAIN, NULL);
    snprintf(enc, sizeof enc, "%s", b64(bad[i].m, bad[i].n));
    ok(sasl_step(&x, enc, out, sizeof out) == SASL_BAD && x.user == NULL,
       "PLAIN refused: %s", bad[i].what);
    sasl_free(&x);
  }

  sasl_start(&x, SASL_PLAIN, NULL);
  ok(sasl_step(&x, "=", out, sizeof out) == SASL_BAD, "PLAIN empty initial response");
  sasl_free(&x);
  sasl_start(&x, SASL_PLAIN, NULL);
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "PLAIN cancel as initial response");
  sasl_free(&x);
  sasl_start(&x, SASL_PLAIN, NULL);
  (void)sasl_step(&x, NULL, out, sizeof out);
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "PLAIN cancel after the challenge");
  sasl_free(&x);
  sasl_start(&x, SASL_PLAIN, NULL);
  ok(sasl_step(&x, "AHRpbQB0YW5zdGFhZg=!", out, sizeof out) == SASL_BAD, "PLAIN bad base64");
  sasl_free(&x);

  {
    char *big = malloc(SASL_LINE_MAX + 5);

    memset(big, 'A', SASL_LINE_MAX + 4);
    big[SASL_LINE_MAX + 4] = '\0';
    sasl_start(&x, SASL_PLAIN, NULL);
    ok(sasl_step(&x, big, out, sizeof out) == SASL_BAD, "PLAIN overlong response");
    sasl_free(&x);
    /* A long password (over the secret limit) inside a line that fits. */
    {
      size_t n = 2 + 3 + SASL_SECRET_MAX + 1;
      char *m = calloc(1, n), *e = malloc(BASE64_ENCODED_LEN(n) + 1);

      memcpy(m + 1, "tim", 3);
      memset(m + 5, 'p', SASL_SECRET_MAX + 1);
      ok(base64_encode(m, n, e, BASE64_ENCODED_LEN(n) + 1) != (size_t)-1, "encode long");
      sasl_start(&x, SASL_PLAIN, NULL);
      ok(sasl_step(&x, e, out, sizeof out) == SASL_BAD, "PLAIN password over the limit");
      sasl_free(&x);
      free(m);
      free(e);
    }
    free(big);
  }
}

static void login_tests(void)
{
  struct sasl x;
  char out[SASL_CHALLENGE_MAX], enc[1024];

  sasl_start(&x, SASL_LOGIN, NULL);
  ok(sasl_step(&x, NULL, out, sizeof out) == SASL_CONTINUE, "LOGIN starts");
  is_str(out, "VXNlcm5hbWU6", "LOGIN asks Username:");
  ok(sasl_step(&x, "dGlt", out, sizeof out) == SASL_CONTINUE, "LOGIN user");
  is_str(out, "UGFzc3dvcmQ6", "LOGIN asks Password:");
  snprintf(enc, sizeof enc, "%s", b64("tans taaf", 9));
  ok(sasl_step(&x, enc, out, sizeof out) == SASL_DONE, "LOGIN password");
  ok(strcmp(x.user, "tim") == 0 && strcmp(x.password, "tans taaf") == 0,
     "LOGIN credentials");
  sasl_free(&x);

  sasl_start(&x, SASL_LOGIN, NULL);
  ok(sasl_step(&x, "dGlt", out, sizeof out) == SASL_CONTINUE &&
     strcmp(out, "UGFzc3dvcmQ6") == 0, "LOGIN with the user as initial response");
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "LOGIN cancel at the password");
  sasl_free(&x);

  sasl_start(&x, SASL_LOGIN, NULL);
  (void)sasl_step(&x, NULL, out, sizeof out);
  ok(sasl_step(&x, "=", out, sizeof out) == SASL_BAD, "LOGIN empty user");
  sasl_free(&x);
  sasl_start(&x, SASL_LOGIN, NULL);
  (void)sasl_step(&x, NULL, out, sizeof out);
  (void)sasl_step(&x, "dGlt", out, sizeof out);
  ok(sasl_step(&x, "=", out, sizeof out) == SASL_BAD, "LOGIN empty password");
  sasl_free(&x);
  sasl_start(&x, SASL_LOGIN, NULL);
  (void)sasl_step(&x, NULL, out, sizeof out);
  ok(sasl_step(&x, "dGl", out, sizeof out) == SASL_BAD, "LOGIN bad base64");
  sasl_free(&x);
  sasl_start(&x, SASL_LOGIN, NULL);
  (void)sasl_step(&x, NULL, out, sizeof out);
  ok(sasl_step(&x, "dGltCg==", out, sizeof out) == SASL_BAD, "LOGIN user with a newline");
  sasl_free(&x);
}

static void cram_tests(void)
{
  static const char ch[] = "<1896.697170952@postoffice.reston.mci.net>";
  struct sasl x;
  char out[SASL_CHALLENGE_MAX];

  sasl_start(&x, SASL_CRAM_MD5, ch);
  ok(sasl_step(&x, NULL, out, sizeof out) == SASL_CONTINUE, "CRAM-MD5 starts");
  is_str(out, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
         "CRAM-MD5 challenge of RFC 2195");
  ok(sasl_step(&x, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", out, sizeof out) ==
     SASL_DONE, "CRAM-MD5 response of RFC 2195");
  is_str(x.user, "tim", "CRAM-MD5 user");
  is_str(x.digest, "b913a602c7eda7a495b4e6e7334d3890", "CRAM-MD5 digest");
  is_str(x.challenge, ch, "CRAM-MD5 keeps its challenge");
  sasl_free(&x);

  sasl_start(&x, SASL_CRAM_MD5, ch);
  ok(sasl_step(&x, "dGlt", out, sizeof out) == SASL_BAD, "CRAM-MD5 initial response refused");
  sasl_free(&x);
  sasl_start(&x, SASL_CRAM_MD5, ch);
  (void)sasl_step(&x, NULL, out, sizeof out);
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "CRAM-MD5 cancel");
  sasl_free(&x);
  {
    static const char *const bad[] = {
      "tim", "timb913a602c7eda7a495b4e6e7334d3890", " b913a602c7eda7a495b4e6e7334d3890",
      "tim b913a602c7eda7a495b4e6e7334d389", "tim b913a602c7eda7a495b4e6e7334d389g",
      "tim b913a602c7eda7a495b4e6e7334d38900",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      char enc[1024];

      snprintf(enc, sizeof enc, "%s", b64(bad[i], strlen(bad[i])));
      sasl_start(&x, SASL_CRAM_MD5, ch);
      (void)sasl_step(&x, NULL, out, sizeof out);
      ok(sasl_step(&x, enc, out, sizeof out) == SASL_BAD, "CRAM-MD5 malformed: \"%s\"",
         bad[i]);
      sasl_free(&x);
    }
  }
  sasl_start(&x, SASL_CRAM_MD5, "");
  ok(sasl_step(&x, NULL, out, sizeof out) == SASL_BAD, "CRAM-MD5 without a challenge");
  sasl_free(&x);
}

int main(void)
{
  base64_tests();
  mech_tests();
  plain_tests();
  login_tests();
  cram_tests();
  return tap_done();
}
