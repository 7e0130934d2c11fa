/* penalty.h - login penalties shared by every session of the host.
 *
 * Failed logins are counted per source (the client's address masked to
 * source-prefix-ipv4/-ipv6 bits, acl_source_key()) and per user name, in a GDBM file
 * (login-penalty-file, numdb.h) that every monitor updates under GDBM's lock: the same
 * state for the standalone listener's sessions and for inetd's.  Before a login
 * attempt is answered, the monitor waits penalty_delay() seconds: nothing for the first
 * PARAMS_LOGIN_PENALTY_FREE failures (typing errors), then 2, 4, 8... seconds, at most
 * login-penalty-max, by the larger count of the two.  The wait comes before the answer
 * whether the credentials hold or not, so a client learns nothing sooner by guessing
 * right.  A failure counts for PARAMS_LOGIN_PENALTY_WINDOW seconds after the last one;
 * a successful login clears both counts.  A user name that does not exist is counted
 * like one that does, so the penalty tells nothing about which names exist.
 *
 * Keys: "ip:ADDRESS/BITS" and "user:NAME"; value: the time of the last failure times
 * 256 plus the number of failures (at most 255), in decimal.  The file is swept of the
 * failures that no longer count every PARAMS_LOGIN_PENALTY_SWEEP seconds (key "sweep":
 * the time of the last sweep); one that still grows past PARAMS_LOGIN_PENALTY_FILE_MAX
 * bytes is started afresh (logged).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_PENALTY_H
#define POP3D_PENALTY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct conf;

/* The delay for a count of failures (0 up to the free ones). */
unsigned penalty_delay(unsigned failures, unsigned max);

/* Before checking the credentials of user (NULL: a name that can't be one) from source
 * (NULL: not an IP client): the seconds to wait before answering.  *recorded_r says
 * whether either had failures on record (a success then clears them). */
unsigned penalty_before(const struct conf *c, const char *source, const char *user,
                        time_t now, bool *recorded_r);

/* After the answer: count a failure, or clear the record after a success. */
void penalty_failed(const struct conf *c, const char *source, const char *user,
                    time_t now);
void penalty_succeeded(const struct conf *c, const char *source, const char *user);

#endif
