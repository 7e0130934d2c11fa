/* conf.h - pop3d.conf: the running configuration and its parser.
 *
 * The grammar and statements are those of GNU Mailutils 3.15 pop3d (see the manual).
 * Every statement of Mailutils' pop3d parses; statements of features pop3d does not
 * build (gsasl, radius; sql and ldap without their libraries) are accepted and refused
 * only if actually selected.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_CONF_H
#define POP3D_CONF_H

#include <limits.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

enum conf_mode { CONF_MODE_INETD, CONF_MODE_DAEMON, CONF_MODE_INTERACTIVE };

enum conf_tls_mode {
  CONF_TLS_UNSET = -1,   /* not given: inherit (server blocks) or no */
  CONF_TLS_NO = 0,       /* no, false, off, 0 */
  CONF_TLS_ONDEMAND,     /* ondemand, stls: STLS offered */
  CONF_TLS_REQUIRED,     /* required: STLS before authentication */
  CONF_TLS_CONNECTION,   /* connection, yes, true, on, 1: POP3S */
};

enum conf_lock_type {
  CONF_LOCK_DEFAULT,     /* fcntl + dotlock */
  CONF_LOCK_DOTLOCK,
  CONF_LOCK_EXTERNAL,
  CONF_LOCK_KERNEL,      /* fcntl only */
  CONF_LOCK_NULL,        /* no locking */
};

/* A list of strings, e.g. auth module lists, safety check lists. */
struct conf_strlist {
  char **v;
  size_t n;
};

struct conf_tls {
  char *cert_file;
  char *key_file;
  char *ca_file;
  char *priorities;          /* NULL: built-in default */
  unsigned handshake_timeout;
  bool handshake_timeout_set;
};

enum conf_acl_action { CONF_ACL_ALLOW, CONF_ACL_DENY, CONF_ACL_LOG, CONF_ACL_EXEC,
                       CONF_ACL_IFEXEC };

struct conf_acl_entry {
  enum conf_acl_action action;
  char *addr;                /* as written: address, addr/len, host name or "any" */
  char *arg;                 /* log text or program; NULL if none */
};

struct conf_acl {
  struct conf_acl_entry *v;
  size_t n;
};

struct conf_server {
  char *addr;                /* address or host without port; absolute path = UNIX socket */
  unsigned port;             /* explicit port, or the global `port` at parse time */
  bool single_process;
  bool transcript;
  unsigned timeout;          /* seconds; the global value at parse time unless given */
  unsigned backlog;          /* default PARAMS_BACKLOG_DEFAULT */
  struct conf_acl acl;
  enum conf_tls_mode tls_mode;
  struct conf_tls tls;
  bool has_tls;              /* a tls {} block was given */
  char *file;                /* where the block starts, for messages */
  unsigned line;
};

/* An unsigned setting not given in the configuration (its default depends on another). */
#define CONF_UNSET UINT_MAX

struct conf {
  /* Server (msrv) settings. */
  enum conf_mode mode;
  bool mode_set;
  bool foreground;
  unsigned max_children;     /* 0 = unlimited */
  unsigned max_preauth_children;   /* not logged in yet; CONF_UNSET: 3/4 of max_children */
  unsigned max_preauth_per_source; /* not logged in yet, from one source; 0 = no limit */
  unsigned source_prefix_ipv4;     /* what one source is: leading bits of the address */
  unsigned source_prefix_ipv6;
  char *pidfile;
  char *privsep_user;        /* the pre-auth worker's user; default PARAMS_PRIVSEP_USER */
  char *privsep_chroot;      /* its empty root; default PARAMS_PRIVSEP_CHROOT */
  unsigned port;
  unsigned timeout;          /* seconds */
  unsigned login_timeout;    /* seconds for the whole AUTHORIZATION state; 0 = none */
  struct conf_server *servers;
  size_t nservers;
  struct conf_acl acl;       /* global acl */
  bool transcript;

  /* pop3d statements. */
  bool undelete;
  long expire;               /* days; -1 = never */
  bool delete_expired;
  bool scan_lines;
  char *apop_database_file;
  char *apop_database_owner;
  struct conf_strlist apop_database_safety;
  struct conf_tls tls;
  bool has_tls;
  enum conf_tls_mode tls_mode;
  unsigned login_delay;      /* seconds; 0 = off */
  unsigned login_penalty_max;  /* seconds; 0 = no login penalties */
  char *login_penalty_file;
  char *stat_file;
  char *bulletin_source;
  char *bulletin_db;
  size_t output_buffer_size;
  bool mandatory_locking;
  char *lock_directory;

  /* tls-file-checks */
  struct conf_strlist tls_key_checks;
  struct conf_strlist tls_cert_checks;
  struct conf_strlist tls_ca_checks;

  /* mailbox {} */
  char *mail_spool;          /* URL or directory; default PARAMS_MAIL_SPOOL */
  char *mailbox_pattern;     /* NULL: mail_spool/USER */
  char *mailbox_type;        /* default "mbox" */
  char *folder;
  char *autodetect_accuracy;

  /* locking {} */
  enum conf_lock_type lock_type;
  unsigned lock_retry_count;
  unsigned lock_retry_sleep; /* seconds */
  unsigned lock_expire_timeout;
  char *lock_external_locker;
  bool lock_pid_check;
  char *lock_flags;

  /* logging {} */
  bool log_syslog;
  bool log_print_severity;
  int log_severity;          /* LOG_* value: lines above it are dropped */
  int log_facility;          /* LOG_MAIL by default */
  bool log_session_id;
  char *log_tag;

  /* debug {} */
  char *debug_level;
  bool debug_line_info;

  /* auth {}: module names in order; empty = Mailutils default order. */
  struct conf_strlist authentication;
  struct conf_strlist authorization;
  bool authentication_set;
  bool authorization_set;

  /* pam {} */
  char *pam_service;
  /* virtdomain {} */
  char *virtdomain_passwd_dir;
  /* sql {}: Mailutils' statements as written (sql_interface and
   * sql_password_encryption are one of their words; NULL: not set); sql_field_map holds
   * "name=column" pairs; sql_where is "file:line" of the block, for conf_check(). */
  char *sql_interface, *sql_host, *sql_user, *sql_passwd, *sql_db;
  char *sql_getpwnam, *sql_getpwuid, *sql_getpass, *sql_password_encryption;
  unsigned sql_port;
  struct conf_strlist sql_field_map, sql_param;
  char *sql_where;
  /* ldap {} (Mailutils' statements and defaults; NULL: the default) */
  char *ldap_url;            /* NULL: libldap's default (ldap.conf URI) */
  char *ldap_base;
  char *ldap_binddn;         /* NULL: anonymous */
  char *ldap_passwd;
  bool ldap_tls;             /* StartTLS */
  unsigned ldap_debug;
  struct conf_strlist ldap_field_map;  /* NAME=ATTR entries; empty: the default map */
  char *ldap_getpwnam;       /* filter with $user; NULL: posixAccount with uid=$user */
  char *ldap_getpwuid;
  bool ldap_bind_as_user;    /* check passwords by binding as the user's entry */

  /* tcp-wrappers {} */
  bool tcpwrap_enable;
  char *tcpwrap_daemon;
  char *tcpwrap_allow_table;
  char *tcpwrap_deny_table;

  /* Statements of modules pop3d does not build, kept only to name them in errors:
   * set when any statement of the sql, ldap (enable yes), gsasl (enable yes) or radius
   * block was given. */
  bool sql_used, ldap_enabled, gsasl_enabled;

  /* Where the configuration came from (for --config-verbose and messages). */
  bool verbose;
  bool lint;                 /* --config-lint: say where pop3d reads otherwise (notes) */

  /* Directory against which relative `include' names and the site files are resolved;
   * NULL (conf_init) means the build's SYSCONFDIR.  Not owned: tests point it at a
   * scratch directory. */
  const char *sysconfdir;
};

/* Fill c with the compiled-in defaults (Mailutils' defaults, see params.h). */
void conf_init(struct conf *c);
void conf_free(struct conf *c);

/* Wipe and drop what only the monitor needs of the configuration: the passwd of the sql
 * and ldap blocks and the sql param values.  The pre-login worker and the user's session
 * call it first thing; the configuration parser wipes every buffer it frees, so these
 * fields are the only copies a forked process inherits. */
void conf_forget_secrets(struct conf *c);

/* Parse one file and apply its statements to c in file order.  Statements inside
 * `program NAME { ... }` apply only when NAME is "pop3d".  Every error is printed as
 * "FILE:LINE: message" to err; parsing goes on after an error where it can, so that all
 * errors of a file are listed.  Returns the number of errors (0 = clean), or -1 when the
 * file can't be read (message printed). */
int conf_load_file(struct conf *c, const char *path, FILE *err) WUR;

/* As conf_load_file, on text already in memory (len bytes, NUL bytes allowed); name is
 * used in messages and never opened.  Used by the fuzz target and the unit tests. */
int conf_load_buffer(struct conf *c, const char *name, const char *data, size_t len,
                     FILE *err) WUR;

/* The site files, in Mailutils' order: SYSCONFDIR/mailutils.conf ($MU_SITE_CONFIG_FILE
 * overrides that name) with its program pop3d section, then SYSCONFDIR/pop3d.conf over
 * it.  A missing one is not an error.  Returns the number of errors. */
int conf_load_site(struct conf *c, FILE *err) WUR;

/* --set=PATH=VALUE (see the Mailutils --set syntax).  Returns 0, or -1 after printing
 * "--set: message" to err. */
int conf_set(struct conf *c, const char *spec, FILE *err) WUR;

/* Checks that need the whole configuration: a selected auth module pop3d does not build
 * (sql, ldap, radius, gsasl) and the like.  Prints one clear line per problem and
 * returns their number. */
int conf_check(const struct conf *c, FILE *err) WUR;

/* --config-help: the statement summary, in the shape Mailutils prints it. */
void conf_help(FILE *out);

/* Parsers of typed values, shared with the command line. 0 or -1 with *error_r. */
int conf_parse_bool(const char *s, bool *out, const char **error_r) WUR;
int conf_parse_interval(const char *s, unsigned *out, const char **error_r) WUR;
int conf_parse_tls_mode(const char *s, enum conf_tls_mode *out, const char **error_r) WUR;

#endif
