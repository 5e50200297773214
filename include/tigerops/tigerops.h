/* TigerOps embedded tracer: the public C API (pkg-config: tigerops).
 *
 * Stability: everything declared here keeps its meaning within a major
 * version (TGO_VERSION_MAJOR). The extension's own interface to the core is
 * elsewhere (src/core/tgo-ext.h) and carries no promise.
 *
 * Threads: everything is safe to call before tgo_init() (calls are no-ops or
 * return a non-recording span) and from any thread.
 *
 * Ownership:
 *  - tgo_span_start() returns a span holding one reference, the starter's.
 *    tgo_span_end() hands that reference to the exporter: after it the
 *    starter must not touch the span unless it took its own with
 *    tgo_span_ref() (and drops it with tgo_span_unref()).
 *  - A span is changed only by the thread that started it until it ends.
 *  - Attribute values, names and status messages are copied. Attribute keys
 *    are not: see tgo_attrs_key().
 *  - tgo_span_context.tracestate is borrowed from its source.
 *
 * Errors: functions returning int answer 0 on success or a negative errno. */
#ifndef TIGEROPS_TIGEROPS_H
#define TIGEROPS_TIGEROPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TGO__BUILDING)
#define TGO_EXTERN __attribute__((visibility("default")))
#else
#define TGO_EXTERN
#endif

#define TGO_VERSION_MAJOR 0
#define TGO_VERSION_MINOR 1
#define TGO_VERSION_PATCH 0
/* Comparable: #if TGO_VERSION_HEX >= 0x000100 */
#define TGO_VERSION_HEX ((TGO_VERSION_MAJOR << 16) | (TGO_VERSION_MINOR << 8) | TGO_VERSION_PATCH)

#define TGO_TRACEPARENT_LEN 55

/* Levels of tgo_log() and TIGEROPS_LOG_LEVEL. */
enum { TGO_LOG_NONE = 0, TGO_LOG_ERROR = 1, TGO_LOG_WARN = 2, TGO_LOG_INFO = 3, TGO_LOG_DEBUG = 4 };

typedef enum {
  TGO_KIND_INTERNAL = 1,
  TGO_KIND_SERVER = 2,
  TGO_KIND_CLIENT = 3,
  TGO_KIND_PRODUCER = 4,
  TGO_KIND_CONSUMER = 5
} tgo_kind;

typedef enum {
  TGO_STATUS_UNSET = 0,
  TGO_STATUS_OK = 1,
  TGO_STATUS_ERROR = 2
} tgo_status;

typedef struct tgo_span tgo_span;
typedef struct tgo_attrs tgo_attrs; /* the attributes of a span or of one event */

typedef struct {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t flags;      /* bit 0: sampled */
  uint8_t is_remote;
  const char *tracestate; /* borrowed; NULL when absent */
  size_t tracestate_len;
} tgo_span_context;

/* Reads the config file and the environment once; later calls are no-ops. */
TGO_EXTERN int tgo_init(void);
/* Nonzero when tracing is on (initialised, not killed by config). */
TGO_EXTERN int tgo_enabled(void);
TGO_EXTERN const char *tgo_version(void);
/* Applies one setting by its TIGEROPS_* or OTEL_* name (the app.config layer,
 * which wins over file and environment). A bad value warns and keeps the old. */
TGO_EXTERN int tgo_config_set(const char *key, const char *value);
/* Copies the current value of a setting as text into buf; -ENOENT if unknown. */
TGO_EXTERN int tgo_config_get(const char *key, char *buf, size_t buflen);
/* Monotonic nanoseconds since the span started (0 when not recording). */
TGO_EXTERN uint64_t tgo_span_elapsed_ns(const tgo_span *span);
/* Adds or replaces one resource attribute (process.runtime.version, ...). */
TGO_EXTERN void tgo_resource_set(const char *key, const char *value);

/* Exports everything ended so far, waiting at most timeout_ms. */
TGO_EXTERN int tgo_flush(int timeout_ms);
/* Flushes and stops the exporter thread; the tracer restarts it on demand. */
TGO_EXTERN int tgo_shutdown(int timeout_ms);

/* Starts a span. parent: a local parent span, or NULL; remote: an extracted
 * context, used when parent is NULL. Never returns NULL. */
TGO_EXTERN tgo_span *tgo_span_start(const char *name, size_t name_len, tgo_kind kind,
                                    tgo_span *parent, const tgo_span_context *remote);
TGO_EXTERN void tgo_span_end(tgo_span *span);
/* References for holders other than the starter (a Python handle). */
TGO_EXTERN void tgo_span_ref(tgo_span *span);
TGO_EXTERN void tgo_span_unref(tgo_span *span);
TGO_EXTERN int tgo_span_is_recording(const tgo_span *span);
TGO_EXTERN int tgo_span_is_ended(const tgo_span *span);
TGO_EXTERN void tgo_span_get_context(const tgo_span *span, tgo_span_context *out);
TGO_EXTERN void tgo_span_set_name(tgo_span *span, const char *name, size_t len);
TGO_EXTERN void tgo_span_set_status(tgo_span *span, tgo_status code, const char *msg, size_t msg_len);
TGO_EXTERN tgo_status tgo_span_get_status(const tgo_span *span);
TGO_EXTERN void tgo_span_set_kind(tgo_span *span, tgo_kind kind);

TGO_EXTERN tgo_attrs *tgo_span_attrs(tgo_span *span);
/* Adds an event now; returns its attributes (NULL when not recording). */
TGO_EXTERN tgo_attrs *tgo_span_add_event(tgo_span *span, const char *name, size_t name_len);

/* Attribute setters replace an existing key. Values are copied; keys are
 * NOT: a key must live as long as the span (a string literal), or be a copy
 * made by tgo_attrs_key() for keys built at run time. */
TGO_EXTERN const char *tgo_attrs_key(tgo_attrs *a, const char *key, size_t len);
/* Nonzero when key is set (a NULL a has nothing). */
TGO_EXTERN int tgo_attrs_has(const tgo_attrs *a, const char *key);
TGO_EXTERN void tgo_attr_str(tgo_attrs *a, const char *key, const char *val, size_t len);
TGO_EXTERN void tgo_attr_int(tgo_attrs *a, const char *key, int64_t val);
TGO_EXTERN void tgo_attr_double(tgo_attrs *a, const char *key, double val);
TGO_EXTERN void tgo_attr_bool(tgo_attrs *a, const char *key, int val);
TGO_EXTERN void tgo_attr_str_array(tgo_attrs *a, const char *key, const char *const *vals,
                                   const size_t *lens, size_t n);
TGO_EXTERN void tgo_attr_int_array(tgo_attrs *a, const char *key, const int64_t *vals, size_t n);
TGO_EXTERN void tgo_attr_double_array(tgo_attrs *a, const char *key, const double *vals, size_t n);
TGO_EXTERN void tgo_attr_bool_array(tgo_attrs *a, const char *key, const int *vals, size_t n);

/* W3C trace context. Parse returns 0, or -EINVAL for a header the spec says
 * to ignore. Format writes TGO_TRACEPARENT_LEN chars plus a NUL. */
TGO_EXTERN int tgo_traceparent_parse(const char *header, size_t len, tgo_span_context *out);
TGO_EXTERN void tgo_traceparent_format(const tgo_span_context *ctx, char out[TGO_TRACEPARENT_LEN + 1]);
/* Validates a tracestate header; returns its usable length or -EINVAL. */
TGO_EXTERN int tgo_tracestate_check(const char *header, size_t len);

/* A shared non-recording span with an invalid context. */
TGO_EXTERN tgo_span *tgo_span_invalid(void);
/* Writes one diagnostic line (TGO_LOG_ERROR .. TGO_LOG_DEBUG) if TIGEROPS_LOG_LEVEL allows. */
TGO_EXTERN void tgo_log(int level, const char *msg);


/* The span current on this thread (NULL when none); set returns the previous. */
TGO_EXTERN tgo_span *tgo_current(void);
TGO_EXTERN tgo_span *tgo_set_current(tgo_span *span);

typedef struct {
  uint64_t spans_started;
  uint64_t spans_ended;
  uint64_t spans_dropped;   /* queue full */
  uint64_t spans_exported;
  uint64_t spans_failed;    /* export gave up */
  uint64_t export_requests;
  uint64_t traces_tail_kept;   /* dropped by the sampler, kept for an error or slowness */
  uint64_t spans_tail_dropped; /* not recorded: the tail keep buffer was full */
} tgo_stats;
TGO_EXTERN void tgo_get_stats(tgo_stats *out);

#ifdef __cplusplus
}
#endif
#endif
