/* sasl.c - PLAIN, LOGIN and CRAM-MD5 exchanges.
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
}

void sasl_free(struct sasl *x)
{
  util_free_secret(x->user);
  util_free_secret(x->password);
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
  }
  util_wipe(buf, sizeof buf);
  /* An exchange never needs more than three rounds; stop a client that loops. */
  if (r == SASL_CONTINUE && x->step > 3)
    r = SASL_BAD;
  return r;
}
