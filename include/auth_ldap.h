/* auth_ldap.h - the ldap module, and the checks of its configuration values that
 * conf.c makes at parse time (a bad value is reported as FILE:LINE, not at the first
 * login).  A build without LDAP accepts every value; conf_check() refuses the module
 * when the configuration selects it.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_AUTH_LDAP_H
#define POP3D_AUTH_LDAP_H

#include "util.h"

struct auth_module;

/* The module of auth.c's table (a stub that knows nobody when not built). */
extern const struct auth_module auth_module_ldap;

/* One or more ldap://, ldaps:// or ldapi:// URLs (separated by spaces or commas), as
 * ldap_initialize() takes them.  0, or -1 with *error_r. */
int auth_ldap_check_url(const char *url, const char **error_r) WUR;

/* A search filter with $user or ${user} (the login name, escaped as RFC 4515 says where
 * it is put in): bounded length, balanced ${...}.  0, or -1 with *error_r. */
int auth_ldap_check_filter(const char *filter, const char **error_r) WUR;

/* One field-map definition NAME=ATTR: NAME one of name, passwd, uid, gid, gecos, dir,
 * shell, mailbox, quota; ATTR an attribute name.  0, or -1 with *error_r. */
int auth_ldap_check_field(const char *def, const char **error_r) WUR;

#endif
