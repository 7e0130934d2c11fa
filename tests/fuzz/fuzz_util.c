/* fuzz_util.c - what the fuzz targets share (fuzz.h).  GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "mailbox.h"
#include "uidl.h"

static char tmpdir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path) == 0 ? 0 : -1;
}

void fuzz_rm_rf(const char *path)
{
  CHECK(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 || access(path, F_OK) < 0);
}

static void tmpdir_cleanup(void)
{
  fuzz_rm_rf(tmpdir);
}

const char *fuzz_tmpdir(void)
{
  if (tmpdir[0] == '\0') {
    strcpy(tmpdir, "/dev/shm/pop3d-fuzz.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
      strcpy(tmpdir, "/tmp/pop3d-fuzz.XXXXXX");
      CHECK(mkdtemp(tmpdir) != NULL);
    }
    atexit(tmpdir_cleanup);
  }
  return tmpdir;
}

void fuzz_write_file(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  CHECK(fd >= 0);
  CHECK(util_write_all(fd, data, len) == 0);
  CHECK(close(fd) == 0);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void fuzz_check_ids(const struct mailbox *mb)
{
  const char **ids = malloc((mb->count + 1) * sizeof *ids);

  CHECK(ids != NULL);
  for (size_t i = 0; i < mb->count; i++) {
    ids[i] = mailbox_uid(mb, i);
    CHECK(uidl_valid(ids[i], strlen(ids[i])));
  }
  qsort(ids, mb->count, sizeof *ids, cmp_str);
  for (size_t i = 1; i < mb->count; i++)
    CHECK(strcmp(ids[i - 1], ids[i]) != 0);
  free(ids);
}
