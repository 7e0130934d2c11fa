/* test_module.c - the module loader (module.h): the modules of the build tree load and
 * work through what pop3d exports to them; a missing file, another ABI and another
 * build's headers are refused with the file's name; run as root, so are a module file or
 * a directory above it that its group or others can write (a sticky directory excepted),
 * and a file of another user.
 * auth_modules_load() loads what the authentication lists use, and only that.  And the
 * checks of ldap URLs that pop3d makes without libldap.
 * Run from the build tree (top_builddir, or the current directory).  GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "auth_impl.h"
#include "auth_ldap.h"
#include "conf.h"
#include "module.h"
#include "tap.h"

#if defined(HAVE_MYSQL) || defined(HAVE_PGSQL)
# define SQL_BUILT true
#else
# define SQL_BUILT false
#endif
#ifdef HAVE_LDAP
# define LDAP_BUILT true
#else
# define LDAP_BUILT false
#endif
#ifdef HAVE_LIBWRAP
# define WRAP_BUILT true
#else
# define WRAP_BUILT false
#endif

static char builddir[PATH_MAX];

/* POP3D_MODULE_DIR: sub, a directory of the build tree. */
static void use_dir(const char *sub)
{
  char d[PATH_MAX + 64];

  snprintf(d, sizeof d, "%s/%s", builddir, sub);
  setenv("POP3D_MODULE_DIR", d, 1);
}

static bool has(const char *text, const char *part)
{
  return text != NULL && strstr(text, part) != NULL;
}

static void test_dir(void)
{
  unsetenv("POP3D_MODULE_DIR");
  is_str(module_dir(), MODULE_DIR, "without POP3D_MODULE_DIR: the build's pkglibdir");
  setenv("POP3D_MODULE_DIR", "", 1);
  is_str(module_dir(), MODULE_DIR, "an empty POP3D_MODULE_DIR names no directory");
  setenv("POP3D_MODULE_DIR", "/srv/pop3d-modules", 1);
  is_str(module_dir(), "/srv/pop3d-modules", "POP3D_MODULE_DIR names another");
}

static void test_build_tree(void)
{
  static const struct { const char *name; bool built, auth; } mods[] = {
    { "sql", SQL_BUILT, true },
    { "ldap", LDAP_BUILT, true },
    { "tcpwrap", WRAP_BUILT, false },
  };

  use_dir("modules");
  for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
    const struct pop3d_module *m;
    const char *err = NULL;

    if (!mods[i].built) {
      ok(1, "%s.so # SKIP not built", mods[i].name);
      continue;
    }
    m = module_load(mods[i].name, &err);
    ok(m != NULL, "%s.so loads from the build tree%s%s", mods[i].name, m ? "" : ": ",
       m ? "" : err);
    if (m == NULL)
      continue;
    ok(m->abi == POP3D_MODULE_ABI && strcmp(m->name, mods[i].name) == 0,
       "%s.so: its ABI and name", mods[i].name);
    if (mods[i].auth)
      ok(m->auth != NULL && m->auth->authenticate != NULL && m->auth->authorize != NULL &&
         m->auth->release != NULL && m->tcpwrap_check == NULL,
         "%s.so: an authentication and authorization module", mods[i].name);
    else
      ok(m->auth == NULL && m->tcpwrap_check != NULL, "%s.so: the tcp-wrappers check",
         mods[i].name);
    ok(module_load(mods[i].name, &err) == m, "%s.so loaded again: the same module",
       mods[i].name);
  }
}

static void test_refused(void)
{
  const struct pop3d_module *m;
  const char *err = NULL;

  use_dir("no-such-dir");
  m = module_load("sql", &err);
  ok(m == NULL && has(err, "can't load module ") && has(err, "/no-such-dir/sql.so") &&
     has(err, "No such file"), "a missing module is refused, its file named: %s", err);
  use_dir("tests/unit");
  m = module_load("badabi", &err);
  ok(m == NULL && has(err, "/tests/unit/badabi.so: module ABI "),
     "a module of another ABI is refused: %s", err);
  m = module_load("badlayout", &err);
  ok(m == NULL && has(err, "/tests/unit/badlayout.so: built with other headers"),
     "a module of another build is refused: %s", err);
}

static int copy(const char *from, const char *to)
{
  char buf[65536];
  ssize_t n;
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int r = in >= 0 && out >= 0 ? 0 : -1;

  while (r == 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n)
      r = -1;
  if (in >= 0)
    close(in);
  if (out >= 0 && close(out) < 0)
    r = -1;
  return r;
}

/* As root: a copy of badabi.so in a directory of ours.  The checks come before the file
 * is opened, so a module that passes them is refused for its ABI instead. */
static void test_owner_and_mode(void)
{
  char dir[PATH_MAX + 64], file[PATH_MAX + 128], from[PATH_MAX + 128];
  const char *err = NULL;

  if (geteuid() != 0) {
    ok(1, "file owner and mode # SKIP not run as root");
    return;
  }
  snprintf(dir, sizeof dir, "%s/tests/unit/test_module.d", builddir);
  snprintf(file, sizeof file, "%s/badabi.so", dir);
  snprintf(from, sizeof from, "%s/tests/unit/badabi.so", builddir);
  (void)mkdir(dir, 0755);
  if (chmod(dir, 0755) < 0 || copy(from, file) < 0 || chmod(file, 0644) < 0) {
    ok(0, "a copy of badabi.so in %s", dir);
    return;
  }
  use_dir("tests/unit/test_module.d");
  ok(module_load("badabi", &err) == NULL && has(err, "module ABI"),
     "root's file, 0644, in root's 0755 directories: checked, then opened: %s", err);
  (void)chmod(file, 0664);
  ok(module_load("badabi", &err) == NULL && has(err, "/badabi.so is writable by its group"),
     "a module file its group can write is refused: %s", err);
  (void)chmod(file, 0646);
  ok(module_load("badabi", &err) == NULL && has(err, "/badabi.so is writable by others"),
     "a module file others can write is refused: %s", err);
  (void)chmod(file, 0644);
  if (chown(file, 1, 1) == 0)
    ok(module_load("badabi", &err) == NULL && has(err, "/badabi.so belongs to uid 1"),
       "a module file of another user is refused: %s", err);
  else
    ok(0, "chown %s", file);
  if (chown(file, 0, 0) < 0)
    ok(0, "chown %s back to root", file);
  (void)chmod(dir, 0775);
  ok(module_load("badabi", &err) == NULL &&
     has(err, "/test_module.d is writable by its group"),
     "a module in a directory its group can write is refused: %s", err);
  (void)chmod(dir, 01777);
  ok(module_load("badabi", &err) == NULL && has(err, "module ABI"),
     "a sticky directory that others can write (as /tmp) is not: %s", err);
  (void)chmod(dir, 0755);
  (void)unlink(file);
  (void)rmdir(dir);
}

/* A configuration of the text (its errors are the test's). */
static void load_conf(struct conf *c, const char *text)
{
  conf_init(c);
  if (conf_load_buffer(c, "t.conf", text, strlen(text), stderr) != 0)
    ok(0, "configuration `%s'", text);
}

/* auth_modules_load() on text, with the modules looked for in dir: its return, and its
 * lines in out. */
static int auth_load(const char *text, const char *dir, char *out, size_t size)
{
  struct conf c;
  char *lines = NULL;
  size_t len = 0;
  FILE *err = open_memstream(&lines, &len);
  int n;

  load_conf(&c, text);
  use_dir(dir);
  n = auth_modules_load(&c, err);
  fclose(err);
  snprintf(out, size, "%s", lines != NULL ? lines : "");
  free(lines);
  conf_free(&c);
  return n;
}

#ifdef HAVE_MYSQL
# define SQL_BLOCK "sql { interface mysql; host /nonexistent/mysqld.sock; "
#else
# define SQL_BLOCK "sql { interface postgres; host /nonexistent; "
#endif
#define SQL_GETPASS "getpass \"SELECT pw FROM u WHERE n='$user'\"; }; "
#define LDAP_BLOCK "ldap { enable yes; url \"ldap://127.0.0.1:1/\"; base \"o=x\"; }; "

static void test_auth_modules_load(void)
{
  char out[1024];
  struct conf c;
  struct auth_user u;
  const char *why = NULL;
  enum auth_status st;

  if (!SQL_BUILT || !LDAP_BUILT) {
    ok(1, "auth_modules_load # SKIP sql or ldap not built");
    return;
  }
  /* Looked for in a directory without modules: a line for each one that is loaded. */
  is_int(auth_load(SQL_BLOCK SQL_GETPASS "auth { authentication generic; };", "none", out,
                   sizeof out), 0, "sql configured but not in the lists: not loaded");
  is_int(auth_load(SQL_BLOCK "}; auth { authentication sql; };", "none", out, sizeof out), 0,
         "sql in the list without the query it needs: not loaded");
  is_int(auth_load(LDAP_BLOCK "auth { authentication generic; authorization system; };",
                   "none", out, sizeof out), 0, "ldap enabled but not in the lists: not loaded");
  is_int(auth_load(LDAP_BLOCK "auth { authentication generic; };", "none", out, sizeof out),
         1, "ldap enabled, default authorization list: loaded");
  is_int(auth_load(SQL_BLOCK SQL_GETPASS "auth { authentication sql; };", "none", out,
                   sizeof out), 1, "authentication sql: loaded");
  ok(has(out, "sql: can't load module ") && has(out, "/none/sql.so: "),
     "a module that can't be loaded: its name and file: %s", out);
  is_int(auth_load(SQL_BLOCK SQL_GETPASS LDAP_BLOCK, "none", out, sizeof out), 2,
         "the default lists: sql and ldap, when their blocks let them serve");
  is_int(auth_load(LDAP_BLOCK "auth { authentication ldap; authorization generic; };",
                   "modules", out, sizeof out), 0, "ldap loads from the build tree: %s", out);
  is_int(auth_load(SQL_BLOCK SQL_GETPASS "auth { authentication sql; };", "modules", out,
                   sizeof out), 0, "sql loads from the build tree: %s", out);
  is_int(auth_load(SQL_BLOCK SQL_GETPASS "auth { authentication sql; };", "none", out,
                   sizeof out), 0, "a module is loaded once: not looked for again");

  /* Logins go through the modules, which call back into pop3d: servers that can't be
   * reached are temporary failures with the client library's reason. */
  load_conf(&c, SQL_BLOCK SQL_GETPASS "auth { authentication sql; authorization generic; };");
  st = auth_login(&c, "alice", "pw", &u, &why);
  ok(st == AUTH_TEMP && has(why, "sql: "), "a login through sql.so: %s", why);
  auth_user_free(&u);
  conf_free(&c);
  load_conf(&c, LDAP_BLOCK "auth { authentication ldap; authorization generic; };");
  st = auth_login(&c, "alice", "pw", &u, &why);
  ok(st == AUTH_TEMP && has(why, "ldap: "), "a login through ldap.so: %s", why);
  auth_user_free(&u);
  conf_free(&c);
}

/* The URLs of ldap { url ...; }, as libldap's ldap_url_parse() takes them (without
 * libldap: the checks are part of pop3d). */
static void test_ldap_urls(void)
{
  static const char *const good[] = {
    "ldap://x", "ldap://", "ldap:///", "ldap://127.0.0.1:389/", "ldaps://ldap.example.org/",
    "LDAP://H:636", "pldap://h/", "ldapi://%2Frun%2Fslapd%2Fldapi", "ldapi:///",
    "ldap://[::1]:389/", "ldap://[::1]", "<ldap://h/>", "URL:ldap://h/", "<URL:ldap://h/o=x>",
    "ldap://h/dc=example%2Cdc=org?uid?sub?(uid=a)?!bindname=cn%3Dx",
    "ldap://h/dc=x??base", "ldap://h/dc=x???", "ldap://h/??ONE", "ldap://h/?a?%73ub",
    "ldap://h:%33%38%39/", "ldap://h?uid", "ldap://h:389?uid?sub", "ldap://a ldap://b:10",
    "ldap://a,ldaps://b", " ldap://a ",
  };
  static const char *const bad[] = {
    "", " ", ",", "http://example.org/", "ldap:/x", "ldap:", "cldap://h/", "ldap://[bad",
    "ldap://[::1]x:1/", "ldap://h:/", "ldap://h:38x/", "ldap://h:5%/", "ldap://h/?a?bogus",
    "ldap://h/?a?su%", "ldap://h/??sub?%", "ldap://h/?a?sub?f?e?x", "ldap://h/????",
    "<ldap://h/", "<ldap://", "<>", "ldap://h/ ftp://h/", "ldap://127.0.0.1/ ldap://[bad",
  };
  const char *err;

  if (!LDAP_BUILT) {
    ok(1, "ldap URLs # SKIP ldap not built");
    return;
  }
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    ok(auth_ldap_check_url(good[i], &err) == 0, "ldap url `%s'", good[i]);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ok(auth_ldap_check_url(bad[i], &err) < 0, "not an ldap url: `%s'", bad[i]);
}

int main(void)
{
  const char *top = getenv("top_builddir");

  if (top == NULL || top[0] == '\0')
    top = ".";
  if (realpath(top, builddir) == NULL) {
    perror(top);
    return 1;
  }
  test_dir();
  test_build_tree();
  test_refused();
  test_owner_and_mode();
  test_auth_modules_load();
  test_ldap_urls();
  return tap_done();
}
