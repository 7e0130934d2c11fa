/* module.c - the loader of pop3d's modules (module.h).
 *
 * What a module calls in pop3d: the few functions of the authentication front that a
 * backend uses (auth_check_hash(), auth_set_error(), auth_hash_usable(),
 * auth_name_valid()) and log_msg(); its helpers without state (util.c, base64.c) are
 * linked into the module itself.  pop3d exports just those symbols (the MODULE_EXPORTS
 * of Makefile.am, given to the linker as a dynamic list) rather than all of its own
 * (-rdynamic) or a table of callbacks passed to the module: the backends are the same
 * source whether they are linked into pop3d or not, the linker checks every call, and
 * with RTLD_NOW a symbol that is missing stops the load with its name, not a call at
 * login time.  The cost is that list, and a pop3d that exports five symbols.
 *
 * The checks of a module's file are those sshd makes on its own files (StrictModes): in
 * a process started as root, the module and each directory above it must belong to
 * root, or to whoever owns the running program or a directory above it (who could
 * replace the program itself: a build tree), and be writable by nobody else (group or
 * others), but for a directory with the sticky bit (/tmp), in which nobody else can
 * rename or remove what belongs to them; the file that is loaded is the one checked (its
 * real path, every link resolved), which nobody else can then replace before dlopen()
 * opens it.  A process
 * started as root keeps these checks after it dropped its privileges (the tcp-wrappers
 * child loads tcpwrap.so as the privsep user).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "module.h"
#include "module-layout.h"

#ifndef MODULE_DIR
# error "MODULE_DIR (the directory of the modules) is set by the build"
#endif

static char module_error[PATH_MAX + 256];

/* Whether the process was started by root (set before main()): it keeps the checks of
 * the files it loads after it changed its identity. */
static bool started_as_root;

__attribute__((constructor)) static void note_start(void)
{
  started_as_root = geteuid() == 0 || getuid() == 0;
}

const char *module_dir(void)
{
  const char *d = secure_getenv("POP3D_MODULE_DIR");

  return d != NULL && d[0] != '\0' ? d : MODULE_DIR;
}

static const struct pop3d_module *fail(const char **error_r, const char *path,
                                       const char *fmt, ...) PRINTF(3, 4);

static const struct pop3d_module *fail(const char **error_r, const char *path,
                                       const char *fmt, ...)
{
  size_t n;
  va_list ap;

  n = (size_t)snprintf(module_error, sizeof module_error, "can't load module %s: ", path);
  if (n < sizeof module_error) {
    va_start(ap, fmt);
    vsnprintf(module_error + n, sizeof module_error - n, fmt, ap);
    va_end(ap);
  }
  *error_r = module_error;
  return NULL;
}

/* Cut path to its parent directory; false when it is / already. */
static bool parent(char *path)
{
  char *slash = strrchr(path, '/');

  if (slash == NULL || strcmp(path, "/") == 0)
    return false;
  if (slash == path)
    slash[1] = '\0';
  else
    *slash = '\0';
  return true;
}

/* Who may own what a process started as root loads: root, and whoever owns the running
 * program or a directory above it. */
static bool trusted_owner(uid_t uid)
{
  char *exe;
  bool trusted = false;
  struct stat st;

  if (uid == 0)
    return true;
  exe = realpath("/proc/self/exe", NULL);
  if (exe == NULL)
    return false;
  do
    trusted = stat(exe, &st) == 0 && st.st_uid == uid;
  while (!trusted && parent(exe));
  free(exe);
  return trusted;
}

/* path, a module file (dir false) or a directory above it: 0, or -1 with why. */
static int check_one(const char *path, bool dir, char *why, size_t size)
{
  struct stat st;

  if (stat(path, &st) < 0) {
    snprintf(why, size, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (!dir && !S_ISREG(st.st_mode)) {
    snprintf(why, size, "%s is not a regular file", path);
    return -1;
  }
  if (!trusted_owner(st.st_uid)) {
    snprintf(why, size, "%s belongs to uid %lu (not root)", path,
             (unsigned long)st.st_uid);
    return -1;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(dir && (st.st_mode & S_ISVTX) != 0)) {
    snprintf(why, size, "%s is writable by %s", path,
             (st.st_mode & S_IWOTH) != 0 ? "others" : "its group");
    return -1;
  }
  return 0;
}

/* The real path of a module file, and every directory above it up to /: 0, or -1 with
 * why. */
static int check_tree(const char *real, char *why, size_t size)
{
  char dir[PATH_MAX];

  if (check_one(real, false, why, size) < 0)
    return -1;
  snprintf(dir, sizeof dir, "%s", real);
  while (parent(dir))
    if (check_one(dir, true, why, size) < 0)
      return -1;
  return 0;
}

const struct pop3d_module *module_load(const char *name, const char **error_r)
{
  char path[PATH_MAX], why[PATH_MAX + 64];
  char *real = NULL;
  const char *load = path, *e;
  const struct pop3d_module *m;
  void *h;

  if ((size_t)snprintf(path, sizeof path, "%s/%s.so", module_dir(), name) >= sizeof path)
    return fail(error_r, name, "the path of the module is too long");
  if (started_as_root || geteuid() == 0) {
    real = realpath(path, NULL);
    if (real == NULL)
      return fail(error_r, path, "%s", strerror(errno));
    if (check_tree(real, why, sizeof why) < 0) {
      free(real);
      return fail(error_r, path, "%s", why);
    }
    load = real;
  }
  h = dlopen(load, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    /* dlerror() names the file that failed (the module or a library it needs): the
     * module's name is said once. */
    e = dlerror();
    if (e == NULL)
      e = "dlopen failed";
    if (strncmp(e, load, strlen(load)) == 0 && strncmp(e + strlen(load), ": ", 2) == 0)
      e += strlen(load) + 2;
    fail(error_r, path, "%s", e);
    free(real);
    return NULL;
  }
  free(real);
  m = dlsym(h, "pop3d_module");
  if (m == NULL)
    fail(error_r, path, "no symbol pop3d_module: not a pop3d module");
  else if (m->abi != POP3D_MODULE_ABI)
    fail(error_r, path, "module ABI %u, this pop3d has ABI %u", m->abi, POP3D_MODULE_ABI);
  else if (m->layout != MODULE_LAYOUT)
    fail(error_r, path, "built with other headers than this pop3d (layout %lu, this "
         "pop3d %lu): install the modules of this build", m->layout,
         (unsigned long)MODULE_LAYOUT);
  else if (m->name == NULL || strcmp(m->name, name) != 0)
    fail(error_r, path, "the file holds module `%.64s'", m->name ? m->name : "");
  else
    return m;
  (void)dlclose(h);
  return NULL;
}
