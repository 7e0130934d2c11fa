/* popauth.c - manage the APOP secrets database, with the options, files and formats of
 * GNU Mailutils' popauth: a GDBM file keyed by user name, values the secrets, neither
 * NUL-terminated.
 *
 * Copyright (C) 2026 The pop3d authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>
#ifdef __linux__
# include <sys/prctl.h>
#endif
#ifdef HAVE_GDBM
# include <gdbm.h>
#endif

#include "apop.h"
#include "util.h"

enum action { ACT_DEFAULT, ACT_CREATE, ACT_ADD, ACT_DELETE, ACT_LIST, ACT_MODIFY };

struct popauth {
  enum action action;
  bool compat;
  bool perms_given;
  /* The database is the default one, opened with the set-uid identity. */
  bool privileged;
  const char *input, *output, *user;
  char *password;
  mode_t perms;
};

/* The caller (real ids) and the identity the program was installed set-uid or set-gid
 * to.  `setid' while the two differ for a caller other than root. */
static struct {
  uid_t ruid, puid;
  gid_t rgid, pgid;
  bool setid;
} ids;

enum { OPT_COMPAT = 256, OPT_USAGE };

static const struct option longopts[] = {
  { "add", no_argument, NULL, 'a' },
  { "create", no_argument, NULL, 'c' },
  { "delete", no_argument, NULL, 'd' },
  { "list", no_argument, NULL, 'l' },
  { "modify", no_argument, NULL, 'm' },
  { "file", required_argument, NULL, 'f' },
  { "output", required_argument, NULL, 'o' },
  { "permissions", required_argument, NULL, 'P' },
  { "password", required_argument, NULL, 'p' },
  { "user", required_argument, NULL, 'u' },
  { "compatibility", no_argument, NULL, OPT_COMPAT },
  { "help", no_argument, NULL, 'h' },
  { "usage", no_argument, NULL, OPT_USAGE },
  { "version", no_argument, NULL, 'V' },
  { NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
  fputs("Usage: popauth [-acdlmV?] [-f FILE] [-o FILE] [-p STRING] [-P PERM] [-u\n"
        "            USERNAME] [--add] [--compatibility] [--create] [--delete]\n"
        "            [--file=FILE] [--help] [--list] [--modify] [--output=FILE]\n"
        "            [--password=STRING] [--permissions=PERM] [--usage]\n"
        "            [--user=USERNAME] [--version]\n", out);
}

static void help(void)
{
  fputs("Usage: popauth [OPTION...]\n"
        "popauth -- manage the pop3d APOP authentication database\n\n"
        " Actions are:\n"
        "  -a, --add                  add user\n"
        "  -c, --create               create the DBM from a plaintext file\n"
        "  -d, --delete               delete user's record\n"
        "  -l, --list                 list the contents of DBM file\n"
        "  -m, --modify               modify user's record (change password)\n\n"
        " Options are:\n"
        "      --compatibility        compatibility mode\n"
        "  -f, --file=FILE            read input from FILE (default stdin)\n"
        "  -o, --output=FILE          direct output to file\n"
        "  -P, --permissions=PERM     force given permissions on the database\n"
        "  -p, --password=STRING      specify user's password\n"
        "  -u, --user=USERNAME        specify user name\n\n"
        "  -?, --help                 give this help list\n"
        "      --usage                give a short usage message\n"
        "  -V, --version              print program version\n\n"
        "Default action is:\n"
        "  For root: --list\n"
        "  For a user: --modify --user <username>\n\n"
        "Default database: " APOP_DEFAULT_FILE "\n", stdout);
}

static void err(const char *fmt, ...) PRINTF(1, 2);

static void err(const char *fmt, ...)
{
  va_list ap;

  fputs("popauth: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void die_ids(const char *what)
{
  err("%s: %s", what, strerror(errno));
  exit(EX_OSERR);
}

/* Installed set-uid, the program runs as its caller: the set-uid identity is taken up
 * again only to open the default database (privs_raise), and given up for good right
 * after (privs_drop).  Every other file is opened as the caller. */
static void privs_init(void)
{
  ids.ruid = getuid();
  ids.puid = geteuid();
  ids.rgid = getgid();
  ids.pgid = getegid();
  ids.setid = ids.ruid != 0 && (ids.ruid != ids.puid || ids.rgid != ids.pgid);
  if (!ids.setid)
    return;
#ifdef __linux__
  /* Once the caller owns the process it still holds the database descriptor opened
   * with the set-uid identity: keep the caller from attaching to it or dumping it. */
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
  {
    /* A file-size limit chosen by the caller could cut a write to the shared database
     * short and leave it corrupt for everyone.  Best effort: only root may raise it. */
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

    (void)setrlimit(RLIMIT_FSIZE, &rl);
  }
  if (setresgid((gid_t)-1, ids.rgid, (gid_t)-1) < 0)
    die_ids("setresgid");
  if (setresuid((uid_t)-1, ids.ruid, (uid_t)-1) < 0)
    die_ids("setresuid");
}

static void privs_raise(void)
{
  if (setresuid((uid_t)-1, ids.puid, (uid_t)-1) < 0)
    die_ids("setresuid");
  if (setresgid((gid_t)-1, ids.pgid, (gid_t)-1) < 0)
    die_ids("setresgid");
}

static void privs_drop(void)
{
  uid_t ru, eu, su;
  gid_t rg, eg, sg;

  if (!ids.setid)
    return;
  if (setresgid(ids.rgid, ids.rgid, ids.rgid) < 0)
    die_ids("setresgid");
  if (setresuid(ids.ruid, ids.ruid, ids.ruid) < 0)
    die_ids("setresuid");
  if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
      ru != ids.ruid || eu != ids.ruid || su != ids.ruid ||
      rg != ids.rgid || eg != ids.rgid || sg != ids.rgid ||
      (ids.puid != ids.ruid && setresuid((uid_t)-1, ids.puid, (uid_t)-1) == 0) ||
      (ids.pgid != ids.rgid && setresgid((gid_t)-1, ids.pgid, (gid_t)-1) == 0)) {
    err("cannot give up the set-uid identity");
    exit(EX_OSERR);
  }
}

static void set_action(struct popauth *p, enum action a)
{
  if (p->action != ACT_DEFAULT) {
    err("You may not specify more than one `-aldp' option");
    exit(EX_USAGE);
  }
  p->action = a;
}

#ifdef HAVE_GDBM

/* Read a secret: from the terminal without echo, or a line from a pipe. */
static char *read_secret(const char *prompt)
{
  struct termios old, quiet;
  bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  char buf[APOP_SECRET_MAX + 2];
  size_t n;

  if (tty) {
    fputs(prompt, stdout);
    fflush(stdout);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  if (fgets(buf, sizeof buf, stdin) == NULL)
    buf[0] = '\0';
  if (tty) {
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stdout);
  }
  n = strcspn(buf, "\r\n");
  buf[n] = '\0';
  if (n == 0) {
    util_wipe(buf, sizeof buf);
    return NULL;
  }
  {
    char *s = util_xstrdup(buf);
    util_wipe(buf, sizeof buf);
    return s;
  }
}

static void fill_password(struct popauth *p)
{
  if (p->password != NULL)
    return;
  for (;;) {
    char *again;

    p->password = read_secret("Password:");
    if (p->password == NULL)
      exit(EX_DATAERR);
    if (!isatty(STDIN_FILENO))
      return;
    again = read_secret("Confirm :");
    if (again == NULL)
      exit(EX_DATAERR);
    if (strcmp(again, p->password) == 0) {
      util_free_secret(again);
      return;
    }
    util_free_secret(again);
    util_free_secret(p->password);
    p->password = NULL;
    err("Passwords differ. Please retry.");
  }
}

/* Open the database for action.  Writers check the file's modes (less what -P allows),
 * on the opened descriptor; list and create don't check (as Mailutils).  *mine: the
 * caller is root or owns the file, and may see and change every entry. */
static GDBM_FILE open_db(struct popauth *p, enum action a, bool *mine)
{
  const char *name = a == ACT_CREATE ? p->output : p->input;
  bool priv = p->privileged && a != ACT_CREATE;
  int flags = a == ACT_LIST ? O_RDONLY : O_RDWR | O_CREAT;
  int gflags = a == ACT_LIST ? GDBM_READER : GDBM_WRCREAT;
  unsigned checks = 0;
  struct stat st;
  GDBM_FILE g;
  int fd, saved;

  if (a == ACT_ADD || a == ACT_DELETE || a == ACT_MODIFY) {
    checks = APOP_CHECK_ALL & ~APOP_CHECK_OWNER;
    if (p->perms & 0002)
      checks &= ~(unsigned)APOP_CHECK_AWRFIL;
    if (p->perms & 0004)
      checks &= ~(unsigned)APOP_CHECK_ARDFIL;
    if (p->perms & 0020)
      checks &= ~(unsigned)APOP_CHECK_GWRFIL;
    if (p->perms & 0040)
      checks &= ~(unsigned)APOP_CHECK_GRDFIL;
  }
  if (priv) {
    /* A caller is not to create, or initialize, a file with the set-uid identity. */
    flags &= ~O_CREAT;
    if (gflags == GDBM_WRCREAT)
      gflags = GDBM_WRITER;
    privs_raise();
  }
  fd = open(name, flags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, p->perms);
  saved = errno;
  if (priv)
    privs_drop();
  if (fd < 0) {
    err("mu_dbm_open(%s) failed: %s", name, strerror(saved));
    exit(EX_SOFTWARE);
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    err("%s fails safety check: not a regular file", name);
    exit(EX_UNAVAILABLE);
  }
  if (((checks & APOP_CHECK_GWRFIL) && (st.st_mode & S_IWGRP)) ||
      ((checks & APOP_CHECK_AWRFIL) && (st.st_mode & S_IWOTH)) ||
      ((checks & APOP_CHECK_GRDFIL) && (st.st_mode & S_IRGRP)) ||
      ((checks & APOP_CHECK_ARDFIL) && (st.st_mode & S_IROTH))) {
    err("%s fails safety check: unsafe permissions %04o", name,
        (unsigned)(st.st_mode & 07777));
    exit(EX_UNAVAILABLE);
  }
  *mine = ids.ruid == 0 || st.st_uid == ids.ruid;
  g = gdbm_fd_open(fd, name, 0, gflags | GDBM_CLOERROR, NULL);
  if (g == NULL) {
    err("mu_dbm_open(%s) failed: %s", name, gdbm_strerror(gdbm_errno));
    exit(EX_SOFTWARE);
  }
  /* -P: the permissions asked for, whatever the umask made of them at creation. */
  if (flags & O_CREAT)
    (void)fchmod(gdbm_fdesc(g), p->perms);
  return g;
}

static datum str_datum(const char *s)
{
  datum d;

  d.dptr = (char *)s;
  d.dsize = (int)strlen(s);
  return d;
}

static const char *caller_name(void)
{
  static char *name;

  if (name == NULL) {
    struct passwd *pw = getpwuid(getuid());

    if (pw == NULL) {
      err("no user name for uid %lu", (unsigned long)getuid());
      exit(EX_OSERR);
    }
    name = util_xstrdup(pw->pw_name);
  }
  return name;
}

/* For a caller who neither is root nor owns the database: their own entry only. */
static void own_entry_only(struct popauth *p)
{
  const char *me = caller_name();

  if (p->user != NULL && strcmp(p->user, me) != 0) {
    err("Only the file owner can use --username");
    exit(EX_USAGE);
  }
  p->user = me;
}

/* The list holds secrets.  Not through a symbolic link, and not into a file of someone
 * else's (it would keep its owner and modes): an existing file is truncated only once
 * it is known to be the caller's regular file. */
static FILE *open_output(const char *name)
{
  struct stat st;
  FILE *f;
  int fd = open(name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                0600);

  if (fd < 0) {
    err("cannot create file %s: %s", name, strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
    err("cannot create file %s: not a regular file of the user running popauth", name);
    close(fd);
    return NULL;
  }
  if (ftruncate(fd, 0) < 0 || (f = fdopen(fd, "w")) == NULL) {
    err("cannot create file %s: %s", name, strerror(errno));
    close(fd);
    return NULL;
  }
  return f;
}

static void print_entry(FILE *out, const struct popauth *p, datum k, datum v)
{
  fprintf(out, p->compat ? "%.*s: %.*s\n" : "%.*s %.*s\n", k.dsize, k.dptr, v.dsize,
          v.dptr);
}

static int action_list(struct popauth *p)
{
  bool mine;
  GDBM_FILE g = open_db(p, ACT_LIST, &mine);
  FILE *out = stdout;

  if (!mine)
    own_entry_only(p);
  if (p->output != NULL && (out = open_output(p->output)) == NULL) {
    gdbm_close(g);
    return 1;
  }
  if (p->user != NULL) {
    datum v = gdbm_fetch(g, str_datum(p->user));

    if (v.dptr == NULL)
      err("no such user: %s", p->user);
    else {
      print_entry(out, p, str_datum(p->user), v);
      util_wipe(v.dptr, (size_t)v.dsize);
      free(v.dptr);
    }
  } else {
    datum k = gdbm_firstkey(g);

    while (k.dptr != NULL) {
      datum v = gdbm_fetch(g, k), next;

      if (v.dptr == NULL) {
        err("database fetch error: %s", gdbm_strerror(gdbm_errno));
        exit(EX_UNAVAILABLE);
      }
      print_entry(out, p, k, v);
      util_wipe(v.dptr, (size_t)v.dsize);
      free(v.dptr);
      next = gdbm_nextkey(g, k);
      free(k.dptr);
      k = next;
    }
  }
  gdbm_close(g);
  if (out != stdout && fclose(out) != 0) {
    err("%s: %s", p->output, strerror(errno));
    return 1;
  }
  return 0;
}

static bool is_blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Lines "user secret"; with --compatibility also "user: secret" and "user:secret" (the
 * plain-text form pop3d reads), so an old text file converts as it is. */
static int action_create(struct popauth *p)
{
  FILE *in = stdin;
  const char *iname = p->input != NULL ? p->input : "";
  char *line = NULL;
  size_t cap = 0;
  unsigned lineno = 0;
  bool mine;
  GDBM_FILE g;

  if (p->input != NULL && (in = fopen(p->input, "re")) == NULL) {
    err("cannot open file %s: %s", p->input, strerror(errno));
    return 1;
  }
  if (p->output == NULL)
    p->output = APOP_DEFAULT_FILE;
  g = open_db(p, ACT_CREATE, &mine);
  while (getline(&line, &cap, in) > 0) {
    char *s = line, *e, *user, *secret;

    lineno++;
    while (is_blank(*s))
      s++;
    for (e = s + strlen(s); e > s && is_blank(e[-1]); e--)
      ;
    *e = '\0';
    if (*s == '\0' || *s == '#')
      continue;
    user = s;
    while (*s != '\0' && !is_blank(*s))
      s++;
    if (p->compat) {
      char *colon = memchr(user, ':', (size_t)(s - user));

      if (colon != NULL && colon[1] != '\0' && s == e && colon + 1 < s) {
        /* user:secret without a blank */
        s = colon;
      } else if (s > user && s[-1] == ':') {
        s[-1] = '\0';
      }
    }
    if (*s == '\0') {
      err("%s:%u: malformed line", iname, lineno);
      continue;
    }
    *s++ = '\0';
    while (is_blank(*s))
      s++;
    secret = s;
    if (*user == '\0' || *secret == '\0') {
      err("%s:%u: malformed line", iname, lineno);
      continue;
    }
    if (gdbm_store(g, str_datum(user), str_datum(secret), GDBM_REPLACE) != 0)
      err("%s:%u: cannot store datum: %s", iname, lineno, gdbm_strerror(gdbm_errno));
  }
  if (line != NULL) {
    util_wipe(line, cap);
    free(line);
  }
  if (in != stdin)
    fclose(in);
  gdbm_close(g);
  return 0;
}

static int action_add(struct popauth *p)
{
  bool mine;
  GDBM_FILE g;
  int rc;

  if (p->user == NULL) {
    err("missing user name to add");
    return 1;
  }
  g = open_db(p, ACT_ADD, &mine);
  if (!mine) {
    err("Operation not allowed: only the owner of %s may add entries", p->input);
    exit(EX_USAGE);
  }
  fill_password(p);
  rc = gdbm_store(g, str_datum(p->user), str_datum(p->password), GDBM_REPLACE);
  if (rc != 0)
    err("cannot store datum: %s", gdbm_strerror(gdbm_errno));
  gdbm_close(g);
  return rc != 0;
}

static int action_delete(struct popauth *p)
{
  bool mine;
  GDBM_FILE g;
  int rc;

  if (p->user == NULL) {
    err("missing username to delete");
    return 1;
  }
  g = open_db(p, ACT_DELETE, &mine);
  if (!mine) {
    err("Operation not allowed: only the owner of %s may delete entries", p->input);
    exit(EX_USAGE);
  }
  rc = gdbm_delete(g, str_datum(p->user));
  if (rc != 0)
    err("cannot remove record for %s: %s", p->user, gdbm_strerror(gdbm_errno));
  gdbm_close(g);
  return rc != 0;
}

static int action_modify(struct popauth *p)
{
  bool mine;
  GDBM_FILE g = open_db(p, ACT_MODIFY, &mine);
  datum old;
  int rc;

  if (p->user == NULL)
    printf("Changing password for %s\n", caller_name());
  if (!mine)
    own_entry_only(p);
  else if (p->user == NULL)
    p->user = caller_name();
  old = gdbm_fetch(g, str_datum(p->user));
  if (old.dptr == NULL) {
    err("no such user: %s", p->user);
    gdbm_close(g);
    return 1;
  }
  if (!mine) {
    char *given = read_secret("Old Password:");
    bool same = given != NULL && strlen(given) == (size_t)old.dsize &&
                util_memeq_ct(given, old.dptr, (size_t)old.dsize);

    util_free_secret(given);
    if (!same) {
      err("Sorry");
      gdbm_close(g);
      return 1;
    }
  }
  util_wipe(old.dptr, (size_t)old.dsize);
  free(old.dptr);
  fill_password(p);
  rc = gdbm_store(g, str_datum(p->user), str_datum(p->password), GDBM_REPLACE);
  if (rc != 0)
    err("cannot replace datum: %s", gdbm_strerror(gdbm_errno));
  gdbm_close(g);
  return rc != 0;
}

#endif /* HAVE_GDBM */

int main(int argc, char **argv)
{
  struct popauth p;
  int c, rc = 0;

  privs_init();
  memset(&p, 0, sizeof p);
  p.perms = 0600;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "acdlmf:o:P:p:u:V?", longopts, NULL)) != -1) {
    switch (c) {
    case 'a': set_action(&p, ACT_ADD); break;
    case 'c': set_action(&p, ACT_CREATE); break;
    case 'd': set_action(&p, ACT_DELETE); break;
    case 'l': set_action(&p, ACT_LIST); break;
    case 'm': set_action(&p, ACT_MODIFY); break;
    case 'f': p.input = optarg; break;
    case 'o': p.output = optarg; break;
    case 'p':
      util_free_secret(p.password);
      p.password = util_xstrdup(optarg);
      /* Keep the secret out of ps(1) output where the system allows. */
      util_wipe(optarg, strlen(optarg));
      break;
    case 'u': p.user = optarg; break;
    case 'P': {
      char *end;
      unsigned long v;

      errno = 0;
      v = strtoul(optarg, &end, 8);
      if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 || v > 07777) {
        err("invalid octal number: %s", optarg);
        return EX_USAGE;
      }
      p.perms = (mode_t)v;
      p.perms_given = true;
      break;
    }
    case OPT_COMPAT: p.compat = true; break;
    case 'h': help(); return 0;
    case OPT_USAGE: usage(stdout); return 0;
    case 'V':
      printf("popauth (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
#ifdef HAVE_GDBM
      printf("Database formats: gdbm\n");
#else
      printf("Database formats: none (built without GDBM)\n");
#endif
      printf("Default database location: %s\n", APOP_DEFAULT_FILE);
      return 0;
    case '?':
      if (optopt == '?') {
        help();
        return 0;
      }
      /* fall through */
    default:
      if (optopt != 0 && optopt != '?')
        err("invalid option -- '%c'", optopt);
      else
        err("unrecognized option '%s'", argv[optind - 1]);
      usage(stderr);
      return EX_USAGE;
    }
  }
  if (optind < argc) {
    err("too many arguments");
    return EX_USAGE;
  }
  if (p.action == ACT_DEFAULT)
    p.action = getuid() == 0 ? ACT_LIST : ACT_MODIFY;
  if (p.action != ACT_CREATE && p.input == NULL)
    p.input = APOP_DEFAULT_FILE;
  if (ids.setid) {
    /* A file the caller names is the caller's business: opened as the caller. */
    if (p.action == ACT_CREATE || strcmp(p.input, APOP_DEFAULT_FILE) != 0)
      privs_drop();
    else if (p.perms_given) {
      err("Only root can use --permissions on %s", APOP_DEFAULT_FILE);
      return EX_USAGE;
    } else
      p.privileged = true;
  }
#ifdef HAVE_GDBM
  switch (p.action) {
  case ACT_CREATE: rc = action_create(&p); break;
  case ACT_ADD: rc = action_add(&p); break;
  case ACT_DELETE: rc = action_delete(&p); break;
  case ACT_LIST: rc = action_list(&p); break;
  case ACT_MODIFY: rc = action_modify(&p); break;
  case ACT_DEFAULT: break;
  }
#else
  err("built without GDBM: the APOP database is the plain-text file %s (user:secret "
      "lines), edit it with a text editor", APOP_DEFAULT_FILE);
  rc = EX_UNAVAILABLE;
#endif
  util_free_secret(p.password);
  return rc;
}
