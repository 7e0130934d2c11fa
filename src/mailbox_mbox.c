/* mailbox_mbox.c - mbox maildrops as Debian's MDAs write them.
 *
 * A message starts at a line "From " at the start of the file or after an empty line
 * ("\n" or "\r\n"); that empty line separates messages and belongs to neither.  The scan
 * reads the file in large blocks (pread: a file truncated under us is an error, not a
 * SIGBUS) and keeps a few words a message: offsets, size, lines and the unique id.
 * UPDATE writes the kept bytes verbatim to a new file in the same directory and renames
 * it over the maildrop, so a crash leaves the old or the new file.  The new file is
 * nameless (O_TMPFILE) while it is written, so a crash leaves nothing behind either; it
 * gets a temporary name only for the rename.  Where the filesystem lacks nameless files
 * it is a named temporary file from the start.  Whatever a dead process left is removed
 * by the next session that holds the lock (mbox_remove_leftovers()).  The same rewrite
 * makes the header changes of the seed features (an X-Expire-Timestamp line added
 * before the blank line that ends a header, 'D' removed from Status lines) and appends
 * bulletins; a message without a change is copied byte for byte.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "expire.h"
#include "lock.h"
#include "log.h"
#include "mailbox.h"
#include "spool.h"
#include "mbox_index.h"
#include "params.h"
#include "uidl.h"

#define MBOX_TEMP_MARK ".pop3d-"
/* The name a nameless new maildrop gets for the instant before its rename, under the
 * lock: one name, so that the next session can look for what a kill left there with
 * one stat, not a read of the whole spool directory. */
#define MBOX_LINKED_SUFFIX "000000"

struct mbox_priv {
  int fd;                  /* -1: the maildrop does not exist (an empty mailbox) */
  struct lock lock;
  dev_t dev;
  ino_t ino;
  mode_t mode;
  gid_t gid;
  uid_t uid;
  off_t scanned_end;       /* bytes scanned at open */
  off_t *from;             /* per message: offset of its From_ line (its block start) */
  struct mbox_index_msg *xm;   /* per message: its record in the index (own id, marks) */
  size_t cap;              /* capacity of mb->msgs, from and xm */
  struct mbox_index_prior prior;      /* what the index remembered at open */
  struct uidl_retired_list retired;   /* ids retired (strings in prior) */
  int64_t adopted;         /* when pop3d adopted the maildrop */
  bool updated;            /* the maildrop was replaced by update() */
  uint32_t future_mark;    /* earliest expiry mark ignored as in the future (mbox_index.h) */
  struct uidl_mbox_chain chain;       /* Dovecot's UIDs (uidl.h) after the last message */
  struct uidl_mbox_chain chain_last;  /* ... before it (where a rescan of growth starts) */
};

/* Scanner state: the message being read and the line before.  The file is read in
 * blocks; a line is handled whole when it fits in a block, in pieces otherwise. */
struct mbox_scan {
  struct mailbox *mb;
  struct mbox_priv *pv;
  bool cur;                /* a message is open */
  bool headless;           /* it has no From_ line (text before the first one) */
  bool nonblank;           /* the headless message has more than blank lines */
  bool in_header;
  bool pending;            /* the last line was empty: a separator if "From " follows */
  bool xuidl_open;         /* the last header line was X-UIDL (folding continues it) */
  bool xuid_open;          /* the last header line was a trusted X-UID */
  bool first;              /* the first message of the file (From_ line at offset 0) */
  bool base_seen;          /* it has a valid X-IMAPbase (or X-IMAP) */
  bool pseudo;             /* it is c-client's folder data message (X-IMAP) */
  uint32_t xuid;           /* trusted X-UID (uidl.h), 0 = none */
  bool long_line;          /* in the middle of a line longer than a block */
  bool long_from;          /* ... which is a From_ line */
  bool long_header;        /* ... which is a header line (hashed) */
  int rd;                  /* ^>+From_ matcher on a long line: RD_* */
  char last_byte;          /* last byte of the previous piece of a long line */
  off_t from_off, start, pending_off;
  uint64_t size, lines;
  struct uidl_hash hash;   /* From_ line and header block */
  size_t xuidl_len;
  char xuidl[PARAMS_UIDL_MAX + 1];
  int64_t now;             /* time of the scan: marks after it are not trusted */
  int64_t delivery;        /* date of the From_ line, 0 when unknown, -1 not read yet */
  size_t from_len;         /* "From " and the end of the From_ line, read only when a */
  char from_tail[96];      /* message has a mark (most have none: opening stays fast) */
  uint32_t mark;           /* earliest trusted X-Expire-Timestamp, 0 = none */
  bool status_d;           /* a Status header holds 'D' */
};

enum { RD_DONE = -1, RD_RUN = 0 /* in the '>' run; 1..5: matched that much of "From " */ };

static bool is_blank_range(const char *p, const char *e)
{
  for (; p < e; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
      return false;
  return true;
}

static int scan_grow(struct mbox_scan *sc, const char **error_r)
{
  struct mailbox *mb = sc->mb;
  struct mbox_priv *pv = sc->pv;
  size_t cap = pv->cap ? pv->cap * 2 : 64;
  struct mailbox_msg *m;
  off_t *f;

  if (cap > PARAMS_MAILBOX_MESSAGES_MAX)
    cap = PARAMS_MAILBOX_MESSAGES_MAX;
  m = realloc(mb->msgs, cap * sizeof *m);
  if (m == NULL)
    goto nomem;
  mb->msgs = m;
  f = realloc(pv->from, cap * sizeof *f);
  if (f == NULL)
    goto nomem;
  pv->from = f;
  {
    struct mbox_index_msg *x = realloc(pv->xm, cap * sizeof *x);
    if (x == NULL)
      goto nomem;
    pv->xm = x;
  }
  pv->cap = cap;
  return 0;
nomem:
  *error_r = "out of memory";
  return -1;
}

static enum mailbox_status scan_finish(struct mbox_scan *sc, off_t end, const char **error_r)
{
  struct mailbox *mb = sc->mb;
  struct mbox_priv *pv = sc->pv;
  struct mailbox_msg *m;
  uint32_t uid;

  sc->cur = false;
  if (sc->headless && !sc->nonblank)
    return MAILBOX_OK;
  if (mb->count >= PARAMS_MAILBOX_MESSAGES_MAX) {
    *error_r = "too many messages in the mailbox";
    return MAILBOX_PERM;
  }
  if (mb->count == pv->cap && scan_grow(sc, error_r) < 0)
    return MAILBOX_TEMP;
  m = &mb->msgs[mb->count];
  m->start = sc->start;
  m->end = end;
  m->size = sc->size;
  m->lines = sc->lines > UINT32_MAX ? UINT32_MAX : (uint32_t)sc->lines;
  m->flags = sc->status_d ? MAILBOX_MSG_STATUS_D : 0;
  m->expire_mark = sc->mark;
  pv->from[mb->count] = sc->from_off;
  if (sc->xuidl_len > 0) {
    uid = mailbox_add_uid(mb, sc->xuidl, sc->xuidl_len);
    m->flags |= MAILBOX_MSG_XUIDL;
  } else if (sc->xuid != 0) {
    char id[PARAMS_UIDL_MAX + 1];
    uidl_dovecot_format(sc->xuid, pv->chain.validity, id);
    uid = mailbox_add_uid(mb, id, strlen(id));
    m->flags |= MAILBOX_MSG_XUID;
  } else {
    char id[PARAMS_UIDL_MAX + 1];
    uidl_hash_final(&sc->hash, sc->size, id);
    uid = mailbox_add_uid(mb, id, strlen(id));
  }
  if (uid == MAILBOX_UID_NONE) {
    *error_r = "out of memory";
    return MAILBOX_TEMP;
  }
  uidl_chain_end(&pv->chain, sc->xuid, sc->pseudo);
  m->uid = uid;
  pv->xm[mb->count].own = uid;
  pv->xm[mb->count].flags = 0;
  pv->xm[mb->count].mark = 0;
  pv->xm[mb->count].disc = uidl_hash_value(&sc->hash, sc->size);
  mb->count++;
  mb->total_size += sc->size;
  return MAILBOX_OK;
}

static void scan_begin(struct mbox_scan *sc, off_t from_off, off_t start, bool headless)
{
  sc->cur = true;
  sc->headless = headless;
  sc->nonblank = false;
  sc->in_header = true;
  sc->pending = false;
  sc->xuidl_open = false;
  sc->xuid_open = false;
  sc->first = from_off == 0 && !headless;
  sc->base_seen = false;
  sc->pseudo = false;
  sc->xuid = 0;
  if (sc->first)
    memset(&sc->pv->chain, 0, sizeof sc->pv->chain);
  sc->pv->chain_last = sc->pv->chain;
  sc->from_off = from_off;
  sc->start = start;
  sc->xuidl_len = 0;
  sc->size = sc->lines = 0;
  sc->delivery = 0;
  sc->from_len = 0;
  sc->mark = 0;
  sc->status_d = false;
  uidl_hash_init(&sc->hash);
}

/* The headers the seed features read (expire.h, and the manual's "Forged headers"):
 * X-Expire-Timestamp, trusted only when not older than the delivery and not in the
 * future; Status, whose 'D' is Mailutils' deleted mark (only recorded: pop3d never
 * hides or deletes mail because of a header). */
static void scan_seed_header(struct mbox_scan *sc, const char *p, const char *le)
{
  size_t len = (size_t)(le - p);

  if (len > 19 && (p[0] == 'X' || p[0] == 'x') &&
      util_strncasecmp(p, EXPIRE_HEADER ":", 19) == 0) {
    int64_t t;
    if (sc->delivery < 0 && !expire_from_line_time(sc->from_tail, sc->from_len, &sc->delivery))
      sc->delivery = 0;
    if (!expire_parse_mark(p + 19, len - 19, &t))
      return;
    if (expire_mark_trusted(t, sc->delivery, sc->now) && t <= (int64_t)UINT32_MAX &&
        (sc->mark == 0 || (uint32_t)t < sc->mark))
      sc->mark = (uint32_t)t;
    else if (t > sc->now && expire_mark_trusted(t, sc->delivery, t) &&
             t <= (int64_t)UINT32_MAX &&
             (sc->pv->future_mark == 0 || (uint32_t)t < sc->pv->future_mark))
      /* Trusted once its time comes: an index of this scan is stale then. */
      sc->pv->future_mark = (uint32_t)t;
  } else if (len > 7 && (p[0] == 'S' || p[0] == 's') &&
             util_strncasecmp(p, "Status:", 7) == 0 && memchr(p + 7, 'D', len - 7) != NULL) {
    sc->status_d = true;
  }
}

/* Dovecot's X-IMAPbase (X-IMAP: c-client's folder data message) in the first message and
 * X-UID in every message (uidl.h).  X-UID: the first trusted one counts. */
static void scan_dovecot_header(struct mbox_scan *sc, const char *p, const char *le)
{
  size_t len = (size_t)(le - p);
  uint32_t v, last;

  if (len < 6 || (p[0] != 'X' && p[0] != 'x') || p[1] != '-')
    return;
  if (sc->xuid == 0 && util_strncasecmp(p, "X-UID:", 6) == 0) {
    if (uidl_chain_xuid(&sc->pv->chain, p + 6, len - 6, &v)) {
      sc->xuid = v;
      sc->xuid_open = true;
    }
  } else if (sc->first && !sc->base_seen) {
    size_t n = len >= 11 && util_strncasecmp(p, "X-IMAPbase:", 11) == 0 ? 11
             : len >= 7 && util_strncasecmp(p, "X-IMAP:", 7) == 0 ? 7 : 0;
    if (n > 0 && uidl_ximapbase_parse(p + n, len - n, &v, &last)) {
      uidl_chain_start(&sc->pv->chain, v, last);
      sc->base_seen = true;
      sc->pseudo = n == 7;
    }
  }
}

static void scan_header_line(struct mbox_scan *sc, const char *p, const char *le,
                             const char *nl)
{
  uidl_hash_update(&sc->hash, p, (size_t)(le - p));
  if (p[0] == ' ' || p[0] == '\t') {
    /* A folded X-UIDL or X-UID with more text is not a valid id. */
    if (sc->xuidl_open && !is_blank_range(p, le))
      sc->xuidl_len = 0;
    if (sc->xuid_open && !is_blank_range(p, le))
      sc->xuid = 0;
    return;
  }
  sc->xuidl_open = sc->xuid_open = false;
  scan_seed_header(sc, p, le);
  scan_dovecot_header(sc, p, le);
  if ((p[0] == 'X' || p[0] == 'x') && sc->xuidl_len == 0 && le - p >= 7 &&
      util_strncasecmp(p, "X-UIDL:", 7) == 0) {
    const char *v = p + 7, *ve = nl ? nl : le;
    while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
      ve--;
    while (v < ve && (*v == ' ' || *v == '\t'))
      v++;
    if (uidl_valid(v, (size_t)(ve - v))) {
      sc->xuidl_len = (size_t)(ve - v);
      memcpy(sc->xuidl, v, sc->xuidl_len);
      sc->xuidl[sc->xuidl_len] = '\0';
      sc->xuidl_open = true;
    }
  }
}

/* A line that may start a message ("From " after an empty line or at offset 0).
 * Returns true when it does (the previous message is finished, a new one begun). */
static enum mailbox_status scan_line_start(struct mbox_scan *sc, const char *p, size_t avail,
                                           off_t off, bool *from_r, const char **error_r)
{
  *from_r = false;
  if (sc->pending || off == 0) {
    if (avail >= 5 && memcmp(p, "From ", 5) == 0) {
      if (sc->cur) {
        enum mailbox_status st = scan_finish(sc, sc->pending ? sc->pending_off : off, error_r);
        if (st != MAILBOX_OK)
          return st;
      }
      scan_begin(sc, off, off, false);
      *from_r = true;
      return MAILBOX_OK;
    }
    if (sc->pending) {
      /* Not a separator after all: the empty line is the message's. */
      sc->pending = false;
      sc->size += 2;
      sc->lines++;
    }
  }
  if (!sc->cur)
    scan_begin(sc, 0, 0, true);
  return MAILBOX_OK;
}

/* One whole line [p, le); nl is its LF or NULL (the last line of the file). */
static enum mailbox_status scan_line(struct mbox_scan *sc, const char *p, const char *le,
                                     const char *nl, off_t off, const char **error_r)
{
  size_t llen = (size_t)(le - p);
  bool from;
  enum mailbox_status st = scan_line_start(sc, p, llen, off, &from, error_r);

  if (st != MAILBOX_OK)
    return st;
  if (from) {
    size_t keep = llen - 5 < sizeof sc->from_tail - 5 ? llen - 5 : sizeof sc->from_tail - 5;
    uidl_hash_update(&sc->hash, p, llen);
    sc->start = off + (off_t)llen;
    /* The date ends the line: its last bytes are enough. */
    memcpy(sc->from_tail, "From ", 5);
    memcpy(sc->from_tail + 5, p + llen - keep, keep);
    sc->from_len = 5 + keep;
    sc->delivery = -1;
    return MAILBOX_OK;
  }
  if (nl != NULL && (llen == 1 || (llen == 2 && p[0] == '\r'))) {
    sc->in_header = false;
    sc->pending = true;
    sc->pending_off = off;
    return MAILBOX_OK;
  }
  /* The size rule of mailbox.h. */
  if (nl != NULL)
    sc->size += (llen >= 2 && nl[-1] == '\r') ? llen : llen + 1;
  else
    sc->size += llen + 2;
  sc->lines++;
  if (p[0] == '>') {
    const char *q = p;
    while (q < le && *q == '>')
      q++;
    if ((size_t)(le - q) >= 5 && memcmp(q, "From ", 5) == 0)
      sc->size--;
  }
  if (sc->in_header)
    scan_header_line(sc, p, le, nl);
  if (sc->headless && !sc->nonblank)
    sc->nonblank = !is_blank_range(p, le);
  return MAILBOX_OK;
}

static void rd_feed(struct mbox_scan *sc, const char *p, size_t len)
{
  static const char from[] = "From ";

  for (size_t i = 0; i < len && sc->rd != RD_DONE; i++) {
    if (sc->rd == RD_RUN && p[i] == '>')
      continue;
    if (p[i] != from[sc->rd]) {
      sc->rd = RD_DONE;
      break;
    }
    if (++sc->rd == 5) {
      sc->size--;
      sc->rd = RD_DONE;
    }
  }
}

/* A piece [p, p+len) of a line longer than a block.  final: the line ends here (with an
 * LF when has_lf, else at the end of the file). */
static enum mailbox_status scan_piece(struct mbox_scan *sc, const char *p, size_t len,
                                      off_t off, bool final, bool has_lf,
                                      const char **error_r)
{
  if (!sc->long_line) {
    bool from;
    enum mailbox_status st = scan_line_start(sc, p, len, off, &from, error_r);
    if (st != MAILBOX_OK)
      return st;
    sc->long_line = true;
    sc->long_from = from;
    sc->long_header = false;
    if (!from) {
      sc->lines++;
      sc->rd = p[0] == '>' ? RD_RUN : RD_DONE;
      if (sc->in_header) {
        sc->long_header = true;
        /* Too long to be an X-UIDL or X-UID, or to continue one. */
        if (p[0] == ' ' || p[0] == '\t') {
          sc->xuidl_len = 0;
          if (sc->xuid_open)
            sc->xuid = 0;
        }
        sc->xuidl_open = sc->xuid_open = false;
      }
    }
  }
  if (sc->long_from || sc->long_header)
    uidl_hash_update(&sc->hash, p, len);
  if (!sc->long_from) {
    sc->size += len;
    if (sc->rd != RD_DONE)
      rd_feed(sc, p, len);
    if (sc->headless && !sc->nonblank)
      sc->nonblank = !is_blank_range(p, p + len);
  }
  if (final) {
    if (sc->long_from) {
      sc->start = off + (off_t)len;
    } else if (has_lf) {
      char before = len >= 2 ? p[len - 2] : sc->last_byte;
      if (before != '\r')
        sc->size++;
    } else {
      sc->size += 2;
    }
    sc->long_line = sc->long_from = sc->long_header = false;
  } else if (len > 0) {
    sc->last_byte = p[len - 1];
  }
  return MAILBOX_OK;
}

/* Scan [begin, size) and add its messages to the table; begin is 0 or the From_ line of
 * a message after an empty line (the rest of a maildrop that grew). */
static enum mailbox_status mbox_scan_range(struct mailbox *mb, struct mbox_priv *pv,
                                           off_t begin, off_t size, const char **error_r)
{
  struct mbox_scan sc;
  char *buf;
  off_t base = begin, next = begin; /* file offsets of buf[0] and of the next byte to read */
  size_t have = 0;
  const char *p;
  enum mailbox_status st = MAILBOX_OK;

  if (size <= begin)
    return MAILBOX_OK;
  buf = malloc(PARAMS_MBOX_SCAN_BLOCK);
  if (buf == NULL) {
    *error_r = "out of memory";
    return MAILBOX_TEMP;
  }
  memset(&sc, 0, sizeof sc);
  sc.mb = mb;
  sc.pv = pv;
  sc.now = (int64_t)time(NULL);
  sc.pending = begin > 0;
  sc.pending_off = begin;
  p = buf;
  for (;;) {
    const char *e = buf + have, *nl;
    bool eof = next == size;

    if (p == e && eof)
      break;
    nl = p < e ? memchr(p, '\n', (size_t)(e - p)) : NULL;
    if (nl == NULL && !eof) {
      size_t got, rest = (size_t)(e - p);
      if (p == buf && have == PARAMS_MBOX_SCAN_BLOCK) {
        /* A line longer than a block: hand over what we have, read on. */
        st = scan_piece(&sc, buf, have, base, false, false, error_r);
        if (st != MAILBOX_OK)
          goto out;
        base += (off_t)have;
        rest = 0;
      } else {
        memmove(buf, p, rest);
        base += (off_t)(p - buf);
      }
      have = rest;
      p = buf;
      {
        size_t want = PARAMS_MBOX_SCAN_BLOCK - have;
        if ((uint64_t)(size - next) < want)
          want = (size_t)(size - next);
        if (util_pread_all(pv->fd, buf + have, want, next) < 0) {
          *error_r = "mailbox changed by another program";
          st = MAILBOX_TEMP;
          goto out;
        }
        got = want;
      }
      have += got;
      next += (off_t)got;
      mbox_index_stats.scanned_bytes += got;
      continue;
    }
    {
      const char *le = nl ? nl + 1 : e;
      off_t off = base + (p - buf);
      if (sc.long_line)
        st = scan_piece(&sc, p, (size_t)(le - p), off, true, nl != NULL, error_r);
      else
        st = scan_line(&sc, p, le, nl, off, error_r);
      if (st != MAILBOX_OK)
        goto out;
      p = le;
    }
  }
  if (sc.cur)
    st = scan_finish(&sc, sc.pending ? sc.pending_off : size, error_r);
out:
  free(buf);
  return st;
}

static enum mailbox_status mbox_scan_fd(struct mailbox *mb, struct mbox_priv *pv,
                                        off_t size, const char **error_r)
{
  enum mailbox_status st = mbox_scan_range(mb, pv, 0, size, error_r);

  if (st == MAILBOX_OK && mailbox_unique_uids(mb, error_r) < 0)
    st = MAILBOX_TEMP;
  return st;
}

static void mbox_reset_table(struct mailbox *mb, struct mbox_priv *pv)
{
  free(mb->msgs);
  free(mb->uids);
  free(pv->from);
  free(pv->xm);
  mb->msgs = NULL;
  mb->uids = NULL;
  pv->from = NULL;
  pv->xm = NULL;
  mb->count = mb->uids_len = mb->uids_cap = pv->cap = 0;
  mb->total_size = 0;
  pv->future_mark = 0;
}

/* Does the maildrop hold a From_ line at off? */
static bool mbox_from_at(int fd, off_t off)
{
  char b[5];
  ssize_t n;

  do
    n = pread(fd, b, sizeof b, off);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof b && memcmp(b, "From ", 5) == 0;
}

/* Each message's listed id and expiry record from what the index remembered
 * (pv->prior): messages 0..known) are its records in order (the index fit the file);
 * otherwise each is found again by uidl_match.  A message the index does not know is
 * new: adopted (its marks honoured, Mailutils' rule) only when the maildrop had no
 * index at all; a mark in a message that came later is a sender's and is ignored, and
 * said so once: the message is known from then on.  Records no message matches are
 * messages gone: their ids retire now.  *changed_r: the index must be written. */
static int mbox_assign(struct mailbox *mb, struct mbox_priv *pv, size_t known, int64_t now,
                       bool *changed_r, const char **error_r)
{
  const struct mbox_index_prior *p = &pv->prior;
  size_t n = mb->count, *match = util_xcalloc(n ? n : 1, sizeof *match);
  const char **keep = util_xcalloc(n ? n : 1, sizeof *keep);
  bool *used = util_xcalloc(p->count ? p->count : 1, sizeof *used);
  bool *warn = util_xcalloc(n ? n : 1, sizeof *warn);
  int ret;

  if (known > 0 && known <= p->count) {
    for (size_t i = 0; i < n; i++)
      match[i] = i < known ? i : SIZE_MAX;
  } else {
    uint64_t *disc = util_xcalloc(n ? n : 1, sizeof *disc);
    for (size_t i = 0; i < n; i++)
      disc[i] = pv->xm[i].disc;
    uidl_match(p->rec, p->count, mb, disc, match);
    free(disc);
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = match[i];
    uint32_t hdr = mb->msgs[i].expire_mark, mark;
    bool adopted;
    if (k != SIZE_MAX) {
      used[k] = true;
      keep[i] = p->rec[k].listed;
      adopted = (p->flags[k] & MBOX_INDEX_ADOPTED) != 0;
      mark = p->mark[k] != 0 ? p->mark[k] : adopted ? hdr : 0;
      if ((p->flags[k] & MBOX_INDEX_GOING) || mark != p->mark[k])
        *changed_r = true;        /* a deletion that did not happen, a mark to record */
    } else {
      adopted = !p->found;
      mark = adopted ? hdr : 0;
      warn[i] = !adopted && hdr != 0;
      *changed_r = true;
    }
    pv->xm[i].flags = adopted ? MBOX_INDEX_ADOPTED : 0;
    pv->xm[i].mark = mark;
    mb->msgs[i].expire_mark = mark;
  }
  for (size_t k = 0; k < p->retired.n; k++)
    uidl_retired_add(&pv->retired, p->retired.v[k].id, p->retired.v[k].since);
  for (size_t k = 0; k < p->count; k++)
    if (!used[k]) {
      uidl_retired_add(&pv->retired, p->rec[k].listed, now);
      *changed_r = true;
    }
  ret = uidl_assign(mb, keep, pv->retired.v, pv->retired.n, now, error_r);
  if (ret == 0) {
    uidl_retired_prune(&pv->retired);
    for (size_t i = 0; i < n; i++)
      if (warn[i])
        expire_log_ignored(mb->path, mailbox_uid(mb, i));
  }
  free(match);
  free(keep);
  free(used);
  free(warn);
  return ret;
}

/* The table of the locked maildrop whose fstat is *fst: from its index when that is
 * still true (all of it, or all but what was appended since), else by a full scan;
 * then the listed ids and expiry records (mbox_assign).  The index is written anew
 * after any scan or change of the record. */
static enum mailbox_status mbox_load(struct mailbox *mb, struct mbox_priv *pv,
                                     const struct stat *fst, const char **error_r)
{
  char *ipath = mbox_index_path(mb->path);
  struct mbox_index_info info;
  enum mbox_index_result ir = MBOX_INDEX_MISS;
  enum mailbox_status st;
  off_t begin = 0;
  size_t known = 0;
  int64_t now = (int64_t)time(NULL);
  bool changed = false;

  memset(&info, 0, sizeof info);
  if (ipath != NULL) {
    mbox_index_clean(ipath);
    ir = mbox_index_load(ipath, pv->fd, fst, mb, &pv->from, &pv->xm, &info, &pv->prior, now);
  }
  pv->adopted = pv->prior.found ? pv->prior.adopted : now;
  if (ir != MBOX_INDEX_MISS) {
    pv->cap = mb->count;
    pv->future_mark = info.future_mark;
    known = mb->count;
  }
  if (ir == MBOX_INDEX_GREW) {
    /* Mail was appended: the last message may go on in the new bytes, so it is scanned
     * again from its From_ line; a maildrop whose only message has none (text before
     * the first From_ line) is scanned whole. */
    size_t last = mb->count - 1;
    if (mb->count == 0 || pv->from[last] == mb->msgs[last].start ||
        !mbox_from_at(pv->fd, pv->from[last])) {
      mbox_reset_table(mb, pv);
      known = 0;
    } else {
      begin = pv->from[last];
      pv->chain = info.chain_last;
      mb->total_size -= mb->msgs[last].size;
      mb->uids_len = mb->msgs[last].uid;
      mb->count = last;
    }
  }
  if (ir != MBOX_INDEX_HIT) {
    st = mbox_scan_range(mb, pv, begin, fst->st_size, error_r);
    if (st != MAILBOX_OK) {
      free(ipath);
      return st;
    }
    info.scanned_end = fst->st_size;
    info.future_mark = pv->future_mark;
    info.chain_last = pv->chain_last;
    changed = true;
  }
  if (mbox_assign(mb, pv, known, now, &changed, error_r) < 0) {
    free(ipath);
    return MAILBOX_TEMP;
  }
  info.adopted = pv->adopted;
  if (ipath != NULL && (changed || !pv->prior.found))
    (void)mbox_index_write(ipath, pv->fd, fst, mb, pv->from, pv->xm, &info, pv->retired.v,
                           pv->retired.n);
  free(ipath);
  return MAILBOX_OK;
}

/* No maildrop yet: adopted empty at the first login, so that the mail that comes
 * later is not taken for Mailutils' (its marks are ignored). */
static void mbox_adopt_missing(const struct mailbox *mb)
{
  char *ipath = mbox_index_path(mb->path);
  struct mailbox empty;
  struct mbox_index_info info;
  struct stat ist;

  if (ipath == NULL)
    return;
  if (lstat(ipath, &ist) < 0 && errno == ENOENT) {
    memset(&empty, 0, sizeof empty);
    memset(&info, 0, sizeof info);
    info.adopted = (int64_t)time(NULL);
    info.unlocked = true;
    (void)mbox_index_write(ipath, -1, NULL, &empty, NULL, NULL, &info, NULL, 0);
  }
  free(ipath);
}

/* The directory of the maildrop path ("/" for a file of the root). */
static char *mbox_dir(const char *path, const char **base_r)
{
  const char *slash = strrchr(path, '/');

  *base_r = slash + 1;
  return slash == path ? util_xstrdup("/") : util_xstrndup(path, (size_t)(slash - path));
}

/* Remove what an update or an index write of the maildrop base left when its process
 * died: its temporary files ".base.pop3d-XXXXXX" and ".base.pop3d-index.XXXXXXXX"
 * (regular files of the user, or of root, never through a symbolic link).  locked: we
 * hold the maildrop's lock, so no live session of it is writing one and all of them go;
 * otherwise only those older than PARAMS_MBOX_STALE_TEMP_AGE. */
static void mbox_remove_leftovers(const char *dir, const char *base, bool locked)
{
  DIR *d = opendir(dir);
  struct dirent *de;
  time_t now = time(NULL);

  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    struct stat st;
    if (de->d_name[0] != '.' || !spool_is_temp_name(base, de->d_name))
      continue;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
        (st.st_uid != geteuid() && st.st_uid != 0) ||
        (!locked && now - st.st_mtime < PARAMS_MBOX_STALE_TEMP_AGE))
      continue;
    if (spool_unlink_at(dirfd(d), dir, de->d_name) == 0)
      log_msg(LOG_NOTICE, "removed %s/%s (%lld bytes), left by an interrupted update",
              dir, de->d_name, (long long)st.st_size);
  }
  closedir(d);
}

static void mbox_free_priv(struct mailbox *mb)
{
  struct mbox_priv *pv = mb->priv;

  if (pv == NULL)
    return;
  lock_release(&pv->lock);
  if (pv->fd >= 0)
    close(pv->fd);
  free(pv->from);
  free(pv->xm);
  uidl_retired_free(&pv->retired);
  mbox_index_prior_free(&pv->prior);
  free(pv);
  mb->priv = NULL;
}

static enum mailbox_status mbox_open(struct mailbox *mb, const struct conf *c,
                                     const char **error_r)
{
  struct mbox_priv *pv = util_xcalloc(1, sizeof *pv);
  enum mailbox_status st = MAILBOX_TEMP;
  struct stat st_fd, st_path;

  pv->fd = -1;
  lock_init(&pv->lock);
  mb->priv = pv;
  mb->mboxrd = true;

  for (int attempt = 0;; attempt++) {
    int fd = open(mb->path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      switch (errno) {
      case ENOENT:
        /* No mail yet: an empty mailbox.  It is the MDA's to create. */
        pv->fd = -1;
        mbox_adopt_missing(mb);
        return MAILBOX_OK;
      case ELOOP:
      case EMLINK:
        *error_r = "mailbox is a symbolic link";
        st = MAILBOX_PERM;
        break;
      case EISDIR:
        *error_r = "mailbox is a directory";
        st = MAILBOX_PERM;
        break;
      case EACCES:
      case EPERM:
      case EROFS:
        *error_r = "mailbox is not accessible";
        st = MAILBOX_PERM;
        break;
      default:
        *error_r = "cannot open the mailbox";
        st = MAILBOX_TEMP;
        break;
      }
      goto fail;
    }
    pv->fd = fd;
    if (fstat(fd, &st_fd) < 0) {
      *error_r = "cannot examine the mailbox";
      goto fail;
    }
    if (!S_ISREG(st_fd.st_mode)) {
      *error_r = "mailbox is not a regular file";
      st = MAILBOX_PERM;
      goto fail;
    }
    if (st_fd.st_uid != geteuid()) {
      *error_r = "mailbox is not owned by its user";
      st = MAILBOX_PERM;
      goto fail;
    }
    if (st_fd.st_nlink > 1) {
      /* Replacing it at UPDATE would split the links; postfix refuses these too. */
      *error_r = "mailbox has more than one hard link";
      st = MAILBOX_PERM;
      goto fail;
    }
    switch (lock_acquire(&pv->lock, fd, mb->path, c, error_r)) {
    case LOCK_OK:
      break;
    case LOCK_BUSY:
      *error_r = "Mailbox in use";
      st = MAILBOX_INUSE;
      goto fail;
    case LOCK_ERROR:
      st = MAILBOX_TEMP;
      goto fail;
    }
    /* Still the maildrop?  A session's UPDATE may have renamed a new file over it while
     * we waited for the lock. */
    if (fstat(fd, &st_fd) < 0) {
      *error_r = "cannot examine the mailbox";
      goto fail;
    }
    if (stat(mb->path, &st_path) == 0 && st_path.st_dev == st_fd.st_dev &&
        st_path.st_ino == st_fd.st_ino)
      break;
    lock_release(&pv->lock);
    close(fd);
    pv->fd = -1;
    if (attempt + 1 >= PARAMS_MBOX_OPEN_ATTEMPTS) {
      *error_r = "mailbox keeps changing";
      st = MAILBOX_TEMP;
      goto fail;
    }
  }
  if (pv->lock.broke_stale) {
    /* Its holder died, maybe in the middle of an update: what that left goes now (a
     * directory read per open would cost a big spool milliseconds: only then). */
    const char *base;
    char *dir = mbox_dir(mb->path, &base);
    mbox_remove_leftovers(dir, base, true);
    free(dir);
  } else if (lock_held(&pv->lock)) {
    /* A holder killed between naming its new maildrop and the rename, whose dotlock
     * someone else (a delivery agent) removed: one stat finds its copy. */
    const char *base;
    char *dir = mbox_dir(mb->path, &base);
    char *linked = util_xasprintf(".%s" MBOX_TEMP_MARK MBOX_LINKED_SUFFIX, base);
    struct stat lst;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd >= 0 && fstatat(dfd, linked, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(lst.st_mode) && (lst.st_uid == geteuid() || lst.st_uid == 0) &&
        spool_unlink_at(dfd, dir, linked) == 0)
      log_msg(LOG_NOTICE, "removed %s/%s (%lld bytes), left by an interrupted update",
              dir, linked, (long long)lst.st_size);
    if (dfd >= 0)
      close(dfd);
    free(linked);
    free(dir);
  }
  pv->dev = st_fd.st_dev;
  pv->ino = st_fd.st_ino;
  pv->mode = st_fd.st_mode & 07777;
  pv->gid = st_fd.st_gid;
  pv->uid = st_fd.st_uid;
  pv->scanned_end = st_fd.st_size;
  st = mbox_load(mb, pv, &st_fd, error_r);
  if (st != MAILBOX_OK)
    goto fail;
  return MAILBOX_OK;

fail:
  mbox_free_priv(mb);
  return st;
}

static enum mailbox_status mbox_check(struct mailbox *mb, const char **error_r)
{
  struct mbox_priv *pv = mb->priv;
  struct stat st, sp;

  if (pv == NULL || pv->fd < 0)
    return MAILBOX_OK;
  if (pv->updated || fstat(pv->fd, &st) < 0 || st.st_size < pv->scanned_end ||
      st.st_nlink == 0 || stat(mb->path, &sp) < 0 || sp.st_dev != pv->dev ||
      sp.st_ino != pv->ino) {
    *error_r = "mailbox changed by another program";
    return MAILBOX_TEMP;
  }
  return MAILBOX_OK;
}

static int mbox_msg_fd(struct mailbox *mb, size_t i, int *fd_r, const char **error_r)
{
  struct mbox_priv *pv = mb->priv;

  if (pv == NULL || pv->fd < 0 || i >= mb->count) {
    *error_r = "no such message";
    return -1;
  }
  *fd_r = pv->fd;
  return 0;
}

/* Copy [off, end) of in to out. */
static int copy_range(int in, int out, off_t off, off_t end, char **buf)
{
  while (off < end) {
    size_t want = (uint64_t)(end - off) > (1u << 30) ? (1u << 30) : (size_t)(end - off);
    ssize_t n;
    if (*buf == NULL) {
      loff_t o = off;
      n = copy_file_range(in, &o, out, NULL, want, 0);
      if (n > 0) {
        off += n;
        continue;
      }
      if (n == 0)
        return -1;     /* the file shrank under us */
      if (errno == EINTR)
        continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP &&
          errno != EBADF && errno != EPERM)
        return -1;
      *buf = malloc(PARAMS_READ_BLOCK);
      if (*buf == NULL)
        return -1;
    }
    if (want > PARAMS_READ_BLOCK)
      want = PARAMS_READ_BLOCK;
    n = pread(in, *buf, want, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || util_write_all(out, *buf, (size_t)n) < 0)
      return -1;
    off += n;
  }
  return 0;
}

/* A fresh temporary name ".base.pop3d-XXXXXX" in dir, for the nameless file fd (given that
 * name: MBOX_LINKED_SUFFIX first), or when fd is -1 for a new empty file (its descriptor
 * returned). */
static int mbox_temp_name(const char *dir, const char *prefix, int fd, char **name_r)
{
  static const char chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

  for (int i = 0; i < 100; i++) {
    unsigned char r[6];
    char suffix[7];
    char *name;
    int got;

    if (util_random(r, sizeof r) < 0)
      return -1;
    for (int k = 0; k < 6; k++)
      suffix[k] = chars[r[k] % 62];
    suffix[6] = '\0';
    if (fd >= 0 && i == 0)
      memcpy(suffix, MBOX_LINKED_SUFFIX, sizeof suffix);
    name = util_xasprintf("%s/%s%s", dir, prefix, suffix);
    got = fd < 0 ? spool_create(name) : spool_link_fd(fd, name) == 0 ? fd : -1;
    if (got >= 0) {
      *name_r = name;
      return got;
    }
    free(name);
    if (errno != EEXIST)
      return -1;
  }
  errno = EEXIST;
  return -1;
}

/* A change UPDATE makes to a kept message's header: bytes [off, off + len) of the
 * maildrop are replaced by text (len 0: inserted before off). */
struct mbox_edit {
  off_t off;
  off_t len;
  char *text;
  size_t tlen;
};

static void mbox_edits_free(struct mbox_edit *ed, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(ed[i].text);
}

static bool mbox_needs_edit(const struct mailbox_msg *m)
{
  if (m->flags & MAILBOX_MSG_DELETED)
    return false;
  return (m->flags & MAILBOX_MSG_MARK) ||
         ((m->flags & MAILBOX_MSG_UNDELETE) && (m->flags & MAILBOX_MSG_STATUS_D));
}

/* A Status line without Mailutils' deleted mark: the 'D's of its value go; a value left
 * blank takes the line with it. */
static void mbox_status_edit(const char *line, size_t len, struct mbox_edit *ed)
{
  char *t = util_xmalloc(len);
  size_t n = 0;
  bool blank = true;

  memcpy(t, line, 7);
  n = 7;
  for (size_t i = 7; i < len; i++) {
    if (line[i] == 'D')
      continue;
    if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
      blank = false;
    t[n++] = line[i];
  }
  if (blank)
    n = 0;
  ed->text = t;
  ed->tlen = n;
}

/* Plan the header edits of message i: Status lines losing 'D' (with undelete), and an
 * insertion before the blank line that ends the header (or at the end of a message
 * without body): the expiry mark and, when the message's id is not its own X-UIDL, that
 * id, so that it survives the change of the header it was derived from.  The header
 * is read again (only messages with edits, after their RETR or TOP).  Returns the
 * number of edits, or -1 on a read error. */
static int mbox_plan_edits(const struct mailbox *mb, const struct mbox_priv *pv, size_t i,
                           struct mbox_edit *ed, size_t cap)
{
  const struct mailbox_msg *m = &mb->msgs[i];
  bool want_status = (m->flags & MAILBOX_MSG_UNDELETE) && (m->flags & MAILBOX_MSG_STATUS_D);
  char buf[4096], ins[PARAMS_UIDL_MAX + 64];
  off_t pos = m->start, ls = m->start, hdr_end = m->end;
  bool skipping = false, found = false, crlf = false, need_lf = false;
  size_t n = 0, il = 0;
  const char *eol;

  while (pos < m->end && !found) {
    size_t want = (uint64_t)(m->end - pos) < sizeof buf ? (size_t)(m->end - pos) : sizeof buf;
    ssize_t got = pread(pv->fd, buf, want, pos);
    const char *p = buf, *e;

    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return -1;
    e = buf + got;
    for (const char *nl; (nl = memchr(p, '\n', (size_t)(e - p))) != NULL; p = nl + 1) {
      off_t next = pos + (nl - buf) + 1;
      if (!skipping) {
        const char *lp = buf + (ls - pos);
        size_t llen = (size_t)(next - ls);
        if (llen == 1 || (llen == 2 && lp[0] == '\r')) {
          hdr_end = ls;
          crlf = llen == 2;
          found = true;
          break;
        }
        if (want_status && llen > 7 && n + 1 < cap && util_strncasecmp(lp, "Status:", 7) == 0 &&
            lp[0] != ' ' && memchr(lp + 7, 'D', llen - 7) != NULL) {
          ed[n].off = ls;
          ed[n].len = (off_t)llen;
          mbox_status_edit(lp, llen, &ed[n]);
          n++;
        }
      }
      skipping = false;
      ls = next;
    }
    if (found)
      break;
    if (skipping || (ls == pos && (size_t)got == sizeof buf)) {
      /* A line longer than the buffer: not one we edit. */
      skipping = true;
      pos += got;
    } else if (pos + got >= m->end) {
      break;
    } else {
      pos = ls;
    }
  }
  if (!found && m->end > m->start) {
    /* No body: the header runs to the end; the last line may lack its LF.  A last line
     * of a lone CR would become a blank line (the end of the header) with one: the
     * insertion goes before it instead, and it stays the last line. */
    char last[2] = { '\n', '\0' };   /* a message starts at the start of a line */
    size_t k = m->end - m->start >= 2 ? 2 : 1;
    ssize_t r;
    do
      r = pread(pv->fd, last + 2 - k, k, m->end - (off_t)k);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)k)
      goto fail;
    need_lf = last[1] != '\n';
    if (need_lf && last[1] == '\r' && last[0] == '\n') {
      hdr_end = m->end - 1;
      need_lf = false;
    }
  }
  eol = crlf ? "\r\n" : "\n";
  if (need_lf)
    il += (size_t)snprintf(ins + il, sizeof ins - il, "%s", eol);
  if (m->flags & MAILBOX_MSG_MARK)
    il += (size_t)snprintf(ins + il, sizeof ins - il, EXPIRE_HEADER ": %lld%s",
                           (long long)mb->mark_time, eol);
  if (!(m->flags & MAILBOX_MSG_XUIDL))
    il += (size_t)snprintf(ins + il, sizeof ins - il, "X-UIDL: %s%s", mailbox_uid(mb, i), eol);
  if (il > 0) {
    ed[n].off = hdr_end;
    ed[n].len = 0;
    ed[n].text = util_xstrndup(ins, il);
    ed[n].tlen = il;
    n++;
  }
  return (int)n;
fail:
  mbox_edits_free(ed, n);
  return -1;
}

/* The last two bytes written to fd (an O_RDWR file written from its start). */
static int mbox_tail2(int fd, char out[2], off_t *size_r)
{
  off_t size = lseek(fd, 0, SEEK_CUR);

  out[0] = out[1] = '\n';
  *size_r = size;
  if (size < 0)
    return -1;
  if (size == 0)
    return 0;
  if (size == 1)
    return pread(fd, out + 1, 1, 0) == 1 ? 0 : -1;
  return pread(fd, out, 2, size - 2) == 2 ? 0 : -1;
}

/* The bytes a bulletin adds: its block, an LF if its last line lacks one, and the
 * empty line that separates it from what follows. */
static off_t mbox_block_len(int src, const struct mailbox_range *r, bool *lf_r)
{
  char last = '\n';

  if (r->end > r->from && pread(src, &last, 1, r->end - 1) != 1)
    return -1;
  *lf_r = last != '\n';
  return r->end - r->from + (*lf_r ? 2 : 1);
}

/* Do bytes [off, off + len) of a equal those of the concatenated blocks r[0..k)? */
static bool mbox_tail_is(int a, off_t off, int src, const struct mailbox_range *r, size_t k)
{
  char x[4096], y[4096];

  for (size_t i = 0; i < k; i++) {
    bool lf;
    off_t blen = mbox_block_len(src, &r[i], &lf), done = 0;
    if (blen < 0)
      return false;
    while (done < blen) {
      size_t want = (uint64_t)(blen - done) < sizeof x ? (size_t)(blen - done) : sizeof x;
      size_t have = 0;
      if (pread(a, x, want, off + done) != (ssize_t)want)
        return false;
      if (done < r[i].end - r[i].from) {
        off_t rest = r[i].end - r[i].from - done;
        have = (uint64_t)rest < want ? (size_t)rest : want;
        if (pread(src, y, have, r[i].from + done) != (ssize_t)have)
          return false;
      }
      for (size_t j = have; j < want; j++)
        y[j] = '\n';
      if (memcmp(x, y, want) != 0)
        return false;
      done += (off_t)want;
    }
    off += blen;
  }
  return true;
}

/* How many of the leading blocks r[0..n) end the maildrop already: a session that
 * appended them crashed before it could record their numbers.  0 when none. */
static size_t mbox_already_appended(const struct mbox_priv *pv, int src,
                                    const struct mailbox_range *r, size_t n)
{
  off_t total = 0, lens[PARAMS_BULLETIN_MAX];

  if (pv->fd < 0 || n > PARAMS_BULLETIN_MAX)
    return 0;
  for (size_t k = 0; k < n; k++) {
    bool lf;
    lens[k] = mbox_block_len(src, &r[k], &lf);
    if (lens[k] < 0)
      return 0;
  }
  for (size_t k = n; k > 0; k--) {
    total = 0;
    for (size_t j = 0; j < k; j++)
      total += lens[j];
    if (total > pv->scanned_end)
      continue;
    if (mbox_tail_is(pv->fd, pv->scanned_end - total, src, r, k))
      return k;
  }
  return 0;
}

/* Before an UPDATE changes the maildrop: the index records the messages going and the
 * marks added (pop3d's own expiry record, expire.h), durably, so that the next open
 * knows them whether or not the UPDATE finished.  Its table of the file is dropped (the
 * next open scans).  0, or -1 with *error_r. */
static int mbox_record_update(struct mailbox *mb, struct mbox_priv *pv, const char **error_r)
{
  char *ipath = mbox_index_path(mb->path);
  struct mbox_index_msg *xm;
  struct mbox_index_info info;
  int r;

  if (ipath == NULL)
    return 0;
  xm = util_xreallocarray(NULL, mb->count ? mb->count : 1, sizeof *xm);
  for (size_t i = 0; i < mb->count; i++) {
    xm[i] = pv->xm[i];
    if (mb->msgs[i].flags & MAILBOX_MSG_DELETED)
      xm[i].flags |= MBOX_INDEX_GOING;
    else if ((mb->msgs[i].flags & MAILBOX_MSG_MARK) && xm[i].mark == 0 &&
             mb->mark_time > 0 && mb->mark_time <= (int64_t)UINT32_MAX)
      xm[i].mark = (uint32_t)mb->mark_time;
  }
  memset(&info, 0, sizeof info);
  info.adopted = pv->adopted;
  r = mbox_index_write(ipath, pv->fd, NULL, mb, pv->from, xm, &info, pv->retired.v,
                       pv->retired.n);
  if (r < 0) {
    log_msg(LOG_ERR, "%s: cannot write %s before the update: %s", mb->path, ipath,
            strerror(errno));
    *error_r = "cannot record the update in the mailbox index";
  }
  free(xm);
  free(ipath);
  return r;
}

/* Write the maildrop anew beside the old one and rename it over it: a crash leaves the
 * old or the new file whole, and no other (but for the instant between naming the new
 * file and the rename, or where the filesystem lacks O_TMPFILE).  session: apply this session's deletions and header edits;
 * then everything delivered since the scan; then the n blocks of src (bulletins). */
static enum mailbox_status mbox_rewrite(struct mailbox *mb, bool session, int src,
                                        const struct mailbox_range *r, size_t n,
                                        size_t *deleted_r, const char **error_r)
{
  struct mbox_priv *pv = mb->priv;
  size_t ndel = 0, nedit = 0;
  const char *base;
  char *dir = NULL, *prefix = NULL, *tmp = NULL, *buf = NULL;
  int tfd = -1, dfd;
  off_t run, have;
  struct stat st;
  enum mailbox_status ret = MAILBOX_TEMP;
  struct mbox_edit ed[PARAMS_HEADER_EDITS_MAX + 1];
  bool fresh = pv->fd < 0, store_ids, chained, named;

  *deleted_r = 0;
  for (size_t i = 0; session && i < mb->count; i++) {
    if (mb->msgs[i].flags & MAILBOX_MSG_DELETED)
      ndel++;
    else if (mbox_needs_edit(&mb->msgs[i]))
      nedit++;
  }
  if (ndel == 0 && nedit == 0 && n == 0)
    return MAILBOX_OK;
  /* Dovecot's ids hang on the X-IMAPbase of the first message and on the UIDs before
   * them: once the maildrop changes, each goes into an X-UIDL header of its message.
   * So do the other ids of a maildrop with such a chain: whether a message's X-UID is
   * trusted depends on the messages before it, so a message whose id is the hash of its
   * header today (its X-UID out of order) could derive a Dovecot id once messages before
   * it are gone, or take one that another message keeps in its X-UIDL. */
  store_ids = ndel > 0 || nedit > 0;
  chained = pv->chain.validity != 0;
  for (size_t i = 0; store_ids && !chained && i < mb->count; i++)
    chained = (mb->msgs[i].flags & MAILBOX_MSG_XUID) != 0;
  if (mbox_check(mb, error_r) != MAILBOX_OK)
    return MAILBOX_TEMP;
  lock_touch(&pv->lock);

  dir = mbox_dir(mb->path, &base);
  prefix = util_xasprintf(".%s" MBOX_TEMP_MARK, base);
  mbox_remove_leftovers(dir, base, lock_held(&pv->lock));
  /* Nameless while it is written (a crash takes it along), named where it can't be. */
  tfd = spool_tmpfile(dir);
  if (tfd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
    tfd = mbox_temp_name(dir, prefix, -1, &tmp);
  if (tfd < 0) {
    log_msg(LOG_ERR, "cannot rewrite %s: cannot create a file in %s: %s", mb->path, dir,
            strerror(errno));
    *error_r = "cannot create a temporary file next to the mailbox";
    goto out;
  }

  /* Everything but the blocks (From_ line to the next From_ line) of deleted messages,
   * with the header edits of kept ones. */
  run = 0;
  for (size_t i = 0; !fresh && (ndel > 0 || nedit > 0) && i < mb->count; i++) {
    const struct mailbox_msg *m = &mb->msgs[i];
    if (m->flags & MAILBOX_MSG_DELETED) {
      if (copy_range(pv->fd, tfd, run, pv->from[i], &buf) < 0)
        goto io_error;
      run = i + 1 < mb->count ? pv->from[i + 1] : pv->scanned_end;
    } else if (mbox_needs_edit(m) ||
               (store_ids && chained && !(m->flags & MAILBOX_MSG_XUIDL))) {
      int ne = mbox_plan_edits(mb, pv, i, ed, sizeof ed / sizeof ed[0]);
      if (ne < 0)
        goto io_error;
      for (int k = 0; k < ne; k++) {
        if (copy_range(pv->fd, tfd, run, ed[k].off, &buf) < 0 ||
            util_write_all(tfd, ed[k].text, ed[k].tlen) < 0) {
          mbox_edits_free(ed, (size_t)ne);
          goto io_error;
        }
        run = ed[k].off + ed[k].len;
      }
      mbox_edits_free(ed, (size_t)ne);
    }
  }
  /* The rest, with whatever an MDA appended since the scan; again until it stops. */
  have = run;
  for (int round = 0; !fresh; round++) {
    if (fstat(pv->fd, &st) < 0 || st.st_size < pv->scanned_end) {
      *error_r = "mailbox changed by another program";
      goto out;
    }
    if (st.st_size == have)
      break;
    if (round >= 10 || copy_range(pv->fd, tfd, have, st.st_size, &buf) < 0)
      goto io_error;
    have = st.st_size;
  }
  if (n > 0) {
    char t2[2];
    off_t size;
    if (lseek(tfd, 0, SEEK_END) < 0 || mbox_tail2(tfd, t2, &size) < 0)
      goto io_error;
    /* A new message starts after an empty line. */
    if (size > 0 && (t2[1] != '\n' || t2[0] != '\n') &&
        util_write_all(tfd, t2[1] != '\n' ? "\n\n" : "\n", t2[1] != '\n' ? 2 : 1) < 0)
      goto io_error;
  }
  for (size_t k = 0; k < n; k++) {
    bool lf;
    if (mbox_block_len(src, &r[k], &lf) < 0 || copy_range(src, tfd, r[k].from, r[k].end, &buf) < 0 ||
        util_write_all(tfd, lf ? "\n\n" : "\n", lf ? 2 : 1) < 0)
      goto io_error;
  }
  if (fresh) {
    /* Ours (a no-op unless the process is more privileged than the mail user). */
    if (fchmod(tfd, 0600) < 0 || (fchown(tfd, geteuid(), (gid_t)-1) < 0 && errno != EPERM))
      goto io_error;
  } else {
    if (fchmod(tfd, pv->mode) < 0)
      goto io_error;
    /* Same owner and group as the old file (a no-op for the owner when we are the owner;
     * it matters when the process is more privileged than the mail user). */
    if (fchown(tfd, pv->uid, pv->gid) < 0 && errno != EPERM)
      goto io_error;
  }
  if (fsync(tfd) < 0)
    goto io_error;
  if (session && !fresh && mbox_record_update(mb, pv, error_r) < 0)
    goto out;
  /* No maildrop at the scan: never replace one an MDA created since (a link fails where
   * a name exists).  Otherwise the new file is renamed over the old one, so a nameless
   * one gets a temporary name first (linkat can't replace a file). */
  named = tmp != NULL;
  if (!named && fresh && spool_link_fd(tfd, mb->path) < 0)
    goto link_error;
  if (!named && !fresh && mbox_temp_name(dir, prefix, tfd, &tmp) < 0)
    goto io_error;
  if (close(tfd) < 0) {
    tfd = -1;
    goto io_error;
  }
  tfd = -1;
  if (fresh && named) {
    if (spool_link(tmp, mb->path) < 0)
      goto link_error;
    spool_unlink(tmp);
  } else if (!fresh) {
    if (mbox_check(mb, error_r) != MAILBOX_OK)
      goto out;
    if (spool_rename(tmp, mb->path) < 0)
      goto io_error;
  }
  free(tmp);
  tmp = NULL;
  pv->updated = true;
  *deleted_r = ndel;
  ret = MAILBOX_OK;
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || (fsync(dfd) < 0 && errno != EINVAL)) {
    log_msg(LOG_ERR, "cannot sync directory %s: %s", dir, strerror(errno));
    *error_r = "cannot sync the mailbox directory";
    ret = MAILBOX_TEMP;
  }
  if (dfd >= 0)
    close(dfd);
  goto out;

link_error:
  if (errno == EEXIST) {
    *error_r = "mailbox changed by another program";
    goto out;
  }
io_error:
  log_msg(LOG_ERR, "cannot rewrite %s: %s", mb->path, strerror(errno));
  *error_r = "cannot rewrite the mailbox";
out:
  if (tfd >= 0)
    close(tfd);
  if (tmp != NULL) {
    spool_unlink(tmp);
    free(tmp);
  }
  free(buf);
  free(prefix);
  free(dir);
  return ret;
}

static enum mailbox_status mbox_update(struct mailbox *mb, size_t *deleted_r,
                                       const char **error_r)
{
  return mbox_rewrite(mb, true, -1, NULL, 0, deleted_r, error_r);
}

static enum mailbox_status mbox_append(struct mailbox *mb, int src,
                                       const struct mailbox_range *r, size_t n,
                                       const char **error_r)
{
  struct mbox_priv *pv = mb->priv;
  size_t done = mbox_already_appended(pv, src, r, n), ndel;

  if (done > 0)
    log_msg(LOG_NOTICE, "%s: %zu of %zu messages to append are there already "
            "(an earlier session stopped before recording them)", mb->path, done, n);
  return mbox_rewrite(mb, false, src, r + done, n - done, &ndel, error_r);
}

static void mbox_close(struct mailbox *mb)
{
  mbox_free_priv(mb);
}

static void mbox_touch(struct mailbox *mb)
{
  struct mbox_priv *pv = mb->priv;

  if (pv != NULL)
    lock_touch(&pv->lock);
}

const struct mailbox_ops mailbox_mbox_ops = {
  .scheme = "mbox",
  .open = mbox_open,
  .check = mbox_check,
  .msg_fd = mbox_msg_fd,
  .update = mbox_update,
  .close = mbox_close,
  .touch = mbox_touch,
  .append = mbox_append,
};

enum mailbox_status mailbox_mbox_open_fd(struct mailbox *mb, int fd, const struct conf *c,
                                         const char **error_r)
{
  struct mbox_priv *pv;
  struct stat st;
  struct flock fl;
  uint64_t start = util_now_ms();
  enum mailbox_status ret;

  (void)c;
  memset(mb, 0, sizeof *mb);
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    *error_r = "not a regular file";
    close(fd);
    return MAILBOX_PERM;
  }
  /* A shared lock: whoever adds a bulletin (with an exclusive one) is not read half. */
  for (;;) {
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) == 0)
      break;
    if ((errno != EAGAIN && errno != EACCES && errno != EINTR) ||
        util_now_ms() - start > PARAMS_NUMDB_LOCK_WAIT_MS) {
      *error_r = errno == EAGAIN || errno == EACCES ? "locked by another program"
                                                    : "cannot lock";
      close(fd);
      return MAILBOX_INUSE;
    }
    util_sleep_ms(10);
  }
  if (fstat(fd, &st) < 0) {
    *error_r = "cannot examine the mailbox";
    close(fd);
    return MAILBOX_TEMP;
  }
  pv = util_xcalloc(1, sizeof *pv);
  pv->fd = fd;
  lock_init(&pv->lock);
  pv->dev = st.st_dev;
  pv->ino = st.st_ino;
  pv->scanned_end = st.st_size;
  mb->ops = &mailbox_mbox_ops;
  mb->priv = pv;
  mb->mboxrd = true;
  ret = mbox_scan_fd(mb, pv, st.st_size, error_r);
  if (ret != MAILBOX_OK)
    mailbox_close(mb);
  return ret;
}

bool mailbox_mbox_block(const struct mailbox *mb, size_t i, struct mailbox_range *r)
{
  const struct mbox_priv *pv = mb->priv;

  if (pv == NULL || i >= mb->count || pv->from[i] == mb->msgs[i].start)
    return false;
  r->from = pv->from[i];
  r->end = mb->msgs[i].end;
  return true;
}
