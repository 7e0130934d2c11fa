/* test_conf.c - pop3d.conf parser: grammar, types, defaults, errors, --set, include.
 *
 * Most cases are rows of one table: a config text, the number of errors it must give,
 * a text the error output must contain, and one field of the result (read through
 * probe(), which prints a field of struct conf by name) with its expected value.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "params.h"
#include "tap.h"

static char probe_buf[4096];

static void join(const struct conf_strlist *l, char sep)
{
  size_t o = 0;

  probe_buf[0] = '\0';
  for (size_t i = 0; i < l->n && o < sizeof probe_buf; i++)
    o += (size_t)snprintf(probe_buf + o, sizeof probe_buf - o, "%s%s", i ? (char[2]){ sep, 0 } : "",
                          l->v[i]);
}

static void acl_str(const struct conf_acl *a)
{
  static const char *const names[] = { "allow", "deny", "log", "exec", "ifexec" };
  size_t o = 0;

  probe_buf[0] = '\0';
  for (size_t i = 0; i < a->n && o < sizeof probe_buf; i++)
    o += (size_t)snprintf(probe_buf + o, sizeof probe_buf - o, "%s %s%s%s;",
                          names[a->v[i].action], a->v[i].addr, a->v[i].arg ? " " : "",
                          a->v[i].arg ? a->v[i].arg : "");
}

#define P(fmt, ...) (snprintf(probe_buf, sizeof probe_buf, fmt, __VA_ARGS__), probe_buf)

/* A field of c by name, as text; NULL strings read "(null)". */
static const char *probe(const struct conf *c, const char *key)
{
  const struct conf_server *s0 = c->nservers ? &c->servers[0] : NULL;
  const struct conf_server *s1 = c->nservers > 1 ? &c->servers[1] : NULL;

#define S(x) ((x) ? (x) : "(null)")
  if (!strcmp(key, "timeout")) return P("%u", c->timeout);
  if (!strcmp(key, "port")) return P("%u", c->port);
  if (!strcmp(key, "mode")) return P("%d%s", (int)c->mode, c->mode_set ? " set" : "");
  if (!strcmp(key, "max_children")) return P("%u", c->max_children);
  if (!strcmp(key, "login_delay")) return P("%u", c->login_delay);
  if (!strcmp(key, "pidfile")) return P("%s", S(c->pidfile));
  if (!strcmp(key, "foreground")) return P("%d", c->foreground);
  if (!strcmp(key, "log_syslog")) return P("%d", c->log_syslog);
  if (!strcmp(key, "log_facility")) return P("%d", c->log_facility);
  if (!strcmp(key, "log_severity")) return P("%d", c->log_severity);
  if (!strcmp(key, "log_tag")) return P("%s", S(c->log_tag));
  if (!strcmp(key, "expire")) return P("%ld", c->expire);
  if (!strcmp(key, "tls_mode")) return P("%d", (int)c->tls_mode);
  if (!strcmp(key, "tls")) return P("%d %s %s %u %d", c->has_tls, S(c->tls.cert_file),
                                    S(c->tls.key_file), c->tls.handshake_timeout,
                                    c->tls.handshake_timeout_set);
  if (!strcmp(key, "mail_spool")) return P("%s", S(c->mail_spool));
  if (!strcmp(key, "mailbox_type")) return P("%s", S(c->mailbox_type));
  if (!strcmp(key, "lock_type")) return P("%d", (int)c->lock_type);
  if (!strcmp(key, "lock_retry_sleep")) return P("%u", c->lock_retry_sleep);
  if (!strcmp(key, "lock_retry_count")) return P("%u", c->lock_retry_count);
  if (!strcmp(key, "lock_expire_timeout")) return P("%u", c->lock_expire_timeout);
  if (!strcmp(key, "auth")) { join(&c->authentication, ':'); return probe_buf; }
  if (!strcmp(key, "authz")) { join(&c->authorization, ':'); return probe_buf; }
  if (!strcmp(key, "auth_set")) return P("%d%d", c->authentication_set, c->authorization_set);
  if (!strcmp(key, "apop_safety")) { join(&c->apop_database_safety, ','); return probe_buf; }
  if (!strcmp(key, "key_checks")) { join(&c->tls_key_checks, ','); return probe_buf; }
  if (!strcmp(key, "nservers")) return P("%zu", c->nservers);
  if (!strcmp(key, "srv0") && s0)
    return P("%s|%u|%u|%u|%d|%d|%d%d", s0->addr, s0->port, s0->timeout, s0->backlog,
             (int)s0->tls_mode, s0->has_tls, s0->single_process, s0->transcript);
  if (!strcmp(key, "srv1") && s1)
    return P("%s|%u|%u|%u|%d|%d|%d%d", s1->addr, s1->port, s1->timeout, s1->backlog,
             (int)s1->tls_mode, s1->has_tls, s1->single_process, s1->transcript);
  if (!strcmp(key, "srv0acl") && s0) { acl_str(&s0->acl); return probe_buf; }
  if (!strcmp(key, "srv0tls") && s0)
    return P("%s %u %d", S(s0->tls.cert_file), s0->tls.handshake_timeout,
             s0->tls.handshake_timeout_set);
  if (!strcmp(key, "acl")) { acl_str(&c->acl); return probe_buf; }
  if (!strcmp(key, "flags")) return P("%d%d%d", c->sql_used, c->ldap_enabled, c->gsasl_enabled);
  if (!strcmp(key, "debug_level")) return P("%s", S(c->debug_level));
  if (!strcmp(key, "outbuf")) return P("%zu", c->output_buffer_size);
  if (!strcmp(key, "stat_file")) return P("%s", S(c->stat_file));
  if (!strcmp(key, "bulletin_source")) return P("%s", S(c->bulletin_source));
  if (!strcmp(key, "pam_service")) return P("%s", S(c->pam_service));
  if (!strcmp(key, "mlock")) return P("%d %s", c->mandatory_locking, S(c->lock_directory));
  if (!strcmp(key, "tcpwrap")) return P("%d %s %s %s", c->tcpwrap_enable, S(c->tcpwrap_daemon),
                                        S(c->tcpwrap_allow_table), S(c->tcpwrap_deny_table));
  if (!strcmp(key, "undelete")) return P("%d", c->undelete);
  if (!strcmp(key, "scan_lines")) return P("%d", c->scan_lines);
  if (!strcmp(key, "transcript")) return P("%d", c->transcript);
  if (!strcmp(key, "autodetect")) return P("%s", S(c->autodetect_accuracy));
  if (!strcmp(key, "virtdomain")) return P("%s", S(c->virtdomain_passwd_dir));
  if (!strcmp(key, "apop_file")) return P("%s", S(c->apop_database_file));
#undef S
  return "(no such probe)";
}

/* Parse text as file "t.conf"; errors land in *errtext (caller frees). */
static int parse_text(struct conf *c, const char *text, size_t len, char **errtext)
{
  size_t n;
  FILE *err = open_memstream(errtext, &n);
  int r;

  r = conf_load_buffer(c, "t.conf", text, len, err);
  fclose(err);
  return r;
}

struct row {
  const char *text;
  int errors;               /* expected return of conf_load_buffer */
  const char *err_has;      /* error output must contain this (NULL: must be empty) */
  const char *key, *want;   /* probe(key) must read want (key NULL: no check) */
};

static const struct row rows[] = {
  /* Comments of the three kinds, blank input. */
  { "", 0, NULL, "timeout", "600" },
  { "# only a comment\n// another\n/* and\n a block */\n", 0, NULL, "port", "110" },
  { "timeout 30; # trailing\ntimeout /* inline */ 40;", 0, NULL, "timeout", "40" },
  { "timeout 50; // c++ style", 0, NULL, "timeout", "50" },
  { "#debug=config.trace0\ntimeout 5;", 0, NULL, "timeout", "5" },
  /* Strings: quoted, escapes, concatenation, continuation, unknown escapes. */
  { "pidfile \"/run/pop\" \"3d.pid\";", 0, NULL, "pidfile", "/run/pop3d.pid" },
  { "logging { tag \"a\\tb\\n\\\\\\\"\"; };", 0, NULL, "log_tag", "a\tb\n\\\"" },
  { "logging { tag \"long\\\nline\"; };", 0, NULL, "log_tag", "longline" },
  { "logging { tag \"x\\dy\"; };", 0, NULL, "log_tag", "x\\dy" },
  { "logging { tag \"two\nlines\"; };", 0, NULL, "log_tag", "two\nlines" },
  { "logging { tag \"a\" /* c */ \"b\"; };", 0, NULL, "log_tag", "ab" },
  { "mailbox { mail-spool /var/spool/mail; };", 0, NULL, "mail_spool", "/var/spool/mail" },
  { "mailbox { mail-spool maildir:/x/y@z=*; }", 0, NULL, "mail_spool", "maildir:/x/y@z=*" },
  /* Here-documents. */
  { "logging { tag <<EOT\nhello\nEOT\n; };", 0, NULL, "log_tag", "hello\n" },
  { "logging { tag <<EOT\nhello\nEOT;\n};", 0, NULL, "log_tag", "hello\n" },
  { "logging { tag <<-EOT\n\t\thello\n\tworld\n\tEOT\n; };", 0, NULL, "log_tag",
    "hello\nworld\n" },
  { "logging { tag <<- EOT\n   hello\n  EOT\n; };", 0, NULL, "log_tag", "hello\n" },
  { "logging { tag <<EOT\na\\tb\nEOT\n; };", 0, NULL, "log_tag", "a\tb\n" },
  { "logging { tag <<\\EOT\na\\tb\nEOT\n; };", 0, NULL, "log_tag", "a\\tb\n" },
  { "logging { tag <<\"EOT\"\na\\tb\nEOT\n; };", 0, NULL, "log_tag", "a\\tb\n" },
  { "logging { tag <<EOT\nEOTX\nEOT\n; };", 0, NULL, "log_tag", "EOTX\n" },
  /* Lists: trailing comma, scalar as a one-element list, array as a list. */
  { "apop-database-safety (gwrfil, awrfil,);", 0, NULL, "apop_safety", "gwrfil,awrfil" },
  { "apop-database-safety none;", 0, NULL, "apop_safety", "none" },
  { "apop-database-safety (+gwrfil, \"-awrdir\", linkwrdir);", 0, NULL, "apop_safety",
    "+gwrfil,-awrdir,linkwrdir" },
  { "tls-file-checks { key-file (all); cert-file gwrfil linkwrdir; ca-file none; };", 0,
    NULL, "key_checks", "all" },
  { "apop-database-safety (bogus);", 1, "t.conf:1: apop-database-safety: unknown check",
    "apop_safety", "all" },
  { "apop-database-safety ((a));", 1, "nested lists", NULL, NULL },
  /* Booleans. */
  { "undelete yes;", 0, NULL, "undelete", "1" },
  { "undelete t;", 0, NULL, "undelete", "1" },
  { "undelete on;", 0, NULL, "undelete", "1" },
  { "undelete 1;", 0, NULL, "undelete", "1" },
  { "undelete true; undelete nil;", 0, NULL, "undelete", "0" },
  { "undelete yes; undelete off;", 0, NULL, "undelete", "0" },
  { "undelete Yes;", 1, "t.conf:1: undelete: expected a boolean", "undelete", "0" },
  { "scan-lines maybe;", 1, "t.conf:1: scan-lines: expected a boolean", NULL, NULL },
  /* Numbers. */
  { "max-children 0;", 0, NULL, "max_children", "0" },
  { "max-children 25;", 0, NULL, "max_children", "25" },
  /* Mailutils runs with -1 (no limit). */
  { "max-children -1;", 0, NULL, "max_children", "0" },
  { "max-children -2;", 1, "t.conf:1: max-children: not a number", "max_children", "10" },
  { "max-children 99999999999999999999999;", 1, "number too large", "max_children", "10" },
  { "max-children 10k;", 1, "not a number", NULL, NULL },
  { "expire 0;", 0, NULL, "expire", "0" },
  { "expire 30;", 0, NULL, "expire", "30" },
  { "output-buffer-size 8192;", 0, NULL, "outbuf", "8192" },
  { "output-buffer-size 0;", 0, NULL, "outbuf", "512" },
  { "output-buffer-size 64k;", 1, "not a number", "outbuf", "65536" },
  /* Intervals. */
  { "timeout 60;", 0, NULL, "timeout", "60" },
  { "timeout \"1 hour 30 minutes\";", 0, NULL, "timeout", "5400" },
  { "timeout 2h;", 0, NULL, "timeout", "7200" },
  { "timeout 90s;", 0, NULL, "timeout", "90" },
  { "timeout \"1 H 1 m 1 sec\";", 0, NULL, "timeout", "3661" },
  { "timeout \"2 days\";", 0, NULL, "timeout", "172800" },
  { "timeout \"1 week\";", 0, NULL, "timeout", "604800" },
  { "timeout \"1 mo\";", 0, NULL, "timeout", "2678400" },
  { "login-delay \"2 minutes\";", 0, NULL, "login_delay", "120" },
  { "login-delay 2 minutes;", 1, "t.conf:1: login-delay: expected string value", NULL, NULL },
  { "timeout \"1 fortnight\";", 1, "invalid time unit", "timeout", "600" },
  { "timeout abc;", 1, "t.conf:1: timeout: invalid time specification", NULL, NULL },
  { "timeout 99999999999;", 1, "too large", NULL, NULL },
  { "timeout \"\";", 1, "empty time interval", NULL, NULL },
  { "locking { retry-sleep 3; retry-count 4; expire-timeout \"5 min\"; };", 0, NULL,
    "lock_expire_timeout", "300" },
  { "locking { retry-timeout 7; };", 0, NULL, "lock_retry_sleep", "7" },
  /* TLS modes. */
  { "tls-mode no;", 0, NULL, "tls_mode", "0" },
  { "tls-mode off;", 0, NULL, "tls_mode", "0" },
  { "tls-mode false;", 0, NULL, "tls_mode", "0" },
  { "tls-mode 0;", 0, NULL, "tls_mode", "0" },
  { "tls-mode ondemand;", 0, NULL, "tls_mode", "1" },
  { "tls-mode stls;", 0, NULL, "tls_mode", "1" },
  { "tls-mode required;", 0, NULL, "tls_mode", "2" },
  { "tls-mode connection;", 0, NULL, "tls_mode", "3" },
  { "tls-mode yes;", 0, NULL, "tls_mode", "3" },
  { "tls-mode true;", 0, NULL, "tls_mode", "3" },
  { "tls-mode on;", 0, NULL, "tls_mode", "3" },
  { "tls-mode 1;", 0, NULL, "tls_mode", "3" },
  { "tls-mode sometimes;", 1, "t.conf:1: tls-mode: expected a TLS mode", "tls_mode", "-1" },
  { "tls { ssl-certificate-file /c; ssl-key-file /k; handshake-timeout 20; };", 0, NULL,
    "tls", "1 /c /k 20 1" },
  { "tls { handshake-timeout 1m; };", 1, "handshake-timeout: not a number", NULL, NULL },
  /* Ports. */
  { "port 1110;", 0, NULL, "port", "1110" },
  { "port pop3;", 0, NULL, "port", "110" },
  { "port 65536;", 1, "t.conf:1: port: number too large", "port", "110" },
  { "port 0;", 1, "number too small", NULL, NULL },
  { "port no-such-service-xyz;", 1, "unknown port or service", NULL, NULL },
  /* Logging. */
  { "logging { facility local3; severity warning; syslog no; };", 0, NULL, "log_facility",
    "152" },
  { "logging { severity warning; };", 0, NULL, "log_severity", "4" },
  { "logging { facility 3; };", 0, NULL, "log_facility", "24" },
  { "logging { facility kernel9; };", 1, "unknown syslog facility", "log_facility", "16" },
  { "logging { severity loud; };", 1, "unknown severity", "log_severity", "7" },
  /* Keywords. */
  { "mode daemon;", 0, NULL, "mode", "1 set" },
  { "mode interactive;", 0, NULL, "mode", "2 set" },
  { "mode fast;", 1, "mode: expected inetd", "mode", "0" },
  { "locking { type kernel; };", 0, NULL, "lock_type", "3" },
  { "locking { type null; };", 0, NULL, "lock_type", "4" },
  { "locking { type flock; };", 1, "type: expected default", "lock_type", "0" },
  { "mailbox { autodetect-accuracy fast; };", 0, NULL, "autodetect", "fast" },
  { "mailbox { autodetect-accuracy 2; };", 0, NULL, "autodetect", "2" },
  { "mailbox { autodetect-accuracy high; };", 1, "autodetect-accuracy", NULL, NULL },
  { "debug { level \"auth.trace0;!mailbox.=error,trace1-trace9\"; line-info yes; };", 0,
    NULL, "debug_level", "auth.trace0;!mailbox.=error,trace1-trace9" },
  { "debug { level pop3d; };", 1, "t.conf:1: level: unknown category", NULL, NULL },
  { "pidfile /pop3d.pid;", 1, "pidfile: must be an absolute", "pidfile", "(null)" },
  { "pidfile run/pop3d.pid;", 1, "pidfile: must be an absolute", NULL, NULL },
  /* Auth lists. */
  { "auth { authentication pam:system; };", 0, NULL, "auth", "pam:system" },
  { "auth { authentication (generic, system); };", 0, NULL, "auth", "generic:system" },
  { "auth { authentication pam; authentication system; };", 0, NULL, "auth", "pam:system" },
  { "auth { authentication pam; authentication clear; };", 0, NULL, "auth_set", "00" },
  { "auth { authorization system; };", 0, NULL, "authz", "system" },
  { "auth { authentication kerberos; };", 1, "unknown module `kerberos'", "auth", "" },
  { "auth { authentication sql; };", 0, NULL, "auth", "sql" },
  /* Blocks of modules not built: accepted, flagged. */
  { "sql { interface mysql; host db; port 3306; password-encryption crypt; };", 0, NULL,
    "flags", "100" },
  { "sql { interface oracle; };", 1, "t.conf:1: interface: not one of", NULL, NULL },
  { "sql { port x; };", 1, "port: not a number", NULL, NULL },
  { "ldap { enable yes; tls no; debug 3; url \"ldap://x\"; };", 0, NULL, "flags", "010" },
  { "ldap { enable no; };", 0, NULL, "flags", "000" },
  { "gsasl { enable yes; realm x; };", 0, NULL, "flags", "001" },
  { "radius { anything goes; here 1; };", 0, NULL, "flags", "000" },
  /* Servers. */
  { "server 127.0.0.1:2110 { timeout 30; };", 0, NULL, "srv0", "127.0.0.1|2110|30|4|-1|0|00" },
  { "timeout 77; port 995; server 0.0.0.0 { };", 0, NULL, "srv0", "0.0.0.0|995|77|4|-1|0|00" },
  { "server 0.0.0.0 { }; timeout 77;", 0, NULL, "srv0", "0.0.0.0|110|600|4|-1|0|00" },
  { "server \"[::1]:1110\" { backlog 16; single-process yes; transcript yes; };", 0, NULL,
    "srv0", "::1|1110|600|16|-1|0|11" },
  { "server [::1]:1110 { };", 0, NULL, "srv0", "::1|1110|600|4|-1|0|00" },
  { "server ::1 { };", 0, NULL, "srv0", "::1|110|600|4|-1|0|00" },
  { "server /run/pop3d.sock { };", 0, NULL, "srv0", "/run/pop3d.sock|0|600|4|-1|0|00" },
  { "server localhost:pop3 { tls-mode connection; tls { ssl-certificate-file /c; }; };", 0,
    NULL, "srv0", "localhost|110|600|4|3|1|00" },
  { "server 1.2.3.4:995 { tls { ssl-certificate-file /c; }; };", 0, NULL, "srv0tls",
    "/c 0 0" },
  { "server a:1 {}; server b:2 {};", 0, NULL, "srv1", "b|2|600|4|-1|0|00" },
  { "server 1.2.3.4:99999 { };", 1, "t.conf:1: server: number too large", "nservers", "0" },
  { "server bad!host { };", 1, "stray character", NULL, NULL },
  { "server { timeout 3; };", 1, "server: expected one address", "nservers", "0" },
  { "server \"[::1\" { };", 1, "malformed", NULL, NULL },
  { "server 1.2.3.4 { bogus 1; };", 1, "t.conf:1: unknown statement `bogus' in block `server'",
    "nservers", "1" },
  /* ACLs. */
  { "acl { allow from 10.0.0.0/8; deny any; };", 0, NULL, "acl", "allow 10.0.0.0/8;deny any;" },
  { "acl { log from 127.0.0.1 \"local client\"; log ::1; };", 0, NULL, "acl",
    "log 127.0.0.1 local client;log ::1;" },
  { "acl { exec from any /bin/notify; ifexec 192.168.0.0/255.255.0.0 \"/bin/check ${address}\"; };",
    0, NULL, "acl", "exec any /bin/notify;ifexec 192.168.0.0/255.255.0.0 /bin/check ${address};" },
  { "acl { allow host.example.org; deny fe80::/10; };", 0, NULL, "acl",
    "allow host.example.org;deny fe80::/10;" },
  { "acl { allow 10.0.0.0/33; };", 1, "t.conf:1: allow: invalid address", "acl", "" },
  { "acl { deny ::1/129; };", 1, "invalid address", NULL, NULL },
  { "acl { allow from 1.2.3.4 extra; };", 1, "allow: expected", NULL, NULL },
  { "acl { exec any; };", 1, "exec: expected", NULL, NULL },
  { "server 1.2.3.4 { acl { deny from 1.2.3.4; }; };", 0, NULL, "srv0acl", "deny 1.2.3.4;" },
  /* program sections. */
  { "program pop3d { timeout 5; };", 0, NULL, "timeout", "5" },
  { "program imap4d { timeout 5; anything-here 1 2 3; x-y { zz 1; }; };", 0, NULL, "timeout",
    "600" },
  { "program \"pop3d\" { logging { tag mine; }; }", 0, NULL, "log_tag", "mine" },
  { "program imap4d { bad syntax }", 1, "missing `;'", NULL, NULL },
  { "program { timeout 5; };", 1, "program: expected one program name", NULL, NULL },
  /* Everything else of the tree. */
  { "mandatory-locking { enable no; lock-directory /var/lock/pop; };", 0, NULL, "mlock",
    "0 /var/lock/pop" },
  { "tcp-wrappers { enable no; daemon popd; allow-table /a; deny-table /d; };", 0, NULL,
    "tcpwrap", "0 popd /a /d" },
  { "pam { service pop; };", 0, NULL, "pam_service", "pop" },
  { "virtdomain { passwd-dir /etc/domains; };", 0, NULL, "virtdomain", "/etc/domains" },
  { "stat-file /var/db/stat;", 0, NULL, "stat_file", "/var/db/stat" },
  { "bulletin-source mbox:/var/bull;", 0, NULL, "bulletin_source", "mbox:/var/bull" },
  { "apop-database-file /etc/apop.db;", 0, NULL, "apop_file", "/etc/apop.db" },
  { "transcript yes;", 0, NULL, "transcript", "1" },
  { "foreground yes;", 0, NULL, "foreground", "1" },
  { "mailer { url \"sendmail:\"; };", 0, NULL, NULL, NULL },
  /* Syntax errors and recovery. */
  { "x 1;", 1, "t.conf:1: syntax error: unexpected `x'", NULL, NULL },
  { "timeout;", 1, "t.conf:1: `timeout' needs a value", NULL, NULL },
  { "bogus 1;\ntimeout 9;", 1, "t.conf:1: unknown statement `bogus'", "timeout", "9" },
  { "logging { syslog no }", 1, "t.conf:1: missing `;' after `syslog'", "log_syslog", "1" },
  { "logging { syslog no } timeout 8;", 1, "missing `;'", "timeout", "8" },
  { "timeout 1;\nfoo bar\n;\nbaz;\ntimeout 2;", 2, "t.conf:2: unknown statement `foo'",
    "timeout", "2" },
  { "timeout 1;\nport );\ntimeout 3;\nmode ,;\n", 2, "t.conf:4: syntax error: unexpected `,'",
    "timeout", "3" },
  { "timeout 1;\nport );\ntimeout 3;\nmode ,;\n", 2, "t.conf:2: syntax error: unexpected `)'",
    NULL, NULL },
  { "}\ntimeout 4;", 1, "t.conf:1: unexpected `}'", "timeout", "4" },
  { "logging { tag x; ", 1, "end of file in block `logging' opened at line 1", "log_tag", "x" },
  { "timeout 5", 1, "t.conf:1: end of file in statement `timeout'", "timeout", "600" },
  { "timeout $;\nport 9;", 1, "t.conf:1: stray character `$'", "port", "9" },
  { "logging { syslog; tag y; };", 1, "`syslog' needs a value", "log_tag", "y" },
  { "logging 1;", 1, "`logging' is a block", NULL, NULL },
  { "timeout { };", 1, "`timeout' is not a block", NULL, NULL },
  { "logging x { };", 1, "block `logging' takes no label", NULL, NULL },
  { "apop-database-safety ();", 1, "empty list", NULL, NULL },
  { "apop-database-safety (a b);", 1, "in list", NULL, NULL },
  { "logging { tag (a, b); };", 1, "tag: expected string value, got a list", NULL, NULL },
  { "Timeout 5;", 1, "unknown statement `Timeout'", NULL, NULL },
  /* Hostile: unterminated things, NUL bytes are in their own tests below. */
  { "timeout \"5;\n", 1, "t.conf:1: unterminated quoted string", "timeout", "600" },
  { "timeout 5;\n/* no end\n", 1, "t.conf:2: unterminated comment", "timeout", "5" },
  { "logging { tag <<EOT\nabc\n", 2, "t.conf:1: unterminated here-document", NULL, NULL },
  { "logging { tag <<\n", 2, "missing delimiter word", NULL, NULL },
  { "logging { tag <<EOT junk\nx\nEOT\n; };", 1, "text after the delimiter", NULL, NULL },
  { "timeout \"\\", 1, "unterminated quoted string", NULL, NULL },
  { "ab{", 2, "unknown statement `ab'", NULL, NULL },
  { "((((((((", 1, "syntax error", NULL, NULL },
  { "timeout ((((((((((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))))))))))));",
    1, "lists nested too deeply", "timeout", "600" },
  { "<", 1, "stray character `<'", NULL, NULL },
  { "\"a\" 1;", 1, "syntax error: unexpected quoted string", NULL, NULL },
};

static void test_rows(void)
{
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const struct row *r = &rows[i];
    struct conf c;
    char *errtext = NULL;
    int n;

    conf_init(&c);
    n = parse_text(&c, r->text, strlen(r->text), &errtext);
    is_int(n, r->errors, "row %zu: %s: error count", i, r->text);
    if (r->err_has == NULL)
      is_str(errtext, "", "row %zu: no error output", i);
    else {
      ok(strstr(errtext, r->err_has) != NULL, "row %zu: error output has \"%s\"", i,
         r->err_has);
      if (strstr(errtext, r->err_has) == NULL)
        printf("#   got: %s\n", errtext);
    }
    if (r->key != NULL)
      is_str(probe(&c, r->key), r->want, "row %zu: %s", i, r->key);
    free(errtext);
    conf_free(&c);
  }
}

static void test_defaults(void)
{
  struct conf c;

  conf_init(&c);
  is_int(c.mode, CONF_MODE_INETD, "default mode inetd");
  ok(!c.mode_set, "mode not set");
  is_int(c.max_children, PARAMS_MAX_CHILDREN_DEFAULT, "default max-children");
  is_int(c.port, 110, "default port");
  is_int(c.timeout, 600, "default timeout");
  is_int(c.expire, -1, "default expire never");
  is_int(c.output_buffer_size, 65536, "default output-buffer-size");
  ok(c.mandatory_locking, "mandatory locking on");
  is_str(c.lock_directory, PARAMS_LOCK_DIRECTORY, "lock directory");
  is_str(c.stat_file, PARAMS_STAT_FILE, "stat file");
  is_str(c.mail_spool, PARAMS_MAIL_SPOOL, "mail spool");
  is_str(c.mailbox_type, "mbox", "mailbox type");
  is_int(c.lock_type, CONF_LOCK_DEFAULT, "lock type");
  is_int(c.lock_retry_count, PARAMS_LOCK_RETRY_COUNT, "retry count");
  is_int(c.lock_retry_sleep, PARAMS_LOCK_RETRY_SLEEP, "retry sleep");
  is_int(c.lock_expire_timeout, PARAMS_LOCK_EXPIRE_TIMEOUT, "expire timeout");
  ok(c.log_syslog, "syslog on");
  is_int(c.log_facility, LOG_MAIL, "facility mail");
  is_int(c.log_severity, LOG_DEBUG, "severity debug");
  is_str(c.log_tag, "pop3d", "tag");
  is_str(c.pam_service, "gnu-pop3d", "pam service");
  is_int(c.tls_mode, CONF_TLS_UNSET, "tls-mode unset");
  is_int(c.tls.handshake_timeout, 10, "handshake timeout");
  ok(c.tcpwrap_enable, "tcp-wrappers on");
  is_str(c.tcpwrap_daemon, "pop3d", "tcp-wrappers daemon");
  is_str(c.tcpwrap_allow_table, "/etc/hosts.allow", "allow table");
  is_str(c.tcpwrap_deny_table, "/etc/hosts.deny", "deny table");
  is_str(probe(&c, "apop_safety"), "all", "apop safety");
  is_int(c.nservers, 0, "no servers");
  ok(c.sysconfdir == NULL, "sysconfdir from the build");
  conf_free(&c);
  conf_free(&c);                       /* idempotent */
  ok(1, "conf_free twice is harmless");
}

static void test_typed_api(void)
{
  bool b;
  unsigned u;
  enum conf_tls_mode m;
  const char *e;

  ok(conf_parse_bool("nil", &b, &e) == 0 && !b, "bool nil");
  ok(conf_parse_bool("t", &b, &e) == 0 && b, "bool t");
  ok(conf_parse_bool("", &b, &e) < 0, "bool empty");
  ok(conf_parse_interval("1h30m", &u, &e) == 0 && u == 5400, "interval 1h30m");
  ok(conf_parse_interval("  10  ", &u, &e) == 0 && u == 10, "interval with blanks");
  ok(conf_parse_interval("1 month", &u, &e) == 0 && u == 31u * 86400, "a month is 31 days");
  ok(conf_parse_interval("4294967295", &u, &e) == 0 && u == 4294967295u, "interval max");
  ok(conf_parse_interval("4294967296", &u, &e) < 0, "interval overflow");
  ok(conf_parse_interval("1000000 weeks", &u, &e) < 0, "interval overflow by unit");
  ok(conf_parse_interval("1 ms", &u, &e) < 0, "unknown unit");
  ok(conf_parse_interval("-1", &u, &e) < 0, "negative interval");
  ok(conf_parse_tls_mode("stls", &m, &e) == 0 && m == CONF_TLS_ONDEMAND, "tls stls");
  ok(conf_parse_tls_mode("STLS", &m, &e) < 0, "tls modes are case-sensitive");
}

static int set1(struct conf *c, const char *spec, char **errtext)
{
  size_t n;
  FILE *err = open_memstream(errtext, &n);
  int r = conf_set(c, spec, err);

  fclose(err);
  return r;
}

static void test_set(void)
{
  static const struct { const char *spec; int ret; const char *key, *want; } sets[] = {
    { "mailbox.mail-spool=/var/spool/mail", 0, "mail_spool", "/var/spool/mail" },
    { ".logging.syslog=no", 0, "log_syslog", "0" },
    { "login-delay=10", 0, "login_delay", "10" },
    { "timeout=1 hour", 0, "timeout", "3600" },
    { "timeout=\"2 hours\"", 0, "timeout", "7200" },
    { "pidfile=/run/pop3d.pid", 0, "pidfile", "/run/pop3d.pid" },
    { "/server=127.0.0.1:2110/timeout=30", 0, "srv0", "127.0.0.1|2110|30|4|-1|0|00" },
    { "server=\"10.0.0.1:110\".backlog=9", 0, "srv0", "10.0.0.1|110|600|9|-1|0|00" },
    { "apop-database-safety=(gwrfil, awrfil)", 0, "apop_safety", "gwrfil,awrfil" },
    { "apop-database-safety=(\"+gwrfil\", awrfil,)", 0, "apop_safety", "+gwrfil,awrfil" },
    { "auth.authentication=(pam, system)", 0, "auth", "pam:system" },
    { "program=pop3d.port=1110", 0, "port", "1110" },
    { "program=imap4d.port=1110", 0, "port", "110" },
    { ":tls:ssl-certificate-file=/etc/x.pem", 0, "tls", "1 /etc/x.pem (null) 10 0" },
    { "timeout=abc", -1, "timeout", "600" },
    { "bogus=1", -1, NULL, NULL },
    { "timeout", -1, NULL, NULL },
    { "", -1, NULL, NULL },
    { "logging=x.tag=y", -1, NULL, NULL },
    { "1x=2", -1, NULL, NULL },
    { "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.bb.cc.dd.ee.ff.gg.hh=1", -1,
      NULL, NULL },
  };

  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
    struct conf c;
    char *errtext = NULL;
    int r;

    conf_init(&c);
    r = set1(&c, sets[i].spec, &errtext);
    is_int(r, sets[i].ret, "--set %s", sets[i].spec);
    if (r < 0)
      ok(strncmp(errtext, "--set: ", 7) == 0, "--set error prefix: %s", errtext);
    else
      is_str(errtext, "", "--set %s: no output", sets[i].spec);
    if (sets[i].key != NULL)
      is_str(probe(&c, sets[i].key), sets[i].want, "--set %s: %s", sets[i].spec, sets[i].key);
    free(errtext);
    conf_free(&c);
  }

  /* A tagged --set selects the file's block instead of adding one. */
  {
    struct conf c;
    char *errtext = NULL;
    const char *text = "server 127.0.0.1:2110 { timeout 5; };";

    conf_init(&c);
    is_int(parse_text(&c, text, strlen(text), &errtext), 0, "server from file");
    free(errtext);
    is_int(set1(&c, "/server=127.0.0.1:2110/backlog=7", &errtext), 0, "--set on it");
    is_str(probe(&c, "nservers"), "1", "same block selected");
    is_str(probe(&c, "srv0"), "127.0.0.1|2110|5|7|-1|0|00", "and changed");
    free(errtext);
    conf_free(&c);
  }
}

/* Errors of two files and exact prefixes, through real files and includes. */
static char tmpdir[256];

static void write_file(const char *name, const char *text)
{
  char path[512];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  f = fopen(path, "w");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
}

static int load(struct conf *c, const char *name, char **errtext)
{
  char path[512];
  size_t n;
  FILE *err = open_memstream(errtext, &n);
  int r;

  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  r = conf_load_file(c, path, err);
  fclose(err);
  return r;
}

static void test_files(void)
{
  struct conf c;
  char *errtext = NULL, want[1024], sub[512];

  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_conf.XXXXXX");
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    exit(1);
  }
  snprintf(sub, sizeof sub, "%s/conf.d", tmpdir);
  mkdir(sub, 0755);
  snprintf(sub, sizeof sub, "%s/empty.d", tmpdir);
  mkdir(sub, 0755);

  write_file("inc.conf", "port 2110;\n");
  write_file("conf.d/pop3d", "max-children 3;\n");
  write_file("bad.conf", "\n\ntimeout x;\n");
  write_file("loop.conf", "include loop.conf;\n");
  snprintf(want, sizeof want,
           "timeout 7;\ninclude inc.conf;\ninclude %s/conf.d;\ninclude empty.d;\n"
           "include bad.conf;\nlogging { tag after; };\n", tmpdir);
  write_file("main.conf", want);

  conf_init(&c);
  c.sysconfdir = tmpdir;
  is_int(load(&c, "main.conf", &errtext), 1, "include: one error from the included file");
  snprintf(want, sizeof want, "%s/bad.conf:3: timeout: invalid time specification", tmpdir);
  ok(strstr(errtext, want) != NULL, "error names the included file and its line");
  is_str(probe(&c, "port"), "2110", "relative include read");
  is_str(probe(&c, "max_children"), "3", "include DIR reads DIR/pop3d");
  is_str(probe(&c, "log_tag"), "after", "statements after includes apply");
  free(errtext);
  conf_free(&c);

  conf_init(&c);
  c.sysconfdir = tmpdir;
  ok(load(&c, "loop.conf", &errtext) >= 1, "include loop is an error");
  ok(strstr(errtext, "nested too deeply") != NULL, "include loop: %s",
     strstr(errtext, "nested") ? "depth limit" : errtext);
  free(errtext);
  conf_free(&c);

  conf_init(&c);
  c.sysconfdir = tmpdir;
  write_file("missing-inc.conf", "include nope.conf;\n");
  is_int(load(&c, "missing-inc.conf", &errtext), 1, "include of a missing file");
  snprintf(want, sizeof want, "%s/missing-inc.conf:1: include: cannot open", tmpdir);
  ok(strncmp(errtext, want, strlen(want)) == 0, "missing include names the include line");
  free(errtext);
  conf_free(&c);

  conf_init(&c);
  is_int(load(&c, "does-not-exist.conf", &errtext), -1, "unreadable file: -1");
  snprintf(want, sizeof want, "%s/does-not-exist.conf: cannot open: %s", tmpdir,
           strerror(ENOENT));
  ok(strncmp(errtext, want, strlen(want)) == 0, "unreadable file message: %s", errtext);
  free(errtext);
  conf_free(&c);

  /* Site files: mailutils.conf with its program section, then pop3d.conf over it. */
  {
    size_t n;
    FILE *err;
    char site[512];

    snprintf(site, sizeof site, "%s/site", tmpdir);
    mkdir(site, 0755);
    unsetenv("MU_SITE_CONFIG_FILE");
    conf_init(&c);
    c.sysconfdir = site;
    err = open_memstream(&errtext, &n);
    is_int(conf_load_site(&c, err), 0, "no site file: 0 errors");
    fclose(err);
    free(errtext);
    conf_free(&c);

    write_file("site/mailutils.conf", "program imap4d { timeout 1; };\n"
               "program pop3d { timeout 2; };\nlogging { tag mu; };\n");
    conf_init(&c);
    c.sysconfdir = site;
    err = open_memstream(&errtext, &n);
    is_int(conf_load_site(&c, err), 0, "mailutils.conf read");
    fclose(err);
    is_str(probe(&c, "timeout"), "2", "program pop3d section applied");
    is_str(probe(&c, "log_tag"), "mu", "common statements applied");
    free(errtext);
    conf_free(&c);

    write_file("site/pop3d.conf", "timeout 3;\n");
    conf_init(&c);
    c.sysconfdir = site;
    err = open_memstream(&errtext, &n);
    is_int(conf_load_site(&c, err), 0, "pop3d.conf read");
    fclose(err);
    is_str(probe(&c, "timeout"), "3", "pop3d.conf wins over mailutils.conf");
    is_str(probe(&c, "log_tag"), "mu", "what pop3d.conf doesn't set stays mailutils.conf's");
    free(errtext);
    conf_free(&c);

    /* A Mailutils site that requires TLS keeps requiring it once the shipped
     * pop3d.conf (every statement commented out) is installed beside it. */
    {
      const char *top = getenv("top_srcdir");
      char sample[1024], *text = NULL;
      size_t len = 0;
      FILE *f;

      snprintf(sample, sizeof sample, "%s/etc/pop3d.conf", top != NULL ? top : "..");
      f = fopen(sample, "r");
      ok(f != NULL, "the shipped sample %s", sample);
      if (f != NULL) {
        char chunk[4096];
        size_t got;
        FILE *m = open_memstream(&text, &len);
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
          fwrite(chunk, 1, got, m);
        fclose(m);
        fclose(f);
        write_file("site/pop3d.conf", text);
        free(text);
        write_file("site/mailutils.conf", "program pop3d { tls-mode required; timeout 7; };\n");
        conf_init(&c);
        c.sysconfdir = site;
        err = open_memstream(&errtext, &n);
        is_int(conf_load_site(&c, err), 0, "mailutils.conf and the shipped pop3d.conf read");
        fclose(err);
        is_int(atoi(probe(&c, "tls_mode")), CONF_TLS_REQUIRED,
               "mailutils.conf's tls-mode required still holds");
        is_str(probe(&c, "timeout"), "7", "and its timeout");
        free(errtext);
        conf_free(&c);
      }
    }

    snprintf(want, sizeof want, "%s/site/pop3d.conf", tmpdir);
    unlink(want);
    write_file("site/other.conf", "timeout 4;\n");
    snprintf(want, sizeof want, "%s/site/other.conf", tmpdir);
    setenv("MU_SITE_CONFIG_FILE", want, 1);
    conf_init(&c);
    c.sysconfdir = site;
    err = open_memstream(&errtext, &n);
    is_int(conf_load_site(&c, err), 0, "MU_SITE_CONFIG_FILE read");
    fclose(err);
    is_str(probe(&c, "timeout"), "4", "MU_SITE_CONFIG_FILE overrides mailutils.conf");
    free(errtext);
    conf_free(&c);
    unsetenv("MU_SITE_CONFIG_FILE");
  }

  /* The shipped example files, when the test runs from the source tree. */
  {
    const char *top = getenv("top_srcdir");
    char path[1024];
    size_t n;
    FILE *err;

    snprintf(path, sizeof path, "%s/tests/data/all-statements.conf", top ? top : ".");
    if (access(path, R_OK) == 0) {
      conf_init(&c);
      c.sysconfdir = tmpdir;
      err = open_memstream(&errtext, &n);
      is_int(conf_load_file(&c, path, err), 0, "all-statements.conf parses cleanly");
      fclose(err);
      if (*errtext)
        printf("# %s", errtext);
      free(errtext);
      is_int(c.nservers, 3, "all-statements.conf: three servers");
      ok(c.sql_used && !c.ldap_enabled && !c.gsasl_enabled, "all-statements.conf: flags");
      is_str(c.log_tag, "pop3d", "all-statements.conf: program pop3d applied last");
      is_str(c.bulletin_source, "mbox:/var/spool/bulletins\n", "here-doc keeps its newline");
      err = open_memstream(&errtext, &n);
      is_int(conf_check(&c, err), 0, "all-statements.conf selects no unbuilt module");
      fclose(err);
      free(errtext);
      conf_free(&c);
    } else {
      for (int i = 0; i < 6; i++)
        ok(1, "# SKIP %s not found", path);
    }
  }

  /* Leave /tmp as it was. */
  {
    static const char *const files[] = {
      "inc.conf", "conf.d/pop3d", "bad.conf", "loop.conf", "main.conf", "missing-inc.conf",
      "site/mailutils.conf", "site/other.conf", "site/pop3d.conf",
    };
    static const char *const dirs[] = { "conf.d", "empty.d", "site", "" };
    char path[512];

    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
      snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
      unlink(path);
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
      snprintf(path, sizeof path, "%s/%s", tmpdir, dirs[i]);
      rmdir(path);
    }
  }

  /* The broken example files: the first line says the message they must give. */
  {
    static const char *const broken[] = {
      "broken-syntax.conf", "broken-unknown.conf", "broken-type.conf",
      "broken-unterminated.conf", "broken-server.conf", "broken-auth-sql.conf",
    };
    const char *top = getenv("top_srcdir");

    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
      char path[1024], first[512], *nl;
      FILE *f, *err;
      size_t n;
      int r;

      snprintf(path, sizeof path, "%s/tests/data/%s", top ? top : ".", broken[i]);
      f = fopen(path, "r");
      if (f == NULL) {
        ok(1, "# SKIP %s not found", path);
        continue;
      }
      if (fgets(first, sizeof first, f) == NULL)
        first[0] = '\0';
      fclose(f);
      if ((nl = strchr(first, '\n')) != NULL)
        *nl = '\0';
      conf_init(&c);
      err = open_memstream(&errtext, &n);
      r = conf_load_file(&c, path, err);
      if (r == 0)
        r = conf_check(&c, err);
      fclose(err);
      ok(r > 0 && strncmp(first, "# expect: ", 10) == 0 && strstr(errtext, first + 10) != NULL,
         "%s gives \"%s\"", broken[i], first + 10);
      if (r <= 0 || strstr(errtext, first + 10) == NULL)
        printf("#   got: %s\n", errtext);
      free(errtext);
      conf_free(&c);
    }
  }
}

static void test_check(void)
{
  static const struct { const char *text; int n; const char *has; } checks[] = {
    { "auth { authentication pam:system; };", 0, NULL },
    { "auth { authentication sql; };", 1,
      "auth: sql: the auth lists select sql, but no `interface' (mysql or postgres) is set" },
    { "sql { interface odbc; }; auth { authorization sql; };", 1,
      "t.conf:1: sql: interface `odbc' is not supported by pop3d; use mysql or postgres" },
    { "sql { field-map (name=a, =b); };", 1, "field-map: `=b' is not NAME=COLUMN" },
#if defined(HAVE_MYSQL) && defined(HAVE_PGSQL)
    { "sql { interface mysql; getpass x; field-map \"name=a:bad\"; }; "
      "auth { authentication sql; };", 1, "t.conf:1: sql: field-map: `bad' is not NAME=COLUMN" },
    { "sql { interface mysql; }; auth { authorization sql; authentication sql; };", 2,
      "t.conf:1: sql: `authorization sql' needs a getpwnam query" },
    { "sql { interface postgres; getpwnam \"SELECT $(shell id)\"; }; "
      "auth { authorization sql; };", 1, "getpwnam: `$(shell id)' can't be expanded" },
    { "sql { interface mysql; getpass x; param \"sslmode=require\"; }; "
      "auth { authentication sql; };", 1, "mysql takes default-file=FILE or default-group" },
    { "sql { interface postgres;\n getpwnam \"SELECT * FROM u WHERE n='${user}' AND "
      "d='$(domainpart $user)' AND c='$'\";\n getpass \"SELECT pw FROM u WHERE n='$user'\";"
      " field-map (name=login, dir=home); param sslmode=disable; };"
      " auth { authentication generic:sql; authorization sql; };", 0, NULL },
#else
    { "sql { interface mysql; getpass x; }; auth { authentication sql; };", 1,
      "sql: interface `mysql' is not built into pop3d (configure --with-mysql)" },
#endif
    { "sql { interface mysql; getpass x; }; auth { authentication clear; };", 0, NULL },
#ifdef HAVE_LDAP
    { "auth { authorization ldap; };", 0, NULL },
#else
    { "auth { authorization ldap; };", 1, "module `ldap' is not built into pop3d; use PAM (pam_ldap)" },
#endif
    { "auth { authentication radius:gsasl; };", 2, "module `radius'" },
    { "auth { authentication sql; authorization sql; };", 1, "sql: the auth lists select sql" },
#ifdef HAVE_LDAP
    { "ldap { enable yes; };", 0, NULL },
#else
    { "ldap { enable yes; };", 1, "ldap: `enable yes'" },
#endif
    { "gsasl { enable yes; };", 0, NULL },
    { "sql { host x; }; ldap { enable no; };", 0, NULL },
    { "tls-mode required;", 1, "tls-mode needs a certificate and a key" },
    { "tls { ssl-certificate-file /nonexistent/c.pem; }; tls-mode no;", 0, NULL },
  };

  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    struct conf c;
    char *errtext = NULL;
    size_t n;
    FILE *err;

    conf_init(&c);
    is_int(parse_text(&c, checks[i].text, strlen(checks[i].text), &errtext), 0,
           "check %zu parses", i);
    free(errtext);
    err = open_memstream(&errtext, &n);
    is_int(conf_check(&c, err), checks[i].n, "conf_check: %s", checks[i].text);
    fclose(err);
    if (checks[i].has)
      ok(strstr(errtext, checks[i].has) != NULL, "conf_check message: %s", errtext);
    free(errtext);
    conf_free(&c);
  }
}

static void test_verbose_and_help(void)
{
  struct conf c;
  char *out = NULL;
  size_t n;
  FILE *f;
  const char *text = "timeout 5;\nlogging {\n  tag x;\n};\n";

  conf_init(&c);
  c.verbose = true;
  is_int(parse_text(&c, text, strlen(text), &out), 0, "verbose parse");
  ok(strstr(out, "t.conf:1: statement timeout\n") != NULL, "verbose: timeout");
  ok(strstr(out, "t.conf:3: statement logging.tag\n") != NULL, "verbose: logging.tag");
  free(out);
  conf_free(&c);

  f = open_memstream(&out, &n);
  conf_help(f);
  fclose(f);
  ok(strstr(out, "pam {\n  # Set PAM service name.\n  service <name: string>;\n};\n") != NULL,
     "help: pam block");
  ok(strstr(out, "server ipaddr[:port] {\n") != NULL, "help: server tag");
  ok(strstr(out, "    exec <addr: IP> <program: string>;\n") != NULL, "help: nested acl");
  ok(strstr(out, "tls-mode <arg: false|true|ondemand|stls|required|connection>;\n") != NULL,
     "help: tls-mode");
  ok(strstr(out, "include <file-or-directory: string>;\n") != NULL, "help: include");
  ok(strstr(out, "\nprogram") == NULL, "help: program is not a statement of the tree");
  free(out);
}

static void test_hostile(void)
{
  struct conf c;
  char *errtext = NULL;
  int n;

  /* NUL bytes: outside strings, inside strings, in here-documents. */
  {
    static const char a[] = "timeout 5;\0\nport 9;";
    static const char b[] = "logging { tag \"a\0b\"; };\nport 9;";
    static const char d[] = "logging { tag <<E\na\0b\nE\n; };\nport 9;";
    const struct { const char *s; size_t n; const char *has; } cases[] = {
      { a, sizeof a - 1, "t.conf:1: stray character \\x00" },
      { b, sizeof b - 1, "t.conf:1: NUL byte in quoted string" },
      { d, sizeof d - 1, "t.conf:1: NUL byte in here-document" },
    };

    for (size_t i = 0; i < 3; i++) {
      conf_init(&c);
      n = parse_text(&c, cases[i].s, cases[i].n, &errtext);
      ok(n >= 1, "NUL case %zu is an error", i);
      ok(strstr(errtext, cases[i].has) != NULL, "NUL case %zu: %s", i, errtext);
      is_str(probe(&c, "port"), "9", "NUL case %zu: parsing went on", i);
      free(errtext);
      conf_free(&c);
    }
  }

  /* 10,000 nested blocks: refused at the depth limit, no deep recursion. */
  {
    size_t depth = 10000, o = 0;
    char *s = malloc(depth * 4 + 64);

    for (size_t i = 0; i < depth; i++)
      o += (size_t)sprintf(s + o, "ab{");
    for (size_t i = 0; i < depth; i++)
      s[o++] = '}';
    o += (size_t)sprintf(s + o, "\ntimeout 3;");
    conf_init(&c);
    n = parse_text(&c, s, o, &errtext);
    ok(n >= 1 && strstr(errtext, "blocks nested too deeply") != NULL, "10k nested blocks");
    is_str(probe(&c, "timeout"), "3", "parsing went on after them");
    free(errtext);
    conf_free(&c);
    /* The same, never closed. */
    conf_init(&c);
    n = parse_text(&c, s, depth * 3, &errtext);
    ok(n >= 1, "10k unclosed nested blocks");
    free(errtext);
    conf_free(&c);
    free(s);
  }

  /* Thousands of errors: capped. */
  {
    size_t cnt = 5000;
    char *s = malloc(cnt * 6 + 1);

    for (size_t i = 0; i < cnt; i++)
      memcpy(s + i * 6, "zz 1;\n", 6);
    conf_init(&c);
    n = parse_text(&c, s, cnt * 6, &errtext);
    ok(n >= 1 && n <= 200, "error count capped (%d)", n);
    ok(strstr(errtext, "too many errors") != NULL, "says it gave up");
    free(errtext);
    conf_free(&c);
    free(s);
  }

  /* Too many values in one statement. */
  {
    size_t cnt = 5000, o = 0;
    char *s = malloc(cnt * 2 + 32);

    o += (size_t)sprintf(s, "apop-database-safety");
    for (size_t i = 0; i < cnt; i++)
      o += (size_t)sprintf(s + o, " a");
    s[o++] = ';';
    conf_init(&c);
    n = parse_text(&c, s, o, &errtext);
    ok(n == 1 && strstr(errtext, "too many values") != NULL, "value count bounded");
    free(errtext);
    conf_free(&c);
    free(s);
  }

  /* Oversized buffer refused. */
  {
    size_t big = PARAMS_CONF_FILE_MAX + 1;
    char *s = calloc(1, big);

    conf_init(&c);
    memset(s, ' ', big);
    n = parse_text(&c, s, big, &errtext);
    is_int(n, -1, "file over the size limit refused");
    free(errtext);
    conf_free(&c);
    free(s);
  }

  /* Applying the same file twice replaces, never leaks or duplicates lists. */
  {
    const char *t = "apop-database-safety (gwrfil); pidfile /run/a/b; pidfile /run/c/d;";

    conf_init(&c);
    n = parse_text(&c, t, strlen(t), &errtext);
    free(errtext);
    n += parse_text(&c, t, strlen(t), &errtext);
    free(errtext);
    is_int(n, 0, "loaded twice");
    is_str(probe(&c, "apop_safety"), "gwrfil", "list replaced");
    is_str(probe(&c, "pidfile"), "/run/c/d", "string replaced");
    conf_free(&c);
  }
}

int main(void)
{
  test_defaults();
  test_rows();
  test_typed_api();
  test_set();
  test_check();
  test_verbose_and_help();
  test_hostile();
  test_files();
  return tap_done();
}
