/* auth_sql.h - the sql module (Mailutils' `sql { ... }'): users, password hashes, homes,
 * maildrops, uids and gids from MySQL/MariaDB or PostgreSQL, and the checks of its
 * configuration that conf_check() makes before serving.  The module itself is sql.so
 * (module.h), which auth.c's entry `sql' calls through once it is loaded; what is here
 * is part of pop3d.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_AUTH_SQL_H
#define POP3D_AUTH_SQL_H

#include <stdbool.h>
#include <stdio.h>

#include "util.h"

struct conf;

/* Whether the configuration lets sql authenticate (authz false) or authorize (true): an
 * interface this build has, and the query that needs (getpass, getpwnam). */
bool auth_sql_usable(const struct conf *c, bool authz);

/* When the auth lists select sql: an interface this build has (mysql, postgres), the
 * queries the lists need (getpwnam for authorization, getpass for authentication),
 * placeholders it can expand, a well-formed field-map and param.  One line per problem
 * ("FILE:LINE: sql: ...", the sql block's place) on err; returns their number. */
int auth_sql_conf_check(const struct conf *c, FILE *err) WUR;

#endif
