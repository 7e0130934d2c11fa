/* fuzz_numdb.c - the user -> number databases (numdb.h) under the login-delay and the
 * bulletin and penalty counts, against a model.
 *
 * The input is a script, one operation a line, on a new database:
 *   raw KEY BYTES      store BYTES (the rest of the line) as GDBM would hold anything
 *   put KEY N          numdb_put
 *   get KEY            numdb_update reading only: the number, absent, or an error for
 *                      a value that is not a decimal number of at most 20 digits
 *   add KEY N          numdb_update adding N (a value it can't read counts as absent)
 *   read KEY...        numdb_read (a value that is not a number counts as absent)
 *   del KEY            numdb_delete
 *   sweep PREFIX MAX   numdb_sweep keeping the PREFIX keys whose number is at most MAX
 *   login KEY NOW D    logindelay_login at time NOW with login-delay D
 * After each step the database must say what the model says.  GPL-3.0-or-later. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_GDBM
# include <gdbm.h>
#endif

#include "conf.h"
#include "fuzz.h"
#include "log.h"
#include "logindelay.h"
#include "numdb.h"

#ifndef HAVE_GDBM
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  (void)data;
  (void)size;
  return 0;
}
#else
#define KEYS_MAX 32
#define OPS_MAX 64

/* The model: what each key holds, as bytes. */
struct entry {
  char *key;
  char *val;
  size_t vlen;
};
static struct entry model[KEYS_MAX];
static size_t nmodel;

static char db_path[96];

/* Decimal digits only, 1 to 20 of them, at most UINT64_MAX. */
static bool ref_parse(const char *p, size_t n, uint64_t *out)
{
  uint64_t v = 0;

  if (n == 0 || n > 20)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned char)p[i] - '0';
    if (d > 9 || v > (UINT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

static struct entry *find(const char *key)
{
  for (size_t i = 0; i < nmodel; i++)
    if (strcmp(model[i].key, key) == 0)
      return &model[i];
  return NULL;
}

static void forget(struct entry *e)
{
  free(e->key);
  free(e->val);
  *e = model[--nmodel];
}

static void set(const char *key, const char *val, size_t vlen)
{
  struct entry *e = find(key);

  if (e == NULL) {
    CHECK(nmodel < KEYS_MAX);
    e = &model[nmodel++];
    e->key = strdup(key);
  } else {
    free(e->val);
  }
  e->val = malloc(vlen + 1);
  CHECK(e->key != NULL && e->val != NULL);
  memcpy(e->val, val, vlen);
  e->vlen = vlen;
}

static void set_num(const char *key, uint64_t v)
{
  char text[24];

  snprintf(text, sizeof text, "%llu", (unsigned long long)v);
  set(key, text, strlen(text));
}

static void raw_store(const char *key, const char *val, size_t vlen)
{
  GDBM_FILE g = gdbm_open(db_path, 0, GDBM_WRITER, 0600, NULL);
  datum k = { .dptr = (char *)key, .dsize = (int)strlen(key) };
  datum v = { .dptr = (char *)val, .dsize = (int)vlen };

  CHECK(g != NULL);
  CHECK(gdbm_store(g, k, v, GDBM_REPLACE) == 0);
  CHECK(gdbm_close(g) == 0);
  set(key, val, vlen);
}

static bool add_step(uint64_t old, bool found, uint64_t *new_r, void *arg)
{
  *new_r = (found ? old : 0) + *(const uint64_t *)arg;
  return true;
}

static bool keep_at_most(uint64_t val, void *arg)
{
  return val <= *(const uint64_t *)arg;
}

static uint64_t num(const char *s)
{
  return s != NULL ? strtoull(s, NULL, 10) : 0;
}

static void step(struct numdb *db, char *line, size_t len)
{
  char err[160], *save = NULL, *op, *key, *arg;
  struct entry *e;
  uint64_t v, ref = 0;
  bool found, ok;

  /* raw takes the rest of the line, NULs and all. */
  if (len > 4 && memcmp(line, "raw ", 4) == 0) {
    char *sp = memchr(line + 4, ' ', len - 4);
    if (sp == NULL || sp == line + 4 || memchr(line + 4, '\0', (size_t)(sp - line - 4)))
      return;
    *sp = '\0';
    if (find(line + 4) == NULL && nmodel == KEYS_MAX)
      return;
    raw_store(line + 4, sp + 1, len - (size_t)(sp + 1 - line));
    return;
  }
  if (memchr(line, '\0', len) != NULL)
    return;
  op = strtok_r(line, " ", &save);
  key = strtok_r(NULL, " ", &save);
  if (op == NULL || key == NULL)
    return;
  arg = strtok_r(NULL, " ", &save);
  e = find(key);
  ok = e != NULL && ref_parse(e->val, e->vlen, &ref);
  if (strcmp(op, "put") == 0) {
    if (e == NULL && nmodel == KEYS_MAX)
      return;
    CHECK(numdb_put(db, key, num(arg), err, sizeof err) == 0);
    set_num(key, num(arg));
  } else if (strcmp(op, "get") == 0) {
    int r = numdb_update(db, key, &v, &found, NULL, NULL, err, sizeof err);
    if (e != NULL && !ok)
      CHECK(r < 0);
    else
      CHECK(r == 0 && found == (e != NULL) && v == (e != NULL ? ref : 0));
  } else if (strcmp(op, "add") == 0) {
    uint64_t n = num(arg);
    if (e == NULL && nmodel == KEYS_MAX)
      return;
    CHECK(numdb_update(db, key, &v, &found, add_step, &n, err, sizeof err) == 0);
    CHECK(found == ok && v == (ok ? ref : 0));
    set_num(key, (ok ? ref : 0) + n);
  } else if (strcmp(op, "read") == 0) {
    const char *keys[8];
    uint64_t vals[8];
    bool fnd[8];
    size_t n = 0;
    keys[n++] = key;
    for (char *k = arg; k != NULL && n < 8; k = strtok_r(NULL, " ", &save))
      keys[n++] = k;
    CHECK(numdb_read(db, keys, n, vals, fnd, err, sizeof err) == 0);
    for (size_t i = 0; i < n; i++) {
      struct entry *x = find(keys[i]);
      uint64_t want = 0;
      bool is = x != NULL && ref_parse(x->val, x->vlen, &want);
      CHECK(fnd[i] == is && vals[i] == (is ? want : 0));
    }
  } else if (strcmp(op, "del") == 0) {
    CHECK(numdb_delete(db, key, err, sizeof err) == 0);
    if (e != NULL)
      forget(e);
  } else if (strcmp(op, "sweep") == 0) {
    uint64_t max = num(arg);
    long kept = numdb_sweep(db, key, keep_at_most, &max, err, sizeof err), want = 0;
    size_t plen = strlen(key);
    CHECK(kept >= 0);
    for (size_t i = 0; i < nmodel;) {
      uint64_t x;
      if (strncmp(model[i].key, key, plen) != 0) {
        i++;
      } else if (ref_parse(model[i].val, model[i].vlen, &x) && x <= max) {
        want++;
        i++;
      } else {
        forget(&model[i]);
      }
    }
    CHECK(kept == want);
  } else if (strcmp(op, "login") == 0) {
    char *d = strtok_r(NULL, " ", &save);
    struct conf c;
    enum logindelay_result r;
    uint64_t now = num(arg) % ((uint64_t)1 << 62);
    bool refuse = ok && ref <= now && now - ref < (num(d) % 100000);
    if (e == NULL && nmodel == KEYS_MAX)
      return;
    memset(&c, 0, sizeof c);
    c.login_delay = (unsigned)(num(d) % 100000);
    c.stat_file = db_path;
    r = logindelay_login(&c, key, (time_t)now);
    if (c.login_delay == 0) {
      CHECK(r == LOGINDELAY_OFF);
    } else if (refuse) {
      CHECK(r == LOGINDELAY_REFUSE);
    } else {
      CHECK(r == LOGINDELAY_OK);
      set_num(key, now);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct numdb db;
  char err[160], *copy;
  size_t pos = 0, ops = 0;

  if (db_path[0] == '\0') {
    snprintf(db_path, sizeof db_path, "%s/stat.db", fuzz_tmpdir());
    log_open("fuzz_numdb", LOG_MAIL, false, false, LOG_CRIT);
  }
  unlink(db_path);
  CHECK(numdb_open(&db, db_path, true, err, sizeof err) == 0);
  copy = malloc(size + 1);
  CHECK(copy != NULL);
  memcpy(copy, data, size);
  copy[size] = '\0';
  while (pos < size && ops++ < OPS_MAX) {
    char *nl = memchr(copy + pos, '\n', size - pos);
    size_t len = nl ? (size_t)(nl - copy - pos) : size - pos;
    copy[pos + len] = '\0';
    step(&db, copy + pos, len);
    pos += len + 1;
  }
  numdb_close(&db);
  free(copy);
  while (nmodel > 0)
    forget(&model[0]);
  return 0;
}
#endif
