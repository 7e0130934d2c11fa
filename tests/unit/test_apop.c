/* test_apop.c - the APOP database: lookups in the GDBM and plain-text forms, safety
 * checks on the opened file (modes, owner, symlinks, directories), the check list, and
 * the digests made from a looked-up secret.  GPL-3.0-or-later. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_GDBM
# include <gdbm.h>
#endif

#include "apop.h"
#include "conf.h"
#include "tap.h"

static char dir[64];

static char *path_of(const char *name)
{
  static char p[4][256];
  static unsigned k;

  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

static void write_file(const char *name, const char *text, mode_t mode)
{
  FILE *f = fopen(path_of(name), "w");

  fputs(text, f);
  fclose(f);
  chmod(path_of(name), mode);
}

/* Look up user in file with checks; "" when the user has none, "ERR" on an open error. */
static const char *lookup(const char *file, unsigned checks, const char *user)
{
  static char buf[256];
  struct apop_db *db;
  const char *err = NULL;
  char *secret = NULL;
  int r;

  if (apop_db_open_path(file, checks, geteuid(), &db, &err) < 0)
    return "ERR";
  r = apop_db_lookup(db, user, &secret, &err);
  apop_db_close(db);
  if (r < 0)
    return "LOOKUP-ERR";
  snprintf(buf, sizeof buf, "%s", r == 1 ? secret : "");
  util_free_secret(secret);
  return buf;
}

static void text_tests(void)
{
  write_file("apop.passwd",
             "# APOP secrets\n"
             "alice:alice-apop\n"
             "  bob :spaced\n"
             "bob: bob secret with spaces  \r\n"
             "carol:\n"
             "nocolon\n"
             "dave:d:with:colons\n"
             "erin:last-line-without-newline", 0600);
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "alice"), "alice-apop",
         "text: a plain entry");
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "bob"), "bob secret with spaces",
         "text: blanks after the colon and at the end don't count");
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "carol"), "",
         "text: an empty secret is no secret");
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "dave"), "d:with:colons",
         "text: the secret may hold colons");
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "erin"), "last-line-without-newline",
         "text: last line without a newline");
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "nobody"), "", "text: unknown user");
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "# APOP secrets"), "",
         "text: comments are not entries");
  is_str(lookup(path_of("apop.passwd"), APOP_CHECK_ALL, "alic"), "",
         "text: a prefix of a name is not the name");
  write_file("tiny", "a:b\n", 0600);
  is_str(lookup(path_of("tiny"), APOP_CHECK_ALL, "a"), "b", "text: a file of one short line");
  write_file("empty", "", 0600);
  is_str(lookup(path_of("empty"), APOP_CHECK_ALL, "alice"), "", "text: empty file");
  is_str(lookup(path_of("missing"), APOP_CHECK_ALL, "alice"), "ERR", "missing file");
}

#ifdef HAVE_GDBM
static void gdbm_tests(void)
{
  GDBM_FILE g = gdbm_open(path_of("apop.db"), 0, GDBM_NEWDB, 0600, NULL);
  datum k, v;

  ok(g != NULL, "gdbm: create a database as popauth does");
  if (g == NULL)
    return;
  /* popauth's form: no NUL terminators. */
  k.dptr = "alice";
  k.dsize = 5;
  v.dptr = "alice-apop";
  v.dsize = 10;
  (void)gdbm_store(g, k, v, GDBM_REPLACE);
  k.dptr = "bob";
  k.dsize = 3;
  v.dptr = "b0b pass";
  v.dsize = 8;
  (void)gdbm_store(g, k, v, GDBM_REPLACE);
  gdbm_close(g);
  is_str(lookup(path_of("apop.db"), APOP_CHECK_ALL, "alice"), "alice-apop", "gdbm: alice");
  is_str(lookup(path_of("apop.db"), APOP_CHECK_ALL, "bob"), "b0b pass", "gdbm: bob");
  is_str(lookup(path_of("apop.db"), APOP_CHECK_ALL, "carol"), "", "gdbm: unknown user");
  is_str(lookup(path_of("apop.db"), APOP_CHECK_ALL, "alic"), "", "gdbm: prefix of a name");
  {
    char url[300];
    snprintf(url, sizeof url, "gdbm://%s", path_of("apop.db"));
    is_str(lookup(url, APOP_CHECK_ALL, "bob"), "b0b pass", "gdbm: gdbm:// URL");
  }
  chmod(path_of("apop.db"), 0644);
  is_str(lookup(path_of("apop.db"), APOP_CHECK_ALL, "bob"), "ERR",
         "gdbm: world-readable database refused");
  chmod(path_of("apop.db"), 0600);
}
#endif

static int open_err(const char *file, unsigned checks, uid_t owner)
{
  const char *err = NULL;
  int fd = apop_open_checked(file, checks, owner, &err);

  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno;
}

static void safety_tests(void)
{
  static const struct { mode_t mode; unsigned check; const char *what; } m[] = {
    { 0620, APOP_CHECK_GWRFIL, "group-writable" },
    { 0602, APOP_CHECK_AWRFIL, "world-writable" },
    { 0640, APOP_CHECK_GRDFIL, "group-readable" },
    { 0604, APOP_CHECK_ARDFIL, "world-readable" },
  };
  char sub[300], link[320];

  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    write_file("mode", "alice:x\n", m[i].mode);
    is_int(open_err(path_of("mode"), APOP_CHECK_ALL, geteuid()), EPERM,
           "%s file refused by `all'", m[i].what);
    is_int(open_err(path_of("mode"), APOP_CHECK_ALL & ~m[i].check, geteuid()), 0,
           "%s file accepted without its check", m[i].what);
  }
  write_file("mode", "alice:x\n", 0600);
  is_int(open_err(path_of("mode"), APOP_CHECK_ALL, geteuid() + 1), EPERM,
         "owner mismatch refused");
  is_int(open_err(path_of("mode"), APOP_CHECK_ALL & ~APOP_CHECK_OWNER, geteuid() + 1), 0,
         "owner not checked without the owner check");
  is_int(open_err(dir, 0, geteuid()), EPERM, "a directory is not a database");
  is_int(open_err("/dev/null", 0, geteuid()), EPERM, "a device is not a database");

  /* Symlinks: refused in a directory others may write, followed in a safe one. */
  snprintf(sub, sizeof sub, "%s/wr", dir);
  mkdir(sub, 0700);
  chmod(sub, 0777);
  snprintf(link, sizeof link, "%s/link", sub);
  ok(symlink(path_of("mode"), link) == 0, "a symlink to test with");
  is_int(open_err(link, APOP_CHECK_LINKWRDIR, geteuid()), EPERM,
         "symlink in a world-writable directory refused");
  is_int(open_err(link, 0, geteuid()), 0, "symlink followed without linkwrdir");
  is_int(open_err(link, APOP_CHECK_AWRDIR, geteuid()), EPERM,
         "file in a world-writable directory refused (awrdir)");
  chmod(sub, 0770);
  is_int(open_err(link, APOP_CHECK_LINKWRDIR, geteuid()), EPERM,
         "symlink in a group-writable directory refused");
  is_int(open_err(link, APOP_CHECK_GWRDIR, geteuid()), EPERM,
         "file in a group-writable directory refused (gwrdir)");
  chmod(sub, 0700);
  is_int(open_err(link, APOP_CHECK_ALL, geteuid()), 0,
         "symlink in a private directory followed");
  unlink(link);
  rmdir(sub);
}

static void checks_tests(void)
{
  char *none[] = { "none" }, *all[] = { "all" }, *minus[] = { "-gwrdir", "-awrdir" };
  char *bare[] = { "gwrfil", "awrfil" }, *mixed[] = { "all", "-ardfil", "+ardfil", "-grdfil" };
  char *nothing_then[] = { "none", "+linkwrdir" };
  struct conf_strlist l;

  l.v = none; l.n = 1;
  is_int(apop_checks(&l), 0, "checks: none");
  l.v = all; l.n = 1;
  is_int(apop_checks(&l), APOP_CHECK_ALL, "checks: all");
  l.v = minus; l.n = 2;
  is_int(apop_checks(&l), APOP_CHECK_ALL & ~(APOP_CHECK_GWRDIR | APOP_CHECK_AWRDIR),
         "checks: -x modifies the default");
  l.v = bare; l.n = 2;
  is_int(apop_checks(&l), APOP_CHECK_GWRFIL | APOP_CHECK_AWRFIL,
         "checks: bare names start from nothing");
  l.v = mixed; l.n = 4;
  is_int(apop_checks(&l), APOP_CHECK_ALL & ~APOP_CHECK_GRDFIL, "checks: applied in order");
  l.v = nothing_then; l.n = 2;
  is_int(apop_checks(&l), APOP_CHECK_LINKWRDIR, "checks: none then +name");
  l.n = 0;
  is_int(apop_checks(&l), APOP_CHECK_ALL, "checks: empty list is the default");
}

static void conf_tests(void)
{
  struct conf c;
  char *secret = NULL;
  const char *err = NULL;
  struct passwd *pw = getpwuid(geteuid());
  struct auth_user u;
  char owner[32];

  conf_init(&c);
  free(c.apop_database_file);
  c.apop_database_file = util_xstrdup(path_of("apop.passwd"));
  ok(apop_available(&c), "configured database available");
  is_int(apop_secret(&c, "alice", &secret, &err), AUTH_OK, "apop_secret: known user");
  is_str(secret, "alice-apop", "apop_secret: the secret");
  util_free_secret(secret);
  is_int(apop_secret(&c, "zed", &secret, &err), AUTH_FAIL, "apop_secret: unknown user");
  ok(secret == NULL, "apop_secret: no secret for an unknown user");

  snprintf(owner, sizeof owner, "%lu", (unsigned long)geteuid() + 1);
  free(c.apop_database_owner);
  c.apop_database_owner = util_xstrdup(owner);
  ok(!apop_available(&c), "apop-database-owner: another uid makes it unavailable");
  is_int(apop_secret(&c, "alice", &secret, &err), AUTH_PERM,
         "apop_secret: unsafe database is a permanent failure");
  free(c.apop_database_owner);
  c.apop_database_owner = util_xstrdup(pw != NULL ? pw->pw_name : "root");
  ok(pw == NULL || apop_available(&c), "apop-database-owner by name");
  free(c.apop_database_owner);
  c.apop_database_owner = util_xstrdup("no-such-user-here");
  ok(!apop_available(&c), "apop-database-owner: unknown name");
  free(c.apop_database_owner);
  c.apop_database_owner = NULL;

  chmod(path_of("apop.passwd"), 0604);
  ok(!apop_available(&c), "default safety: world-readable refused");
  free(c.apop_database_safety.v[0]);
  c.apop_database_safety.v[0] = util_xstrdup("-ardfil");
  ok(apop_available(&c), "apop-database-safety -ardfil accepts it");
  chmod(path_of("apop.passwd"), 0600);

  free(c.apop_database_file);
  c.apop_database_file = util_xstrdup(path_of("missing"));
  ok(!apop_available(&c), "missing database: not available");
  is_int(apop_secret(&c, "alice", &secret, &err), AUTH_PERM, "missing database: PERM");

  if (pw != NULL) {
    is_int(auth_authorize(&c, pw->pw_name, &u, &err), AUTH_OK, "authorize: a known user");
    ok(u.uid == pw->pw_uid && u.name != NULL && strcmp(u.name, pw->pw_name) == 0,
       "authorize: uid and name");
    auth_user_free(&u);
  }
  is_int(auth_authorize(&c, "no-such-user-here", &u, &err), AUTH_FAIL,
         "authorize: unknown user");
  conf_free(&c);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/test_apop.XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  chmod(dir, 0700);
  text_tests();
#ifdef HAVE_GDBM
  gdbm_tests();
#endif
  safety_tests();
  checks_tests();
  conf_tests();
  {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      printf("# could not remove %s\n", dir);
  }
  return tap_done();
}
