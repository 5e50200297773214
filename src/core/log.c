/* Agent diagnostics on stderr, gated by TIGEROPS_LOG_LEVEL. */
#include "tgo-internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const level_names[] = {"", "error", "warning", "info", "debug"};

int tgo__log_level(void) { return tgo__cfg.log_level; }

/* Formats into a stack buffer and writes once, so lines from several
 * processes never interleave and no stdio lock is taken. */
void tgo__log(int level, const char *fmt, ...) {
  if (level > tgo__cfg.log_level || level <= TGO_LOG_NONE)
    return;
  char line[1024];
  int n = snprintf(line, sizeof line, "tigerops[%d]: %s: ", (int)getpid(), level_names[level]);
  if (n < 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  size_t len = strnlen(line, sizeof line - 2);
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}

void tgo_log(int level, const char *msg) {
  if (msg)
    tgo__log(level, "%s", msg);
}
