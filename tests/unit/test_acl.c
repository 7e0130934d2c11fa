/* test_acl.c - acl address matching, entry order, exec/ifexec, expansion; what one
 * source is, and the login penalties kept per source and per name.
 * GPL-3.0-or-later. */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "acl.h"
#include "conf.h"
#include "params.h"
#include "penalty.h"
#include "tap.h"

/* A client address as the listener sees it. */
static socklen_t client(const char *text, unsigned port, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof *ss);
  if (strchr(text, ':') == NULL) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;

    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, text, &in->sin_addr) != 1)
      abort();
    return sizeof *in;
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
      abort();
    return sizeof *in6;
  }
}

static void test_parse(void)
{
  static const struct { const char *in; int ok; } c[] = {
    { "any", 1 }, { "127.0.0.1", 1 }, { "10.0.0.0/8", 1 }, { "10.0.0.0/255.0.0.0", 1 },
    { "10.0.0.0/33", 0 }, { "::1", 1 }, { "2001:db8::/32", 1 }, { "2001:db8::/129", 0 },
    { "2001:db8::/ffff::", 0 }, { "localhost", 1 }, { "/8", 0 }, { "", 0 },
    { "10.0.0.0/", 0 }, { "10.0.0.0/x", 0 }, { "host.example/8", 0 },
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    struct acl_addr a;
    const char *e = NULL;
    int r = acl_addr_parse(c[i].in, &a, &e);

    ok((r == 0) == c[i].ok && (c[i].ok || e != NULL), "parse '%s' %s", c[i].in,
       c[i].ok ? "accepted" : "refused");
  }
}

static void test_match(void)
{
  static const struct { const char *rule, *client; int match; } c[] = {
    { "any", "192.0.2.1", 1 }, { "any", "2001:db8::1", 1 },
    { "192.0.2.1", "192.0.2.1", 1 }, { "192.0.2.1", "192.0.2.2", 0 },
    { "192.0.2.0/24", "192.0.2.200", 1 }, { "192.0.2.0/24", "192.0.3.1", 0 },
    { "192.0.2.0/255.255.255.0", "192.0.2.9", 1 },
    { "192.0.2.0/255.255.255.0", "192.0.1.9", 0 },
    { "192.0.2.77/24", "192.0.2.1", 1 },        /* host bits of the rule are masked */
    { "10.0.0.0/8", "10.255.255.255", 1 }, { "10.0.0.0/8", "11.0.0.0", 0 },
    { "0.0.0.0/0", "203.0.113.5", 1 }, { "0.0.0.0/0", "2001:db8::1", 0 },
    { "192.0.2.0/25", "192.0.2.127", 1 }, { "192.0.2.0/25", "192.0.2.128", 0 },
    { "192.0.2.1/32", "192.0.2.1", 1 },
    { "2001:db8::/32", "2001:db8:ffff::1", 1 }, { "2001:db8::/32", "2001:db9::1", 0 },
    { "2001:db8::/33", "2001:db8:8000::1", 0 }, { "2001:db8::/33", "2001:db8:7fff::1", 1 },
    { "::1", "::1", 1 }, { "::1", "::2", 0 }, { "::/0", "2001:db8::1", 1 },
    { "::1", "127.0.0.1", 0 }, { "127.0.0.1", "::1", 0 },
    /* a dual-stack listener's IPv4 client matches IPv4 rules */
    { "192.0.2.0/24", "::ffff:192.0.2.7", 1 }, { "192.0.2.0/24", "::ffff:192.0.3.7", 0 },
    /* host names (resolved through /etc/hosts) */
    { "localhost", "127.0.0.1", 1 }, { "localhost", "192.0.2.1", 0 },
    { "no-such-host.invalid", "127.0.0.1", 0 },
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    struct acl_addr a;
    struct sockaddr_storage ss;
    const char *e = NULL;
    socklen_t sl = client(c[i].client, 1234, &ss);

    if (acl_addr_parse(c[i].rule, &a, &e) < 0) {
      ok(0, "parse '%s': %s", c[i].rule, e);
      continue;
    }
    is_int(acl_addr_match(&a, (struct sockaddr *)&ss, sl), c[i].match, "'%s' %s '%s'",
           c[i].rule, c[i].match ? "matches" : "does not match", c[i].client);
  }
}

static bool check(struct conf_acl_entry *v, size_t n, const char *addr)
{
  struct conf_acl acl = { .v = v, .n = n };
  struct sockaddr_storage ss;
  socklen_t sl = client(addr, 40000, &ss);

  return acl_check(&acl, (struct sockaddr *)&ss, sl);
}

static void test_order(char *scratch)
{
  struct conf_acl_entry first_wins[] = {
    { CONF_ACL_ALLOW, "192.0.2.1", NULL }, { CONF_ACL_DENY, "192.0.2.0/24", NULL },
    { CONF_ACL_ALLOW, "any", NULL },
  };
  struct conf_acl_entry deny_any[] = {
    { CONF_ACL_LOG, "any", "log line ${address}" }, { CONF_ACL_ALLOW, "127.0.0.0/8", NULL },
    { CONF_ACL_DENY, "any", NULL },
  };
  struct conf_acl_entry nothing[] = { { CONF_ACL_DENY, "198.51.100.0/24", NULL } };
  char *cmd_true = "exit 0", *cmd_false = "exit 1", *cmd_other = "exit 7";
  struct conf_acl_entry ifexec_allow[] = {
    { CONF_ACL_IFEXEC, "any", cmd_true }, { CONF_ACL_DENY, "any", NULL },
  };
  struct conf_acl_entry ifexec_deny[] = { { CONF_ACL_IFEXEC, "any", cmd_false } };
  struct conf_acl_entry ifexec_goes_on[] = {
    { CONF_ACL_IFEXEC, "any", cmd_other }, { CONF_ACL_DENY, "any", NULL },
  };
  char *exec_cmd = util_xasprintf("echo ${aclno} $address ${family} > %s/exec.out",
                                  scratch);
  char *ifexec_cmd = util_xasprintf("echo ${port} > %s/ifexec.out; exit 1", scratch);
  struct conf_acl_entry exec_goes_on[] = {
    { CONF_ACL_ALLOW, "10.0.0.0/8", NULL }, { CONF_ACL_EXEC, "any", exec_cmd },
  };
  struct conf_acl_entry ifexec_env[] = { { CONF_ACL_IFEXEC, "any", ifexec_cmd } };
  struct conf_acl empty = { NULL, 0 };
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  struct conf_acl_entry deny_all[] = { { CONF_ACL_DENY, "any", NULL } };
  struct conf_acl deny_all_acl = { deny_all, 1 };
  char path[600], buf[128];
  FILE *f;

  ok(check(first_wins, 3, "192.0.2.1"), "first allow wins over a later deny");
  ok(!check(first_wins, 3, "192.0.2.2"), "deny of the network");
  ok(check(first_wins, 3, "198.51.100.1"), "allow any at the end");
  ok(check(deny_any, 3, "127.0.0.1"), "log goes on, then allow");
  ok(!check(deny_any, 3, "192.0.2.1"), "deny any");
  ok(!check(deny_any, 3, "::1"), "deny any (IPv6)");
  ok(check(nothing, 1, "192.0.2.1"), "no entry decides: allowed");
  ok(acl_check(&empty, (struct sockaddr *)&sun, sizeof sun), "empty acl allows");
  ok(acl_check(&deny_all_acl, (struct sockaddr *)&sun, sizeof sun),
     "AF_UNIX always allowed");
  ok(check(ifexec_allow, 2, "192.0.2.1"), "ifexec exit 0 allows");
  ok(!check(ifexec_deny, 1, "192.0.2.1"), "ifexec exit 1 denies");
  ok(!check(ifexec_goes_on, 2, "192.0.2.1"), "ifexec exit 7 goes on to the next entry");
  ok(check(exec_goes_on, 2, "192.0.2.1"), "exec does not decide");
  /* exec does not wait: poll for its output, bounded */
  snprintf(path, sizeof path, "%s/exec.out", scratch);
  buf[0] = '\0';
  for (int i = 0; i < 500; i++) {
    f = fopen(path, "r");
    if (f != NULL) {
      if (fgets(buf, sizeof buf, f) == NULL)
        buf[0] = '\0';
      fclose(f);
      if (strchr(buf, '\n') != NULL)
        break;
    }
    usleep(10000);
  }
  is_str(buf, "2 192.0.2.1 AF_INET\n", "exec ran with ${aclno} ${address} ${family}");
  ok(!check(ifexec_env, 1, "2001:db8::5"), "ifexec exit 1 with expansion");
  snprintf(path, sizeof path, "%s/ifexec.out", scratch);
  buf[0] = '\0';
  f = fopen(path, "r");
  if (f != NULL) {
    if (fgets(buf, sizeof buf, f) == NULL)
      buf[0] = '\0';
    fclose(f);
  }
  is_str(buf, "40000\n", "ifexec waited, ${port} expanded");
  free(exec_cmd);
  free(ifexec_cmd);
}

static void test_expand(void)
{
  static const struct { const char *in, *out; } c[] = {
    { "plain", "plain" }, { "${address}", "2001:db8::1" }, { "$address!", "2001:db8::1!" },
    { "$addressx", "$addressx" }, { "${aclno}/${port}/${family}", "3/110/AF_INET6" },
    { "$", "$" }, { "${", "${" }, { "${unknown}", "${unknown}" }, { "$$aclno", "$3" },
  };
  struct sockaddr_storage ss;
  socklen_t sl = client("2001:db8::1", 110, &ss);

  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    char *r = acl_expand(c[i].in, 3, (struct sockaddr *)&ss, sl);

    is_str(r, c[i].out, "expand '%s'", c[i].in);
    free(r);
  }
}

static void test_source_key(void)
{
  static const struct {
    const char *addr;
    unsigned b4, b6;
    const char *key;
  } c[] = {
    { "192.0.2.77", 32, 64, "192.0.2.77/32" },
    { "192.0.2.77", 24, 64, "192.0.2.0/24" },
    { "::ffff:192.0.2.77", 24, 64, "192.0.2.0/24" },       /* dual-stack listener */
    { "2001:db8:1:2:3:4:5:6", 32, 64, "2001:db8:1:2::/64" },
    { "2001:db8:1:2:3:4:5:6", 32, 128, "2001:db8:1:2:3:4:5:6/128" },
    { "2001:db8:1:2:3:4:5:6", 32, 200, "2001:db8:1:2:3:4:5:6/128" },
  };
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  char key[ACL_SOURCE_KEY_MAX];

  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = client(c[i].addr, 110, &ss);

    key[0] = '\0';
    ok(acl_source_key((struct sockaddr *)&ss, sl, c[i].b4, c[i].b6, key, sizeof key) == 0 &&
       strcmp(key, c[i].key) == 0, "source of %s /%u /%u: %s (got %s)", c[i].addr,
       c[i].b4, c[i].b6, c[i].key, key);
  }
  ok(acl_source_key((struct sockaddr *)&sun, sizeof sun, 32, 64, key, sizeof key) < 0,
     "a UNIX socket client has no source");
  ok(acl_source_key((struct sockaddr *)&sun, 1, 32, 64, key, 4) < 0, "short buffer refused");
}

static void test_penalty(const char *scratch)
{
  static const unsigned want[] = { 0, 0, 0, 2, 4, 8, 15, 15, 15 };
  char path[256];
  struct conf c;
  bool rec;
  time_t t = 1700000000;

  for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
    ok(penalty_delay(i, 15) == want[i], "%u failures: %u s", i, want[i]);
  ok(penalty_delay(40, 15) == 15 && penalty_delay(1000, 3) == 3, "capped");

  conf_init(&c);
  snprintf(path, sizeof path, "%s/penalty.db", scratch);
  free(c.login_penalty_file);
  c.login_penalty_file = strdup(path);
  c.login_penalty_max = 15;
  ok(penalty_before(&c, "192.0.2.1/32", "alice", t, &rec) == 0 && !rec, "nothing on record");
  for (int i = 0; i < 4; i++)
    penalty_failed(&c, "192.0.2.1/32", "alice", t);
  ok(penalty_before(&c, "192.0.2.1/32", "bob", t, &rec) == 4 && rec, "the source's 4 failures");
  ok(penalty_before(&c, "198.51.100.1/32", "alice", t, &rec) == 4 && rec,
     "the name's 4 failures, from another source");
  ok(penalty_before(&c, "198.51.100.1/32", "bob", t, &rec) == 0 && !rec,
     "another source and name: no wait");
  ok(penalty_before(&c, NULL, "alice", t + PARAMS_LOGIN_PENALTY_WINDOW, &rec) == 0,
     "forgotten after the window");
  penalty_failed(&c, NULL, "alice", t + PARAMS_LOGIN_PENALTY_WINDOW);
  ok(penalty_before(&c, NULL, "alice", t + PARAMS_LOGIN_PENALTY_WINDOW, &rec) == 0 && rec,
     "a failure after the window starts again at one");
  penalty_succeeded(&c, "192.0.2.1/32", "alice");
  ok(penalty_before(&c, "192.0.2.1/32", "alice", t, &rec) == 0 && !rec,
     "a success clears both");
  /* The sweep (due: never swept) removes what no longer counts. */
  penalty_failed(&c, "203.0.113.1/32", NULL, t);
  penalty_failed(&c, "203.0.113.2/32", NULL, t + PARAMS_LOGIN_PENALTY_WINDOW + 10);
  for (int i = 0; i < 3; i++)
    penalty_failed(&c, "203.0.113.2/32", NULL, t + PARAMS_LOGIN_PENALTY_WINDOW + 10);
  ok(penalty_before(&c, "203.0.113.1/32", NULL, t, &rec) == 0 && !rec,
     "a sweep removed a failure that no longer counts");
  ok(penalty_before(&c, "203.0.113.2/32", NULL, t + PARAMS_LOGIN_PENALTY_WINDOW + 10, &rec)
     == 4 && rec, "and kept the one that does");
  c.login_penalty_max = 0;
  ok(penalty_before(&c, "203.0.113.2/32", NULL, t + PARAMS_LOGIN_PENALTY_WINDOW + 10, &rec)
     == 0 && !rec, "login-penalty-max 0: off");
  conf_free(&c);
}

#ifdef HAVE_LIBWRAP
static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");

  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
    abort();
}
#endif

/* Whether the tcp-wrappers tables need libwrap at all: only blank lines and comments in
 * column 0 (or no file) mean "allow everyone" without asking it. */
static void test_tcpwrap_tables(const char *scratch)
{
  char allow[256], deny[256];
  struct conf c;

  conf_init(&c);
  snprintf(allow, sizeof allow, "%s/hosts.allow", scratch);
  snprintf(deny, sizeof deny, "%s/hosts.deny", scratch);
  free(c.tcpwrap_allow_table);
  free(c.tcpwrap_deny_table);
  c.tcpwrap_allow_table = strdup(allow);
  c.tcpwrap_deny_table = strdup(deny);
#ifdef HAVE_LIBWRAP
  static const struct { const char *text; bool rules; } t[] = {
    { "", false },
    { "# /etc/hosts.allow\n#\n\n   \n\t\r\n# ALL: ALL\n", false },
    { "pop3d: 192.0.2.1\n", true },
    { "# comment\nALL: ALL", true },
    { "  # blanks before the hash make a rule line for libwrap\n", true },
    { "# a comment that goes on \\\nALL: ALL\n", true },
  };

  ok(!acl_tcpwrap_has_rules(&c), "no tables: no rules");
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    write_file(allow, t[i].text);
    ok(acl_tcpwrap_has_rules(&c) == t[i].rules, "allow table %zu: %s", i,
       t[i].rules ? "may hold rules" : "no rules");
    unlink(allow);
    write_file(deny, t[i].text);
    ok(acl_tcpwrap_has_rules(&c) == t[i].rules, "deny table %zu: %s", i,
       t[i].rules ? "may hold rules" : "no rules");
  }
  write_file(deny, "ALL: ALL\n");
  c.tcpwrap_enable = false;
  ok(!acl_tcpwrap_has_rules(&c), "tcp-wrappers off: nothing to check");
#else
  ok(!acl_tcpwrap_has_rules(&c), "built without libwrap: nothing to check");
#endif
  conf_free(&c);
}

int main(void)
{
  char scratch[] = "/tmp/test_acl.XXXXXX";
  char cmd[64];

  if (mkdtemp(scratch) == NULL)
    return 99;
  test_parse();
  test_match();
  test_order(scratch);
  test_expand();
  test_source_key();
  test_penalty(scratch);
  test_tcpwrap_tables(scratch);
  snprintf(cmd, sizeof cmd, "rm -rf %s", scratch);
  if (system(cmd) != 0)
    printf("# could not remove %s\n", scratch);
  return tap_done();
}
