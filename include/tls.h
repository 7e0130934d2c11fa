/* tls.h - TLS for pop3d: which TLS a session gets (tls-mode and the tls blocks), the
 * safety checks of tls-file-checks, credentials, and a non-blocking server connection
 * that transport.c drives with its own poll()-based timeouts.
 *
 * This header has no GnuTLS types: tls.c is the only file that includes GnuTLS.  Built
 * without GnuTLS, every TLS mode but `no' is a configuration error that says so.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_TLS_H
#define POP3D_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "conf.h"
#include "util.h"

/* Was pop3d built with TLS support? */
bool tls_built(void);

/* The TLS that applies to a session, resolved from the configuration (COMPAT.md 2.5):
 * inetd mode and the implicit listener use the global tls-mode; a server block uses its
 * own tls-mode, else the global one, else `ondemand' only when the block has its own
 * certificate.  The certificate and key come as a pair from the server block when it
 * names a certificate, else from the global tls block; CA file, priorities and
 * handshake-timeout come from the server block when it sets them, else from the
 * global block. */
struct tls_settings {
  enum conf_tls_mode mode;     /* never CONF_TLS_UNSET */
  const char *cert_file;       /* NULL when not configured */
  const char *key_file;
  const char *ca_file;
  const char *priorities;      /* never NULL: PARAMS_TLS_PRIORITIES unless configured */
  unsigned handshake_timeout;  /* seconds; 0 = bounded by the session timeout only */
};
void tls_settings_for(const struct conf *c, const struct conf_server *srv,
                      struct tls_settings *ts);

/* tls-file-checks: bits of the checks, and the defaults of each kind of file. */
#define TLS_CHECK_GWRFIL    0x01u  /* group-writable file */
#define TLS_CHECK_AWRFIL    0x02u  /* world-writable file */
#define TLS_CHECK_GRDFIL    0x04u  /* group-readable file */
#define TLS_CHECK_ARDFIL    0x08u  /* world-readable file */
#define TLS_CHECK_LINKWRDIR 0x10u  /* symbolic link in a group- or world-writable dir */
#define TLS_CHECK_GWRDIR    0x20u  /* in a group-writable directory */
#define TLS_CHECK_AWRDIR    0x40u  /* in a world-writable directory */
#define TLS_CHECK_ALL       0x7fu
#define TLS_CHECKS_KEY_DEFAULT  TLS_CHECK_ALL
/* Mailutils names the group-writable check twice here where world-writable was meant. */
#define TLS_CHECKS_CERT_DEFAULT (TLS_CHECK_GWRFIL | TLS_CHECK_AWRFIL | TLS_CHECK_LINKWRDIR)

/* Apply a check list (`none', `all', NAME, +NAME, -NAME, in order) to defaults. */
unsigned tls_checks_mask(const struct conf_strlist *l, unsigned defaults);

/* Open path read-only and check the opened file (and its directory) against mask.
 * Returns the fd, or -1 with a message (naming the failed check) in msg. */
int tls_open_checked(const char *path, unsigned mask, char *msg, size_t len) WUR;

/* The preflight, run by conf_check() at start-up and by --config-lint: for every TLS
 * setting the configured mode will use, the files exist, are readable, pass
 * tls-file-checks, parse, the key matches the certificate and the priority string is
 * valid.  Prints one line per problem and returns their number.  Credentials that load
 * are kept, so sessions forked afterwards (and an inetd session) don't load them
 * again; a later call (configuration reload) replaces them. */
int tls_conf_check(const struct conf *c, FILE *err) WUR;

/* Credentials (certificate, key, CA and priorities) for ts: the ones the preflight
 * loaded, or loaded now with the same checks.  NULL with *error_r on failure.  Owned by
 * tls.c: the caller never frees them. */
struct tls_creds;
struct tls_creds *tls_creds_get(const struct conf *c, const struct tls_settings *ts,
                                const char **error_r) WUR;

/* Results of the non-blocking connection calls below. */
enum tls_io {
  TLS_IO_DONE = 0,
  TLS_IO_WANT_READ = -1,    /* poll the read fd for POLLIN, then call again */
  TLS_IO_WANT_WRITE = -2,   /* poll the write fd for POLLOUT, then call again */
  TLS_IO_FAILED = -3,       /* fatal: tls_conn_error() says why */
  TLS_IO_CLOSED = -4,       /* the peer closed (close_notify or EOF) */
};

/* A server-side TLS connection over rfd/wfd (non-blocking fds; may be two fds, as with
 * inetd's stdin and stdout). */
struct tls_conn;
struct tls_conn *tls_conn_new(const struct tls_creds *cr, int rfd, int wfd,
                              const char **error_r) WUR;
/* TLS_IO_DONE when the handshake completed, else a negative enum tls_io. */
int tls_conn_handshake(struct tls_conn *c) WUR;
/* Bytes moved (> 0), or a negative enum tls_io.  After TLS_IO_WANT_WRITE, send must be
 * called again with the same data. */
ssize_t tls_conn_recv(struct tls_conn *c, void *buf, size_t n) WUR;
ssize_t tls_conn_send(struct tls_conn *c, const void *buf, size_t n) WUR;
/* Send close_notify (without waiting for the peer's). */
int tls_conn_bye(struct tls_conn *c) WUR;
/* The reason of the last TLS_IO_FAILED. */
const char *tls_conn_error(const struct tls_conn *c);
/* Protocol and cipher suite, for the log. */
void tls_conn_describe(const struct tls_conn *c, char *buf, size_t len);
void tls_conn_free(struct tls_conn *c);

/* Session tickets (RFC 5077 and TLS 1.3's), so that a returning client skips the full
 * handshake: tls_tickets_init() makes one master key, in the standalone listener at
 * start-up; every connection forked from it issues and takes tickets under keys GnuTLS
 * derives from it and rotates.  Only the worker needs the key: the monitor forgets it
 * (tls_tickets_forget()) once its worker is forked, before the session-to-be is, and
 * the tcp-wrappers child forgets it first thing.  Without tls_tickets_init() (inetd
 * mode: one process per connection, no key to share) no ticket is issued. */
int tls_tickets_init(void);
void tls_tickets_forget(void);

/* The private key stays with the monitor.  A worker's credentials sign through
 * tls_set_signer()'s descriptor (PS_SIGN); the monitor answers with tls_sign(), which
 * reads ts's key on its first use (with tls-file-checks).  kind is one of these, with
 * GnuTLS's flags in the bits above the first 8; out gets PS_SIGNATURE. */
#define TLS_SIGN_DATA 0u
#define TLS_SIGN_HASH 1u
#define TLS_DECRYPT 2u
void tls_set_signer(int fd);
/* Is data what a TLS server's handshake has signed with its key: a TLS 1.3
 * CertificateVerify (64 spaces, the context string, a NUL and a transcript hash), the
 * randoms and ECDHE or DHE parameters of a TLS 1.0-1.2 ServerKeyExchange, or, for
 * TLS_SIGN_HASH, a digest of a hash's length?  A worker taken over by an attacker must
 * not get anything else signed.  (TLS_DECRYPT, RSA key exchange, can't be checked.) */
bool tls_sign_request_ok(uint32_t kind, const unsigned char *data, size_t n);
struct privsep_msg;
void tls_sign(const struct conf *c, const struct tls_settings *ts, uint32_t kind,
              uint32_t algo, const unsigned char *data, size_t n, struct privsep_msg *out);

#endif
