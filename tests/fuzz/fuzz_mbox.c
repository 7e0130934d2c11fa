/* fuzz_mbox.c - the mbox scanner and UPDATE on arbitrary files.
 *
 * Every input is written to a file and opened; the messages must lie inside the file in
 * order, their sizes and lines must match a byte-by-byte transform of the size rule,
 * their ids must be valid and unique.  Then every other message is deleted: the rewritten
 * mailbox must hold exactly the kept messages, byte for byte (those whose id is Dovecot's
 * X-UID gain an X-UIDL header with that id when the file is rewritten, and keep that
 * id).  GPL-3.0-or-later. */
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
#include "uidl.h"

static char fuzz_path[96];

/* The size rule, the slow way. */
static uint64_t ref_size(const uint8_t *m, size_t len, uint64_t *lines_r)
{
  uint64_t out = 0, lines = 0;
  size_t i = 0;

  while (i < len) {
    size_t s = i, e;
    bool lf = false;
    while (i < len && m[i] != '\n')
      i++;
    e = i;
    if (i < len) {
      lf = true;
      i++;
    }
    out += e - s;
    if (e > s && m[s] == '>') {
      size_t q = s;
      while (q < e && m[q] == '>')
        q++;
      if (e - q >= 5 && memcmp(m + q, "From ", 5) == 0)
        out--;
    }
    if (lf) {
      out += (e > s && m[e - 1] == '\r') ? 1 : 2;
      lines++;
    } else if (e > s) {
      out += 2;
      lines++;
    }
  }
  *lines_r = lines;
  return out;
}

static uint8_t *slurp(const char *path, size_t *len_r)
{
  int fd = open(path, O_RDONLY);
  off_t n;
  uint8_t *buf;

  CHECK(fd >= 0);
  n = lseek(fd, 0, SEEK_END);
  CHECK(n >= 0);
  buf = malloc((size_t)n + 1);
  CHECK(buf != NULL);
  CHECK(pread(fd, buf, (size_t)n, 0) == (ssize_t)n);
  close(fd);
  *len_r = (size_t)n;
  return buf;
}

static void check_mailbox(const struct mailbox *mb, const uint8_t *data, size_t size)
{
  uint64_t total = 0;
  off_t prev_end = 0;

  for (size_t i = 0; i < mb->count; i++) {
    const struct mailbox_msg *m = &mb->msgs[i];
    uint64_t lines;
    CHECK(m->start >= prev_end && m->start <= m->end && (size_t)m->end <= size);
    CHECK(ref_size(data + m->start, (size_t)(m->end - m->start), &lines) == m->size);
    CHECK(lines == m->lines);
    total += m->size;
    prev_end = m->end;
  }
  CHECK(total == mb->total_size);
  fuzz_check_ids(mb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct conf c;
  struct mailbox mb, again;
  const char *err;
  size_t removed, kept = 0, nlen;
  uint8_t *now;

  if (fuzz_path[0] == '\0')
    snprintf(fuzz_path, sizeof fuzz_path, "%s/mbox", fuzz_tmpdir());
  /* A new file and no index (fuzz_mbox_index has the index): the last input's index
   * could match a file of the same inode, size and mtime tick. */
  fuzz_rm_rf(fuzz_tmpdir());
  CHECK(mkdir(fuzz_tmpdir(), 0700) == 0);
  fuzz_write_file(fuzz_path, data, size);

  memset(&c, 0, sizeof c);
  c.lock_type = CONF_LOCK_NULL;
  CHECK(mailbox_open(&mb, fuzz_path, &c, &err) == MAILBOX_OK);
  check_mailbox(&mb, data, size);

  for (size_t i = 0; i < mb.count; i++)
    if (i % 2 == 1)
      mb.msgs[i].flags |= MAILBOX_MSG_DELETED;
    else
      kept++;
  CHECK(mb.ops->update(&mb, &removed, &err) == MAILBOX_OK);
  CHECK(removed == mb.count - kept);

  now = slurp(fuzz_path, &nlen);
  CHECK(mailbox_open(&again, fuzz_path, &c, &err) == MAILBOX_OK);
  check_mailbox(&again, now, nlen);
  CHECK(again.count == kept);
  for (size_t i = 0, j = 0; i < mb.count; i += 2, j++) {
    const struct mailbox_msg *a = &mb.msgs[i], *b = &again.msgs[j];
    /* Dovecot's ids go into X-UIDL headers once the maildrop changes.  So do the other
     * ids of a maildrop with a Dovecot chain, whose X-UIDs the deletions may turn
     * trusted: every such id is the message's id still. */
    CHECK(!(a->flags & MAILBOX_MSG_XUID) || removed == 0 || (b->flags & MAILBOX_MSG_XUIDL));
    if (!(a->flags & MAILBOX_MSG_XUIDL) && (b->flags & MAILBOX_MSG_XUIDL) && removed > 0) {
      CHECK(strcmp(mailbox_uid(&mb, i), mailbox_uid(&again, j)) == 0);
      CHECK(b->end - b->start > a->end - a->start && b->lines > a->lines);
      continue;
    }
    CHECK(a->end - a->start == b->end - b->start);
    CHECK(memcmp(data + a->start, now + b->start, (size_t)(a->end - a->start)) == 0);
    CHECK(a->size == b->size && a->lines == b->lines);
  }
  mailbox_close(&again);
  mailbox_close(&mb);
  free(now);
  return 0;
}
