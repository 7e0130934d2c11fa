/* test_auth.c - authentication modules and the privilege drop, through real PAM
 * (pam_wrapper + pam_matrix), users from nss_wrapper and identity changes under
 * uid_wrapper.
 *
 * The program runs twice: first it writes the test data (from the templates in
 * tests/data/nss and tests/data/pam, with hashes made here by crypt(3)) to a temporary
 * directory and runs itself again with the wrappers preloaded; that second run makes
 * the checks.  When a wrapper library is missing the test is skipped.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_CRYPT_H
# include <crypt.h>
#endif

#include "auth.h"
#include "conf.h"
#include "params.h"
#include "privsep.h"
#include "util.h"
#include "tap.h"

#if defined(__SANITIZE_ADDRESS__)
# define TEST_AUTH_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define TEST_AUTH_ASAN 1
# endif
#endif

#define WRAPPED_ENV "POP3D_TEST_AUTH_WRAPPED"
#define DIR_ENV "POP3D_TEST_AUTH_DIR"

/* ------------------------------------------------------------------------------ */
/* Setup: find the wrappers, instantiate the templates, run again under them.      */

static const char *const lib_dirs[] = {
#ifdef __x86_64__
  "/usr/lib/x86_64-linux-gnu",
#endif
#ifdef __aarch64__
  "/usr/lib/aarch64-linux-gnu",
#endif
  "/usr/lib64", "/usr/lib", "/usr/local/lib64", "/usr/local/lib", NULL,
};

static char *find_file(const char *env, const char *name)
{
  const char *e = getenv(env);

  if (e != NULL && *e != '\0')
    return access(e, R_OK) == 0 ? util_xstrdup(e) : NULL;
  for (size_t i = 0; lib_dirs[i] != NULL; i++) {
    char *p = util_xasprintf("%s/%s", lib_dirs[i], name);
    if (access(p, R_OK) == 0)
      return p;
    free(p);
  }
  return NULL;
}

static char *srcdir_data(void)
{
  const char *top = getenv("top_srcdir");
  const char *cands[] = { top, ".", "..", "../..", NULL };

  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    if (cands[i] == NULL)
      continue;
    char *p = util_xasprintf("%s/tests/data", cands[i]);
    char *probe = util_xasprintf("%s/nss/passwd.in", p);
    bool found = access(probe, R_OK) == 0;
    free(probe);
    if (found)
      return p;
    free(p);
  }
  return NULL;
}

static char *make_hash(const char *password)
{
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  struct crypt_data *cd = util_xcalloc(1, sizeof *cd);
  const char *h;
  char *r;

  if (crypt_gensalt_rn("$6$", 0, NULL, 0, setting, (int)sizeof setting) == NULL) {
    fprintf(stderr, "crypt_gensalt failed\n");
    exit(99);
  }
  h = crypt_r(password, setting, cd);
  if (h == NULL || h[0] == '*') {
    fprintf(stderr, "crypt failed\n");
    exit(99);
  }
  r = util_xstrdup(h);
  free(cd);
  return r;
}

/* Copy template src to dst replacing @DIR@, @PAM_MODDIR@ and @HASH:password@. */
static void instantiate(const char *src, const char *dst, const char *dir,
                        const char *moddir)
{
  FILE *in = fopen(src, "r"), *out;
  char *line = NULL;
  size_t cap = 0;

  if (in == NULL || (out = fopen(dst, "w")) == NULL) {
    fprintf(stderr, "%s -> %s: %s\n", src, dst, strerror(errno));
    exit(99);
  }
  while (getline(&line, &cap, in) >= 0) {
    for (const char *p = line; *p;) {
      const char *end;
      if (*p != '@' || (end = strchr(p + 1, '@')) == NULL) {
        fputc(*p++, out);
        continue;
      }
      size_t n = (size_t)(end - p - 1);
      if (n == 3 && strncmp(p + 1, "DIR", 3) == 0) {
        fputs(dir, out);
      } else if (n == 10 && strncmp(p + 1, "PAM_MODDIR", 10) == 0) {
        fputs(moddir, out);
      } else if (n > 5 && strncmp(p + 1, "HASH:", 5) == 0) {
        char *pw = util_xstrndup(p + 6, n - 5);
        char *h = make_hash(pw);
        fputs(h, out);
        free(h);
        free(pw);
      } else {
        fputc(*p++, out);
        continue;
      }
      p = end + 1;
    }
  }
  free(line);
  fclose(in);
  if (fclose(out) != 0) {
    fprintf(stderr, "%s: %s\n", dst, strerror(errno));
    exit(99);
  }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  return remove(path);
}

static int skip_all(const char *why)
{
  printf("1..0 # SKIP %s\n", why);
  return 0;
}

static int run_wrapped(int argc, char **argv)
{
  char *pam_lib = find_file("POP3D_PAM_WRAPPER", "libpam_wrapper.so");
  char *nss_lib = find_file("POP3D_NSS_WRAPPER", "libnss_wrapper.so");
  char *uid_lib = find_file("POP3D_UID_WRAPPER", "libuid_wrapper.so");
  char *matrix = find_file("POP3D_PAM_MATRIX", "pam_wrapper/pam_matrix.so");
  char *data = srcdir_data();
  char tmpl[PATH_MAX], *dir, *moddir, *p, *preload;
  const char *tmp = getenv("TMPDIR");
  static const struct { const char *src, *dst; } files[] = {
    { "nss/passwd.in", "passwd" }, { "nss/group.in", "group" },
    { "nss/shadow.in", "shadow" },
    { "nss/virtdomain/example.org.in", "virtdomain/example.org" },
    { "nss/virtdomain/dot-hidden.in", "virtdomain/.hidden" },
    { "pam/passdb.in", "passdb" },
    { "pam/gnu-pop3d.in", "pam.d/gnu-pop3d" }, { "pam/pop3-echo.in", "pam.d/pop3-echo" },
    { "pam/pop3-broken.in", "pam.d/pop3-broken" },
    { "pam/pop3-canon.in", "pam.d/pop3-canon" }, { "pam/other.in", "pam.d/other" },
  };
  pid_t pid;
  int status;

#ifdef HAVE_PAM
  if (pam_lib == NULL)
    return skip_all("libpam_wrapper.so not found (install libpam-wrapper)");
  if (matrix == NULL)
    return skip_all("pam_wrapper/pam_matrix.so not found (install libpam-wrapper)");
#else
  /* The PAM checks are skipped; the templates still name a module directory. */
  if (matrix == NULL)
    matrix = util_xstrdup("/nonexistent/pam_matrix.so");
#endif
  if (nss_lib == NULL)
    return skip_all("libnss_wrapper.so not found (install libnss-wrapper)");
  if (uid_lib == NULL)
    return skip_all("libuid_wrapper.so not found (install libuid-wrapper)");
  if (data == NULL)
    return skip_all("tests/data not found (set top_srcdir)");

  snprintf(tmpl, sizeof tmpl, "%s/pop3d-auth.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  dir = mkdtemp(tmpl);
  if (dir == NULL) {
    perror("mkdtemp");
    return 99;
  }
  moddir = util_xstrdup(matrix);
  *strrchr(moddir, '/') = '\0';
  p = util_xasprintf("%s/pam.d", dir);
  if (mkdir(p, 0700) < 0) { perror(p); return 99; }
  free(p);
  p = util_xasprintf("%s/virtdomain", dir);
  if (mkdir(p, 0700) < 0) { perror(p); return 99; }
  free(p);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char *s = util_xasprintf("%s/%s", data, files[i].src);
    char *d = util_xasprintf("%s/%s", dir, files[i].dst);
    instantiate(s, d, dir, moddir);
    free(s);
    free(d);
  }

#ifdef HAVE_PAM
  preload = util_xasprintf("%s:%s:%s", pam_lib, nss_lib, uid_lib);
#else
  preload = util_xasprintf("%s:%s", nss_lib, uid_lib);
#endif
  p = util_xasprintf("%s/pam.d", dir);
  setenv("LD_PRELOAD", preload, 1);
  setenv("PAM_WRAPPER", "1", 1);
  setenv("PAM_WRAPPER_SERVICE_DIR", p, 1);
  free(p);
  p = util_xasprintf("%s/passwd", dir);
  setenv("NSS_WRAPPER_PASSWD", p, 1);
  free(p);
  p = util_xasprintf("%s/group", dir);
  setenv("NSS_WRAPPER_GROUP", p, 1);
  free(p);
  p = util_xasprintf("%s/shadow", dir);
  setenv("NSS_WRAPPER_SHADOW", p, 1);
  free(p);
  setenv("UID_WRAPPER", "1", 1);
  setenv("UID_WRAPPER_ROOT", "1", 0);
  setenv(DIR_ENV, dir, 1);
  setenv(WRAPPED_ENV, "1", 1);
#ifdef TEST_AUTH_ASAN
  {
    /* The wrappers come before the ASan runtime in the preload list and must not
     * bind deeply past its interceptors. */
    const char *ao = getenv("ASAN_OPTIONS");
    char *opts = util_xasprintf("%s%sverify_asan_link_order=0", ao ? ao : "",
                                ao && *ao ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    free(opts);
    setenv("PAM_WRAPPER_DISABLE_DEEPBIND", "1", 0);
    setenv("NSS_WRAPPER_DISABLE_DEEPBIND", "1", 0);
    setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 0);
  }
#endif

  fflush(stdout);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return 99;
  }
  if (pid == 0) {
    execv("/proc/self/exe", argv);
    perror("exec /proc/self/exe");
    _exit(99);
  }
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (getenv("POP3D_TEST_KEEP") == NULL)
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  else
    fprintf(stderr, "test data kept in %s\n", dir);
  free(pam_lib); free(nss_lib); free(uid_lib); free(matrix); free(data);
  free(moddir); free(preload);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  fprintf(stderr, "test died with signal %d\n", WTERMSIG(status));
  return 99;
}

/* ------------------------------------------------------------------------------ */
/* The checks (under the wrappers).                                                */

static struct conf conf;

static void list_set(struct conf_strlist *l, ...)
{
  va_list ap;
  const char *s;

  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
  va_start(ap, l);
  while ((s = va_arg(ap, const char *)) != NULL) {
    l->v = util_xreallocarray(l->v, l->n + 1, sizeof *l->v);
    l->v[l->n++] = util_xstrdup(s);
  }
  va_end(ap);
}

static void conf_reset(void)
{
  list_set(&conf.authentication, (char *)NULL);
  list_set(&conf.authorization, (char *)NULL);
  conf.pam_service = NULL;
}

struct outcome {
  enum auth_status st;
  struct auth_user u;
  char err[256];
};

static struct outcome login(const char *user, const char *password)
{
  struct outcome o;
  const char *err = NULL;

  memset(&o, 0, sizeof o);
  o.st = auth_login(&conf, user, password, &o.u, &err);
  snprintf(o.err, sizeof o.err, "%s", err != NULL ? err : "");
  return o;
}

/* Log in and expect success as name/uid. */
static void expect_ok(const char *what, const char *user, const char *password,
                      const char *name, uid_t uid)
{
  struct outcome o = login(user, password);

  is_int(o.st, AUTH_OK, "%s: accepted", what);
  if (o.st != AUTH_OK)
    printf("#   error: %s\n", o.err);
  is_str(o.u.name, name, "%s: name", what);
  is_int(o.u.uid, uid, "%s: uid", what);
  auth_user_free(&o.u);
}

static void expect_fail(const char *what, const char *user, const char *password,
                        enum auth_status want, const char *reason)
{
  struct outcome o = login(user, password);

  is_int(o.st, want, "%s: refused", what);
  if (reason != NULL) {
    ok(strncmp(o.err, reason, strlen(reason)) == 0, "%s: reason '%s'", what, reason);
    if (strncmp(o.err, reason, strlen(reason)) != 0)
      printf("#   got reason: '%s'\n", o.err);
  }
  ok(o.u.name == NULL && o.u.home == NULL && o.u.mailbox == NULL,
     "%s: nothing returned", what);
  auth_user_free(&o.u);
}

static void test_environment(void)
{
  struct passwd *pw = getpwnam("alice");

  ok(pw != NULL && pw->pw_uid == 1001, "nss_wrapper serves the test passwd file");
  ok(geteuid() == 0, "uid_wrapper makes the process root");
}

static void test_defaults(void)
{
  struct outcome o;

  conf_reset();
  ok(strcmp(auth_modules[0], "generic") == 0 && strcmp(auth_modules[1], "system") == 0,
     "auth_modules lists generic, system first");

  o = login("alice", "alice-pw");
  is_int(o.st, AUTH_OK, "generic: hash in passwd accepted");
  is_str(o.u.name, "alice", "generic: name");
  is_int(o.u.uid, 1001, "generic: uid");
  is_int(o.u.gid, 1001, "generic: gid");
  is_str(o.u.home, "/home/alice", "generic: home");
  ok(o.u.mailbox == NULL, "generic: no mailbox of its own");
  auth_user_free(&o.u);

  expect_fail("generic: bad password", "alice", "wrong", AUTH_FAIL, AUTH_BAD_LOGIN);
#ifdef HAVE_PAM
  expect_ok("default list: PAM after generic failed", "alice", "alice-pam", "alice", 1001);
#endif
  expect_ok("system: shadow hash", "bob", "bob-pw", "bob", 1002);
  expect_fail("system: bad password", "bob", "bob-pw2", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("system: locked", "carol", "carol-pw", AUTH_FAIL, "account locked");
  expect_fail("system: expired", "dave", "dave-pw", AUTH_FAIL, "account expired");
  expect_fail("system: expired, bad password", "dave", "nope", AUTH_FAIL,
              AUTH_BAD_LOGIN);
  expect_fail("system: password inactive", "erin", "erin-pw", AUTH_FAIL,
              "account expired");
  expect_fail("unknown user: the reason of a bad password", "nobody-here", "x", AUTH_FAIL,
              AUTH_BAD_LOGIN);

  list_set(&conf.authentication, "generic", (char *)NULL);
  expect_fail("generic alone: shadowed user", "bob", "bob-pw", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("generic alone: unknown user", "nobody-here", "x", AUTH_FAIL,
              AUTH_BAD_LOGIN);
  list_set(&conf.authentication, "system", (char *)NULL);
  expect_ok("system alone: hash in passwd", "alice", "alice-pw", "alice", 1001);
  expect_ok("system alone: shadow", "bob", "bob-pw", "bob", 1002);
}

#ifndef HAVE_PAM
static void test_pam(void)
{
  conf_reset();
  ok(strcmp(auth_modules[2], "pam") != 0, "pam is not listed in auth_modules");
  list_set(&conf.authentication, "pam", (char *)NULL);
  expect_fail("pam not built", "pamuser", "pam-secret", AUTH_TEMP,
              "pam: PAM support not built");
  tap_n++;
  printf("ok %d # skip PAM support not built\n", tap_n);
}
#else
static void test_pam(void)
{
  conf_reset();
  list_set(&conf.authentication, "pam", (char *)NULL);
  expect_ok("pam: good password", "pamuser", "pam-secret", "pamuser", 1006);
  expect_fail("pam: bad password", "pamuser", "pam-wrong", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("pam: unknown user", "nobody-here", "pw", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("pam: passwd hash is not PAM's", "alice", "alice-pw", AUTH_FAIL,
              AUTH_BAD_LOGIN);
  expect_fail("pam: account refused for the service", "wrongsvc", "wrongsvc-pw",
              AUTH_FAIL, "PAM: ");
  expect_fail("pam: authenticated, unknown to getpwnam", "ghost", "ghost-pw", AUTH_FAIL,
              "authenticated, but no authorization");
  expect_fail("pam: empty password", "pamuser", "", AUTH_FAIL, NULL);

  conf.pam_service = "pop3-echo";
  expect_ok("pam service pop3-echo (echo prompt, info messages)", "bob", "echo-pw",
            "bob", 1002);
  expect_fail("pam service pop3-echo: other service's user", "pamuser", "pam-secret",
              AUTH_FAIL, NULL);

  conf.pam_service = "pop3-broken";
  expect_fail("pam: passdb missing is server trouble", "pamuser", "pam-secret", AUTH_TEMP,
              "pam: PAM: ");

  conf.pam_service = "no-such-service";
  {
    struct outcome o = login("pamuser", "pam-secret");
    ok(o.st != AUTH_OK, "pam: unknown service refuses");
    auth_user_free(&o.u);
  }

  conf.pam_service = "pop3-canon";
  setenv("PAM_USER", "alice", 1);
  {
    struct outcome o = login("ALICE", "caps-pw");
    is_int(o.st, AUTH_OK, "pam: module renames the user");
    is_str(o.u.name, "alice", "pam: canonical PAM_USER is authorized");
    is_int(o.u.uid, 1001, "pam: canonical user's uid");
    auth_user_free(&o.u);
  }
  setenv("PAM_USER", "ev/il", 1);
  expect_fail("pam: invalid name from a module", "ALICE", "caps-pw", AUTH_FAIL,
              "PAM: module returned an invalid");
  unsetenv("PAM_USER");
  conf.pam_service = NULL;
}
#endif

static void test_virtdomain(void)
{
  struct outcome o;

  conf_reset();
  list_set(&conf.authentication, "virtdomain", (char *)NULL);
  list_set(&conf.authorization, "virtdomain", (char *)NULL);
  o = login("vuser@example.org", "virt-pw");
  is_int(o.st, AUTH_OK, "virtdomain: good password");
  is_str(o.u.name, "vuser", "virtdomain: local name");
  is_int(o.u.uid, 3000, "virtdomain: uid from the domain file");
  is_int(o.u.gid, 3000, "virtdomain: gid from the domain file");
  is_str(o.u.home, "/var/vmail/example.org/vuser", "virtdomain: home");
  is_str(o.u.mailbox, "/var/vmail/example.org/vuser/INBOX", "virtdomain: HOME/INBOX");
  auth_user_free(&o.u);
  expect_ok("virtdomain: user%domain", "vuser%example.org", "virt-pw", "vuser", 3000);
  /* Mailutils splits at the first `@', `!' or `:'. */
  expect_ok("virtdomain: user!domain", "vuser!example.org", "virt-pw", "vuser", 3000);
  expect_ok("virtdomain: user:domain", "vuser:example.org", "virt-pw", "vuser", 3000);
  expect_fail("virtdomain: first delimiter splits", "vuser!example.org@x", "virt-pw",
              AUTH_FAIL, NULL);
  expect_fail("virtdomain: colon, empty local part", ":example.org", "virt-pw", AUTH_FAIL,
              NULL);
  expect_fail("virtdomain: bad password", "vuser@example.org", "nss-pw", AUTH_FAIL,
              AUTH_BAD_LOGIN);
  expect_fail("virtdomain: locked", "vlocked@example.org", "vlocked-pw", AUTH_FAIL,
              "account locked");
  expect_fail("virtdomain: unknown local user", "nobody@example.org", "virt-pw",
              AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("virtdomain: unknown domain", "vuser@example.net", "virt-pw", AUTH_FAIL,
              AUTH_BAD_LOGIN);
  expect_fail("virtdomain: hidden domain file", "vuser@.hidden", "virt-pw", AUTH_FAIL,
              NULL);
  expect_fail("virtdomain: dot-dot domain", "vuser@..", "virt-pw", AUTH_FAIL, NULL);
  expect_fail("virtdomain: path in domain", "vuser@example.org/../x", "virt-pw",
              AUTH_FAIL, "invalid user name");
  expect_fail("virtdomain: empty domain", "vuser@", "virt-pw", AUTH_FAIL, NULL);
  expect_fail("virtdomain: empty local part", "@example.org", "virt-pw", AUTH_FAIL, NULL);
  expect_fail("virtdomain: no domain", "vuser", "virt-pw", AUTH_FAIL, AUTH_BAD_LOGIN);

  /* The name "vuser@example.org" also exists in passwd (uid 2000, password nss-pw):
   * the lists' order decides. */
  list_set(&conf.authorization, (char *)NULL);
  expect_ok("authorization default order: generic first", "vuser@example.org", "virt-pw",
            "vuser@example.org", 2000);
  list_set(&conf.authorization, "virtdomain", "generic", (char *)NULL);
  expect_ok("authorization virtdomain, generic", "vuser@example.org", "virt-pw", "vuser",
            3000);
  list_set(&conf.authorization, "generic", "clear", "virtdomain", (char *)NULL);
  expect_ok("authorization generic, clear, virtdomain", "vuser@example.org", "virt-pw",
            "vuser", 3000);
  list_set(&conf.authorization, "virtdomain", "clear", "generic", (char *)NULL);
  expect_ok("authorization virtdomain, clear, generic", "vuser@example.org", "virt-pw",
            "vuser@example.org", 2000);
  list_set(&conf.authorization, "pam", (char *)NULL);
  expect_fail("authorization pam only: nothing usable", "vuser@example.org", "virt-pw",
              AUTH_PERM, NULL);

  /* generic checks the hash of the entry the authorization list found (Mailutils'
   * mu_authenticate_generic): the domain file's here, not the passwd entry's. */
  list_set(&conf.authorization, "virtdomain", (char *)NULL);
  list_set(&conf.authentication, "generic", (char *)NULL);
  expect_ok("authentication generic: the domain file's password", "vuser@example.org",
            "virt-pw", "vuser", 3000);
  expect_ok("authentication generic: user!domain", "vuser!example.org", "virt-pw",
            "vuser", 3000);
  expect_fail("authentication generic: not the passwd entry's", "vuser@example.org",
              "nss-pw", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("authentication generic: locked entry", "vlocked@example.org",
              "vlocked-pw", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("authentication generic: unknown virtual user", "nobody@example.org",
              "virt-pw", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_fail("authentication generic: system user unknown to the list", "alice",
              "alice-pw", AUTH_FAIL, AUTH_BAD_LOGIN);
  list_set(&conf.authorization, "generic", (char *)NULL);
  expect_ok("authentication generic, authorization generic: the passwd entry's",
            "vuser@example.org", "nss-pw", "vuser@example.org", 2000);
  list_set(&conf.authorization, "virtdomain", (char *)NULL);
  list_set(&conf.authentication, "generic", "virtdomain", (char *)NULL);
  expect_ok("authentication generic, virtdomain", "vuser@example.org", "virt-pw", "vuser",
            3000);
}

static void test_lists(void)
{
  conf_reset();
  list_set(&conf.authentication, "clear", (char *)NULL);
  expect_fail("authentication clear: no module", "alice", "alice-pw", AUTH_PERM, NULL);
  list_set(&conf.authentication, "sql", (char *)NULL);
  expect_fail("authentication sql only: not built", "alice", "alice-pw", AUTH_PERM, NULL);
  list_set(&conf.authentication, "sql", "ldap", "generic", (char *)NULL);
  expect_ok("modules not built are skipped", "alice", "alice-pw", "alice", 1001);
  list_set(&conf.authentication, "pam", "clear", "generic", (char *)NULL);
  expect_fail("clear drops pam", "alice", "alice-pam", AUTH_FAIL, AUTH_BAD_LOGIN);
  expect_ok("clear keeps what follows", "alice", "alice-pw", "alice", 1001);
  list_set(&conf.authentication, "pam", "generic", (char *)NULL);
#ifdef HAVE_PAM
  expect_ok("pam, generic: pam's password", "alice", "alice-pam", "alice", 1001);
#endif
  expect_ok("pam, generic: generic's password", "alice", "alice-pw", "alice", 1001);
  list_set(&conf.authorization, "system", (char *)NULL);
  expect_ok("authorization system", "alice", "alice-pw", "alice", 1001);
}

static void test_names(void)
{
  char long_name[PARAMS_USER_MAX + 2];

  conf_reset();
  expect_fail("empty user name", "", "x", AUTH_FAIL, "invalid user name");
  expect_fail("NULL user name", NULL, "x", AUTH_FAIL, "invalid user name");
  expect_fail("control char in name", "al\x01ice", "alice-pw", AUTH_FAIL,
              "invalid user name");
  expect_fail("DEL in name", "alice\x7f", "alice-pw", AUTH_FAIL, "invalid user name");
  expect_fail("newline in name", "alice\n", "alice-pw", AUTH_FAIL, "invalid user name");
  expect_fail("slash in name", "a/lice", "alice-pw", AUTH_FAIL, "invalid user name");
  /* A colon is a virtual domain's delimiter: a valid name, no such user. */
  expect_fail("colon in name", "alice:", "alice-pw", AUTH_FAIL, AUTH_BAD_LOGIN);
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  expect_fail("name too long", long_name, "x", AUTH_FAIL, "invalid user name");
  long_name[PARAMS_USER_MAX] = '\0';
  expect_fail("longest name is checked normally", long_name, "x", AUTH_FAIL, NULL);
  ok(auth_name_valid("alice") && auth_name_valid("vuser@example.org") &&
     !auth_name_valid("") && !auth_name_valid(NULL), "auth_name_valid");
  expect_fail("NULL password", "alice", NULL, AUTH_FAIL, AUTH_BAD_LOGIN);
}

/* Every crypt_r() of auth.c comes here (this program's definition wins over the crypt
 * library's): counted, with the method of its setting, then done by crypt_rn(). */
static unsigned crypt_calls;
static char crypt_methods[256];

char *crypt_r(const char *phrase, const char *setting, struct crypt_data *restrict data)
{
  size_t n = strlen(crypt_methods);
  const char *end = setting[0] == '$' ? strchr(setting + 1, '$') : NULL;

  crypt_calls++;
  snprintf(crypt_methods + n, sizeof crypt_methods - n, "%.*s ",
           end != NULL ? (int)(end + 1 - setting) : 2, setting);
  return crypt_rn(phrase, setting, data, (int)sizeof *data);
}

/* The password hashes a refused login of user computes; *methods gets their methods. */
static unsigned hashes_of(const char *user, const char *password, const char **methods)
{
  struct outcome o;

  crypt_calls = 0;
  crypt_methods[0] = '\0';
  o = login(user, password);
  auth_user_free(&o.u);
  *methods = crypt_methods;
  return o.st == AUTH_FAIL ? crypt_calls : ~0u;
}

/* A wrong password of each known user and an unknown user cost the same hashes: want,
 * all $6$ (the method of the shadow file, which the dummy copies).  An invalid name,
 * which no module sees, costs a hash for PAM's check too. */
static void expect_hashes(const char *list, const char *const *known, unsigned want,
                          bool pam)
{
  static const char *const others[] = { "nobody-here", "nobody@example.org",
                                        "vuser@example.net" };
  char expect_methods[64] = "";
  const char *methods;

  for (unsigned i = 0; i < want; i++)
    strcat(expect_methods, "$6$ ");
  for (size_t i = 0; known[i] != NULL; i++) {
    is_int(hashes_of(known[i], "wrong", &methods), want,
           "%s: %s, wrong password: %u hashes", list, known[i], want);
    is_str(methods, expect_methods, "%s: %s: methods", list, known[i]);
  }
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    is_int(hashes_of(others[i], "wrong", &methods), want, "%s: '%s': %u hashes", list,
           others[i], want);
    is_str(methods, expect_methods, "%s: '%s': methods", list, others[i]);
  }
  if (pam)
    strcat(expect_methods, "$6$ ");
  is_int(hashes_of("", "wrong", &methods), want + pam, "%s: invalid name: %u hashes",
         list, want + pam);
  is_str(methods, expect_methods, "%s: invalid name: methods", list);
}

static void test_equal_cost(void)
{
  static const char *const passwd_users[] = { "alice", "bob", "carol", "dave", NULL };
  static const char *const virt_users[] = { "vuser@example.org", "vlocked@example.org",
                                            NULL };
  static const char *const all_users[] = { "alice", "bob", "carol", "vuser@example.org",
                                           "vlocked@example.org", "pamuser", NULL };
#ifdef HAVE_PAM
  static const char *const pam_users[] = { "pamuser", "alice", NULL };
#endif

  conf_reset();
  auth_init();   /* the shadow file's hashes are $6$: so is the dummy */
  /* generic and system check the same passwd hash once between them; carol is locked,
   * dave's password is checked before his expiry. */
  list_set(&conf.authentication, "generic", "system", (char *)NULL);
  expect_hashes("generic, system", passwd_users, 1, false);
  list_set(&conf.authentication, "system", (char *)NULL);
  expect_hashes("system", passwd_users, 1, false);
  list_set(&conf.authentication, "generic", (char *)NULL);
  expect_hashes("generic", passwd_users, 1, false);
  list_set(&conf.authentication, "virtdomain", (char *)NULL);
  expect_hashes("virtdomain", virt_users, 1, false);
  /* vuser@example.org has a passwd hash and a domain file's: two stores, two hashes. */
  list_set(&conf.authentication, "generic", "virtdomain", (char *)NULL);
  expect_hashes("generic, virtdomain", all_users, 2, false);
  /* generic with virtual users: the domain file's hash, once. */
  list_set(&conf.authorization, "virtdomain", (char *)NULL);
  list_set(&conf.authentication, "generic", (char *)NULL);
  expect_hashes("generic (authorization virtdomain)", virt_users, 1, false);
  list_set(&conf.authentication, "generic", "virtdomain", (char *)NULL);
  expect_hashes("generic, virtdomain (authorization virtdomain)", virt_users, 1, false);
  /* vuser@example.org's entry comes from its domain file, and system checks its passwd
   * hash too: two for everyone. */
  list_set(&conf.authorization, "virtdomain", "system", (char *)NULL);
  list_set(&conf.authentication, "generic", "system", (char *)NULL);
  expect_hashes("generic, system (authorization virtdomain, system)", all_users, 2, false);
  list_set(&conf.authorization, (char *)NULL);
#ifdef HAVE_PAM
  /* PAM's own check counts as one: pam_matrix computes no hash, and answers unknown
   * users as it answers a wrong password. */
  list_set(&conf.authentication, "pam", (char *)NULL);
  expect_hashes("pam", pam_users, 0, true);
  list_set(&conf.authentication, "system", "pam", (char *)NULL);
  expect_hashes("system, pam", passwd_users, 1, true);
#endif
  list_set(&conf.authentication, (char *)NULL);
#ifdef HAVE_PAM
  expect_hashes("default list", all_users, 2, true);
#else
  expect_hashes("default list", all_users, 2, false);
#endif
  conf_reset();
}

/* What a child reports about its identity after privsep_drop. */
struct drop_report {
  int rc;
  char err[128];
  uid_t ruid, euid;
  gid_t rgid, egid;
  int setuid0, seteuid0;
  int ngroups;
  gid_t groups[64];
  int other_rc;
  char other_err[128];
  int self_rc;
};

static bool report_has_group(const struct drop_report *r, gid_t g)
{
  for (int i = 0; i < r->ngroups && i < 64; i++)
    if (r->groups[i] == g)
      return true;
  return false;
}

static bool drop_in_child(const struct auth_user *u, gid_t extra, struct drop_report *r)
{
  int fds[2];
  pid_t pid;
  int status;
  ssize_t n;

  memset(r, 0, sizeof *r);
  if (pipe(fds) < 0)
    return false;
  fflush(stdout);
  pid = fork();
  if (pid < 0)
    return false;
  if (pid == 0) {
    struct drop_report c;
    const char *err = NULL;
    struct auth_user other = { .name = (char *)"bob", .uid = 1002, .gid = 1002 };

    memset(&c, 0, sizeof c);
    close(fds[0]);
    c.rc = privsep_drop(u, extra, &err);
    snprintf(c.err, sizeof c.err, "%s", c.rc < 0 && err ? err : "");
    c.ruid = getuid();
    c.euid = geteuid();
    c.rgid = getgid();
    c.egid = getegid();
    c.setuid0 = setuid(0);
    c.seteuid0 = seteuid(0);
    c.ngroups = getgroups(64, c.groups);
    err = NULL;
    c.other_rc = privsep_drop(&other, (gid_t)-1, &err);
    snprintf(c.other_err, sizeof c.other_err, "%s", c.other_rc < 0 && err ? err : "");
    c.self_rc = privsep_drop(u, (gid_t)-1, &err);
    if (util_write_all(fds[1], &c, sizeof c) < 0)
      _exit(1);
    _exit(0);
  }
  close(fds[1]);
  n = read(fds[0], r, sizeof *r);
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return n == (ssize_t)sizeof *r && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_privsep(void)
{
  struct auth_user alice = { .name = (char *)"alice", .uid = 1001, .gid = 1001 };
  struct auth_user root = { .name = (char *)"root", .uid = 0, .gid = 0 };
  struct drop_report r;
  const char *err = NULL;
  struct outcome o;

  ok(drop_in_child(&alice, 8, &r), "privsep: child reported");
  is_int(r.rc, 0, "privsep: drop to alice");
  if (r.rc != 0)
    printf("#   error: %s\n", r.err);
  ok(r.ruid == 1001 && r.euid == 1001, "privsep: uid is alice's");
  ok(r.rgid == 1001 && r.egid == 1001, "privsep: gid is alice's");
  ok(r.setuid0 == -1 && r.seteuid0 == -1, "privsep: setuid(0) fails afterwards");
  ok(report_has_group(&r, 1001) && report_has_group(&r, 8) && report_has_group(&r, 100),
     "privsep: supplementary groups: own, extra (mail), users");
  ok(!report_has_group(&r, 0), "privsep: root group dropped");
  is_int(r.other_rc, -1, "privsep: after the drop, another uid is refused");
  is_str(r.other_err, "not running as root: can only serve uid 1001",
         "privsep: non-root error");
  is_int(r.self_rc, 0, "privsep: non-root may serve its own uid");

  ok(privsep_drop(&root, (gid_t)-1, &err) == -1, "privsep: uid 0 refused");
  is_str(err, "refusing to serve uid 0", "privsep: uid 0 reason");
  ok(geteuid() == 0, "privsep: refusal changed nothing");

  conf_reset();
  o = login("root", "root-pw");
  is_int(o.st, AUTH_OK, "root can authenticate (system)");
  err = NULL;
  ok(o.st == AUTH_OK && privsep_drop(&o.u, (gid_t)-1, &err) == -1 && err != NULL &&
     strcmp(err, "refusing to serve uid 0") == 0, "privsep: root login gets no session");
  auth_user_free(&o.u);
}

static int run_tests(void)
{
  memset(&conf, 0, sizeof conf);
  conf.virtdomain_passwd_dir = util_xasprintf("%s/virtdomain", getenv(DIR_ENV));

  test_environment();
  test_defaults();
  test_pam();
  test_virtdomain();
  test_lists();
  test_names();
  test_equal_cost();
  test_privsep();

  conf_reset();
  free(conf.authentication.v);
  free(conf.authorization.v);
  free(conf.virtdomain_passwd_dir);
  return tap_done();
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (getenv(WRAPPED_ENV) != NULL && getenv(DIR_ENV) != NULL)
    return run_tests();
  return run_wrapped(argc, argv);
}
