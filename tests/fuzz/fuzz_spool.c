/* fuzz_spool.c - what the monitor (root) does for a user's session in a shared spool:
 * the session's requests are decoded (monitor_decode_spool()), checked against the
 * maildrop's names (spool_name_allowed()) and carried out (spool_serve()) in a real
 * directory, as serve_session() does.  The session is the user's process, so every byte
 * is hostile; the target checks that whatever it asks, nothing but the maildrop's own
 * names changes: another user's maildrop and dotlock, a symbolic link to a file outside
 * and that file stay as they were.
 *
 * Input: the session's datagrams, each behind a two-byte big-endian length.  The
 * maildrop is "mbox" in the spool directory.  GPL-3.0-or-later. */
#include <config.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "monitor.h"
#include "privsep.h"
#include "spool.h"

#define BASE "mbox"
#define REQUESTS_MAX 16

static char spool[512], outside[512];

static void put(const char *dir, const char *name, const char *text)
{
  char path[600];

  snprintf(path, sizeof path, "%s/%s", dir, name);
  fuzz_write_file(path, text, strlen(text));
}

static bool holds(const char *dir, const char *name, const char *text)
{
  char path[600], buf[64];
  ssize_t n;
  int fd;

  snprintf(path, sizeof path, "%s/%s", dir, name);
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = read(fd, buf, sizeof buf);
  close(fd);
  return n == (ssize_t)strlen(text) && memcmp(buf, text, (size_t)n) == 0;
}

/* May this name be in the spool after the session's requests?  The others' files, and
 * the maildrop's own names (spool.h). */
static bool name_ok(const char *name)
{
  static const char *const theirs[] = { ".", "..", "other", "other.lock", "link",
                                        ".other.pop3d-index" };

  for (size_t i = 0; i < sizeof theirs / sizeof theirs[0]; i++)
    if (strcmp(name, theirs[i]) == 0)
      return true;
  return strcmp(name, BASE) == 0 || strcmp(name, ".mbox.pop3d-index") == 0 ||
         spool_name_allowed(SPOOL_CREATE, BASE, name, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct privsep_msg *m = malloc(sizeof *m);
  struct stat st;
  DIR *d;
  struct dirent *e;
  int dirfd, nreq = 0;

  CHECK(m != NULL);
  snprintf(spool, sizeof spool, "%s/spool", fuzz_tmpdir());
  snprintf(outside, sizeof outside, "%s/outside", fuzz_tmpdir());
  fuzz_rm_rf(spool);
  fuzz_rm_rf(outside);
  CHECK(mkdir(spool, 0775) == 0);
  CHECK(mkdir(outside, 0700) == 0);
  put(spool, BASE, "mine");
  put(spool, "other", "theirs");
  put(spool, "other.lock", "lock");
  put(spool, ".other.pop3d-index", "index");
  put(outside, "secret", "secret");
  {
    char target[600], link[600];

    snprintf(target, sizeof target, "%s/secret", outside);
    snprintf(link, sizeof link, "%s/link", spool);
    CHECK(symlink(target, link) == 0);
  }
  dirfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(dirfd >= 0);

  while (size >= 2 && nreq++ < REQUESTS_MAX) {
    size_t len = (size_t)data[0] << 8 | data[1];
    struct monitor_spool_req q;

    data += 2;
    size -= 2;
    if (len > size)
      len = size;
    if (privsep_msg_parse(m, data, len) == 0 && monitor_decode_spool(m, &q) == 0) {
      /* What the request names lies inside the message. */
      CHECK(q.name >= (const char *)m->buf && q.name + strlen(q.name) < (const char *)m->buf + m->len);
      if (spool_name_allowed((enum spool_op)q.op, BASE, q.name, q.to)) {
        int fd = -1;

        CHECK(strchr(q.name, '/') == NULL && (q.to == NULL || strchr(q.to, '/') == NULL));
        (void)spool_serve(dirfd, BASE, getuid(), (enum spool_op)q.op, q.name, q.to, &fd);
        if (fd >= 0) {
          /* What the session would write into a file it was given. */
          CHECK(write(fd, "new", 3) == 3);
          close(fd);
        }
      }
    }
    data += len;
    size -= len;
  }
  /* spool_serve() keeps the last nameless file for SPOOL_LINKFD: start every input
   * with the same state (a fresh one, which goes with this spool). */
  {
    int fd = -1;

    (void)spool_serve(dirfd, BASE, getuid(), SPOOL_TMPFILE, "", NULL, &fd);
    if (fd >= 0)
      close(fd);
  }

  CHECK(holds(spool, "other", "theirs"));
  CHECK(holds(spool, "other.lock", "lock"));
  CHECK(holds(spool, ".other.pop3d-index", "index"));
  CHECK(holds(outside, "secret", "secret"));
  CHECK(fstatat(dirfd, "link", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
  d = fdopendir(dirfd);
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL)
    CHECK(name_ok(e->d_name));
  closedir(d);
  d = opendir(outside);
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL)
    CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
          strcmp(e->d_name, "secret") == 0);
  closedir(d);
  free(m);
  return 0;
}
