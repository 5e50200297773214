/* The LD_PRELOAD constructor. It runs in every process the preload reaches
 * (sh, curl, nginx, python), so it only makes the Python side findable: it
 * prepends our sitecustomize directory to PYTHONPATH and does nothing else.
 * No thread, no output, no malloc of its own, no stdio: the tracer itself
 * starts later, when (and only if) Python imports our sitecustomize. This
 * also covers interpreters loaded after start (uWSGI's python3 plugin). */
#include "config.h" /* first: _GNU_SOURCE from AC_USE_SYSTEM_EXTENSIONS */

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

__attribute__((constructor)) static void tigerops_preload(void) {
  if (is_false(env_get("TIGEROPS_ENABLED")) || is_true(env_get("OTEL_SDK_DISABLED")))
    return;
  Dl_info info;
  char lib[PATH_MAX], dir[PATH_MAX + 64];
  if (!dladdr((void *)anchor, &info) || !info.dli_fname || !realpath(info.dli_fname, lib))
    return;
  char *slash = strrchr(lib, '/');
  if (!slash)
    return;
  *slash = '\0';
  size_t n = strlen(lib), m = strlen(TGO__PYTHON_SUBDIR);
  if (n + 1 + m + 1 > sizeof dir)
    return;
  memcpy(dir, lib, n);
  dir[n] = '/';
  memcpy(dir + n + 1, TGO__PYTHON_SUBDIR, m + 1);

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
