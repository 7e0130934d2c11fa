/* auth_ldap.h - the ldap module, and the checks of its configuration values that
 * conf.c makes at parse time (a bad value is reported as FILE:LINE, not at the first
 * login).  A build without LDAP accepts every value; conf_check() refuses the module
 * when the configuration selects it.  The module itself is ldap.so (module.h), which
 * auth.c's entry `ldap' calls through once it is loaded; what is here is part of pop3d
 * and needs no libldap.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_AUTH_LDAP_H
#define POP3D_AUTH_LDAP_H

#include <stdbool.h>

#include "util.h"

struct conf;

/* Whether the configuration lets ldap serve: ldap { enable yes; } in a build with LDAP
 * (in the default lists too, as in Mailutils). */
bool auth_ldap_usable(const struct conf *c, bool authz);

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
