/* params.h - every limit and compiled-in default of pop3d, each with its reason.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_PARAMS_H
#define POP3D_PARAMS_H

/* RFC 2449 section 4: commands are at most 255 octets including the CRLF. */
#define PARAMS_CMD_LINE_MAX 255
/* RFC 2449 section 4: an argument is at most 40 octets.  AUTH initial responses and
 * passwords may be longer in practice; PASS takes the rest of the line (RFC 1939 allows
 * spaces in it), so it is bounded by the line limit instead. */
#define PARAMS_ARG_MAX 40
/* Consecutive unknown or malformed commands before the session is closed. */
#define PARAMS_BAD_COMMANDS_MAX 10
/* Failed login attempts in one session before it is closed (slows password guessing). */
#define PARAMS_AUTH_FAILURES_MAX 3
/* RFC 1939 section 3: the inactivity timer is at least 10 minutes. Mailutils: 600. */
#define PARAMS_TIMEOUT_DEFAULT 600
/* Mailutils: -d without N allows 10 children (its manual). */
#define PARAMS_MAX_CHILDREN_DEFAULT 10
/* Mailutils: listen() backlog of a server block. */
#define PARAMS_BACKLOG_DEFAULT 4
/* RFC 1939: the well-known port. */
#define PARAMS_PORT_DEFAULT 110
/* RFC 1939 section 7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E. */
#define PARAMS_UIDL_MAX 70
/* Input buffer: big enough for a window of pipelined commands, read in one syscall. */
#define PARAMS_INBUF_SIZE 4096
/* Output buffer of replies and message streaming (Mailutils output-buffer-size). */
#define PARAMS_OUTBUF_DEFAULT 65536
#define PARAMS_OUTBUF_MIN 512
#define PARAMS_OUTBUF_MAX (16u * 1024 * 1024)
/* Block size in which a message is read from the maildrop while it is streamed. */
#define PARAMS_READ_BLOCK (128u * 1024)
/* Mailutils: PAM service name. */
#define PARAMS_PAM_SERVICE "gnu-pop3d"
/* Mailutils: syslog tag. */
#define PARAMS_LOG_TAG "pop3d"
/* Mailutils: default mail spool. */
#define PARAMS_MAIL_SPOOL "/var/mail"
/* Mailutils 3.15 code: login statistics database (the manual says .db; GDBM adds none). */
#define PARAMS_STAT_FILE "/var/run/pop3-login.db"
/* Mailutils: mandatory locking directory. */
#define PARAMS_LOCK_DIRECTORY "/var/lock/subsys/mail"
/* Mailutils locking defaults: 10 retries a second apart; a dotlock older than
 * expire-timeout (600 s) is stale. */
#define PARAMS_LOCK_RETRY_COUNT 10
#define PARAMS_LOCK_RETRY_SLEEP 1
#define PARAMS_LOCK_EXPIRE_TIMEOUT 600
/* A held dotlock is touched at least this often so that MDAs (postfix stale_lock_time:
 * 500 s) never take it for stale during a long session. */
#define PARAMS_LOCK_TOUCH_INTERVAL 60
/* Mailutils: TLS handshake timeout of the global tls block. */
#define PARAMS_TLS_HANDSHAKE_TIMEOUT 10
/* Configuration: nesting depth of include and blocks, size of one config file. */
#define PARAMS_CONF_INCLUDE_DEPTH 16
#define PARAMS_CONF_BLOCK_DEPTH 32
#define PARAMS_CONF_FILE_MAX (8u * 1024 * 1024)
/* A file full of mistakes would otherwise bury the first (usually the real) one under
 * thousands of follow-on lines: stop after this many. */
#define PARAMS_CONF_ERRORS_MAX 100
/* Bounds on what one statement may hold, so that a hostile 8 MB file can't build a
 * tree many times its size: values of one statement (or items of one list) and
 * statements of one block. */
#define PARAMS_CONF_VALUES_MAX 4096
#define PARAMS_CONF_STMTS_MAX 65536
/* Each server block is a listening socket; more than this is a mistake. */
#define PARAMS_CONF_SERVERS_MAX 256
/* Longest line of a virtdomain file: a passwd line with a long hash and paths. */
#define PARAMS_VIRTDOMAIN_LINE_MAX 4096
/* A maildrop never holds more messages than this (the message table is indexed by
 * uint32_t and each message costs tens of bytes of memory). */
#define PARAMS_MAILBOX_MESSAGES_MAX 10000000u
/* Longest maildrop URL or path we build or accept. */
#define PARAMS_MAILBOX_URL_MAX 4096
/* Temporary files of a crashed UPDATE older than this are removed by the next UPDATE. */
#define PARAMS_MBOX_STALE_TEMP_AGE 300
/* Attempts to open and lock a maildrop that is being replaced under us. */
#define PARAMS_MBOX_OPEN_ATTEMPTS 5
/* The mbox scanner reads in blocks of this size (pread + memchr). */
#define PARAMS_MBOX_SCAN_BLOCK (1u << 20)
/* Longest user name accepted by USER (bounded by the argument limit as well). */
#define PARAMS_USER_MAX 255

#endif
