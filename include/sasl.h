/* sasl.h - the SASL mechanisms of AUTH (RFC 5034): PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login) and CRAM-MD5 (RFC 2195), as a small state machine that
 * knows nothing of sockets: it takes the client's lines and produces the server's
 * challenges, then the credentials to check.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_SASL_H
#define POP3D_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "md5.h"
#include "params.h"
#include "util.h"

/* Longest client response line (base64), CRLF excluded.  PLAIN carries a user name and
 * a password of up to PARAMS_USER_MAX and SASL_SECRET_MAX bytes. */
#define SASL_LINE_MAX 2048
/* Longest decoded password or secret accepted. */
#define SASL_SECRET_MAX 1024
/* Largest challenge the server sends (base64 of at most 255 bytes fits). */
#define SASL_CHALLENGE_MAX 512

enum sasl_mech {
  SASL_PLAIN,
  SASL_LOGIN,
  SASL_CRAM_MD5,
};

enum sasl_result {
  SASL_CONTINUE,   /* send "+ " and the challenge, then give the next client line */
  SASL_DONE,       /* credentials complete: user and password (or digest) are set */
  SASL_CANCEL,     /* the client sent "*" */
  SASL_BAD,        /* malformed response: bad base64, empty name, overlong... */
};

struct sasl {
  enum sasl_mech mech;
  unsigned step;
  char *user;                  /* authentication identity */
  char *password;              /* PLAIN, LOGIN */
  char digest[MD5_HEX_SIZE];   /* CRAM-MD5: the client's hex digest */
  char challenge[160];         /* CRAM-MD5: the challenge sent, as text */
};

/* Find a mechanism by name (case-insensitive).  0, or -1 when unknown. */
int sasl_mech_find(const char *name, enum sasl_mech *m) WUR;
const char *sasl_mech_name(enum sasl_mech m);

/* Start an exchange.  challenge is the CRAM-MD5 challenge (a unique msg-id such as the
 * APOP stamp); ignored by the other mechanisms. */
void sasl_start(struct sasl *x, enum sasl_mech m, const char *challenge);

/* Feed one client line: the initial response of AUTH (NULL when there was none; "="
 * means an empty one) on the first call, then each line that answers a challenge.  On
 * SASL_CONTINUE out (cap bytes) gets the base64 challenge to send after "+ ".  The line
 * is not kept (wipe it afterwards). */
enum sasl_result sasl_step(struct sasl *x, const char *line, char *out, size_t cap);

/* Wipe and free what the exchange holds. */
void sasl_free(struct sasl *x);

#endif
