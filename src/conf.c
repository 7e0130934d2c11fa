/* conf.c - pop3d.conf: lexer, parser, statement table, --set and --config-help.
 *
 * The grammar is that of GNU Mailutils 3.15 (COMPAT.md, Appendix A).  A file is read
 * whole (at most PARAMS_CONF_FILE_MAX bytes) and parsed one top-level statement at a
 * time into a small tree, which is applied through the declarative statement table and
 * freed at once.  Applying each statement as soon as it is parsed keeps Mailutils' file
 * order (a server block takes the `timeout' and `port' written before it, an `include'
 * is spliced in place) and bounds memory by the largest single statement.
 *
 * --set builds the same tree from its path and runs it through the same table, so each
 * statement is implemented once.
 *
 * Every error is "FILE:LINE: message"; the parser resynchronises at the next `;' or at
 * the `}' of the enclosing block, so one run lists all the errors of a file.  There is
 * no global mutable state: one struct load per conf_load_* call, one struct parser per
 * file.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "auth_ldap.h"
#include "auth_sql.h"
#include "conf.h"
#include "log.h"
#include "params.h"
#include "tls.h"
#include "util.h"

#ifndef SYSCONFDIR
# define SYSCONFDIR "/etc"
#endif


/* Offset of a statement that is checked but not stored (features pop3d does not build). */
#define NOSTORE ((size_t)-1)

/* ---------------------------------------------------------------------------------- */
/* Error reporting                                                                    */

/* One configuration load: a file with its includes, or one --set. */
struct load {
  struct conf *c;
  FILE *err;
  int errors;
  bool stop;                 /* too many errors: parse no further */
  bool from_set;             /* --set: a tagged block selects an existing one */
  unsigned include_depth;
};

static void report(struct load *L, const char *file, unsigned line, const char *fmt, ...)
  PRINTF(4, 5);

/* One line "FILE:LINE: KIND: message" ("--set: " when file is NULL: the statement came
 * from --set and has no line; kind "" for an error). */
static void say(FILE *err, const char *file, unsigned line, const char *kind,
                const char *fmt, va_list ap)
{
  if (file != NULL)
    fprintf(err, "%s:%u: %s", file, line, kind);
  else
    fprintf(err, "--set: %s", kind);
  vfprintf(err, fmt, ap);
  fputc('\n', err);
}

static void report(struct load *L, const char *file, unsigned line, const char *fmt, ...)
{
  va_list ap;

  if (L->stop)
    return;
  va_start(ap, fmt);
  say(L->err, file, line, "", fmt, ap);
  va_end(ap);
  if (++L->errors >= PARAMS_CONF_ERRORS_MAX) {
    fprintf(L->err, "%s: too many errors, giving up\n", file != NULL ? file : "--set");
    L->stop = true;
  }
}

/* ---------------------------------------------------------------------------------- */
/* Small helpers                                                                      */

/* Locale-free classes: the grammar is ASCII whatever LC_CTYPE says. */
static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static bool is_alpha(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
static bool is_alnum(int ch) { return is_alpha(ch) || is_digit(ch); }

/* Characters of an unquoted string: Mailutils' [A-Za-z0-9_./:*=@-], plus `+' (so that
 * a safety list reads `+gwrfil' unquoted) and `[' `]' (so that `[::1]:110' needs no
 * quotes).  Both only accept text Mailutils rejects. */
static bool is_word_char(int ch)
{
  return is_alnum(ch) || (ch != '\0' && strchr("_./:*=@-+[]", ch) != NULL);
}

/* IDENT: [A-Za-z_][A-Za-z0-9_-]+, so at least two characters, as Mailutils. */
static bool is_ident(const char *s)
{
  if (!(is_alpha((unsigned char)s[0]) || s[0] == '_') || s[1] == '\0')
    return false;
  for (const char *q = s + 1; *q; q++)
    if (!(is_alnum((unsigned char)*q) || *q == '_' || *q == '-'))
      return false;
  return true;
}

/* A growing byte buffer; its size is bounded by the input it copies from. */
struct buf {
  char *p;
  size_t n, cap;
};

/* The configuration holds secrets (the passwd of the sql and ldap blocks, sql param
 * values).  Every buffer this file frees or outgrows is wiped first, so that a process
 * forked from the one that read the configuration finds them only in struct conf, where
 * conf_forget_secrets() ends them. */
static void wipe_free(void *p)
{
  if (p != NULL) {
    util_wipe(p, malloc_usable_size(p));
    free(p);
  }
}

/* util_xreallocarray() that leaves no copy behind in the block it outgrew. */
static void *wipe_reallocarray(void *p, size_t n, size_t size)
{
  void *q = util_xreallocarray(NULL, n, size);

  if (p != NULL) {
    size_t old = malloc_usable_size(p);

    memcpy(q, p, old < n * size ? old : n * size);
    wipe_free(p);
  }
  return q;
}

/* Room for n more bytes and a terminating NUL. */
static void buf_reserve(struct buf *b, size_t n)
{
  size_t need;

  if (!util_add_size(b->n, n, &need) || !util_add_size(need, 1, &need)) {
    fputs("pop3d: configuration value too large\n", stderr);
    abort();
  }
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
      if (!util_mul_size(cap, 2, &cap))
        cap = need;
    b->p = wipe_reallocarray(b->p, cap, 1);
    b->cap = cap;
  }
}

static void buf_addn(struct buf *b, const char *s, size_t n)
{
  buf_reserve(b, n);
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void buf_add(struct buf *b, char ch)
{
  buf_addn(b, &ch, 1);
}

static char *buf_finish(struct buf *b)
{
  buf_addn(b, "", 0);
  b->p[b->n] = '\0';
  return b->p;
}

/* Make room for one more element of an array that grows by doubling. */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
  if (n < *cap)
    return v;
  *cap = *cap ? *cap * 2 : 4;
  return wipe_reallocarray(v, *cap, size);
}

static void set_str(char **dst, const char *s)
{
  wipe_free(*dst);
  *dst = util_xstrdup(s);
}

static void strlist_free(struct conf_strlist *l)
{
  for (size_t i = 0; i < l->n; i++)
    wipe_free(l->v[i]);
  wipe_free(l->v);
  l->v = NULL;
  l->n = 0;
}

static void strlist_push(struct conf_strlist *l, size_t *cap, const char *s)
{
  l->v = grow(l->v, cap, l->n, sizeof *l->v);
  l->v[l->n++] = util_xstrdup(s);
}

static const char *sysconfdir(const struct conf *c)
{
  return c->sysconfdir != NULL ? c->sysconfdir : SYSCONFDIR;
}

/* ---------------------------------------------------------------------------------- */
/* Typed values (exported: the command line parses the same words)                   */

int conf_parse_bool(const char *s, bool *out, const char **error_r)
{
  static const char *const yes[] = { "yes", "on", "t", "true", "1" };
  static const char *const no[] = { "no", "off", "nil", "false", "0" };

  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcmp(s, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcmp(s, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  *error_r = "expected a boolean (yes/no, on/off, true/false, t/nil, 1/0)";
  return -1;
}

/* "N [unit] ..." summed; units by case-insensitive prefix in this order, so `m' is
 * minutes and `mo' months.  Mailutils requires a blank between number and unit; "2h"
 * is accepted as well.  A month is 31 days (Mailutils computes 217 days, a bug). */
int conf_parse_interval(const char *s, unsigned *out, const char **error_r)
{
  static const struct { const char *name; unsigned secs; } units[] = {
    { "seconds", 1 }, { "minutes", 60 }, { "hours", 3600 }, { "days", 86400 },
    { "weeks", 7 * 86400 }, { "months", 31 * 86400 },
  };
  uint64_t total = 0;
  bool any = false;
  const char *p = s;

  for (;;) {
    uint64_t n = 0, mult = 1;

    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
      p++;
    if (*p == '\0')
      break;
    if (!is_digit((unsigned char)*p)) {
      *error_r = "invalid time specification";
      return -1;
    }
    for (; is_digit((unsigned char)*p); p++) {
      n = n * 10 + (uint64_t)(*p - '0');
      if (n > UINT_MAX) {
        *error_r = "time interval too large";
        return -1;
      }
    }
    while (*p == ' ' || *p == '\t')
      p++;
    if (is_alpha((unsigned char)*p)) {
      const char *u = p;
      size_t len, i;

      while (is_alpha((unsigned char)*p))
        p++;
      len = (size_t)(p - u);
      for (i = 0; i < sizeof units / sizeof units[0]; i++)
        if (len <= strlen(units[i].name) && util_strncasecmp(u, units[i].name, len) == 0)
          break;
      if (i == sizeof units / sizeof units[0]) {
        *error_r = "invalid time unit (seconds, minutes, hours, days, weeks, months)";
        return -1;
      }
      mult = units[i].secs;
    }
    total += n * mult;        /* n <= UINT_MAX, mult < 2^22: no overflow of uint64_t */
    if (total > UINT_MAX) {
      *error_r = "time interval too large";
      return -1;
    }
    any = true;
  }
  if (!any) {
    *error_r = "empty time interval";
    return -1;
  }
  *out = (unsigned)total;
  return 0;
}

int conf_parse_tls_mode(const char *s, enum conf_tls_mode *out, const char **error_r)
{
  static const struct { const char *name; enum conf_tls_mode mode; } modes[] = {
    { "no", CONF_TLS_NO }, { "false", CONF_TLS_NO }, { "off", CONF_TLS_NO },
    { "0", CONF_TLS_NO }, { "ondemand", CONF_TLS_ONDEMAND }, { "stls", CONF_TLS_ONDEMAND },
    { "required", CONF_TLS_REQUIRED }, { "connection", CONF_TLS_CONNECTION },
    { "yes", CONF_TLS_CONNECTION }, { "true", CONF_TLS_CONNECTION },
    { "on", CONF_TLS_CONNECTION }, { "1", CONF_TLS_CONNECTION },
  };

  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
    if (strcmp(s, modes[i].name) == 0) {
      *out = modes[i].mode;
      return 0;
    }
  *error_r = "expected a TLS mode (no, ondemand, stls, required, connection)";
  return -1;
}

/* A decimal port or a service name of /etc/services. */
static int parse_port(const char *s, unsigned *out, const char **error_r)
{
  const struct servent *se;

  if (is_digit((unsigned char)s[0]))
    return util_parse_uint(s, 1, 65535, out, error_r);
  se = getservbyname(s, "tcp");
  if (se == NULL) {
    *error_r = "unknown port or service name";
    return -1;
  }
  *out = ntohs((uint16_t)se->s_port);
  return 0;
}

/* A host name as DNS allows it (letters, digits, `-', `.', and `_' seen in practice). */
static bool valid_hostname(const char *s)
{
  size_t n = strlen(s);

  if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
    return false;
  for (const char *q = s; *q; q++)
    if (!(is_alnum((unsigned char)*q) || *q == '-' || *q == '.' || *q == '_'))
      return false;
  return true;
}

/* ACL address: `any', an IPv4/IPv6 address, addr/len, IPv4 addr/netmask, or a host. */
static bool valid_acl_addr(const char *s)
{
  char host[256];
  const char *slash = strchr(s, '/');
  size_t hl = slash ? (size_t)(slash - s) : strlen(s);
  unsigned char a[16];
  unsigned len;
  const char *err;

  if (strcmp(s, "any") == 0)
    return true;
  if (hl == 0 || hl >= sizeof host)
    return false;
  memcpy(host, s, hl);
  host[hl] = '\0';
  if (inet_pton(AF_INET, host, a) == 1) {
    if (slash == NULL)
      return true;
    return util_parse_uint(slash + 1, 0, 32, &len, &err) == 0 ||
      inet_pton(AF_INET, slash + 1, a) == 1;
  }
  if (inet_pton(AF_INET6, host, a) == 1)
    return slash == NULL || util_parse_uint(slash + 1, 0, 128, &len, &err) == 0;
  return slash == NULL && valid_hostname(host);
}

/* server ADDR[:PORT]: "127.0.0.1:2110", "[::1]:1110", "::1", "0.0.0.0", "host:pop3",
 * or an absolute path (a UNIX socket).  Without a port, the `port' given so far. */
static int parse_server_addr(const char *s, unsigned defport, char **addr_r, unsigned *port_r,
                             const char **error_r)
{
  const char *port = NULL;
  size_t alen;
  unsigned char a[16];
  char *addr;

  if (s[0] == '/') {
    if (strlen(s) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
      *error_r = "UNIX socket path too long";
      return -1;
    }
    *addr_r = util_xstrdup(s);
    *port_r = 0;
    return 0;
  }
  if (s[0] == '[') {
    const char *close = strchr(s, ']');

    if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
      *error_r = "malformed [IPv6]:port address";
      return -1;
    }
    addr = util_xstrndup(s + 1, (size_t)(close - s - 1));
    if (close[1] == ':')
      port = close + 2;
    if (inet_pton(AF_INET6, addr, a) != 1) {
      wipe_free(addr);
      *error_r = "invalid IPv6 address";
      return -1;
    }
  } else {
    const char *colon = strchr(s, ':');

    if (colon != NULL && strchr(colon + 1, ':') == NULL) {
      alen = (size_t)(colon - s);
      port = colon + 1;
    } else {
      alen = strlen(s);        /* no colon, or a bare IPv6 address without a port */
    }
    addr = util_xstrndup(s, alen);
    if (inet_pton(AF_INET, addr, a) != 1 && inet_pton(AF_INET6, addr, a) != 1 &&
        !valid_hostname(addr)) {
      wipe_free(addr);
      *error_r = "invalid address (expected IPv4, [IPv6], a host name or /path)";
      return -1;
    }
  }
  if (port != NULL) {
    if (parse_port(port, port_r, error_r) < 0) {
      wipe_free(addr);
      return -1;
    }
  } else {
    *port_r = defport;
  }
  *addr_r = addr;
  return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Lexer                                                                              */

enum tok_type {
  TOK_EOF, TOK_ERROR, TOK_WORD, TOK_QSTRING, TOK_HEREDOC,
  TOK_SEMI, TOK_LBRACE, TOK_RBRACE, TOK_LPAREN, TOK_RPAREN, TOK_COMMA,
};

struct token {
  enum tok_type type;
  unsigned line;
  bool ident;                /* TOK_WORD that may be a keyword */
  char *text;                /* TOK_WORD, TOK_QSTRING, TOK_HEREDOC; owned */
};

struct parser {
  struct load *L;
  const char *file;
  const char *src;
  size_t len, pos;
  unsigned line;
  struct token peeked;
  bool have_peek;
  bool quiet;                /* resynchronising: one error per broken statement */
};

/* Skip blanks and comments.  -1 on an unterminated comment (reported when loud). */
static int skip_blank(struct parser *p, bool loud)
{
  while (p->pos < p->len) {
    char ch = p->src[p->pos];
    char nx = p->pos + 1 < p->len ? p->src[p->pos + 1] : '\0';

    if (ch == '\n') {
      p->line++;
      p->pos++;
    } else if (ch == ' ' || ch == '\t' || ch == '\f' || ch == '\r' || ch == '\v') {
      p->pos++;              /* \r: a file edited on Windows must still parse */
    } else if (ch == '#' || (ch == '/' && nx == '/')) {
      const char *nl = memchr(p->src + p->pos, '\n', p->len - p->pos);
      p->pos = nl != NULL ? (size_t)(nl - p->src) : p->len;
    } else if (ch == '/' && nx == '*') {
      unsigned lines = 0;
      size_t i;

      for (i = p->pos + 2; i + 1 < p->len; i++) {
        if (p->src[i] == '*' && p->src[i + 1] == '/')
          break;
        if (p->src[i] == '\n')
          lines++;
      }
      if (i + 1 >= p->len) {
        if (loud)
          report(p->L, p->file, p->line, "unterminated comment");
        return -1;
      }
      p->line += lines;
      p->pos = i + 2;
    } else {
      break;
    }
  }
  return 0;
}

/* C escape letters of Mailutils' quoted strings; -1 for the others. */
static int escape_char(char ch)
{
  switch (ch) {
  case 'a': return '\a';
  case 'b': return '\b';
  case 'f': return '\f';
  case 'n': return '\n';
  case 'r': return '\r';
  case 't': return '\t';
  case 'v': return '\v';
  case '\\': return '\\';
  case '"': return '"';
  default: return -1;
  }
}

/* Unknown escapes are kept as written (Mailutils accepts them silently), so that a
 * regular expression's `\d' survives. */
static void unescape_into(struct buf *b, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 1 < n) {
      int e = escape_char(s[i + 1]);

      if (s[i + 1] == '\n') {
        i++;
        continue;
      }
      if (e >= 0) {
        buf_add(b, (char)e);
        i++;
        continue;
      }
    }
    buf_add(b, s[i]);
  }
}

static struct token lex_qstring(struct parser *p)
{
  struct token t = { TOK_QSTRING, p->line, false, NULL };
  struct buf b = { NULL, 0, 0 };
  bool nul = false;

  for (;;) {
    unsigned start = p->line;
    size_t save_pos;
    unsigned save_line;

    p->pos++;                          /* the opening quote */
    for (;;) {
      char ch;

      if (p->pos >= p->len) {
        report(p->L, p->file, start, "unterminated quoted string");
        wipe_free(b.p);
        t.type = TOK_ERROR;
        return t;
      }
      ch = p->src[p->pos++];
      if (ch == '"')
        break;
      if (ch == '\0') {
        nul = true;
        continue;
      }
      if (ch == '\n')
        p->line++;
      if (ch == '\\' && p->pos < p->len) {
        char nx = p->src[p->pos++];
        int e = escape_char(nx);

        if (nx == '\n') {              /* line continuation */
          p->line++;
        } else if (e >= 0) {
          buf_add(&b, (char)e);
        } else if (nx == '\0') {
          nul = true;
        } else {
          buf_add(&b, '\\');
          buf_add(&b, nx);
        }
        continue;
      }
      buf_add(&b, ch);
    }
    /* "pop" "3d" is one string. */
    save_pos = p->pos;
    save_line = p->line;
    if (skip_blank(p, false) == 0 && p->pos < p->len && p->src[p->pos] == '"')
      continue;
    p->pos = save_pos;
    p->line = save_line;
    break;
  }
  if (nul) {
    report(p->L, p->file, t.line, "NUL byte in quoted string");
    wipe_free(b.p);
    t.type = TOK_ERROR;
    return t;
  }
  t.text = buf_finish(&b);
  return t;
}

static bool is_blank_char(char ch)
{
  return ch == ' ' || ch == '\t' || ch == '\r';
}

/* <<WORD, <<-WORD (strip leading tabs), <<- WORD (strip leading blanks), <<\WORD and
 * <<"WORD" (no escapes).  The body ends at a line holding only WORD (a `;' may follow
 * it); the value keeps its last newline, as in Mailutils. */
static struct token lex_heredoc(struct parser *p)
{
  struct token t = { TOK_HEREDOC, p->line, false, NULL };
  struct buf b = { NULL, 0, 0 };
  int strip = 0;
  bool raw = false, quoted = false, nul = false;
  size_t w0, wl;
  const char *word;

  p->pos += 2;
  if (p->pos < p->len && p->src[p->pos] == '-') {
    p->pos++;
    strip = 1;
    if (p->pos < p->len && (p->src[p->pos] == ' ' || p->src[p->pos] == '\t')) {
      strip = 2;
      while (p->pos < p->len && (p->src[p->pos] == ' ' || p->src[p->pos] == '\t'))
        p->pos++;
    }
  }
  if (p->pos < p->len && p->src[p->pos] == '\\') {
    raw = true;
    p->pos++;
  } else if (p->pos < p->len && p->src[p->pos] == '"') {
    raw = quoted = true;
    p->pos++;
  }
  w0 = p->pos;
  while (p->pos < p->len && (is_alnum((unsigned char)p->src[p->pos]) || p->src[p->pos] == '_'))
    p->pos++;
  wl = p->pos - w0;
  if (quoted) {
    if (p->pos < p->len && p->src[p->pos] == '"')
      p->pos++;
    else
      wl = 0;
  }
  while (p->pos < p->len && is_blank_char(p->src[p->pos]))
    p->pos++;
  if (wl == 0 || (p->pos < p->len && p->src[p->pos] != '\n')) {
    report(p->L, p->file, t.line, wl == 0 ? "here-document: missing delimiter word"
           : "here-document: text after the delimiter word");
    goto fail;
  }
  if (p->pos >= p->len)
    goto unterminated;
  p->pos++;
  p->line++;
  word = p->src + w0;
  for (;;) {
    size_t ls = p->pos, le, s;
    const char *nl;

    if (ls >= p->len)
      goto unterminated;
    nl = memchr(p->src + ls, '\n', p->len - ls);
    le = nl != NULL ? (size_t)(nl - p->src) : p->len;
    s = ls;
    if (strip == 1)
      while (s < le && p->src[s] == '\t')
        s++;
    else if (strip == 2)
      while (s < le && (p->src[s] == ' ' || p->src[s] == '\t'))
        s++;
    if (le - s >= wl && memcmp(p->src + s, word, wl) == 0) {
      size_t r = s + wl;

      while (r < le && is_blank_char(p->src[r]))
        r++;
      if (r == le) {
        p->pos = nl != NULL ? le + 1 : le;
        if (nl != NULL)
          p->line++;
        break;
      }
      if (p->src[r] == ';') {          /* the statement's `;' is lexed next */
        p->pos = r;
        break;
      }
    }
    if (nl == NULL)
      goto unterminated;
    if (memchr(p->src + s, '\0', le - s) != NULL)
      nul = true;
    buf_addn(&b, p->src + s, le - s);
    buf_add(&b, '\n');
    p->pos = le + 1;
    p->line++;
  }
  if (nul) {
    report(p->L, p->file, t.line, "NUL byte in here-document");
    wipe_free(b.p);
    t.type = TOK_ERROR;
    return t;
  }
  buf_finish(&b);
  if (raw) {
    t.text = b.p;
  } else {
    struct buf u = { NULL, 0, 0 };

    unescape_into(&u, b.p, b.n);
    wipe_free(b.p);
    t.text = buf_finish(&u);
  }
  return t;

unterminated:
  report(p->L, p->file, t.line, "unterminated here-document (no line `%.*s')",
         (int)(wl < 64 ? wl : 64), p->src + w0);
  p->pos = p->len;
fail:
  wipe_free(b.p);
  t.type = TOK_ERROR;
  return t;
}

static struct token lex(struct parser *p)
{
  struct token t = { TOK_EOF, p->line, false, NULL };
  unsigned char ch;

  if (p->L->stop)
    return t;
  if (skip_blank(p, true) < 0) {
    p->pos = p->len;
    t.type = TOK_ERROR;
    return t;
  }
  t.line = p->line;
  if (p->pos >= p->len)
    return t;
  ch = (unsigned char)p->src[p->pos];
  switch (ch) {
  case ';': t.type = TOK_SEMI; p->pos++; return t;
  case '{': t.type = TOK_LBRACE; p->pos++; return t;
  case '}': t.type = TOK_RBRACE; p->pos++; return t;
  case '(': t.type = TOK_LPAREN; p->pos++; return t;
  case ')': t.type = TOK_RPAREN; p->pos++; return t;
  case ',': t.type = TOK_COMMA; p->pos++; return t;
  case '"': return lex_qstring(p);
  case '<':
    if (p->pos + 1 < p->len && p->src[p->pos + 1] == '<')
      return lex_heredoc(p);
    break;
  default:
    break;
  }
  if (is_word_char(ch)) {
    size_t s = p->pos;

    while (p->pos < p->len && is_word_char((unsigned char)p->src[p->pos]))
      p->pos++;
    t.type = TOK_WORD;
    t.text = util_xstrndup(p->src + s, p->pos - s);
    t.ident = is_ident(t.text);
    return t;
  }
  if (!p->quiet) {
    if (ch > 0x20 && ch < 0x7f)
      report(p->L, p->file, t.line, "stray character `%c'", ch);
    else
      report(p->L, p->file, t.line, "stray character \\x%02x", ch);
  }
  p->pos++;
  t.type = TOK_ERROR;
  return t;
}

static struct token next(struct parser *p)
{
  if (p->have_peek) {
    p->have_peek = false;
    return p->peeked;
  }
  return lex(p);
}

static void unget(struct parser *p, struct token t)
{
  p->peeked = t;
  p->have_peek = true;
}

static const char *tok_name(const struct token *t, char *buf, size_t size)
{
  switch (t->type) {
  case TOK_EOF: return "end of file";
  case TOK_ERROR: return "invalid input";
  case TOK_WORD: snprintf(buf, size, "`%.40s'", t->text); return buf;
  case TOK_QSTRING: return "quoted string";
  case TOK_HEREDOC: return "here-document";
  case TOK_SEMI: return "`;'";
  case TOK_LBRACE: return "`{'";
  case TOK_RBRACE: return "`}'";
  case TOK_LPAREN: return "`('";
  case TOK_RPAREN: return "`)'";
  case TOK_COMMA: return "`,'";
  }
  return "?";
}

/* ---------------------------------------------------------------------------------- */
/* Parser: one statement into a tree                                                  */

enum value_type { VAL_STRING, VAL_LIST };

struct value {
  enum value_type type;
  unsigned line;
  char *s;                   /* VAL_STRING */
  struct value *items;       /* VAL_LIST */
  size_t n, cap;
};

struct node {
  char *name;
  const char *file;          /* NULL: from --set */
  unsigned line;
  struct value *vals;        /* statement values, or a block's tag */
  size_t nvals, vcap;
  bool block;
  struct node *kids;
  size_t nkids, kcap;
};

static void value_free(struct value *v)
{
  if (v->type == VAL_STRING) {
    wipe_free(v->s);
  } else {
    for (size_t i = 0; i < v->n; i++)
      value_free(&v->items[i]);
    wipe_free(v->items);
  }
  memset(v, 0, sizeof *v);
}

static void node_free(struct node *nd)
{
  wipe_free(nd->name);
  for (size_t i = 0; i < nd->nvals; i++)
    value_free(&nd->vals[i]);
  wipe_free(nd->vals);
  for (size_t i = 0; i < nd->nkids; i++)
    node_free(&nd->kids[i]);
  wipe_free(nd->kids);
  memset(nd, 0, sizeof *nd);
}

/* Skip the rest of a broken statement: past its `;', past the balanced block it opened,
 * or up to (not past) the `}' closing the enclosing block, so that one mistake costs
 * one statement.  Iterative: a hostile nest of braces does not recurse.  t is the
 * offending token, already read. */
static void recover(struct parser *p, struct token t)
{
  size_t depth = 0;

  p->quiet = true;
  for (;;) {
    if (t.type == TOK_EOF || (t.type == TOK_RBRACE && depth == 0)) {
      unget(p, t);
      break;
    }
    if (t.type == TOK_SEMI && depth == 0)
      break;
    if (t.type == TOK_LBRACE)
      depth++;
    if (t.type == TOK_RBRACE && --depth == 0)
      break;
    wipe_free(t.text);
    t = next(p);
  }
  p->quiet = false;
}

/* Report t as unexpected (unless the lexer already did) and resynchronise. */
static void syntax_error(struct parser *p, struct token t, const char *what)
{
  char buf[64];

  if (t.type != TOK_ERROR)
    report(p->L, p->file, t.line, "syntax error: unexpected %s%s", tok_name(&t, buf, sizeof buf),
           what);
  recover(p, t);
}

static bool is_value_start(enum tok_type type)
{
  return type == TOK_WORD || type == TOK_QSTRING || type == TOK_HEREDOC || type == TOK_LPAREN;
}

/* t is the first token of the value.  On error the statement has been skipped. */
static int parse_value(struct parser *p, struct token t, unsigned depth, struct value *out)
{
  memset(out, 0, sizeof *out);
  out->line = t.line;
  if (t.type != TOK_LPAREN) {
    out->type = VAL_STRING;
    out->s = t.text;
    return 0;
  }
  out->type = VAL_LIST;
  if (depth >= PARAMS_CONF_BLOCK_DEPTH) {
    report(p->L, p->file, t.line, "lists nested too deeply");
    recover(p, t);
    return -1;
  }
  for (;;) {
    struct token u = next(p);

    if (!is_value_start(u.type)) {
      syntax_error(p, u, out->n == 0 && u.type == TOK_RPAREN ? " (empty list)" : " in list");
      value_free(out);
      return -1;
    }
    if (out->n >= PARAMS_CONF_VALUES_MAX) {
      report(p->L, p->file, u.line, "too many list items (limit %d)", PARAMS_CONF_VALUES_MAX);
      recover(p, u);
      value_free(out);
      return -1;
    }
    out->items = grow(out->items, &out->cap, out->n, sizeof *out->items);
    if (parse_value(p, u, depth + 1, &out->items[out->n]) < 0) {
      value_free(out);
      return -1;
    }
    out->n++;
    u = next(p);
    if (u.type == TOK_RPAREN)
      return 0;
    if (u.type == TOK_COMMA) {
      struct token w = next(p);

      if (w.type == TOK_RPAREN)        /* trailing comma */
        return 0;
      unget(p, w);
      continue;
    }
    syntax_error(p, u, " in list (expected `,' or `)')");
    value_free(out);
    return -1;
  }
}

static int parse_stmt(struct parser *p, struct token t, unsigned depth, struct node *nd);

/* Statements up to the closing `}' (consumed): true, or end of file: false. */
static bool parse_body(struct parser *p, unsigned depth, struct node *parent)
{
  for (;;) {
    struct token t = next(p);
    struct node nd;

    if (t.type == TOK_EOF) {
      unget(p, t);
      return false;
    }
    if (t.type == TOK_RBRACE)
      return true;
    if (t.type == TOK_SEMI || t.type == TOK_ERROR)   /* TOK_ERROR: already reported */
      continue;
    if (parse_stmt(p, t, depth, &nd) < 0)
      continue;
    if (parent->nkids >= PARAMS_CONF_STMTS_MAX) {
      report(p->L, p->file, nd.line, "too many statements in block `%s'", parent->name);
      node_free(&nd);
      continue;
    }
    parent->kids = grow(parent->kids, &parent->kcap, parent->nkids, sizeof *parent->kids);
    parent->kids[parent->nkids++] = nd;
  }
}

/* t is the statement's keyword.  0 with *nd filled, or -1 (reported, skipped). */
static int parse_stmt(struct parser *p, struct token t, unsigned depth, struct node *nd)
{
  memset(nd, 0, sizeof *nd);
  if (t.type != TOK_WORD || !t.ident) {
    syntax_error(p, t, t.type == TOK_WORD ? " (a keyword has at least 2 characters: "
                 "letters, digits, `_', `-')" : " (expected a statement)");
    return -1;
  }
  nd->name = t.text;
  nd->line = t.line;
  nd->file = p->file;
  for (;;) {
    struct token u = next(p);

    switch (u.type) {
    case TOK_WORD:
    case TOK_QSTRING:
    case TOK_HEREDOC:
    case TOK_LPAREN:
      if (nd->nvals >= PARAMS_CONF_VALUES_MAX) {
        report(p->L, p->file, u.line, "too many values (limit %d)", PARAMS_CONF_VALUES_MAX);
        recover(p, u);
        goto fail;
      }
      nd->vals = grow(nd->vals, &nd->vcap, nd->nvals, sizeof *nd->vals);
      if (parse_value(p, u, 0, &nd->vals[nd->nvals]) < 0)
        goto fail;
      nd->nvals++;
      break;
    case TOK_SEMI:
      if (nd->nvals == 0) {
        report(p->L, p->file, nd->line, "`%s' needs a value", nd->name);
        goto fail;
      }
      return 0;
    case TOK_LBRACE:
      if (depth + 1 >= PARAMS_CONF_BLOCK_DEPTH) {
        report(p->L, p->file, u.line, "blocks nested too deeply (limit %d)",
               PARAMS_CONF_BLOCK_DEPTH);
        recover(p, u);
        goto fail;
      }
      nd->block = true;
      if (!parse_body(p, depth + 1, nd)) {
        report(p->L, p->file, p->line, "end of file in block `%s' opened at line %u "
               "(missing `}')", nd->name, nd->line);
        return 0;
      }
      u = next(p);                     /* the `;' after `}' is optional */
      if (u.type != TOK_SEMI)
        unget(p, u);
      return 0;
    case TOK_RBRACE:
      /* Point at the statement's last value, where the `;' belongs. */
      report(p->L, p->file, nd->nvals ? nd->vals[nd->nvals - 1].line : nd->line,
             "missing `;' after `%s'", nd->name);
      unget(p, u);
      goto fail;
    case TOK_EOF:
      report(p->L, p->file, u.line, "end of file in statement `%s' (missing `;')", nd->name);
      unget(p, u);
      goto fail;
    default:
      syntax_error(p, u, "");
      goto fail;
    }
  }
fail:
  node_free(nd);
  return -1;
}

/* ---------------------------------------------------------------------------------- */
/* Statement table                                                                    */

enum stmt_type {
  ST_STRING, ST_BOOL, ST_UINT, ST_SIZE, ST_LONG, ST_INTERVAL, ST_STRLIST, ST_CHECKS,
  ST_TLSMODE, ST_PORT, ST_FACILITY, ST_SEVERITY, ST_KEYWORD, ST_CALLBACK,
  ST_BLOCK,                  /* children in kids; base from enter() or base + off */
  ST_ANYBLOCK,               /* a block whose contents are not pop3d's: not checked */
  ST_PROGRAM,                /* program NAME { top-level statements } */
};

struct stmt {
  const char *name;
  enum stmt_type type;
  size_t off;                /* into the block's base struct; NOSTORE: check only */
  uint64_t min, max;         /* ST_UINT, ST_SIZE, ST_LONG */
  const char *const *words;  /* ST_KEYWORD: the accepted words, NULL-terminated */
  int aux;                   /* ST_CALLBACK: which variant */
  int (*cb)(struct load *L, const struct node *nd, const struct stmt *st, void *base);
  void *(*enter)(struct load *L, const struct node *nd, const struct stmt *st, void *base);
  const struct stmt *kids;
  bool hidden;               /* not in --config-help */
  const char *arg;           /* help: "name: type"; for a block, its tag (or NULL) */
  const char *doc;           /* help: the `#' line */
};

static const struct stmt root_stmts[];

/* The one value of a scalar statement. */
static int scalar(struct load *L, const struct node *nd, const char **s)
{
  if (nd->nvals != 1) {
    report(L, nd->file, nd->line, "%s: expected string value, got %zu values "
           "(quote a value that has spaces)", nd->name, nd->nvals);
    return -1;
  }
  if (nd->vals[0].type != VAL_STRING) {
    report(L, nd->file, nd->line, "%s: expected string value, got a list", nd->name);
    return -1;
  }
  *s = nd->vals[0].s;
  return 0;
}

/* The strings of a list statement: a list, a scalar (a one-element list) or several
 * values.  *out is a fresh list. */
static int collect(struct load *L, const struct node *nd, struct conf_strlist *out)
{
  size_t cap = 0;

  out->v = NULL;
  out->n = 0;
  for (size_t i = 0; i < nd->nvals; i++) {
    const struct value *v = &nd->vals[i];

    if (v->type == VAL_STRING) {
      strlist_push(out, &cap, v->s);
      continue;
    }
    for (size_t j = 0; j < v->n; j++) {
      if (v->items[j].type != VAL_STRING) {
        report(L, nd->file, nd->line, "%s: nested lists are not allowed", nd->name);
        strlist_free(out);
        return -1;
      }
      strlist_push(out, &cap, v->items[j].s);
    }
  }
  return 0;
}

static bool valid_check(const char *s)
{
  static const char *const checks[] = {
    "none", "all", "gwrfil", "awrfil", "grdfil", "ardfil", "linkwrdir", "gwrdir",
    "awrdir", "owner", NULL,
  };

  if (*s == '+' || *s == '-')
    s++;
  for (size_t i = 0; checks[i] != NULL; i++)
    if (strcmp(s, checks[i]) == 0)
      return true;
  return false;
}

static void apply_simple(struct load *L, const struct node *nd, const struct stmt *st,
                         void *base)
{
  void *dst = st->off == NOSTORE ? NULL : (char *)base + st->off;
  const char *s, *err = NULL;
  uint64_t u;

  if (st->type == ST_CALLBACK) {
    (void)st->cb(L, nd, st, base);     /* errors are reported and counted by cb */
    return;
  }
  if (st->type == ST_STRLIST || st->type == ST_CHECKS) {
    struct conf_strlist l;

    if (collect(L, nd, &l) < 0)
      return;
    if (st->type == ST_CHECKS)
      for (size_t i = 0; i < l.n; i++)
        if (!valid_check(l.v[i])) {
          report(L, nd->file, nd->line, "%s: unknown check `%.64s' (none, all, gwrfil, "
                 "awrfil, grdfil, ardfil, linkwrdir, gwrdir, awrdir)", nd->name, l.v[i]);
          strlist_free(&l);
          return;
        }
    if (dst != NULL) {
      strlist_free(dst);
      *(struct conf_strlist *)dst = l;
    } else {
      strlist_free(&l);
    }
    return;
  }
  if (scalar(L, nd, &s) < 0)
    return;
  switch (st->type) {
  case ST_STRING:
    if (dst != NULL)
      set_str(dst, s);
    return;
  case ST_BOOL: {
    bool b;

    if (conf_parse_bool(s, &b, &err) < 0)
      break;
    if (dst != NULL)
      *(bool *)dst = b;
    return;
  }
  case ST_UINT:
  case ST_SIZE:
  case ST_LONG:
    if (util_parse_u64(s, st->min, st->max, &u, &err) < 0)
      break;
    if (dst == NULL)
      return;
    if (st->type == ST_UINT)
      *(unsigned *)dst = (unsigned)u;
    else if (st->type == ST_SIZE)
      *(size_t *)dst = (size_t)u;
    else
      *(long *)dst = (long)u;
    return;
  case ST_INTERVAL: {
    unsigned v;

    if (conf_parse_interval(s, &v, &err) < 0)
      break;
    if (dst != NULL)
      *(unsigned *)dst = v;
    return;
  }
  case ST_TLSMODE: {
    enum conf_tls_mode m;

    if (conf_parse_tls_mode(s, &m, &err) < 0)
      break;
    if (dst != NULL)
      *(enum conf_tls_mode *)dst = m;
    return;
  }
  case ST_PORT: {
    unsigned v;

    if (parse_port(s, &v, &err) < 0)
      break;
    if (dst != NULL)
      *(unsigned *)dst = v;
    return;
  }
  case ST_FACILITY:
  case ST_SEVERITY: {
    int v = st->type == ST_FACILITY ? log_facility_parse(s) : log_severity_parse(s);

    if (v < 0) {
      err = st->type == ST_FACILITY ? "unknown syslog facility" : "unknown severity";
      break;
    }
    if (dst != NULL)
      *(int *)dst = v;
    return;
  }
  case ST_KEYWORD:
    for (size_t i = 0; st->words[i] != NULL; i++)
      if (strcmp(s, st->words[i]) == 0) {
        if (dst != NULL)
          set_str(dst, s);
        return;
      }
    err = "not one of the accepted words";
    break;
  default:
    return;
  }
  report(L, nd->file, nd->line, "%s: %s: `%.64s'", nd->name, err, s);
}

static void apply_node(struct load *L, const struct node *nd, const struct stmt *table,
                       void *base, const char *where);

static void apply_block(struct load *L, const struct node *nd, const struct stmt *st,
                        void *base)
{
  const struct stmt *table = st->kids;
  const char *where = nd->name;
  void *child;

  switch (st->type) {
  case ST_ANYBLOCK:
    return;
  case ST_PROGRAM:
    if (nd->nvals != 1 || nd->vals[0].type != VAL_STRING) {
      report(L, nd->file, nd->line, "program: expected one program name before `{'");
      return;
    }
    /* Another program's section: syntax checked by the parser, nothing applied. */
    if (strcmp(nd->vals[0].s, "pop3d") != 0)
      return;
    table = root_stmts;
    where = NULL;
    child = base;
    break;
  default:
    if (st->arg == NULL && nd->nvals > 0) {
      report(L, nd->file, nd->line, "block `%s' takes no label", nd->name);
      return;
    }
    child = st->enter != NULL ? st->enter(L, nd, st, base) : (char *)base + st->off;
    if (child == NULL)
      return;
    break;
  }
  for (size_t i = 0; i < nd->nkids && !L->stop; i++)
    apply_node(L, &nd->kids[i], table, child, where);
}

static void apply_node(struct load *L, const struct node *nd, const struct stmt *table,
                       void *base, const char *where)
{
  const struct stmt *st;
  bool is_block;

  if (L->stop)
    return;
  for (st = table; st->name != NULL; st++)
    if (strcmp(st->name, nd->name) == 0)
      break;
  if (st->name == NULL) {
    if (where != NULL)
      report(L, nd->file, nd->line, "unknown statement `%s' in block `%s'", nd->name, where);
    else
      report(L, nd->file, nd->line, "unknown statement `%s'", nd->name);
    return;
  }
  is_block = st->type == ST_BLOCK || st->type == ST_ANYBLOCK || st->type == ST_PROGRAM;
  if (is_block && !nd->block) {
    report(L, nd->file, nd->line, "`%s' is a block: expected `%s {...}'", nd->name, nd->name);
    return;
  }
  if (!is_block && nd->block) {
    report(L, nd->file, nd->line, "`%s' is not a block", nd->name);
    return;
  }
  if (L->c->verbose) {
    if (nd->file != NULL)
      fprintf(L->err, "%s:%u: statement %s%s%s\n", nd->file, nd->line,
              where ? where : "", where ? "." : "", nd->name);
    else
      fprintf(L->err, "--set: statement %s%s%s\n", where ? where : "", where ? "." : "",
              nd->name);
  }
  if (is_block)
    apply_block(L, nd, st, base);
  else
    apply_simple(L, nd, st, base);
}

/* ---------------------------------------------------------------------------------- */
/* Callbacks                                                                          */

static int cb_handshake(struct load *L, const struct node *nd, const struct stmt *st,
                        void *base)
{
  struct conf_tls *t = base;
  const char *s, *err;
  unsigned v;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (util_parse_uint(s, 0, 86400, &v, &err) < 0) {
    report(L, nd->file, nd->line, "%s: %s: `%.64s'", nd->name, err, s);
    return -1;
  }
  t->handshake_timeout = v;
  t->handshake_timeout_set = true;
  return 0;
}

/* allow|deny [from] ADDR; log [from] ADDR [TEXT]; exec|ifexec [from] ADDR PROG. */
static int cb_acl(struct load *L, const struct node *nd, const struct stmt *st, void *base)
{
  struct conf_acl *acl = base;
  struct conf_acl_entry *e;
  size_t i = 0, extra;
  enum conf_acl_action action = (enum conf_acl_action)st->aux;

  for (size_t k = 0; k < nd->nvals; k++)
    if (nd->vals[k].type != VAL_STRING) {
      report(L, nd->file, nd->line, "%s: a list is not allowed here", nd->name);
      return -1;
    }
  if (nd->nvals > 1 && strcmp(nd->vals[0].s, "from") == 0)
    i = 1;
  extra = nd->nvals - i - 1;
  if ((action == CONF_ACL_ALLOW || action == CONF_ACL_DENY) && extra != 0) {
    report(L, nd->file, nd->line, "%s: expected `%s [from] ADDRESS'", nd->name, nd->name);
    return -1;
  }
  if (action == CONF_ACL_LOG && extra > 1) {
    report(L, nd->file, nd->line, "log: expected `log [from] ADDRESS [TEXT]' "
           "(quote a text that has spaces)");
    return -1;
  }
  if ((action == CONF_ACL_EXEC || action == CONF_ACL_IFEXEC) && extra != 1) {
    report(L, nd->file, nd->line, "%s: expected `%s [from] ADDRESS PROGRAM' "
           "(quote a command that has spaces)", nd->name, nd->name);
    return -1;
  }
  if (!valid_acl_addr(nd->vals[i].s)) {
    report(L, nd->file, nd->line, "%s: invalid address `%.64s' (IPv4, IPv6, ADDR/LEN, "
           "a host name or `any')", nd->name, nd->vals[i].s);
    return -1;
  }
  acl->v = wipe_reallocarray(acl->v, acl->n + 1, sizeof *acl->v);
  e = &acl->v[acl->n++];
  e->action = action;
  e->addr = util_xstrdup(nd->vals[i].s);
  e->arg = extra ? util_xstrdup(nd->vals[i + 1].s) : NULL;
  return 0;
}

/* authentication/authorization: "a:b:c", `clear', or (a, b) (which Mailutils rejects).
 * The first statement replaces the built-in order, later ones append to it; `clear'
 * goes back to the built-in order. */
static int cb_auth(struct load *L, const struct node *nd, const struct stmt *st, void *base)
{
  static const char *const modules[] = {
    "generic", "system", "pam", "sql", "virtdomain", "radius", "ldap", "gsasl", "tls", NULL,
  };
  struct conf *c = base;
  struct conf_strlist *list = st->aux ? &c->authorization : &c->authentication;
  bool *set = st->aux ? &c->authorization_set : &c->authentication_set;
  struct conf_strlist words, out = { NULL, 0 };
  size_t cap = 0;

  if (collect(L, nd, &words) < 0)
    return -1;
  if (words.n == 1 && strcmp(words.v[0], "clear") == 0) {
    strlist_free(list);
    *set = false;
    strlist_free(&words);
    return 0;
  }
  for (size_t i = 0; i < words.n; i++) {
    const char *w = words.v[i];

    for (;;) {
      size_t len = strcspn(w, ":");
      size_t k;

      for (k = 0; modules[k] != NULL; k++)
        if (strlen(modules[k]) == len && memcmp(modules[k], w, len) == 0)
          break;
      if (modules[k] == NULL) {
        report(L, nd->file, nd->line, "%s: unknown module `%.*s' (generic, system, pam, "
               "sql, virtdomain, radius, ldap, gsasl, tls)", nd->name,
               (int)(len < 64 ? len : 64), w);
        strlist_free(&words);
        strlist_free(&out);
        return -1;
      }
      strlist_push(&out, &cap, modules[k]);
      if (w[len] == '\0')
        break;
      w += len + 1;
    }
  }
  strlist_free(&words);
  if (!*set)
    strlist_free(list);
  list->v = wipe_reallocarray(list->v, list->n + out.n, sizeof *list->v);
  memcpy(list->v + list->n, out.v, out.n * sizeof *out.v);
  list->n += out.n;
  wipe_free(out.v);
  *set = true;
  return 0;
}

static int cb_enable_flag(struct load *L, const struct node *nd, const struct stmt *st,
                          void *base)
{
  struct conf *c = base;
  const char *s, *err;
  bool b;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (conf_parse_bool(s, &b, &err) < 0) {
    report(L, nd->file, nd->line, "%s: %s: `%.64s'", nd->name, err, s);
    return -1;
  }
  if (st->aux)
    c->gsasl_enabled = b;
  else
    c->ldap_enabled = b;
  return 0;
}

static int cb_mode(struct load *L, const struct node *nd, const struct stmt *st, void *base)
{
  struct conf *c = base;
  const char *s;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (strcmp(s, "inetd") == 0)
    c->mode = CONF_MODE_INETD;
  else if (strcmp(s, "daemon") == 0)
    c->mode = CONF_MODE_DAEMON;
  else if (strcmp(s, "interactive") == 0)
    c->mode = CONF_MODE_INTERACTIVE;
  else {
    report(L, nd->file, nd->line, "mode: expected inetd, daemon or interactive: `%.64s'", s);
    return -1;
  }
  c->mode_set = true;
  return 0;
}

static int cb_lock_type(struct load *L, const struct node *nd, const struct stmt *st,
                        void *base)
{
  static const struct { const char *name; enum conf_lock_type type; } types[] = {
    { "default", CONF_LOCK_DEFAULT }, { "dotlock", CONF_LOCK_DOTLOCK },
    { "external", CONF_LOCK_EXTERNAL }, { "kernel", CONF_LOCK_KERNEL },
    { "null", CONF_LOCK_NULL },
  };
  struct conf *c = base;
  const char *s;

  if (scalar(L, nd, &s) < 0)
    return -1;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(s, types[i].name) == 0) {
      c->lock_type = types[i].type;
      return 0;
    }
  report(L, nd->file, nd->line, "type: expected default, dotlock, external, kernel or "
         "null: `%.64s'", s);
  return -1;
}

static int cb_autodetect(struct load *L, const struct node *nd, const struct stmt *st,
                         void *base)
{
  struct conf *c = base;
  const char *s, *err;
  unsigned v;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (strcmp(s, "auto") != 0 && strcmp(s, "fast") != 0 && strcmp(s, "minimal") != 0 &&
      util_parse_uint(s, 0, UINT_MAX, &v, &err) < 0) {
    report(L, nd->file, nd->line, "%s: expected auto, fast, minimal or a number: `%.64s'",
           nd->name, s);
    return -1;
  }
  set_str(&c->autodetect_accuracy, s);
  return 0;
}

/* Mailutils' debug spec: [!]category[.levels] joined by `;'; levels are error, prot,
 * trace0..trace9, each maybe prefixed by `=', `!' or `!=', or a range A-B. */
static bool valid_debug_level(const char *s)
{
  static const char *const cats[] = {
    "address", "attribute", "auth", "body", "config", "envelope", "filter", "folder",
    "header", "iterator", "list", "locker", "mailbox", "mailer", "message", "mime",
    "mimetypes", "mailcap", "property", "remote", "stream", "ticket", "url", "wicket",
    "assoc", "acl", "server", "tls", "app", NULL,
  };
  char *copy = util_xstrdup(s), *save = NULL;
  bool ok = *s != '\0';

  for (char *item = strtok_r(copy, ";", &save); ok && item != NULL;
       item = strtok_r(NULL, ";", &save)) {
    char *dot, *save2 = NULL;
    size_t k;

    while (*item == ' ')
      item++;
    if (*item == '!')
      item++;
    dot = strchr(item, '.');
    if (dot != NULL)
      *dot = '\0';
    for (k = 0; cats[k] != NULL; k++)
      if (strcmp(item, cats[k]) == 0)
        break;
    if (cats[k] == NULL) {
      ok = false;
      break;
    }
    if (dot == NULL)
      continue;
    for (char *lv = strtok_r(dot + 1, ",", &save2); ok && lv != NULL;
         lv = strtok_r(NULL, ",", &save2)) {
      char *dash;

      if (*lv == '!')
        lv++;
      if (*lv == '=')
        lv++;
      dash = strchr(lv, '-');
      if (dash != NULL)
        *dash = '\0';
      for (char *one = lv; one != NULL; one = dash ? dash + 1 : NULL) {
        bool good = strcmp(one, "error") == 0 || strcmp(one, "prot") == 0 ||
          (strncmp(one, "trace", 5) == 0 && is_digit((unsigned char)one[5]) && one[6] == '\0');

        if (!good)
          ok = false;
        if (one != lv)
          break;
      }
    }
  }
  wipe_free(copy);
  return ok;
}

static int cb_debug_level(struct load *L, const struct node *nd, const struct stmt *st,
                          void *base)
{
  struct conf *c = base;
  const char *s;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (!valid_debug_level(s)) {
    report(L, nd->file, nd->line, "level: unknown category or level in `%.64s' "
           "(e.g. \"auth.trace0;mailbox.error\")", s);
    return -1;
  }
  set_str(&c->debug_level, s);
  return 0;
}

static int cb_pidfile(struct load *L, const struct node *nd, const struct stmt *st,
                      void *base)
{
  struct conf *c = base;
  const char *s;

  if (scalar(L, nd, &s) < 0)
    return -1;
  /* The file is removed unconditionally at start: a relative name or one directly in
   * `/' is refused, as Mailutils does. */
  if (s[0] != '/' || strchr(s + 1, '/') == NULL) {
    report(L, nd->file, nd->line, "pidfile: must be an absolute name not directly in "
           "`/': `%.64s'", s);
    return -1;
  }
  set_str(&c->pidfile, s);
  return 0;
}

static int cb_outbuf(struct load *L, const struct node *nd, const struct stmt *st,
                     void *base)
{
  struct conf *c = base;
  const char *s, *err;
  uint64_t v;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (util_parse_u64(s, 0, PARAMS_OUTBUF_MAX, &v, &err) < 0) {
    report(L, nd->file, nd->line, "%s: %s: `%.64s'", nd->name, err, s);
    return -1;
  }
  /* Mailutils takes any size (0 = unbuffered); below our minimum we round up rather
   * than refuse a config that works there. */
  c->output_buffer_size = v < PARAMS_OUTBUF_MIN ? PARAMS_OUTBUF_MIN : (size_t)v;
  return 0;
}

static int load_file(struct load *L, const char *path, bool include, const char *from_file,
                     unsigned from_line);

/* Under --config-lint, where pop3d reads a statement otherwise than GNU Mailutils
 * might be thought to: said, not counted as an error. */
static void note(struct load *L, const struct node *nd, const char *fmt, ...) PRINTF(3, 4);
static void note(struct load *L, const struct node *nd, const char *fmt, ...)
{
  va_list ap;

  if (!L->c->lint)
    return;
  va_start(ap, fmt);
  say(L->err, nd->file, nd->line, "note: ", fmt, ap);
  va_end(ap);
}

/* A number of children, or -1: Mailutils takes it (it wraps to the largest number) and
 * runs without a limit, which is what 0 says here. */
static int cb_max_children(struct load *L, const struct node *nd, const struct stmt *st,
                           void *base)
{
  struct conf *c = base;
  const char *s, *err;
  uint64_t v;

  (void)st;
  if (scalar(L, nd, &s) < 0)
    return -1;
  if (strcmp(s, "-1") == 0) {
    note(L, nd, "max-children -1 is read as 0: no limit, as GNU Mailutils runs with it");
    c->max_children = 0;
    return 0;
  }
  if (util_parse_u64(s, 0, PARAMS_MAX_CHILDREN_MAX, &v, &err) < 0) {
    report(L, nd->file, nd->line, "%s: %s: `%.64s' (0 or -1: no limit)", nd->name, err, s);
    return -1;
  }
  c->max_children = (unsigned)v;
  return 0;
}

static int cb_include(struct load *L, const struct node *nd, const struct stmt *st,
                      void *base)
{
  struct conf *c = base;
  const char *s;
  char *path, *sub;
  struct stat sb;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (*s == '\0') {
    report(L, nd->file, nd->line, "include: empty file name");
    return -1;
  }
  path = s[0] == '/' ? util_xstrdup(s) : util_xasprintf("%s/%s", sysconfdir(c), s);
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    /* include DIR: DIR/pop3d if it exists, else nothing. */
    sub = util_xasprintf("%s/pop3d", path);
    wipe_free(path);
    path = sub;
    if (stat(path, &sb) != 0 && errno == ENOENT) {
      wipe_free(path);
      return 0;
    }
  }
  if (L->include_depth >= PARAMS_CONF_INCLUDE_DEPTH) {
    report(L, nd->file, nd->line, "include: nested too deeply (limit %d): `%.200s' "
           "(an include loop?)", PARAMS_CONF_INCLUDE_DEPTH, path);
    wipe_free(path);
    return -1;
  }
  L->include_depth++;
  (void)load_file(L, path, true, nd->file, nd->line);
  L->include_depth--;
  wipe_free(path);
  return 0;
}

static void *enter_server(struct load *L, const struct node *nd, const struct stmt *st,
                          void *base)
{
  struct conf *c = base;
  struct conf_server *s;
  const char *err;
  char *addr;
  unsigned port;

  if (nd->nvals != 1 || nd->vals[0].type != VAL_STRING) {
    report(L, nd->file, nd->line, "server: expected one address before `{' "
           "(e.g. server 0.0.0.0:110 {...})");
    return NULL;
  }
  if (parse_server_addr(nd->vals[0].s, c->port, &addr, &port, &err) < 0) {
    report(L, nd->file, nd->line, "server: %s: `%.64s'", err, nd->vals[0].s);
    return NULL;
  }
  /* --set '/server=ADDR/...' selects the block with that label. */
  if (L->from_set)
    for (size_t i = 0; i < c->nservers; i++)
      if (strcmp(c->servers[i].addr, addr) == 0 && c->servers[i].port == port) {
        wipe_free(addr);
        return &c->servers[i];
      }
  if (c->nservers >= PARAMS_CONF_SERVERS_MAX) {
    report(L, nd->file, nd->line, "server: too many server blocks (limit %d)",
           PARAMS_CONF_SERVERS_MAX);
    wipe_free(addr);
    return NULL;
  }
  c->servers = wipe_reallocarray(c->servers, c->nservers + 1, sizeof *c->servers);
  s = &c->servers[c->nservers++];
  memset(s, 0, sizeof *s);
  s->addr = addr;
  s->port = port;
  s->timeout = c->timeout;
  s->backlog = PARAMS_BACKLOG_DEFAULT;
  s->tls_mode = CONF_TLS_UNSET;
  s->tls.handshake_timeout = 0;        /* per-server: 0 = no limit, as Mailutils */
  s->file = util_xstrdup(nd->file != NULL ? nd->file : "--set");
  s->line = nd->line;
  return s;
}

static void *enter_tls(struct load *L, const struct node *nd, const struct stmt *st, void *base)
{
  struct conf *c = base;

  c->has_tls = true;
  return &c->tls;
}

static void *enter_server_tls(struct load *L, const struct node *nd, const struct stmt *st,
                              void *base)
{
  struct conf_server *s = base;

  s->has_tls = true;
  return &s->tls;
}

enum { LDAP_URL, LDAP_GETPWNAM, LDAP_GETPWUID };

/* ldap url, getpwnam and getpwuid: checked as libldap and the filter expansion will
 * read them, so that a mistake is reported here and not at the first login. */
static int cb_ldap_value(struct load *L, const struct node *nd, const struct stmt *st,
                         void *base)
{
  struct conf *c = base;
  const char *s, *err = NULL;
  char **dst;

  if (scalar(L, nd, &s) < 0)
    return -1;
  if (st->aux == LDAP_URL) {
    dst = &c->ldap_url;
    if (auth_ldap_check_url(s, &err) < 0) {
      report(L, nd->file, nd->line, "%s: %s: `%.200s'", nd->name, err, s);
      return -1;
    }
  } else {
    dst = st->aux == LDAP_GETPWNAM ? &c->ldap_getpwnam : &c->ldap_getpwuid;
    if (auth_ldap_check_filter(s, &err) < 0) {
      report(L, nd->file, nd->line, "%s: %s: `%.200s'", nd->name, err, s);
      return -1;
    }
  }
  set_str(dst, s);
  return 0;
}

/* ldap field-map: NAME=ATTR definitions, colon-separated in a string, or a list of
 * them (Mailutils takes both).  Kept one definition per entry. */
static int cb_ldap_field_map(struct load *L, const struct node *nd, const struct stmt *st,
                             void *base)
{
  struct conf *c = base;
  struct conf_strlist words, out = { NULL, 0 };
  size_t cap = 0;

  (void)st;
  if (collect(L, nd, &words) < 0)
    return -1;
  for (size_t i = 0; i < words.n; i++)
    for (char *def = words.v[i], *next; def != NULL; def = next) {
      const char *err;

      next = strchr(def, ':');
      if (next != NULL)
        *next++ = '\0';
      if (auth_ldap_check_field(def, &err) < 0) {
        report(L, nd->file, nd->line, "%s: %s: `%.64s'", nd->name, err, def);
        strlist_free(&words);
        strlist_free(&out);
        return -1;
      }
      strlist_push(&out, &cap, def);
    }
  strlist_free(&words);
  strlist_free(&c->ldap_field_map);
  c->ldap_field_map = out;
  return 0;
}

static void *enter_sql(struct load *L, const struct node *nd, const struct stmt *st, void *base)
{
  struct conf *c = base;

  if (nd->nkids > 0) {
    c->sql_used = true;
    wipe_free(c->sql_where);
    c->sql_where = nd->file != NULL ? util_xasprintf("%s:%u", nd->file, nd->line)
                                    : util_xstrdup("--set");
  }
  return base;
}

/* ---------------------------------------------------------------------------------- */
/* The tables                                                                         */

#define C(f) offsetof(struct conf, f)
#define SV(f) offsetof(struct conf_server, f)
#define T(f) offsetof(struct conf_tls, f)

#define STR(n, o, a, d) { .name = n, .type = ST_STRING, .off = o, .arg = a, .doc = d }
#define BOOL(n, o, d) { .name = n, .type = ST_BOOL, .off = o, .arg = "arg: boolean", .doc = d }
#define CB(n, f, x, a, d) { .name = n, .type = ST_CALLBACK, .cb = f, .aux = x, .arg = a, .doc = d }
#define BLOCK(n, k, d) { .name = n, .type = ST_BLOCK, .off = 0, .kids = k, .doc = d }
#define END { .name = NULL }

static const char *const sql_ifaces[] = { "mysql", "odbc", "postgres", NULL };
static const char *const sql_encs[] = { "plain", "hash", "crypt", "scrambled", NULL };

static const struct stmt tls_stmts[] = {
  STR("ssl-certificate-file", T(cert_file), "file: string",
      "Specifies the name of a file with the server certificate."),
  STR("ssl-key-file", T(key_file), "file: string",
      "Specifies the name of a file with the private key."),
  STR("ssl-ca-file", T(ca_file), "file: string",
      "Specifies the name of a file with certificate authority certificates."),
  STR("ssl-priorities", T(priorities), "arg: string",
      "Set the priorities to use on the ciphers, key exchange methods, MACs and "
      "compression methods."),
  CB("handshake-timeout", cb_handshake, 0, "n: number",
     "Set the timeout for the TLS handshake, in seconds (0: none)."),
  END,
};

static const struct stmt acl_stmts[] = {
  CB("allow", cb_acl, CONF_ACL_ALLOW, "addr: IP", "Allow connections from this IP address."),
  CB("deny", cb_acl, CONF_ACL_DENY, "addr: IP", "Deny connections from this IP address."),
  CB("log", cb_acl, CONF_ACL_LOG, "addr: IP",
     "Log connections from this IP address (and go on)."),
  CB("exec", cb_acl, CONF_ACL_EXEC, "addr: IP> <program: string",
     "Run a program when a connection comes from this IP address."),
  CB("ifexec", cb_acl, CONF_ACL_IFEXEC, "addr: IP> <program: string",
     "Use a program to decide on connections from this IP address "
     "(exit 0: allow, 1: deny)."),
  END,
};

static const struct stmt server_stmts[] = {
  BOOL("single-process", SV(single_process), "Do not fork, serve one client at a time."),
  BOOL("transcript", SV(transcript), "Log the session transcript."),
  { .name = "timeout", .type = ST_INTERVAL, .off = SV(timeout), .arg = "arg: time",
    .doc = "Set idle timeout." },
  { .name = "acl", .type = ST_BLOCK, .off = SV(acl), .kids = acl_stmts,
    .doc = "Per-server access control list." },
  { .name = "backlog", .type = ST_UINT, .off = SV(backlog), .min = 1, .max = 65535,
    .arg = "number: callback", .doc = "Size of the queue of pending connections." },
  { .name = "tls-mode", .type = ST_TLSMODE, .off = SV(tls_mode),
    .arg = "arg: false|true|ondemand|stls|required|connection",
    .doc = "Kind of TLS encryption to use for this server." },
  { .name = "tls", .type = ST_BLOCK, .enter = enter_server_tls, .kids = tls_stmts,
    .doc = "Server TLS configuration." },
  END,
};

static const struct stmt pam_stmts[] = {
  STR("service", C(pam_service), "name: string", "Set PAM service name."),
  END,
};

static const struct stmt sql_stmts[] = {
  { .name = "interface", .type = ST_KEYWORD, .off = C(sql_interface), .words = sql_ifaces,
    .arg = "iface: mysql|odbc|postgres", .doc = "Set SQL interface to use." },
  STR("getpwnam", C(sql_getpwnam), "query: string",
      "SQL query to retrieve a passwd entry based on username ($user)."),
  STR("getpwuid", C(sql_getpwuid), "query: string",
      "SQL query to retrieve a passwd entry based on UID (pop3d makes none)."),
  STR("getpass", C(sql_getpass), "query: string", "SQL query returning the user's password."),
  STR("host", C(sql_host), "arg: string",
      "SQL server host name, or its Unix socket when it starts with `/'."),
  STR("user", C(sql_user), "arg: string", "SQL user name."),
  STR("passwd", C(sql_passwd), "arg: string", "Password for the SQL user."),
  { .name = "port", .type = ST_UINT, .off = C(sql_port), .min = 0, .max = 65535,
    .arg = "arg: number", .doc = "SQL server port (0: the interface's default)." },
  STR("db", C(sql_db), "arg: string", "SQL database name."),
  { .name = "password-encryption", .type = ST_KEYWORD, .off = C(sql_password_encryption),
    .words = sql_encs, .arg = "arg: plain|hash|crypt|scrambled",
    .doc = "Type of password returned by getpass query." },
  { .name = "field-map", .type = ST_STRLIST, .off = C(sql_field_map), .arg = "map: definition",
    .doc = "Set a field-map for parsing SQL replies: NAME=COLUMN definitions separated by "
           "colons, NAME one of name, passwd, uid, gid, gecos, dir, shell, mailbox, quota." },
  { .name = "param", .type = ST_STRLIST, .off = C(sql_param), .arg = "arg: string",
    .doc = "Extra parameters for the connection (postgres: libpq KEYWORD=VALUE; mysql: "
           "default-file=FILE, default-group=NAME)." },
  END,
};

static const struct stmt virtdomain_stmts[] = {
  STR("passwd-dir", C(virtdomain_passwd_dir), "dir: string",
      "Name of the directory where virtual domain password files are located."),
  END,
};

static const struct stmt ldap_stmts[] = {
  CB("enable", cb_enable_flag, 0, "arg: boolean", "Enable LDAP lookups."),
  CB("url", cb_ldap_value, LDAP_URL, "url: string", "Set URL of the LDAP server."),
  STR("base", C(ldap_base), "dn: string", "Base DN for LDAP lookups."),
  STR("binddn", C(ldap_binddn), "dn: string", "DN for accessing LDAP database."),
  STR("passwd", C(ldap_passwd), "arg: string", "Password for use with binddn."),
  BOOL("tls", C(ldap_tls), "Use TLS encryption."),
  { .name = "debug", .type = ST_UINT, .off = C(ldap_debug), .min = 0, .max = INT_MAX,
    .arg = "arg: number", .doc = "Set LDAP debugging level." },
  CB("field-map", cb_ldap_field_map, 0, "map: definition",
     "Set a field-map for parsing LDAP replies: NAME=ATTR definitions, colon-separated "
     "or a list, where NAME is one of name, passwd, uid, gid, gecos, dir, shell, mailbox, "
     "quota."),
  CB("getpwnam", cb_ldap_value, LDAP_GETPWNAM, "filter: string",
     "LDAP filter to use for getpwnam requests."),
  CB("getpwuid", cb_ldap_value, LDAP_GETPWUID, "filter: string",
     "LDAP filter to use for getpwuid requests."),
  BOOL("bind-as-user", C(ldap_bind_as_user), "Check passwords by binding to the "
       "directory as the user's entry, not by reading its userPassword."),
  END,
};

static const struct stmt gsasl_stmts[] = {
  CB("enable", cb_enable_flag, 1, "arg: boolean", "Enable or disable SASL support."),
  STR("cram-passwd", NOSTORE, "file: string", "Name of GSASL password file."),
  STR("service", NOSTORE, "name: string", "SASL service name."),
  STR("realm", NOSTORE, "name: string", "SASL realm name."),
  STR("hostname", NOSTORE, "name: string", "SASL host name."),
  STR("anonymous-user", NOSTORE, "name: string", "Anonymous user name."),
  END,
};

static const struct stmt tlsfc_stmts[] = {
  { .name = "key-file", .type = ST_CHECKS, .off = C(tls_key_checks), .arg = "arg: list",
    .doc = "Configure safety checks for SSL key file." },
  { .name = "cert-file", .type = ST_CHECKS, .off = C(tls_cert_checks), .arg = "arg: list",
    .doc = "Configure safety checks for SSL certificate." },
  { .name = "ca-file", .type = ST_CHECKS, .off = C(tls_ca_checks), .arg = "arg: list",
    .doc = "Configure safety checks for SSL certificate authority file." },
  END,
};

static const struct stmt auth_stmts[] = {
  CB("authentication", cb_auth, 0, "modlist: callback",
     "Set a list of modules for authentication (colon-separated, or `clear')."),
  CB("authorization", cb_auth, 1, "modlist: callback",
     "Set a list of modules for authorization (colon-separated, or `clear')."),
  END,
};

static const struct stmt debug_stmts[] = {
  CB("level", cb_debug_level, 0, "arg: string", "Set Mailutils debugging level."),
  BOOL("line-info", C(debug_line_info), "Prefix debug messages with source locations."),
  END,
};

static const struct stmt mailbox_stmts[] = {
  STR("mail-spool", C(mail_spool), "url: string",
      "Use specified URL as a mailspool directory."),
  STR("mailbox-pattern", C(mailbox_pattern), "pattern: string",
      "Create mailbox URL using <pattern>."),
  STR("mailbox-type", C(mailbox_type), "protocol: string", "Default mailbox type."),
  STR("folder", C(folder), "dir: string", "Default user mail folder."),
  CB("autodetect-accuracy", cb_autodetect, 0, "n: number",
     "Accuracy level of mailbox format autodetection (auto, fast, minimal or a number)."),
  END,
};

static const struct stmt locking_stmts[] = {
  CB("type", cb_lock_type, 0, "type: default | dotlock | external | kernel | null",
     "Locker type."),
  { .name = "retry-count", .type = ST_UINT, .off = C(lock_retry_count), .min = 0,
    .max = 100000, .arg = "arg: integer", .doc = "Set the maximum number of times to "
    "retry acquiring the lock (with retry-sleep: how long to wait in all)." },
  { .name = "retry-sleep", .type = ST_INTERVAL, .off = C(lock_retry_sleep),
    .arg = "arg: interval", .doc = "Set the delay between two successive locking attempts." },
  { .name = "retry-timeout", .type = ST_INTERVAL, .off = C(lock_retry_sleep),
    .arg = "arg: interval", .doc = "Ancient alias to retry-sleep." },
  { .name = "expire-timeout", .type = ST_INTERVAL, .off = C(lock_expire_timeout),
    .arg = "arg: interval", .doc = "Expire locks older than this amount of time." },
  STR("external-locker", C(lock_external_locker), "prog: string",
      "Use external locker program."),
  { .name = "pid-check", .type = ST_BOOL, .off = C(lock_pid_check), .arg = "arg: bool",
    .doc = "Check if PID of the lock owner is active." },
  STR("flags", C(lock_flags), "arg: string", "Default locker flags (E=external, R=retry, "
      "T=time, P=pid); deprecated."),
  END,
};

static const struct stmt logging_stmts[] = {
  BOOL("syslog", C(log_syslog), "Send diagnostics to syslog."),
  BOOL("print-severity", C(log_print_severity),
       "Print message severity levels."),
  { .name = "severity", .type = ST_SEVERITY, .off = C(log_severity),
    .arg = "arg: debug|info|notice|warning|error|crit|alert|emerg",
    .doc = "Output only messages with a severity equal to or greater than this one." },
  { .name = "facility", .type = ST_FACILITY, .off = C(log_facility),
    .arg = "arg: auth|authpriv|mail|local0-local7|<number>",
    .doc = "Set syslog facility." },
  BOOL("session-id", C(log_session_id), "Log session ID."),
  STR("tag", C(log_tag), "arg: string", "Tag syslog messages with this string."),
  END,
};

static const struct stmt mlock_stmts[] = {
  BOOL("enable", C(mandatory_locking), "Enable mandatory locking."),
  STR("lock-directory", C(lock_directory), "arg: string",
      "Set directory for mandatory lock files."),
  END,
};

static const struct stmt tcpwrap_stmts[] = {
  BOOL("enable", C(tcpwrap_enable), "Enable TCP wrapper access control."),
  STR("daemon", C(tcpwrap_daemon), "name: string",
      "Set daemon name for TCP wrapper lookups."),
  STR("allow-table", C(tcpwrap_allow_table), "file: string",
      "Use file for positive client address access control."),
  STR("deny-table", C(tcpwrap_deny_table), "file: string",
      "Use file for negative client address access control."),
  END,
};

static const struct stmt root_stmts[] = {
  BLOCK("pam", pam_stmts, "PAM authentication and authorization."),
  { .name = "sql", .type = ST_BLOCK, .enter = enter_sql, .kids = sql_stmts,
    .doc = "SQL authentication and authorization (MySQL/MariaDB, PostgreSQL)." },
  BLOCK("virtdomain", virtdomain_stmts, "Virtual domain authentication and authorization."),
  BLOCK("ldap", ldap_stmts, "LDAP authentication and authorization."),
  BLOCK("gsasl", gsasl_stmts, "SASL configuration (accepted; AUTH is built in)."),
  { .name = "radius", .type = ST_ANYBLOCK, .hidden = true },
  BLOCK("tls-file-checks", tlsfc_stmts, "Configure safety checks for SSL key files."),
  BLOCK("auth", auth_stmts, "Authentication and authorization configuration."),
  BLOCK("debug", debug_stmts, "Mailutils debugging."),
  BLOCK("mailbox", mailbox_stmts, "Mailbox configuration."),
  BLOCK("locking", locking_stmts, "Mailbox locking."),
  BLOCK("logging", logging_stmts, "Configure logging to syslog."),
  CB("include", cb_include, 0, "file-or-directory: string",
     "Include contents of the given file.  If a directory is given, include contents of "
     "the file <file>/pop3d."),
  BOOL("undelete", C(undelete), "On startup, clear deletion marks from all the messages."),
  { .name = "expire", .type = ST_LONG, .off = C(expire), .min = 0, .max = 1000000,
    .arg = "days: number", .doc = "Expire read messages after the given number of days." },
  BOOL("delete-expired", C(delete_expired), "Delete expired messages upon closing the mailbox."),
  BOOL("scan-lines", C(scan_lines), "Output the number of lines in message in its scan "
       "listing."),
  STR("apop-database-file", C(apop_database_file), "arg: string",
      "Name of DBM file with APOP passwords."),
  STR("apop-database-owner", C(apop_database_owner), "arg: string",
      "Name or UID of the APOP database owner."),
  { .name = "apop-database-safety", .type = ST_CHECKS, .off = C(apop_database_safety),
    .arg = "arg: list", .doc = "Configure safety checks for APOP database files." },
  { .name = "tls", .type = ST_BLOCK, .enter = enter_tls, .kids = tls_stmts,
    .doc = "TLS settings." },
  { .name = "tls-mode", .type = ST_TLSMODE, .off = C(tls_mode),
    .arg = "arg: false|true|ondemand|stls|required|connection",
    .doc = "Kind of TLS encryption to use." },
  { .name = "login-delay", .type = ST_INTERVAL, .off = C(login_delay), .arg = "arg: time",
    .doc = "Set the minimal allowed delay between two successive logins." },
  STR("stat-file", C(stat_file), "arg: string",
      "Set the name of login statistics file (for login-delay)."),
  { .name = "login-penalty-max", .type = ST_INTERVAL, .off = C(login_penalty_max),
    .arg = "arg: time", .doc = "Longest delay failed logins from a source or for a user "
    "put before the next login's answer (0: no login penalties)." },
  STR("login-penalty-file", C(login_penalty_file), "arg: string",
      "Set the name of the database of failed logins (for login-penalty-max)."),
  STR("bulletin-source", C(bulletin_source), "url: string",
      "Get bulletins from the specified mailbox."),
  STR("bulletin-db", C(bulletin_db), "file: string",
      "Set the bulletin database file name."),
  CB("output-buffer-size", cb_outbuf, 0, "arg: number",
     "Set size of the output buffer."),
  BLOCK("mandatory-locking", mlock_stmts, "Configure mandatory locking."),
  CB("max-children", cb_max_children, 0, "arg: number",
     "Maximum number of children processes to run simultaneously."),
  { .name = "max-preauth-children", .type = ST_UINT, .off = C(max_preauth_children),
    .min = 0, .max = 1000000, .arg = "arg: number", .doc = "Maximum number of children "
    "whose client has not logged in yet (default: 3/4 of max-children; 0: no own limit)." },
  { .name = "max-preauth-per-source", .type = ST_UINT, .off = C(max_preauth_per_source),
    .min = 0, .max = 1000000, .arg = "arg: number", .doc = "Maximum number of children "
    "whose client has not logged in yet, from one source address (0: no limit)." },
  { .name = "source-prefix-ipv4", .type = ST_UINT, .off = C(source_prefix_ipv4), .min = 1,
    .max = 32, .arg = "arg: bits", .doc = "IPv4 addresses that share this many leading "
    "bits count as one source (per-source limits and login penalties)." },
  { .name = "source-prefix-ipv6", .type = ST_UINT, .off = C(source_prefix_ipv6), .min = 1,
    .max = 128, .arg = "arg: bits", .doc = "IPv6 addresses that share this many leading "
    "bits count as one source (per-source limits and login penalties)." },
  CB("mode", cb_mode, 0, "mode: inetd|interactive|daemon", "Set daemon mode."),
  BOOL("foreground", C(foreground), "Run in foreground."),
  CB("pidfile", cb_pidfile, 0, "file: string", "Store PID of the master process in this file."),
  STR("privsep-user", C(privsep_user), "name: string",
      "Run the pre-login part of each session as this unprivileged user."),
  STR("privsep-chroot", C(privsep_chroot), "dir: string",
      "Confine the pre-login part of each session to this empty directory."),
  { .name = "port", .type = ST_PORT, .off = C(port), .arg = "arg: port number or service name",
    .doc = "Default port number." },
  { .name = "timeout", .type = ST_INTERVAL, .off = C(timeout), .arg = "arg: time",
    .doc = "Set idle timeout." },
  { .name = "login-timeout", .type = ST_INTERVAL, .off = C(login_timeout),
    .arg = "arg: time", .doc = "Time a client has to log in (0: no limit)." },
  { .name = "server", .type = ST_BLOCK, .enter = enter_server, .kids = server_stmts,
    .arg = "ipaddr[:port]", .doc = "Server configuration." },
  { .name = "acl", .type = ST_BLOCK, .off = C(acl), .kids = acl_stmts,
    .doc = "Global access control list." },
  BOOL("transcript", C(transcript), "Log the session transcript."),
  BLOCK("tcp-wrappers", tcpwrap_stmts, "Configure TCP wrappers."),
  { .name = "program", .type = ST_PROGRAM, .arg = "name", .hidden = true },
  /* Mailutils library blocks that may sit in a shared mailutils.conf; pop3d does not
   * use them. */
  { .name = "mailer", .type = ST_ANYBLOCK, .hidden = true },
  { .name = "address", .type = ST_ANYBLOCK, .hidden = true },
  END,
};

/* ---------------------------------------------------------------------------------- */
/* Loading                                                                            */

static void parse_all(struct parser *p)
{
  for (;;) {
    struct token t = next(p);
    struct node nd;

    if (t.type == TOK_EOF)
      break;
    /* A stray `;' (e.g. after a block's `};') is accepted; a lexical error between
     * statements was reported and must not swallow the next statement. */
    if (t.type == TOK_SEMI || t.type == TOK_ERROR)
      continue;
    if (t.type == TOK_RBRACE) {
      report(p->L, p->file, t.line, "unexpected `}'");
      continue;
    }
    if (parse_stmt(p, t, 0, &nd) == 0) {
      apply_node(p->L, &nd, root_stmts, p->L->c, NULL);
      node_free(&nd);
    }
  }
  if (p->have_peek)
    wipe_free(p->peeked.text);
}

/* An empty file is accepted (Mailutils calls it a syntax error): a sysadmin who
 * empties pop3d.conf means "all defaults", not "refuse to start". */
static void parse_buffer(struct load *L, const char *name, const char *data, size_t len)
{
  struct parser p;

  memset(&p, 0, sizeof p);
  p.L = L;
  p.file = name;
  p.src = data;
  p.len = len;
  p.line = 1;
  parse_all(&p);
}

/* Read a file whole, bounded.  Includes must be regular files, opened without blocking
 * (a FIFO or a device named by mistake would hang startup). */
static int read_bounded(const char *path, bool include, char **data_r, size_t *len_r,
                        const char **error_r)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | (include ? O_NONBLOCK : 0));
  struct stat sb;
  struct buf b = { NULL, 0, 0 };

  if (fd < 0) {
    *error_r = strerror(errno);
    return -1;
  }
  if (fstat(fd, &sb) < 0) {
    *error_r = strerror(errno);
    close(fd);
    return -1;
  }
  if (S_ISDIR(sb.st_mode)) {
    *error_r = strerror(EISDIR);
    close(fd);
    return -1;
  }
  if (include && !S_ISREG(sb.st_mode)) {
    *error_r = "not a regular file";
    close(fd);
    return -1;
  }
  if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > PARAMS_CONF_FILE_MAX) {
    *error_r = "file too large";
    close(fd);
    return -1;
  }
  for (;;) {
    ssize_t r;

    /* Read straight into the buffer: no copy of the file (it may hold passwords) is
     * left on the stack. */
    buf_reserve(&b, PARAMS_CONF_READ_CHUNK);
    r = read(fd, b.p + b.n, PARAMS_CONF_READ_CHUNK);

    if (r < 0) {
      if (errno == EINTR)
        continue;
      *error_r = strerror(errno);
      wipe_free(b.p);
      close(fd);
      return -1;
    }
    if (r == 0)
      break;
    if (b.n + (size_t)r > PARAMS_CONF_FILE_MAX) {
      *error_r = "file too large";
      wipe_free(b.p);
      close(fd);
      return -1;
    }
    b.n += (size_t)r;
  }
  close(fd);
  *data_r = b.p;
  *len_r = b.n;
  return 0;
}

/* from_file/from_line: where the include statement is (NULL for the top file). */
static int load_file(struct load *L, const char *path, bool include, const char *from_file,
                     unsigned from_line)
{
  char *data = NULL;
  size_t len = 0;
  const char *err;

  if (read_bounded(path, include, &data, &len, &err) < 0) {
    if (include)
      report(L, from_file, from_line, "include: cannot open %.200s: %s", path, err);
    else
      fprintf(L->err, "%s: cannot open: %s\n", path, err);
    return -1;
  }
  parse_buffer(L, path, data, len);
  wipe_free(data);
  return 0;
}

static void load_init(struct load *L, struct conf *c, FILE *err)
{
  memset(L, 0, sizeof *L);
  L->c = c;
  L->err = err;
}

int conf_load_file(struct conf *c, const char *path, FILE *err)
{
  struct load L;

  load_init(&L, c, err);
  if (load_file(&L, path, false, NULL, 0) < 0)
    return -1;
  return L.errors;
}

int conf_load_buffer(struct conf *c, const char *name, const char *data, size_t len,
                     FILE *err)
{
  struct load L;

  load_init(&L, c, err);
  if (len > PARAMS_CONF_FILE_MAX) {
    fprintf(err, "%s: cannot open: file too large\n", name);
    return -1;
  }
  parse_buffer(&L, name, data, len);
  return L.errors;
}

static bool file_exists(const char *path)
{
  struct stat sb;

  /* Anything but "no such file" (EACCES, ...) is for conf_load_file to report. */
  return stat(path, &sb) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

/* The site files in Mailutils' order: its site file (mailutils.conf, or the one
 * MU_SITE_CONFIG_FILE names) with its program pop3d section, then pop3d.conf over it;
 * a missing one is skipped.  A Mailutils site's settings (tls-mode required...) stay in
 * force when pop3d.conf is installed beside them. */
int conf_load_site(struct conf *c, FILE *err)
{
  const char *mu = getenv("MU_SITE_CONFIG_FILE");
  char *paths[2];
  int errors = 0;

  paths[0] = mu != NULL && *mu != '\0' ? util_xstrdup(mu)
                                        : util_xasprintf("%s/mailutils.conf", sysconfdir(c));
  paths[1] = util_xasprintf("%s/pop3d.conf", sysconfdir(c));
  for (size_t i = 0; i < 2; i++) {
    if (file_exists(paths[i])) {
      int r = conf_load_file(c, paths[i], err);
      errors += r < 0 ? 1 : r;
    }
    wipe_free(paths[i]);
  }
  return errors;
}

/* ---------------------------------------------------------------------------------- */
/* --set                                                                              */

/* Copy s[0..n) to a fresh string, removing one level of double quotes (with escapes). */
static char *unquote(const char *s, size_t n)
{
  struct buf b = { NULL, 0, 0 };
  bool inq = false;

  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') {
      inq = !inq;
      continue;
    }
    if (inq && s[i] == '\\' && i + 1 < n) {
      int e = escape_char(s[i + 1]);

      if (e >= 0) {
        buf_add(&b, (char)e);
        i++;
        continue;
      }
    }
    buf_add(&b, s[i]);
  }
  return buf_finish(&b);
}

static size_t trim(const char *s, size_t n, size_t *start)
{
  size_t a = 0;

  while (a < n && (s[a] == ' ' || s[a] == '\t'))
    a++;
  while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  *start = a;
  return n - a;
}

/* The value of --set: "(a, b)" is a list, anything else one string (spaces and all,
 * so `--set timeout="1 hour"' needs no inner quotes). */
static void set_value(const char *s, struct value *v)
{
  size_t n = strlen(s), a, len = trim(s, n, &a);

  memset(v, 0, sizeof *v);
  if (len >= 2 && s[a] == '(' && s[a + len - 1] == ')') {
    const char *q = s + a + 1, *end = s + a + len - 1;

    v->type = VAL_LIST;
    while (q < end) {
      const char *c = q;
      bool inq = false;
      size_t ia, il;

      while (c < end && (inq || *c != ',')) {
        if (*c == '"')
          inq = !inq;
        else if (inq && *c == '\\' && c + 1 < end)
          c++;
        c++;
      }
      il = trim(q, (size_t)(c - q), &ia);
      if (il > 0) {                    /* a trailing comma is allowed */
        v->items = grow(v->items, &v->cap, v->n, sizeof *v->items);
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        v->items[v->n].type = VAL_STRING;
        v->items[v->n].s = unquote(q + ia, il);
        v->n++;
      }
      q = c < end ? c + 1 : end;
    }
    return;
  }
  v->type = VAL_STRING;
  if (len >= 2 && s[a] == '"' && s[a + len - 1] == '"')
    v->s = unquote(s + a, len);
  else
    v->s = util_xstrdup(s);
}

int conf_set(struct conf *c, const char *spec, FILE *err)
{
  struct { size_t s, e; } comp[PARAMS_CONF_BLOCK_DEPTH + 1];
  size_t ncomp = 0, start, i, valcomp = 0, eq = 0;
  char sep = '.';
  bool inq = false, found = false;
  struct node root, *nd;
  struct load L;

  if (spec == NULL || *spec == '\0') {
    fputs("--set: empty argument (expected PATH=VALUE)\n", err);
    return -1;
  }
  /* A leading punctuation character other than `_' and `"' is the separator. */
  if (spec[0] != '_' && spec[0] != '"' && spec[0] > 0x20 && spec[0] < 0x7f &&
      !is_alnum((unsigned char)spec[0]))
    sep = spec[0];
  start = spec[0] == sep ? 1 : 0;
  for (i = start;; i++) {
    if (spec[i] == '"')
      inq = !inq;
    else if (inq && spec[i] == '\\' && spec[i + 1] != '\0')
      i++;
    else if (spec[i] == '\0' || (!inq && spec[i] == sep)) {
      if (ncomp == sizeof comp / sizeof comp[0]) {
        fputs("--set: path too deep\n", err);
        return -1;
      }
      comp[ncomp].s = start;
      comp[ncomp].e = i;
      ncomp++;
      start = i + 1;
      if (spec[i] == '\0')
        break;
    }
  }
  /* The value starts after the `=' of the last component that has one; the rest of the
   * argument is the value even if it holds the separator (`pidfile=/run/pop3d.pid'). */
  for (size_t k = 0; k < ncomp; k++) {
    inq = false;
    for (size_t j = comp[k].s; j < comp[k].e; j++) {
      if (spec[j] == '"')
        inq = !inq;
      else if (!inq && spec[j] == '=') {
        valcomp = k;
        eq = j;
        found = true;
        break;
      }
    }
  }
  if (!found) {
    fprintf(err, "--set: `%.200s': expected PATH=VALUE\n", spec);
    return -1;
  }
  memset(&root, 0, sizeof root);
  nd = &root;
  for (size_t k = 0; k <= valcomp; k++) {
    size_t s = comp[k].s, e = k == valcomp ? eq : comp[k].e, neq = e;

    for (size_t j = s; j < e; j++)
      if (spec[j] == '=') {
        neq = j;
        break;
      }
    if (k > 0) {
      nd->block = true;
      nd->kids = util_xcalloc(1, sizeof *nd->kids);
      nd->nkids = nd->kcap = 1;
      nd = &nd->kids[0];
    }
    nd->name = util_xstrndup(spec + s, neq - s);
    nd->file = NULL;
    if (!is_ident(nd->name)) {
      fprintf(err, "--set: `%.200s': invalid statement name `%.64s'\n", spec, nd->name);
      node_free(&root);
      return -1;
    }
    if (neq < e) {                     /* name=tag selects a labelled block */
      nd->vals = util_xcalloc(1, sizeof *nd->vals);
      nd->nvals = nd->vcap = 1;
      nd->vals[0].type = VAL_STRING;
      nd->vals[0].s = unquote(spec + neq + 1, e - neq - 1);
    }
  }
  nd->vals = util_xcalloc(1, sizeof *nd->vals);
  nd->nvals = nd->vcap = 1;
  set_value(spec + eq + 1, &nd->vals[0]);

  load_init(&L, c, err);
  L.from_set = true;
  apply_node(&L, &root, root_stmts, c, NULL);
  node_free(&root);
  return L.errors ? -1 : 0;
}

/* ---------------------------------------------------------------------------------- */
/* Whole-configuration checks                                                         */

int conf_check(const struct conf *c, FILE *err)
{
  static const struct { const char *module, *alt; } unbuilt[] = {
#ifndef HAVE_LDAP
    { "ldap", "PAM (pam_ldap)" },
#endif
    { "radius", "PAM (pam_radius_auth)" },
    { "gsasl", "PAM" },
  };
  const struct conf_strlist *lists[2] = { &c->authentication, &c->authorization };
  int n = 0;

  for (size_t u = 0; u < sizeof unbuilt / sizeof unbuilt[0]; u++) {
    bool used = false;

    for (size_t l = 0; l < 2 && !used; l++)
      for (size_t i = 0; i < lists[l]->n && !used; i++)
        used = strcmp(lists[l]->v[i], unbuilt[u].module) == 0;
    if (used) {
      fprintf(err, "auth: module `%s' is not built into pop3d; use %s instead\n",
              unbuilt[u].module, unbuilt[u].alt);
      n++;
    }
  }
#ifndef HAVE_LDAP
  if (c->ldap_enabled) {
    fputs("ldap: `enable yes': LDAP is not built into pop3d; use PAM (pam_ldap) instead\n",
          err);
    n++;
  }
#endif
  n += auth_sql_conf_check(c, err);
  /* gsasl { enable yes; } is accepted: AUTH (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256) is
   * built in; the block's other statements have no effect. */
  /* TLS files, keys and priorities of the TLS modes in use (a preflight). */
  n += tls_conf_check(c, err);
  return n;
}

/* ---------------------------------------------------------------------------------- */
/* --config-help                                                                      */

static void help_table(FILE *out, const struct stmt *table, int indent)
{
  for (const struct stmt *st = table; st->name != NULL; st++) {
    if (st->hidden)
      continue;
    if (st->doc != NULL)
      fprintf(out, "%*s# %s\n", indent, "", st->doc);
    if (st->type == ST_BLOCK) {
      fprintf(out, "%*s%s%s%s {\n", indent, "", st->name, st->arg ? " " : "",
              st->arg ? st->arg : "");
      help_table(out, st->kids, indent + 2);
      fprintf(out, "%*s};\n", indent, "");
    } else {
      fprintf(out, "%*s%s <%s>;\n", indent, "", st->name, st->arg ? st->arg : "arg");
    }
  }
}

void conf_help(FILE *out)
{
  help_table(out, root_stmts, 0);
}

/* ---------------------------------------------------------------------------------- */
/* Defaults and cleanup                                                               */

void conf_init(struct conf *c)
{
  memset(c, 0, sizeof *c);
  c->mode = CONF_MODE_INETD;
  c->max_children = PARAMS_MAX_CHILDREN_DEFAULT;
  c->port = PARAMS_PORT_DEFAULT;
  c->timeout = PARAMS_TIMEOUT_DEFAULT;
  c->login_timeout = PARAMS_LOGIN_TIMEOUT_DEFAULT;
  c->expire = -1;
  c->output_buffer_size = PARAMS_OUTBUF_DEFAULT;
  c->mandatory_locking = true;
  c->lock_directory = util_xstrdup(PARAMS_LOCK_DIRECTORY);
  c->stat_file = util_xstrdup(PARAMS_STAT_FILE);
  c->max_preauth_children = CONF_UNSET;
  c->max_preauth_per_source = PARAMS_MAX_PREAUTH_PER_SOURCE;
  c->source_prefix_ipv4 = PARAMS_SOURCE_PREFIX_IPV4;
  c->source_prefix_ipv6 = PARAMS_SOURCE_PREFIX_IPV6;
  c->login_penalty_max = PARAMS_LOGIN_PENALTY_MAX;
  c->login_penalty_file = util_xstrdup(PARAMS_LOGIN_PENALTY_FILE);
  c->privsep_user = util_xstrdup(PARAMS_PRIVSEP_USER);
  c->privsep_chroot = util_xstrdup(PARAMS_PRIVSEP_CHROOT);
  c->mail_spool = util_xstrdup(PARAMS_MAIL_SPOOL);
  c->mailbox_type = util_xstrdup("mbox");
  c->lock_type = CONF_LOCK_DEFAULT;
  c->lock_retry_count = PARAMS_LOCK_RETRY_COUNT;
  c->lock_retry_sleep = PARAMS_LOCK_RETRY_SLEEP;
  c->lock_expire_timeout = PARAMS_LOCK_EXPIRE_TIMEOUT;
  /* A dotlock whose process is gone is stale at once: a session killed with SIGKILL
   * must not lock its user out for expire-timeout. */
  c->lock_pid_check = true;
  c->log_syslog = true;
  c->log_facility = LOG_MAIL;
  c->log_severity = LOG_DEBUG;
  c->log_tag = util_xstrdup(PARAMS_LOG_TAG);
  c->pam_service = util_xstrdup(PARAMS_PAM_SERVICE);
  c->tls_mode = CONF_TLS_UNSET;
  c->tls.handshake_timeout = PARAMS_TLS_HANDSHAKE_TIMEOUT;
  c->tcpwrap_enable = true;
  c->tcpwrap_daemon = util_xstrdup("pop3d");
  c->tcpwrap_allow_table = util_xstrdup("/etc/hosts.allow");
  c->tcpwrap_deny_table = util_xstrdup("/etc/hosts.deny");
  c->apop_database_safety.v = util_xcalloc(1, sizeof *c->apop_database_safety.v);
  c->apop_database_safety.v[0] = util_xstrdup("all");
  c->apop_database_safety.n = 1;
}

static void tls_free(struct conf_tls *t)
{
  wipe_free(t->cert_file);
  wipe_free(t->key_file);
  wipe_free(t->ca_file);
  wipe_free(t->priorities);
}

static void acl_free(struct conf_acl *a)
{
  for (size_t i = 0; i < a->n; i++) {
    wipe_free(a->v[i].addr);
    wipe_free(a->v[i].arg);
  }
  wipe_free(a->v);
}

void conf_forget_secrets(struct conf *c)
{
  util_free_secret(c->sql_passwd);
  c->sql_passwd = NULL;
  util_free_secret(c->ldap_passwd);
  c->ldap_passwd = NULL;
  strlist_free(&c->sql_param);
}

void conf_free(struct conf *c)
{
  char **strs[] = {
    &c->pidfile, &c->privsep_user, &c->privsep_chroot, &c->apop_database_file, &c->apop_database_owner, &c->stat_file,
    &c->login_penalty_file,
    &c->bulletin_source, &c->bulletin_db, &c->lock_directory, &c->mail_spool,
    &c->mailbox_pattern, &c->mailbox_type, &c->folder, &c->autodetect_accuracy,
    &c->lock_external_locker, &c->lock_flags, &c->log_tag, &c->debug_level,
    &c->pam_service, &c->virtdomain_passwd_dir, &c->tcpwrap_daemon,
    &c->tcpwrap_allow_table, &c->tcpwrap_deny_table,
    &c->sql_interface, &c->sql_host, &c->sql_user, &c->sql_db, &c->sql_getpwnam,
    &c->sql_getpwuid, &c->sql_getpass, &c->sql_password_encryption, &c->sql_where,
    &c->ldap_url, &c->ldap_base, &c->ldap_binddn, &c->ldap_getpwnam, &c->ldap_getpwuid,
  };
  struct conf_strlist *lists[] = {
    &c->apop_database_safety, &c->tls_key_checks, &c->tls_cert_checks, &c->tls_ca_checks,
    &c->authentication, &c->authorization, &c->ldap_field_map,
  };

  util_free_secret(c->ldap_passwd);
  c->ldap_passwd = NULL;

  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    wipe_free(*strs[i]);
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
    strlist_free(lists[i]);
  strlist_free(&c->sql_field_map);
  strlist_free(&c->sql_param);
  util_free_secret(c->sql_passwd);
  for (size_t i = 0; i < c->nservers; i++) {
    wipe_free(c->servers[i].addr);
    acl_free(&c->servers[i].acl);
    tls_free(&c->servers[i].tls);
    wipe_free(c->servers[i].file);
  }
  wipe_free(c->servers);
  acl_free(&c->acl);
  tls_free(&c->tls);
  memset(c, 0, sizeof *c);
}
