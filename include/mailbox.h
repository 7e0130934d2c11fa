/* mailbox.h - one interface to every maildrop format (mbox, maildir, MH).
 *
 * A session's memory is the compact per-message table below, never a copy of mail.
 * Sizes and unique ids are computed once at open and never change during a session.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_MAILBOX_H
#define POP3D_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "lock.h"
#include "util.h"

/* The size rule (RETR/TOP streaming in proto.c and every scanner must agree):
 * a message is a sequence of lines, each ending with LF except perhaps the last.
 *  - a line ending in CRLF is sent as is; a line ending in a bare LF gets a CR (+1);
 *  - a last line without LF gets CRLF (+2) when it is not empty;
 *  - with mboxrd set, a line matching ^>+From_ loses its first '>' (-1);
 *  - an empty message has size 0 and 0 lines.
 * `lines` counts the lines so defined. */

/* Message flags. */
#define MAILBOX_MSG_DELETED   0x01u  /* DELE in this session */
#define MAILBOX_MSG_RETRIEVED 0x02u  /* RETR or TOP in this session */
/* Set by the scanner (seed features, expire.h and the manual's "Forged headers"): */
#define MAILBOX_MSG_XUIDL     0x04u  /* the id came from the message's own X-UIDL header */
#define MAILBOX_MSG_STATUS_D  0x08u  /* a Status header holds 'D', Mailutils' deleted mark */
/* Set before update() to ask the backend for header changes (MAILBOX_MSG_MARK and
 * MAILBOX_MSG_UNDELETE; a backend that rewrites a header also records the message's
 * current id in an X-UIDL header unless MAILBOX_MSG_XUIDL, so that ids stay stable): */
#define MAILBOX_MSG_MARK      0x10u  /* add "X-Expire-Timestamp: mailbox.mark_time" */
#define MAILBOX_MSG_UNDELETE  0x20u  /* remove 'D' from its Status headers */
/* Set by the mbox scanner: the id is Dovecot's, from a trusted X-UID (uidl.h); stored in an
 * X-UIDL header when the maildrop is rewritten, so that it outlives the X-IMAPbase. */
#define MAILBOX_MSG_XUID      0x40u

struct mailbox_msg {
  off_t start;          /* file offset of the first header byte (after the From_ line) */
  off_t end;            /* offset past the last byte (the separating blank line excluded) */
  uint64_t size;        /* octets RETR sends before dot-stuffing: see the size rule */
  uint32_t lines;       /* lines of the message (scan-lines) */
  uint32_t uid;         /* offset of the NUL-terminated unique id in mailbox.uids */
  uint32_t flags;
  uint32_t expire_mark; /* trusted X-Expire-Timestamp (expire.h), 0 = none */
};

/* Whole messages of another mbox (bulletins): bytes [from, end) of a source file. */
struct mailbox_range {
  off_t from;           /* its From_ line */
  off_t end;            /* past its last byte (the separating blank line excluded) */
};

/* What went wrong when a maildrop can't be opened or updated. */
enum mailbox_status {
  MAILBOX_OK = 0,
  MAILBOX_INUSE = -1,   /* locked by another session: [IN-USE] */
  MAILBOX_TEMP = -2,    /* server-side, may pass: [SYS/TEMP] */
  MAILBOX_PERM = -3,    /* server-side, will not pass by itself: [SYS/PERM] */
};

struct mailbox;

struct mailbox_ops {
  const char *scheme;
  /* Open, lock and scan mb->path.  Fills msgs/count/uids/total_size. */
  enum mailbox_status (*open)(struct mailbox *mb, const struct conf *c,
                              const char **error_r);
  /* Is the maildrop still as scanned (size and identity of what we read)?  Called before
   * RETR/TOP/UPDATE; MAILBOX_OK or an error. */
  enum mailbox_status (*check)(struct mailbox *mb, const char **error_r);
  /* Make the file descriptor and byte range of message i available for streaming. */
  int (*msg_fd)(struct mailbox *mb, size_t i, int *fd_r, const char **error_r);
  /* Apply the deletions (UPDATE state) and the header changes flagged (MAILBOX_MSG_MARK,
   * MAILBOX_MSG_UNDELETE), crash-safe; keeps mail appended meanwhile.  *deleted_r gets
   * the number actually removed. */
  enum mailbox_status (*update)(struct mailbox *mb, size_t *deleted_r,
                                const char **error_r);
  /* Unlock and release everything (no change to the maildrop). */
  void (*close)(struct mailbox *mb);
  /* Called while the session idles: keep locks fresh (dotlock mtime). */
  void (*touch)(struct mailbox *mb);
  /* Append n messages read from src_fd at the end of the maildrop, crash-safe (all or
   * none), keeping mail delivered meanwhile; NULL when the backend can't.  The session
   * closes and reopens the maildrop afterwards. */
  enum mailbox_status (*append)(struct mailbox *mb, int src_fd,
                                const struct mailbox_range *r, size_t n,
                                const char **error_r);
};

struct mailbox {
  const struct mailbox_ops *ops;
  char *path;                 /* file system path of the maildrop */
  struct mailbox_msg *msgs;
  size_t count;
  char *uids;                 /* NUL-separated unique ids */
  size_t uids_len, uids_cap;
  uint64_t total_size;        /* sum of sizes of all messages */
  bool mboxrd;                /* stream with one '>' removed from ^>+From_ lines */
  int64_t mark_time;          /* value of the marks MAILBOX_MSG_MARK asks for */
  void *priv;                 /* the backend's state */
};

/* The maildrop URL of a user: mailbox-pattern / mail-spool / mailbox-type and the
 * authorization result (home, user name).  Returns a malloc'd URL ("mbox:/var/mail/u")
 * or NULL with *error_r. */
char *mailbox_url_for(const struct conf *c, const char *user, const char *home,
                      const char **error_r);

/* Open the maildrop named by url (schemes mbox:, file:, maildir:, mh:, or a plain path;
 * see mailbox_type_of). */
enum mailbox_status mailbox_open(struct mailbox *mb, const char *url, const struct conf *c,
                                 const char **error_r) WUR;
void mailbox_close(struct mailbox *mb);

static inline const char *mailbox_uid(const struct mailbox *mb, size_t i)
{
  return mb->uids + mb->msgs[i].uid;
}

/* Append a unique id to mb->uids; returns its offset (used by backends), or
 * MAILBOX_UID_NONE when len is 0 or over PARAMS_UIDL_MAX, or the arena would pass its
 * bound (UINT32_MAX) or can't grow. */
#define MAILBOX_UID_NONE UINT32_MAX
uint32_t mailbox_add_uid(struct mailbox *mb, const char *uid, size_t len);

/* Make the ids of mb->msgs[0..count) unique: a later duplicate gets "-2", "-3", ...
 * (its id shortened so that it stays within PARAMS_UIDL_MAX).  Backends call it once at
 * the end of open.  0, or -1 with *error_r (out of memory). */
int mailbox_unique_uids(struct mailbox *mb, const char **error_r) WUR;

extern const struct mailbox_ops mailbox_mbox_ops;

/* A read-only mbox on an open descriptor (the bulletin source, opened before the
 * privilege drop): a shared fcntl lock, then the scan.  Released by mailbox_close(). */
enum mailbox_status mailbox_mbox_open_fd(struct mailbox *mb, int fd, const struct conf *c,
                                         const char **error_r) WUR;
/* The whole block of message i of an mbox: its From_ line to its end.  false for text
 * before the first From_ line. */
bool mailbox_mbox_block(const struct mailbox *mb, size_t i, struct mailbox_range *r);
extern const struct mailbox_ops mailbox_maildir_ops, mailbox_mh_ops;

/* The backend that opens url: its scheme (mbox:, file:, maildir:, mh:), else
 * mailbox-type, else mbox; an mbox path that is an existing maildir or MH directory is
 * opened as such (autodetect-accuracy 0 turns that off).  NULL for an unknown scheme. */
const struct mailbox_ops *mailbox_type_of(const char *url, const struct conf *c);

#endif
