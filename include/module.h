/* module.h - loadable modules: the clients of optional services (the sql and ldap
 * authentication modules, tcp-wrappers' libwrap) are shared objects of MODULE_DIR, each
 * loaded only by a process that uses it, so that the processes of a site that does not
 * use them never map their libraries (each fork costs time in proportion to what is
 * mapped).
 *
 * A module exports one symbol, `pop3d_module' (struct pop3d_module, below; tcpwrap.so
 * also defines the two variables libwrap takes from its program).  The functions of
 * pop3d that modules call are exported by pop3d itself (see src/module.c).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_MODULE_H
#define POP3D_MODULE_H

#include <stdbool.h>

#include "util.h"

struct conf;
struct auth_module;

/* The version of struct pop3d_module and of what a module may call in pop3d: raised
 * when either changes. */
#define POP3D_MODULE_ABI 1

struct pop3d_module {
  unsigned abi;            /* POP3D_MODULE_ABI of the module's build */
  /* MODULE_LAYOUT of the module's build: a checksum of the headers whose structures a
   * module reads (struct conf, struct auth_ctx...), made by the build (module-layout.h),
   * so that a module of another build is refused rather than misread. */
  unsigned long layout;
  const char *name;        /* its file name without .so */
  /* sql, ldap: the authentication and authorization module of auth.c's lists.  Its
   * usable() is not called: pop3d decides from the configuration. */
  const struct auth_module *auth;
  /* tcpwrap: hosts_access() on the connected socket fd (acl_tcpwrap_check()). */
  bool (*tcpwrap_check)(const struct conf *c, int fd);
};

/* In a module's own source (built with -DPOP3D_MODULE): its definition.
 *   POP3D_MODULE_EXPORT const struct pop3d_module pop3d_module = {
 *     POP3D_MODULE_HEADER("sql"), .auth = &sql_module,
 *   };
 */
#ifdef POP3D_MODULE
# include "module-layout.h"
# define POP3D_MODULE_EXPORT __attribute__((visibility("default")))
# define POP3D_MODULE_HEADER(NAME) .abi = POP3D_MODULE_ABI, .layout = MODULE_LAYOUT, \
    .name = (NAME)
extern POP3D_MODULE_EXPORT const struct pop3d_module pop3d_module;
#endif

/* The directory of the modules: POP3D_MODULE_DIR from the environment (ignored in a
 * set-user-ID or otherwise secure-execution process, as secure_getenv() does), else
 * the build's MODULE_DIR ($(pkglibdir)). */
const char *module_dir(void);

/* Load MODULE_DIR/NAME.so (dlopen, RTLD_NOW | RTLD_LOCAL) and return its struct, after
 * checking its ABI and layout and, in a process started as root, that the file and
 * every directory above it belong to root (or to the owner of the running program)
 * and are not writable by group or others.  NULL with *error_r (valid until the next
 * call), which names the file and says why.  A module loaded twice is the same one. */
const struct pop3d_module *module_load(const char *name, const char **error_r) WUR;

#endif
