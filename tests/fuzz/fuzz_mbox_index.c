/* fuzz_mbox_index.c - the mbox index loader on images that pass its checksum.
 *
 * An mbox (one of four, picked by bits 0-1 of the first byte) is opened once, which writes
 * its index; with bit 2 a message is then appended (the index loads as "grew" and the
 * last indexed message is scanned again).  The index image gets the input's bytes from
 * the offset its second and third bytes give (bit 3: the image then ends where they
 * end), is made to fit the maildrop (mbox_index_seal: key, tail hash, checksum) and the
 * maildrop is opened again: whatever the index says, the open must succeed with
 * messages that lie inside the file in order, valid unique ids and sizes that add up,
 * each one readable; then UPDATE runs on it.  An untouched index must give what a full
 * scan gives.  GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"
#include "mailbox.h"
#include "mbox_index.h"
#include "params.h"
#include "uidl.h"

static const char *const mboxes[] = {
  "From a@example.org Mon Jan  1 00:00:00 2026\nSubject: one\n\nbody one\n\n"
  "From b@example.org Mon Jan  1 00:00:01 2026\nSubject: two\n\nbody two\nmore\n\n"
  "From c@example.org Mon Jan  1 00:00:02 2026\nSubject: three\n\n>From quoted\n",
  "From a@example.org Mon Jan  1 00:00:00 2026\nX-UIDL: first-id\nStatus: RO\n\nhello\n\n"
  "From b@example.org Mon Jan  1 00:00:01 2026\nX-UIDL: first-id\nStatus: D\n\nagain\n\n"
  "From c@example.org Mon Jan  1 00:00:02 2026\nX-Expire-Timestamp: 1700000000\n\nold\n",
  "From a@example.org Mon Jan  1 00:00:00 2026\nX-IMAPbase: 1700000000 5\nX-UID: 3\n\none\n\n"
  "From b@example.org Mon Jan  1 00:00:01 2026\nX-UID: 4\n\ntwo\n\n",
  "preamble without a From_ line\r\n\r\n"
  "From x@example.org Mon Jan  1 00:00:00 2026\r\nSubject: crlf\r\n\r\nline\r\n",
};
static const char appended[] =
  "\nFrom d@example.org Mon Jan  1 00:00:03 2026\nSubject: new\n\nnew mail\n";

static char mbox_path[96], index_path[128];

static char *listing(const struct mailbox *mb)
{
  size_t cap = 256 + mb->count * (64 + PARAMS_UIDL_MAX), len = 0;
  char *out = malloc(cap);

  CHECK(out != NULL);
  len += (size_t)snprintf(out, cap, "%zu %llu\n", mb->count,
                          (unsigned long long)mb->total_size);
  for (size_t i = 0; i < mb->count; i++)
    len += (size_t)snprintf(out + len, cap - len, "%lld %lld %llu %u %s\n",
                            (long long)mb->msgs[i].start, (long long)mb->msgs[i].end,
                            (unsigned long long)mb->msgs[i].size, mb->msgs[i].lines,
                            mailbox_uid(mb, i));
  return out;
}

static void check_mailbox(struct mailbox *mb, off_t file_size)
{
  uint64_t total = 0;
  off_t prev_end = 0;

  for (size_t i = 0; i < mb->count; i++) {
    const struct mailbox_msg *m = &mb->msgs[i];
    const char *err = NULL;
    int fd;

    CHECK(m->start >= prev_end && m->start <= m->end && m->end <= file_size);
    CHECK(m->uid < mb->uids_len);
    CHECK(mb->ops->msg_fd(mb, i, &fd, &err) == 0 && fd >= 0);
    total += m->size;
    prev_end = m->end;
  }
  CHECK(total == mb->total_size);
  fuzz_check_ids(mb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  unsigned opts = size > 0 ? data[0] : 0;
  const char *text = mboxes[opts & 3], *err = NULL;
  size_t off = size > 2 ? (size_t)data[1] | (size_t)data[2] << 8 : 0;
  size_t patch = size > 3 ? size - 3 : 0, ilen, removed = 0;
  struct conf c;
  struct mailbox mb;
  struct stat st;
  char *want, *got;
  uint8_t *img;
  int fd;

  if (mbox_path[0] == '\0') {
    char *ip;
    snprintf(mbox_path, sizeof mbox_path, "%s/mbox", fuzz_tmpdir());
    ip = mbox_index_path(mbox_path);
    CHECK(ip != NULL && strlen(ip) < sizeof index_path);
    strcpy(index_path, ip);
    free(ip);
  }
  memset(&c, 0, sizeof c);
  c.lock_type = CONF_LOCK_NULL;
  unlink(index_path);
  unlink(mbox_path);   /* a new inode: the last input's index can't match by chance */
  fuzz_write_file(mbox_path, text, strlen(text));
  CHECK(mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK);
  mailbox_close(&mb);
  if (opts & 4) {
    fd = open(mbox_path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && util_write_all(fd, appended, sizeof appended - 1) == 0 && close(fd) == 0);
  }
  /* What a full scan says, the index written by the first open put aside. */
  {
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.saved", index_path);
    CHECK(rename(index_path, tmp) == 0);
    CHECK(mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK);
    want = listing(&mb);
    mailbox_close(&mb);
    CHECK(rename(tmp, index_path) == 0);
  }

  /* The image, patched and made to fit. */
  fd = open(index_path, O_RDONLY);
  CHECK(fd >= 0 && fstat(fd, &st) == 0);
  ilen = (size_t)st.st_size;
  off = off % (ilen + 1);
  if (opts & 8)
    ilen = off + patch;
  else if (off + patch > ilen)
    ilen = off + patch;
  img = calloc(1, ilen + 1);
  CHECK(img != NULL);
  CHECK(pread(fd, img, ilen, 0) >= 0);
  close(fd);
  if (patch > 0)
    memcpy(img + off, data + 3, patch);
  fd = open(mbox_path, O_RDONLY);
  CHECK(fd >= 0 && fstat(fd, &st) == 0);
  (void)mbox_index_seal(img, ilen, fd, &st);
  close(fd);
  fuzz_write_file(index_path, img, ilen);
  free(img);

  CHECK(mailbox_open(&mb, mbox_path, &c, &err) == MAILBOX_OK);
  check_mailbox(&mb, st.st_size);
  got = listing(&mb);
  if (patch == 0 && !(opts & 8))
    CHECK(strcmp(want, got) == 0);
  for (size_t i = 0; i < mb.count; i += 2)
    mb.msgs[i].flags |= MAILBOX_MSG_DELETED;
  (void)mb.ops->update(&mb, &removed, &err);
  mailbox_close(&mb);
  free(want);
  free(got);
  return 0;
}
