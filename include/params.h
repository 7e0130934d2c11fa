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
/* The whole AUTHORIZATION state, from the connection to the login, must end within this
 * many seconds (login-timeout; Dovecot's login timeout is 60 s too). */
#define PARAMS_LOGIN_TIMEOUT_DEFAULT 60
/* Commands before login, whatever their answer: a real client needs a handful (CAPA, STLS,
 * CAPA, USER and PASS a few times); a client that keeps a slot with CAPA or NOOP does
 * not get more. */
#define PARAMS_PREAUTH_COMMANDS_MAX 30
/* The monitor waits for its worker at most login-timeout plus this long (PAM, LDAP...):
 * a worker that hangs can't hold its monitor. */
#define PARAMS_MONITOR_LOGIN_SLACK 60
/* Consecutive unknown or malformed commands before the session is closed. */
#define PARAMS_BAD_COMMANDS_MAX 10
/* Failed login attempts in one session before it is closed (slows password guessing). */
#define PARAMS_AUTH_FAILURES_MAX 3
/* RFC 1939 section 3: the inactivity timer is at least 10 minutes. Mailutils: 600. */
#define PARAMS_TIMEOUT_DEFAULT 600
/* Mailutils: -d without N allows 10 children (its manual). */
#define PARAMS_MAX_CHILDREN_DEFAULT 10
/* The largest max-children (and -d N) taken. */
#define PARAMS_MAX_CHILDREN_MAX 1000000000u
/* Children whose client has not logged in yet, from one source (max-preauth-per-source),
 * and what one source is (source-prefix-ipv4, source-prefix-ipv6). */
#define PARAMS_MAX_PREAUTH_PER_SOURCE 10
#define PARAMS_SOURCE_PREFIX_IPV4 32
#define PARAMS_SOURCE_PREFIX_IPV6 64
/* Mailutils: listen() backlog of a server block. */
#define PARAMS_BACKLOG_DEFAULT 4
/* The listener never asks for a smaller backlog than this: a burst of more clients than
 * the backlog (20 poplib clients started together against Mailutils' 4) overflows the
 * accept queue, Linux with SYN cookies drops the handshake's last ACK, and a POP3
 * client, which waits for the greeting without sending, hangs until its own timeout.
 * listen() caps it at net.core.somaxconn. */
#define PARAMS_LISTEN_BACKLOG_MIN 128
/* SIGTERM: running sessions get this long to end by themselves before they are
 * terminated (a session cut short applies no deletions), so that a stop is bounded. */
#define PARAMS_SHUTDOWN_GRACE 10
/* At the child limit, at most one "too many children" line per this many seconds. */
#define PARAMS_BUSY_LOG_INTERVAL 10
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
/* Login penalties (penalty.c): the database of failed logins, the longest delay, how
 * long a failure counts, how many are free, and the database's size at which the
 * failures that no longer count are swept out. */
#define PARAMS_LOGIN_PENALTY_FILE "/var/run/pop3d-penalty.db"
#define PARAMS_LOGIN_PENALTY_MAX 15
#define PARAMS_LOGIN_PENALTY_WINDOW 3600
#define PARAMS_LOGIN_PENALTY_FREE 2
#define PARAMS_LOGIN_PENALTY_FILE_MAX (4u << 20)
#define PARAMS_LOGIN_PENALTY_SWEEP 600
/* The login-statistics and bulletin databases are shared by every session: a session
 * waits at most this long (milliseconds) for another's lock, then goes on without.  Each
 * holder keeps the lock through one synced write (a few ms); a burst of a hundred
 * logins at once must not outlast the wait, or login-delay would let some through. */
#define PARAMS_NUMDB_LOCK_WAIT_MS 5000
/* Bulletins delivered in one login, and their total size: an announcement mailbox far
 * bigger than this is a mistake, not something to copy into every maildrop. */
#define PARAMS_BULLETIN_MAX 1000
#define PARAMS_BULLETIN_BYTES (64u * 1024 * 1024)
/* Header lines of one message UPDATE edits (Status lines losing 'D' under undelete). */
#define PARAMS_HEADER_EDITS_MAX 16
/* Mailutils: mandatory locking directory. */
#define PARAMS_LOCK_DIRECTORY "/var/lock/subsys/mail"
/* Mailutils locking defaults: 10 retries a second apart; a dotlock older than
 * expire-timeout (600 s) is stale. */
#define PARAMS_LOCK_RETRY_COUNT 10
#define PARAMS_LOCK_RETRY_SLEEP 1
/* A busy lock is looked at again after 1 ms, then at intervals doubling up to this
 * (milliseconds), for retry-count - 1 times retry-sleep in all: a session waiting for
 * another to end takes the lock within this long of its release. */
#define PARAMS_LOCK_POLL_MAX_MS 5
#define PARAMS_LOCK_EXPIRE_TIMEOUT 600
/* A held dotlock is touched at least this often so that MDAs (postfix stale_lock_time:
 * 500 s) never take it for stale during a long session. */
#define PARAMS_LOCK_TOUCH_INTERVAL 60
/* Mailutils: TLS handshake timeout of the global tls block. */
#define PARAMS_TLS_HANDSHAKE_TIMEOUT 10
/* RFC 8996 deprecates TLS 1.0 and 1.1 (and SSL 3.0 is long broken): TLS 1.2 and 1.3
 * only, unless ssl-priorities says otherwise (Mailutils' default is plain "NORMAL"). */
#define PARAMS_TLS_PRIORITIES "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"
/* Sending close_notify at the end may wait this long for a client that stopped reading. */
#define PARAMS_TLS_BYE_TIMEOUT 5
/* Largest certificate, key or CA file read (a CA bundle of a few hundred certificates). */
#define PARAMS_TLS_FILE_MAX (4u * 1024 * 1024)
/* Configuration: nesting depth of include and blocks, size of one config file. */
#define PARAMS_CONF_INCLUDE_DEPTH 16
#define PARAMS_CONF_BLOCK_DEPTH 32
#define PARAMS_CONF_FILE_MAX (8u * 1024 * 1024)
/* A configuration file is read this much at a time. */
#define PARAMS_CONF_READ_CHUNK 16384u
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

/* Dovecot's dovecot-uidlist is read whole at open: a line a message (~80 bytes), so this
 * covers a million messages; a bigger file is ignored. */
#define PARAMS_DOVECOT_UIDLIST_MAX (256u * 1024 * 1024)
/* Longest message file name in a maildir or MH folder we keep (NAME_MAX). */
#define PARAMS_MAILDIR_NAME_MAX 255

/* Privilege separation: the unprivileged user of the pre-login worker (like Dovecot's
 * dovenull and OpenSSH's sshd), and the empty directory it is confined to.  pop3d
 * creates the directory (root-owned, mode 0755, empty) when it is missing. */
#define PARAMS_PRIVSEP_USER "pop3d"
#define PARAMS_PRIVSEP_CHROOT "/var/lib/pop3d/empty"
/* The worker's resource limits: descriptors beyond the ones it holds, and the size of a
 * relayed block. */
#define PARAMS_WORKER_SPARE_FDS 8
#define PARAMS_RELAY_BLOCK (64u * 1024)
/* How long a worker waits for the monitor's answer (it answers at once, but a PAM module
 * may wait on a server). */
#define PARAMS_MONITOR_REPLY_TIMEOUT_MS (120 * 1000)

/* Private-key operations the monitor does for one connection's worker: a TLS handshake
 * needs one (none when a session is resumed). */
#define PARAMS_TLS_KEY_OPS_MAX 1

#endif
