/* proto.h - the POP3 wire format: the bounded line reader, the one reply writer (with
 * RFC 2449 response codes), multi-line responses with CRLF and dot-stuffing, and the
 * streaming of a stored message.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_PROTO_H
#define POP3D_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport.h"
#include "util.h"

enum proto_line {
  PROTO_LINE_OK,
  PROTO_LINE_TOOLONG,   /* longer than the limit: consumed to its LF */
  PROTO_LINE_NUL,       /* contained a NUL: consumed to its LF */
  PROTO_LINE_EOF,
  PROTO_LINE_TIMEOUT,
  PROTO_LINE_ERROR,
};

/* Read one command line (LF or CRLF terminated) into buf (cap bytes, NUL-terminated,
 * terminator removed).  A line longer than cap-1 octets (terminator included, so a
 * 255-octet RFC 2449 command needs cap 256) is consumed whole and reported once. */
enum proto_line proto_read_line(struct transport *t, char *buf, size_t cap, size_t *len_r);

/* Is a complete line already buffered (so output can wait for the batch to end)? */
bool proto_line_pending(const struct transport *t);

/* The one status line writer: "+OK text" or "-ERR [CODE] text", CRLF.  code may be NULL.
 * Text is sanitised (no CR, LF or NUL can be injected). */
void proto_status(struct transport *t, bool ok, const char *code, const char *text);

/* One line of a multi-line response: dot-stuffed, CRLF added. */
void proto_ml_line(struct transport *t, const char *line, size_t len);
void proto_ml_printf(struct transport *t, const char *fmt, ...) PRINTF(2, 3);
/* The terminating ".\r\n". */
void proto_ml_end(struct transport *t);

/* Stream bytes [start, end) of fd as a multi-line body per the size rule of mailbox.h:
 * bare LF becomes CRLF, a last line without LF gets CRLF, lines starting with '.' are
 * dot-stuffed, and with mboxrd one '>' is removed from ^>+From_ lines.  body_lines < 0:
 * the whole message; otherwise the header, the blank line and that many body lines (TOP).
 * Does not write the terminator.  *octets_r gets the octets sent before dot-stuffing.
 * Returns 0, or -1 on a read error of the maildrop (the transport's own errors are
 * sticky in t->status). */
int proto_send_message(struct transport *t, int fd, off_t start, off_t end, bool mboxrd,
                       long long body_lines, uint64_t *octets_r) WUR;

/* Strictly parse a message number: digits only, 1..max.  Returns 0, or an error text
 * ("Invalid message number", "No such message", ...). */
const char *proto_parse_msgno(const char *s, size_t count, size_t *index_r);

#endif
