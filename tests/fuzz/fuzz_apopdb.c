/* fuzz_apopdb.c - the APOP database: its plain-text form and the values of its GDBM
 * form, the lookups and the digests made from what they find.
 *
 * The input's first line names the users to look up (space-separated; a first word
 * "gdbm" makes the database GDBM), its second line is the greeting's stamp (and the
 * CRAM-MD5 challenge), the rest is the database: the file itself, or for GDBM one
 * `key:value' a line stored as such (values may hold NULs).  Every lookup must find what
 * Mailutils' rules say: text lines trimmed of blanks, `#' comments, the first line of the
 * user decides, blanks after the colon skipped, no secret when it is empty, holds a NUL
 * or is longer than APOP_SECRET_MAX; a GDBM value up to its first NUL.  A secret found
 * must check against its own APOP and CRAM-MD5 digests (in either case) and not against
 * others.  A text database that starts like a GDBM file is skipped: what GDBM makes of
 * a damaged file of root's is not this program's.  GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_GDBM
# include <gdbm.h>
#endif

#include "apop.h"
#include "fuzz.h"
#include "md5.h"

#define USERS_MAX 8

static char db_path[96];

static bool blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The text rules, the slow way: a malloc'd secret, or NULL. */
static char *ref_text(const char *db, size_t len, const char *user)
{
  size_t pos = 0, ulen = strlen(user);

  while (pos < len) {
    size_t s = pos, e = pos;
    while (e < len && db[e] != '\n')
      e++;
    pos = e + 1;
    while (s < e && blank(db[s]))
      s++;
    while (e > s && blank(db[e - 1]))
      e--;
    if (s == e || db[s] == '#')
      continue;
    size_t colon = s;
    while (colon < e && db[colon] != ':')
      colon++;
    if (colon == e || colon - s != ulen || memcmp(db + s, user, ulen) != 0)
      continue;
    s = colon + 1;
    while (s < e && blank(db[s]))
      s++;
    if (s == e || memchr(db + s, '\0', e - s) != NULL || e - s > APOP_SECRET_MAX)
      return NULL;
    char *out = malloc(e - s + 1);
    CHECK(out != NULL);
    memcpy(out, db + s, e - s);
    out[e - s] = '\0';
    return out;
  }
  return NULL;
}

#ifdef HAVE_GDBM
/* key:value lines into a new GDBM file; the model keeps the first value of a key as
 * GDBM_INSERT does. */
static void write_gdbm(const char *data, size_t len)
{
  GDBM_FILE g;
  size_t pos = 0;

  unlink(db_path);
  g = gdbm_open(db_path, 0, GDBM_NEWDB, 0600, NULL);
  CHECK(g != NULL);
  while (pos < len) {
    const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - line) : len - pos;
    const char *colon = memchr(line, ':', n);
    pos += n + 1;
    if (colon == NULL || colon == line)
      continue;
    datum k = { .dptr = (char *)line, .dsize = (int)(colon - line) };
    datum v = { .dptr = (char *)colon + 1, .dsize = (int)(n - (size_t)(colon + 1 - line)) };
    CHECK(gdbm_store(g, k, v, GDBM_INSERT) >= 0);
  }
  CHECK(gdbm_close(g) == 0);
}

static char *ref_gdbm(const char *data, size_t len, const char *user)
{
  size_t pos = 0, ulen = strlen(user);

  while (pos < len) {
    const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - line) : len - pos;
    const char *colon = memchr(line, ':', n);
    pos += n + 1;
    if (colon == NULL || colon == line || (size_t)(colon - line) != ulen ||
        memcmp(line, user, ulen) != 0)
      continue;
    size_t vlen = n - (size_t)(colon + 1 - line), s = strnlen(colon + 1, vlen);
    if (vlen == 0 || vlen > APOP_SECRET_MAX || s == 0)
      return NULL;
    char *out = malloc(s + 1);
    CHECK(out != NULL);
    memcpy(out, colon + 1, s);
    out[s] = '\0';
    return out;
  }
  return NULL;
}
#endif

/* A secret against the digests made from it. */
static void check_digests(const char *stamp, const char *secret)
{
  unsigned char d[MD5_DIGEST_SIZE];
  char hex[MD5_HEX_SIZE];
  struct md5 m;

  md5_init(&m);
  md5_update(&m, stamp, strlen(stamp));
  md5_update(&m, secret, strlen(secret));
  md5_final(&m, d);
  md5_hex(d, hex);
  CHECK(apop_is_digest(hex));
  CHECK(apop_digest_ok(stamp, secret, hex));
  CHECK(!apop_digest_ok(stamp, NULL, hex));
  for (char *p = hex; *p; p++)
    if (*p >= 'a' && *p <= 'f')
      *p = (char)(*p - 'a' + 'A');
  CHECK(apop_digest_ok(stamp, secret, hex));
  hex[0] = hex[0] == '0' ? '1' : '0';
  CHECK(!apop_digest_ok(stamp, secret, hex));
  hmac_md5(secret, strlen(secret), stamp, strlen(stamp), d);
  md5_hex(d, hex);
  CHECK(apop_cram_ok(stamp, secret, hex));
  hex[31] = hex[31] == '0' ? '1' : '0';
  CHECK(!apop_cram_ok(stamp, secret, hex));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data, *nl, *nl2, *db, *err = NULL;
  char *users, *stamp, *save = NULL, *u;
  size_t dblen, nusers = 0;
  bool gdbm = false;
  struct apop_db *adb;

  if (db_path[0] == '\0')
    snprintf(db_path, sizeof db_path, "%s/apop.db", fuzz_tmpdir());
  nl = memchr(text, '\n', size);
  if (nl == NULL)
    return 0;
  nl2 = memchr(nl + 1, '\n', size - (size_t)(nl + 1 - text));
  if (nl2 == NULL)
    return 0;
  users = util_xstrndup(text, (size_t)(nl - text));
  stamp = util_xstrndup(nl + 1, (size_t)(nl2 - nl - 1));
  db = nl2 + 1;
  dblen = size - (size_t)(db - text);
  if (strlen(users) != (size_t)(nl - text) || strlen(stamp) != (size_t)(nl2 - nl - 1))
    goto out;   /* NULs in the names or the stamp: no client can send them */
  if (strncmp(users, "gdbm ", 5) == 0) {
#ifdef HAVE_GDBM
    gdbm = true;
    write_gdbm(db, dblen);
#else
    goto out;
#endif
  } else {
    if (dblen >= 4 && (((uint8_t)db[0] == 0x13 && (uint8_t)db[1] == 0x57) ||
                       ((uint8_t)db[3] == 0x13 && (uint8_t)db[2] == 0x57)))
      goto out;
    fuzz_write_file(db_path, db, dblen);
  }
  CHECK(apop_db_open_path(db_path, APOP_CHECK_ALL, geteuid(), &adb, &err) == 0);
  for (u = strtok_r(users + (gdbm ? 5 : 0), " ", &save); u != NULL && nusers < USERS_MAX;
       u = strtok_r(NULL, " ", &save), nusers++) {
    char *secret = NULL, *want;
    int r = apop_db_lookup(adb, u, &secret, &err);
#ifdef HAVE_GDBM
    want = gdbm ? ref_gdbm(db, dblen, u) : ref_text(db, dblen, u);
#else
    want = ref_text(db, dblen, u);
#endif
    CHECK(r == (want != NULL ? 1 : 0));
    if (want != NULL) {
      CHECK(secret != NULL && strcmp(secret, want) == 0);
      check_digests(stamp, secret);
    } else {
      CHECK(secret == NULL);
    }
    free(want);
    util_free_secret(secret);
  }
  apop_db_close(adb);
out:
  free(users);
  free(stamp);
  return 0;
}
