/* sasl.h - the SASL mechanisms of AUTH (RFC 5034): PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195) and SCRAM-SHA-256 (RFC 5802,
 * RFC 7677), as a small state machine that knows nothing of sockets: it takes the
 * client's lines and produces the server's challenges, then the credentials to check.
 *
 * SCRAM-SHA-256 is served from a plaintext secret (the APOP database): each exchange
 * gets a fresh random salt and server nonce, and Hi() runs SCRAM_ITERATIONS rounds on
 * the secret.  Channel binding (the -PLUS variant) is not offered: a client that asks
 * for it ("p=") is refused, one that could use it ("y") is accepted.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_SASL_H
#define POP3D_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "md5.h"
#include "params.h"
#include "sha256.h"
#include "util.h"

/* Longest client response line (base64), CRLF excluded.  PLAIN carries a user name and
 * a password of up to PARAMS_USER_MAX and SASL_SECRET_MAX bytes. */
#define SASL_LINE_MAX 2048
/* Longest decoded password or secret accepted. */
#define SASL_SECRET_MAX 1024
/* Largest challenge the server sends, NUL included (base64 of at most 383 bytes fits:
 * the SCRAM server-first-message is the longest). */
#define SASL_CHALLENGE_MAX 512

/* SCRAM-SHA-256: Hi() rounds (RFC 7677 section 4 asks for at least 4096), salt bytes,
 * random bytes in the server's part of the nonce (24 characters of base64), and the
 * longest nonce part accepted from the client or set by a test. */
#define SCRAM_ITERATIONS 4096
#define SCRAM_SALT_SIZE 16
#define SCRAM_SNONCE_BYTES 18
#define SCRAM_CNONCE_MAX 256
#define SCRAM_SNONCE_MAX 64

enum sasl_mech {
  SASL_PLAIN,
  SASL_LOGIN,
  SASL_CRAM_MD5,
  SASL_SCRAM_SHA_256,
};

enum sasl_result {
  SASL_CONTINUE,   /* send "+ " and the challenge, then give the next client line */
  SASL_DONE,       /* credentials complete: user and password (or digest) are set */
  SASL_CANCEL,     /* the client sent "*" */
  SASL_BAD,        /* malformed response: bad base64, empty name, overlong... */
  SASL_VERIFY,     /* SCRAM: user and proof are in; call sasl_scram_verify() */
};

enum sasl_scram_state {
  SCRAM_FIRST,     /* waiting for client-first-message */
  SCRAM_FINAL,     /* server-first-message sent, waiting for client-final-message */
  SCRAM_PROOF,     /* proof received, to be verified */
  SCRAM_VERIFIED,  /* server-final-message sent, waiting for the empty response */
  SCRAM_OVER,      /* refused, or the random source failed at the start */
};

struct sasl {
  enum sasl_mech mech;
  unsigned step;
  char *user;                  /* authentication identity */
  char *password;              /* PLAIN, LOGIN */
  char digest[MD5_HEX_SIZE];   /* CRAM-MD5: the client's hex digest */
  char challenge[160];         /* CRAM-MD5: the challenge sent, as text */
  /* SCRAM-SHA-256 */
  enum sasl_scram_state scram;
  unsigned iterations;         /* Hi() rounds announced */
  unsigned char salt[SCRAM_SALT_SIZE];
  char snonce[SCRAM_SNONCE_MAX + 1];                    /* the server's nonce part */
  char nonce[SCRAM_CNONCE_MAX + SCRAM_SNONCE_MAX + 1];  /* client's + server's */
  char *gs2;                   /* gs2-header as the client sent it */
  char *auth_message;          /* client-first-bare,server-first[,client-final-no-proof] */
  unsigned char proof[SHA256_DIGEST_SIZE];              /* ClientProof received */
};

/* Find a mechanism by name (case-insensitive).  0, or -1 when unknown. */
int sasl_mech_find(const char *name, enum sasl_mech *m) WUR;
const char *sasl_mech_name(enum sasl_mech m);

/* Start an exchange.  challenge is the CRAM-MD5 challenge (a unique msg-id such as the
 * APOP stamp); ignored by the other mechanisms.  SCRAM-SHA-256 draws its salt and
 * server nonce here (a test may overwrite salt, snonce and iterations before the first
 * step). */
void sasl_start(struct sasl *x, enum sasl_mech m, const char *challenge);

/* Feed one client line: the initial response of AUTH (NULL when there was none; "="
 * means an empty one) on the first call, then each line that answers a challenge.  On
 * SASL_CONTINUE out (cap bytes) gets the base64 challenge to send after "+ ".  The line
 * is not kept (wipe it afterwards). */
enum sasl_result sasl_step(struct sasl *x, const char *line, char *out, size_t cap);

/* SCRAM-SHA-256, after sasl_step() returned SASL_VERIFY: check the client's proof
 * against secret, the user's plaintext secret (NULL for a user without one: the same
 * work is done with a dummy secret, and the answer is false).  When the proof holds,
 * out (cap bytes) gets the base64 server-final-message ("v=" and the server signature)
 * to send as a challenge; the client's empty response to it then makes sasl_step()
 * return SASL_DONE.  Keys derived from the secret are wiped before returning. */
bool sasl_scram_verify(struct sasl *x, const char *secret, char *out, size_t cap);

/* Wipe and free what the exchange holds. */
void sasl_free(struct sasl *x);

#endif
