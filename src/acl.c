/* acl.c - the `acl' statement and tcp-wrappers, checked in the session child.
 * libwrap itself is in the module tcpwrap.so (src/mod_tcpwrap.c).
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acl.h"
#include "log.h"
#include "module.h"

/* The client as one family and address: an IPv4-mapped IPv6 address (a dual-stack
 * listener's IPv4 client) is the IPv4 address it carries, so that IPv4 rules apply. */
struct client {
  int family;
  unsigned char addr[16];
  unsigned port;
};

static bool client_of(const struct sockaddr *sa, socklen_t len, struct client *out)
{
  memset(out, 0, sizeof *out);
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

    out->family = AF_INET;
    memcpy(out->addr, &in->sin_addr, 4);
    out->port = ntohs(in->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

    out->port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      out->family = AF_INET;
      memcpy(out->addr, in6->sin6_addr.s6_addr + 12, 4);
    } else {
      out->family = AF_INET6;
      memcpy(out->addr, in6->sin6_addr.s6_addr, 16);
    }
    return true;
  }
  return false;
}

static size_t family_size(int family)
{
  return family == AF_INET ? 4 : 16;
}

static void prefix_mask(unsigned char *mask, size_t size, unsigned bits)
{
  memset(mask, 0, 16);
  for (size_t i = 0; i < size && bits > 0; i++) {
    unsigned b = bits >= 8 ? 8 : bits;

    mask[i] = (unsigned char)(0xff00u >> b);
    bits -= b;
  }
}

int acl_addr_parse(const char *s, struct acl_addr *out, const char **error_r)
{
  char host[256];
  const char *slash = strchr(s, '/');
  size_t hl = slash ? (size_t)(slash - s) : strlen(s);
  unsigned bits;

  memset(out, 0, sizeof *out);
  if (strcmp(s, "any") == 0) {
    out->kind = ACL_ADDR_ANY;
    return 0;
  }
  if (hl == 0 || hl >= sizeof host) {
    *error_r = "empty or too long address";
    return -1;
  }
  memcpy(host, s, hl);
  host[hl] = '\0';
  out->kind = ACL_ADDR_NET;
  if (inet_pton(AF_INET, host, out->addr) == 1)
    out->family = AF_INET;
  else if (inet_pton(AF_INET6, host, out->addr) == 1)
    out->family = AF_INET6;
  else if (slash == NULL) {
    /* A host name: resolved when matched, in the child, so that it follows DNS and a
     * slow resolver never holds up the listener. */
    out->kind = ACL_ADDR_HOST;
    snprintf(out->host, sizeof out->host, "%s", host);
    return 0;
  } else {
    *error_r = "a mask needs a numeric address";
    return -1;
  }
  if (slash == NULL) {
    prefix_mask(out->mask, family_size(out->family), out->family == AF_INET ? 32 : 128);
  } else if (util_parse_uint(slash + 1, 0, out->family == AF_INET ? 32 : 128, &bits,
                             error_r) == 0) {
    prefix_mask(out->mask, family_size(out->family), bits);
  } else if (out->family == AF_INET && inet_pton(AF_INET, slash + 1, out->mask) == 1) {
    /* the dotted netmask form, 192.0.2.0/255.255.255.0 */
  } else {
    *error_r = "invalid mask";
    return -1;
  }
  for (size_t i = 0; i < 16; i++)
    out->addr[i] &= out->mask[i];
  return 0;
}

int acl_source_key(const struct sockaddr *sa, socklen_t len, unsigned bits4,
                   unsigned bits6, char *out, size_t outlen)
{
  struct client c;
  unsigned char mask[16];
  char text[INET6_ADDRSTRLEN];
  unsigned bits;
  int n;

  if (!client_of(sa, len, &c))
    return -1;
  bits = c.family == AF_INET ? (bits4 > 32 ? 32 : bits4) : (bits6 > 128 ? 128 : bits6);
  prefix_mask(mask, family_size(c.family), bits);
  for (size_t i = 0; i < 16; i++)
    c.addr[i] &= mask[i];
  if (inet_ntop(c.family, c.addr, text, sizeof text) == NULL)
    return -1;
  n = snprintf(out, outlen, "%s/%u", text, bits);
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static bool net_match(const struct acl_addr *a, const struct client *c)
{
  if (a->family != c->family)
    return false;
  for (size_t i = 0; i < family_size(c->family); i++)
    if ((c->addr[i] & a->mask[i]) != a->addr[i])
      return false;
  return true;
}

static bool host_match(const char *host, const struct client *c)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL;
  bool found = false;

  if (getaddrinfo(host, NULL, &hints, &res) != 0)
    return false;
  for (const struct addrinfo *ai = res; ai != NULL && !found; ai = ai->ai_next) {
    struct client h;

    if (client_of(ai->ai_addr, ai->ai_addrlen, &h) && h.family == c->family &&
        memcmp(h.addr, c->addr, family_size(c->family)) == 0)
      found = true;
  }
  freeaddrinfo(res);
  return found;
}

bool acl_addr_match(const struct acl_addr *a, const struct sockaddr *sa, socklen_t len)
{
  struct client c;

  if (a->kind == ACL_ADDR_ANY)
    return true;
  if (!client_of(sa, len, &c))
    return false;
  if (a->kind == ACL_ADDR_NET)
    return net_match(a, &c);
  return host_match(a->host, &c);
}

static bool is_word(char ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static const char *family_name(int family)
{
  switch (family) {
  case AF_INET: return "AF_INET";
  case AF_INET6: return "AF_INET6";
  case AF_UNIX: return "AF_UNIX";
  default: return "UNKNOWN";
  }
}

static void client_text(const struct sockaddr *sa, socklen_t len, char *addr, size_t alen,
                        unsigned *port, int *family)
{
  struct client c;

  *port = 0;
  *family = sa->sa_family;
  snprintf(addr, alen, "unknown");
  if (client_of(sa, len, &c)) {
    *family = c.family;
    *port = c.port;
    if (inet_ntop(c.family, c.addr, addr, (socklen_t)alen) == NULL)
      snprintf(addr, alen, "unknown");
  } else if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;

    snprintf(addr, alen, "%.*s", (int)sizeof un->sun_path,
             len > offsetof(struct sockaddr_un, sun_path) ? un->sun_path : "");
  }
}

char *acl_expand(const char *tmpl, unsigned aclno, const struct sockaddr *sa,
                 socklen_t len)
{
  char addr[INET6_ADDRSTRLEN + 110], num[2][16];
  unsigned port;
  int family;
  const struct { const char *name; const char *value; } vars[] = {
    { "aclno", num[0] }, { "address", addr }, { "port", num[1] }, { "family", NULL },
  };
  size_t cap = strlen(tmpl) + 1, n = 0;
  char *out;

  client_text(sa, len, addr, sizeof addr, &port, &family);
  snprintf(num[0], sizeof num[0], "%u", aclno);
  snprintf(num[1], sizeof num[1], "%u", port);
  out = util_xmalloc(cap);
  for (const char *p = tmpl; *p;) {
    const char *value = NULL;
    size_t skip = 0;

    if (p[0] == '$') {
      bool brace = p[1] == '{';
      const char *name = p + 1 + brace;

      for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        size_t nl = strlen(vars[i].name);

        if (strncmp(name, vars[i].name, nl) != 0)
          continue;
        if (brace ? name[nl] != '}' : (name[nl] == '_' || is_word(name[nl])))
          continue;
        value = vars[i].value ? vars[i].value : family_name(family);
        skip = 1 + brace + nl + brace;
        break;
      }
    }
    if (value == NULL) {
      value = p;
      skip = 1;
    }
    {
      size_t vl = value == p ? 1 : strlen(value);

      while (n + vl + 1 > cap) {
        cap *= 2;
        out = util_xreallocarray(out, cap, 1);
      }
      memcpy(out + n, value, vl);
      n += vl;
    }
    p += skip;
  }
  out[n] = '\0';
  return out;
}

/* Start `sh -c CMD' with the standard descriptors on /dev/null.  Returns the pid, or
 * -1. */
static pid_t spawn(const char *cmd)
{
  pid_t pid = fork();

  if (pid == 0) {
    int fd = open("/dev/null", O_RDWR);

    if (fd >= 0) {
      (void)dup2(fd, 0);
      (void)dup2(fd, 1);
      if (fd > 1)
        close(fd);
    }
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* exec: run without waiting.  The intermediate child exits at once and is reaped here,
 * so the program is inherited by init and never lingers as our zombie. */
static void run_exec(const char *cmd)
{
  pid_t pid = fork();
  int status;

  if (pid < 0) {
    log_msg(LOG_ERR, "acl exec: fork: %s", strerror(errno));
    return;
  }
  if (pid == 0)
    _exit(spawn(cmd) < 0 ? 1 : 0);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
}

/* ifexec: the program's exit status, or -1 when it could not run or was killed. */
static int run_ifexec(const char *cmd)
{
  pid_t pid = spawn(cmd);
  int status;

  if (pid < 0) {
    log_msg(LOG_ERR, "acl ifexec: fork: %s", strerror(errno));
    return -1;
  }
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool acl_check(const struct conf_acl *acl, const struct sockaddr *sa, socklen_t len)
{
  if (sa->sa_family == AF_UNIX)
    return true;
  for (size_t i = 0; i < acl->n; i++) {
    const struct conf_acl_entry *e = &acl->v[i];
    unsigned aclno = (unsigned)i + 1;
    struct acl_addr a;
    const char *err;
    char *text;
    int r;

    if (acl_addr_parse(e->addr, &a, &err) < 0) {
      /* The parser checked it already; a bad entry never matches. */
      log_msg(LOG_ERR, "acl entry %u: %s: %s", aclno, e->addr, err);
      continue;
    }
    if (!acl_addr_match(&a, sa, len))
      continue;
    switch (e->action) {
    case CONF_ACL_ALLOW:
      return true;
    case CONF_ACL_DENY:
      return false;
    case CONF_ACL_LOG:
      text = acl_expand(e->arg ? e->arg : "connect from ${address}", aclno, sa, len);
      log_msg(LOG_INFO, "%s", text);
      free(text);
      break;
    case CONF_ACL_EXEC:
      if (e->arg == NULL)
        break;
      text = acl_expand(e->arg, aclno, sa, len);
      run_exec(text);
      free(text);
      break;
    case CONF_ACL_IFEXEC:
      if (e->arg == NULL)
        break;
      text = acl_expand(e->arg, aclno, sa, len);
      r = run_ifexec(text);
      free(text);
      if (r == 0)
        return true;
      if (r == 1)
        return false;
      break;
    }
  }
  return true;
}

#ifdef HAVE_LIBWRAP
/* Whether a tcp-wrappers table may hold a rule: true unless the file is missing or every
 * line is blank or starts with '#', which libwrap skips.  An unreadable or oversized file,
 * or a line that only starts with blanks before a '#', counts as holding one, so libwrap
 * decides. */
static bool table_may_hold_rules(const char *path)
{
  char buf[8192];
  ssize_t n;
  size_t total = 0;
  bool bol = true, comment = false;
  int fd;

  if (path == NULL)
    return false;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return errno != ENOENT;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    total += (size_t)n;
    if (total > (1u << 20))
      break;
    for (ssize_t i = 0; i < n; i++) {
      char ch = buf[i];

      if (ch == '\n') {
        bol = true;
        comment = false;
        continue;
      }
      if (bol && ch == '#')
        comment = true;
      bol = false;
      if (!comment && ch != ' ' && ch != '\t' && ch != '\r') {
        close(fd);
        return true;
      }
    }
  }
  close(fd);
  return n != 0;
}
#endif

bool acl_tcpwrap_has_rules(const struct conf *c)
{
  if (!c->tcpwrap_enable)
    return false;
#ifdef HAVE_LIBWRAP
  return table_may_hold_rules(c->tcpwrap_allow_table ? c->tcpwrap_allow_table
                                                     : "/etc/hosts.allow") ||
         table_may_hold_rules(c->tcpwrap_deny_table ? c->tcpwrap_deny_table
                                                    : "/etc/hosts.deny");
#else
  return false;
#endif
}

bool acl_tcpwrap_check(const struct conf *c, int fd)
{
#ifdef HAVE_LIBWRAP
  const struct pop3d_module *m;
  const char *err;

  if (!c->tcpwrap_enable)
    return true;
  /* Loaded here, in the short-lived child that asks libwrap (monitor.c), so that no
   * process that lives on maps libwrap and what it needs (libnsl, libtirpc...). */
  m = module_load("tcpwrap", &err);
  if (m == NULL || m->tcpwrap_check == NULL) {
    log_msg(LOG_ERR, "tcp-wrappers: %s; connection refused",
            m == NULL ? err : "tcpwrap.so has no tcp-wrappers check");
    return false;
  }
  return m->tcpwrap_check(c, fd);
#else
  (void)c;
  (void)fd;
  return true;
#endif
}
