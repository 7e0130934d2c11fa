/* test_md5.c - MD5 (RFC 1321 appendix A.5), HMAC-MD5 (RFC 2202), and the APOP and
 * CRAM-MD5 examples of RFC 1939 and RFC 2195.  GPL-3.0-or-later. */
#include <config.h>

#include <string.h>

#include "apop.h"
#include "md5.h"
#include "tap.h"

static const char *hex_of(const unsigned char d[MD5_DIGEST_SIZE])
{
  static char h[MD5_HEX_SIZE];

  md5_hex(d, h);
  return h;
}

int main(void)
{
  static const struct { const char *in, *want; } v[] = {
    { "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "a", "0cc175b9c0f1b6a831c399e269772661" },
    { "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
    { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f" },
    { "1234567890123456789012345678901234567890123456789012345678901234567890"
      "1234567890", "57edf4a22be3c955ac49da2e2107b67a" },
  };
  unsigned char d[MD5_DIGEST_SIZE];

  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    md5(v[i].in, strlen(v[i].in), d);
    is_str(hex_of(d), v[i].want, "MD5(\"%.20s\")", v[i].in);
  }

  /* Any split of the input gives the same digest (buffering across blocks). */
  {
    const char *s = v[6].in;
    size_t n = strlen(s);
    int bad = 0;

    for (size_t cut = 0; cut <= n; cut++) {
      struct md5 m;
      md5_init(&m);
      md5_update(&m, s, cut);
      md5_update(&m, s + cut, n - cut);
      md5_final(&m, d);
      if (strcmp(hex_of(d), v[6].want) != 0)
        bad++;
    }
    ok(bad == 0, "every split of an 80-byte input");
  }
  /* Lengths around the padding boundary (55, 56, 63, 64, 65 bytes): byte-at-a-time
   * equals one call. */
  {
    unsigned char buf[130];
    int bad = 0;

    for (size_t i = 0; i < sizeof buf; i++)
      buf[i] = (unsigned char)(i * 7 + 1);
    for (size_t n = 0; n <= sizeof buf; n++) {
      unsigned char d1[MD5_DIGEST_SIZE], d2[MD5_DIGEST_SIZE];
      struct md5 m;
      md5(buf, n, d1);
      md5_init(&m);
      for (size_t i = 0; i < n; i++)
        md5_update(&m, buf + i, 1);
      md5_final(&m, d2);
      if (memcmp(d1, d2, sizeof d1) != 0)
        bad++;
    }
    ok(bad == 0, "byte-at-a-time equals one call for 0..130 bytes");
  }

  /* RFC 2202 section 2. */
  {
    unsigned char k1[16], k3[16], d3[50], k4[25], d4[50], k5[16], k6[80];

    memset(k1, 0x0b, sizeof k1);
    hmac_md5(k1, sizeof k1, "Hi There", 8, d);
    is_str(hex_of(d), "9294727a3638bb1c13f48ef8158bfc9d", "HMAC-MD5 case 1");
    hmac_md5("Jefe", 4, "what do ya want for nothing?", 28, d);
    is_str(hex_of(d), "750c783e6ab0b503eaa86e310a5db738", "HMAC-MD5 case 2");
    memset(k3, 0xaa, sizeof k3);
    memset(d3, 0xdd, sizeof d3);
    hmac_md5(k3, sizeof k3, d3, sizeof d3, d);
    is_str(hex_of(d), "56be34521d144c88dbb8c733f0e8b3f6", "HMAC-MD5 case 3");
    for (size_t i = 0; i < sizeof k4; i++)
      k4[i] = (unsigned char)(i + 1);
    memset(d4, 0xcd, sizeof d4);
    hmac_md5(k4, sizeof k4, d4, sizeof d4, d);
    is_str(hex_of(d), "697eaf0aca3a3aea3a75164746ffaa79", "HMAC-MD5 case 4");
    memset(k5, 0x0c, sizeof k5);
    hmac_md5(k5, sizeof k5, "Test With Truncation", 20, d);
    is_str(hex_of(d), "56461ef2342edc00f9bab995690efd4c", "HMAC-MD5 case 5");
    memset(k6, 0xaa, sizeof k6);
    hmac_md5(k6, sizeof k6, "Test Using Larger Than Block-Size Key - Hash Key First", 54, d);
    is_str(hex_of(d), "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd", "HMAC-MD5 case 6 (long key)");
    hmac_md5(k6, sizeof k6, "Test Using Larger Than Block-Size Key and Larger Than One "
             "Block-Size Data", 73, d);
    is_str(hex_of(d), "6f630fad67cda0ee1fb1f562db3aa53e", "HMAC-MD5 case 7");
  }

  /* RFC 1939 section 7 and RFC 2195 section 2 examples. */
  ok(apop_digest_ok("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
                    "c4c9334bac560ecc979e58001b3e22fb"), "APOP example of RFC 1939");
  ok(apop_digest_ok("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
                    "C4C9334BAC560ECC979E58001B3E22FB"), "APOP digest in upper case");
  ok(!apop_digest_ok("<1896.697170952@dbc.mtview.ca.us>", "tanstaaF",
                     "c4c9334bac560ecc979e58001b3e22fb"), "APOP wrong secret");
  ok(!apop_digest_ok("<1896.697170953@dbc.mtview.ca.us>", "tanstaaf",
                     "c4c9334bac560ecc979e58001b3e22fb"), "APOP other stamp");
  ok(!apop_digest_ok("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
                     "c4c9334bac560ecc979e58001b3e22f"), "APOP short digest");
  ok(!apop_digest_ok("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
                     "c4c9334bac560ecc979e58001b3e22fb0"), "APOP long digest");
  ok(!apop_digest_ok("<1896.697170952@dbc.mtview.ca.us>", NULL,
                     "c4c9334bac560ecc979e58001b3e22fb"), "APOP without a secret");
  ok(apop_cram_ok("<1896.697170952@postoffice.reston.mci.net>", "tanstaaftanstaaf",
                  "b913a602c7eda7a495b4e6e7334d3890"), "CRAM-MD5 example of RFC 2195");
  ok(!apop_cram_ok("<1896.697170952@postoffice.reston.mci.net>", "tanstaaftanstaaF",
                   "b913a602c7eda7a495b4e6e7334d3890"), "CRAM-MD5 wrong secret");
  ok(!apop_cram_ok("<1896.697170952@postoffice.reston.mci.net>", NULL,
                   "b913a602c7eda7a495b4e6e7334d3890"), "CRAM-MD5 without a secret");
  return tap_done();
}
