/* tigerops-run [--service N] [--exporter E] [--endpoint URL] CMD ARGS...
 * Puts libtigerops.so in front of LD_PRELOAD and execs CMD in place: same
 * pid, the app gets its signals directly, fit for a container ENTRYPOINT.
 * tigerops-run [options] --check: one test span to the configured collector. */
#include "config.h" /* first: _GNU_SOURCE from AC_USE_SYSTEM_EXTENSIONS */

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
  fprintf(f,
          "usage: tigerops-run [--service NAME] [--environment ENV] [--exporter otlp|console|none]\n"
          "                    [--endpoint URL] [--sample-rate R] COMMAND [ARGS...]\n"
          "       tigerops-run [options] --check   send one test span, report what the collector said\n"
          "       tigerops-run --version\n"
          "Runs COMMAND with the TigerOps agent preloaded (see TIGEROPS_* settings).\n");
}

static int file_exists(const char *p) { return access(p, R_OK) == 0; }

/* Formats a candidate path and says whether it is a readable file. */
static int candidate(char *out, size_t cap, const char *dir, const char *rest) {
  int n = snprintf(out, cap, "%s%s", dir, rest);
  return n > 0 && (size_t)n < cap && file_exists(out);
}

/* Next to our own binary first (a relocated or DESTDIR install), then the
 * configured libdir. */
static int find_library(char *out, size_t cap) {
  const char *forced = getenv("TIGEROPS_LIBRARY");
  if (forced && *forced) {
    return candidate(out, cap, forced, "") ? 0 : -1;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = '\0';
      if (!strcmp(exe, TGO__BINDIR) && candidate(out, cap, TGO__LIBDIR, "/libtigerops.so"))
        return 0;
      /* An unpacked or relocated tree keeps libdir where it is relative to
       * bindir: /usr/bin and /usr/lib64 in an rpm2cpio tree. */
      const char *bin_parent_end = strrchr(TGO__BINDIR, '/');
      size_t plen = bin_parent_end ? (size_t)(bin_parent_end - TGO__BINDIR) : 0;
      char rel[PATH_MAX];
      if (plen && !strncmp(TGO__LIBDIR, TGO__BINDIR, plen) && TGO__LIBDIR[plen] == '/' &&
          snprintf(rel, sizeof rel, "/..%s/libtigerops.so", TGO__LIBDIR + plen) < (int)sizeof rel &&
          candidate(out, cap, exe, rel))
        return 0;
      if (candidate(out, cap, exe, "/../lib/libtigerops.so"))
        return 0;
    }
  }
  return candidate(out, cap, TGO__LIBDIR, "/libtigerops.so") ? 0 : -1;
}

static const struct {
  const char *flag, *env;
} options[] = {
    {"--service", "TIGEROPS_SERVICE_NAME"},
    {"--environment", "TIGEROPS_ENVIRONMENT"},
    {"--exporter", "TIGEROPS_EXPORTER"},
    {"--endpoint", "TIGEROPS_ENDPOINT"},
    {"--sample-rate", "TIGEROPS_SAMPLE_RATE"},
};

/* The check runs in the library itself (same settings parser, encoder
 * and transport as the agent); exit 0 only when the span was accepted. */
static int self_check(void) {
  char lib[PATH_MAX];
  if (find_library(lib, sizeof lib) < 0) {
    fprintf(stderr, "tigerops-run: libtigerops.so not found (looked beside the program and in %s)\n", TGO__LIBDIR);
    return 2;
  }
  /* The preload object is only a constructor: the check lives in the core
   * installed beside it. */
  char core[PATH_MAX];
  char *slash = strrchr(lib, '/');
  size_t dirlen = slash ? (size_t)(slash - lib) + 1 : 0;
  if (snprintf(core, sizeof core, "%.*slibtigerops-core.so", (int)dirlen, lib) >= (int)sizeof core)
    return 2;
  void *h = dlopen(core, RTLD_NOW | RTLD_LOCAL);
  int (*check)(FILE *) = NULL;
  if (h)
    *(void **)&check = dlsym(h, "tgo__self_check");
  if (!check) {
    fprintf(stderr, "tigerops-run: %s cannot run the check: %s\n", core, h ? "too old" : dlerror());
    return 2;
  }
  printf("library: %s\n", core);
  fflush(stdout);
  int rc = check(stdout);
  fflush(stdout);
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  int i = 1, check = 0;
  while (i < argc && argv[i][0] == '-') {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (!strcmp(a, "--version")) {
      printf("tigerops-run %s\n", PACKAGE_VERSION);
      return 0;
    }
    if (!strcmp(a, "--check")) {
      check = 1;
      i++;
      continue;
    }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    size_t k, nopt = sizeof options / sizeof options[0];
    const char *value = NULL;
    for (k = 0; k < nopt; k++) {
      size_t fl = strlen(options[k].flag);
      if (!strncmp(a, options[k].flag, fl) && a[fl] == '=') {
        value = a + fl + 1;
        break;
      }
      if (!strcmp(a, options[k].flag)) {
        if (i + 1 >= argc) {
          fprintf(stderr, "tigerops-run: %s needs a value\n", a);
          return 2;
        }
        value = argv[++i];
        break;
      }
    }
    if (k == nopt) {
      fprintf(stderr, "tigerops-run: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    setenv(options[k].env, value, 1);
    i++;
  }
  if (check)
    return self_check();
  if (i >= argc) {
    fprintf(stderr, "tigerops-run: no command given\n");
    usage(stderr);
    return 2;
  }
  char lib[PATH_MAX];
  if (find_library(lib, sizeof lib) < 0) {
    fprintf(stderr, "tigerops-run: libtigerops.so not found (looked beside %s and in %s); "
                    "running the command without the agent\n", argv[0], TGO__LIBDIR);
  } else {
    const char *old = getenv("LD_PRELOAD");
    if (!old || !strstr(old, lib)) {
      size_t len = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
      char *v = malloc(len);
      if (!v)
        return 1;
      snprintf(v, len, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
      setenv("LD_PRELOAD", v, 1);
      free(v);
    }
  }
  execvp(argv[i], argv + i);
  int err = errno;
  fprintf(stderr, "tigerops-run: cannot run %s: %s\n", argv[i], strerror(err));
  return err == ENOENT ? 127 : 126;
}
