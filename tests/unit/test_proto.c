/* test_proto.c - the line reader, the reply writer, message numbers and the message
 * streamer against a byte-by-byte reference of the size rule.  GPL-3.0-or-later. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "tap.h"

/* Read back everything written to fd (a temp file) from offset 0. */
static char *slurp(int fd, size_t *len)
{
  off_t end = lseek(fd, 0, SEEK_END);
  char *buf = malloc((size_t)end + 1);

  if (pread(fd, buf, (size_t)end, 0) != end)
    abort();
  buf[end] = '\0';
  *len = (size_t)end;
  return buf;
}

static int tmpfd(const char *data, size_t len)
{
  char name[] = "/tmp/pop3d-test-XXXXXX";
  int fd = mkstemp(name);

  if (fd < 0)
    abort();
  unlink(name);
  if (len && write(fd, data, len) != (ssize_t)len)
    abort();
  return fd;
}

/* The size rule of mailbox.h, one byte at a time: what RETR must send (before
 * dot-stuffing) for the message data[0..len). */
static char *reference(const char *d, size_t len, int mboxrd, long long body, size_t *out_len)
{
  char *out = malloc(len * 2 + 3);
  size_t o = 0, i = 0;
  int in_header = 1;

  while (i < len) {
    size_t e = i;
    while (e < len && d[e] != '\n')
      e++;
    /* line is d[i..e), with LF at e if e < len */
    if (!in_header && body >= 0) {
      if (body == 0)
        break;
      body--;
    }
    size_t s = i;
    if (mboxrd && d[s] == '>') {
      size_t k = s;
      while (k < e && d[k] == '>')
        k++;
      if (e - k >= 5 && memcmp(d + k, "From ", 5) == 0)
        s++;
    }
    int empty = (e == i) || (e == i + 1 && d[i] == '\r' && e < len);
    memcpy(out + o, d + s, e - s);
    o += e - s;
    if (e < len) {
      if (e > i && d[e - 1] == '\r')
        out[o++] = '\n';
      else {
        out[o++] = '\r';
        out[o++] = '\n';
      }
    } else if (e > i) {
      out[o++] = '\r';
      out[o++] = '\n';
    }
    if (in_header && empty && e < len) {
      in_header = 0;
      if (body == 0)
        break;
    }
    i = e + 1;
  }
  *out_len = o;
  return out;
}

/* Undo dot-stuffing of a multi-line body (no terminator). */
static char *unstuff(const char *d, size_t len, size_t *out_len)
{
  char *out = malloc(len + 1);
  size_t o = 0;
  int bol = 1;

  for (size_t i = 0; i < len; i++) {
    if (bol && d[i] == '.') {
      bol = 0;
      continue;
    }
    bol = d[i] == '\n';
    out[o++] = d[i];
  }
  *out_len = o;
  return out;
}

static void check_stream(const char *name, const char *msg, size_t len, int mboxrd,
                         long long body)
{
  int in = tmpfd(msg, len), out = tmpfd(NULL, 0);
  struct transport t;
  uint64_t octets = 0;
  size_t got_len, un_len, ref_len;
  char *got, *un, *ref;
  int r;

  transport_init(&t, out, out, 512, 5);
  r = proto_send_message(&t, in, 0, (off_t)len, mboxrd, body, &octets);
  transport_flush(&t);
  got = slurp(out, &got_len);
  un = unstuff(got, got_len, &un_len);
  ref = reference(msg, len, mboxrd, body, &ref_len);
  ok(r == 0 && un_len == ref_len && memcmp(un, ref, ref_len) == 0 && octets == ref_len,
     "stream %s (mboxrd %d, body %lld): %zu octets", name, mboxrd, body, ref_len);
  if (!(un_len == ref_len && memcmp(un, ref, ref_len) == 0))
    printf("#   got %zu bytes '%.*s'\n#   want %zu bytes '%.*s'\n", un_len, (int)un_len, un,
           ref_len, (int)ref_len, ref);
  /* Dot-stuffing: no line of the output may be a lone "." */
  ok(strstr(got, "\r\n.\r\n") == NULL && !(got_len >= 3 && memcmp(got, ".\r\n", 3) == 0),
     "stream %s: no premature terminator", name);
  free(got);
  free(un);
  free(ref);
  transport_free(&t);
  close(in);
  close(out);
}

static void test_stream(void)
{
  static const struct { const char *name, *msg; } cases[] = {
    { "plain", "Subject: a\n\nbody\nline 2\n" },
    { "no final newline", "Subject: a\n\nbody" },
    { "empty", "" },
    { "crlf everywhere", "Subject: a\r\nTo: b\r\n\r\nbody\r\n" },
    { "crlf header, lf body", "Subject: a\r\n\r\nbody\nmore\n" },
    { "dots", ".\n..\n.x\nSubject: y\n\n.\n.body\n" },
    { "from quoting", ">From a\n>>From b\n>Fro\n>From\n> From\n\n>From c\n>>>>From d" },
    { "lone cr", "a\rb\n\r\r\n\rx\n\r" },
    { "gt then eof", "H: x\n\n>>>" },
    { "no body", "Subject: only header\n" },
    { "header only no blank", "A: b\nC: d" },
    { "blank first", "\nbody starts at once\nsecond\n" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = strlen(cases[i].msg);
    for (int rd = 0; rd <= 1; rd++) {
      check_stream(cases[i].name, cases[i].msg, len, rd, -1);
      check_stream(cases[i].name, cases[i].msg, len, rd, 0);
      check_stream(cases[i].name, cases[i].msg, len, rd, 1);
    }
  }
  /* A large message with long lines crossing every block boundary. */
  {
    size_t len = 3 * 1024 * 1024 + 17;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
      big[i] = (i % 997 == 0) ? '\n' : (i % 991 == 0) ? '.' : (i % 89 == 0) ? '>' : 'a';
    memcpy(big + 1000, "\n>>From x", 9);
    check_stream("3 MB", big, len, 1, -1);
    check_stream("3 MB top", big, len, 1, 5);
    free(big);
  }
}

static void feed_lines(const char *input, size_t inlen, const enum proto_line *want,
                       const char *const *want_text, size_t n, const char *name)
{
  int sv[2];
  struct transport t;
  char buf[PARAMS_CMD_LINE_MAX + 1];
  int good = 1;

  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    abort();
  if (write(sv[1], input, inlen) != (ssize_t)inlen)
    abort();
  close(sv[1]);
  transport_init(&t, sv[0], sv[0], 512, 5);
  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    enum proto_line r = proto_read_line(&t, buf, sizeof buf, &len);
    if (r != want[i] || (r == PROTO_LINE_OK && strcmp(buf, want_text[i]) != 0)) {
      printf("#   %s: line %zu: got %d '%s'\n", name, i, r, r == PROTO_LINE_OK ? buf : "");
      good = 0;
    }
  }
  ok(good, "line reader: %s", name);
  transport_free(&t);
  close(sv[0]);
}

static void test_lines(void)
{
  {
    static const char in[] = "USER a\r\nPASS b c\nNOOP\r\n";
    enum proto_line w[] = { PROTO_LINE_OK, PROTO_LINE_OK, PROTO_LINE_OK, PROTO_LINE_EOF };
    const char *t[] = { "USER a", "PASS b c", "NOOP", NULL };
    feed_lines(in, sizeof in - 1, w, t, 4, "pipelined CRLF and LF");
  }
  {
    char in[3000];
    memset(in, 'x', 1000);
    memcpy(in + 1000, "\r\nNOOP\r\n", 8);
    enum proto_line w[] = { PROTO_LINE_TOOLONG, PROTO_LINE_OK, PROTO_LINE_EOF };
    const char *t[] = { NULL, "NOOP", NULL };
    feed_lines(in, 1008, w, t, 3, "1000-byte line consumed whole, next line intact");
  }
  {
    char in[600];
    memset(in, 'y', 253);
    memcpy(in + 253, "\r\n", 2);             /* 255 octets with CRLF: allowed */
    memset(in + 255, 'z', 255);
    memcpy(in + 510, "\r\n", 2);             /* 257 octets: too long */
    enum proto_line w[] = { PROTO_LINE_OK, PROTO_LINE_TOOLONG, PROTO_LINE_EOF };
    const char *t[] = { NULL, NULL, NULL };
    char first[254];
    memset(first, 'y', 253);
    first[253] = '\0';
    t[0] = first;
    feed_lines(in, 512, w, t, 3, "255-octet limit (RFC 2449)");
  }
  {
    static const char in[] = "US\0ER a\r\nQUIT\r\n";
    enum proto_line w[] = { PROTO_LINE_NUL, PROTO_LINE_OK };
    const char *t[] = { NULL, "QUIT" };
    feed_lines(in, sizeof in - 1, w, t, 2, "NUL makes the line invalid");
  }
  {
    static const char in[] = "QUIT";
    enum proto_line w[] = { PROTO_LINE_EOF };
    const char *t[] = { NULL };
    feed_lines(in, sizeof in - 1, w, t, 1, "EOF without newline");
  }
}

static void test_status(void)
{
  int out = tmpfd(NULL, 0);
  struct transport t;
  size_t len;
  char *got;

  transport_init(&t, out, out, 512, 5);
  proto_status(&t, true, NULL, "fine");
  proto_status(&t, false, "IN-USE", "Mailbox in use");
  proto_status(&t, false, NULL, "evil\r\n+OK injected");
  proto_ml_line(&t, ".dot", 4);
  proto_ml_end(&t);
  transport_flush(&t);
  got = slurp(out, &len);
  is_str(got, "+OK fine\r\n-ERR [IN-USE] Mailbox in use\r\n-ERR evil  +OK injected\r\n"
         "..dot\r\n.\r\n", "status lines, response codes, no CRLF injection, dot-stuffing");
  free(got);
  transport_free(&t);
  close(out);
}

static void test_msgno(void)
{
  static const struct { const char *in; size_t count; const char *err; size_t idx; } c[] = {
    { "1", 3, NULL, 0 }, { "3", 3, NULL, 2 }, { "0", 3, "No such message", 0 },
    { "4", 3, "No such message", 0 }, { "-1", 3, "Invalid message number", 0 },
    { "1x", 3, "Invalid message number", 0 }, { "+1", 3, "Invalid message number", 0 },
    { " 1", 3, "Invalid message number", 0 }, { "", 3, "Invalid arguments", 0 },
    { "99999999999", 3, "No such message", 0 },
    { "999999999999999999999999", 3, "No such message: number too large", 0 },
    { "0x1", 3, "Invalid message number", 0 }, { "01", 3, NULL, 0 },
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    size_t idx = 99;
    const char *e = proto_parse_msgno(c[i].in, c[i].count, &idx);
    is_str(e, c[i].err, "message number '%s'", c[i].in);
    if (c[i].err == NULL)
      is_int(idx, c[i].idx, "message number '%s' index", c[i].in);
  }
}

int main(void)
{
  test_lines();
  test_status();
  test_msgno();
  test_stream();
  return tap_done();
}
