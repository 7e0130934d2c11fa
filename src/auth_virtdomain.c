/* auth_virtdomain.c - virtual domains: user@domain is looked up in DIR/domain, a file
 * in /etc/passwd format (name:hash:uid:gid:gecos:home:shell) where name is the local
 * part.  As in Mailutils, the name splits at its first `@', `!' or `:' (and `%', which
 * pop3d takes too), and the maildrop is HOME/INBOX.  The entry's hash is what
 * `authentication generic' checks.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "auth_impl.h"
#include "params.h"
#include "conf.h"

#ifdef SYSCONFDIR
# define VIRTDOMAIN_DIR_DEFAULT SYSCONFDIR "/domain"
#else
# define VIRTDOMAIN_DIR_DEFAULT "/etc/domain"
#endif


struct virt_entry {
  char *line;                  /* owns the fields below */
  size_t cap;                  /* its size, to wipe it (it holds the hash) */
  const char *name, *hash, *home;
  uid_t uid;
  gid_t gid;
};

/* Where a login name splits into local part and domain: its first one of these. */
#define VIRT_DELIMITERS "@!:%"

/* Split user into local part and domain; false if it has no safe domain. */
static bool split_user(const char *user, char **local, const char **domain)
{
  size_t at = strcspn(user, VIRT_DELIMITERS);

  if (user[at] == '\0' || at == 0)
    return false;
  *domain = user + at + 1;
  /* The domain names a file in the directory: no path, no hidden or dot names. */
  if ((*domain)[0] == '\0' || (*domain)[0] == '.' || strchr(*domain, '/') != NULL ||
      strlen(*domain) > NAME_MAX)
    return false;
  *local = util_xstrndup(user, at);
  return true;
}

static bool parse_id(const char *s, uint64_t *v)
{
  const char *err;

  return util_parse_u64(s, 0, (uint64_t)UINT32_MAX - 1, v, &err) == 0;
}

/* Fields of a passwd-format line, split in place.  false if malformed. */
static bool parse_line(char *line, struct virt_entry *e)
{
  char *f[7];
  size_t n = 0;
  char *p = line;
  uint64_t uid, gid;

  for (;;) {
    if (n == 7)
      return false;
    f[n++] = p;
    p = strchr(p, ':');
    if (p == NULL)
      break;
    *p++ = '\0';
  }
  if (n != 7 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
    return false;
  e->name = f[0];
  e->hash = f[1];
  e->uid = (uid_t)uid;
  e->gid = (gid_t)gid;
  e->home = f[5];
  return true;
}

/* Find the local user in the domain file.  OK (*e filled), NOUSER or TEMP. */
static enum auth_mod_result virt_lookup(struct auth_ctx *ctx, const char *user,
                                        struct virt_entry *e)
{
  const char *dir = ctx->conf->virtdomain_passwd_dir != NULL
                    ? ctx->conf->virtdomain_passwd_dir : VIRTDOMAIN_DIR_DEFAULT;
  const char *domain;
  char *local, *path, *line = NULL;
  size_t cap = 0;
  ssize_t len;
  enum auth_mod_result r = AUTH_MOD_NOUSER;
  struct stat st;
  FILE *fp;
  int fd;

  memset(e, 0, sizeof *e);
  if (!split_user(user, &local, &domain)) {
    ctx->error = strpbrk(user, VIRT_DELIMITERS) != NULL ? "unsafe or empty domain"
                                                        : AUTH_BAD_LOGIN;
    return AUTH_MOD_NOUSER;
  }
  path = util_xasprintf("%s/%s", dir, domain);
  /* O_NONBLOCK: a FIFO planted there must not hang the login. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      ctx->error = "unknown domain";
    } else {
      auth_set_error(ctx, "%s: %s", path, strerror(errno));
      r = AUTH_MOD_TEMP;
    }
    goto out;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    auth_set_error(ctx, "%s: not a regular file", path);
    close(fd);
    r = AUTH_MOD_TEMP;
    goto out;
  }
  fp = fdopen(fd, "r");
  if (fp == NULL) {
    auth_set_error(ctx, "%s: %s", path, strerror(errno));
    close(fd);
    r = AUTH_MOD_TEMP;
    goto out;
  }
  ctx->error = AUTH_BAD_LOGIN;
  while ((len = getline(&line, &cap, fp)) >= 0) {
    if (len > 0 && line[len - 1] == '\n')
      line[--len] = '\0';
    if (len == 0 || line[0] == '#' || len > PARAMS_VIRTDOMAIN_LINE_MAX)
      continue;
    if (strncmp(line, local, strlen(local)) != 0 || line[strlen(local)] != ':')
      continue;
    if (!parse_line(line, e)) {
      auth_set_error(ctx, "%s: malformed entry for %s", path, local);
      r = AUTH_MOD_TEMP;
      break;
    }
    e->line = line;
    e->cap = cap;
    line = NULL;
    r = AUTH_MOD_OK;
    break;
  }
  if (r == AUTH_MOD_NOUSER && ferror(fp)) {
    auth_set_error(ctx, "%s: read error", path);
    r = AUTH_MOD_TEMP;
  }
  fclose(fp);
out:
  if (line != NULL) {
    util_wipe(line, cap);
    free(line);
  }
  free(local);
  free(path);
  return r;
}

static void virt_entry_free(struct virt_entry *e)
{
  if (e->line != NULL) {
    util_wipe(e->line, e->cap);
    free(e->line);
    e->line = NULL;
  }
}

static enum auth_mod_result virt_authenticate(struct auth_ctx *ctx)
{
  struct virt_entry e;
  enum auth_mod_result r = virt_lookup(ctx, ctx->user, &e);

  if (r != AUTH_MOD_OK)
    return r;
  if (e.hash[0] == '!') {
    ctx->error = "account locked";
    r = AUTH_MOD_DENIED;
  } else if (!auth_hash_usable(e.hash)) {
    ctx->error = "account has no usable password";
    r = AUTH_MOD_DENIED;
  } else {
    r = auth_check_hash(ctx, e.hash);
  }
  virt_entry_free(&e);
  return r;
}

static enum auth_mod_result virt_authorize(struct auth_ctx *ctx, const char *name,
                                           struct auth_user *out)
{
  struct virt_entry e;
  enum auth_mod_result r = virt_lookup(ctx, name, &e);

  if (r != AUTH_MOD_OK)
    return r;
  out->name = util_xstrdup(e.name);
  out->uid = e.uid;
  out->gid = e.gid;
  out->home = util_xstrdup(e.home);
  out->mailbox = e.home[0] != '\0' ? util_xasprintf("%s/INBOX", e.home) : NULL;
  out->passwd = util_xstrdup(e.hash);
  virt_entry_free(&e);
  return AUTH_MOD_OK;
}

const struct auth_module auth_module_virtdomain = {
  .name = "virtdomain",
  .authenticate = virt_authenticate,
  .authorize = virt_authorize,
};
