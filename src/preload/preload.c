/* The LD_PRELOAD constructor. It runs in every process the preload reaches
 * (sh, curl, nginx, python), so it only makes the Python side findable: it
 * prepends our sitecustomize directory to PYTHONPATH and does nothing else.
 * Loaded through /etc/ld.so.preload instead (system-wide mode: our library
 * is not in LD_PRELOAD), it does even that only when the config turns the
 * mode on and the process filter includes this process (filter.h); any
 * other process, and every setuid one, is left exactly as it was.
 * No thread, no output, no malloc of its own, no stdio: the tracer itself
 * starts later, when (and only if) Python imports our sitecustomize. This
 * also covers interpreters loaded after start (uWSGI's python3 plugin). */
#include "config.h" /* first: _GNU_SOURCE from AC_USE_SYSTEM_EXTENSIONS */

#include "filter.h"

#include <link.h>
#include <stdint.h>
#include <fcntl.h>
#include <stddef.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <unistd.h>

/* Every libc function this object calls costs a symbol lookup through the
 * whole global scope the first time (about 1,000 instructions each under
 * glibc 2.36, more than the rest of the constructor): the fast path below
 * (LD_PRELOAD names us, absolute path) calls none but setenv, and the small
 * string helpers are our own. */
static size_t s_len(const char *s) {
  const char *p = s;
  while (*p)
    p++;
  return (size_t)(p - s);
}

static int s_eqn(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i])
      return 0;
  return 1;
}

static void s_copy(char *dst, const char *src, size_t n) {
  for (size_t i = 0; i < n; i++)
    dst[i] = src[i];
}

/* The variables the constructor reads, found in one pass over envp. */
typedef struct {
  const char *ld_preload, *pythonpath, *enabled, *otel_disabled, *config;
} seen_env;

static void scan_env(char **envp, seen_env *v) {
  static const struct {
    const char *name;
    size_t len;
    size_t slot;
  } names[] = {
      {"LD_PRELOAD=", 11, offsetof(seen_env, ld_preload)},
      {"PYTHONPATH=", 11, offsetof(seen_env, pythonpath)},
      {"TIGEROPS_ENABLED=", 17, offsetof(seen_env, enabled)},
      {"TIGEROPS_CONFIG=", 16, offsetof(seen_env, config)},
      {"OTEL_SDK_DISABLED=", 18, offsetof(seen_env, otel_disabled)},
  };
  for (char **e = envp; e && *e; e++) {
    const char *s = *e;
    /* Cheap reject on the first letter: most of the environment is none of ours. */
    if (s[0] != 'L' && s[0] != 'P' && s[0] != 'T' && s[0] != 'O')
      continue;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      if (s_eqn(s, names[i].name, names[i].len)) {
        *(const char **)((char *)v + names[i].slot) = s + names[i].len;
        break;
      }
  }
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int word_is(const char *v, const char *w) {
  while (*v && lower(*v) == *w)
    v++, w++;
  return !*v && !*w;
}

static int is_false(const char *v) {
  return v && (word_is(v, "false") || word_is(v, "0") || word_is(v, "no") || word_is(v, "off"));
}

static int is_true(const char *v) {
  return v && (word_is(v, "true") || word_is(v, "1") || word_is(v, "yes") || word_is(v, "on"));
}

/* True when dir is already one of the ':'-separated entries of list. */
static int path_has(const char *list, const char *dir) {
  size_t n = s_len(dir);
  for (const char *p = list; p && *p;) {
    const char *colon = p;
    while (*colon && *colon != ':')
      colon++;
    size_t len = (size_t)(colon - p);
    if (len == n && s_eqn(p, dir, n))
      return 1;
    p = *colon ? colon + 1 : NULL;
  }
  return 0;
}

static void anchor(void) {}

/* The name the loader used for us. */
static const char *loaded_as;

/* dir := the first n bytes of lib (its directory), '/', our Python subdir. */
static int python_dir(const char *lib, size_t n, char *dir, size_t dir_size) {
  size_t m = sizeof TGO__PYTHON_SUBDIR - 1;
  if (n + 1 + m + 1 > dir_size)
    return 0;
  s_copy(dir, lib, n);
  dir[n] = '/';
  s_copy(dir + n + 1, TGO__PYTHON_SUBDIR, m + 1);
  return 1;
}

static const char *last_slash(const char *p) {
  const char *slash = NULL;
  for (; *p; p++)
    if (*p == '/')
      slash = p;
  return slash;
}

/* Our library's real path and its directory of the Python side, or 0:
 * dl_iterate_phdr and realpath, for when LD_PRELOAD gives no absolute path. */
static int find_us(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  uintptr_t at = (uintptr_t)anchor;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && at >= start && at < start + ph->p_memsz) {
      *(const char **)data = info->dlpi_name;
      return 1;
    }
  }
  return 0;
}

/* dl_iterate_phdr rather than dladdr: the same answer, and a symbol of the
 * oldest glibc version, one fewer version for the loader to check. */
static int our_paths(char *lib, char *dir, size_t dir_size) {
  const char *name = NULL;
  if (!dl_iterate_phdr(find_us, &name) || !name || !*name || !realpath(name, lib))
    return 0;
  loaded_as = name;
  const char *slash = last_slash(lib);
  return slash && python_dir(lib, (size_t)(slash - lib), dir, dir_size);
}

/* The entry of LD_PRELOAD (':' or ' ' separated) whose file name is base,
 * or NULL; *len gets its length. */
static const char *preload_entry(const char *list, const char *base, size_t *len) {
  size_t n = s_len(base);
  for (const char *p = list; *p;) {
    const char *e = p;
    while (*e && *e != ':' && *e != ' ')
      e++;
    const char *b = e;
    while (b > p && b[-1] != '/')
      b--;
    if ((size_t)(e - b) == n && s_eqn(b, base, n)) {
      *len = (size_t)(e - p);
      return p;
    }
    p = *e ? e + 1 : e;
  }
  return NULL;
}

/* True when LD_PRELOAD names our library (the user's explicit opt-in), by
 * file name: tigerops-run and users may spell the directory differently. */
static int preload_names(const char *list, const char *lib) {
  size_t len;
  const char *b = last_slash(lib), *a = loaded_as ? last_slash(loaded_as) : NULL;
  return preload_entry(list, b ? b + 1 : lib, &len) ||
         (loaded_as && preload_entry(list, a ? a + 1 : loaded_as, &len));
}

/* Removes dir from PYTHONPATH: a process the filter leaves out must not
 * start the agent through what an included parent put in its environment. */
static void drop_inherited(const char *old, const char *dir) {
  if (!old || !path_has(old, dir))
    return;
  char value[8192];
  size_t len = 0, n = s_len(dir);
  for (const char *p = old; p;) {
    const char *colon = p;
    while (*colon && *colon != ':')
      colon++;
    size_t l = (size_t)(colon - p);
    if (!(l == n && s_eqn(p, dir, n))) {
      if (len + l + 2 > sizeof value)
        return;
      if (len)
        value[len++] = ':';
      s_copy(value + len, p, l);
      len += l;
    }
    p = *colon ? colon + 1 : NULL;
  }
  value[len] = '\0';
  if (len)
    setenv("PYTHONPATH", value, 1);
  else
    unsetenv("PYTHONPATH");
}

/* System-wide mode's verdict on this process: 1 included, 0 left out,
 * -1 the mode is off. */
static int system_wide_includes(const seen_env *v, char **envp) {
  tgo__pf_settings s;
  tgo__pf_defaults(&s);
  tgo__pf_load_file(&s, v->config && *v->config ? v->config : TGO__PF_DEFAULT_CONFIG);
  tgo__pf_load_env(&s, envp);
  if (!s.system_wide || s.enabled == 0 || s.otel_disabled == 1)
    return -1; /* off: not even an inherited PYTHONPATH is ours to touch */
  char exe[PATH_MAX], args[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return 0;
  exe[n] = '\0';
  size_t len = 0;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r;
    while (len < sizeof args && (r = read(fd, args + len, sizeof args - len)) > 0)
      len += (size_t)r;
    close(fd);
  }
  return tgo__pf_included(&s, exe, args, len);
}

/* glibc calls an ELF constructor with main's arguments: envp is the
 * environment as the loader left it, without a lookup of environ. */
__attribute__((constructor)) static void tigerops_preload(int argc, char **argv, char **envp) {
  (void)argc, (void)argv;
  seen_env v = {0};
  scan_env(envp, &v);
  char lib[PATH_MAX], dir[PATH_MAX + 64];
  int have_paths = 0;
  size_t len;
  const char *entry = v.ld_preload ? preload_entry(v.ld_preload, "libtigerops.so", &len) : NULL;
  if (entry && entry[0] == '/') {
    /* The common case (tigerops-run, the packages' instructions): the loader
     * opened exactly this path, so its directory is ours without a search. */
    const char *b = entry + len;
    while (b[-1] != '/')
      b--;
    have_paths = python_dir(entry, (size_t)(b - 1 - entry), dir, sizeof dir);
    lib[0] = '\0';
  } else if (v.ld_preload && *v.ld_preload) {
    if (!our_paths(lib, dir, sizeof dir))
      return;
    have_paths = 1;
  }
  if (have_paths && (entry || preload_names(v.ld_preload, lib))) {
    /* No AT_SECURE check needed here: for a setuid/setgid process the loader
     * removes LD_PRELOAD from the environment before any constructor runs,
     * so this branch never sees one (and skips a libc lookup). */
    if (is_false(v.enabled) || is_true(v.otel_disabled))
      return;
  } else {
    /* setuid/setgid: the loader already distrusts the environment there. */
    if (getauxval(AT_SECURE))
      return;
    int verdict = system_wide_includes(&v, envp);
    if (verdict < 0)
      return;
    if (!verdict) {
      if (v.pythonpath && (have_paths || our_paths(lib, dir, sizeof dir)))
        drop_inherited(v.pythonpath, dir);
      return;
    }
    if (!have_paths && !our_paths(lib, dir, sizeof dir))
      return;
  }

  const char *old = v.pythonpath;
  if (old && path_has(old, dir))
    return;
  char value[8192];
  size_t d = s_len(dir), o = old ? s_len(old) : 0;
  if (d + 1 + o + 1 > sizeof value)
    return;
  s_copy(value, dir, d);
  if (o) {
    value[d] = ':';
    s_copy(value + d + 1, old, o + 1);
  } else {
    value[d] = '\0';
  }
  setenv("PYTHONPATH", value, 1);
}
