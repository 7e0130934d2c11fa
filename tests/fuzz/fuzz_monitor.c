/* fuzz_monitor.c - the monitor's decoder of its worker's messages: a datagram is parsed,
 * decoded and checked for order in every phase, as the monitor does before it acts on
 * anything.  GPL-3.0-or-later. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "monitor.h"
#include "params.h"
#include "privsep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct privsep_msg *m = malloc(sizeof *m);
  struct monitor_req r;

  if (m != NULL && privsep_msg_parse(m, data, size) == 0) {
    /* Descriptors come with a hand-over; pretend two came, so that path runs too. */
    if (m->type == PS_HANDOFF) {
      m->fds[0] = m->fds[1] = -1;
      m->nfds = 2;
    }
    if (monitor_decode(m, &r) == 0) {
      for (int ph = MONITOR_PREAUTH; ph <= MONITOR_AUTHED; ph++)
        (void)monitor_allowed((enum monitor_phase)ph, r.type);
      /* What a decoded request points at lies inside the message. */
      if (r.bytes != NULL && (r.bytes < m->buf || r.bytes + r.nbytes > m->buf + m->len))
        abort();
      if (r.user != NULL && strlen(r.user) > PARAMS_USER_MAX)
        abort();
    }
    m->nfds = 0;
  }
  free(m);
  return 0;
}
