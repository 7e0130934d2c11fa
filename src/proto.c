/* proto.c - the POP3 wire format.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "params.h"
#include "proto.h"

bool proto_line_pending(const struct transport *t)
{
  return memchr(t->in + t->in_start, '\n', t->in_end - t->in_start) != NULL;
}

enum proto_line proto_read_line(struct transport *t, char *buf, size_t cap, size_t *len_r)
{
  size_t len = 0;
  bool toolong = false, nul = false;
  enum proto_line r = PROTO_LINE_OK;

  /* The idle timer runs from here to the line's end: bytes that never make a line (a
   * client sending one byte at a time) don't restart it. */
  t->line_deadline = t->timeout ? util_now_ms() + (uint64_t)t->timeout * 1000u : 0;
  for (;;) {
    const char *p = t->in + t->in_start;
    size_t avail = t->in_end - t->in_start;
    const char *lf = memchr(p, '\n', avail);
    size_t take = lf ? (size_t)(lf - p) : avail;

    if (memchr(p, '\0', take) != NULL)
      nul = true;
    if (!toolong) {
      if (len + take + 1 >= cap)    /* +1: the LF counts against the limit */
        toolong = true;
      else {
        memcpy(buf + len, p, take);
        len += take;
      }
    }
    if (lf != NULL) {
      t->in_start += take + 1;
      break;
    }
    t->in_start = t->in_end;
    switch (transport_fill(t)) {
    case TRANSPORT_OK: continue;
    case TRANSPORT_EOF: r = PROTO_LINE_EOF; break;
    case TRANSPORT_TIMEOUT: r = PROTO_LINE_TIMEOUT; break;
    default: r = PROTO_LINE_ERROR; break;
    }
    break;
  }
  t->line_deadline = 0;
  if (r != PROTO_LINE_OK)
    return r;
  if (toolong)
    return PROTO_LINE_TOOLONG;
  if (nul)
    return PROTO_LINE_NUL;
  if (len > 0 && buf[len - 1] == '\r')
    len--;
  buf[len] = '\0';
  *len_r = len;
  return PROTO_LINE_OK;
}

static void write_clean(struct transport *t, const char *s)
{
  /* A reply is one line: drop any CR, LF or control byte a caller let through. */
  size_t n = 0;

  while (s[n] != '\0') {
    size_t run = strcspn(s + n, "\r\n\t\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
                         "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f");
    transport_write(t, s + n, run);
    n += run;
    if (s[n] != '\0') {
      transport_write(t, " ", 1);
      n++;
    }
  }
}

void proto_status(struct transport *t, bool ok, const char *code, const char *text)
{
  transport_write(t, ok ? "+OK" : "-ERR", ok ? 3 : 4);
  if (code != NULL) {
    transport_write(t, " [", 2);
    write_clean(t, code);
    transport_write(t, "]", 1);
  }
  if (text != NULL && *text != '\0') {
    transport_write(t, " ", 1);
    write_clean(t, text);
  }
  transport_write(t, "\r\n", 2);
}

void proto_ml_line(struct transport *t, const char *line, size_t len)
{
  if (len > 0 && line[0] == '.')
    transport_write(t, ".", 1);
  transport_write(t, line, len);
  transport_write(t, "\r\n", 2);
}

void proto_ml_printf(struct transport *t, const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof buf)
    n = sizeof buf - 1;
  proto_ml_line(t, buf, (size_t)n);
}

void proto_ml_end(struct transport *t)
{
  transport_write(t, ".\r\n", 3);
}

const char *proto_parse_msgno(const char *s, size_t count, size_t *index_r)
{
  uint64_t v;
  const char *err;

  if (s == NULL || *s == '\0')
    return "Invalid arguments";
  if (util_parse_u64(s, 0, UINT64_MAX, &v, &err) < 0)
    return strcmp(err, "number too large") == 0 ? "No such message: number too large"
                                                : "Invalid message number";
  if (v == 0 || v > count)
    return "No such message";
  *index_r = (size_t)(v - 1);
  return NULL;
}

/* The streaming state machine.  Bytes in the middle of a line go through a memchr fast
 * path; only line starts are looked at byte by byte (dot-stuffing, >From unquoting, the
 * blank line that ends the header, TOP's line count). */
enum bol_state {
  ST_BOL,      /* at the start of a line */
  ST_BOL_CR,   /* a line started with CR: empty line "\r\n" or not? */
  ST_GT,       /* a line started with '>'s (mboxrd): counting, matching "From " */
  ST_MID,      /* inside a line */
};

struct stream {
  struct transport *t;
  enum bol_state st;
  bool mboxrd;
  bool in_header;
  bool done;
  long long body_left;     /* < 0: no limit */
  bool prev_cr;            /* the last byte sent of this line was CR */
  uint64_t gt;             /* '>' held back at the start of the line */
  unsigned from_matched;   /* how much of "From " followed them */
  uint64_t octets;
};

static const char from_[] = "From ";

static void emit(struct stream *s, const char *p, size_t n)
{
  if (n == 0)
    return;
  transport_write(s->t, p, n);
  s->octets += n;
  s->prev_cr = p[n - 1] == '\r';
}

static void emit_gts(struct stream *s, uint64_t n)
{
  static const char gts[64] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";

  while (n > 0) {
    size_t k = n > sizeof gts ? sizeof gts : (size_t)n;
    emit(s, gts, k);
    n -= k;
  }
}

/* End of a line (an LF in the input). */
static void end_line(struct stream *s, bool empty)
{
  if (s->prev_cr) {
    transport_write(s->t, "\n", 1);
    s->octets += 1;
  } else {
    transport_write(s->t, "\r\n", 2);
    s->octets += 2;
  }
  s->prev_cr = false;
  s->st = ST_BOL;
  if (s->in_header && empty) {
    s->in_header = false;
    if (s->body_left == 0)
      s->done = true;
  }
}

/* A new line starts: does TOP want it? */
static bool want_line(struct stream *s)
{
  if (!s->in_header && s->body_left >= 0) {
    if (s->body_left == 0) {
      s->done = true;
      return false;
    }
    s->body_left--;
  }
  return true;
}

/* Flush what a line start held back, as plain line content. */
static void release_held(struct stream *s)
{
  if (s->st == ST_BOL_CR) {
    emit(s, "\r", 1);
  } else if (s->st == ST_GT) {
    emit_gts(s, s->gt);
    emit(s, from_, s->from_matched);
  }
  s->st = ST_MID;
}

static void feed(struct stream *s, const char *p, size_t n)
{
  size_t i = 0;

  while (i < n && !s->done) {
    char c = p[i];

    switch (s->st) {
    case ST_BOL:
      if (!want_line(s))
        return;
      s->prev_cr = false;
      if (c == '\n') {
        end_line(s, true);
        i++;
      } else if (c == '\r') {
        s->st = ST_BOL_CR;
        i++;
      } else if (c == '.') {
        transport_write(s->t, ".", 1);   /* dot-stuffing: not counted */
        s->st = ST_MID;
      } else if (c == '>' && s->mboxrd) {
        s->st = ST_GT;
        s->gt = 0;
        s->from_matched = 0;
      } else {
        s->st = ST_MID;
      }
      continue;
    case ST_BOL_CR:
      if (c == '\n') {
        emit(s, "\r", 1);
        end_line(s, true);
        i++;
      } else {
        release_held(s);
      }
      continue;
    case ST_GT:
      if (c == '>' && s->from_matched == 0) {
        s->gt++;
        i++;
      } else if (c == from_[s->from_matched]) {
        if (++s->from_matched == 5) {
          emit_gts(s, s->gt - 1);
          emit(s, from_, 5);
          s->st = ST_MID;
        }
        i++;
      } else {
        release_held(s);
      }
      continue;
    case ST_MID: {
      const char *lf = memchr(p + i, '\n', n - i);
      size_t k = lf ? (size_t)(lf - (p + i)) : n - i;
      emit(s, p + i, k);
      i += k;
      if (lf != NULL) {
        end_line(s, false);
        i++;
      }
      continue;
    }
    }
  }
}

int proto_send_message(struct transport *t, int fd, off_t start, off_t end, bool mboxrd,
                       long long body_lines, uint64_t *octets_r)
{
  static char *buf;
  struct stream s = { .t = t, .st = ST_BOL, .mboxrd = mboxrd, .in_header = true,
                      .body_left = body_lines };
  off_t off = start;

  if (buf == NULL)
    buf = util_xmalloc(PARAMS_READ_BLOCK);
  while (off < end && !s.done && t->status == TRANSPORT_OK) {
    size_t want = (size_t)(end - off < (off_t)PARAMS_READ_BLOCK ? end - off
                                                                : (off_t)PARAMS_READ_BLOCK);
    ssize_t r = pread(fd, buf, want, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;   /* shrank under us or an I/O error: the caller checks the maildrop */
    feed(&s, buf, (size_t)r);
    off += r;
  }
  if (!s.done && s.st != ST_BOL) {
    /* The last line had no LF. */
    release_held(&s);
    transport_write(t, "\r\n", 2);
    s.octets += 2;
  }
  *octets_r = s.octets;
  return 0;
}
