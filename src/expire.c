/* expire.c - X-Expire-Timestamp marks: reading them, trusting them, applying them.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <string.h>

#include "conf.h"
#include "expire.h"
#include "log.h"
#include "mailbox.h"

#define EXPIRE_TOKENS_MAX 8

struct expire_tok {
  const char *p;
  size_t n;
};

static bool tok_digits(const struct expire_tok *t, size_t min, size_t max, int *out)
{
  int v = 0;

  if (t->n < min || t->n > max)
    return false;
  for (size_t i = 0; i < t->n; i++) {
    if (t->p[i] < '0' || t->p[i] > '9')
      return false;
    v = v * 10 + (t->p[i] - '0');
  }
  *out = v;
  return true;
}

static int tok_month(const struct expire_tok *t)
{
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

  if (t->n != 3)
    return -1;
  for (int m = 0; m < 12; m++)
    if (memcmp(months + 3 * m, t->p, 3) == 0)
      return m;
  return -1;
}

static bool tok_weekday(const struct expire_tok *t)
{
  static const char days[] = "SunMonTueWedThuFriSat";

  if (t->n != 3)
    return false;
  for (int d = 0; d < 7; d++)
    if (memcmp(days + 3 * d, t->p, 3) == 0)
      return true;
  return false;
}

static bool tok_alpha(const struct expire_tok *t)
{
  if (t->n == 0 || t->n > 5)
    return false;
  for (size_t i = 0; i < t->n; i++)
    if (!((t->p[i] >= 'A' && t->p[i] <= 'Z') || (t->p[i] >= 'a' && t->p[i] <= 'z')))
      return false;
  return true;
}

/* "+hhmm" / "-hhmm": seconds east of UTC. */
static bool tok_offset(const struct expire_tok *t, long *off)
{
  int v;
  struct expire_tok d;

  if (t->n != 5 || (t->p[0] != '+' && t->p[0] != '-'))
    return false;
  d.p = t->p + 1;
  d.n = 4;
  if (!tok_digits(&d, 4, 4, &v) || v % 100 > 59 || v / 100 > 23)
    return false;
  *off = (long)(v / 100 * 3600 + v % 100 * 60) * (t->p[0] == '-' ? -1 : 1);
  return true;
}

/* "hh:mm" or "hh:mm:ss". */
static bool tok_time(const struct expire_tok *t, struct tm *tm)
{
  struct expire_tok h = { t->p, 2 }, m = { t->p + 3, 2 }, s = { t->p + 6, 2 };
  int hh, mm, ss = 0;

  if (t->n != 5 && t->n != 8)
    return false;
  if (t->p[2] != ':' || (t->n == 8 && t->p[5] != ':'))
    return false;
  if (!tok_digits(&h, 2, 2, &hh) || !tok_digits(&m, 2, 2, &mm) ||
      (t->n == 8 && !tok_digits(&s, 2, 2, &ss)))
    return false;
  if (hh > 23 || mm > 59 || ss > 60)
    return false;
  tm->tm_hour = hh;
  tm->tm_min = mm;
  tm->tm_sec = ss;
  return true;
}

bool expire_from_line_time(const char *line, size_t len, int64_t *t_r)
{
  struct expire_tok tok[EXPIRE_TOKENS_MAX];
  size_t nt = 0, i;
  const char *p, *e;
  struct tm tm;
  long offset = 0;
  bool have_offset = false;
  int year, mday, mon;
  time_t t;

  if (len < 5 || memcmp(line, "From ", 5) != 0)
    return false;
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    len--;
  /* The last EXPIRE_TOKENS_MAX tokens, right to left. */
  e = line + len;
  p = e;
  while (nt < EXPIRE_TOKENS_MAX && p > line + 5) {
    const char *end;
    while (p > line + 5 && (p[-1] == ' ' || p[-1] == '\t'))
      p--;
    end = p;
    while (p > line + 5 && p[-1] != ' ' && p[-1] != '\t')
      p--;
    if (end == p)
      break;
    tok[nt].p = p;
    tok[nt].n = (size_t)(end - p);
    nt++;
  }
  /* tok[0] is the last token.  Optional numeric offset after the year, or an
   * alphabetic zone between the time and the year. */
  i = 0;
  if (i < nt && tok_offset(&tok[i], &offset)) {
    have_offset = true;
    i++;
  }
  if (i >= nt || !tok_digits(&tok[i], 4, 4, &year) || year < 1970)
    return false;
  i++;
  if (i < nt && !have_offset && tok_offset(&tok[i], &offset)) {
    have_offset = true;
    i++;
  } else if (i < nt && tok_alpha(&tok[i])) {
    i++;
  }
  memset(&tm, 0, sizeof tm);
  if (i + 4 > nt)
    return false;
  if (!tok_time(&tok[i], &tm) || !tok_digits(&tok[i + 1], 1, 2, &mday) || mday < 1 ||
      mday > 31 || (mon = tok_month(&tok[i + 2])) < 0 || !tok_weekday(&tok[i + 3]))
    return false;
  tm.tm_mday = mday;
  tm.tm_mon = mon;
  tm.tm_year = year - 1900;
  tm.tm_isdst = -1;
  if (have_offset) {
    t = timegm(&tm);
    if (t == (time_t)-1)
      return false;
    t -= offset;
  } else {
    t = mktime(&tm);
    if (t == (time_t)-1)
      return false;
  }
  *t_r = (int64_t)t;
  return true;
}

bool expire_parse_mark(const char *v, size_t len, int64_t *t_r)
{
  const char *e = v + len;
  int64_t t = 0;
  size_t digits = 0;

  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
    e--;
  for (; v < e; v++, digits++) {
    if (*v < '0' || *v > '9' || digits >= 18)
      return false;
    t = t * 10 + (*v - '0');
  }
  if (digits == 0)
    return false;
  *t_r = t;
  return true;
}

bool expire_mark_trusted(int64_t mark, int64_t delivery, int64_t now)
{
  return delivery > 0 && mark >= delivery && mark <= now;
}

void expire_log_ignored(const char *what, const char *id)
{
  log_msg(LOG_NOTICE, "%s: message %s: its " EXPIRE_HEADER " is ignored: it came after "
          "pop3d adopted the mailbox, so the mark is not pop3d's", what, id);
}

bool expire_delete_on(const struct conf *c)
{
  return c->expire >= 0 && (c->delete_expired || c->expire == 0);
}

size_t expire_prepare_update(struct mailbox *mb, const struct conf *c, time_t now)
{
  size_t expired = 0;
  bool del = expire_delete_on(c);
  int64_t period;

  if (c->expire < 0)
    return 0;
  period = (int64_t)c->expire * 86400;
  mb->mark_time = (int64_t)now;
  for (size_t i = 0; i < mb->count; i++) {
    struct mailbox_msg *m = &mb->msgs[i];
    int64_t mark = m->expire_mark;

    if (m->flags & MAILBOX_MSG_DELETED)
      continue;
    if ((m->flags & MAILBOX_MSG_RETRIEVED) && mark == 0) {
      m->flags |= MAILBOX_MSG_MARK;
      mark = (int64_t)now;
    }
    if (del && mark > 0 && mark + period <= (int64_t)now) {
      m->flags |= MAILBOX_MSG_DELETED;
      expired++;
    }
  }
  return expired;
}
