/* The core as the _tigerops extension sees it beyond the public API:
 * exported from libtigerops-core.so for our own extension only, changed freely
 * between versions (tgo__ names: not public). */
#ifndef TGO__EXT_H
#define TGO__EXT_H

#include "tigerops/tigerops.h"

#include <stdio.h>

#if defined(TGO__BUILDING)
#define TGO__EXPORT __attribute__((visibility("default")))
#else
#define TGO__EXPORT
#endif

/* Database span settings (TIGEROPS_SLOW_QUERY_MS, 0 = off;
 * TIGEROPS_N_PLUS_ONE_THRESHOLD; TIGEROPS_SQLCOMMENTER), read per statement. */
TGO__EXPORT int tgo__slow_query_ms(void);
TGO__EXPORT int tgo__n_plus_one_threshold(void);
TGO__EXPORT int tgo__sqlcommenter(void);

/* The settings table, for the glue: flags of setting i (TGO__SETTING_*),
 * NULL past the end. */
enum {
  TGO__SETTING_FILE = 1, TGO__SETTING_ENV = 2, TGO__SETTING_APP = 4,
  TGO__SETTING_SECRET = 8, TGO__SETTING_PER_APP = 16, TGO__SETTING_FIXED = 32
};
TGO__EXPORT const char *tgo__config_setting(size_t i, unsigned *flags);
/* Re-reads the process environment (an app loaded a .env file, a test
 * conftest set OTEL_SDK_DISABLED) at environment precedence. Returns
 * tgo_enabled(). */
TGO__EXPORT int tgo__config_reload(void);

/* Like tgo_attr_str, but keeps the pointer: val must outlive every span
 * and never change, i.e. be a string literal or come from tgo__intern()
 * (the exporter remembers by address which such strings needed no PII
 * masking). */
TGO__EXPORT void tgo__attr_str_static(tgo_attrs *a, const char *key, const char *val, size_t len);
/* Batches of attributes whose keys are distinct literals, in
 * this batch and every earlier one on the span: between
 * tgo__attrs_fresh(a, 1) and tgo__attrs_fresh(a, 0), on a span whose
 * attributes all came this way, they are appended without the
 * duplicate-key scan; otherwise (anything set an attribute by key) they
 * behave as tgo_attr_str and tgo_attr_int. */
TGO__EXPORT void tgo__attrs_fresh(tgo_attrs *a, int on);
TGO__EXPORT void tgo__attr_str_new(tgo_attrs *a, const char *key, uint32_t key_hash, const char *val, size_t len);
TGO__EXPORT void tgo__attr_int_new(tgo_attrs *a, const char *key, uint32_t key_hash, int64_t val);
/* The span's key hash of a literal key (its length in the low 16 bits, its
 * first and last bytes above), folded at compile time: computing it per
 * append was a fifth of an append's instructions. */
#define TGO__KEY_HASH(key) \
  ((uint32_t)(sizeof key - 1) | (uint32_t)(unsigned char)(key)[0] << 16 | (uint32_t)(unsigned char)(key)[sizeof key - 2] << 24)
#define TGO__ATTR_STR_NEW(a, key, val, len) tgo__attr_str_new((a), key, TGO__KEY_HASH(key), (val), (len))
#define TGO__ATTR_INT_NEW(a, key, val) tgo__attr_int_new((a), key, TGO__KEY_HASH(key), (val))
/* tgo__attr_str_static the same way. */
TGO__EXPORT void tgo__attr_static_new(tgo_attrs *a, const char *key, uint32_t key_hash, const char *val, size_t len);
#define TGO__ATTR_STATIC_NEW(a, key, val, len) tgo__attr_static_new((a), key, TGO__KEY_HASH(key), (val), (len))
/* A run of attributes made once and appended to many spans (a SQL
 * statement's: the engine's and the statement's strings, the same for
 * every span of the statement; a Flask route's). Keys are distinct
 * literals. When every value is static (as for tgo__attr_static_new) a
 * span gets the run in one copy, where an append per attribute cost ~34
 * instructions each; otherwise, and whenever one copy cannot be had, the
 * run appends itself attribute by attribute, as the caller would have. */
typedef struct tgo__attr_run tgo__attr_run;
/* Room for cap attributes; NULL when out of memory. */
TGO__EXPORT tgo__attr_run *tgo__attr_run_new(unsigned cap);
TGO__EXPORT void tgo__attr_run_free(tgo__attr_run *run);
/* A string attribute: shared when not NULL (static: pointed at), else own
 * (copied into each span; it must live as long as the run), else none.
 * Each returns 0, or -1 when the run is full: then the run is unusable
 * and tgo__attrs_append_run appends nothing. */
TGO__EXPORT int tgo__attr_run_str(tgo__attr_run *run, const char *key, uint32_t key_hash, const char *shared,
                                  const char *own, size_t len);
TGO__EXPORT int tgo__attr_run_int(tgo__attr_run *run, const char *key, uint32_t key_hash, int64_t val);
#define TGO__ATTR_RUN_STR(run, key, shared, own, len) \
  tgo__attr_run_str((run), key, TGO__KEY_HASH(key), (shared), (own), (len))
#define TGO__ATTR_RUN_INT(run, key, val) tgo__attr_run_int((run), key, TGO__KEY_HASH(key), (val))
/* Appends the run between tgo__attrs_fresh(a, 1) and (a, 0). Returns 1
 * when it was one copy; 0 when it went attribute by attribute (some values
 * are copied, the span's memory is short, an attribute was set by key, the
 * value limit changed since the run was made) or appended nothing (the
 * run is unusable or NULL). */
TGO__EXPORT int tgo__attrs_append_run(tgo_attrs *a, const tgo__attr_run *run);
/* Names a span with a string that outlives it (a literal or tgo__intern's):
 * kept as a pointer, not copied. Start the span with a NULL name first. */
TGO__EXPORT void tgo__span_set_static_name(tgo_span *s, const char *name, size_t len);
/* Whether a recording span about to end will be exported: 0 only for the
 * local root of a trace tail keep is about to drop (no error, not slow),
 * whose attributes nobody will read. Fixes the span's end time. */
TGO__EXPORT int tgo__span_will_export(tgo_span *s);
/* Recorded only for tail keep: its trace is exported if it errs or runs slow. */
TGO__EXPORT int tgo__span_is_deferred(const tgo_span *s);
/* An immortal copy of s (the same pointer for equal strings), or NULL when
 * the bounded table is full: then copy instead. */
TGO__EXPORT const char *tgo__intern(const char *s, size_t len);

/* SQL for db.query.text: literals and placeholders become '?', IN lists
 * collapse to IN (?), comments go, whitespace folds, a trailing ';' goes.
 * Writes at most cap-1 bytes and a NUL; returns the length written. */
TGO__EXPORT size_t tgo__sql_normalize(const char *sql, size_t len, char *out, size_t cap);
/* From normalised SQL: the operation (first keyword) and the first table;
 * pointers into sql, lengths 0 when absent. */
TGO__EXPORT void tgo__sql_summary(const char *sql, size_t len, const char **op, size_t *op_len,
                                  const char **table, size_t *table_len);

/* A query string with the values of credential- and signature-like
 * parameters replaced by REDACTED. Bounded like tgo__sql_normalize. */
TGO__EXPORT size_t tgo__redact_query(const char *query, size_t len, char *out, size_t cap);

/* A cache or Redis key with its identifier segments (digits, '@', long
 * tokens) replaced by '?': "user:42:profile" -> "user:?:profile". */
TGO__EXPORT size_t tgo__key_pattern(const char *key, size_t len, char *out, size_t cap);
/* Masks e-mail addresses, payment card numbers, phone numbers and the
 * TIGEROPS_PII_PATTERNS matches in place ('*' per character, length kept),
 * as the exporter does to every exported string. Returns how many it masked;
 * 0 with TIGEROPS_PII_MASKING=false. */
TGO__EXPORT size_t tgo__pii_mask(char *text, size_t len);


/* Propagation (OTEL_PROPAGATORS): the configured propagators packed four
 * bits each, the first in the low bits; 0 is "none". */
enum { TGO__PROP_TRACECONTEXT = 1, TGO__PROP_BAGGAGE = 2, TGO__PROP_B3 = 3, TGO__PROP_B3MULTI = 4 };
/* OTEL_PROPAGATORS' default, "tracecontext,baggage", packed. */
#define TGO__PROPAGATORS_DEFAULT (TGO__PROP_TRACECONTEXT | TGO__PROP_BAGGAGE << 4)
TGO__EXPORT int tgo__propagators(void);
TGO__EXPORT int tgo__propagators_have(int props, int which);
/* The headers a carrier is asked for; a getter returns a borrowed value
 * (NULL when absent) that stays valid while the carrier does. */
enum {
  TGO__H_TRACEPARENT, TGO__H_TRACESTATE, TGO__H_BAGGAGE, TGO__H_B3, TGO__H_B3_TRACEID,
  TGO__H_B3_SPANID, TGO__H_B3_SAMPLED, TGO__H_B3_FLAGS, TGO__H_COUNT
};
typedef const char *(*tgo__header_get)(void *carrier, int which, size_t *len);
/* Fills ctx from the first configured propagator that yields a valid
 * context (returns 1), or returns 0; *baggage is the validated baggage
 * header (borrowed) when baggage is configured and one came. */
TGO__EXPORT int tgo__extract(int props, tgo__header_get get, void *carrier, tgo_span_context *ctx,
                             const char **baggage, size_t *baggage_len);
/* tgo_span_context.flags bit: no sampling decision came (B3 may omit it),
 * the local sampler decides as for a root. */
#define TGO__FLAG_DEFERRED 0x80
#define TGO__B3_LEN 51 /* shorter than TGO_TRACEPARENT_LEN */
TGO__EXPORT int tgo__b3_parse(const char *header, size_t len, tgo_span_context *out);
TGO__EXPORT int tgo__b3multi_parse(const char *tid, size_t tlen, const char *sid, size_t slen,
                                   const char *sampled, size_t sampled_len, const char *flags,
                                   size_t flags_len, tgo_span_context *out);
/* "{trace}-{span}-{0|1}" */
TGO__EXPORT size_t tgo__b3_format(const tgo_span_context *ctx, char out[TGO__B3_LEN + 1]);
#define TGO__BAGGAGE_MAX_BYTES 8192
#define TGO__BAGGAGE_MAX_MEMBERS 180
/* Validates a W3C baggage header within the limits above: its usable length
 * (trailing blanks dropped) or -EINVAL. */
TGO__EXPORT int tgo__baggage_check(const char *header, size_t len);
/* A span's baggage: given to a span (copied, shared by reference with the
 * spans started under it, recording or not), read back for injection. */
TGO__EXPORT void tgo__span_set_baggage(tgo_span *span, const char *baggage, size_t len);
TGO__EXPORT const char *tgo__span_baggage(const tgo_span *span, size_t *len);

/* OpenTelemetry API features the bridge needs: a link (its attributes, or
 * NULL when not recording or past TGO__SPAN_MAX_LINKS: counted as dropped),
 * an explicit start time, an explicit end time (both Unix ns). */
TGO__EXPORT tgo_attrs *tgo__span_add_link(tgo_span *span, const tgo_span_context *ctx);
TGO__EXPORT void tgo__span_set_start_time(tgo_span *span, uint64_t unix_ns);
TGO__EXPORT void tgo__span_end_at(tgo_span *span, uint64_t unix_ns);
/* tigerops-run --check: one test span to the configured collector, a
 * report on out; 0 when the collector accepted it. */
TGO__EXPORT int tgo__self_check(FILE *out);

/* ---- metrics (metrics.c): instruments aggregated per attribute set ------ */
enum { TGO__METRIC_COUNTER = 0, TGO__METRIC_UPDOWN, TGO__METRIC_GAUGE, TGO__METRIC_HISTOGRAM };
#define TGO__METRIC_MAX_BOUNDS 64
#define TGO__METRIC_DEFAULT_N_BOUNDS 14
#define TGO__METRIC_MAX_ATTRS 16         /* more are cut */
#define TGO__METRIC_MAX_ATTRS_BYTES 1024 /* a bigger encoded set goes to the overflow series */
#define TGO__METRIC_DEFAULT_LIMIT 2000   /* attribute sets per instrument, overflow included */
typedef struct tgo__metric tgo__metric;
typedef struct tgo__mseries tgo__mseries;
/* One attribute of a measurement: borrowed for the call only. */
enum { TGO__MATTR_STR = 1, TGO__MATTR_INT, TGO__MATTR_DOUBLE, TGO__MATTR_BOOL }; /* = TGO__V_* */
typedef struct {
  const char *key;
  uint32_t key_len;
  uint8_t type;   /* TGO__MATTR_* */
  uint32_t len;   /* of v.s */
  union {
    const char *s;
    int64_t i;
    double d;
    int b;
  } v;
} tgo__mattr;
/* The instrument named name, made at the first call (later calls with the
 * same name return it, whatever their kind/unit/bounds). bounds: histogram
 * bucket boundaries, increasing; NULL: the http.server.request.duration
 * ones. NULL on bad arguments or no memory. Never freed. */
TGO__EXPORT tgo__metric *tgo__metric_get(int kind, const char *name, const char *unit, const char *description,
                                         const double *bounds, size_t n_bounds);
/* The series of an attribute set (any order; NULL/0: the empty set): found
 * without a lock, made once when new, the overflow series past the limit.
 * The pointer stays valid for the process's life (also across fork). */
TGO__EXPORT tgo__mseries *tgo__metric_series(tgo__metric *m, const tgo__mattr *attrs, size_t n);
/* The same for a set whose keys are distinct and in byte order already (the
 * agent's own instruments): no sorting. */
TGO__EXPORT tgo__mseries *tgo__metric_series_sorted(tgo__metric *m, const tgo__mattr *attrs, size_t n);
/* counter: adds v (>= 0); updown: adds v; gauge: sets v; histogram: records
 * v, and span (may be NULL) as the bucket's exemplar when it is sampled. */
TGO__EXPORT void tgo__series_record(tgo__metric *m, tgo__mseries *s, double v, const tgo_span *span);
/* Whether metrics are recorded (tracing on, OTEL_METRICS_EXPORTER not none);
 * when not, tgo__metric_get returns NULL and recording on NULL does nothing. */
TGO__EXPORT int tgo__metrics_on(void);
/* Both of the above in one call. */
TGO__EXPORT void tgo__metric_record(tgo__metric *m, const tgo__mattr *attrs, size_t n, double v,
                                    const tgo_span *span);

/* HTTP server metrics (http_server_metrics.c), for every request: begin
 * counts it active and returns the series end takes it off again. */
typedef struct {
  const char *method, *route, *error_type; /* route, error_type: NULL/0 when none */
  size_t method_len, route_len, error_type_len;
  int https, status_code;                  /* status 0: none was sent */
  uint64_t duration_ns;
  tgo__mseries *active;                    /* begin's */
  const tgo_span *span;                    /* the request's span: the exemplar when sampled */
  /* The caller's memo for this route (NULL: none): the duration series
   * last used with it and the method, scheme and status it was for, in one
   * word, so the usual request finds its series without encoding and
   * hashing the attribute set. Zero it before first use. */
  _Atomic uint64_t *memo;
} tgo__http_server_request;
/* The literal of one of the nine HTTP methods (immortal: spans may point
 * at it), or NULL for any other. */
TGO__EXPORT const char *tgo__http_method_literal(const char *method, size_t len);
TGO__EXPORT tgo__mseries *tgo__http_server_begin(const char *method, size_t method_len, int https);
TGO__EXPORT void tgo__http_server_end(const tgo__http_server_request *r);
/* Python logging records (logs.c). A record as the glue reads it: borrowed
 * strings, copied by tgo__logs_emit. */
typedef struct {
  uint64_t time_ns;
  int level; /* Python levelno */
  int64_t line;
  const char *level_name, *body, *logger, *file, *function, *exc_type, *exc_message, *exc_stack;
  size_t level_name_len, body_len, logger_len, file_len, function_len, exc_type_len, exc_message_len,
      exc_stack_len;
  const tgo_span_context *ctx; /* NULL outside a span */
} tgo__log_view;
/* The levelno from which records are exported; INT_MAX when logs are not. */
TGO__EXPORT int tgo__logs_threshold(void);
/* Copies the record into the bounded log queue (a full queue drops and
 * counts it); never blocks on the exporter. */
TGO__EXPORT void tgo__logs_emit(const tgo__log_view *v);
/* The resource's service.name, as exported. */
TGO__EXPORT size_t tgo__service_name(char *out, size_t cap);
/* queued, dropped, exported, failed log records. */
TGO__EXPORT void tgo__logs_stats(unsigned long long out[4]);

#endif
