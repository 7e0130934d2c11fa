/* sasl.c - PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256 exchanges.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sasl.h"

static const char *const mech_names[] = {
  [SASL_PLAIN] = "PLAIN",
  [SASL_LOGIN] = "LOGIN",
  [SASL_CRAM_MD5] = "CRAM-MD5",
  [SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
};

int sasl_mech_find(const char *name, enum sasl_mech *m)
{
  for (size_t i = 0; i < sizeof mech_names / sizeof mech_names[0]; i++)
    if (strlen(name) == strlen(mech_names[i]) &&
        util_strncasecmp(name, mech_names[i], strlen(name)) == 0) {
      *m = (enum sasl_mech)i;
      return 0;
    }
  return -1;
}

const char *sasl_mech_name(enum sasl_mech m)
{
  return mech_names[m];
}

void sasl_start(struct sasl *x, enum sasl_mech m, const char *challenge)
{
  memset(x, 0, sizeof *x);
  x->mech = m;
  if (m == SASL_CRAM_MD5)
    snprintf(x->challenge, sizeof x->challenge, "%s", challenge ? challenge : "");
  if (m == SASL_SCRAM_SHA_256) {
    unsigned char r[SCRAM_SNONCE_BYTES];

    x->scram = SCRAM_FIRST;
    x->iterations = SCRAM_ITERATIONS;
    /* A predictable salt or nonce would let a recorded exchange be replayed: without
     * the random source there is no exchange. */
    if (util_random(x->salt, sizeof x->salt) < 0 || util_random(r, sizeof r) < 0 ||
        base64_encode(r, sizeof r, x->snonce, sizeof x->snonce) == (size_t)-1)
      x->scram = SCRAM_OVER;
    util_wipe(r, sizeof r);
  }
}

void sasl_free(struct sasl *x)
{
  util_free_secret(x->user);
  util_free_secret(x->password);
  util_free_secret(x->gs2);
  util_free_secret(x->auth_message);
  util_wipe(x, sizeof *x);
}

/* Decode one response into buf (cap bytes): "=" is the empty response.  Returns the
 * decoded length, or -1. */
static long decode(const char *line, unsigned char *buf, size_t cap)
{
  size_t len = strlen(line), n;

  if (len > SASL_LINE_MAX)
    return -1;
  if (len == 1 && line[0] == '=') {
    buf[0] = '\0';
    return 0;
  }
  if (base64_decode(line, len, buf, cap - 1, &n) < 0)
    return -1;
  buf[n] = '\0';
  return (long)n;
}

static bool text_ok(const unsigned char *p, size_t n, size_t max)
{
  /* A name or password that is empty, too long, or holds NUL or a line break can't be
   * checked as one. */
  if (n == 0 || n > max)
    return false;
  for (size_t i = 0; i < n; i++)
    if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n')
      return false;
  return true;
}

static enum sasl_result challenge(char *out, size_t cap, const char *text)
{
  if (base64_encode(text, strlen(text), out, cap) == (size_t)-1)
    return SASL_BAD;
  return SASL_CONTINUE;
}

/* PLAIN: [authzid] NUL authcid NUL passwd.  Acting for another user is not offered: an
 * authzid must be empty or the authcid itself. */
static enum sasl_result plain(struct sasl *x, const unsigned char *b, size_t n)
{
  const unsigned char *z = b, *c, *p, *end = b + n;
  size_t zl, cl, pl;

  c = memchr(z, '\0', n);
  if (c == NULL)
    return SASL_BAD;
  zl = (size_t)(c - z);
  c++;
  p = memchr(c, '\0', (size_t)(end - c));
  if (p == NULL)
    return SASL_BAD;
  cl = (size_t)(p - c);
  p++;
  pl = (size_t)(end - p);
  if (!text_ok(c, cl, PARAMS_USER_MAX) || !text_ok(p, pl, SASL_SECRET_MAX))
    return SASL_BAD;
  if (zl > 0 && (zl != cl || memcmp(z, c, cl) != 0))
    return SASL_BAD;
  x->user = util_xstrndup((const char *)c, cl);
  x->password = util_xstrndup((const char *)p, pl);
  return SASL_DONE;
}

/* CRAM-MD5: "user SP 32 lower-case hex digits"; the name may itself hold spaces, the
 * digest follows the last one. */
static enum sasl_result cram(struct sasl *x, const unsigned char *b, size_t n)
{
  const unsigned char *sp;
  size_t ul;

  if (n < MD5_HEX_SIZE + 1 || memchr(b, '\0', n) != NULL)
    return SASL_BAD;
  sp = b + n - MD5_HEX_SIZE;
  if (*sp != ' ')
    return SASL_BAD;
  ul = (size_t)(sp - b);
  if (!text_ok(b, ul, PARAMS_USER_MAX))
    return SASL_BAD;
  for (size_t i = 1; i < MD5_HEX_SIZE; i++) {
    unsigned char ch = sp[i];
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
      return SASL_BAD;
  }
  x->user = util_xstrndup((const char *)b, ul);
  memcpy(x->digest, sp + 1, MD5_HEX_SIZE - 1);
  x->digest[MD5_HEX_SIZE - 1] = '\0';
  return SASL_DONE;
}

/* ---- SCRAM-SHA-256 (RFC 5802 section 7, RFC 7677) ---- */

/* The longest server-first-message: r=NONCE,s=SALT,i=N. */
#define SCRAM_SERVER_FIRST_MAX \
  (2 + SCRAM_CNONCE_MAX + SCRAM_SNONCE_MAX + 3 + BASE64_ENCODED_LEN(SCRAM_SALT_SIZE) + 3 + 10)
_Static_assert(BASE64_ENCODED_LEN(SCRAM_SERVER_FIRST_MAX) < SASL_CHALLENGE_MAX,
               "the SCRAM server-first-message fits a challenge");
_Static_assert(BASE64_ENCODED_LEN(SCRAM_SNONCE_BYTES) <= SCRAM_SNONCE_MAX,
               "the server nonce fits");

/* A cursor over a decoded message: p .. end, NUL-free (checked first). */
struct scan {
  const char *p, *end;
};

/* The value of attribute name ("n", "r"...) at the cursor, up to the next comma or the
 * end: *v and *vn.  The cursor moves past the value (onto the comma, if any). */
static bool scan_attr(struct scan *c, char name, const char **v, size_t *vn)
{
  const char *comma;

  if (c->end - c->p < 2 || c->p[0] != name || c->p[1] != '=')
    return false;
  c->p += 2;
  comma = memchr(c->p, ',', (size_t)(c->end - c->p));
  *v = c->p;
  *vn = (size_t)((comma != NULL ? comma : c->end) - c->p);
  c->p += *vn;
  return true;
}

/* A comma at the cursor, skipped. */
static bool scan_comma(struct scan *c)
{
  if (c->p >= c->end || *c->p != ',')
    return false;
  c->p++;
  return true;
}

/* saslname: "=2C" is a comma, "=3D" an equals sign (in either case: ABNF literals are
 * case-insensitive, RFC 5234 section 2.3), and no other '=' may appear.  Decoded into
 * a new string of 1 to max bytes without control characters, or NULL. */
static char *saslname(const char *v, size_t n, size_t max)
{
  char *out = util_xmalloc(n + 1);
  size_t o = 0;

  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)v[i];

    if (ch == '=') {
      if (n - i >= 3 && v[i + 1] == '2' && (v[i + 2] == 'C' || v[i + 2] == 'c'))
        ch = ',';
      else if (n - i >= 3 && v[i + 1] == '3' && (v[i + 2] == 'D' || v[i + 2] == 'd'))
        ch = '=';
      else
        goto bad;
      i += 2;
    } else if (ch < 0x20 || ch == 0x7f) {
      goto bad;
    }
    out[o++] = (char)ch;
  }
  out[o] = '\0';
  if (o == 0 || o > max)
    goto bad;
  return out;
bad:
  util_wipe(out, n + 1);
  free(out);
  return NULL;
}

/* printable: %x21-2B / %x2D-7E (a nonce). */
static bool printable(const char *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (v[i] < 0x21 || v[i] > 0x7e || v[i] == ',')
      return false;
  return n > 0;
}

/* Optional extensions: *("," ALPHA "=" 1*value-char), up to the end or, when stop is
 * set, up to an attribute named stop (left at the cursor).  Unknown extensions are
 * ignored, as RFC 5802 section 5.1 has it; malformed ones are not. */
static bool scan_extensions(struct scan *c, char stop)
{
  while (c->p < c->end) {
    const char *v;
    size_t vn;
    char a;

    if (!scan_comma(c) || c->end - c->p < 2)
      return false;
    a = c->p[0];
    if (stop != '\0' && a == stop && c->p[1] == '=') {
      c->p--;
      return true;
    }
    if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || !scan_attr(c, a, &v, &vn) ||
        vn == 0)
      return false;
  }
  return stop == '\0';
}

/* Concatenate a, ",", b into a new string. */
static char *join(const char *a, size_t an, const char *b, size_t bn)
{
  char *s = util_xmalloc(an + 1 + bn + 1);

  memcpy(s, a, an);
  s[an] = ',';
  memcpy(s + an + 1, b, bn);
  s[an + 1 + bn] = '\0';
  return s;
}

/* client-first-message = gs2-header client-first-message-bare
 *   gs2-header = ("n" / "y" / "p=" cb-name) "," [ "a=" saslname ] ","
 *   client-first-message-bare = [ "m=" ... "," ] "n=" saslname "," "r=" c-nonce
 *                               [ "," extensions ]
 * Answered with server-first-message = "r=" c-nonce s-nonce "," "s=" salt "," "i=" N. */
static enum sasl_result scram_first(struct sasl *x, const char *b, size_t n, char *out,
                                    size_t cap)
{
  struct scan c = { b, b + n };
  const char *v, *bare, *cnonce;
  size_t vn, cn;
  char *authzid = NULL, server[SCRAM_SERVER_FIRST_MAX + 1], salt[64];
  enum sasl_result r = SASL_BAD;
  int sn;

  /* "p": the client requires channel binding, which only -PLUS mechanisms offer; "y":
   * it could bind but thinks we can't, which is right. */
  if (n < 3 || (b[0] != 'n' && b[0] != 'y') || b[1] != ',')
    return SASL_BAD;
  c.p += 2;
  if (c.p < c.end && *c.p == 'a') {
    if (!scan_attr(&c, 'a', &v, &vn) ||
        (authzid = saslname(v, vn, PARAMS_USER_MAX)) == NULL)
      return SASL_BAD;
  }
  if (!scan_comma(&c))
    goto out;
  x->gs2 = util_xstrndup(b, (size_t)(c.p - b));
  bare = c.p;
  /* "m": a mandatory extension, which we can't know. */
  if (!scan_attr(&c, 'n', &v, &vn) || (x->user = saslname(v, vn, PARAMS_USER_MAX)) == NULL)
    goto out;
  /* Acting for another user is not offered: an authzid must name the user. */
  if (authzid != NULL && strcmp(authzid, x->user) != 0)
    goto out;
  if (!scan_comma(&c) || !scan_attr(&c, 'r', &cnonce, &cn) || cn > SCRAM_CNONCE_MAX ||
      !printable(cnonce, cn) || !scan_extensions(&c, '\0'))
    goto out;
  if (base64_encode(x->salt, sizeof x->salt, salt, sizeof salt) == (size_t)-1)
    goto out;
  snprintf(x->nonce, sizeof x->nonce, "%.*s%s", (int)cn, cnonce, x->snonce);
  sn = snprintf(server, sizeof server, "r=%s,s=%s,i=%u", x->nonce, salt, x->iterations);
  if (sn < 0 || (size_t)sn >= sizeof server)
    goto out;
  x->auth_message = join(bare, (size_t)(c.end - bare), server, (size_t)sn);
  r = challenge(out, cap, server);
  x->scram = SCRAM_FINAL;
out:
  util_free_secret(authzid);
  return r;
}

/* client-final-message = "c=" base64(gs2-header) "," "r=" nonce [ "," extensions ]
 *                        "," "p=" base64(ClientProof) */
static enum sasl_result scram_final(struct sasl *x, const char *b, size_t n)
{
  struct scan c = { b, b + n };
  const char *v, *noproof_end;
  size_t vn, pn;
  char cbind[BASE64_ENCODED_LEN(PARAMS_USER_MAX * 3 + 8) + 1];
  unsigned char proof[SHA256_DIGEST_SIZE + 3];
  char *am;

  /* Without channel binding, c= is the gs2-header the client sent, in base64 ("biws"
   * for "n,,"). */
  if (base64_encode(x->gs2, strlen(x->gs2), cbind, sizeof cbind) == (size_t)-1 ||
      !scan_attr(&c, 'c', &v, &vn) || vn != strlen(cbind) || memcmp(v, cbind, vn) != 0)
    return SASL_BAD;
  if (!scan_comma(&c) || !scan_attr(&c, 'r', &v, &vn) || vn != strlen(x->nonce) ||
      memcmp(v, x->nonce, vn) != 0)
    return SASL_BAD;
  if (!scan_extensions(&c, 'p'))
    return SASL_BAD;
  noproof_end = c.p;
  if (!scan_comma(&c) || !scan_attr(&c, 'p', &v, &vn) || c.p != c.end ||
      base64_decode(v, vn, proof, sizeof proof, &pn) < 0 || pn != SHA256_DIGEST_SIZE)
    return SASL_BAD;
  memcpy(x->proof, proof, sizeof x->proof);
  util_wipe(proof, sizeof proof);
  am = join(x->auth_message, strlen(x->auth_message), b, (size_t)(noproof_end - b));
  util_free_secret(x->auth_message);
  x->auth_message = am;
  x->scram = SCRAM_PROOF;
  return SASL_VERIFY;
}

static enum sasl_result scram_next(struct sasl *x, const unsigned char *b, size_t n,
                                   char *out, size_t cap)
{
  /* Every message is text: a NUL can only be an attack on the parser. */
  if (b != NULL && memchr(b, '\0', n) != NULL)
    return SASL_BAD;
  switch (x->scram) {
  case SCRAM_FIRST:
    /* No initial response: an empty challenge asks for client-first-message. */
    if (b == NULL)
      return x->step == 1 ? challenge(out, cap, "") : SASL_BAD;
    return scram_first(x, (const char *)b, n, out, cap);
  case SCRAM_FINAL:
    return scram_final(x, (const char *)b, n);
  case SCRAM_VERIFIED:
    /* The answer to server-final-message is empty. */
    if (n != 0)
      return SASL_BAD;
    x->scram = SCRAM_OVER;
    return SASL_DONE;
  case SCRAM_PROOF:
  case SCRAM_OVER:
    break;
  }
  return SASL_BAD;
}

static enum sasl_result scram(struct sasl *x, const unsigned char *b, size_t n, char *out,
                              size_t cap)
{
  enum sasl_result r = scram_next(x, b, n, out, cap);

  /* A malformed message ends the exchange and leaves no half-read identity behind. */
  if (r == SASL_BAD) {
    x->scram = SCRAM_OVER;
    util_free_secret(x->user);
    x->user = NULL;
  }
  return r;
}

bool sasl_scram_verify(struct sasl *x, const char *secret, char *out, size_t cap)
{
  /* Users without a secret cost the same Hi(); the secret never matches. */
  static const char dummy[] = "pop3d SCRAM dummy secret";
  const char *pw = secret != NULL ? secret : dummy;
  unsigned char salted[SHA256_DIGEST_SIZE], client_key[SHA256_DIGEST_SIZE],
      stored_key[SHA256_DIGEST_SIZE], sig[SHA256_DIGEST_SIZE], server_key[SHA256_DIGEST_SIZE],
      server_sig[SHA256_DIGEST_SIZE];
  char v[3 + BASE64_ENCODED_LEN(SHA256_DIGEST_SIZE)];
  size_t amn;
  bool ok;

  if (cap > 0)
    out[0] = '\0';
  if (x->mech != SASL_SCRAM_SHA_256 || x->scram != SCRAM_PROOF || x->auth_message == NULL)
    return false;
  amn = strlen(x->auth_message);
  /* SaltedPassword = Hi(password, salt, i); ClientKey = HMAC(SaltedPassword,
   * "Client Key"); StoredKey = H(ClientKey); ClientSignature = HMAC(StoredKey,
   * AuthMessage); ClientProof = ClientKey XOR ClientSignature. */
  pbkdf2_sha256(pw, strlen(pw), x->salt, sizeof x->salt, x->iterations, salted,
                sizeof salted);
  hmac_sha256(salted, sizeof salted, "Client Key", 10, client_key);
  sha256(client_key, sizeof client_key, stored_key);
  hmac_sha256(stored_key, sizeof stored_key, x->auth_message, amn, sig);
  for (size_t i = 0; i < sizeof sig; i++)
    sig[i] ^= client_key[i];
  ok = util_memeq_ct(sig, x->proof, sizeof sig) && secret != NULL;
  /* ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage), made
   * whatever the outcome so that a refusal takes as long as a success. */
  hmac_sha256(salted, sizeof salted, "Server Key", 10, server_key);
  hmac_sha256(server_key, sizeof server_key, x->auth_message, amn, server_sig);
  memcpy(v, "v=", 2);
  if (base64_encode(server_sig, sizeof server_sig, v + 2, sizeof v - 2) == (size_t)-1 ||
      (ok && challenge(out, cap, v) != SASL_CONTINUE))
    ok = false;
  util_wipe(salted, sizeof salted);
  util_wipe(client_key, sizeof client_key);
  util_wipe(stored_key, sizeof stored_key);
  util_wipe(sig, sizeof sig);
  util_wipe(server_key, sizeof server_key);
  util_wipe(server_sig, sizeof server_sig);
  util_wipe(v, sizeof v);
  util_wipe(x->proof, sizeof x->proof);
  x->scram = ok ? SCRAM_VERIFIED : SCRAM_OVER;
  return ok;
}

enum sasl_result sasl_step(struct sasl *x, const char *line, char *out, size_t cap)
{
  unsigned char buf[SASL_LINE_MAX / 4 * 3 + 4];
  long n = 0;
  enum sasl_result r = SASL_BAD;

  if (cap > 0)
    out[0] = '\0';
  if (line != NULL) {
    if (strcmp(line, "*") == 0)
      return SASL_CANCEL;
    if ((n = decode(line, buf, sizeof buf)) < 0)
      return SASL_BAD;
  }
  x->step++;
  switch (x->mech) {
  case SASL_PLAIN:
    /* No initial response: an empty challenge asks for it. */
    if (line == NULL && x->step == 1)
      r = challenge(out, cap, "");
    else
      r = plain(x, buf, (size_t)n);
    break;
  case SASL_LOGIN:
    if (line == NULL && x->step == 1) {
      r = challenge(out, cap, "Username:");
    } else if (x->user == NULL) {
      if (text_ok(buf, (size_t)n, PARAMS_USER_MAX)) {
        x->user = util_xstrndup((const char *)buf, (size_t)n);
        r = challenge(out, cap, "Password:");
      }
    } else if (text_ok(buf, (size_t)n, SASL_SECRET_MAX)) {
      x->password = util_xstrndup((const char *)buf, (size_t)n);
      r = SASL_DONE;
    }
    break;
  case SASL_CRAM_MD5:
    /* The server speaks first: an initial response has nothing to answer. */
    if (x->step == 1)
      r = line == NULL && x->challenge[0] != '\0' ? challenge(out, cap, x->challenge)
                                                  : SASL_BAD;
    else
      r = cram(x, buf, (size_t)n);
    break;
  case SASL_SCRAM_SHA_256:
    r = scram(x, line != NULL ? buf : NULL, (size_t)n, out, cap);
    break;
  }
  util_wipe(buf, sizeof buf);
  /* An exchange never needs more than three rounds (SCRAM's fourth, the answer to
   * server-final-message, ends it); stop a client that loops. */
  if (r == SASL_CONTINUE && x->step > 3)
    r = SASL_BAD;
  return r;
}
