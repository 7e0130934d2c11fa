/* test_util.c - strict numbers, constant-time compare, wiping.  GPL-3.0-or-later. */
#include <config.h>

#include <string.h>

#include "tap.h"
#include "util.h"

int main(void)
{
  static const struct { const char *in; uint64_t min, max; int ok; uint64_t v; } c[] = {
    { "0", 0, 10, 1, 0 }, { "10", 0, 10, 1, 10 }, { "11", 0, 10, 0, 0 },
    { "", 0, 10, 0, 0 }, { "-1", 0, 10, 0, 0 }, { "1 ", 0, 10, 0, 0 }, { " 1", 0, 10, 0, 0 },
    { "18446744073709551615", 0, UINT64_MAX, 1, UINT64_MAX },
    { "18446744073709551616", 0, UINT64_MAX, 0, 0 }, { "5", 6, 10, 0, 0 },
    { "1e3", 0, 10000, 0, 0 }, { "0x10", 0, 100, 0, 0 },
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    uint64_t v = 12345;
    const char *e = NULL;
    int r = util_parse_u64(c[i].in, c[i].min, c[i].max, &v, &e);
    ok((r == 0) == c[i].ok && (!c[i].ok || v == c[i].v) && (c[i].ok || e != NULL),
       "parse '%s' in [%llu, %llu]", c[i].in, (unsigned long long)c[i].min,
       (unsigned long long)c[i].max);
  }
  ok(util_streq_ct("secret", "secret"), "streq equal");
  ok(!util_streq_ct("secret", "secreT"), "streq differ");
  ok(!util_streq_ct("secret", "secret2"), "streq length differs");
  ok(!util_streq_ct("", "x") && util_streq_ct("", ""), "streq empty");
  ok(util_memeq_ct("abc", "abc", 3) && !util_memeq_ct("abc", "abd", 3), "memeq");
  {
    char s[] = "password";
    util_wipe(s, sizeof s - 1);
    ok(memcmp(s, "\0\0\0\0\0\0\0\0", 8) == 0, "wipe zeroes");
  }
  {
    size_t r;
    ok(!util_mul_size(SIZE_MAX / 2 + 1, 2, &r), "mul overflow detected");
    ok(!util_add_size(SIZE_MAX, 1, &r), "add overflow detected");
    ok(util_add_size(1, 2, &r) && r == 3, "add");
  }
  ok(util_strncasecmp("QuIt", "quit", 4) == 0 && util_strncasecmp("quit", "quiz", 4) != 0,
     "ASCII case-insensitive compare");
  return tap_done();
}
