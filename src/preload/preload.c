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

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;

static const char *env_get(const char *name) {
  size_t n = strlen(name);
  for (char **e = environ; e && *e; e++)
    if (!strncmp(*e, name, n) && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

static int is_false(const char *v) {
  return v && (!strcasecmp(v, "false") || !strcasecmp(v, "0") || !strcasecmp(v, "no") ||
               !strcasecmp(v, "off"));
}

static int is_true(const char *v) {
  return v && (!strcasecmp(v, "true") || !strcasecmp(v, "1") || !strcasecmp(v, "yes") ||
               !strcasecmp(v, "on"));
}

/* True when dir is already one of the ':'-separated entries of list. */
static int path_has(const char *list, const char *dir) {
  size_t n = strlen(dir);
  for (const char *p = list; p && *p;) {
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : strlen(p);
    if (len == n && !memcmp(p, dir, n))
      return 1;
    p = colon ? colon + 1 : NULL;
  }
  return 0;
}

static void anchor(void) {}

/* The name the loader used for us. */
static const char *loaded_as;

/* Our library's real path and its directory of the Python side, or 0. */
static int our_paths(char *lib, char *dir, size_t dir_size) {
  Dl_info info;
  if (!dladdr((void *)anchor, &info) || !info.dli_fname || !realpath(info.dli_fname, lib))
    return 0;
  loaded_as = info.dli_fname;
  char *slash = strrchr(lib, '/');
  if (!slash)
    return 0;
  size_t n = (size_t)(slash - lib), m = strlen(TGO__PYTHON_SUBDIR);
  if (n + 1 + m + 1 > dir_size)
    return 0;
  memcpy(dir, lib, n);
  dir[n] = '/';
  memcpy(dir + n + 1, TGO__PYTHON_SUBDIR, m + 1);
  return 1;
}

/* True when LD_PRELOAD names our library (the user's explicit opt-in), by
 * file name: tigerops-run and users may spell the directory differently. */
static int preload_names_base(const char *list, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ": ");
    const char *e = p + len, *b = e;
    while (b > p && b[-1] != '/')
      b--;
    if ((size_t)(e - b) == n && !memcmp(b, base, n))
      return 1;
    p = *e ? e + 1 : e;
  }
  return 0;
}

static int preload_names(const char *list, const char *lib) {
  return preload_names_base(list, lib) || (loaded_as && preload_names_base(list, loaded_as));
}

/* Removes dir from PYTHONPATH: a process the filter leaves out must not
 * start the agent through what an included parent put in its environment. */
static void drop_inherited(const char *dir) {
  const char *old = env_get("PYTHONPATH");
  if (!old || !path_has(old, dir))
    return;
  char value[8192];
  size_t len = 0, n = strlen(dir);
  for (const char *p = old; p;) {
    const char *colon = strchr(p, ':');
    size_t l = colon ? (size_t)(colon - p) : strlen(p);
    if (!(l == n && !memcmp(p, dir, n))) {
      if (len + l + 2 > sizeof value)
        return;
      if (len)
        value[len++] = ':';
      memcpy(value + len, p, l);
      len += l;
    }
    p = colon ? colon + 1 : NULL;
  }
  value[len] = '\0';
  if (len)
    setenv("PYTHONPATH", value, 1);
  else
    unsetenv("PYTHONPATH");
}

/* System-wide mode's verdict on this process: 1 included, 0 left out,
 * -1 the mode is off. */
static int system_wide_includes(void) {
  tgo__pf_settings s;
  tgo__pf_defaults(&s);
  const char *path = env_get("TIGEROPS_CONFIG");
  tgo__pf_load_file(&s, path && *path ? path : TGO__PF_DEFAULT_CONFIG);
  tgo__pf_load_env(&s, environ);
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

__attribute__((constructor)) static void tigerops_preload(void) {
  /* setuid/setgid: the loader already distrusts the environment there. */
  if (getauxval(AT_SECURE))
    return;
  char lib[PATH_MAX], dir[PATH_MAX + 64];
  const char *preload = env_get("LD_PRELOAD");
  int have_paths = 0;
  if (preload && *preload) {
    if (!our_paths(lib, dir, sizeof dir))
      return;
    have_paths = 1;
  }
  if (have_paths && preload_names(preload, lib)) {
    if (is_false(env_get("TIGEROPS_ENABLED")) || is_true(env_get("OTEL_SDK_DISABLED")))
      return;
  } else {
    int verdict = system_wide_includes();
    if (verdict < 0)
      return;
    if (!verdict) {
      if (env_get("PYTHONPATH") && (have_paths || our_paths(lib, dir, sizeof dir)))
        drop_inherited(dir);
      return;
    }
    if (!have_paths && !our_paths(lib, dir, sizeof dir))
      return;
  }

  const char *old = env_get("PYTHONPATH");
  if (old && path_has(old, dir))
    return;
  char value[8192];
  size_t d = strlen(dir), o = old ? strlen(old) : 0;
  if (d + 1 + o + 1 > sizeof value)
    return;
  memcpy(value, dir, d);
  if (o) {
    value[d] = ':';
    memcpy(value + d + 1, old, o + 1);
  } else {
    value[d] = '\0';
  }
  setenv("PYTHONPATH", value, 1);
}
