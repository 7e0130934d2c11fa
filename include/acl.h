/* acl.h - access control of a new connection: the `acl' statement (Mailutils semantics)
 * and tcp-wrappers.  Both run in the session child, after fork, so that a slow DNS
 * lookup, an `ifexec' program or a slow hosts.deny never delays the listener's accept.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#ifndef POP3D_ACL_H
#define POP3D_ACL_H

#include <stdbool.h>
#include <sys/socket.h>

#include "conf.h"
#include "util.h"

/* What an acl entry's address matches. */
enum acl_addr_kind { ACL_ADDR_ANY, ACL_ADDR_NET, ACL_ADDR_HOST };

struct acl_addr {
  enum acl_addr_kind kind;
  int family;                  /* ACL_ADDR_NET: AF_INET or AF_INET6 */
  unsigned char addr[16];      /* network order, already masked */
  unsigned char mask[16];
  char host[256];              /* ACL_ADDR_HOST: resolved when matched */
};

/* Parse "any", ADDR, ADDR/LEN, IPv4ADDR/NETMASK or a host name.  0, or -1 with
 * *error_r. */
int acl_addr_parse(const char *s, struct acl_addr *out, const char **error_r) WUR;

/* Does the client address sa match?  A host name matches any address it resolves to.
 * An IPv4-mapped IPv6 client is matched as the IPv4 address it carries. */
bool acl_addr_match(const struct acl_addr *a, const struct sockaddr *sa, socklen_t len);

/* The client's source as the per-source limits and login penalties count it: the
 * address masked to bits4 (IPv4, an IPv4-mapped IPv6 client included) or bits6 (IPv6)
 * leading bits, as text ("192.0.2.0/24", "2001:db8::/64"), at most ACL_SOURCE_KEY_MAX
 * bytes with the NUL.  0, or -1 for a client that is not IPv4 or IPv6. */
#define ACL_SOURCE_KEY_MAX 64
int acl_source_key(const struct sockaddr *sa, socklen_t len, unsigned bits4,
                   unsigned bits6, char *out, size_t outlen) WUR;

/* Run an acl on a client: the first allow or deny entry that matches decides; log
 * entries log and go on; exec starts its program and goes on; ifexec runs its program
 * and decides by its exit status (0 allow, 1 deny, anything else goes on).  A UNIX
 * socket client is always allowed, and so is a client no entry decides on.  Returns
 * true when allowed. */
bool acl_check(const struct conf_acl *acl, const struct sockaddr *sa, socklen_t len);

/* tcp-wrappers: hosts_access() on the connected socket fd with the configured daemon
 * name and tables, through the module tcpwrap.so, which it loads (module_load()).  True
 * when allowed, when disabled in the configuration, and when pop3d is built without
 * libwrap; false (and a log line) when the module can't be loaded. */
bool acl_tcpwrap_check(const struct conf *c, int fd);

/* Whether tcp-wrappers is on and its tables may hold a rule.  False when both tables are
 * missing or hold only blank lines and '#' comments (Debian's shipped files): libwrap then
 * allows every client, so the check needs no child and no DNS. */
bool acl_tcpwrap_has_rules(const struct conf *c);

/* Expand ${aclno}, ${address}, ${port} and ${family} in an exec/ifexec command or a
 * log text.  Returns a malloc'd string.  Exposed for the unit tests. */
char *acl_expand(const char *tmpl, unsigned aclno, const struct sockaddr *sa,
                 socklen_t len);

#endif
