/* System-wide mode's settings reader and process filter (see filter.h).
 * It runs in the constructor of every process on the host, so it reads the
 * config file with open/read into the caller's stack and matches with
 * fnmatch, which does not allocate. */
#include "config.h" /* first: _GNU_SOURCE from AC_USE_SYSTEM_EXTENSIONS */

#include "filter.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARGS_MAX 4096

/* Our own string helpers rather than libc's: every libc function the
 * preload object imports is a symbol lookup (~1k instructions) the first
 * time any process on the host calls it. memchr and fnmatch stay: the
 * first scans the whole ini, the second is not worth rewriting. */
static size_t f_len(const char *s) {
  const char *p = s;
  while (*p)
    p++;
  return (size_t)(p - s);
}

static char *f_chr(const char *s, char c) {
  for (; *s; s++)
    if (*s == c)
      return (char *)s;
  return NULL;
}

static const char *f_rchr(const char *s, char c) {
  const char *last = NULL;
  for (; *s; s++)
    if (*s == c)
      last = s;
  return last;
}

static int f_lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

/* 0 when equal, ASCII case ignored (all our names and words are ASCII). */
static int f_casecmp(const char *a, const char *b) {
  while (*a && f_lower((unsigned char)*a) == f_lower((unsigned char)*b))
    a++, b++;
  return f_lower((unsigned char)*a) - f_lower((unsigned char)*b);
}

static int f_cmp(const char *a, const char *b) {
  while (*a && *a == *b)
    a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}

static int f_ncmp(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (a[i] != b[i])
      return (unsigned char)a[i] - (unsigned char)b[i];
    if (!a[i])
      return 0;
  }
  return 0;
}

/* The first '=' or ':' in s. */
static char *f_sep(char *s) {
  for (; *s; s++)
    if (*s == '=' || *s == ':')
      return s;
  return NULL;
}

/* Not memcpy: every libc function the preload object imports is a symbol
 * (and a symbol version) the loader resolves in every process. */
static void copy(char *dst, const char *src, size_t n) {
  for (size_t i = 0; i < n; i++)
    dst[i] = src[i];
}

void tgo__pf_defaults(tgo__pf_settings *s) {
  s->enabled = TGO__PF_UNSET;
  s->otel_disabled = TGO__PF_UNSET;
  s->system_wide = 0;
  s->include_paths[0] = s->exclude_paths[0] = s->include_args[0] = s->exclude_args[0] = '\0';
}

int tgo__pf_parse_bool(const char *v, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (!f_casecmp(v, yes[i]))
      return *out = 1, 1;
    if (!f_casecmp(v, no[i]))
      return *out = 0, 1;
  }
  return 0;
}

/* "TIGEROPS_SYSTEM_WIDE" is also "system_wide", as in the ini's short names. */
static int key_is(const char *name, const char *full) {
  return !f_casecmp(name, full) || !f_casecmp(name, f_chr(full, '_') + 1);
}

static void set_str(char *dst, const char *v) {
  size_t n = f_len(v);
  if (n < TGO__PF_VALUE_MAX) /* a cut glob list would match the wrong set */
    copy(dst, v, n + 1);
}

/* A bad value keeps the previous one, as src/core/config.c does. */
static void apply(tgo__pf_settings *s, const char *name, const char *v) {
  if (key_is(name, "TIGEROPS_SYSTEM_WIDE"))
    tgo__pf_parse_bool(v, &s->system_wide);
  else if (key_is(name, "TIGEROPS_ENABLED"))
    tgo__pf_parse_bool(v, &s->enabled);
  else if (key_is(name, "OTEL_SDK_DISABLED"))
    tgo__pf_parse_bool(v, &s->otel_disabled);
  else if (key_is(name, "TIGEROPS_INCLUDE_PATHS"))
    set_str(s->include_paths, v);
  else if (key_is(name, "TIGEROPS_EXCLUDE_PATHS"))
    set_str(s->exclude_paths, v);
  else if (key_is(name, "TIGEROPS_INCLUDE_ARGS"))
    set_str(s->include_args, v);
  else if (key_is(name, "TIGEROPS_EXCLUDE_ARGS"))
    set_str(s->exclude_args, v);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static char *trim(char *p, char *end) {
  while (p < end && is_space(*p))
    p++;
  while (end > p && is_space(end[-1]))
    end--;
  *end = '\0';
  return p;
}

/* One line, with inih's rules: ';' or '#' starts a comment line, " ;" an
 * inline comment, '=' or ':' separates name from value. */
static void ini_line(tgo__pf_ini *r, char *line, size_t n) {
  char *end = line + n;
  line = trim(line, end);
  end = line + f_len(line);
  if (!*line || *line == ';' || *line == '#')
    return;
  if (*line == '[') {
    char *close = f_chr(line, ']');
    if (!close)
      return;
    char *name = trim(line + 1, close);
    r->otel = !f_casecmp(name, "otel");
    r->ours = !f_casecmp(name, "tigerops") || r->otel;
    return;
  }
  char *sep = f_sep(line);
  if (!sep || !r->ours)
    return;
  char *value = sep + 1;
  for (char *p = value; *p; p++)
    if (*p == ';' && p > value && is_space(p[-1])) {
      end = p;
      break;
    }
  const char *name = trim(line, sep);
  value = trim(value, end);
  apply(r->s, name, value);
}

void tgo__pf_ini_start(tgo__pf_ini *r, tgo__pf_settings *s) {
  r->s = s;
  r->ours = 1; /* names before any section count, as in src/core/config.c */
  r->otel = 0;
  r->overlong = 0;
  r->comment = 0;
  r->len = 0;
}

/* Whole segments at a time: the packaged ini is mostly comment lines, and
 * this runs in every process on the host. */
void tgo__pf_ini_feed(tgo__pf_ini *r, const char *buf, size_t n) {
  const char *p = buf, *end = buf + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    if (!r->len && !r->overlong && (*p == ';' || *p == '#'))
      r->comment = 1;
    if (!r->comment && !r->overlong) {
      size_t k = (size_t)(stop - p);
      if (r->len + k >= sizeof r->line || memchr(p, '\0', k)) {
        r->overlong = 1; /* such a line is dropped whole, never cut */
      } else {
        copy(r->line + r->len, p, k);
        r->len += k;
      }
    }
    if (!nl)
      break;
    if (!r->comment && !r->overlong)
      ini_line(r, r->line, r->len);
    r->len = 0;
    r->overlong = r->comment = 0;
    p = nl + 1;
  }
}

void tgo__pf_ini_end(tgo__pf_ini *r) {
  if (r->len && !r->overlong && !r->comment)
    ini_line(r, r->line, r->len);
  r->len = 0;
}

int tgo__pf_load_file(tgo__pf_settings *s, const char *path) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -errno;
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TGO__PF_FILE_MAX) {
    rc = -EINVAL;
    goto out;
  }
  /* All or nothing: a file that fails half-way (or grows past the bound,
   * which st_size cannot promise) leaves the settings as they were. */
  tgo__pf_settings tmp = *s;
  tgo__pf_ini r;
  tgo__pf_ini_start(&r, &tmp);
  char buf[4096];
  size_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      goto out;
    }
    if (n == 0)
      break;
    total += (size_t)n;
    if (total > TGO__PF_FILE_MAX) {
      rc = -EFBIG;
      goto out;
    }
    tgo__pf_ini_feed(&r, buf, (size_t)n);
  }
  tgo__pf_ini_end(&r);
  *s = tmp;
out:
  close(fd);
  return rc;
}

/* One walk over the environment: it runs in every process. */
void tgo__pf_load_env(tgo__pf_settings *s, char **envp) {
  for (char **e = envp; e && *e; e++) {
    const char *v = *e;
    if (f_ncmp(v, "TIGEROPS_", 9) && f_ncmp(v, "OTEL_SDK_DISABLED=", 18))
      continue;
    const char *eq = f_chr(v, '=');
    char name[32];
    size_t n = eq ? (size_t)(eq - v) : sizeof name;
    if (n >= sizeof name)
      continue;
    copy(name, v, n);
    name[n] = '\0';
    /* Full names only: the environment has no short ones. */
    if (!f_cmp(name, "TIGEROPS_SYSTEM_WIDE") || !f_cmp(name, "TIGEROPS_ENABLED") ||
        !f_cmp(name, "OTEL_SDK_DISABLED") || !f_cmp(name, "TIGEROPS_INCLUDE_PATHS") ||
        !f_cmp(name, "TIGEROPS_EXCLUDE_PATHS") || !f_cmp(name, "TIGEROPS_INCLUDE_ARGS") ||
        !f_cmp(name, "TIGEROPS_EXCLUDE_ARGS"))
      apply(s, name, eq + 1);
  }
}

/* Calls match(glob) for each comma-separated, space-trimmed glob until one
 * says yes. */
static int each_glob(const char *globs, int (*match)(const char *glob, const void *arg), const void *arg) {
  char glob[TGO__PF_VALUE_MAX];
  for (const char *p = globs; p && *p;) {
    const char *comma = f_chr(p, ',');
    const char *end = comma ? comma : p + f_len(p);
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    const char *e = end;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    size_t n = (size_t)(e - p);
    if (n && n < sizeof glob) {
      copy(glob, p, n);
      glob[n] = '\0';
      if (match(glob, arg))
        return 1;
    }
    p = comma ? comma + 1 : NULL;
  }
  return 0;
}

static int path_glob(const char *glob, const void *arg) {
  const char *path = arg;
  if (!f_chr(glob, '/')) {
    const char *slash = f_rchr(path, '/');
    path = slash ? slash + 1 : path;
  }
  return fnmatch(glob, path, 0) == 0;
}

int tgo__pf_match_path(const char *globs, const char *path) { return each_glob(globs, path_glob, path); }

typedef struct {
  const char *args;
  size_t len;
  const char *joined;
} args_view;

static int args_glob(const char *glob, const void *arg) {
  const args_view *v = arg;
  if (fnmatch(glob, v->joined, 0) == 0)
    return 1;
  for (size_t i = 0; i < v->len; i += f_len(v->args + i) + 1)
    if (fnmatch(glob, v->args + i, 0) == 0)
      return 1;
  return 0;
}

int tgo__pf_match_args(const char *globs, const char *args, size_t len) {
  if (!globs || !*globs)
    return 0;
  char own[ARGS_MAX + 1], joined[ARGS_MAX + 1];
  if (len > ARGS_MAX)
    len = ARGS_MAX;
  /* cmdline ends with a NUL; a truncated read may not. */
  copy(own, args, len);
  own[len] = '\0';
  while (len && own[len - 1] == '\0')
    len--;
  for (size_t i = 0; i <= len; i++)
    joined[i] = i < len && own[i] == '\0' ? ' ' : own[i];
  joined[len] = '\0';
  args_view v = {own, len, joined};
  return each_glob(globs, args_glob, &v);
}

int tgo__pf_included(const tgo__pf_settings *s, const char *exe, const char *args, size_t len) {
  const char *include = *s->include_paths ? s->include_paths : TGO__PF_DEFAULT_INCLUDE;
  if (!exe || !*exe || !tgo__pf_match_path(include, exe))
    return 0;
  if (*s->include_args && !tgo__pf_match_args(s->include_args, args, len))
    return 0;
  if (tgo__pf_match_path(s->exclude_paths, exe))
    return 0;
  return !tgo__pf_match_args(s->exclude_args, args, len);
}
