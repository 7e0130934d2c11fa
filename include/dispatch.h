/* dispatch.h - the generic per-state loop: read a line, look the command up in the
 * table, check state, TLS and arguments, run the handler, write its one reply.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_DISPATCH_H
#define POP3D_DISPATCH_H

struct session;

/* Serve commands until the session ends (s->end set, or a handler's close). */
void dispatch_loop(struct session *s);

#endif
