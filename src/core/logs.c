/* The log signal: Python logging records copied into C on the logging thread
 * and queued, bounded, for the exporter thread (pipeline.c runs
 * tgo__logs_export_some in its loop). A full queue drops and counts; the
 * logging thread never waits for the exporter. A forked child drops what its
 * parent queued. */
#include "tgo-internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

tgo__log_counters tgo__log_stats;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tgo__log_rec **ring;
static size_t ring_cap, ring_head;
static atomic_size_t ring_len; /* read without the lock by the exporter's wait */
static uint64_t submitted_seq;
static atomic_ullong completed_seq;

/* The Python level name as OTLP's severity text: the data model's short
 * names, as OpenTelemetry Python's LoggingHandler sends them. */
static tgo__str severity_text(const tgo__log_view *v) {
  if (v->level_name_len == 7 && !memcmp(v->level_name, "WARNING", 7))
    return (tgo__str){"WARN", 4};
  if (v->level_name_len == 8 && !memcmp(v->level_name, "CRITICAL", 8))
    return (tgo__str){"FATAL", 5};
  return (tgo__str){v->level_name, (uint32_t)v->level_name_len};
}

/* Python levelno to SeverityNumber (OpenTelemetry Python's std_to_otel):
 * 10 DEBUG .. 50 FATAL, +1..+3 for the levels just above each, 4 for the
 * rest of the decade; below 10 unspecified, above 53 FATAL4. */
uint8_t tgo__logs_severity(int level) {
  if (level < 10)
    return 0;
  if (level > 53)
    return 24;
  int step = level % 10;
  return (uint8_t)(5 + 4 * (level / 10 - 1) + (step > 3 ? 3 : step));
}

int tgo__logs_threshold(void) {
  if (!tgo_enabled() || tgo__cfg.logs_exporter == TGO__EXPORTER_NONE)
    return INT_MAX;
  int level = tgo__cfg.log_export_level * 10;
  return level > 0 ? level : 1;
}

/* A string cut to the attribute value limit on a UTF-8 boundary and copied
 * to *pos. */
static tgo__str put_str(char **pos, const char *s, size_t n, size_t limit) {
  if (!s)
    return (tgo__str){"", 0};
  if (n > limit)
    n = tgo__utf8_cut(s, limit);
  memcpy(*pos, s, n);
  tgo__str out = {*pos, (uint32_t)n};
  tgo__utf8_repair((unsigned char *)*pos, n);
  *pos += n;
  return out;
}

static size_t cut_len(size_t n, size_t limit) { return n > limit ? limit : n; }

void tgo__logs_emit(const tgo__log_view *v) {
  size_t limit = (size_t)tgo__cfg.attr_value_limit;
  tgo__str sev = severity_text(v);
  size_t need = cut_len(sev.len, limit) + cut_len(v->body_len, limit) + cut_len(v->logger_len, limit) +
                cut_len(v->file_len, limit) + cut_len(v->function_len, limit) + cut_len(v->exc_type_len, limit) +
                cut_len(v->exc_message_len, limit) + cut_len(v->exc_stack_len, limit);
  pthread_mutex_lock(&lock);
  if (TGO__UNLIKELY(!ring)) {
    ring_cap = (size_t)tgo__cfg.logs_queue_size;
    ring = calloc(ring_cap ? ring_cap : 1, sizeof *ring);
  }
  int full = !ring || atomic_load_explicit(&ring_len, memory_order_relaxed) == ring_cap;
  pthread_mutex_unlock(&lock);
  if (TGO__UNLIKELY(full)) { /* checked first: a flood allocates nothing */
    atomic_fetch_add_explicit(&tgo__log_stats.dropped, 1, memory_order_relaxed);
    TGO__LOG_ONCE(TGO_LOG_WARN, "log record queue full (%zu): dropping log records until the exporter catches up",
                  ring_cap);
    return;
  }
  tgo__log_rec *r = malloc(sizeof *r + need);
  if (!r) {
    atomic_fetch_add_explicit(&tgo__log_stats.dropped, 1, memory_order_relaxed);
    return;
  }
  r->time_ns = v->time_ns;
  r->observed_ns = tgo__now_ns(CLOCK_REALTIME);
  r->line = v->line;
  r->severity = tgo__logs_severity(v->level);
  r->has_context = v->ctx != NULL;
  if (v->ctx) {
    memcpy(r->trace_id, v->ctx->trace_id, 16);
    memcpy(r->span_id, v->ctx->span_id, 8);
    r->flags = v->ctx->flags & 1;
  }
  char *pos = r->data;
  r->severity_text = put_str(&pos, sev.s, sev.len, limit);
  r->body = put_str(&pos, v->body, v->body_len, limit);
  r->logger = put_str(&pos, v->logger, v->logger_len, limit);
  r->file = put_str(&pos, v->file, v->file_len, limit);
  r->function = put_str(&pos, v->function, v->function_len, limit);
  r->exc_type = put_str(&pos, v->exc_type, v->exc_type_len, limit);
  r->exc_message = put_str(&pos, v->exc_message, v->exc_message_len, limit);
  r->exc_stack = put_str(&pos, v->exc_stack, v->exc_stack_len, limit);

  pthread_mutex_lock(&lock);
  size_t len = atomic_load_explicit(&ring_len, memory_order_relaxed);
  if (TGO__UNLIKELY(len == ring_cap)) {
    pthread_mutex_unlock(&lock);
    atomic_fetch_add_explicit(&tgo__log_stats.dropped, 1, memory_order_relaxed);
    free(r);
    return;
  }
  ring[(ring_head + len) % ring_cap] = r;
  atomic_store_explicit(&ring_len, len + 1, memory_order_release);
  submitted_seq++;
  int kick = len + 1 == (size_t)tgo__cfg.max_batch_size;
  pthread_mutex_unlock(&lock);
  atomic_fetch_add_explicit(&tgo__log_stats.queued, 1, memory_order_relaxed);
  tgo__pipeline_kick(kick);
}

size_t tgo__logs_pending(void) { return atomic_load_explicit(&ring_len, memory_order_acquire); }

uint64_t tgo__logs_submitted(void) {
  pthread_mutex_lock(&lock);
  uint64_t s = submitted_seq;
  pthread_mutex_unlock(&lock);
  return s;
}

int tgo__logs_done(uint64_t seq) { return atomic_load_explicit(&completed_seq, memory_order_acquire) >= seq; }

static void print_console(tgo__log_rec *const *recs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const tgo__log_rec *r = recs[i];
    char trace[33] = "", span[17] = "";
    if (r->has_context) {
      tgo__hex_encode(r->trace_id, 16, trace);
      tgo__hex_encode(r->span_id, 8, span);
    }
    fprintf(stderr, "[tigerops log] %.*s %.*s %.*s:%lld trace_id=%s span_id=%s %.*s\n", (int)r->severity_text.len,
            r->severity_text.s, (int)r->logger.len, r->logger.s, (int)r->file.len, r->file.s, (long long)r->line,
            *trace ? trace : "0", *span ? span : "0", (int)r->body.len, r->body.s);
  }
}

size_t tgo__logs_export_some(const atomic_int *abort_flag) {
  tgo__log_rec *batch[512];
  size_t want = (size_t)tgo__cfg.max_batch_size;
  if (want > sizeof batch / sizeof batch[0])
    want = sizeof batch / sizeof batch[0];
  pthread_mutex_lock(&lock);
  size_t len = atomic_load_explicit(&ring_len, memory_order_relaxed);
  size_t n = len < want ? len : want;
  for (size_t i = 0; i < n; i++) {
    batch[i] = ring[ring_head];
    ring_head = (ring_head + 1) % ring_cap;
  }
  atomic_store_explicit(&ring_len, len - n, memory_order_relaxed);
  pthread_mutex_unlock(&lock);
  if (!n)
    return 0;
  switch (tgo__cfg.logs_exporter) {
  case TGO__EXPORTER_OTLP:
    tgo__export_logs(batch, n, abort_flag);
    break;
  case TGO__EXPORTER_CONSOLE:
    print_console(batch, n);
    atomic_fetch_add_explicit(&tgo__log_stats.exported, n, memory_order_relaxed);
    break;
  default: /* switched to none while they were queued */
    break;
  }
  for (size_t i = 0; i < n; i++)
    free(batch[i]);
  atomic_fetch_add_explicit(&completed_seq, n, memory_order_release);
  return n;
}

void tgo__logs_drop_queued(void) {
  pthread_mutex_lock(&lock);
  size_t len = atomic_load_explicit(&ring_len, memory_order_relaxed);
  for (size_t i = 0; i < len; i++)
    free(ring[(ring_head + i) % ring_cap]);
  ring_head = 0;
  atomic_store_explicit(&ring_len, 0, memory_order_relaxed);
  atomic_fetch_add_explicit(&tgo__log_stats.failed, len, memory_order_relaxed);
  atomic_fetch_add_explicit(&completed_seq, len, memory_order_release);
  pthread_mutex_unlock(&lock);
}

void tgo__logs_fork_prepare(void) { pthread_mutex_lock(&lock); }
void tgo__logs_fork_parent(void) { pthread_mutex_unlock(&lock); }

/* The parent's records are the parent's to send. */
void tgo__logs_fork_child(void) {
  pthread_mutex_init(&lock, NULL);
  size_t len = atomic_load_explicit(&ring_len, memory_order_relaxed);
  for (size_t i = 0; i < len; i++)
    free(ring[(ring_head + i) % ring_cap]);
  ring_head = 0;
  atomic_store_explicit(&ring_len, 0, memory_order_relaxed);
  submitted_seq = 0;
  atomic_store(&completed_seq, 0);
}

size_t tgo__service_name(char *out, size_t cap) {
  tgo__kv *kvs = malloc(64 * sizeof *kvs);
  size_t n = 0;
  if (cap)
    *out = '\0';
  if (!kvs)
    return 0;
  size_t m = tgo__resource_collect(kvs, 64);
  for (size_t i = 0; i < m; i++)
    if (!strcmp(kvs[i].key, "service.name")) {
      int k = snprintf(out, cap, "%s", kvs[i].value);
      n = k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap ? cap - 1 : 0;
      break;
    }
  free(kvs);
  return n;
}

void tgo__logs_stats(unsigned long long out[4]) {
  out[0] = atomic_load(&tgo__log_stats.queued);
  out[1] = atomic_load(&tgo__log_stats.dropped);
  out[2] = atomic_load(&tgo__log_stats.exported);
  out[3] = atomic_load(&tgo__log_stats.failed);
}
