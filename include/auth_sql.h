/* auth_sql.h - the sql module (Mailutils' `sql { ... }'): users, password hashes, homes,
 * maildrops, uids and gids from MySQL/MariaDB or PostgreSQL, and the checks of its
 * configuration that conf_check() makes before serving.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_AUTH_SQL_H
#define POP3D_AUTH_SQL_H

#include <stdio.h>

#include "util.h"

struct conf;
struct auth_module;

/* The module of auth.c's table (a stub that knows nobody when no interface is built). */
extern const struct auth_module auth_module_sql;

/* When the auth lists select sql: an interface this build has (mysql, postgres), the
 * queries the lists need (getpwnam for authorization, getpass for authentication),
 * placeholders it can expand, a well-formed field-map and param.  One line per problem
 * ("FILE:LINE: sql: ...", the sql block's place) on err; returns their number. */
int auth_sql_conf_check(const struct conf *c, FILE *err) WUR;

#endif
