/* System-wide mode (/etc/ld.so.preload): the few settings the constructor
 * reads itself, and the process filter that decides from them. Everything
 * here runs before the host's main(): no malloc, no stdio, no output; the
 * state lives in the caller's stack. */
#ifndef TGO_PRELOAD_FILTER_H
#define TGO_PRELOAD_FILTER_H

#include <stddef.h>

#define TGO__PF_VALUE_MAX 1024
/* A config file larger than this is ignored, as by src/core/config.c. */
#define TGO__PF_FILE_MAX (1 << 20)
#define TGO__PF_DEFAULT_CONFIG "/etc/tigerops/tigerops.ini"
/* Executables included when include_paths is empty: CPython, whatever
 * script it runs (gunicorn, flask, celery are python3 with an argv). */
#define TGO__PF_DEFAULT_INCLUDE "python3*"

enum { TGO__PF_UNSET = -1 };

typedef struct {
  int enabled;       /* TIGEROPS_ENABLED: 0, 1 or unset */
  int otel_disabled; /* OTEL_SDK_DISABLED */
  int system_wide;   /* TIGEROPS_SYSTEM_WIDE */
  char include_paths[TGO__PF_VALUE_MAX];
  char exclude_paths[TGO__PF_VALUE_MAX];
  char include_args[TGO__PF_VALUE_MAX];
  char exclude_args[TGO__PF_VALUE_MAX];
} tgo__pf_settings;

/* Streaming ini reader: text arrives in pieces, lines may span them. */
typedef struct {
  tgo__pf_settings *s;
  int ours;      /* in [tigerops] or before any section */
  int otel;      /* in [otel]: full TIGEROPS_ names only */
  int overlong;  /* dropping the rest of a line longer than line[] */
  int comment;   /* skipping the rest of a comment line */
  size_t len;
  char line[TGO__PF_VALUE_MAX + 128];
} tgo__pf_ini;

void tgo__pf_defaults(tgo__pf_settings *s);
void tgo__pf_ini_start(tgo__pf_ini *r, tgo__pf_settings *s);
void tgo__pf_ini_feed(tgo__pf_ini *r, const char *buf, size_t n);
void tgo__pf_ini_end(tgo__pf_ini *r);
/* Reads path if it is a regular file of at most TGO__PF_FILE_MAX bytes,
 * never blocking on a FIFO or device. 0, or a negative errno. */
int tgo__pf_load_file(tgo__pf_settings *s, const char *path);
/* Settings present in envp override the file's. */
void tgo__pf_load_env(tgo__pf_settings *s, char **envp);
/* True when bool value v parses; *out gets it. */
int tgo__pf_parse_bool(const char *v, int *out);

/* True when one of the comma-separated globs matches. A glob with no '/'
 * matches the subject's last path component, one with a '/' the whole
 * subject ('*' crosses '/'). */
int tgo__pf_match_path(const char *globs, const char *path);
/* True when one glob matches one argv element or the command line joined
 * with single spaces. args: the NUL-separated /proc/self/cmdline bytes. */
int tgo__pf_match_args(const char *globs, const char *args, size_t len);
/* The decision: exe is /proc/self/exe's target. */
int tgo__pf_included(const tgo__pf_settings *s, const char *exe, const char *args, size_t len);

#endif
