/* fuzz_session.c - the command loop: a whole scripted session, every state.
 *
 * The input is what a client sends, line by line (pipelined: it is all there from the
 * start).  The session reads it from memory and writes to memory, as the worker's loop
 * does in AUTHORIZATION: greeting, CAPA, USER/PASS, APOP, AUTH (PLAIN, LOGIN,
 * CRAM-MD5, SCRAM-SHA-256 exchanges), STLS refused, QUIT, bad commands, lines too long or
 * with NULs.  Credentials go to a monitor played by a thread over the real message
 * socket (privsep.h), which answers by rule, so that the corpus can log in:
 *   PASS / PLAIN / LOGIN  password "secret": logged in; "temp", "perm", "delay": that
 *                         refusal; "bye": refused and the session closed; else refused;
 *   APOP / CRAM-MD5       a digest that starts with 0: logged in;
 *   SCRAM-SHA-256         user "alice": the proof holds.
 * A login is then taken over as the session process does after the hand-over: the
 * maildrop (mbox, Maildir or MH, a few messages) is opened and the rest of the input runs
 * in TRANSACTION (STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, CAPA) and UPDATE (QUIT).
 * An optional first line `#LETTERS' sets the stage: d Maildir, h MH (else mbox),
 * a APOP offered, r tls-mode required, x scan-lines, u undelete, e expire now, l
 * login-delay.  Checks: every line the server writes ends in CRLF, and after a QUIT that
 * went well the maildrop holds the messages not deleted.  FUZZ_SESSION_SHOW set in the
 * environment shows what the server answered.  Not reached: TLS (STLS and
 * POP3S need a certificate and a TLS client), the hand-over of descriptors to the session
 * process, the privilege drop and bulletins (fuzz_monitor covers the monitor's decoding
 * of the worker's messages).  GPL-3.0-or-later. */
#include <config.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "dispatch.h"
#include "fuzz.h"
#include "log.h"
#include "mailbox.h"
#include "privsep.h"
#include "proto.h"
#include "sasl.h"
#include "session.h"

static const char *const messages[] = {
  "From: a@example.org\nSubject: one\nX-UIDL: uid-one\n\nfirst body\n.\n..dots\n",
  "From: b@example.org\nSubject: two\nStatus: RO\n\nsecond\r\nbody\r\n",
  ("From: c@example.org\nSubject: three\nX-Expire-Timestamp: 1600000000\n\n"
   "third body\nFrom here\n>From there\n"),
  "From: d@example.org\nSubject: four\n\n",
};
#define NMSG (sizeof messages / sizeof messages[0])

static char drop_path[96];
static int monitor_fd = -1, in_fd = -1, out_fd = -1;
static struct conf conf;

/* ---- The monitor, by rule ------------------------------------------------------------ */

static void result(struct privsep_msg *m, uint32_t r, uint32_t close_it)
{
  privsep_msg_init(m, PS_RESULT);
  privsep_put_u32(m, r);
  privsep_put_u32(m, close_it);
}

static void answer(struct privsep_msg *m)
{
  const char *a = NULL, *b = NULL, *c = NULL;

  switch (m->type) {
  case PS_PASS:
    if (privsep_get_str(m, &a) < 0 || privsep_get_str(m, &b) < 0 ||
        privsep_get_str(m, &c) < 0)
      result(m, PS_R_TEMP, 1);
    else if (strcmp(c, "secret") == 0)
      result(m, PS_R_OK, 0);
    else if (strcmp(c, "temp") == 0)
      result(m, PS_R_TEMP, 0);
    else if (strcmp(c, "perm") == 0)
      result(m, PS_R_PERM, 0);
    else if (strcmp(c, "delay") == 0)
      result(m, PS_R_LOGIN_DELAY, 0);
    else
      result(m, PS_R_FAIL, strcmp(c, "bye") == 0);
    break;
  case PS_APOP:
  case PS_CRAM:
    if (privsep_get_str(m, &a) < 0 || privsep_get_str(m, &b) < 0)
      result(m, PS_R_TEMP, 1);
    else
      result(m, b[0] == '0' ? PS_R_OK : PS_R_FAIL, 0);
    break;
  case PS_CRAM_START:
    privsep_msg_init(m, PS_CHALLENGE);
    privsep_put_str(m, "<4242.1700000000@fuzz.example.org>");
    break;
  case PS_SCRAM_START: {
    unsigned char salt[SCRAM_SALT_SIZE];
    memset(salt, 0x5a, sizeof salt);
    privsep_msg_init(m, PS_SCRAM_PARAMS);
    privsep_put_bytes(m, salt, sizeof salt);
    privsep_put_str(m, "fuzzservernonce");
    privsep_put_u32(m, 4096);
    break;
  }
  case PS_SCRAM_VERIFY:
    if (privsep_get_str(m, &a) == 0 && strcmp(a, "alice") == 0) {
      result(m, PS_R_OK, 0);
      privsep_put_str(m, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    } else {
      result(m, PS_R_FAIL, 0);
    }
    break;
  case PS_SCRAM_DONE:
    result(m, PS_R_OK, 0);
    break;
  default:
    result(m, PS_R_TEMP, 1);
    break;
  }
}

static void *monitor_thread(void *arg)
{
  int fd = *(const int *)arg;
  struct privsep_msg *m = util_xmalloc(sizeof *m);
  const char *err = NULL;

  for (;;) {
    int r = privsep_recv(fd, m, -1, &err);
    if (r <= 0) {
      fprintf(stderr, "fuzz_session: monitor: %s\n", r == 0 ? "worker gone" : err);
      abort();
    }
    answer(m);
    CHECK(privsep_send(fd, m) == 0);
  }
  return NULL;
}

/* ---- Maildrops ------------------------------------------------------------------------- */

static void put_file(const char *path, const char *text)
{
  fuzz_write_file(path, text, strlen(text));
}

/* A fresh maildrop of kind 'm' (mbox), 'd' (Maildir) or 'h' (MH); its URL. */
static const char *make_drop(char kind)
{
  static char url[128];
  char path[160];

  fuzz_rm_rf(drop_path);
  if (kind == 'm') {
    char *all = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&all, &len);
    CHECK(f != NULL);
    for (size_t i = 0; i < NMSG; i++)
      fprintf(f, "From x@example.org Mon Jan  1 00:00:0%zu 2026\n%s\n", i, messages[i]);
    CHECK(fclose(f) == 0);
    put_file(drop_path, all);
    free(all);
    snprintf(url, sizeof url, "mbox:%s", drop_path);
    return url;
  }
  CHECK(mkdir(drop_path, 0700) == 0);
  if (kind == 'd') {
    static const char *const sub[] = { "new", "cur", "tmp" };
    for (size_t i = 0; i < 3; i++) {
      snprintf(path, sizeof path, "%s/%s", drop_path, sub[i]);
      CHECK(mkdir(path, 0700) == 0);
    }
    for (size_t i = 0; i < NMSG; i++) {
      snprintf(path, sizeof path, "%s/%s/170000000%zu.M%zuP1.fuzz%s", drop_path,
               i % 2 ? "cur" : "new", i, i, i % 2 ? ":2,S" : "");
      put_file(path, messages[i]);
    }
    snprintf(url, sizeof url, "maildir:%s", drop_path);
  } else {
    for (size_t i = 0; i < NMSG; i++) {
      snprintf(path, sizeof path, "%s/%zu", drop_path, i + 1);
      put_file(path, messages[i]);
    }
    snprintf(path, sizeof path, "%s/.mh_sequences", drop_path);
    put_file(path, "unseen: 2-4\n");
    snprintf(url, sizeof url, "mh:%s", drop_path);
  }
  return url;
}

/* ---- The session ------------------------------------------------------------------------ */

static void setup(void)
{
  static int monitor_end;
  int sv[2];
  pthread_t th;

  snprintf(drop_path, sizeof drop_path, "%s/drop", fuzz_tmpdir());
  log_open("fuzz_session", LOG_MAIL, false, false, LOG_CRIT);
  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
  monitor_fd = sv[0];
  monitor_end = sv[1];
  CHECK(pthread_create(&th, NULL, monitor_thread, &monitor_end) == 0);
  CHECK(pthread_detach(th) == 0);
  in_fd = memfd_create("fuzz-session-in", MFD_CLOEXEC);
  out_fd = memfd_create("fuzz-session-out", MFD_CLOEXEC);
  CHECK(in_fd >= 0 && out_fd >= 0);
  conf_init(&conf);
  conf.lock_type = CONF_LOCK_NULL;
}

/* Every line written ends in CRLF. */
static void check_output(void)
{
  off_t n = lseek(out_fd, 0, SEEK_END);
  char *buf;

  CHECK(n >= 0);
  if (n == 0)
    return;
  buf = mmap(NULL, (size_t)n, PROT_READ, MAP_PRIVATE, out_fd, 0);
  CHECK(buf != MAP_FAILED);
  if (getenv("FUZZ_SESSION_SHOW") != NULL)   /* to see what a corpus file does */
    fwrite(buf, 1, (size_t)n, stderr);
  CHECK(buf[n - 1] == '\n');
  for (off_t i = 0; i < n; i++)
    if (buf[i] == '\n')
      CHECK(i > 0 && buf[i - 1] == '\r');
  munmap(buf, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct session s;
  const char *opts = "", *url, *err = NULL;
  size_t skip = 0, before = 0;
  char kind = 'm', optbuf[32] = "";
  struct mailbox mb;

  if (monitor_fd < 0)
    setup();
  /* The stage. */
  if (size > 0 && data[0] == '#') {
    const uint8_t *nl = memchr(data, '\n', size);
    skip = nl ? (size_t)(nl - data) + 1 : size;
    snprintf(optbuf, sizeof optbuf, "%.*s", (int)(skip - 1), (const char *)data + 1);
    opts = optbuf;
  }
  if (strchr(opts, 'd'))
    kind = 'd';
  else if (strchr(opts, 'h'))
    kind = 'h';
  url = make_drop(kind);
  conf.scan_lines = strchr(opts, 'x') != NULL;
  conf.undelete = strchr(opts, 'u') != NULL;
  conf.expire = strchr(opts, 'e') ? 0 : -1;
  conf.delete_expired = conf.expire == 0;
  conf.login_delay = strchr(opts, 'l') ? 60 : 0;
  conf.tls_mode = strchr(opts, 'r') ? CONF_TLS_REQUIRED : CONF_TLS_UNSET;

  CHECK(ftruncate(in_fd, 0) == 0 && ftruncate(out_fd, 0) == 0);
  CHECK(pwrite(in_fd, data + skip, size - skip, 0) == (ssize_t)(size - skip));
  CHECK(lseek(in_fd, 0, SEEK_SET) == 0 && lseek(out_fd, 0, SEEK_SET) == 0);

  /* AUTHORIZATION, as the worker runs it. */
  session_init(&s, &conf, NULL, in_fd, out_fd, "fuzz-client", "fuzz-server");
  s.monitor_fd = monitor_fd;
  s.apop = strchr(opts, 'a') != NULL;
  snprintf(s.stamp, sizeof s.stamp, "<4242.1700000000@fuzz.example.org>");
  session_authorization(&s);

  /* A login: TRANSACTION and UPDATE, as the session process runs them, on the same
   * transport (what the client sent ahead is still in it). */
  if (s.handoff) {
    s.handoff = false;
    s.authenticated = true;
    s.auth.name = util_xstrdup("alice");
    s.auth.uid = geteuid();
    s.auth.gid = getegid();
    s.auth.mailbox = util_xstrdup(url);
    if (mailbox_open(&s.mb, url, &conf, &err) == MAILBOX_OK) {
      s.mb_open = true;
      s.state = SESSION_TRANSACTION;
      before = s.mb.count;
      proto_status(&s.t, true, NULL, "opened mailbox for alice");
      dispatch_loop(&s);
    } else {
      proto_status(&s.t, false, "SYS/PERM", "Cannot open mailbox");
    }
  }
  transport_close(&s.t);
  (void)session_finish(&s);
  check_output();
  if (s.end == SESSION_END_QUIT && s.state == SESSION_UPDATE && !s.update_failed) {
    CHECK(mailbox_open(&mb, url, &conf, &err) == MAILBOX_OK);
    CHECK(mb.count == before - s.n_deleted);
    mailbox_close(&mb);
  }
  session_free(&s);
  return 0;
}
