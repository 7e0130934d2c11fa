/* privsep.c - the one place that changes the process identity.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "params.h"
#include "privsep.h"
#include "util.h"

/* Room for a formatted error, valid until the next call. */
static char privsep_error[128];

static bool has_gid(const gid_t *v, size_t n, gid_t g)
{
  for (size_t i = 0; i < n; i++)
    if (v[i] == g)
      return true;
  return false;
}

/* The user's supplementary groups: gid first, extra_gid second (when set), then the
 * groups of the group database, at most the kernel's limit.  Returns a malloc'd
 * array of *n. */
static gid_t *user_groups(const struct auth_user *u, gid_t extra_gid, size_t *n)
{
  long lmax = sysconf(_SC_NGROUPS_MAX);
  size_t max = lmax > 0 && lmax < 65536 ? (size_t)lmax : 65536;
  gid_t *v = util_xcalloc(max, sizeof *v);
  int ng = 64;
  gid_t *db = NULL;

  *n = 0;
  v[(*n)++] = u->gid;
  if (extra_gid != (gid_t)-1 && extra_gid != u->gid)
    v[(*n)++] = extra_gid;
  if (u->name == NULL)
    return v;
  /* getgrouplist() tells the size it needs when the array is too small. */
  for (int tries = 0;; tries++) {
    int want = ng;

    db = util_xreallocarray(db, (size_t)ng, sizeof *db);
    if (getgrouplist(u->name, u->gid, db, &want) >= 0) {
      ng = want;
      break;
    }
    if (tries == 3 || (size_t)ng > max) {
      ng = -1;
      break;
    }
    ng = want > ng ? want : ng * 2;
  }
  if (ng < 0) {
    log_msg(LOG_WARNING, "privsep: can't list the groups of %s: using its primary group",
            u->name);
    ng = 0;
  }
  for (int i = 0; i < ng; i++) {
    if (has_gid(v, *n, db[i]))
      continue;
    if (*n == max) {
      log_msg(LOG_WARNING, "privsep: %s is in more than %zu groups: the rest are dropped",
              u->name, max);
      break;
    }
    v[(*n)++] = db[i];
  }
  free(db);
  return v;
}

/* Not root: only our own uid can be served, and nothing changes. */
static int drop_unprivileged(const struct auth_user *u, const char **error_r)
{
  uid_t ruid = getuid(), euid = geteuid();

  if (u->uid != ruid || u->uid != euid) {
    snprintf(privsep_error, sizeof privsep_error,
             "not running as root: can only serve uid %lu", (unsigned long)euid);
    *error_r = privsep_error;
    return -1;
  }
  return 0;
}

/* Take these groups, gid and uid for good, each step checked, then prove it can't be
 * undone: root out of reach, every id the new one.  The one place ids change. */
static int become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                  const char **error_r)
{
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;

  if (setgroups(ngroups, groups) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "setgroups: %s", strerror(errno));
    *error_r = privsep_error;
    return -1;
  }
  if (setresgid(gid, gid, gid) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "setgid(%lu): %s", (unsigned long)gid,
             strerror(errno));
    *error_r = privsep_error;
    return -1;
  }
  if (setresuid(uid, uid, uid) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "setuid(%lu): %s", (unsigned long)uid,
             strerror(errno));
    *error_r = privsep_error;
    return -1;
  }
  if (setuid(0) == 0 || seteuid(0) == 0) {
    *error_r = "could regain root after dropping privileges";
    return -1;
  }
  if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0) {
    snprintf(privsep_error, sizeof privsep_error, "getresuid: %s", strerror(errno));
    *error_r = privsep_error;
    return -1;
  }
  if (ruid != uid || euid != uid || suid != uid || geteuid() != uid || rgid != gid ||
      egid != gid || sgid != gid || getegid() != gid) {
    *error_r = "identity change did not take effect";
    return -1;
  }
  if (gid != 0 && setgid(0) == 0) {
    *error_r = "could regain group 0 after dropping privileges";
    return -1;
  }
  return 0;
}

int privsep_drop(const struct auth_user *u, gid_t extra_gid, const char **error_r)
{
  gid_t *groups;
  size_t ngroups;
  int rc;

  if (u->uid == 0) {
    *error_r = "refusing to serve uid 0";
    return -1;
  }
  if (u->uid == (uid_t)-1 || u->gid == (gid_t)-1) {
    *error_r = "invalid uid or gid";
    return -1;
  }
  if (geteuid() != 0)
    return drop_unprivileged(u, error_r);

  groups = user_groups(u, extra_gid, &ngroups);
  rc = become(u->uid, u->gid, groups, ngroups, error_r);
  free(groups);
  return rc;
}

int privsep_drop_worker(uid_t uid, gid_t gid, const char *root_dir, const char **error_r)
{
  if (geteuid() != 0)
    return 0;
  if (uid == 0 || gid == 0) {
    *error_r = "the privsep user must not be root or in group 0";
    return -1;
  }
  if (root_dir != NULL && (chroot(root_dir) < 0 || chdir("/") < 0)) {
    snprintf(privsep_error, sizeof privsep_error, "chroot %s: %s", root_dir,
             strerror(errno));
    *error_r = privsep_error;
    return -1;
  }
  return become(uid, gid, NULL, 0, error_r);
}

/* ---- Messages ---------------------------------------------------------------------- */

#define HEADER 8u

void privsep_msg_init(struct privsep_msg *m, uint32_t type)
{
  m->type = type;
  m->len = 0;
  m->pos = 0;
  m->bad = false;
  m->nfds = 0;
}

static void put_raw(struct privsep_msg *m, const void *p, size_t n)
{
  if (m->bad || n > sizeof m->buf - m->len) {
    m->bad = true;
    return;
  }
  if (n > 0)
    memcpy(m->buf + m->len, p, n);
  m->len += n;
}

void privsep_put_u32(struct privsep_msg *m, uint32_t v)
{
  unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                         (unsigned char)(v >> 8), (unsigned char)v };

  put_raw(m, b, 4);
}

void privsep_put_bytes(struct privsep_msg *m, const void *p, size_t n)
{
  if (n > PRIVSEP_MSG_MAX) {
    m->bad = true;
    return;
  }
  privsep_put_u32(m, (uint32_t)n);
  put_raw(m, p, n);
}

void privsep_put_str(struct privsep_msg *m, const char *s)
{
  privsep_put_bytes(m, s, strlen(s) + 1);
}

void privsep_put_fd(struct privsep_msg *m, int fd)
{
  if (m->nfds == PRIVSEP_FDS_MAX) {
    m->bad = true;
    return;
  }
  m->fds[m->nfds++] = fd;
}

int privsep_get_u32(struct privsep_msg *m, uint32_t *v)
{
  const unsigned char *b;

  if (m->bad || m->len - m->pos < 4) {
    m->bad = true;
    return -1;
  }
  b = m->buf + m->pos;
  *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  m->pos += 4;
  return 0;
}

int privsep_get_bytes(struct privsep_msg *m, const unsigned char **p, size_t *n)
{
  uint32_t len;

  if (privsep_get_u32(m, &len) < 0)
    return -1;
  if (len > m->len - m->pos) {
    m->bad = true;
    return -1;
  }
  *p = m->buf + m->pos;
  *n = len;
  m->pos += len;
  return 0;
}

int privsep_get_str(struct privsep_msg *m, const char **s)
{
  const unsigned char *p;
  size_t n;

  if (privsep_get_bytes(m, &p, &n) < 0)
    return -1;
  if (n == 0 || p[n - 1] != '\0' || memchr(p, '\0', n - 1) != NULL) {
    m->bad = true;
    return -1;
  }
  *s = (const char *)p;
  return 0;
}

bool privsep_msg_done(const struct privsep_msg *m)
{
  return !m->bad && m->pos == m->len;
}

int privsep_msg_parse(struct privsep_msg *m, const void *data, size_t n)
{
  const unsigned char *b = data;
  uint32_t len;

  privsep_msg_init(m, 0);
  if (n < HEADER || n - HEADER > PRIVSEP_MSG_MAX)
    return -1;
  m->type = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  len = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
  if (len != n - HEADER)
    return -1;
  memcpy(m->buf, b + HEADER, len);
  m->len = len;
  return 0;
}

int privsep_send(int fd, const struct privsep_msg *m)
{
  unsigned char hdr[HEADER];
  struct iovec iov[2] = { { hdr, HEADER }, { (void *)m->buf, m->len } };
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * PRIVSEP_FDS_MAX)];
  } cm;
  struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
  ssize_t r;

  if (m->bad)
    return -1;
  for (int i = 0; i < 4; i++) {
    hdr[i] = (unsigned char)(m->type >> (24 - 8 * i));
    hdr[4 + i] = (unsigned char)((uint32_t)m->len >> (24 - 8 * i));
  }
  if (m->nfds > 0) {
    struct cmsghdr *c;

    memset(&cm, 0, sizeof cm);
    mh.msg_control = cm.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
    memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->nfds);
  }
  do
    r = sendmsg(fd, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r == (ssize_t)(HEADER + m->len) ? 0 : -1;
}

int privsep_recv(int fd, struct privsep_msg *m, int timeout_ms, const char **error_r)
{
  static unsigned char raw[HEADER + PRIVSEP_MSG_MAX + 1];
  struct iovec iov = { raw, sizeof raw };
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 8)];
  } cm;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                       .msg_controllen = sizeof cm.buf };
  struct pollfd p = { .fd = fd, .events = POLLIN };
  struct cmsghdr *c;
  ssize_t n;
  int r;

  privsep_msg_init(m, 0);
  do
    r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    *error_r = "timed out";
    return -1;
  }
  if (r < 0) {
    *error_r = strerror(errno);
    return -1;
  }
  do
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    *error_r = strerror(errno);
    return -1;
  }
  /* Take every descriptor that came, whatever else is wrong, so none leaks. */
  for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len >= CMSG_LEN(0)) {
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        if (m->nfds < PRIVSEP_FDS_MAX)
          m->fds[m->nfds++] = got;
        else
          close(got);
      }
    }
  }
  if (n == 0 && m->nfds == 0)
    return 0;
  if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n > HEADER + PRIVSEP_MSG_MAX) {
    *error_r = "message truncated or too long";
    privsep_msg_clear(m);
    return -1;
  }
  {
    size_t keep = m->nfds;
    int fds[PRIVSEP_FDS_MAX];

    memcpy(fds, m->fds, sizeof fds);
    r = privsep_msg_parse(m, raw, (size_t)n);
    memcpy(m->fds, fds, sizeof fds);
    m->nfds = keep;
  }
  util_wipe(raw, (size_t)n);
  if (r < 0) {
    *error_r = "malformed message header";
    privsep_msg_clear(m);
    return -1;
  }
  return 1;
}

void privsep_msg_clear(struct privsep_msg *m)
{
  util_wipe(m->buf, m->len);
  for (size_t i = 0; i < m->nfds; i++)
    if (m->fds[i] >= 0)
      close(m->fds[i]);
  m->nfds = 0;
  m->len = 0;
  m->pos = 0;
}

int privsep_call(int fd, struct privsep_msg *m, uint32_t want, const char **error_r)
{
  int r;

  if (privsep_send(fd, m) < 0) {
    *error_r = "can't send";
    util_wipe(m->buf, m->len);
    return -1;
  }
  util_wipe(m->buf, m->len);
  r = privsep_recv(fd, m, PARAMS_MONITOR_REPLY_TIMEOUT_MS, error_r);
  if (r == 1 && m->type == want)
    return 0;
  if (r == 0)
    *error_r = "the peer closed";
  else if (r == 1)
    *error_r = "unexpected message";
  privsep_msg_clear(m);
  return -1;
}
