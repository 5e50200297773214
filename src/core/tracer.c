/* Tracer start-up, fork handling and exit flush. */
#include "tgo-internal.h"

#include <errno.h>
#include <stdlib.h>

extern char **environ;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int initialised;

static void fork_prepare(void) { tgo__pipeline_fork_prepare(); }
static void fork_parent(void) { tgo__pipeline_fork_parent(); }

/* New generation: every thread of the child reseeds its id generator. */
static void fork_child(void) {
  atomic_fetch_add(&tgo__fork_generation, 1);
  pthread_mutex_init(&tgo__cfg_lock, NULL);
  tgo__pipeline_fork_child();
  tgo__tail_fork_child();
  tgo__pii_fork_child();
  tgo__exporters_fork_child();
  tgo__intern_fork_child();
  tgo__resource_fork_child();
  tgo__metrics_fork_child();
}

/* The last chance for spans ended after Python's own atexit hooks ran. */
static void flush_at_exit(void) {
  if (tgo__cfg.enabled)
    tgo__pipeline_shutdown(tgo__cfg.shutdown_timeout_ms);
}

static void init_once_fn(void) {
  tgo__config c;
  tgo__config_defaults(&c);
  tgo__cfg.log_level = TGO_LOG_WARN;
  tgo__config_load(&c, environ);
  pthread_mutex_lock(&tgo__cfg_lock);
  tgo__cfg = c;
  pthread_mutex_unlock(&tgo__cfg_lock);
  if (!c.enabled)
    return;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  atexit(flush_at_exit);
  initialised = 1;
  tgo__config_log_summary(&tgo__cfg, "tracer");
}

int tgo_init(void) {
  pthread_once(&init_once, init_once_fn);
  return initialised ? 0 : -ECANCELED;
}

int tgo_enabled(void) { return initialised && tgo__cfg.enabled; }

const char *tgo_version(void) { return PACKAGE_VERSION; }

int tgo_flush(int timeout_ms) { return initialised ? tgo__pipeline_flush(timeout_ms) : 0; }

int tgo_shutdown(int timeout_ms) { return initialised ? tgo__pipeline_shutdown(timeout_ms) : 0; }
