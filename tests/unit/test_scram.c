/* test_scram.c - SHA-256 (FIPS 180-4 examples), HMAC-SHA-256 (RFC 4231), PBKDF2 (RFC
 * 7914 section 11), and the SCRAM-SHA-256 exchange: the example of RFC 7677 section 3,
 * then authzid, saslname escapes, gs2 flags, nonce, channel binding and proof checks,
 * cancel and every kind of malformed message.  GPL-3.0-or-later. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sasl.h"
#include "sha256.h"
#include "tap.h"

static const char *hex(const unsigned char *d, size_t n)
{
  static char h[2 * 64 + 1];

  for (size_t i = 0; i < n && i < 64; i++)
    snprintf(h + 2 * i, 3, "%02x", d[i]);
  return h;
}

static void sha256_tests(void)
{
  static const struct { const char *in, *want; } v[] = {
    { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
  };
  unsigned char d[SHA256_DIGEST_SIZE], d2[SHA256_DIGEST_SIZE];
  struct sha256 c;
  char *a = malloc(1000000);

  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    sha256(v[i].in, strlen(v[i].in), d);
    is_str(hex(d, sizeof d), v[i].want, "SHA-256(\"%.20s\")", v[i].in);
  }
  memset(a, 'a', 1000000);
  sha256(a, 1000000, d);
  is_str(hex(d, sizeof d), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
         "SHA-256 of a million 'a'");
  /* Any split of the input gives the same digest (buffering across blocks, and the
   * padding when the length is 55, 56 or 64 bytes mod 64). */
  {
    bool same = true;

    for (size_t len = 0; len < 200 && same; len++) {
      sha256(a, len, d);
      for (size_t cut = 0; cut <= len && same; cut += 7) {
        sha256_init(&c);
        sha256_update(&c, a, cut);
        sha256_update(&c, a + cut, len - cut);
        sha256_final(&c, d2);
        same = memcmp(d, d2, sizeof d) == 0;
      }
    }
    ok(same, "SHA-256 split at any point, lengths 0 to 199");
  }
  free(a);
}

static void hmac_tests(void)
{
  unsigned char key[131], d[SHA256_DIGEST_SIZE];
  static const char big[] = "Test Using Larger Than Block-Size Key - Hash Key First";

  memset(key, 0x0b, 20);
  hmac_sha256(key, 20, "Hi There", 8, d);
  is_str(hex(d, sizeof d), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
         "HMAC-SHA-256, RFC 4231 test case 1");
  hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
  is_str(hex(d, sizeof d), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
         "HMAC-SHA-256, RFC 4231 test case 2");
  memset(key, 0xaa, sizeof key);
  hmac_sha256(key, sizeof key, big, strlen(big), d);
  is_str(hex(d, sizeof d), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
         "HMAC-SHA-256, RFC 4231 test case 6 (key longer than a block)");
}

static void pbkdf2_tests(void)
{
  unsigned char d[64];

  pbkdf2_sha256("passwd", 6, "salt", 4, 1, d, sizeof d);
  is_str(hex(d, sizeof d),
         "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
         "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
         "PBKDF2-HMAC-SHA-256, RFC 7914: passwd/salt, 1 round, 64 bytes");
  pbkdf2_sha256("Password", 8, "NaCl", 4, 80000, d, sizeof d);
  is_str(hex(d, sizeof d),
         "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
         "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
         "PBKDF2-HMAC-SHA-256, RFC 7914: Password/NaCl, 80000 rounds, 64 bytes");
}

/* ---- the exchange ---- */

/* RFC 7677 section 3. */
#define V_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define V_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define V_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define V_FIRST "n,,n=user,r=" V_CNONCE
#define V_SERVER_FIRST "r=" V_CNONCE V_SNONCE ",s=" V_SALT ",i=4096"
#define V_FINAL "c=biws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define V_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static char *enc(const char *s)
{
  static char out[4][4096];
  static unsigned k;
  char *o = out[k++ % 4];

  if (base64_encode(s, strlen(s), o, sizeof out[0]) == (size_t)-1)
    strcpy(o, "!");
  return o;
}

static const char *dec(const char *b64)
{
  static char out[2048];
  size_t n;

  if (base64_decode(b64, strlen(b64), (unsigned char *)out, sizeof out - 1, &n) < 0)
    return "(bad base64)";
  out[n] = '\0';
  return out;
}

/* Start an exchange with the salt and server nonce of the example. */
static void start_vector(struct sasl *x, unsigned iterations)
{
  size_t n;

  sasl_start(x, SASL_SCRAM_SHA_256, NULL);
  x->iterations = iterations;
  if (base64_decode(V_SALT, strlen(V_SALT), x->salt, sizeof x->salt, &n) < 0 ||
      n != sizeof x->salt)
    abort();
  snprintf(x->snonce, sizeof x->snonce, "%s", V_SNONCE);
}

static bool all_zero(const void *p, size_t n)
{
  const unsigned char *b = p;
  unsigned char acc = 0;

  for (size_t i = 0; i < n; i++)
    acc |= b[i];
  return acc == 0;
}

static void vector_tests(void)
{
  struct sasl x;
  char out[SASL_CHALLENGE_MAX];

  /* With the client-first-message on the AUTH line. */
  start_vector(&x, 4096);
  ok(sasl_step(&x, enc(V_FIRST), out, sizeof out) == SASL_CONTINUE,
     "RFC 7677: client-first-message as initial response");
  is_str(dec(out), V_SERVER_FIRST, "RFC 7677: server-first-message");
  is_str(x.user, "user", "RFC 7677: user");
  ok(sasl_step(&x, enc(V_FINAL), out, sizeof out) == SASL_VERIFY,
     "RFC 7677: client-final-message asks for verification");
  ok(sasl_scram_verify(&x, "pencil", out, sizeof out), "RFC 7677: proof verified");
  is_str(dec(out), V_SERVER_FINAL, "RFC 7677: server-final-message (server signature)");
  ok(all_zero(x.proof, sizeof x.proof), "the proof is wiped after verification");
  ok(sasl_step(&x, "", out, sizeof out) == SASL_DONE, "empty response: done");
  sasl_free(&x);

  /* Without an initial response: an empty challenge first; "=" as the empty answer. */
  start_vector(&x, 4096);
  ok(sasl_step(&x, NULL, out, sizeof out) == SASL_CONTINUE && out[0] == '\0',
     "no initial response: empty challenge");
  ok(sasl_step(&x, enc(V_FIRST), out, sizeof out) == SASL_CONTINUE &&
     strcmp(dec(out), V_SERVER_FIRST) == 0, "server-first-message after the challenge");
  ok(sasl_step(&x, enc(V_FINAL), out, sizeof out) == SASL_VERIFY &&
     sasl_scram_verify(&x, "pencil", out, sizeof out), "proof verified");
  ok(sasl_step(&x, "=", out, sizeof out) == SASL_DONE, "\"=\" as the empty response");
  sasl_free(&x);

  /* Wrong password; no secret at all (the same work, always false). */
  start_vector(&x, 4096);
  (void)sasl_step(&x, enc(V_FIRST), out, sizeof out);
  (void)sasl_step(&x, enc(V_FINAL), out, sizeof out);
  ok(!sasl_scram_verify(&x, "pencil2", out, sizeof out) && out[0] == '\0',
     "wrong secret: refused, no server signature");
  ok(sasl_step(&x, "", out, sizeof out) == SASL_BAD, "nothing more after a refusal");
  sasl_free(&x);
  start_vector(&x, 4096);
  (void)sasl_step(&x, enc(V_FIRST), out, sizeof out);
  (void)sasl_step(&x, enc(V_FINAL), out, sizeof out);
  ok(!sasl_scram_verify(&x, NULL, out, sizeof out) && out[0] == '\0',
     "user without a secret: refused");
  sasl_free(&x);

  /* A response other than empty after server-final-message. */
  start_vector(&x, 4096);
  (void)sasl_step(&x, enc(V_FIRST), out, sizeof out);
  (void)sasl_step(&x, enc(V_FINAL), out, sizeof out);
  (void)sasl_scram_verify(&x, "pencil", out, sizeof out);
  ok(sasl_step(&x, enc("x"), out, sizeof out) == SASL_BAD,
     "non-empty answer to server-final-message refused");
  sasl_free(&x);

  /* verify out of turn. */
  start_vector(&x, 4096);
  ok(!sasl_scram_verify(&x, "pencil", out, sizeof out), "verify before any message: false");
  (void)sasl_step(&x, enc(V_FIRST), out, sizeof out);
  ok(!sasl_scram_verify(&x, "pencil", out, sizeof out), "verify before the proof: false");
  sasl_free(&x);
}

/* Build a client-final-message with a correct proof for the exchange in x (password,
 * one Hi() round), with channel binding cb, nonce nonce and extra attributes ext. */
static const char *client_final(const struct sasl *x, const char *password, const char *cb,
                                const char *nonce, const char *ext)
{
  static char msg[2048];
  char noproof[1024], *am, p64[64];
  unsigned char salted[32], ck[32], sk[32], sig[32];
  int n;

  n = snprintf(noproof, sizeof noproof, "c=%s,r=%s%s", cb, nonce, ext);
  am = malloc(strlen(x->auth_message) + (size_t)n + 2);
  sprintf(am, "%s,%s", x->auth_message, noproof);
  pbkdf2_sha256(password, strlen(password), x->salt, sizeof x->salt, x->iterations, salted,
                sizeof salted);
  hmac_sha256(salted, 32, "Client Key", 10, ck);
  sha256(ck, 32, sk);
  hmac_sha256(sk, 32, am, strlen(am), sig);
  for (int i = 0; i < 32; i++)
    sig[i] ^= ck[i];
  if (base64_encode(sig, 32, p64, sizeof p64) == (size_t)-1)
    abort();
  snprintf(msg, sizeof msg, "%s,p=%s", noproof, p64);
  free(am);
  return msg;
}

/* Run a whole exchange: first (client-first-message), then the final message built by
 * client_final() with cb, the right nonce unless nonce is given, and ext.  Returns what
 * the exchange came to: 0 malformed first, 1 malformed final, 2 refused proof, 3 done. */
static int run(const char *first, const char *password, const char *cb, const char *nonce,
               const char *ext, char **user_r)
{
  struct sasl x;
  char out[SASL_CHALLENGE_MAX], want[700];
  const char *sf;
  int res = 0;

  sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
  x.iterations = 2;
  if (sasl_step(&x, enc(first), out, sizeof out) != SASL_CONTINUE)
    goto out;
  sf = dec(out);
  snprintf(want, sizeof want, "r=%s", x.nonce);
  if (strncmp(sf, want, strlen(want)) != 0 || strstr(sf, ",i=2") == NULL)
    abort();
  res = 1;
  if (sasl_step(&x, enc(client_final(&x, password, cb, nonce ? nonce : x.nonce,
                                     ext ? ext : "")), out, sizeof out) != SASL_VERIFY)
    goto out;
  res = 2;
  if (!sasl_scram_verify(&x, "pencil", out, sizeof out) ||
      sasl_step(&x, "", out, sizeof out) != SASL_DONE)
    goto out;
  res = 3;
  if (user_r != NULL)
    *user_r = util_xstrdup(x.user);
out:
  sasl_free(&x);
  return res;
}

static void exchange_tests(void)
{
  char *user = NULL;

  is_int(run("n,,n=user,r=abc", "pencil", "biws", NULL, NULL, &user), 3,
         "whole exchange with a client-built proof");
  is_str(user, "user", "user of the whole exchange");
  free(user);
  user = NULL;
  is_int(run("n,,n=user,r=abc", "wrong", "biws", NULL, NULL, NULL), 2, "wrong password");
  is_int(run("y,,n=user,r=abc", "pencil", "eSws", NULL, NULL, NULL), 3,
         "gs2 flag y accepted (c=eSws)");
  is_int(run("y,,n=user,r=abc", "pencil", "biws", NULL, NULL, NULL), 1,
         "gs2 flag y with c=biws refused");
  is_int(run("n,a=user,n=user,r=abc", "pencil", "bixhPXVzZXIs", NULL, NULL, NULL), 3,
         "authzid equal to the user accepted (c= carries it)");
  is_int(run("n,a=user,n=user,r=abc", "pencil", "biws", NULL, NULL, NULL), 1,
         "authzid given, channel binding without it refused");
  is_int(run("n,a=root,n=user,r=abc", "pencil", "biws", NULL, NULL, NULL), 0,
         "authzid of someone else refused");
  is_int(run("n,,n=user,r=abc", "pencil", "cD10bHMtdW5pcXVlLCw=", NULL, NULL, NULL), 1,
         "channel binding data refused");
  is_int(run("n,,n=user,r=abc", "pencil", "", NULL, NULL, NULL), 1, "empty c= refused");
  is_int(run("n,,n=user,r=abc", "pencil", "biws", "abc", NULL, NULL), 1,
         "client nonce alone (server nonce not echoed) refused");
  is_int(run("n,,n=user,r=abc", "pencil", "biws", "abcX", NULL, NULL), 1,
         "wrong nonce refused");
  is_int(run("n,,n=user,r=abc,x=ext", "pencil", "biws", NULL, ",y=more", NULL), 3,
         "unknown extensions ignored (and part of the AuthMessage)");
  is_int(run("n,,n=us=2Cer=3Dx,r=abc", "pencil", "biws", NULL, NULL, &user), 3,
         "escaped saslname");
  is_str(user, "us,er=x", "=2C and =3D decoded");
  free(user);
  user = NULL;
  is_int(run("n,a=us=2Cer,n=us=2cer,r=abc", "pencil", "bixhPXVzPTJDZXIs", NULL, NULL, NULL),
         3, "authzid compared after decoding (=2C and =2c)");
}

static void malformed_tests(void)
{
  static const char *const bad_first[] = {
    "", "n", "n,", "n,,", "x,,n=user,r=abc", "p=tls-unique,,n=user,r=abc",
    "p,,n=user,r=abc", "nn,,n=user,r=abc", "n,a=,n=user,r=abc", "n,b=user,n=user,r=abc",
    "n,a=user", "n,,m=ext,n=user,r=abc", "n,,n=,r=abc", "n,,n=user", "n,,n=user,",
    "n,,n=user,r=", "n,,n=user,s=abc", "n,,r=abc,n=user", "n,,n=us=2Xer,r=abc",
    "n,,n=us=er,r=abc", "n,,n=user=,r=abc", "n,,n=user=2,r=abc", "n,,n=user,r=a b",
    "n,,n=user,r=abc,", "n,,n=user,r=abc,x", "n,,n=user,r=abc,x=", "n,,n=user,r=abc,1=x",
    "n,,n=user,r=abc,,x=y", "n,,n=us\ter,r=abc", "n,,n=user,r=ab\x7f",
    "n,,n=user,r=ab\xc3\xa9", " n,,n=user,r=abc", "N,,n=user,r=abc",
  };
  struct sasl x;
  char out[SASL_CHALLENGE_MAX];

  for (size_t i = 0; i < sizeof bad_first / sizeof bad_first[0]; i++) {
    sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
    ok(sasl_step(&x, enc(bad_first[i]), out, sizeof out) == SASL_BAD && x.user == NULL,
       "client-first refused: \"%s\"", bad_first[i]);
    sasl_free(&x);
  }
  /* A NUL inside the message. */
  {
    static const char nul[] = "n,,n=us\0er,r=abc";
    char e[64];

    if (base64_encode(nul, sizeof nul - 1, e, sizeof e) == (size_t)-1)
      abort();
    sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
    ok(sasl_step(&x, e, out, sizeof out) == SASL_BAD, "client-first with a NUL refused");
    sasl_free(&x);
  }
  /* Limits: the longest client nonce and user name pass, one more byte does not. */
  {
    char msg[1600], n1[SCRAM_CNONCE_MAX + 2], u[PARAMS_USER_MAX + 2];

    memset(n1, 'N', sizeof n1 - 1);
    n1[SCRAM_CNONCE_MAX] = '\0';
    snprintf(msg, sizeof msg, "n,,n=user,r=%s", n1);
    sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
    ok(sasl_step(&x, enc(msg), out, sizeof out) == SASL_CONTINUE,
       "client nonce of %d characters", SCRAM_CNONCE_MAX);
    sasl_free(&x);
    n1[SCRAM_CNONCE_MAX] = 'N';
    n1[SCRAM_CNONCE_MAX + 1] = '\0';
    snprintf(msg, sizeof msg, "n,,n=user,r=%s", n1);
    sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
    ok(sasl_step(&x, enc(msg), out, sizeof out) == SASL_BAD, "client nonce one too long");
    sasl_free(&x);

    memset(u, 'u', sizeof u - 1);
    u[PARAMS_USER_MAX] = '\0';
    snprintf(msg, sizeof msg, "n,,n=%s,r=abc", u);
    sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
    ok(sasl_step(&x, enc(msg), out, sizeof out) == SASL_CONTINUE,
       "user name of %d bytes", PARAMS_USER_MAX);
    sasl_free(&x);
    u[PARAMS_USER_MAX] = 'u';
    u[PARAMS_USER_MAX + 1] = '\0';
    snprintf(msg, sizeof msg, "n,,n=%s,r=abc", u);
    sasl_start(&x, SASL_SCRAM_SHA_256, NULL);
    ok(sasl_step(&x, enc(msg), out, sizeof out) == SASL_BAD, "user name one byte too long");
    sasl_free(&x);
  }

  /* Malformed client-final-messages after a good client-first-message. */
  {
    static const char *const bad_final[] = {
      "", "c=biws", "c=biws,r=" V_CNONCE V_SNONCE,
      "c=biws,r=" V_CNONCE V_SNONCE ",p=",
      "c=biws,r=" V_CNONCE V_SNONCE ",p=!!!!",
      "c=biws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==",
      "c=biws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQAAAA=",
      "c=biws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=y",
      "r=" V_CNONCE V_SNONCE ",c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=bmws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,r=" V_CNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,r=" V_CNONCE V_SNONCE "x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,r=" V_CNONCE V_SNONCE ",,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,r=" V_CNONCE V_SNONCE ",1=x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
    };

    for (size_t i = 0; i < sizeof bad_final / sizeof bad_final[0]; i++) {
      start_vector(&x, 1);
      (void)sasl_step(&x, enc(V_FIRST), out, sizeof out);
      ok(sasl_step(&x, enc(bad_final[i]), out, sizeof out) == SASL_BAD && x.user == NULL,
         "client-final refused: \"%.60s\"", bad_final[i]);
      ok(!sasl_scram_verify(&x, "pencil", out, sizeof out), "and cannot be verified");
      sasl_free(&x);
    }
  }
  /* A client-final-message where client-first is expected, and the reverse. */
  start_vector(&x, 1);
  ok(sasl_step(&x, enc(V_FINAL), out, sizeof out) == SASL_BAD,
     "client-final as initial response refused");
  sasl_free(&x);
  /* An empty initial response ("=") is not a client-first-message. */
  start_vector(&x, 1);
  ok(sasl_step(&x, "=", out, sizeof out) == SASL_BAD, "empty initial response refused");
  sasl_free(&x);
  start_vector(&x, 1);
  ok(sasl_step(&x, "bixu!", out, sizeof out) == SASL_BAD, "bad base64 refused");
  sasl_free(&x);
}

static void cancel_tests(void)
{
  struct sasl x;
  char out[SASL_CHALLENGE_MAX];

  start_vector(&x, 1);
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "cancel as initial response");
  sasl_free(&x);
  start_vector(&x, 1);
  (void)sasl_step(&x, NULL, out, sizeof out);
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "cancel at the first challenge");
  sasl_free(&x);
  start_vector(&x, 1);
  (void)sasl_step(&x, enc(V_FIRST), out, sizeof out);
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "cancel at server-first");
  sasl_free(&x);
  start_vector(&x, 4096);
  (void)sasl_step(&x, enc(V_FIRST), out, sizeof out);
  (void)sasl_step(&x, enc(V_FINAL), out, sizeof out);
  (void)sasl_scram_verify(&x, "pencil", out, sizeof out);
  ok(sasl_step(&x, "*", out, sizeof out) == SASL_CANCEL, "cancel at server-final");
  sasl_free(&x);
}

static void random_tests(void)
{
  struct sasl a, b;
  enum sasl_mech m;

  ok(sasl_mech_find("scram-sha-256", &m) == 0 && m == SASL_SCRAM_SHA_256,
     "mechanism name, any case");
  is_str(sasl_mech_name(SASL_SCRAM_SHA_256), "SCRAM-SHA-256", "mechanism name");
  ok(sasl_mech_find("SCRAM-SHA-256-PLUS", &m) < 0, "-PLUS is not offered");
  sasl_start(&a, SASL_SCRAM_SHA_256, NULL);
  sasl_start(&b, SASL_SCRAM_SHA_256, NULL);
  ok(a.scram == SCRAM_FIRST && a.iterations == SCRAM_ITERATIONS, "fresh exchange");
  ok(strlen(a.snonce) == 24 && strcmp(a.snonce, b.snonce) != 0,
     "server nonces: 24 characters, fresh each time");
  ok(memcmp(a.salt, b.salt, sizeof a.salt) != 0, "salts: fresh each time");
  ok(strchr(a.snonce, ',') == NULL, "no comma in the server nonce");
  sasl_free(&a);
  sasl_free(&b);
  ok(all_zero(&a, sizeof a), "sasl_free wipes the exchange");
}

int main(void)
{
  sha256_tests();
  hmac_tests();
  pbkdf2_tests();
  vector_tests();
  exchange_tests();
  malformed_tests();
  cancel_tests();
  random_tests();
  return tap_done();
}
