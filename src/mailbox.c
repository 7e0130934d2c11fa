/* mailbox.c - the maildrop front: URLs, dispatch to a backend, the unique-id arena.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox.h"
#include "params.h"
#include "uidl.h"


/* Length of a URL scheme at the start of s ("mbox" in "mbox:/x"), 0 if none. */
static size_t url_scheme_len(const char *s)
{
  size_t i = 0;

  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
    return 0;
  for (i = 1; s[i] != '\0' && s[i] != ':'; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'))
      return 0;
  }
  return s[i] == ':' ? i : 0;
}

static bool scheme_is(const char *s, size_t len, const char *name)
{
  return strlen(name) == len && util_strncasecmp(s, name, len) == 0;
}

/* Has path a ".." component? */
static bool path_has_dotdot(const char *path)
{
  const char *p = path;

  while (*p) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return true;
    if (e == NULL)
      break;
    p = e + 1;
  }
  return false;
}

/* The backend of a scheme name ("mbox", "file", "maildir", "mh"), or NULL. */
static const struct mailbox_ops *ops_by_scheme(const char *s, size_t len)
{
  if (scheme_is(s, len, "mbox") || scheme_is(s, len, "file"))
    return &mailbox_mbox_ops;
  if (scheme_is(s, len, "maildir"))
    return &mailbox_maildir_ops;
  if (scheme_is(s, len, "mh"))
    return &mailbox_mh_ops;
  return NULL;
}

/* autodetect-accuracy: 0 turns detection off; auto, fast, minimal and other numbers
 * leave it on (every check made is a few stat calls, so there is nothing to trade). */
static bool autodetect_on(const struct conf *c)
{
  const char *a = c->autodetect_accuracy;

  return a == NULL || strcmp(a, "0") != 0;
}

static bool is_subdir(int dfd, const char *name)
{
  struct stat st;

  return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* The format of an existing maildrop: a regular file is an mbox; a directory is a
 * maildir when it has cur/ and new/, an MH folder when it has .mh_sequences or a file
 * named by a number.  NULL when there is nothing to tell by. */
static const struct mailbox_ops *mailbox_detect(const char *path)
{
  const struct mailbox_ops *ops = NULL;
  struct dirent *de;
  struct stat st;
  DIR *d;
  int dfd;

  if (lstat(path, &st) < 0)
    return NULL;
  if (S_ISREG(st.st_mode))
    return &mailbox_mbox_ops;
  if (!S_ISDIR(st.st_mode))
    return NULL;
  dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return NULL;
  if (is_subdir(dfd, "cur") && is_subdir(dfd, "new")) {
    close(dfd);
    return &mailbox_maildir_ops;
  }
  if (faccessat(dfd, ".mh_sequences", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
    close(dfd);
    return &mailbox_mh_ops;
  }
  d = fdopendir(dfd);
  if (d == NULL) {
    close(dfd);
    return NULL;
  }
  while ((de = readdir(d)) != NULL) {
    const char *p = de->d_name;
    if (*p < '1' || *p > '9')
      continue;
    while (*p >= '0' && *p <= '9')
      p++;
    if (*p == '\0') {
      ops = &mailbox_mh_ops;
      break;
    }
  }
  closedir(d);
  return ops;
}

const struct mailbox_ops *mailbox_type_of(const char *url, const struct conf *c)
{
  size_t slen = url_scheme_len(url);
  const struct mailbox_ops *ops, *dflt = NULL;
  const char *path = url;

  if (c->mailbox_type != NULL && *c->mailbox_type != '\0')
    dflt = ops_by_scheme(c->mailbox_type, strlen(c->mailbox_type));
  if (dflt == NULL)
    dflt = &mailbox_mbox_ops;
  if (slen > 0) {
    ops = ops_by_scheme(url, slen);
    if (ops == NULL)
      return NULL;
    path = url + slen + 1;
    while (path[0] == '/' && path[1] == '/')
      path++;
  } else {
    ops = dflt;
  }
  /* The default scheme (mailbox-type, which mailbox_url_for also writes) only names the
   * format of maildrops that don't exist yet; an mbox is never a directory. */
  if ((ops == dflt || ops == &mailbox_mbox_ops) && autodetect_on(c)) {
    const struct mailbox_ops *found = mailbox_detect(path);
    if (found != NULL)
      ops = found;
  }
  return ops;
}

enum mailbox_status mailbox_open(struct mailbox *mb, const char *url, const struct conf *c,
                                 const char **error_r)
{
  const struct mailbox_ops *ops = &mailbox_mbox_ops;
  const char *path = url;
  size_t slen;
  enum mailbox_status st;

  memset(mb, 0, sizeof *mb);
  if (url == NULL || *url == '\0') {
    *error_r = "empty mailbox URL";
    return MAILBOX_PERM;
  }
  slen = url_scheme_len(url);
  if (slen > 0) {
    if (ops_by_scheme(url, slen) == NULL) {
      *error_r = "unknown mailbox type";
      return MAILBOX_PERM;
    }
    path = url + slen + 1;
    /* mbox:///var/mail/u: an empty authority only. */
    if (path[0] == '/' && path[1] == '/') {
      path += 2;
      if (path[0] != '/') {
        *error_r = "mailbox URL with a host is not supported";
        return MAILBOX_PERM;
      }
    }
  }
  if (path[0] != '/') {
    *error_r = "mailbox path is not absolute";
    return MAILBOX_PERM;
  }
  if (strlen(path) > PARAMS_MAILBOX_URL_MAX || path_has_dotdot(path)) {
    *error_r = "invalid mailbox path";
    return MAILBOX_PERM;
  }
  ops = mailbox_type_of(url, c);
  if (ops == NULL) {
    *error_r = "unknown mailbox type";
    return MAILBOX_PERM;
  }
  mb->ops = ops;
  mb->path = util_xstrdup(path);
  st = ops->open(mb, c, error_r);
  if (st != MAILBOX_OK) {
    free(mb->path);
    free(mb->msgs);
    free(mb->uids);
    memset(mb, 0, sizeof *mb);
  }
  return st;
}

void mailbox_close(struct mailbox *mb)
{
  if (mb->ops != NULL && mb->ops->close != NULL)
    mb->ops->close(mb);
  free(mb->path);
  free(mb->msgs);
  free(mb->uids);
  memset(mb, 0, sizeof *mb);
}

uint32_t mailbox_add_uid(struct mailbox *mb, const char *uid, size_t len)
{
  size_t need, off = mb->uids_len;

  if (len == 0 || len > PARAMS_UIDL_MAX || memchr(uid, '\0', len) != NULL)
    return MAILBOX_UID_NONE;
  if (!util_add_size(off, len + 1, &need) || need >= MAILBOX_UID_NONE)
    return MAILBOX_UID_NONE;
  if (need > mb->uids_cap) {
    size_t cap = mb->uids_cap ? mb->uids_cap : 4096;
    char *p;
    while (cap < need)
      cap *= 2;
    if (cap >= MAILBOX_UID_NONE)
      cap = MAILBOX_UID_NONE - 1;
    p = realloc(mb->uids, cap);
    if (p == NULL)
      return MAILBOX_UID_NONE;
    mb->uids = p;
    mb->uids_cap = cap;
  }
  memcpy(mb->uids + off, uid, len);
  mb->uids[off + len] = '\0';
  mb->uids_len = need;
  return (uint32_t)off;
}

static uint64_t uid_key(const char *s, size_t len)
{
  uint64_t h = 0xcbf29ce484222325ull;

  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ull;
  }
  return h ^ (h >> 29);
}

/* Slot of id s in the table (holding message index + 1), or of the empty slot where it
 * would go. */
static size_t uid_find(const struct mailbox *mb, const uint32_t *slots, size_t mask,
                       const char *s, size_t len)
{
  size_t i = (size_t)uid_key(s, len) & mask;

  for (;;) {
    uint32_t m = slots[i];
    if (m == 0)
      return i;
    const char *o = mailbox_uid(mb, m - 1);
    if (strncmp(o, s, len) == 0 && o[len] == '\0')
      return i;
    i = (i + 1) & mask;
  }
}

int mailbox_unique_uids(struct mailbox *mb, const char **error_r)
{
  size_t cap = 16, mask;
  uint32_t *slots, *next;

  if (mb->count == 0)
    return 0;
  while (cap < mb->count * 2)
    cap *= 2;
  mask = cap - 1;
  slots = calloc(cap, sizeof *slots);
  next = calloc(cap, sizeof *next);
  if (slots == NULL || next == NULL) {
    free(slots);
    free(next);
    *error_r = "out of memory";
    return -1;
  }
  for (size_t i = 0; i < mb->count; i++) {
    const char *id = mailbox_uid(mb, i);
    size_t len = strlen(id);
    size_t base = uid_find(mb, slots, mask, id, len);
    char cand[PARAMS_UIDL_MAX + 1];

    if (slots[base] == 0) {
      slots[base] = (uint32_t)i + 1;
      continue;
    }
    /* A duplicate: the first free "-N" after the last one handed out for this id. */
    if (next[base] < 2)
      next[base] = 2;
    for (;;) {
      char suffix[16];
      size_t sl = (size_t)snprintf(suffix, sizeof suffix, "-%u", (unsigned)next[base]);
      size_t keep = len;
      size_t slot;
      uint32_t off;

      next[base]++;
      if (keep + sl > PARAMS_UIDL_MAX)
        keep = PARAMS_UIDL_MAX - sl;
      memcpy(cand, mailbox_uid(mb, i), keep);
      memcpy(cand + keep, suffix, sl);
      cand[keep + sl] = '\0';
      slot = uid_find(mb, slots, mask, cand, keep + sl);
      if (slots[slot] != 0)
        continue;
      off = mailbox_add_uid(mb, cand, keep + sl);
      if (off == MAILBOX_UID_NONE) {
        free(slots);
        free(next);
        *error_r = "out of memory";
        return -1;
      }
      mb->msgs[i].uid = off;
      slots[slot] = (uint32_t)i + 1;
      break;
    }
  }
  free(slots);
  free(next);
  return 0;
}

/* A growable string for URL expansion, bounded by PARAMS_MAILBOX_URL_MAX. */
struct urlbuf {
  char s[PARAMS_MAILBOX_URL_MAX + 1];
  size_t n;
  bool overflow;
};

static void urlbuf_add(struct urlbuf *b, const char *s, size_t len)
{
  if (b->overflow || len > PARAMS_MAILBOX_URL_MAX - b->n) {
    b->overflow = true;
    return;
  }
  memcpy(b->s + b->n, s, len);
  b->n += len;
  b->s[b->n] = '\0';
}

static bool user_name_ok(const char *user)
{
  return user != NULL && user[0] != '\0' && user[0] != '.' && strchr(user, '/') == NULL &&
         strlen(user) <= PARAMS_USER_MAX;
}

char *mailbox_url_for(const struct conf *c, const char *user, const char *home,
                      const char **error_r)
{
  struct urlbuf b = { .n = 0, .overflow = false };
  const char *type = c->mailbox_type && *c->mailbox_type ? c->mailbox_type : "mbox";
  const char *at, *domain, *src, *path;
  size_t slen;

  b.s[0] = '\0';
  if (!user_name_ok(user)) {
    *error_r = "invalid user name";
    return NULL;
  }
  at = strchr(user, '@');
  domain = at ? at + 1 : "";

  if (c->mailbox_pattern != NULL && *c->mailbox_pattern != '\0') {
    src = c->mailbox_pattern;
    if (url_scheme_len(src) == 0) {
      urlbuf_add(&b, type, strlen(type));
      urlbuf_add(&b, ":", 1);
    }
    for (const char *p = src; *p;) {
      const char *name = NULL, *val;
      size_t nlen = 0;
      if (p[0] == '$' && p[1] == '{') {
        const char *e = strchr(p + 2, '}');
        if (e == NULL) {
          *error_r = "mailbox-pattern: unterminated ${";
          return NULL;
        }
        name = p + 2;
        nlen = (size_t)(e - name);
        p = e + 1;
      } else if (p[0] == '$' && ((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z'))) {
        name = p + 1;
        while ((name[nlen] >= 'a' && name[nlen] <= 'z') ||
               (name[nlen] >= 'A' && name[nlen] <= 'Z'))
          nlen++;
        p = name + nlen;
      } else {
        const char *e = strchr(p, '$');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
          n = 1;    /* a lone '$' is literal */
        urlbuf_add(&b, p, n);
        p += n;
        continue;
      }
      if (nlen == 4 && memcmp(name, "user", 4) == 0) {
        val = user;
      } else if (nlen == 4 && memcmp(name, "home", 4) == 0) {
        if (home == NULL || home[0] != '/') {
          *error_r = "mailbox-pattern: the user has no home directory";
          return NULL;
        }
        val = home;
      } else if (nlen == 6 && memcmp(name, "domain", 6) == 0) {
        val = domain;
      } else {
        *error_r = "mailbox-pattern: unknown variable";
        return NULL;
      }
      urlbuf_add(&b, val, strlen(val));
    }
  } else {
    src = c->mail_spool && *c->mail_spool ? c->mail_spool : PARAMS_MAIL_SPOOL;
    if (url_scheme_len(src) == 0) {
      urlbuf_add(&b, type, strlen(type));
      urlbuf_add(&b, ":", 1);
    }
    urlbuf_add(&b, src, strlen(src));
    if (b.n == 0 || b.s[b.n - 1] != '/')
      urlbuf_add(&b, "/", 1);
    urlbuf_add(&b, user, strlen(user));
  }
  if (b.overflow) {
    *error_r = "mailbox URL too long";
    return NULL;
  }
  slen = url_scheme_len(b.s);
  path = b.s + (slen ? slen + 1 : 0);
  if (path_has_dotdot(path)) {
    *error_r = "mailbox path contains \"..\"";
    return NULL;
  }
  return util_xstrdup(b.s);
}
