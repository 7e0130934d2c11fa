/* tls.c - TLS settings, file safety checks, credentials and the server connection.
 * The only file that includes GnuTLS.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef HAVE_GNUTLS
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#endif
#include <stdio.h>
#include <sys/wait.h>

#include "params.h"
#include "log.h"
#include "privsep.h"
#include "tls.h"

/* ---------------------------------------------------------------------------------- */
/* Which TLS a session gets                                                           */

void tls_settings_for(const struct conf *c, const struct conf_server *srv,
                      struct tls_settings *ts)
{
  const struct conf_tls *g = &c->tls;
  const struct conf_tls *own = srv != NULL && srv->has_tls ? &srv->tls : NULL;

  memset(ts, 0, sizeof *ts);
  if (srv == NULL)
    ts->mode = c->tls_mode;
  else if (srv->tls_mode != CONF_TLS_UNSET)
    ts->mode = srv->tls_mode;
  else if (c->tls_mode != CONF_TLS_UNSET)
    ts->mode = c->tls_mode;
  else
    ts->mode = own != NULL && own->cert_file != NULL ? CONF_TLS_ONDEMAND : CONF_TLS_NO;
  if (ts->mode == CONF_TLS_UNSET)
    ts->mode = CONF_TLS_NO;   /* a global tls {} block alone does not turn TLS on */

  if (own != NULL && own->cert_file != NULL) {
    ts->cert_file = own->cert_file;
    ts->key_file = own->key_file;
  } else {
    ts->cert_file = g->cert_file;
    ts->key_file = g->key_file;
  }
  ts->ca_file = own != NULL && own->ca_file != NULL ? own->ca_file : g->ca_file;
  ts->priorities = own != NULL && own->priorities != NULL ? own->priorities : g->priorities;
  if (ts->priorities == NULL)
    ts->priorities = PARAMS_TLS_PRIORITIES;
  /* Mailutils leaves a server block without handshake-timeout unbounded; here it
   * inherits the global value, so no listener can be held by a silent client. */
  ts->handshake_timeout = own != NULL && own->handshake_timeout_set
                          ? own->handshake_timeout : g->handshake_timeout;
}

/* ---------------------------------------------------------------------------------- */
/* tls-file-checks                                                                    */

static const struct {
  const char *name;
  unsigned bit;
  const char *what;
} checks[] = {
  { "gwrfil", TLS_CHECK_GWRFIL, "is group-writable" },
  { "awrfil", TLS_CHECK_AWRFIL, "is world-writable" },
  { "grdfil", TLS_CHECK_GRDFIL, "is group-readable" },
  { "ardfil", TLS_CHECK_ARDFIL, "is world-readable" },
  { "linkwrdir", TLS_CHECK_LINKWRDIR,
    "is a symbolic link in a group- or world-writable directory" },
  { "gwrdir", TLS_CHECK_GWRDIR, "is in a group-writable directory" },
  { "awrdir", TLS_CHECK_AWRDIR, "is in a world-writable directory" },
};

unsigned tls_checks_mask(const struct conf_strlist *l, unsigned defaults)
{
  unsigned mask = defaults;

  for (size_t i = 0; l != NULL && i < l->n; i++) {
    const char *name = l->v[i];
    bool neg = false;
    unsigned bit = 0;

    if (*name == '-' || *name == '+') {
      neg = *name == '-';
      name++;
    }
    if (strcmp(name, "none") == 0) {
      mask = neg ? defaults : 0;
      continue;
    }
    if (strcmp(name, "all") == 0) {
      mask = neg ? defaults : TLS_CHECK_ALL;
      continue;
    }
    for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++)
      if (strcmp(name, checks[k].name) == 0)
        bit = checks[k].bit;
    if (neg)
      mask &= ~bit;
    else
      mask |= bit;
  }
  return mask;
}

/* The directory part of path ("." when it has none). */
static char *dir_of(const char *path)
{
  const char *slash = strrchr(path, '/');

  if (slash == NULL)
    return util_xstrdup(".");
  if (slash == path)
    return util_xstrdup("/");
  return util_xstrndup(path, (size_t)(slash - path));
}

static const char *check_failed(unsigned bit)
{
  for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++)
    if (checks[k].bit == bit)
      return checks[k].name;
  return "?";
}

int tls_open_checked(const char *path, unsigned mask, char *msg, size_t len)
{
  static const struct { unsigned bit; mode_t mode; } file_bits[] = {
    { TLS_CHECK_GWRFIL, S_IWGRP }, { TLS_CHECK_AWRFIL, S_IWOTH },
    { TLS_CHECK_GRDFIL, S_IRGRP }, { TLS_CHECK_ARDFIL, S_IROTH },
  };
  struct stat lst, st, dst;
  char *dir = dir_of(path);
  bool have_dir = stat(dir, &dst) == 0;
  int fd;

  free(dir);
  if (lstat(path, &lst) < 0) {
    snprintf(msg, len, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (S_ISLNK(lst.st_mode) && (mask & TLS_CHECK_LINKWRDIR) && have_dir &&
      (dst.st_mode & (S_IWGRP | S_IWOTH))) {
    snprintf(msg, len, "%s is a symbolic link in a group- or world-writable directory "
             "(tls-file-checks: linkwrdir)", path);
    return -1;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    snprintf(msg, len, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) < 0) {
    snprintf(msg, len, "%s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(msg, len, "%s is not a regular file", path);
    close(fd);
    return -1;
  }
  for (size_t k = 0; k < sizeof file_bits / sizeof file_bits[0]; k++)
    if ((mask & file_bits[k].bit) && (st.st_mode & file_bits[k].mode)) {
      for (size_t j = 0; j < sizeof checks / sizeof checks[0]; j++)
        if (checks[j].bit == file_bits[k].bit)
          snprintf(msg, len, "%s %s (mode %04o; tls-file-checks: %s)", path, checks[j].what,
                   (unsigned)(st.st_mode & 07777), checks[j].name);
      close(fd);
      return -1;
    }
  if (have_dir && (((mask & TLS_CHECK_GWRDIR) && (dst.st_mode & S_IWGRP)) ||
                   ((mask & TLS_CHECK_AWRDIR) && (dst.st_mode & S_IWOTH)))) {
    unsigned bit = (mask & TLS_CHECK_GWRDIR) && (dst.st_mode & S_IWGRP) ? TLS_CHECK_GWRDIR
                                                                         : TLS_CHECK_AWRDIR;
    snprintf(msg, len, "%s is in a %s-writable directory (tls-file-checks: %s)", path,
             bit == TLS_CHECK_GWRDIR ? "group" : "world", check_failed(bit));
    close(fd);
    return -1;
  }
  return fd;
}

bool tls_built(void)
{
#ifdef HAVE_GNUTLS
  return true;
#else
  return false;
#endif
}

/* Where a setting comes from, for messages. */
static void where(const struct conf_server *srv, char *buf, size_t len)
{
  if (srv == NULL)
    snprintf(buf, len, "TLS");
  else
    snprintf(buf, len, "%s:%u: server %s:%u: TLS", srv->file, srv->line, srv->addr,
             srv->port);
}

/* A vector with a 2-byte length at *off, at least one byte long, within n. */
static bool vec16(const unsigned char *d, size_t n, size_t *off)
{
  size_t l;

  if (n - *off < 2)
    return false;
  l = (size_t)d[*off] << 8 | d[*off + 1];
  if (l == 0 || n - *off - 2 < l)
    return false;
  *off += 2 + l;
  return true;
}

bool tls_sign_request_ok(uint32_t kind, const unsigned char *data, size_t n)
{
  static const char context[] = "TLS 1.3, server CertificateVerify";
  const size_t pre = 64 + sizeof context;        /* the context string with its NUL */
  size_t off;

  switch (kind & 0xffu) {
  case TLS_SIGN_DATA:
    if (n == pre + 32 || n == pre + 48 || n == pre + 64) {
      size_t i;

      for (i = 0; i < 64 && data[i] == ' '; i++)
        ;
      if (i == 64 && memcmp(data + 64, context, sizeof context) == 0)
        return true;
    }
    /* client_random, server_random, then ServerECDHParams or ServerDHParams. */
    if (n < 64 + 4)
      return false;
    if (data[64] == 3)                           /* named_curve */
      return n == 64 + 4 + (size_t)data[67] && data[67] > 0;
    off = 64;
    return vec16(data, n, &off) && vec16(data, n, &off) && vec16(data, n, &off) &&
           off == n;
  case TLS_SIGN_HASH:
    /* A DigestInfo (RSA PKCS#1 v1.5: a DER SEQUENCE around a SHA-1 or SHA-2 digest),
     * MD5+SHA-1 (TLS 1.0 and 1.1 with RSA), or one bare digest. */
    if (n == 35 || n == 47 || n == 51 || n == 67 || n == 83)
      return data[0] == 0x30 && data[1] == n - 2;
    return n == 36 || n == 20 || n == 28 || n == 32 || n == 48 || n == 64;
  case TLS_DECRYPT:
    return true;
  default:
    return false;
  }
}

#ifndef HAVE_GNUTLS
/* ---------------------------------------------------------------------------------- */
/* Built without GnuTLS                                                               */

static const char not_built[] =
  "TLS support is not built into pop3d (configure --with-gnutls)";

int tls_conf_check(const struct conf *c, FILE *err)
{
  struct tls_settings ts;
  char w[600];
  int n = 0;

  if (c->mode != CONF_MODE_DAEMON || c->nservers == 0) {
    tls_settings_for(c, NULL, &ts);
    if (ts.mode != CONF_TLS_NO) {
      where(NULL, w, sizeof w);
      fprintf(err, "pop3d: %s: tls-mode is set, but %s\n", w, not_built);
      n++;
    }
  }
  for (size_t i = 0; c->mode == CONF_MODE_DAEMON && i < c->nservers; i++) {
    tls_settings_for(c, &c->servers[i], &ts);
    if (ts.mode != CONF_TLS_NO) {
      where(&c->servers[i], w, sizeof w);
      fprintf(err, "pop3d: %s: tls-mode is set, but %s\n", w, not_built);
      n++;
    }
  }
  return n;
}

struct tls_creds *tls_creds_get(const struct conf *c, const struct tls_settings *ts,
                                const char **error_r)
{
  *error_r = not_built;
  return NULL;
}

struct tls_conn *tls_conn_new(const struct tls_creds *cr, int rfd, int wfd,
                              const char **error_r)
{
  *error_r = not_built;
  return NULL;
}

int tls_conn_handshake(struct tls_conn *c) { return TLS_IO_FAILED; }
ssize_t tls_conn_recv(struct tls_conn *c, void *buf, size_t n) { return TLS_IO_FAILED; }
ssize_t tls_conn_send(struct tls_conn *c, const void *buf, size_t n) { return TLS_IO_FAILED; }
int tls_conn_bye(struct tls_conn *c) { return TLS_IO_FAILED; }
const char *tls_conn_error(const struct tls_conn *c) { return not_built; }
void tls_conn_describe(const struct tls_conn *c, char *buf, size_t len)
{
  snprintf(buf, len, "none");
}
void tls_conn_free(struct tls_conn *c) { }
int tls_tickets_init(void) { return 0; }
void tls_tickets_forget(void) { }

void tls_set_signer(int fd) { (void)fd; }
void tls_sign(const struct conf *c, const struct tls_settings *ts, uint32_t kind,
              uint32_t algo, const unsigned char *data, size_t n, struct privsep_msg *out)
{
  (void)c; (void)ts; (void)kind; (void)algo; (void)data; (void)n;
  privsep_msg_init(out, PS_SIGNATURE);
  privsep_put_u32(out, 1);
  privsep_put_bytes(out, "", 0);
}
#else
/* ---------------------------------------------------------------------------------- */
/* Credentials                                                                        */

struct tls_creds {
  struct tls_creds *next;
  char *id;                  /* cert NUL key NUL ca NUL priorities: what was loaded */
  size_t id_len;
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
  gnutls_datum_t spki;       /* the certificate's public key (DER): the key must match */
};

/* Credentials loaded by the preflight (or by an earlier session in this process). */
static struct tls_creds *creds_cache;

static char *creds_id(const struct tls_settings *ts, size_t *len_r)
{
  const char *parts[4] = { ts->cert_file, ts->key_file, ts->ca_file, ts->priorities };
  size_t len = 0;
  char *id, *p;

  for (size_t i = 0; i < 4; i++)
    len += (parts[i] ? strlen(parts[i]) : 0) + 1;
  p = id = util_xmalloc(len);
  for (size_t i = 0; i < 4; i++) {
    size_t n = parts[i] ? strlen(parts[i]) : 0;
    memcpy(p, parts[i] ? parts[i] : "", n);
    p[n] = '\0';
    p += n + 1;
  }
  *len_r = len;
  return id;
}

static void creds_free(struct tls_creds *cr)
{
  if (cr == NULL)
    return;
  if (cr->cred != NULL)
    gnutls_certificate_free_credentials(cr->cred);
  if (cr->prio != NULL)
    gnutls_priority_deinit(cr->prio);
  gnutls_free(cr->spki.data);
  free(cr->id);
  free(cr);
}

/* Read a whole checked file into d (gnutls_free()-compatible memory). */
static int read_checked(const char *what, const char *path, unsigned mask,
                        gnutls_datum_t *d, char *msg, size_t len)
{
  int fd = tls_open_checked(path, mask, msg, len);
  struct stat st;
  size_t got = 0;

  d->data = NULL;
  d->size = 0;
  if (fd < 0) {
    /* Prefix the statement so that the message says which file it was. */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s", msg);
    snprintf(msg, len, "%s %s", what, tmp);
    return -1;
  }
  if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > PARAMS_TLS_FILE_MAX) {
    snprintf(msg, len, "%s %s: unreadable or larger than %u bytes", what, path,
             PARAMS_TLS_FILE_MAX);
    close(fd);
    return -1;
  }
  d->data = gnutls_malloc((size_t)st.st_size + 1);
  if (d->data == NULL) {
    snprintf(msg, len, "%s %s: out of memory", what, path);
    close(fd);
    return -1;
  }
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, d->data + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      snprintf(msg, len, "%s %s: %s", what, path, r < 0 ? strerror(errno) : "file shrank");
      close(fd);
      util_wipe(d->data, got);
      gnutls_free(d->data);
      d->data = NULL;
      return -1;
    }
    got += (size_t)r;
  }
  close(fd);
  d->data[got] = '\0';
  d->size = (unsigned)got;
  return 0;
}

static void datum_free(gnutls_datum_t *d, bool secret)
{
  if (d->data != NULL) {
    if (secret)
      util_wipe(d->data, d->size);
    gnutls_free(d->data);
  }
  d->data = NULL;
  d->size = 0;
}

/* ---- The key lives in the monitor ----------------------------------------------------
 * A worker's credentials hold the certificate chain and a key object without the key:
 * each signature (or RSA decryption) is asked of the monitor over signer_fd, and the
 * monitor makes it with the key it reads itself (tls_sign()). */

static int signer_fd = -1;

void tls_set_signer(int fd)
{
  signer_fd = fd;
}

struct ext_key {
  gnutls_pk_algorithm_t pk;
  unsigned bits;
};

/* Ask the monitor.  kind: TLS_SIGN_DATA, TLS_SIGN_HASH or TLS_DECRYPT. */
static int remote(unsigned kind, unsigned algo, unsigned flags, const gnutls_datum_t *in,
                  gnutls_datum_t *out)
{
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const unsigned char *sig;
  const char *err = NULL;
  size_t n;
  uint32_t status = 1;
  int rc = GNUTLS_E_PK_SIGN_FAILED;

  out->data = NULL;
  out->size = 0;
  privsep_msg_init(m, PS_SIGN);
  privsep_put_u32(m, kind | flags << 8);
  privsep_put_u32(m, algo);
  privsep_put_bytes(m, in->data, in->size);
  if (signer_fd >= 0 && privsep_call(signer_fd, m, PS_SIGNATURE, &err) == 0 &&
      m->nfds == 0 && privsep_get_u32(m, &status) == 0 &&
      privsep_get_bytes(m, &sig, &n) == 0 && privsep_msg_done(m) && status == 0 && n > 0) {
    out->data = gnutls_malloc(n);
    if (out->data != NULL) {
      memcpy(out->data, sig, n);
      out->size = (unsigned)n;
      rc = 0;
    }
  }
  privsep_msg_clear(m);
  free(m);
  if (rc < 0 && kind == TLS_DECRYPT)
    rc = GNUTLS_E_DECRYPTION_FAILED;
  return rc;
}

static int ext_sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *ud,
                         unsigned flags, const gnutls_datum_t *data, gnutls_datum_t *sig)
{
  (void)key;
  (void)ud;
  return remote(TLS_SIGN_DATA, (unsigned)algo, flags, data, sig);
}

static int ext_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *ud,
                         unsigned flags, const gnutls_datum_t *hash, gnutls_datum_t *sig)
{
  (void)key;
  (void)ud;
  return remote(TLS_SIGN_HASH, (unsigned)algo, flags, hash, sig);
}

static int ext_decrypt(gnutls_privkey_t key, void *ud, const gnutls_datum_t *ct,
                       gnutls_datum_t *pt)
{
  (void)key;
  (void)ud;
  return remote(TLS_DECRYPT, 0, 0, ct, pt);
}

static void ext_deinit(gnutls_privkey_t key, void *ud)
{
  (void)key;
  free(ud);
}

static int ext_info(gnutls_privkey_t key, unsigned flags, void *ud)
{
  const struct ext_key *k = ud;

  (void)key;
  if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
    return (int)k->pk;
  if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
    return (int)k->bits;
  if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
    gnutls_sign_algorithm_t sa = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
    return gnutls_sign_supports_pk_algorithm(sa, k->pk) ? 1 : 0;
  }
  return -1;
}

/* The certificate chain with a key object that signs through the monitor. */
static int set_remote_key(gnutls_certificate_credentials_t cred, const gnutls_datum_t *cert,
                          gnutls_datum_t *spki, char *msg, size_t len)
{
  gnutls_pcert_st *pcerts;
  unsigned n = 16;
  gnutls_privkey_t key = NULL;
  struct ext_key *ud;
  int r;

  pcerts = util_xcalloc(n, sizeof *pcerts);
  r = gnutls_pcert_list_import_x509_raw(pcerts, &n, cert, GNUTLS_X509_FMT_PEM, 0);
  if (r < 0 || n == 0) {
    snprintf(msg, len, "certificate: %s", r < 0 ? gnutls_strerror(r) : "none found");
    free(pcerts);
    return -1;
  }
  ud = util_xcalloc(1, sizeof *ud);
  ud->pk = gnutls_pubkey_get_pk_algorithm(pcerts[0].pubkey, &ud->bits);
  if (gnutls_pubkey_export2(pcerts[0].pubkey, GNUTLS_X509_FMT_DER, spki) < 0) {
    spki->data = NULL;
    spki->size = 0;
  }
  if ((r = gnutls_privkey_init(&key)) < 0 ||
      (r = gnutls_privkey_import_ext4(key, ud, ext_sign_data, ext_sign_hash, ext_decrypt,
                                      ext_deinit, ext_info,
                                      GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE)) < 0) {
    snprintf(msg, len, "key: %s", gnutls_strerror(r));
    if (key != NULL)
      gnutls_privkey_deinit(key);
    free(ud);
    for (unsigned i = 0; i < n; i++)
      gnutls_pcert_deinit(&pcerts[i]);
    free(pcerts);
    return -1;
  }
  r = gnutls_certificate_set_key(cred, NULL, 0, pcerts, (int)n, key);
  if (r < 0) {
    snprintf(msg, len, "certificate: %s", gnutls_strerror(r));
    gnutls_privkey_deinit(key);
    for (unsigned i = 0; i < n; i++)
      gnutls_pcert_deinit(&pcerts[i]);
    free(pcerts);
    return -1;
  }
  /* The credentials own the certificates and the key now; the array itself is ours. */
  free(pcerts);
  return 0;
}

/* Load credentials for ts: checks, files, priorities.  with_key: read the private key
 * too and check that it matches the certificate (the preflight, in a throw-away child);
 * otherwise the key stays on disk and signatures come from the monitor. */
static struct tls_creds *creds_load(const struct conf *c, const struct tls_settings *ts,
                                    bool with_key, char *msg, size_t len)
{
  struct tls_creds *cr;
  gnutls_datum_t cert, key = { NULL, 0 }, ca = { NULL, 0 };
  const char *errpos = NULL;
  int r;

  if (ts->cert_file == NULL || ts->key_file == NULL) {
    snprintf(msg, len, "tls-mode needs a certificate and a key: set ssl-certificate-file "
             "and ssl-key-file in a tls block");
    return NULL;
  }
  if (read_checked("ssl-certificate-file", ts->cert_file,
                   tls_checks_mask(&c->tls_cert_checks, TLS_CHECKS_CERT_DEFAULT),
                   &cert, msg, len) < 0)
    return NULL;
  if (with_key &&
      read_checked("ssl-key-file", ts->key_file,
                   tls_checks_mask(&c->tls_key_checks, TLS_CHECKS_KEY_DEFAULT),
                   &key, msg, len) < 0) {
    datum_free(&cert, false);
    return NULL;
  }
  if (ts->ca_file != NULL &&
      read_checked("ssl-ca-file", ts->ca_file,
                   tls_checks_mask(&c->tls_ca_checks, TLS_CHECKS_CERT_DEFAULT),
                   &ca, msg, len) < 0) {
    datum_free(&cert, false);
    datum_free(&key, true);
    return NULL;
  }
  cr = util_xcalloc(1, sizeof *cr);
  r = gnutls_certificate_allocate_credentials(&cr->cred);
  if (r < 0) {
    snprintf(msg, len, "can't allocate credentials: %s", gnutls_strerror(r));
    goto fail;
  }
  if (with_key) {
    r = gnutls_certificate_set_x509_key_mem2(cr->cred, &cert, &key, GNUTLS_X509_FMT_PEM,
                                             NULL, 0);
    if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
      snprintf(msg, len, "ssl-key-file %s does not match the certificate in "
               "ssl-certificate-file %s", ts->key_file, ts->cert_file);
      goto fail;
    }
    if (r < 0) {
      snprintf(msg, len, "can't use ssl-certificate-file %s with ssl-key-file %s "
               "(PEM expected): %s", ts->cert_file, ts->key_file, gnutls_strerror(r));
      goto fail;
    }
  } else {
    char why[300];
    if (set_remote_key(cr->cred, &cert, &cr->spki, why, sizeof why) < 0) {
      snprintf(msg, len, "ssl-certificate-file %s: %s", ts->cert_file, why);
      goto fail;
    }
  }
  if (ca.data != NULL) {
    r = gnutls_certificate_set_x509_trust_mem(cr->cred, &ca, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
      snprintf(msg, len, "ssl-ca-file %s: %s", ts->ca_file, gnutls_strerror(r));
      goto fail;
    }
  }
  r = gnutls_priority_init(&cr->prio, ts->priorities, &errpos);
  if (r < 0) {
    cr->prio = NULL;
    snprintf(msg, len, "ssl-priorities \"%s\": %s%s%.40s%s", ts->priorities,
             gnutls_strerror(r), errpos ? " at `" : "", errpos ? errpos : "",
             errpos ? "'" : "");
    goto fail;
  }
  datum_free(&cert, false);
  datum_free(&key, true);
  datum_free(&ca, false);
  cr->id = creds_id(ts, &cr->id_len);
  return cr;

fail:
  datum_free(&cert, false);
  datum_free(&key, true);
  datum_free(&ca, false);
  creds_free(cr);
  return NULL;
}

/* The monitor's key, read on the first signature of its connection. */
static gnutls_privkey_t sign_key;

static struct tls_creds *cache_find(struct tls_creds *list, const struct tls_settings *ts);

/* Is key the one of the certificate the running configuration serves?  (The key file
 * may have changed on disk since that configuration was loaded.) */
static bool key_matches(gnutls_privkey_t key, const struct tls_settings *ts)
{
  const struct tls_creds *cr = cache_find(creds_cache, ts);
  gnutls_pubkey_t pub = NULL;
  gnutls_datum_t d = { NULL, 0 };
  bool ok = false;

  if (cr == NULL || cr->spki.data == NULL)
    return false;
  if (gnutls_pubkey_init(&pub) == 0 && gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
      gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &d) == 0)
    ok = d.size == cr->spki.size && memcmp(d.data, cr->spki.data, d.size) == 0;
  gnutls_free(d.data);
  if (pub != NULL)
    gnutls_pubkey_deinit(pub);
  return ok;
}

void tls_sign(const struct conf *c, const struct tls_settings *ts, uint32_t kind,
              uint32_t algo, const unsigned char *data, size_t n, struct privsep_msg *out)
{
  gnutls_datum_t in = { (unsigned char *)data, (unsigned)n }, res = { NULL, 0 };
  unsigned op = kind & 0xffu, flags = kind >> 8;
  int r = -1;

  privsep_msg_init(out, PS_SIGNATURE);
  if (sign_key == NULL && ts->key_file != NULL) {
    char msg[700];
    gnutls_datum_t key;

    if (read_checked("ssl-key-file", ts->key_file,
                     tls_checks_mask(&c->tls_key_checks, TLS_CHECKS_KEY_DEFAULT), &key, msg,
                     sizeof msg) < 0) {
      log_msg(LOG_ERR, "TLS: %s", msg);
    } else {
      if (gnutls_privkey_init(&sign_key) < 0 ||
          (r = gnutls_privkey_import_x509_raw(sign_key, &key, GNUTLS_X509_FMT_PEM, NULL,
                                              0)) < 0) {
        log_msg(LOG_ERR, "TLS: ssl-key-file %s: %s", ts->key_file, gnutls_strerror(r));
        if (sign_key != NULL)
          gnutls_privkey_deinit(sign_key);
        sign_key = NULL;
      }
      datum_free(&key, true);
      if (sign_key != NULL && !key_matches(sign_key, ts)) {
        log_msg(LOG_ERR, "TLS: ssl-key-file %s no longer matches the certificate in use: "
                "fix it and reload", ts->key_file);
        gnutls_privkey_deinit(sign_key);
        sign_key = NULL;
      }
    }
  }
  r = -1;
  if (sign_key != NULL && n <= PRIVSEP_MSG_MAX) {
    switch (op) {
    case TLS_SIGN_DATA:
      r = gnutls_privkey_sign_data2(sign_key, (gnutls_sign_algorithm_t)algo, flags, &in,
                                    &res);
      break;
    case TLS_SIGN_HASH:
      r = gnutls_privkey_sign_hash2(sign_key, (gnutls_sign_algorithm_t)algo, flags, &in,
                                    &res);
      break;
    case TLS_DECRYPT:
      r = gnutls_privkey_decrypt_data(sign_key, 0, &in, &res);
      break;
    default:
      break;
    }
  }
  if (r < 0 || res.size > PRIVSEP_MSG_MAX - 16) {
    if (sign_key != NULL)
      log_msg(LOG_NOTICE, "TLS: the worker's signature request failed: %s",
              r < 0 ? gnutls_strerror(r) : "too long");
    privsep_put_u32(out, 1);
    privsep_put_bytes(out, "", 0);
  } else {
    privsep_put_u32(out, 0);
    privsep_put_bytes(out, res.data, res.size);
  }
  if (res.data != NULL) {
    util_wipe(res.data, res.size);
    gnutls_free(res.data);
  }
}

static struct tls_creds *cache_find(struct tls_creds *list, const struct tls_settings *ts)
{
  size_t len;
  char *id = creds_id(ts, &len);
  struct tls_creds *cr;

  for (cr = list; cr != NULL; cr = cr->next)
    if (cr->id_len == len && memcmp(cr->id, id, len) == 0)
      break;
  free(id);
  return cr;
}

/* Check one setting; on success keep its credentials in *list. */
static int check_one(const struct conf *c, const struct conf_server *srv,
                     struct tls_creds **list, FILE *err)
{
  struct tls_settings ts;
  struct tls_creds *cr;
  char msg[1024], w[600];

  tls_settings_for(c, srv, &ts);
  if (ts.mode == CONF_TLS_NO || cache_find(*list, &ts) != NULL)
    return 0;
  cr = creds_load(c, &ts, false, msg, sizeof msg);
  if (cr == NULL) {
    where(srv, w, sizeof w);
    fprintf(err, "pop3d: %s: %s\n", w, msg);
    return 1;
  }
  cr->next = *list;
  *list = cr;
  return 0;
}

/* The whole check, private keys included, in a child that exits afterwards: the
 * process that serves (and every process it forks) never holds a key it read. */
static int preflight_keys(const struct conf *c, FILE *err)
{
  int p[2], status, n = 0;
  pid_t pid;
  char buf[512];
  ssize_t r;

  if (pipe(p) < 0) {
    fprintf(err, "pop3d: TLS preflight: pipe: %s\n", strerror(errno));
    return 1;
  }
  fflush(err);
  pid = fork();
  if (pid < 0) {
    fprintf(err, "pop3d: TLS preflight: fork: %s\n", strerror(errno));
    close(p[0]);
    close(p[1]);
    return 1;
  }
  if (pid == 0) {
    FILE *out;
    size_t servers = c->mode == CONF_MODE_DAEMON ? c->nservers : 0;

    close(p[0]);
    out = fdopen(p[1], "w");
    if (out == NULL)
      _exit(1);
    for (size_t i = 0; i <= servers; i++) {
      const struct conf_server *srv = i < servers ? &c->servers[i] : NULL;
      struct tls_settings ts;
      struct tls_creds *cr;
      char msg[1024], w[600];

      if (srv == NULL && c->mode == CONF_MODE_DAEMON && c->nservers > 0)
        continue;
      tls_settings_for(c, srv, &ts);
      if (ts.mode == CONF_TLS_NO)
        continue;
      cr = creds_load(c, &ts, true, msg, sizeof msg);
      if (cr == NULL) {
        where(srv, w, sizeof w);
        fprintf(out, "pop3d: %s: %s\n", w, msg);
        n++;
      }
      creds_free(cr);
    }
    fclose(out);
    _exit(n > 100 ? 100 : n);
  }
  close(p[1]);
  while ((r = read(p[0], buf, sizeof buf)) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    fwrite(buf, 1, (size_t)r, err);
  }
  close(p[0]);
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return 1;
  if (!WIFEXITED(status)) {
    fprintf(err, "pop3d: TLS preflight: the check was killed by signal %d\n",
            WTERMSIG(status));
    return 1;
  }
  return WEXITSTATUS(status);
}

int tls_conf_check(const struct conf *c, FILE *err)
{
  struct tls_creds *list = NULL;
  int n = preflight_keys(c, err);

  if (n > 0)
    return n;

  if (c->mode != CONF_MODE_DAEMON || c->nservers == 0)
    n += check_one(c, NULL, &list, err);
  for (size_t i = 0; c->mode == CONF_MODE_DAEMON && i < c->nservers; i++)
    n += check_one(c, &c->servers[i], &list, err);
  /* A configuration with errors is not used (a reload keeps the running one): nor are
   * its credentials. */
  if (n > 0) {
    struct tls_creds *keep = creds_cache;
    creds_cache = list;
    list = keep;
  }
  while (creds_cache != NULL) {
    struct tls_creds *next = creds_cache->next;
    creds_free(creds_cache);
    creds_cache = next;
  }
  creds_cache = list;
  return n;
}

struct tls_creds *tls_creds_get(const struct conf *c, const struct tls_settings *ts,
                                const char **error_r)
{
  static char msg[1024];
  struct tls_creds *cr = cache_find(creds_cache, ts);

  if (cr != NULL)
    return cr;
  cr = creds_load(c, ts, false, msg, sizeof msg);
  if (cr == NULL) {
    *error_r = msg;
    return NULL;
  }
  cr->next = creds_cache;
  creds_cache = cr;
  return cr;
}

/* ---------------------------------------------------------------------------------- */
/* The connection                                                                     */

struct tls_conn {
  gnutls_session_t session;
  int rfd, wfd;
  int last_error;           /* GnuTLS error code of the last failure */
};

/* The transport callbacks use read(2)/writev(2), not recv/send: inetd may hand us
 * pipes as well as sockets. */
static ssize_t pull(gnutls_transport_ptr_t ptr, void *buf, size_t n)
{
  return read((int)(intptr_t)ptr, buf, n);
}

static ssize_t vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
  return writev((int)(intptr_t)ptr, (const struct iovec *)iov, iovcnt);
}

static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
  struct pollfd p = { .fd = (int)(intptr_t)ptr, .events = POLLIN };

  /* The fds are non-blocking and transport.c does the waiting: never block here. */
  (void)ms;
  return poll(&p, 1, 0);
}

/* The session tickets' master key (tls.h). */
static gnutls_datum_t ticket_key;

int tls_tickets_init(void)
{
  if (ticket_key.data != NULL)
    return 0;
  return gnutls_session_ticket_key_generate(&ticket_key) < 0 ? -1 : 0;
}

void tls_tickets_forget(void)
{
  if (ticket_key.data == NULL)
    return;
  gnutls_memset(ticket_key.data, 0, ticket_key.size);
  gnutls_free(ticket_key.data);
  ticket_key.data = NULL;
  ticket_key.size = 0;
}

struct tls_conn *tls_conn_new(const struct tls_creds *cr, int rfd, int wfd,
                              const char **error_r)
{
  struct tls_conn *c = util_xcalloc(1, sizeof *c);
  int r;

  c->rfd = rfd;
  c->wfd = wfd;
  r = gnutls_init(&c->session, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
  if (r < 0) {
    *error_r = gnutls_strerror(r);
    free(c);
    return NULL;
  }
  if ((r = gnutls_priority_set(c->session, cr->prio)) < 0 ||
      (r = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, cr->cred)) < 0) {
    *error_r = gnutls_strerror(r);
    gnutls_deinit(c->session);
    free(c);
    return NULL;
  }
  if (ticket_key.data != NULL &&
      (r = gnutls_session_ticket_enable_server(c->session, &ticket_key)) < 0) {
    *error_r = gnutls_strerror(r);
    gnutls_deinit(c->session);
    free(c);
    return NULL;
  }
  gnutls_certificate_server_set_request(c->session, GNUTLS_CERT_IGNORE);
  /* transport.c bounds the handshake with its own deadline. */
  gnutls_handshake_set_timeout(c->session, 0);
  gnutls_transport_set_int2(c->session, rfd, wfd);
  gnutls_transport_set_pull_function(c->session, pull);
  gnutls_transport_set_pull_timeout_function(c->session, pull_timeout);
  gnutls_transport_set_vec_push_function(c->session, vec_push);
  return c;
}

/* Map a GnuTLS result of a non-blocking call. */
static int io_result(struct tls_conn *c, ssize_t r)
{
  if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
    return gnutls_record_get_direction(c->session) ? TLS_IO_WANT_WRITE : TLS_IO_WANT_READ;
  if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR ||
      r == GNUTLS_E_PUSH_ERROR) {
    c->last_error = (int)r;
    return TLS_IO_CLOSED;
  }
  c->last_error = (int)r;
  return TLS_IO_FAILED;
}

int tls_conn_handshake(struct tls_conn *c)
{
  /* Warning alerts are skipped, but not forever. */
  for (unsigned warnings = 0;; warnings++) {
    int r = gnutls_handshake(c->session);

    if (r == GNUTLS_E_SUCCESS)
      return TLS_IO_DONE;
    if (r < 0 && !gnutls_error_is_fatal(r) && r != GNUTLS_E_AGAIN &&
        r != GNUTLS_E_INTERRUPTED && warnings < 16)
      continue;
    if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR ||
        r == GNUTLS_E_PUSH_ERROR) {
      c->last_error = r;
      return TLS_IO_FAILED;   /* the client gave up mid-handshake */
    }
    return io_result(c, r);
  }
}

ssize_t tls_conn_recv(struct tls_conn *c, void *buf, size_t n)
{
  for (;;) {
    ssize_t r = gnutls_record_recv(c->session, buf, n);

    if (r > 0)
      return r;
    if (r == 0)
      return TLS_IO_CLOSED;
    /* A TLS 1.2 renegotiation request (GNUTLS_E_REHANDSHAKE) is not a warning here: it
     * ends the session, as nothing a POP3 client needs calls for one. */
    if (r == GNUTLS_E_WARNING_ALERT_RECEIVED) {
      if (gnutls_alert_get(c->session) == GNUTLS_A_CLOSE_NOTIFY)
        return TLS_IO_CLOSED;
      continue;
    }
    return io_result(c, r);
  }
}

ssize_t tls_conn_send(struct tls_conn *c, const void *buf, size_t n)
{
  ssize_t r = gnutls_record_send(c->session, buf, n);

  return r >= 0 ? r : io_result(c, r);
}

int tls_conn_bye(struct tls_conn *c)
{
  int r = gnutls_bye(c->session, GNUTLS_SHUT_WR);

  return r == GNUTLS_E_SUCCESS ? TLS_IO_DONE : io_result(c, r);
}

const char *tls_conn_error(const struct tls_conn *c)
{
  return c->last_error ? gnutls_strerror(c->last_error) : "no error";
}

void tls_conn_describe(const struct tls_conn *c, char *buf, size_t len)
{
  char *d = gnutls_session_get_desc(c->session);

  snprintf(buf, len, "%s", d != NULL ? d : "?");
  gnutls_free(d);
}

void tls_conn_free(struct tls_conn *c)
{
  if (c == NULL)
    return;
  gnutls_deinit(c->session);
  free(c);
}
#endif

