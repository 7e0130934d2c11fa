/* test_tls.c - tls-mode resolution, tls-file-checks lists and the checks on opened
 * files.  GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "params.h"
#include "tap.h"
#include "tls.h"

static void test_masks(void)
{
  static const struct {
    const char *items[4];
    unsigned defaults, want;
  } c[] = {
    { { NULL }, TLS_CHECKS_KEY_DEFAULT, TLS_CHECK_ALL },
    { { "none" }, TLS_CHECK_ALL, 0 },
    { { "none", "ardfil" }, TLS_CHECK_ALL, TLS_CHECK_ARDFIL },
    { { "-grdfil" }, TLS_CHECK_ALL, TLS_CHECK_ALL & ~TLS_CHECK_GRDFIL },
    { { "-grdfil", "+grdfil" }, TLS_CHECK_ALL, TLS_CHECK_ALL },
    { { "all" }, TLS_CHECKS_CERT_DEFAULT, TLS_CHECK_ALL },
    { { "gwrdir" }, TLS_CHECKS_CERT_DEFAULT, TLS_CHECKS_CERT_DEFAULT | TLS_CHECK_GWRDIR },
    { { "-none" }, TLS_CHECKS_CERT_DEFAULT, TLS_CHECKS_CERT_DEFAULT },
    { { "none", "-all" }, TLS_CHECK_ALL, TLS_CHECK_ALL },
    { { "-linkwrdir", "-awrfil" }, TLS_CHECKS_CERT_DEFAULT, TLS_CHECK_GWRFIL },
  };

  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    struct conf_strlist l = { (char **)c[i].items, 0 };

    while (l.n < 4 && c[i].items[l.n] != NULL)
      l.n++;
    is_int(tls_checks_mask(&l, c[i].defaults), c[i].want, "check list %zu", i);
  }
  is_int(tls_checks_mask(NULL, TLS_CHECKS_CERT_DEFAULT), TLS_CHECKS_CERT_DEFAULT,
         "no list: the defaults");
}

static void test_files(void)
{
  char dir[] = "/tmp/pop3d-test-tls-XXXXXX";
  char path[256], sub[256], link[300], msg[512];
  static const struct { mode_t mode; unsigned mask; bool ok; const char *needle; } c[] = {
    { 0600, TLS_CHECK_ALL, true, NULL },
    { 0640, TLS_CHECK_ALL, false, "group-readable (mode 0640; tls-file-checks: grdfil)" },
    { 0604, TLS_CHECK_ALL, false, "world-readable" },
    { 0620, TLS_CHECK_ALL, false, "group-writable" },
    { 0602, TLS_CHECK_ALL, false, "world-writable" },
    { 0644, TLS_CHECKS_CERT_DEFAULT, true, NULL },
    { 0664, TLS_CHECKS_CERT_DEFAULT, false, "gwrfil" },
    { 0666, TLS_CHECK_GRDFIL, false, "grdfil" },
    { 0777, 0, true, NULL },
  };
  int fd;

  if (mkdtemp(dir) == NULL) {
    ok(0, "mkdtemp");
    return;
  }
  chmod(dir, 0700);
  snprintf(path, sizeof path, "%s/key.pem", dir);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ok(fd >= 0 && write(fd, "x\n", 2) == 2, "make a file");
  if (fd >= 0)
    close(fd);
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    chmod(path, c[i].mode);
    msg[0] = '\0';
    fd = tls_open_checked(path, c[i].mask, msg, sizeof msg);
    ok((fd >= 0) == c[i].ok && (c[i].needle == NULL || strstr(msg, c[i].needle) != NULL),
       "mode %04o mask %#x: %s", (unsigned)c[i].mode, c[i].mask, fd >= 0 ? "ok" : msg);
    if (fd >= 0)
      close(fd);
  }
  chmod(path, 0600);

  chmod(dir, 0770);
  fd = tls_open_checked(path, TLS_CHECK_ALL, msg, sizeof msg);
  ok(fd < 0 && strstr(msg, "group-writable directory") != NULL, "gwrdir: %s", msg);
  fd = tls_open_checked(path, TLS_CHECK_ALL & ~TLS_CHECK_GWRDIR, msg, sizeof msg);
  ok(fd >= 0, "gwrdir off");
  if (fd >= 0)
    close(fd);
  chmod(dir, 0703);
  fd = tls_open_checked(path, TLS_CHECK_AWRDIR, msg, sizeof msg);
  ok(fd < 0 && strstr(msg, "world-writable directory") != NULL, "awrdir: %s", msg);
  chmod(dir, 0700);

  snprintf(sub, sizeof sub, "%s/shared", dir);
  snprintf(link, sizeof link, "%s/key.pem", sub);
  ok(mkdir(sub, 0700) == 0 && chmod(sub, 0777) == 0 && symlink(path, link) == 0,
     "symlink in a world-writable directory");
  fd = tls_open_checked(link, TLS_CHECK_LINKWRDIR, msg, sizeof msg);
  ok(fd < 0 && strstr(msg, "linkwrdir") != NULL, "linkwrdir: %s", msg);
  chmod(sub, 0700);
  fd = tls_open_checked(link, TLS_CHECK_ALL, msg, sizeof msg);
  ok(fd >= 0, "symlink in a private directory: %s", fd >= 0 ? "ok" : msg);
  if (fd >= 0)
    close(fd);

  fd = tls_open_checked(sub, 0, msg, sizeof msg);
  ok(fd < 0 && strstr(msg, "not a regular file") != NULL, "directory: %s", msg);
  snprintf(sub + strlen(sub), sizeof sub - strlen(sub), "/missing");
  fd = tls_open_checked(sub, 0, msg, sizeof msg);
  ok(fd < 0 && strstr(msg, "No such file") != NULL, "missing: %s", msg);

  unlink(link);
  snprintf(sub, sizeof sub, "%s/shared", dir);
  rmdir(sub);
  unlink(path);
  rmdir(dir);
}

static void test_modes(void)
{
  struct conf c;
  struct conf_server srv;
  struct tls_settings ts;

  conf_init(&c);
  memset(&srv, 0, sizeof srv);
  srv.tls_mode = CONF_TLS_UNSET;

  tls_settings_for(&c, NULL, &ts);
  is_int(ts.mode, CONF_TLS_NO, "inetd, nothing set: no TLS");
  is_str(ts.priorities, PARAMS_TLS_PRIORITIES, "default priorities");
  is_int(ts.handshake_timeout, PARAMS_TLS_HANDSHAKE_TIMEOUT, "global handshake timeout");

  c.has_tls = true;
  c.tls.cert_file = "/g/cert";
  c.tls.key_file = "/g/key";
  tls_settings_for(&c, NULL, &ts);
  is_int(ts.mode, CONF_TLS_NO, "inetd, global tls block alone: no TLS");
  tls_settings_for(&c, &srv, &ts);
  is_int(ts.mode, CONF_TLS_NO, "server without its own certificate: no TLS");

  srv.has_tls = true;
  srv.tls.cert_file = "/s/cert";
  srv.tls.key_file = "/s/key";
  srv.tls.handshake_timeout = 0;
  tls_settings_for(&c, &srv, &ts);
  is_int(ts.mode, CONF_TLS_ONDEMAND, "server with its own certificate: ondemand");
  is_str(ts.cert_file, "/s/cert", "server certificate");
  is_str(ts.key_file, "/s/key", "server key");
  is_int(ts.handshake_timeout, PARAMS_TLS_HANDSHAKE_TIMEOUT,
         "server block without handshake-timeout inherits the global one");
  srv.tls.handshake_timeout_set = true;
  srv.tls.handshake_timeout = 3;
  tls_settings_for(&c, &srv, &ts);
  is_int(ts.handshake_timeout, 3, "server handshake-timeout");

  c.tls_mode = CONF_TLS_REQUIRED;
  tls_settings_for(&c, &srv, &ts);
  is_int(ts.mode, CONF_TLS_REQUIRED, "server inherits the global tls-mode");
  tls_settings_for(&c, NULL, &ts);
  is_int(ts.mode, CONF_TLS_REQUIRED, "inetd uses the global tls-mode");
  is_str(ts.cert_file, "/g/cert", "inetd uses the global certificate");
  srv.tls_mode = CONF_TLS_CONNECTION;
  tls_settings_for(&c, &srv, &ts);
  is_int(ts.mode, CONF_TLS_CONNECTION, "the server's own tls-mode wins");

  /* Keep conf_free from freeing the string literals. */
  c.tls.cert_file = c.tls.key_file = NULL;
  conf_free(&c);
}

/* What the monitor agrees to sign for a worker. */
static void test_sign_shapes(void)
{
  static const char context[] = "TLS 1.3, server CertificateVerify";
  unsigned char d[400];
  size_t pre = 64 + sizeof context;

  memset(d, ' ', 64);
  memcpy(d + 64, context, sizeof context);
  ok(tls_sign_request_ok(TLS_SIGN_DATA, d, pre + 32) &&
     tls_sign_request_ok(TLS_SIGN_DATA, d, pre + 48), "TLS 1.3 CertificateVerify");
  ok(!tls_sign_request_ok(TLS_SIGN_DATA, d, pre + 31), "with a hash of no hash's length");
  d[3] = 'x';
  ok(!tls_sign_request_ok(TLS_SIGN_DATA, d, pre + 32), "with a wrong prefix");
  /* ECDHE: randoms, named_curve, curve, point length, point. */
  memset(d, 0x11, 64);
  d[64] = 3; d[65] = 0; d[66] = 29; d[67] = 32;
  ok(tls_sign_request_ok(TLS_SIGN_DATA, d, 64 + 4 + 32), "TLS 1.2 ECDHE parameters");
  ok(!tls_sign_request_ok(TLS_SIGN_DATA, d, 64 + 4 + 33), "with a byte more");
  /* DHE: p, g, Ys. */
  d[64] = 0; d[65] = 2; d[68] = 0; d[69] = 1; d[71] = 0; d[72] = 3;
  ok(tls_sign_request_ok(TLS_SIGN_DATA, d, 76), "TLS 1.2 DHE parameters");
  ok(!tls_sign_request_ok(TLS_SIGN_DATA, d, 77), "with a trailing byte");
  ok(!tls_sign_request_ok(TLS_SIGN_DATA, d, 20), "too short for anything");
  d[0] = 0x30; d[1] = 49;
  ok(tls_sign_request_ok(TLS_SIGN_HASH, d, 51), "a SHA-256 DigestInfo");
  d[1] = 48;
  ok(!tls_sign_request_ok(TLS_SIGN_HASH, d, 51), "a DigestInfo of a wrong length");
  ok(tls_sign_request_ok(TLS_SIGN_HASH, d, 32), "a bare SHA-256 digest");
  ok(!tls_sign_request_ok(TLS_SIGN_HASH, d, 100), "no hash is 100 bytes");
  ok(!tls_sign_request_ok(7, d, 32), "an unknown operation");
}

int main(void)
{
  test_sign_shapes();
  test_masks();
  test_files();
  test_modes();
  return tap_done();
}
