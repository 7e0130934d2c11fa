/* auth_sql.c - Mailutils' sql module: virtual users in MySQL/MariaDB (MariaDB
 * Connector/C) or PostgreSQL (libpq).
 *
 * Authorization runs the getpwnam query and reads the first row's columns by their
 * field-map names (name, passwd, uid, gid, dir, shell required; gecos, mailbox, quota
 * optional); authentication runs the getpass query for the name the authorization
 * found (Mailutils' order) and compares its first column with the password as
 * password-encryption says: plain, hash or crypt (crypt(3)), scrambled (MySQL's
 * PASSWORD(), both the 4.1 and the 3.23 forms).  $user and ${user} in a query are the
 * name escaped by the client library for the connection's character set (Mailutils
 * backslash-escapes quotes, which is wrong for PostgreSQL's standard strings);
 * $(localpart $user) and $(domainpart $user) its parts around the first `@'.
 *
 * Runs in the monitor only.  One connection per monitor process, opened at the first
 * query, reused by the attempts that follow, opened again once if the server dropped it,
 * closed when a login succeeds (the session never holds it, and a long POP session
 * holds no database connection).  Every wait is bounded: a server that doesn't answer
 * is a temporary failure ([SYS/TEMP]), never a refusal.  Every value of a reply is
 * bounded and checked before use.
 *
 * Built twice.  Into pop3d: the checks of the configuration (auth_sql_conf_check()) and
 * whether it lets the module serve (auth_sql_usable()), which need no client library.
 * With -DPOP3D_MODULE: the module sql.so (module.h), everything else, linked with the
 * client libraries; pop3d loads it only when its lists use sql (auth_modules_load()).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef POP3D_MODULE
# ifdef HAVE_MYSQL
#  include <mysql.h>
#  include <errmsg.h>
# endif
# ifdef HAVE_PGSQL
#  include <libpq-fe.h>
# endif
#endif

#include "auth.h"
#include "auth_impl.h"
#include "auth_sql.h"
#include "conf.h"
#include "module.h"
#include "params.h"
#include "util.h"

/* A server that accepts no connection within this many seconds is down for this login. */
#define SQL_CONNECT_TIMEOUT 5
/* A query that has no answer within this many seconds fails the login as temporary. */
#define SQL_QUERY_TIMEOUT 10
/* A query as configured, and once expanded; a value of a reply (paths, hashes, names). */
#define SQL_QUERY_MAX 16384
#define SQL_VALUE_MAX 4096
/* Columns of one reply we look at; param statements passed to the library. */
#define SQL_COLUMNS_MAX 64
#define SQL_PARAMS_MAX 32

enum sql_iface { SQL_NONE, SQL_MYSQL, SQL_POSTGRES, SQL_ODBC };

static enum sql_iface iface_of(const struct conf *c)
{
  const char *s = c->sql_interface;

  if (s == NULL)
    return SQL_NONE;
  if (strcmp(s, "mysql") == 0)
    return SQL_MYSQL;
  if (strcmp(s, "postgres") == 0)
    return SQL_POSTGRES;
  return SQL_ODBC;
}

/* ---------------------------------------------------------------------------------- */
/* Queries: $user, ${user}, $(localpart $user), $(domainpart $user)                    */

enum sql_part { PART_USER, PART_LOCAL, PART_DOMAIN, PART_NONE, PART_BAD };

/* A `$' that stands for itself (not a reference). */
static bool dollar_literal(const char *q)
{
  return q[1] != '(' && q[1] != '{' && !isalpha((unsigned char)q[1]) && q[1] != '_';
}

/* What the reference at q (a `$', not dollar_literal()) stands for, and its length in
 * *len.  Other variables are empty, as Mailutils expands them; other $(...) are refused
 * (`shell' would run a command). */
static enum sql_part placeholder(const char *q, size_t *len)
{
  static const struct { const char *text; enum sql_part part; } fixed[] = {
    { "${user}", PART_USER },
    { "$(localpart $user)", PART_LOCAL },
    { "$(localpart ${user})", PART_LOCAL },
    { "$(domainpart $user)", PART_DOMAIN },
    { "$(domainpart ${user})", PART_DOMAIN },
  };
  size_t n;

  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (strncmp(q, fixed[i].text, strlen(fixed[i].text)) == 0) {
      *len = strlen(fixed[i].text);
      return fixed[i].part;
    }
  if (q[1] == '(')
    return PART_BAD;
  if (q[1] == '{') {
    const char *e = strchr(q, '}');

    if (e == NULL)
      return PART_BAD;
    *len = (size_t)(e - q) + 1;
    return PART_NONE;
  }
  for (n = 1; isalnum((unsigned char)q[n]) || q[n] == '_'; n++)
    ;
  *len = n;
  return n == 5 && strncmp(q + 1, "user", 4) == 0 ? PART_USER : PART_NONE;
}

#ifdef POP3D_MODULE
/* What the module does at run time (sql.so, only in a build with an interface). */

enum sql_enc { SQL_PLAIN, SQL_HASH, SQL_SCRAMBLED };

static enum sql_enc enc_of(const struct conf *c)
{
  const char *s = c->sql_password_encryption;

  if (s == NULL || strcmp(s, "plain") == 0)
    return SQL_PLAIN;
  if (strcmp(s, "scrambled") == 0)
    return SQL_SCRAMBLED;
  return SQL_HASH;                    /* hash, crypt: crypt(3), as in Mailutils */
}

/* The query with its placeholders replaced by the escaped parts of user.  esc_* are the
 * escaped user, local part and domain.  NULL when it would be too long. */
static char *expand(const char *query, const char *const esc[3])
{
  size_t cap = SQL_QUERY_MAX + 1, n = 0;
  char *out = util_xmalloc(cap);

  for (const char *q = query; *q != '\0';) {
    const char *add = q;
    size_t alen = 1, skip = 1;

    if (*q == '$' && !dollar_literal(q)) {
      enum sql_part p = placeholder(q, &skip);

      switch (p) {
      case PART_USER: case PART_LOCAL: case PART_DOMAIN:
        add = esc[p];
        alen = strlen(add);
        break;
      case PART_NONE:
        alen = 0;
        break;
      default:                        /* refused by auth_sql_conf_check() */
        free(out);
        return NULL;
      }
    }
    if (alen > cap - 1 - n) {
      free(out);
      return NULL;
    }
    memcpy(out + n, add, alen);
    n += alen;
    q += skip;
  }
  out[n] = '\0';
  return out;
}

/* ---------------------------------------------------------------------------------- */
/* Replies                                                                            */

/* The first row of a reply, copied out of the library's memory: column names and
 * values (NULL: SQL NULL), and how many rows there were. */
struct sql_row {
  size_t nrows, ncols;
  char *name[SQL_COLUMNS_MAX];
  char *value[SQL_COLUMNS_MAX];
};

static void row_free(struct sql_row *r)
{
  for (size_t i = 0; i < r->ncols; i++) {
    free(r->name[i]);
    util_free_secret(r->value[i]);
  }
  memset(r, 0, sizeof *r);
}

/* Store column i of the first row: a value longer than SQL_VALUE_MAX or with a NUL in
 * it is a broken reply (-1). */
static int row_set(struct sql_row *r, size_t i, const char *name, const char *v,
                   size_t len)
{
  r->name[i] = util_xstrndup(name, strnlen(name, SQL_VALUE_MAX));
  if (v == NULL)
    return 0;
  if (len > SQL_VALUE_MAX || memchr(v, '\0', len) != NULL)
    return -1;
  r->value[i] = util_xstrndup(v, len);
  return 0;
}

/* The column a field of the map names (Mailutils: NAME=COLUMN definitions, separated
 * by colons in one string or in a list; else the field's own name), in buf.
 * PostgreSQL folds unquoted names to lower case, as PQfnumber() does. */
static const char *column_of(const struct conf *c, const char *field, char *buf,
                             size_t size)
{
  const char *col = field;
  size_t clen = strlen(field), flen = clen;

  for (size_t i = 0; i < c->sql_field_map.n; i++)
    for (const char *d = c->sql_field_map.v[i]; *d != '\0';) {
      size_t l = strcspn(d, ":");

      if (l > flen && strncmp(d, field, flen) == 0 && d[flen] == '=') {
        col = d + flen + 1;
        clen = l - flen - 1;
      }
      d += l + (d[l] == ':');
    }
  if (iface_of(c) == SQL_POSTGRES && col[0] == '"' && clen >= 2) {
    col++;
    clen -= 2;
  } else if (iface_of(c) == SQL_POSTGRES) {
    size_t i;

    for (i = 0; i < clen && i + 1 < size; i++)
      buf[i] = (char)tolower((unsigned char)col[i]);
    buf[i] = '\0';
    return buf;
  }
  snprintf(buf, size, "%.*s", (int)clen, col);
  return buf;
}

/* The value of a field in the row: 1 (*v set, NULL for SQL NULL), 0 (no such column). */
static int field(const struct conf *c, const struct sql_row *r, const char *name,
                 const char **v)
{
  char buf[256];
  const char *col = column_of(c, name, buf, sizeof buf);

  for (size_t i = 0; i < r->ncols; i++)
    if (strcmp(r->name[i], col) == 0) {
      *v = r->value[i];
      return 1;
    }
  *v = NULL;
  return 0;
}

/* ---------------------------------------------------------------------------------- */
/* The connection                                                                     */

static struct {
  const struct conf *conf;   /* the configuration it was opened with */
#ifdef HAVE_MYSQL
  MYSQL *my;
#endif
#ifdef HAVE_PGSQL
  PGconn *pg;
#endif
} db;

static void db_close(void)
{
#ifdef HAVE_MYSQL
  if (db.my != NULL)
    mysql_close(db.my);
  db.my = NULL;
#endif
#ifdef HAVE_PGSQL
  if (db.pg != NULL)
    PQfinish(db.pg);
  db.pg = NULL;
#endif
  db.conf = NULL;
}

static bool db_open(void)
{
#ifdef HAVE_MYSQL
  if (db.my != NULL)
    return true;
#endif
#ifdef HAVE_PGSQL
  if (db.pg != NULL)
    return true;
#endif
  return false;
}

/* The value of a param KEY=VALUE, or NULL. */
static const char *param(const struct conf *c, const char *key)
{
  size_t kl = strlen(key);

  for (size_t i = 0; i < c->sql_param.n; i++)
    if (strncmp(c->sql_param.v[i], key, kl) == 0 && c->sql_param.v[i][kl] == '=')
      return c->sql_param.v[i] + kl + 1;
  return NULL;
}

/* A message of the library without its trailing newline. */
static void lib_error(struct auth_ctx *ctx, const char *what, const char *msg)
{
  size_t n = msg != NULL ? strcspn(msg, "\n") : 0;

  auth_set_error(ctx, "%s: %.*s", what, (int)(n < 150 ? n : 150), msg != NULL ? msg : "");
}

#ifdef HAVE_MYSQL
static enum auth_mod_result my_connect(struct auth_ctx *ctx)
{
  const struct conf *c = ctx->conf;
  unsigned ct = SQL_CONNECT_TIMEOUT, qt = SQL_QUERY_TIMEOUT;
  const char *host = c->sql_host, *sock = NULL, *v;
  MYSQL *m = mysql_init(NULL);
  int fd;

  if (m == NULL) {
    ctx->error = "sql: out of memory";
    return AUTH_MOD_TEMP;
  }
  (void)mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
  (void)mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &qt);
  (void)mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &qt);
  if ((v = param(c, "default-file")) != NULL)
    (void)mysql_options(m, MYSQL_READ_DEFAULT_FILE, v);
  if ((v = param(c, "default-group")) != NULL)
    (void)mysql_options(m, MYSQL_READ_DEFAULT_GROUP, v);
  if (host != NULL && host[0] == '/') {
    sock = host;
    host = "localhost";
  }
  if (mysql_real_connect(m, host, c->sql_user, c->sql_passwd, c->sql_db, c->sql_port,
                         sock, 0) == NULL) {
    lib_error(ctx, "sql: mysql: connect", mysql_error(m));
    mysql_close(m);
    return AUTH_MOD_TEMP;
  }
  /* Not for the session nor anything the monitor runs. */
  fd = (int)mysql_get_socket(m);
  if (fd >= 0)
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  db.my = m;
  return AUTH_MOD_OK;
}

/* 1: done (*r filled or error set), 0: the connection was lost (try again). */
static enum auth_mod_result my_query(struct auth_ctx *ctx, const char *q,
                                     struct sql_row *r, bool *lost)
{
  MYSQL_RES *res;
  MYSQL_FIELD *f;
  MYSQL_ROW row;
  unsigned long *len;
  unsigned err;
  size_t nc;

  *lost = false;
  if (mysql_real_query(db.my, q, strlen(q)) != 0) {
    err = mysql_errno(db.my);
    *lost = err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST;
    lib_error(ctx, "sql: mysql: query", mysql_error(db.my));
    return AUTH_MOD_TEMP;
  }
  res = mysql_store_result(db.my);
  if (res == NULL) {
    err = mysql_errno(db.my);
    *lost = err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST;
    if (err != 0)
      lib_error(ctx, "sql: mysql: reply", mysql_error(db.my));
    else
      ctx->error = "sql: the query returns no rows (not a SELECT?)";
    return AUTH_MOD_TEMP;
  }
  r->nrows = (size_t)mysql_num_rows(res);
  nc = mysql_num_fields(res);
  r->ncols = nc < SQL_COLUMNS_MAX ? nc : SQL_COLUMNS_MAX;
  f = mysql_fetch_fields(res);
  row = r->nrows > 0 ? mysql_fetch_row(res) : NULL;
  len = row != NULL ? mysql_fetch_lengths(res) : NULL;
  for (size_t i = 0; i < r->ncols; i++)
    if (row_set(r, i, f[i].name != NULL ? f[i].name : "", row != NULL ? row[i] : NULL,
                len != NULL ? len[i] : 0) < 0) {
      mysql_free_result(res);
      ctx->error = "sql: a value of the reply is too long or holds a NUL";
      return AUTH_MOD_TEMP;
    }
  if (r->nrows > 0 && row == NULL) {
    mysql_free_result(res);
    lib_error(ctx, "sql: mysql: reply", mysql_error(db.my));
    return AUTH_MOD_TEMP;
  }
  mysql_free_result(res);
  return AUTH_MOD_OK;
}

static char *my_escape(const char *s)
{
  size_t n = strlen(s);
  char *out = util_xmalloc(2 * n + 1);

  (void)mysql_real_escape_string(db.my, out, s, (unsigned long)n);
  return out;
}
#endif

#ifdef HAVE_PGSQL
static void pg_quiet(void *arg, const char *message)
{
  (void)arg;
  (void)message;
}

/* Wait until fd is ready for events or the deadline passes: 0, or -1 (timed out or
 * failed). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
  struct pollfd p = { .fd = fd, .events = events };

  for (;;) {
    uint64_t now = util_now_ms();
    int n;

    if (fd < 0 || now >= deadline)
      return -1;
    n = poll(&p, 1, (int)(deadline - now));
    if (n > 0)
      return 0;
    if (n < 0 && errno != EINTR)
      return -1;
  }
}

static enum auth_mod_result pg_connect(struct auth_ctx *ctx)
{
  const struct conf *c = ctx->conf;
  const char *kw[8 + SQL_PARAMS_MAX], *val[8 + SQL_PARAMS_MAX];
  char port[16], timeout[16], dir[PATH_MAX];
  const char *host = c->sql_host;
  size_t n = 0, fixed;
  uint64_t deadline = util_now_ms() + SQL_CONNECT_TIMEOUT * 1000u;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  PGconn *pg;

  snprintf(port, sizeof port, "%u", c->sql_port);
  /* `host' naming the socket itself (/run/postgresql/.s.PGSQL.5432): libpq wants its
   * directory, and the port from its name. */
  if (host != NULL && host[0] == '/') {
    const char *base = strrchr(host, '/') + 1;
    struct stat sb;

    if (strncmp(base, ".s.PGSQL.", 9) == 0 && stat(host, &sb) == 0 && S_ISSOCK(sb.st_mode) &&
        (size_t)(base - host) < sizeof dir) {
      snprintf(dir, sizeof dir, "%.*s", (int)(base - host > 1 ? base - host - 1 : 1), host);
      snprintf(port, sizeof port, "%.8s", base + 9);
      host = dir;
    }
  }
  snprintf(timeout, sizeof timeout, "%d", SQL_CONNECT_TIMEOUT);
#define KV(k, v) do { if ((v) != NULL) { kw[n] = (k); val[n] = (v); n++; } } while (0)
  KV("host", host);
  KV("port", strcmp(port, "0") != 0 ? port : NULL);
  KV("user", c->sql_user);
  KV("password", c->sql_passwd);
  KV("dbname", c->sql_db);
  KV("connect_timeout", timeout);
#undef KV
  fixed = n;
  for (size_t i = 0; i < c->sql_param.n && n + 2 < sizeof kw / sizeof kw[0]; i++) {
    const char *eq = strchr(c->sql_param.v[i], '=');

    if (eq == NULL)
      continue;
    kw[n] = util_xstrndup(c->sql_param.v[i], (size_t)(eq - c->sql_param.v[i]));
    val[n++] = eq + 1;
  }
  kw[n] = val[n] = NULL;
  pg = PQconnectStartParams(kw, val, 0);
  for (size_t i = fixed; i < n; i++)
    free((char *)kw[i]);
  if (pg == NULL) {
    ctx->error = "sql: out of memory";
    return AUTH_MOD_TEMP;
  }
  if (PQstatus(pg) != CONNECTION_BAD) {
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
      if (wait_fd(PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                  deadline) < 0) {
        ctx->error = "sql: postgres: connect: no answer in time";
        PQfinish(pg);
        return AUTH_MOD_TEMP;
      }
      st = PQconnectPoll(pg);
    }
  }
  if (PQstatus(pg) != CONNECTION_OK) {
    lib_error(ctx, "sql: postgres: connect", PQerrorMessage(pg));
    PQfinish(pg);
    return AUTH_MOD_TEMP;
  }
  (void)PQsetNoticeProcessor(pg, pg_quiet, NULL);
  db.pg = pg;
  return AUTH_MOD_OK;
}

static enum auth_mod_result pg_query(struct auth_ctx *ctx, const char *q,
                                     struct sql_row *r, bool *lost)
{
  uint64_t deadline = util_now_ms() + SQL_QUERY_TIMEOUT * 1000u;
  PGresult *res = NULL, *more;
  size_t nc;

  *lost = false;
  if (!PQsendQuery(db.pg, q)) {
    *lost = PQstatus(db.pg) == CONNECTION_BAD;
    lib_error(ctx, "sql: postgres: query", PQerrorMessage(db.pg));
    return AUTH_MOD_TEMP;
  }
  for (;;) {
    while (PQisBusy(db.pg)) {
      if (wait_fd(PQsocket(db.pg), POLLIN, deadline) < 0) {
        PQclear(res);
        ctx->error = "sql: postgres: query: no answer in time";
        db_close();                   /* its state is unknown: start again next time */
        return AUTH_MOD_TEMP;
      }
      if (!PQconsumeInput(db.pg))
        break;
    }
    more = PQgetResult(db.pg);
    if (more == NULL)
      break;
    if (res == NULL)
      res = more;
    else
      PQclear(more);
    if (PQstatus(db.pg) == CONNECTION_BAD)
      break;
  }
  if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
    *lost = PQstatus(db.pg) == CONNECTION_BAD;
    if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK)
      ctx->error = "sql: the query returns no rows (not a SELECT?)";
    else
      lib_error(ctx, "sql: postgres: query",
                res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(db.pg));
    PQclear(res);
    return AUTH_MOD_TEMP;
  }
  r->nrows = (size_t)PQntuples(res);
  nc = (size_t)PQnfields(res);
  r->ncols = nc < SQL_COLUMNS_MAX ? nc : SQL_COLUMNS_MAX;
  for (size_t i = 0; i < r->ncols; i++) {
    bool null = r->nrows == 0 || PQgetisnull(res, 0, (int)i);
    const char *name = PQfname(res, (int)i);

    if (row_set(r, i, name != NULL ? name : "", null ? NULL : PQgetvalue(res, 0, (int)i),
                null ? 0 : (size_t)PQgetlength(res, 0, (int)i)) < 0) {
      PQclear(res);
      ctx->error = "sql: a value of the reply is too long or holds a NUL";
      return AUTH_MOD_TEMP;
    }
  }
  PQclear(res);
  return AUTH_MOD_OK;
}

static char *pg_escape(const char *s)
{
  size_t n = strlen(s);
  char *out = util_xmalloc(2 * n + 1);
  int err = 0;

  (void)PQescapeStringConn(db.pg, out, s, n, &err);
  if (err != 0) {                     /* invalid in the connection's encoding */
    free(out);
    return NULL;
  }
  return out;
}
#endif

static enum auth_mod_result db_connect(struct auth_ctx *ctx)
{
  if (db_open() && db.conf == ctx->conf)
    return AUTH_MOD_OK;
  db_close();
  switch (iface_of(ctx->conf)) {
#ifdef HAVE_MYSQL
  case SQL_MYSQL:
    if (my_connect(ctx) != AUTH_MOD_OK)
      return AUTH_MOD_TEMP;
    break;
#endif
#ifdef HAVE_PGSQL
  case SQL_POSTGRES:
    if (pg_connect(ctx) != AUTH_MOD_OK)
      return AUTH_MOD_TEMP;
    break;
#endif
  default:
    ctx->error = "sql: no usable interface";
    return AUTH_MOD_TEMP;
  }
  db.conf = ctx->conf;
  return AUTH_MOD_OK;
}

/* The name escaped for the open connection, or NULL when the library refuses it. */
static char *db_escape(const char *s)
{
#ifdef HAVE_MYSQL
  if (db.my != NULL)
    return my_escape(s);
#endif
#ifdef HAVE_PGSQL
  if (db.pg != NULL)
    return pg_escape(s);
#endif
  (void)s;
  return NULL;
}

static enum auth_mod_result db_query(struct auth_ctx *ctx, const char *q, struct sql_row *r,
                                     bool *lost)
{
#ifdef HAVE_MYSQL
  if (db.my != NULL)
    return my_query(ctx, q, r, lost);
#endif
#ifdef HAVE_PGSQL
  if (db.pg != NULL)
    return pg_query(ctx, q, r, lost);
#endif
  (void)q;
  (void)r;
  *lost = true;
  ctx->error = "sql: not connected";
  return AUTH_MOD_TEMP;
}

/* Run query for name: OK (*r holds the first row and the row count) or TEMP. */
static enum auth_mod_result run(struct auth_ctx *ctx, const char *query, const char *name,
                                struct sql_row *r)
{
  memset(r, 0, sizeof *r);
  for (int attempt = 0; attempt < 2; attempt++) {
    bool reused = db_open() && db.conf == ctx->conf, lost = false;
    size_t at = strcspn(name, "@");
    char *local = util_xstrndup(name, at);
    const char *parts[3] = { name, local, name[at] == '@' ? name + at + 1 : "" };
    char *esc[3] = { NULL, NULL, NULL }, *q = NULL;
    enum auth_mod_result res;

    if (db_connect(ctx) != AUTH_MOD_OK) {
      free(local);
      return AUTH_MOD_TEMP;
    }
    for (int i = 0; i < 3; i++)
      esc[i] = db_escape(parts[i]);
    if (esc[0] != NULL && esc[1] != NULL && esc[2] != NULL)
      q = expand(query, (const char *const *)esc);
    for (int i = 0; i < 3; i++)
      free(esc[i]);
    free(local);
    if (q == NULL) {
      ctx->error = "sql: the name can't be put in the query (encoding or length)";
      return AUTH_MOD_TEMP;
    }
    res = db_query(ctx, q, r, &lost);
    free(q);
    if (res == AUTH_MOD_OK)
      return res;
    row_free(r);
    /* A connection the server dropped since the last login (a restart, an idle
     * timeout): once more on a new one. */
    if (!lost || !reused)
      return res;
    db_close();
  }
  return AUTH_MOD_TEMP;
}

/* ---------------------------------------------------------------------------------- */
/* MySQL's PASSWORD(): "*" and SHA1(SHA1(password)) in upper-case hex (4.1 and later),
 * or the 16 hex digits of the 3.23 scramble.  Mailutils checks both.                  */

struct sha1 {
  uint32_t h[5];
  uint64_t len;
  unsigned char buf[64];
  size_t n;
};

static uint32_t rol(uint32_t x, unsigned n)
{
  return x << n | x >> (32 - n);
}

static void sha1_block(struct sha1 *s, const unsigned char *p)
{
  uint32_t w[80], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];

  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++)
    w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  for (int i = 0; i < 80; i++) {
    uint32_t f, k, t;

    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = t;
  }
  s->h[0] += a;
  s->h[1] += b;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
  util_wipe(w, sizeof w);
}

static void sha1(const void *data, size_t len, unsigned char out[20])
{
  struct sha1 s = { { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 }, 0,
                    { 0 }, 0 };
  const unsigned char *p = data;
  uint64_t bits = (uint64_t)len * 8;

  for (; len >= 64; p += 64, len -= 64)
    sha1_block(&s, p);
  memcpy(s.buf, p, len);
  s.buf[len++] = 0x80;
  if (len > 56) {
    memset(s.buf + len, 0, 64 - len);
    sha1_block(&s, s.buf);
    len = 0;
  }
  memset(s.buf + len, 0, 56 - len);
  for (int i = 0; i < 8; i++)
    s.buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
  sha1_block(&s, s.buf);
  for (int i = 0; i < 20; i++)
    out[i] = (unsigned char)(s.h[i / 4] >> (24 - 8 * (i % 4)));
  util_wipe(&s, sizeof s);
}

static bool scrambled_ok(const char *stored, const char *password)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(stored);
  bool ok = false;

  while (n > 0 && isspace((unsigned char)stored[n - 1]))
    n--;
  if (n == 41 && stored[0] == '*') {
    unsigned char h1[20], h2[20];
    char want[42];

    sha1(password, strlen(password), h1);
    sha1(h1, sizeof h1, h2);
    want[0] = '*';
    for (int i = 0; i < 20; i++) {
      want[1 + 2 * i] = hex[h2[i] >> 4];
      want[2 + 2 * i] = hex[h2[i] & 15];
    }
    ok = util_memeq_ct(want, stored, 41);
    util_wipe(h1, sizeof h1);
    util_wipe(want, sizeof want);
  } else if (n == 16 && strspn(stored, "0123456789abcdefABCDEF") >= 16) {
    unsigned long nr = 1345345333UL, add = 7, nr2 = 0x12345671UL, want[2] = { 0, 0 };

    for (const unsigned char *p = (const unsigned char *)password; *p; p++) {
      if (*p == ' ' || *p == '\t')
        continue;
      nr ^= (((nr & 63) + add) * *p) + (nr << 8);
      nr2 += (nr2 << 8) ^ nr;
      add += *p;
    }
    for (int i = 0; i < 16; i++) {
      char ch = (char)toupper((unsigned char)stored[i]);
      unsigned d = (unsigned)(ch <= '9' ? ch - '0' : ch - 'A' + 10);

      want[i / 8] = (want[i / 8] << 4) + d;
    }
    ok = ((nr & 0x7fffffffUL) == (want[0] & 0xffffffffUL)) &
         ((nr2 & 0x7fffffffUL) == (want[1] & 0xffffffffUL));
  }
  return ok;
}

/* ---------------------------------------------------------------------------------- */
/* The module                                                                         */

static enum auth_mod_result sql_authenticate(struct auth_ctx *ctx)
{
  /* Mailutils asks for the password of the name its authorization found. */
  const char *name = ctx->entry != NULL ? ctx->entry->name : ctx->user;
  struct sql_row r;
  const char *stored;
  enum auth_mod_result res = run(ctx, ctx->conf->sql_getpass, name, &r);

  if (res != AUTH_MOD_OK)
    return res;
  stored = r.ncols > 0 ? r.value[0] : NULL;
  if (r.nrows == 0 || r.ncols == 0) {
    ctx->error = AUTH_BAD_LOGIN;
    res = AUTH_MOD_NOUSER;
  } else if (stored == NULL || stored[0] == '\0') {
    ctx->error = "account has no password";
    res = AUTH_MOD_DENIED;
  } else {
    switch (enc_of(ctx->conf)) {
    case SQL_HASH:
      if (!auth_hash_usable(stored)) {
        ctx->error = "account has no usable password";
        res = AUTH_MOD_DENIED;
      } else {
        res = auth_check_hash(ctx, stored);
      }
      break;
    case SQL_SCRAMBLED:
      res = scrambled_ok(stored, ctx->password) ? AUTH_MOD_OK : AUTH_MOD_DENIED;
      break;
    case SQL_PLAIN:
      res = util_streq_ct(ctx->password, stored) ? AUTH_MOD_OK : AUTH_MOD_DENIED;
      break;
    }
    if (res == AUTH_MOD_DENIED && ctx->error == NULL)
      ctx->error = AUTH_BAD_LOGIN;
  }
  row_free(&r);
  return res;
}

/* A number of Mailutils' quota column: digits with k or m, or "none". */
static bool quota_valid(const char *s)
{
  size_t n = strspn(s, "0123456789");

  if (strcasecmp(s, "none") == 0)
    return true;
  return n > 0 && n <= 19 && (s[n] == '\0' || (strchr("kKmM", s[n]) && s[n + 1] == '\0'));
}

static enum auth_mod_result sql_authorize(struct auth_ctx *ctx, const char *name,
                                          struct auth_user *out)
{
  static const char *const required[] = { "name", "passwd", "uid", "gid", "dir", "shell" };
  const char *v[6], *mailbox, *quota;
  uint64_t uid, gid;
  const char *err;
  struct sql_row r;
  enum auth_mod_result res = run(ctx, ctx->conf->sql_getpwnam, name, &r);

  if (res != AUTH_MOD_OK)
    return res;
  if (r.nrows == 0) {
    row_free(&r);
    ctx->error = AUTH_BAD_LOGIN;
    return AUTH_MOD_NOUSER;
  }
  res = AUTH_MOD_TEMP;
  for (size_t i = 0; i < 6; i++)
    if (!field(ctx->conf, &r, required[i], &v[i]) || v[i] == NULL) {
      auth_set_error(ctx, "sql: getpwnam: field `%s' is missing or NULL (field-map?)",
                     required[i]);
      goto out;
    }
  if (!auth_name_valid(v[0])) {
    ctx->error = "sql: getpwnam: the name of the reply is not a valid user name";
    goto out;
  }
  if (util_parse_u64(v[2], 0, (uint64_t)UINT32_MAX - 1, &uid, &err) < 0 ||
      util_parse_u64(v[3], 0, (uint64_t)UINT32_MAX - 1, &gid, &err) < 0) {
    ctx->error = "sql: getpwnam: invalid uid or gid";
    goto out;
  }
  if (v[4][0] != '\0' && v[4][0] != '/') {
    ctx->error = "sql: getpwnam: the home directory is not an absolute path";
    goto out;
  }
  if (field(ctx->conf, &r, "quota", &quota) && quota != NULL && !quota_valid(quota)) {
    ctx->error = "sql: getpwnam: invalid quota";
    goto out;
  }
  if (!field(ctx->conf, &r, "mailbox", &mailbox) || mailbox == NULL || mailbox[0] == '\0')
    mailbox = NULL;
  else if (strlen(mailbox) > PARAMS_MAILBOX_URL_MAX) {
    ctx->error = "sql: getpwnam: the mailbox is too long";
    goto out;
  }
  out->name = util_xstrdup(v[0]);
  out->passwd = util_xstrdup(v[1]);
  out->uid = (uid_t)uid;
  out->gid = (gid_t)gid;
  out->home = util_xstrdup(v[4]);
  out->mailbox = mailbox != NULL ? util_xstrdup(mailbox) : NULL;
  res = AUTH_MOD_OK;
out:
  row_free(&r);
  return res;
}

static const struct auth_module sql_module = {
  .name = "sql",
  .authenticate = sql_authenticate,
  .authorize = sql_authorize,
  .release = db_close,
};

POP3D_MODULE_EXPORT const struct pop3d_module pop3d_module = {
  POP3D_MODULE_HEADER("sql"),
  .auth = &sql_module,
};

#else /* pop3d */

/* ---------------------------------------------------------------------------------- */
/* Configuration checks                                                               */

static bool iface_built(enum sql_iface i)
{
  switch (i) {
#ifdef HAVE_MYSQL
  case SQL_MYSQL:
    return true;
#endif
#ifdef HAVE_PGSQL
  case SQL_POSTGRES:
    return true;
#endif
  default:
    return false;
  }
}

bool auth_sql_usable(const struct conf *c, bool authz)
{
  return iface_built(iface_of(c)) &&
         (authz ? c->sql_getpwnam != NULL : c->sql_getpass != NULL);
}

static bool selected(const struct conf *c, bool authz)
{
  const struct conf_strlist *l = authz ? &c->authorization : &c->authentication;
  bool on = false;

  for (size_t i = 0; i < l->n; i++) {
    if (strcmp(l->v[i], "clear") == 0)
      on = false;
    else if (strcmp(l->v[i], "sql") == 0)
      on = true;
  }
  return on;
}

static int check_query(const struct conf *c, const char *where, const char *what,
                       const char *q, FILE *err)
{
  size_t len;

  (void)c;
  if (strlen(q) > SQL_QUERY_MAX) {
    fprintf(err, "%s: sql: %s: the query is longer than %d bytes\n", where, what,
            SQL_QUERY_MAX);
    return 1;
  }
  for (const char *p = strchr(q, '$'); p != NULL; p = strchr(p + len, '$')) {
    len = 1;
    if (!dollar_literal(p) && placeholder(p, &len) == PART_BAD) {
      fprintf(err, "%s: sql: %s: `%.24s' can't be expanded (only $user, ${user}, "
              "$(localpart $user) and $(domainpart $user))\n", where, what, p);
      return 1;
    }
  }
  return 0;
}

int auth_sql_conf_check(const struct conf *c, FILE *err)
{
  const char *where = c->sql_where != NULL ? c->sql_where : "auth";
  bool authz = selected(c, true), authn = selected(c, false);
  enum sql_iface i = iface_of(c);
  int n = 0;

  for (size_t k = 0; k < c->sql_field_map.n; k++) {
    const char *d = c->sql_field_map.v[k], *eq = strchr(d, '=');

    /* Mailutils' form, one string of NAME=COLUMN separated by colons, is split here. */
    if (strchr(d, ':') != NULL) {
      for (const char *p = d; *p != '\0';) {
        size_t l = strcspn(p, ":");
        const char *e = memchr(p, '=', l);

        if (e == NULL || e == p || e + 1 == p + l) {
          fprintf(err, "%s: sql: field-map: `%.*s' is not NAME=COLUMN\n", where,
                  (int)(l < 64 ? l : 64), p);
          n++;
        }
        p += l + (p[l] == ':');
      }
    } else if (eq == NULL || eq == d || eq[1] == '\0') {
      fprintf(err, "%s: sql: field-map: `%.64s' is not NAME=COLUMN\n", where, d);
      n++;
    }
  }
  if (!authz && !authn)
    return n;
  if (i == SQL_NONE) {
    fprintf(err, "%s: sql: the auth lists select sql, but no `interface' (mysql or "
            "postgres) is set\n", where);
    return n + 1;
  }
  if (i == SQL_ODBC) {
    fprintf(err, "%s: sql: interface `odbc' is not supported by pop3d; use mysql or "
            "postgres\n", where);
    return n + 1;
  }
  if (!iface_built(i)) {
    fprintf(err, "%s: sql: interface `%s' is not built into pop3d (configure %s)\n", where,
            c->sql_interface, i == SQL_MYSQL ? "--with-mysql" : "--with-postgres");
    return n + 1;
  }
  if (authz && c->sql_getpwnam == NULL) {
    fprintf(err, "%s: sql: `authorization sql' needs a getpwnam query\n", where);
    n++;
  }
  if (authn && c->sql_getpass == NULL) {
    fprintf(err, "%s: sql: `authentication sql' needs a getpass query\n", where);
    n++;
  }
  if (c->sql_getpwnam != NULL)
    n += check_query(c, where, "getpwnam", c->sql_getpwnam, err);
  if (c->sql_getpass != NULL)
    n += check_query(c, where, "getpass", c->sql_getpass, err);
  if (c->sql_param.n > SQL_PARAMS_MAX) {
    fprintf(err, "%s: sql: more than %d param values\n", where, SQL_PARAMS_MAX);
    n++;
  }
  for (size_t k = 0; k < c->sql_param.n; k++) {
    const char *p = c->sql_param.v[k], *eq = strchr(p, '=');

    if (eq == NULL || eq == p ||
        (i == SQL_MYSQL && strncmp(p, "default-file=", 13) != 0 &&
         strncmp(p, "default-group=", 14) != 0)) {
      fprintf(err, "%s: sql: param `%.64s': %s\n", where, p,
              i == SQL_MYSQL ? "mysql takes default-file=FILE or default-group=NAME"
                             : "not KEYWORD=VALUE (libpq's connection keywords)");
      n++;
    }
  }
  return n;
}

#endif /* POP3D_MODULE */
