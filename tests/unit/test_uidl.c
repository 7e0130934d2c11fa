/* test_uidl.c - unique ids: validity, hash determinism and format.  GPL-3.0-or-later. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "mailbox.h"
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

static bool xuid(struct uidl_mbox_chain *c, const char *v, uint32_t *u)
{
  *u = 0;
  return uidl_chain_xuid(c, v, strlen(v), u);
}

/* Dovecot's mbox X-IMAPbase and X-UID, under the rules of its mbox-sync parser. */
static void test_dovecot_mbox(void)
{
  static const struct { const char *v; bool ok; uint32_t validity, last; } bases[] = {
    { " 1795438098 0000000003", true, 1795438098u, 3 },          /* Dovecot */
    { "           1795438235                    4", true, 1795438235u, 4 },  /* Mailutils */
    { " 1 0000000005 $Forwarded Junk NonJunk", true, 1, 5 },     /* with keywords */
    { " 1234567890 0000000009   \r\n", true, 1234567890u, 9 },
    { " 77", true, 77, 0 },
    { " 0 0000000003", false, 0, 0 },                           /* validity 0 */
    { " 4294967296 1", false, 0, 0 },                           /* over 32 bits */
    { " 12x 3", false, 0, 0 },
    { " 12\t3", false, 0, 0 },                                  /* Dovecot wants a space */
    { " 12 3x", false, 0, 0 },
    { " 12 99999999999", false, 0, 0 },
    { "", false, 0, 0 },
    { " abc", false, 0, 0 },
  };
  struct uidl_mbox_chain c;
  uint32_t v, last, u;
  char id[71];

  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
    bool got = uidl_ximapbase_parse(bases[i].v, strlen(bases[i].v), &v, &last);
    ok(got == bases[i].ok && (!got || (v == bases[i].validity && last == bases[i].last)),
       "X-IMAPbase case %zu", i);
  }

  memset(&c, 0, sizeof c);
  ok(uidl_chain_valid(&c), "an empty chain is valid");
  ok(!xuid(&c, " 1", &u), "no X-UID is trusted before an X-IMAPbase");
  uidl_chain_end(&c, 0, false);
  ok(c.validity == 0 && c.next == 0, "... and an inactive chain does not move");

  uidl_chain_start(&c, 7, 3);
  ok(xuid(&c, " 1", &u) && u == 1, "X-UID 1 after X-IMAPbase 7 3");
  uidl_chain_end(&c, 1, false);
  ok(!xuid(&c, " 1", &u), "a UID not above the previous one is refused");
  ok(!xuid(&c, " 5", &u), "a UID above the next one is refused");
  ok(!xuid(&c, " 2 junk", &u), "text after the UID is refused");
  ok(!xuid(&c, "", &u), "an empty X-UID is refused");
  ok(xuid(&c, " 4 \t\r\n", &u) && u == 4, "the next UID (4), blanks after it");
  uidl_chain_end(&c, 4, false);
  is_int(c.next, 5, "the next UID moves on when taken");
  uidl_chain_end(&c, 0, false);
  ok(c.prev == 5 && c.next == 6, "a message without X-UID takes the next UID (5)");
  ok(!xuid(&c, " 5", &u), "so a later X-UID 5 is refused");
  uidl_chain_end(&c, 0, true);
  ok(c.prev == 5 && c.next == 6, "c-client's folder data message takes no UID");
  ok(xuid(&c, " 6", &u) && u == 6, "X-UID 6 then");
  ok(!xuid(&c, " 99999999999", &u), "an X-UID over 32 bits is refused");
  ok(uidl_chain_valid(&c), "the chain is valid");

  uidl_chain_start(&c, 9, UINT32_MAX);
  ok(xuid(&c, " 4294967295", &u) && u == UINT32_MAX, "the largest UID");
  uidl_chain_end(&c, UINT32_MAX, false);
  ok(uidl_chain_valid(&c), "a chain at its end is valid");
  uidl_chain_end(&c, 0, false);
  is_int(c.validity, 0, "no UID left: nothing further is trusted");
  ok(uidl_chain_valid(&c), "... and the chain left is one an index may hold");

  c.validity = 3;
  c.prev = 5;
  c.next = 5;
  ok(!uidl_chain_valid(&c), "prev must be below next");
  c.validity = 0;
  c.prev = 1;
  ok(!uidl_chain_valid(&c), "an inactive chain is all zero");

  uidl_dovecot_format(1, 0x6b043612u, id);
  is_str(id, "000000016b043612", "Dovecot's %%08Xu%%08Xv, as Dovecot prints it");
}

/* A table of messages whose own ids are ids[0..n). */
static void table(struct mailbox *mb, const char *const *ids, size_t n)
{
  memset(mb, 0, sizeof *mb);
  mb->msgs = calloc(n ? n : 1, sizeof *mb->msgs);
  for (size_t i = 0; i < n; i++)
    mb->msgs[i].uid = mailbox_add_uid(mb, ids[i], strlen(ids[i]));
  mb->count = n;
}

static void untable(struct mailbox *mb)
{
  free(mb->msgs);
  free(mb->uids);
}

static void test_assign(void)
{
  static const char *const own[] = { "u", "a", "u", "u-2", "u" };
  struct mailbox a, b;
  const char *err = NULL;
  int64_t now = 1800000000;

  /* Without an index: exactly mailbox_unique_uids. */
  table(&a, own, 5);
  table(&b, own, 5);
  ok(uidl_assign(&a, NULL, NULL, 0, now, &err) == 0 &&
     mailbox_unique_uids(&b, &err) == 0, "assigned");
  for (size_t i = 0; i < 5; i++)
    is_str(mailbox_uid(&a, i), mailbox_uid(&b, i), "no index: as mailbox_unique_uids (%zu)", i);
  untable(&a);
  untable(&b);

  {
    /* The first "u" was deleted: the second keeps u-2 and u stays retired; a new one
     * with the same own id takes the next free suffix. */
    static const char *const left[] = { "a", "u", "u" };
    const char *keep[] = { "a", "u-2", NULL };
    struct uidl_retired r[] = { { "u", now - 10 }, { "old", now - UIDL_RETIRE_SECONDS },
                                { "a", now - 5 } };
    table(&a, left, 3);
    ok(uidl_assign(&a, keep, r, 3, now, &err) == 0, "assigned with kept and retired ids");
    is_str(mailbox_uid(&a, 0), "a", "kept");
    is_str(mailbox_uid(&a, 1), "u-2", "a kept id does not change when its twin is gone");
    is_str(mailbox_uid(&a, 2), "u-3", "a retired id is not handed out again");
    ok(r[0].since == now - 10, "still retired");
    ok(r[1].since == 0, "retired for UIDL_RETIRE_DAYS at most");
    ok(r[2].since == 0, "an id in use is not retired");
    untable(&a);
  }
  {
    /* Two messages claim one id (a hostile index): the first keeps it. */
    static const char *const two[] = { "x", "y" };
    const char *keep[] = { "z", "z" };
    table(&a, two, 2);
    ok(uidl_assign(&a, keep, NULL, 0, now, &err) == 0, "assigned");
    is_str(mailbox_uid(&a, 0), "z", "the first claim wins");
    is_str(mailbox_uid(&a, 1), "y", "the second is new");
    untable(&a);
  }
}

static void test_match(void)
{
  /* Records: A (u, going), B (u), C (h) whose message got X-UIDL: h-2 written. */
  struct uidl_prior p[] = { { "u", "u", 11, true }, { "u", "u-2", 22, false },
                            { "h", "h-2", 33, false } };
  static const char *const now_own[] = { "u", "h-2", "u" };
  uint64_t disc[] = { 99, 44, 11 };
  size_t match[3];
  struct mailbox mb;

  table(&mb, now_own, 3);
  uidl_match(p, 3, &mb, disc, match);
  ok(match[0] == 1, "a changed header: the same own id, a record not going");
  ok(match[1] == 2, "the id pop3d wrote into the message");
  ok(match[2] == 0, "a deletion that did not happen: matched exactly");
  untable(&mb);
}

int main(void)
{
  test_valid();
  test_assign();
  test_match();
  test_hash();
  test_dispersion();
  test_dovecot_mbox();
  return tap_done();
}
