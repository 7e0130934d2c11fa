/* auth_ldap.c - users in an LDAP directory (OpenLDAP's libldap), as Mailutils' ldap
 * module reads them: `ldap { enable yes; url; base; binddn; passwd; tls; debug;
 * field-map; getpwnam; getpwuid; }'.
 *
 * Each lookup binds as binddn (anonymous without one), searches the subtree of base
 * with the getpwnam filter, $user replaced by the login name escaped as RFC 4515 says
 * (so `*', `(', `)' and `\' in a name match only themselves), and reads the attributes
 * of the field map (default: name=uid, passwd=userPassword, uid=uidNumber,
 * gid=gidNumber, gecos=gecos, dir=homeDirectory, shell=loginShell; mailbox and quota
 * when mapped).  Authentication checks the password against userPassword: {CRYPT},
 * {MD5}, {SMD5}, {SHA}, {SSHA} or plain text, as Mailutils does; with `bind-as-user
 * yes' (pop3d's own statement) it binds as the entry found instead, for directories
 * whose userPassword the service can't read.  Authorization gives the uid, gid, home
 * and maildrop, and the password hash for `authentication generic'.
 *
 * One connection per monitor process, opened at its first login attempt and kept for
 * the next ones (a server restarted meanwhile is reconnected once).  Every wait on the
 * server is bounded; a server that is down or does not answer is AUTH_MOD_TEMP, which
 * the client sees as -ERR [SYS/TEMP], never as a refused password.  An unknown user
 * costs what a known one with a wrong password costs: a search, then the dummy hash of
 * auth.c (a cheap scheme such as {SSHA} is not counted as the full-cost check), or with
 * bind-as-user a bind that fails.
 *
 * Built twice.  Into pop3d: the checks of the configuration's values (auth_ldap_check_*(),
 * at parse time, the URLs read as libldap reads them but without it) and whether the
 * configuration lets the module serve.  With -DPOP3D_MODULE: the module ldap.so
 * (module.h), everything else, linked with libldap, liblber and nettle; pop3d loads it
 * only when its lists use ldap (auth_modules_load()).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "auth_impl.h"
#include "auth_ldap.h"
#include "conf.h"
#include "module.h"

/* Longest getpwnam/getpwuid filter a configuration may give. */
#define LDAP_FILTER_MAX 1024

/* Fields of the map, in Mailutils' names. */
enum ldap_field {
  LF_NAME, LF_PASSWD, LF_UID, LF_GID, LF_GECOS, LF_DIR, LF_SHELL, LF_MAILBOX, LF_QUOTA,
  LF_COUNT
};

static const char *const field_names[LF_COUNT] = {
  "name", "passwd", "uid", "gid", "gecos", "dir", "shell", "mailbox", "quota",
};

static bool attr_char(int ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == ';';
}

/* The field of a NAME=ATTR definition and where its attribute starts; -1 if malformed. */
static int field_parse(const char *def, const char **attr, const char **error_r)
{
  const char *eq = strchr(def, '=');
  size_t n;

  if (eq == NULL) {
    *error_r = "expected NAME=ATTRIBUTE";
    return -1;
  }
  for (int f = 0; f < LF_COUNT; f++)
    if (strlen(field_names[f]) == (size_t)(eq - def) &&
        memcmp(field_names[f], def, (size_t)(eq - def)) == 0) {
      n = strlen(eq + 1);
      if (n == 0 || n > 128 || !attr_char((unsigned char)eq[1]) || eq[1] == '-') {
        *error_r = "invalid attribute name";
        return -1;
      }
      for (size_t i = 1; i <= n; i++)
        if (!attr_char((unsigned char)eq[i])) {
          *error_r = "invalid attribute name";
          return -1;
        }
      *attr = eq + 1;
      return f;
    }
  *error_r = "unknown field (name, passwd, uid, gid, gecos, dir, shell, mailbox, quota)";
  return -1;
}

#ifndef POP3D_MODULE

int auth_ldap_check_field(const char *def, const char **error_r)
{
  const char *attr;

  return field_parse(def, &attr, error_r) < 0 ? -1 : 0;
}

int auth_ldap_check_filter(const char *filter, const char **error_r)
{
  if (strlen(filter) == 0 || strlen(filter) > LDAP_FILTER_MAX) {
    *error_r = "a filter is 1 to 1024 characters long";
    return -1;
  }
  for (const char *p = filter; *p; p++)
    if (p[0] == '$' && p[1] == '{' && strchr(p, '}') == NULL) {
      *error_r = "unterminated ${";
      return -1;
    }
  return 0;
}

bool auth_ldap_usable(const struct conf *c, bool authz)
{
  /* As in Mailutils, the module counts only where ldap { enable yes; } says so: in the
   * default lists too. */
  (void)authz;
#ifdef HAVE_LDAP
  return c->ldap_enabled;
#else
  (void)c;
  return false;
#endif
}

#ifdef HAVE_LDAP

/* The URLs are checked as OpenLDAP's ldap_url_parse() reads them (RFC 4516 with its
 * leniencies and its quirks): what it refuses is refused, what it takes is taken. */

/* The next part of a URL from p up to end: up to sep or end; *next after it, or NULL
 * when it was the last. */
static const char *url_part(const char *p, const char *end, char sep, const char **next)
{
  const char *e = memchr(p, sep, (size_t)(end - p));

  *next = e != NULL ? e + 1 : NULL;
  return e != NULL ? e : end;
}

/* The value of a hex digit, or -1. */
static int url_hex(char c)
{
  static const char digits[] = "0123456789abcdef";
  const char *d = c != '\0' ? strchr(digits, tolower((unsigned char)c)) : NULL;

  return d != NULL ? (int)(d - digits) : -1;
}

/* The n bytes at p with %XX decoded, into out (more than n bytes), as a C string; a `%'
 * without two hex digits empties it, as libldap's unescaping does. */
static void url_unescape(const char *p, size_t n, char *out)
{
  size_t o = 0;

  for (size_t i = 0; i < n; i++) {
    if (p[i] != '%') {
      out[o++] = p[i];
    } else if (i + 2 < n && url_hex(p[i + 1]) >= 0 && url_hex(p[i + 2]) >= 0) {
      out[o++] = (char)(url_hex(p[i + 1]) << 4 | url_hex(p[i + 2]));
      i += 2;
    } else {
      o = 0;
      break;
    }
  }
  out[o] = '\0';
}

/* The host part of an ldap:// or ldaps:// URL (not ldapi://, whose host is a path): an
 * IPv6 address in brackets (then nothing or the port's colon), or a name; a port after
 * a colon is a number as strtol() reads it once unescaped. */
static bool url_hostport(const char *p, const char *end, char *buf)
{
  const char *colon;
  char *next;

  if (p < end && *p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));

    if (rb == NULL)
      return false;
    colon = memchr(rb + 1, ':', (size_t)(end - rb - 1));
    if (colon != NULL && colon != rb + 1)
      return false;
  } else {
    colon = memchr(p, ':', (size_t)(end - p));
  }
  if (colon == NULL)
    return true;
  url_unescape(colon + 1, (size_t)(end - colon - 1), buf);
  if (buf[0] == '\0')
    return false;
  (void)strtol(buf, &next, 10);
  return next != buf && *next == '\0';
}

/* The scope part, unescaped: a scope libldap knows, in any case. */
static bool url_scope(const char *scope)
{
  static const char *const scopes[] = {
    "one", "onelevel", "base", "sub", "subtree", "subord", "subordinate", "children",
  };

  for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
    if (strlen(scope) == strlen(scopes[i]) &&
        util_strncasecmp(scope, scopes[i], strlen(scopes[i])) == 0)
      return true;
  return false;
}

/* One URL, the len bytes at u (at most LDAP_FILTER_MAX): <...> and URL: around it
 * allowed; ldap://, ldaps://, ldapi:// (or the proxied pldap://, pldaps://); the host
 * and port (above) up to the DN's `/', or up to a `?' when there is none (and then
 * nothing after it counts); then DN?ATTRIBUTES?SCOPE?FILTER?EXTENSIONS, each part
 * optional, but a scope libldap knows, a filter that is not empty once unescaped, one
 * extension at least when their part is there, and no sixth part. */
static bool url_valid(const char *u, size_t len)
{
  static const char *const schemes[] = {
    "ldap://", "pldap://", "ldaps://", "pldaps://", "ldapi://",
  };
  const char *end = u + len, *slash, *hostend, *next;
  char buf[LDAP_FILTER_MAX + 1];
  bool enclosed = false, known = false, ipc = false;

  if (u < end && *u == '<') {
    enclosed = true;
    u++;
  }
  if (end - u >= 4 && util_strncasecmp(u, "URL:", 4) == 0)
    u += 4;
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0] && !known; i++) {
    size_t sl = strlen(schemes[i]);

    if ((size_t)(end - u) >= sl && util_strncasecmp(u, schemes[i], sl) == 0) {
      u += sl;
      known = true;
      ipc = strcmp(schemes[i], "ldapi://") == 0;
    }
  }
  if (!known)
    return false;
  if (enclosed) {
    if (u == end || end[-1] != '>')
      return false;
    end--;
  }
  slash = memchr(u, '/', (size_t)(end - u));
  hostend = slash != NULL ? slash : url_part(u, end, '?', &next);
  if (!ipc && !url_hostport(u, hostend, buf))
    return false;
  if (slash == NULL)
    return true;
  next = slash + 1;
  for (int k = 0; next != NULL; k++) {
    const char *part = next, *e = url_part(part, end, '?', &next);

    if (e > part && (k == 2 || k == 3)) {
      url_unescape(part, (size_t)(e - part), buf);
      if ((k == 2 && !url_scope(buf)) || (k == 3 && buf[0] == '\0'))
        return false;                           /* a filter: not empty once unescaped */
    }
    /* The extensions, the rest: no other `?', and one at least (not only commas). */
    if (k == 4) {
      while (part < e && *part == ',')
        part++;
      return next == NULL && part < e;
    }
  }
  return true;
}

/* The list of URLs of `url', as ldap_initialize() will read it. */
int auth_ldap_check_url(const char *url, const char **error_r)
{
  size_t len = strlen(url), i = 0, n = 0;

  if (len == 0 || len > LDAP_FILTER_MAX) {
    *error_r = "a URL list is 1 to 1024 characters long";
    return -1;
  }
  while (i < len) {
    size_t l = strcspn(url + i, " \t,");

    if (l == 0) {
      i++;
      continue;
    }
    n++;
    if (!url_valid(url + i, l)) {
      *error_r = "not an LDAP URL (ldap://HOST:PORT/, ldaps://HOST/, ldapi://PATH)";
      return -1;
    }
    i += l;
  }
  if (n == 0) {
    *error_r = "no URL";
    return -1;
  }
  return 0;
}

#else /* !HAVE_LDAP: every value is accepted; conf_check() refuses the module */

int auth_ldap_check_url(const char *url, const char **error_r)
{
  (void)url;
  (void)error_r;
  return 0;
}

#endif /* HAVE_LDAP */

#else /* POP3D_MODULE */

#include <ldap.h>
#include <nettle/md5.h>
#include <nettle/nettle-meta.h>
#include <nettle/sha1.h>

#include "base64.h"
#include "log.h"

/* Bounds on the server: a connection is set up in LDAP_CONNECT_TIMEOUT seconds, an
 * operation answered in LDAP_OP_TIMEOUT, so that a server that is down or stopped
 * answers a login with [SYS/TEMP] well within login-timeout. */
#define LDAP_CONNECT_TIMEOUT 5
#define LDAP_OP_TIMEOUT 10
/* Longest attribute value taken from an entry (a path, a URL, a hash). */
#define LDAP_VALUE_MAX 4096

static const char *const field_defaults[LF_COUNT] = {
  "uid", "userPassword", "uidNumber", "gidNumber", "gecos", "homeDirectory", "loginShell",
  NULL, NULL,
};

#define LDAP_DEFAULT_GETPWNAM "(&(objectClass=posixAccount) (uid=$user))"

/* The monitor's connection, kept for its next login attempts. */
static LDAP *conn;
static pid_t conn_pid;        /* the process that opened it: a child never uses it */
static bool conn_bound;       /* bound as binddn (a bind as a user ended that) */

/* The fields of one entry: values as NUL-terminated copies (NULL: absent). */
struct ldap_entry {
  char *dn;
  char *v[LF_COUNT];
};

static void entry_free(struct ldap_entry *e)
{
  if (e->dn != NULL)
    ldap_memfree(e->dn);
  for (int f = 0; f < LF_COUNT; f++)
    if (f == LF_PASSWD)
      util_free_secret(e->v[f]);
    else
      free(e->v[f]);
  memset(e, 0, sizeof *e);
}

/* The attribute of each field: the default map overlaid with the configured one. */
static void field_map(const struct conf *c, const char *attrs[LF_COUNT])
{
  for (int f = 0; f < LF_COUNT; f++)
    attrs[f] = field_defaults[f];
  for (size_t i = 0; i < c->ldap_field_map.n; i++) {
    const char *attr, *err;
    int f = field_parse(c->ldap_field_map.v[i], &attr, &err);

    if (f >= 0)
      attrs[f] = attr;
  }
}

/* Errors that mean the server is out of reach (or gone since the last attempt). */
static bool server_gone(int rc)
{
  return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
         rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY;
}

static void conn_close(void)
{
  if (conn == NULL)
    return;
  /* Inherited from a parent: its socket is the parent's too, so no unbind on it. */
  if (conn_pid == getpid())
    (void)ldap_unbind_ext_s(conn, NULL, NULL);
  else
    (void)ldap_destroy(conn);
  conn = NULL;
  conn_bound = false;
}

/* Bind as dn with password on the connection: an LDAP result code. */
static int simple_bind(const char *dn, const char *password)
{
  struct berval cred;

  cred.bv_val = (char *)(password != NULL ? password : "");
  cred.bv_len = strlen(cred.bv_val);
  return ldap_sasl_bind_s(conn, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

static bool uses_ldaps(const char *url)
{
  return url != NULL && util_strncasecmp(url, "ldaps:", 6) == 0;
}

/* The connection, opened (StartTLS when `tls yes') and bound as binddn.  OK or TEMP. */
static enum auth_mod_result conn_get(struct auth_ctx *ctx)
{
  const struct conf *c = ctx->conf;
  struct timeval net = { LDAP_CONNECT_TIMEOUT, 0 }, op = { LDAP_OP_TIMEOUT, 0 };
  int version = LDAP_VERSION3, rc;

  if (conn != NULL && conn_pid != getpid())
    conn_close();
  if (conn == NULL) {
    if (c->ldap_debug > 0) {
      int level = (int)c->ldap_debug;

      (void)ber_set_option(NULL, LBER_OPT_DEBUG_LEVEL, &level);
      (void)ldap_set_option(NULL, LDAP_OPT_DEBUG_LEVEL, &level);
    }
    rc = ldap_initialize(&conn, c->ldap_url);
    if (rc != LDAP_SUCCESS) {
      conn = NULL;
      auth_set_error(ctx, "%s: %s", c->ldap_url ? c->ldap_url : "default URI",
                     ldap_err2string(rc));
      return AUTH_MOD_TEMP;
    }
    conn_pid = getpid();
    conn_bound = false;
    if (ldap_set_option(conn, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
        ldap_set_option(conn, LDAP_OPT_NETWORK_TIMEOUT, &net) != LDAP_OPT_SUCCESS ||
        ldap_set_option(conn, LDAP_OPT_TIMEOUT, &op) != LDAP_OPT_SUCCESS ||
        ldap_set_option(conn, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(conn, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS) {
      conn_close();
      ctx->error = "can't set the connection's options";
      return AUTH_MOD_TEMP;
    }
    if (c->ldap_tls && !uses_ldaps(c->ldap_url)) {
      rc = ldap_start_tls_s(conn, NULL, NULL);
      if (rc != LDAP_SUCCESS) {
        char *diag = NULL;

        (void)ldap_get_option(conn, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
        auth_set_error(ctx, "StartTLS: %s%s%.100s", ldap_err2string(rc),
                       diag != NULL && diag[0] != '\0' ? ": " : "", diag ? diag : "");
        ldap_memfree(diag);
        conn_close();
        return AUTH_MOD_TEMP;
      }
    }
  }
  if (!conn_bound) {
    rc = simple_bind(c->ldap_binddn, c->ldap_passwd);
    if (rc != LDAP_SUCCESS) {
      auth_set_error(ctx, "bind as %.100s: %s", c->ldap_binddn ? c->ldap_binddn : "anonymous",
                     ldap_err2string(rc));
      conn_close();
      return AUTH_MOD_TEMP;
    }
    conn_bound = true;
  }
  return AUTH_MOD_OK;
}

/* Length of the $user or ${user} reference at p (which is at a `$'), 0 if it is none. */
static size_t user_ref(const char *p)
{
  if (strncmp(p, "${user}", 7) == 0)
    return 7;
  if (strncmp(p, "$user", 5) == 0 && !attr_char((unsigned char)p[5]) && p[5] != '_')
    return 5;
  return 0;
}

/* The filter with each $user or ${user} replaced by name, escaped (RFC 4515 section 3):
 * every byte of name outside printable ASCII and each of * ( ) \ becomes \XX. */
static char *filter_expand(const char *pattern, const char *name)
{
  size_t n = 0, refs = 0;
  char *out;

  for (const char *p = pattern; *p; p++)
    if (p[0] == '$' && user_ref(p) > 0)
      refs++;
  /* At most 3 bytes for each byte of the name at each reference; the filter and the
   * name are bounded (LDAP_FILTER_MAX, PARAMS_USER_MAX), so this can't overflow. */
  out = util_xmalloc(strlen(pattern) + refs * 3 * strlen(name) + 1);
  for (const char *p = pattern; *p; ) {
    size_t ref = p[0] == '$' ? user_ref(p) : 0;

    if (ref == 0) {
      out[n++] = *p++;
      continue;
    }
    for (const unsigned char *q = (const unsigned char *)name; *q; q++) {
      if (*q < 0x20 || *q >= 0x7f || *q == '*' || *q == '(' || *q == ')' || *q == '\\') {
        snprintf(out + n, 4, "\\%02x", *q);
        n += 3;
      } else {
        out[n++] = (char)*q;
      }
    }
    p += ref;
  }
  out[n] = '\0';
  return out;
}

/* The first value of attr in the entry, if it is a sane one: no NUL, bounded, and no
 * control character unless binary (the password). */
static char *entry_value(LDAPMessage *msg, const char *attr, bool binary)
{
  struct berval **vals = ldap_get_values_len(conn, msg, attr);
  char *v = NULL;

  if (vals == NULL)
    return NULL;
  if (vals[0] != NULL && vals[0]->bv_len > 0 && vals[0]->bv_len <= LDAP_VALUE_MAX &&
      memchr(vals[0]->bv_val, '\0', vals[0]->bv_len) == NULL) {
    bool ok = true;

    for (ber_len_t i = 0; i < vals[0]->bv_len && !binary; i++)
      if ((unsigned char)vals[0]->bv_val[i] < 0x20 || vals[0]->bv_val[i] == 0x7f)
        ok = false;
    if (ok)
      v = util_xstrndup(vals[0]->bv_val, vals[0]->bv_len);
  }
  for (size_t i = 0; vals[i] != NULL; i++)
    util_wipe(vals[i]->bv_val, vals[i]->bv_len);
  ldap_value_free_len(vals);
  return v;
}

/* The one entry the getpwnam filter finds for name.  OK (*e filled), NOUSER (none),
 * DENIED (several: the directory is ambiguous) or TEMP. */
static enum auth_mod_result lookup(struct auth_ctx *ctx, const char *name,
                                   struct ldap_entry *e)
{
  const struct conf *c = ctx->conf;
  const char *map[LF_COUNT], *attrs[LF_COUNT + 1];
  struct timeval op = { LDAP_OP_TIMEOUT, 0 };
  LDAPMessage *res = NULL, *msg;
  enum auth_mod_result r;
  size_t na = 0;
  char *filter;
  int rc = LDAP_SUCCESS, count;

  memset(e, 0, sizeof *e);
  field_map(c, map);
  /* Only what pop3d uses is asked for (gecos, shell and quota are not). */
  for (int f = 0; f < LF_COUNT; f++)
    if (map[f] != NULL && f != LF_GECOS && f != LF_SHELL && f != LF_QUOTA)
      attrs[na++] = map[f];
  attrs[na] = NULL;
  filter = filter_expand(c->ldap_getpwnam ? c->ldap_getpwnam : LDAP_DEFAULT_GETPWNAM, name);
  /* A connection kept from an earlier attempt may find the server restarted since:
   * one more try on a fresh one. */
  for (int attempt = 0; attempt < 2; attempt++) {
    bool reused = conn != NULL;

    r = conn_get(ctx);
    if (r != AUTH_MOD_OK) {
      if (reused && attempt == 0)
        continue;
      free(filter);
      return r;
    }
    rc = ldap_search_ext_s(conn, c->ldap_base, LDAP_SCOPE_SUBTREE, filter,
                           (char **)attrs, 0, NULL, NULL, &op, 2, &res);
    if (!server_gone(rc) || !reused || attempt > 0)
      break;
    ldap_msgfree(res);
    res = NULL;
    conn_close();
  }
  free(filter);
  if (rc == LDAP_NO_SUCH_OBJECT) {
    ldap_msgfree(res);
    ctx->error = AUTH_BAD_LOGIN;
    return AUTH_MOD_NOUSER;
  }
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
    ldap_msgfree(res);
    auth_set_error(ctx, "search: %s", ldap_err2string(rc));
    if (server_gone(rc))
      conn_close();
    return AUTH_MOD_TEMP;
  }
  count = ldap_count_entries(conn, res);
  if (count != 1) {
    ldap_msgfree(res);
    if (count == 0) {
      ctx->error = AUTH_BAD_LOGIN;
      return AUTH_MOD_NOUSER;
    }
    ctx->error = "several directory entries match the name";
    return AUTH_MOD_DENIED;
  }
  msg = ldap_first_entry(conn, res);
  e->dn = msg != NULL ? ldap_get_dn(conn, msg) : NULL;
  if (e->dn == NULL) {
    ldap_msgfree(res);
    ctx->error = "search: an entry without a DN";
    return AUTH_MOD_TEMP;
  }
  for (int f = 0; f < LF_COUNT; f++)
    if (map[f] != NULL && f != LF_GECOS && f != LF_SHELL && f != LF_QUOTA)
      e->v[f] = entry_value(msg, map[f], f == LF_PASSWD);
  ldap_msgfree(res);
  return AUTH_MOD_OK;
}

/* {MD5}, {SMD5}, {SHA}, {SSHA}: base64 of the digest of password + salt, then the
 * salt.  1 match, 0 no match, -1 malformed value. */
static int check_digest(const char *b64, const struct nettle_hash *hash, bool salted,
                        const char *password)
{
  size_t dlen = hash->digest_size, n;
  unsigned char stored[LDAP_VALUE_MAX], digest[SHA1_DIGEST_SIZE];
  union { struct md5_ctx md5; struct sha1_ctx sha1; } h;
  int r = -1;

  if (base64_decode(b64, strlen(b64), stored, sizeof stored, &n) == 0 &&
      dlen <= sizeof digest && hash->context_size <= sizeof h &&
      (salted ? n > dlen : n == dlen)) {
    hash->init(&h);
    hash->update(&h, strlen(password), (const uint8_t *)password);
    hash->update(&h, n - dlen, stored + dlen);
    hash->digest(&h, dlen, digest);
    r = util_memeq_ct(digest, stored, dlen) ? 1 : 0;
  }
  util_wipe(&h, sizeof h);
  util_wipe(stored, sizeof stored);
  util_wipe(digest, sizeof digest);
  return r;
}

/* The password against a userPassword value, as Mailutils reads it: {SCHEME}VALUE
 * (scheme names in any case) or plain text. */
static enum auth_mod_result check_password(struct auth_ctx *ctx, const char *stored)
{
  static const struct { const char *name; const struct nettle_hash *hash; bool salted; }
  schemes[] = {
    { "MD5", &nettle_md5, false }, { "SMD5", &nettle_md5, true },
    { "SHA", &nettle_sha1, false }, { "SSHA", &nettle_sha1, true },
  };
  const char *end = stored[0] == '{' ? strchr(stored, '}') : NULL;
  size_t slen;
  int r = -1;

  if (end == NULL) {
    if (util_streq_ct(ctx->password, stored))
      return AUTH_MOD_OK;
    ctx->error = AUTH_BAD_LOGIN;
    return AUTH_MOD_DENIED;
  }
  slen = (size_t)(end - stored - 1);
  if (slen == 5 && util_strncasecmp(stored + 1, "CRYPT", 5) == 0) {
    if (!auth_hash_usable(end + 1)) {
      ctx->error = "account locked or without a usable password";
      return AUTH_MOD_DENIED;
    }
    return auth_check_hash(ctx, end + 1);
  }
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strlen(schemes[i].name) == slen &&
        util_strncasecmp(stored + 1, schemes[i].name, slen) == 0) {
      r = check_digest(end + 1, schemes[i].hash, schemes[i].salted, ctx->password);
      if (r == 1)
        return AUTH_MOD_OK;
      if (r == 0) {
        ctx->error = AUTH_BAD_LOGIN;
        return AUTH_MOD_DENIED;
      }
      auth_set_error(ctx, "malformed {%s} userPassword", schemes[i].name);
      return AUTH_MOD_DENIED;
    }
  auth_set_error(ctx, "unsupported password scheme {%.*s}", (int)(slen < 20 ? slen : 20),
                 stored + 1);
  return AUTH_MOD_DENIED;
}

/* bind-as-user: the directory checks the password.  An empty one would be an
 * unauthenticated bind (RFC 4513 section 5.1.2), which succeeds: never tried. */
static enum auth_mod_result bind_as(struct auth_ctx *ctx, const char *dn)
{
  int rc;

  conn_bound = false;
  rc = simple_bind(dn, ctx->password);
  if (rc == LDAP_SUCCESS)
    return AUTH_MOD_OK;
  if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH ||
      rc == LDAP_UNWILLING_TO_PERFORM) {
    ctx->error = AUTH_BAD_LOGIN;
    return AUTH_MOD_DENIED;
  }
  auth_set_error(ctx, "bind as the user: %s", ldap_err2string(rc));
  if (server_gone(rc))
    conn_close();
  return AUTH_MOD_TEMP;
}

/* What a bind as a known user costs, for a name the directory does not have: a bind
 * as a DN that does not exist, with the password given. */
static void dummy_bind(const struct auth_ctx *ctx)
{
  unsigned char rnd[12];
  char dn[128];

  if (util_random(rnd, sizeof rnd) < 0)
    memset(rnd, 0, sizeof rnd);
  snprintf(dn, sizeof dn, "cn=pop3d-%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x,%.60s",
           rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9],
           rnd[10], rnd[11], ctx->conf->ldap_base ? ctx->conf->ldap_base : "o=none");
  conn_bound = false;
  (void)simple_bind(dn, ctx->password[0] != '\0' ? ctx->password : "-");
}

static enum auth_mod_result ldap_authenticate(struct auth_ctx *ctx)
{
  struct ldap_entry e;
  enum auth_mod_result r;

  if (!ctx->conf->ldap_enabled) {
    /* Not reached: a module that isn't usable is left out of the lists. */
    ctx->error = "ldap { enable yes; } not set";
    return AUTH_MOD_NOUSER;
  }
  r = lookup(ctx, ctx->user, &e);
  if (r == AUTH_MOD_NOUSER && ctx->conf->ldap_bind_as_user && conn != NULL)
    dummy_bind(ctx);
  if (r != AUTH_MOD_OK)
    return r;
  if (ctx->conf->ldap_bind_as_user) {
    if (ctx->password[0] == '\0') {
      ctx->error = AUTH_BAD_LOGIN;
      r = AUTH_MOD_DENIED;
    } else {
      r = bind_as(ctx, e.dn);
    }
  } else if (e.v[LF_PASSWD] == NULL) {
    ctx->error = "no readable userPassword (see bind-as-user)";
    r = AUTH_MOD_DENIED;
  } else {
    r = check_password(ctx, e.v[LF_PASSWD]);
  }
  if (r == AUTH_MOD_OK && e.v[LF_NAME] != NULL && auth_name_valid(e.v[LF_NAME])) {
    free(ctx->canon);
    ctx->canon = util_xstrdup(e.v[LF_NAME]);
  }
  entry_free(&e);
  return r;
}

static bool parse_id(const char *s, uint64_t *v)
{
  const char *err;

  return s != NULL && util_parse_u64(s, 0, (uint64_t)UINT32_MAX - 1, v, &err) == 0;
}

/* The hash `authentication generic' can check: a {CRYPT} value without its prefix, or
 * a value without a scheme (which crypt(3) takes as the setting, as Mailutils does). */
static char *generic_hash(const char *stored)
{
  if (stored == NULL)
    return NULL;
  if (util_strncasecmp(stored, "{CRYPT}", 7) == 0)
    return util_xstrdup(stored + 7);
  if (stored[0] == '{')
    return NULL;
  return util_xstrdup(stored);
}

static enum auth_mod_result ldap_authorize(struct auth_ctx *ctx, const char *name,
                                           struct auth_user *out)
{
  struct ldap_entry e;
  enum auth_mod_result r;
  uint64_t uid, gid;

  if (!ctx->conf->ldap_enabled) {
    ctx->error = "ldap { enable yes; } not set";
    return AUTH_MOD_NOUSER;
  }
  r = lookup(ctx, name, &e);
  if (r != AUTH_MOD_OK)
    return r;
  if (!parse_id(e.v[LF_UID], &uid) || !parse_id(e.v[LF_GID], &gid)) {
    /* The directory's mistake, not the user's: said in the log, in full. */
    log_msg(LOG_ERR, "ldap: %.200s: no usable uid or gid number", e.dn);
    auth_set_error(ctx, "entry without a usable uid or gid number");
    entry_free(&e);
    return AUTH_MOD_DENIED;
  }
  out->name = util_xstrdup(e.v[LF_NAME] != NULL && auth_name_valid(e.v[LF_NAME])
                           ? e.v[LF_NAME] : name);
  out->uid = (uid_t)uid;
  out->gid = (gid_t)gid;
  out->home = util_xstrdup(e.v[LF_DIR] != NULL ? e.v[LF_DIR] : "");
  out->mailbox = e.v[LF_MAILBOX] != NULL ? util_xstrdup(e.v[LF_MAILBOX]) : NULL;
  out->passwd = generic_hash(e.v[LF_PASSWD]);
  entry_free(&e);
  return AUTH_MOD_OK;
}

static const struct auth_module ldap_module = {
  .name = "ldap",
  .authenticate = ldap_authenticate,
  .authorize = ldap_authorize,
  .release = conn_close,
};

POP3D_MODULE_EXPORT const struct pop3d_module pop3d_module = {
  POP3D_MODULE_HEADER("ldap"),
  .auth = &ldap_module,
};

#endif /* POP3D_MODULE */
