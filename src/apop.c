/* apop.c - the APOP secrets database and the digests made from its secrets.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_GDBM
# include <gdbm.h>
#endif

#include "apop.h"
#include "conf.h"
#include "log.h"
#include "params.h"

static const struct {
  const char *name;
  unsigned bit;
} check_names[] = {
  { "gwrfil", APOP_CHECK_GWRFIL },
  { "awrfil", APOP_CHECK_AWRFIL },
  { "grdfil", APOP_CHECK_GRDFIL },
  { "ardfil", APOP_CHECK_ARDFIL },
  { "linkwrdir", APOP_CHECK_LINKWRDIR },
  { "gwrdir", APOP_CHECK_GWRDIR },
  { "awrdir", APOP_CHECK_AWRDIR },
};

unsigned apop_checks(const struct conf_strlist *names)
{
  unsigned set = APOP_CHECK_ALL;

  if (names == NULL || names->n == 0)
    return set;
  if (names->v[0][0] != '+' && names->v[0][0] != '-')
    set = 0;
  for (size_t i = 0; i < names->n; i++) {
    const char *n = names->v[i];
    bool off = n[0] == '-';
    unsigned bit = 0;

    if (n[0] == '+' || n[0] == '-')
      n++;
    if (strcmp(n, "all") == 0)
      bit = APOP_CHECK_ALL;
    else if (strcmp(n, "none") == 0) {
      set = 0;
      continue;
    }
    for (size_t k = 0; bit == 0 && k < sizeof check_names / sizeof check_names[0]; k++)
      if (strcmp(check_names[k].name, n) == 0)
        bit = check_names[k].bit;
    if (off)
      set &= ~bit;
    else
      set |= bit;
  }
  return set;
}

/* The file name in a database URL: gdbm://PATH and file://PATH name PATH; Mailutils'
 * URL parameters (";...") are not ours to interpret. */
static char *url_path(const char *path)
{
  static const char *const schemes[] = { "gdbm://", "file://" };
  size_t n;

  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp(path, schemes[i], strlen(schemes[i])) == 0) {
      path += strlen(schemes[i]);
      break;
    }
  n = strcspn(path, ";");
  return util_xstrndup(path, n);
}

static int fail(const char **error_r, const char *msg, int err)
{
  *error_r = msg;
  errno = err;
  return -1;
}

int apop_open_checked(const char *path, unsigned checks, uid_t owner,
                      const char **error_r)
{
  static char errbuf[160];
  char *name = url_path(path), *slash, *base;
  const char *dir;
  struct stat dst, st;
  int dfd, fd, flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, e;
  bool wrdir;

  if (name[0] == '\0') {
    free(name);
    return fail(error_r, "empty file name", EINVAL);
  }
  slash = strrchr(name, '/');
  if (slash == NULL) {
    dir = ".";
    base = name;
  } else {
    *slash = '\0';
    dir = slash == name ? "/" : name;
    base = slash + 1;
  }
  if (base[0] == '\0') {
    free(name);
    return fail(error_r, "not a file name", EINVAL);
  }
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fstat(dfd, &dst) < 0) {
    e = errno;
    snprintf(errbuf, sizeof errbuf, "directory: %s", strerror(e));
    if (dfd >= 0)
      close(dfd);
    free(name);
    return fail(error_r, errbuf, e);
  }
  wrdir = (dst.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  /* A symlink is followed only where nobody but the directory's owner could have put
   * it; in a directory others may write, the link itself is refused. */
  if ((checks & APOP_CHECK_LINKWRDIR) && wrdir)
    flags |= O_NOFOLLOW;
  fd = openat(dfd, base, flags);
  e = errno;
  close(dfd);
  free(name);
  if (fd < 0) {
    if (e == ELOOP && (flags & O_NOFOLLOW))
      return fail(error_r, "symbolic link in a group- or world-writable directory", EPERM);
    snprintf(errbuf, sizeof errbuf, "%s", strerror(e));
    return fail(error_r, errbuf, e);
  }
  if (fstat(fd, &st) < 0) {
    e = errno;
    close(fd);
    snprintf(errbuf, sizeof errbuf, "fstat: %s", strerror(e));
    return fail(error_r, errbuf, e);
  }
  {
    const char *why = NULL;

    if (!S_ISREG(st.st_mode))
      why = "not a regular file";
    else if ((checks & APOP_CHECK_OWNER) && st.st_uid != owner) {
      snprintf(errbuf, sizeof errbuf, "owned by uid %lu, not %lu",
               (unsigned long)st.st_uid, (unsigned long)owner);
      why = errbuf;
    } else if ((checks & APOP_CHECK_GWRFIL) && (st.st_mode & S_IWGRP))
      why = "group-writable file";
    else if ((checks & APOP_CHECK_AWRFIL) && (st.st_mode & S_IWOTH))
      why = "world-writable file";
    else if ((checks & APOP_CHECK_GRDFIL) && (st.st_mode & S_IRGRP))
      why = "group-readable file";
    else if ((checks & APOP_CHECK_ARDFIL) && (st.st_mode & S_IROTH))
      why = "world-readable file";
    else if ((checks & APOP_CHECK_GWRDIR) && (dst.st_mode & S_IWGRP))
      why = "in a group-writable directory";
    else if ((checks & APOP_CHECK_AWRDIR) && (dst.st_mode & S_IWOTH))
      why = "in a world-writable directory";
    if (why != NULL) {
      close(fd);
      return fail(error_r, why, EPERM);
    }
  }
  return fd;
}

struct apop_db {
#ifdef HAVE_GDBM
  GDBM_FILE gdbm;           /* NULL: plain text */
#endif
  char *text;               /* the plain-text file, NUL-terminated */
  size_t text_len;
};

/* Read a plain-text database whole (it is small and read once a login). */
static int read_text(struct apop_db *db, int fd, const char **error_r)
{
  struct stat st;
  size_t cap, len = 0;

  if (fstat(fd, &st) < 0)
    return fail(error_r, "fstat failed", errno);
  if ((uint64_t)st.st_size > APOP_TEXT_MAX)
    return fail(error_r, "plain-text database too large", EFBIG);
  cap = (size_t)st.st_size + 1;
  db->text = util_xmalloc(cap);
  for (;;) {
    ssize_t r;

    if (len + 1 >= cap) {
      if (cap > APOP_TEXT_MAX)
        return fail(error_r, "plain-text database too large", EFBIG);
      cap *= 2;
      db->text = util_xreallocarray(db->text, cap, 1);
    }
    r = pread(fd, db->text + len, cap - 1 - len, (off_t)len);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return fail(error_r, "read failed", errno);
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  db->text[len] = '\0';
  db->text_len = len;
  return 0;
}

#ifdef HAVE_GDBM
/* GDBM files start with a magic number 0x13579aXX (in either byte order); a text file
 * can't, since its first byte would be a control character. */
static bool is_gdbm(int fd)
{
  unsigned char m[4];
  ssize_t r;

  do
    r = pread(fd, m, sizeof m, 0);
  while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof m)
    return false;
  return (m[0] == 0x13 && m[1] == 0x57 && m[2] == 0x9a && (m[3] & 0xe0) == 0xc0) ||
         (m[3] == 0x13 && m[2] == 0x57 && m[1] == 0x9a && (m[0] & 0xe0) == 0xc0);
}
#endif

int apop_db_open_path(const char *path, unsigned checks, uid_t owner,
                      struct apop_db **db_r, const char **error_r)
{
  struct apop_db *db;
  int fd = apop_open_checked(path, checks, owner, error_r);

  *db_r = NULL;
  if (fd < 0)
    return -1;
  db = util_xcalloc(1, sizeof *db);
#ifdef HAVE_GDBM
  if (is_gdbm(fd)) {
    /* gdbm takes the descriptor it is given; ours stays ours. */
    int gfd = fcntl(fd, F_DUPFD_CLOEXEC, 0), e;

    if (gfd < 0) {
      e = errno;
      close(fd);
      free(db);
      return fail(error_r, "dup failed", e);
    }
    db->gdbm = gdbm_fd_open(gfd, path, 0, GDBM_READER | GDBM_CLOERROR, NULL);
    close(fd);
    if (db->gdbm == NULL) {
      static char errbuf[160];

      snprintf(errbuf, sizeof errbuf, "gdbm: %s", gdbm_strerror(gdbm_errno));
      free(db);
      return fail(error_r, errbuf, EIO);
    }
    *db_r = db;
    return 0;
  }
#endif
  if (read_text(db, fd, error_r) < 0) {
    int e = errno;
    close(fd);
    apop_db_close(db);
    errno = e;
    return -1;
  }
  close(fd);
  *db_r = db;
  return 0;
}

static bool is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* user:secret lines; blanks around the line and after the colon don't count. */
static int text_lookup(const struct apop_db *db, const char *user, char **secret_r)
{
  size_t ulen = strlen(user);
  const char *p = db->text, *end = db->text + db->text_len;

  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end, *colon, *s;

    while (p < e && is_space(*p))
      p++;
    while (e > p && is_space(e[-1]))
      e--;
    if (p < e && *p != '#' && (colon = memchr(p, ':', (size_t)(e - p))) != NULL &&
        (size_t)(colon - p) == ulen && memcmp(p, user, ulen) == 0) {
      for (s = colon + 1; s < e && is_space(*s); s++)
        ;
      if (s == e || memchr(s, '\0', (size_t)(e - s)) != NULL)
        return 0;
      *secret_r = util_xstrndup(s, (size_t)(e - s));
      return 1;
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

int apop_db_lookup(struct apop_db *db, const char *user, char **secret_r,
                   const char **error_r)
{
  *secret_r = NULL;
#ifdef HAVE_GDBM
  if (db->gdbm != NULL) {
    datum key, val;

    key.dptr = (char *)user;
    key.dsize = (int)strlen(user);
    val = gdbm_fetch(db->gdbm, key);
    if (val.dptr == NULL) {
      if (gdbm_errno == GDBM_ITEM_NOT_FOUND)
        return 0;
      *error_r = gdbm_strerror(gdbm_errno);
      return -1;
    }
    /* popauth stores no NUL; a value with one ends there, as Mailutils reads it. */
    if (val.dsize > 0 && val.dsize <= APOP_SECRET_MAX) {
      size_t n = strnlen(val.dptr, (size_t)val.dsize);
      if (n > 0)
        *secret_r = util_xstrndup(val.dptr, n);
    }
    util_wipe(val.dptr, val.dsize > 0 ? (size_t)val.dsize : 0);
    free(val.dptr);
    return *secret_r != NULL ? 1 : 0;
  }
#endif
  (void)error_r;
  if (text_lookup(db, user, secret_r) == 0)
    return 0;
  if (strlen(*secret_r) > APOP_SECRET_MAX) {
    util_free_secret(*secret_r);
    *secret_r = NULL;
    return 0;
  }
  return 1;
}

void apop_db_close(struct apop_db *db)
{
  if (db == NULL)
    return;
#ifdef HAVE_GDBM
  if (db->gdbm != NULL)
    gdbm_close(db->gdbm);
#endif
  if (db->text != NULL) {
    util_wipe(db->text, db->text_len);
    free(db->text);
  }
  free(db);
}

int apop_owner(const struct conf *c, uid_t *uid_r, const char **error_r)
{
  const char *o = c->apop_database_owner;
  unsigned u;
  const char *err;
  struct passwd *pw;

  if (o == NULL || o[0] == '\0') {
    *uid_r = geteuid();
    return 0;
  }
  if (util_parse_uint(o, 0, (unsigned)-2, &u, &err) == 0) {
    *uid_r = (uid_t)u;
    return 0;
  }
  pw = getpwnam(o);
  if (pw == NULL)
    return fail(error_r, "apop-database-owner: no such user", EINVAL);
  *uid_r = pw->pw_uid;
  return 0;
}

int apop_db_open(const struct conf *c, struct apop_db **db_r, const char **error_r)
{
  uid_t owner;

  *db_r = NULL;
  if (apop_owner(c, &owner, error_r) < 0)
    return -1;
  return apop_db_open_path(c->apop_database_file ? c->apop_database_file
                           : APOP_DEFAULT_FILE, apop_checks(&c->apop_database_safety),
                           owner, db_r, error_r);
}

static const char *db_name(const struct conf *c)
{
  return c->apop_database_file ? c->apop_database_file : APOP_DEFAULT_FILE;
}

bool apop_available(const struct conf *c)
{
  struct apop_db *db;
  const char *err = NULL;

  if (apop_db_open(c, &db, &err) < 0) {
    if (errno != ENOENT)
      log_msg(LOG_ERR, "APOP database %s: %s", db_name(c), err ? err : "?");
    return false;
  }
  apop_db_close(db);
  return true;
}

enum auth_status apop_secret(const struct conf *c, const char *user, char **secret_r,
                             const char **error_r)
{
  static char errbuf[256];
  struct apop_db *db;
  const char *err = NULL;
  int r;

  *secret_r = NULL;
  if (apop_db_open(c, &db, &err) < 0) {
    int e = errno;

    snprintf(errbuf, sizeof errbuf, "APOP database %s: %s", db_name(c), err ? err : "?");
    *error_r = errbuf;
    /* Missing or unsafe is the site's configuration; anything else may pass. */
    return e == ENOENT || e == EPERM || e == EINVAL ? AUTH_PERM : AUTH_TEMP;
  }
  r = apop_db_lookup(db, user, secret_r, &err);
  apop_db_close(db);
  if (r < 0) {
    snprintf(errbuf, sizeof errbuf, "APOP database %s: %s", db_name(c), err ? err : "?");
    *error_r = errbuf;
    return AUTH_TEMP;
  }
  if (r == 0) {
    *error_r = AUTH_BAD_LOGIN;
    return AUTH_FAIL;
  }
  return AUTH_OK;
}

/* The secret that users without one are checked against, so they cost the same. */
static const char *dummy_secret(void)
{
  static char dummy[33];

  if (dummy[0] == '\0') {
    unsigned char r[16];

    if (util_random(r, sizeof r) < 0)
      memset(r, 0x5a, sizeof r);
    md5_hex(r, dummy);
  }
  return dummy;
}

/* Compare the digest the client sent (hex, either case) with ours, in constant time. */
static bool hex_eq(const unsigned char d[MD5_DIGEST_SIZE], const char *digest)
{
  char want[MD5_HEX_SIZE], got[MD5_HEX_SIZE];
  size_t n = strnlen(digest, MD5_HEX_SIZE);
  bool ok;

  md5_hex(d, want);
  memset(got, 0, sizeof got);
  for (size_t i = 0; i < n && i < MD5_HEX_SIZE - 1; i++) {
    char ch = digest[i];
    got[i] = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
  }
  ok = util_memeq_ct(want, got, sizeof want) && n == MD5_HEX_SIZE - 1;
  util_wipe(want, sizeof want);
  return ok;
}

bool apop_digest_ok(const char *stamp, const char *secret, const char *digest)
{
  unsigned char d[MD5_DIGEST_SIZE];
  struct md5 m;
  const char *s = secret != NULL ? secret : dummy_secret();
  bool ok;

  md5_init(&m);
  md5_update(&m, stamp, strlen(stamp));
  md5_update(&m, s, strlen(s));
  md5_final(&m, d);
  ok = hex_eq(d, digest);
  util_wipe(d, sizeof d);
  return ok && secret != NULL;
}

bool apop_cram_ok(const char *challenge, const char *secret, const char *digest)
{
  unsigned char d[MD5_DIGEST_SIZE];
  const char *s = secret != NULL ? secret : dummy_secret();
  bool ok;

  hmac_md5(s, strlen(s), challenge, strlen(challenge), d);
  ok = hex_eq(d, digest);
  util_wipe(d, sizeof d);
  return ok && secret != NULL;
}

bool apop_is_digest(const char *p)
{
  size_t n = 0;

  for (; p[n] != '\0'; n++)
    if (!((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f') ||
          (p[n] >= 'A' && p[n] <= 'F')))
      return false;
  return n == 2 * MD5_DIGEST_SIZE;
}
