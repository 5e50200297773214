/* Private declarations shared by the tracer core (tgo__ names). */
#ifndef TGO__INTERNAL_H
#define TGO__INTERNAL_H

#include "config.h"

#define TGO__BUILDING 1
#include "tigerops/tigerops.h"
#include "tgo-ext.h"

#include <pthread.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define TGO__HIDDEN __attribute__((visibility("hidden")))
#define TGO__LIKELY(x) __builtin_expect(!!(x), 1)
#define TGO__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* 1 in an AddressSanitizer build (GCC says so with a macro, clang with
 * __has_feature): memory kept for reuse would hide a use after free. */
#if defined(__SANITIZE_ADDRESS__)
#define TGO__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TGO__ASAN 1
#endif
#endif
#ifndef TGO__ASAN
#define TGO__ASAN 0
#endif

/* ---- logging ---------------------------------------------------------- */
void tgo__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tgo__log_level(void);
/* Logs the first occurrence at this call site only: agent failures are told
 * once, never once per request. */
#define TGO__LOG_ONCE(level, ...)                                         \
  do {                                                                   \
    static atomic_bool tgo__told_;                                       \
    if (!atomic_exchange_explicit(&tgo__told_, true, memory_order_relaxed)) \
      tgo__log(level, __VA_ARGS__);                                      \
  } while (0)

/* ---- configuration ---------------------------------------------------- */
enum { TGO__EXPORTER_OTLP = 0, TGO__EXPORTER_CONSOLE, TGO__EXPORTER_NONE, TGO__EXPORTER_COUNT };
enum {
  TGO__SAMPLER_ALWAYS_ON = 0,
  TGO__SAMPLER_ALWAYS_OFF,
  TGO__SAMPLER_RATIO,
  TGO__SAMPLER_PARENT_ALWAYS_ON,
  TGO__SAMPLER_PARENT_ALWAYS_OFF,
  TGO__SAMPLER_PARENT_RATIO
};

/* OTEL_EXPORTER_OTLP_PROTOCOL values: indexes into config.c's protocols[]. */
enum { TGO__PROTOCOL_HTTP_PROTOBUF = 0, TGO__PROTOCOL_GRPC = 1, TGO__PROTOCOL_HTTP_JSON = 2 };

enum { TGO__LAYER_DEFAULT = 0, TGO__LAYER_FILE, TGO__LAYER_ENV, TGO__LAYER_APP };
#define TGO__MAX_SETTINGS 96
#define TGO__CONFIG_FILE_MAX (1 << 20) /* bytes; a bigger config file is refused */

typedef struct {
  int enabled;
  int exporter;
  int log_level;
  int sampler;
  double sampler_ratio;
  char service_name[256];
  char service_version[128];
  char environment[128];
  char endpoint[1024];        /* base URL; /v1/traces is appended */
  char traces_endpoint[1024]; /* full URL, wins over endpoint */
  char api_key[512];
  char headers[2048];         /* OTEL_EXPORTER_OTLP_HEADERS, raw */
  int protocol;               /* TGO__PROTOCOL_* */
  char certificate[1024];     /* CA file (PEM) that checks the collector; "": the system's */
  char client_certificate[1024];
  char client_key[1024];
  int insecure;               /* only for an endpoint without scheme (the spec's rule); see export */
  char resource_attributes[2048];
  char denylist[1024];
  int timeout_ms;
  int gzip;
  int schedule_delay_ms;
  int max_queue_size;
  int max_queue_bytes;        /* the queue's bound in span memory (tgo__span_mem), with max_queue_size */
  int max_batch_size;
  int attr_value_limit;
  int shutdown_timeout_ms;
  int slow_query_ms;          /* 0: off */
  int sqlcommenter;
  int n_plus_one_threshold;
  int keep_errors;            /* tail keep: export dropped traces that errored */
  int keep_slow_ms;           /* tail keep: ... or whose local root ran this long; 0: off */
  int keep_max_spans;         /* spans held at once waiting for their root's verdict */
  int pii_masking;
  char pii_patterns[2048];    /* extra POSIX ERE patterns, comma-separated */
  /* Read by the Python glue through tgo_config_get (one parser: the table). */
  char excluded_urls[2048];
  char capture_request[1024];
  char capture_response[1024];
  char sanitize_fields[1024];
  char denied_headers[1024];
  int trace_celery;
  int trace_cache;
  int capture_user; /* Flask-Login's user id as enduser.id: personal data, off by default */
  int celery_queue_depth;     /* 0 worker, 1 all, 2 off */
  char celery_queues[1024];   /* extra queue names whose depth is observed, comma-separated */
  int propagators;            /* OTEL_PROPAGATORS, packed: TGO__PROP_* four bits each */
  int metrics_exporter;       /* TGO__EXPORTER_* */
  int metric_interval_ms, metric_timeout_ms;
  char metrics_endpoint[1024]; /* full URL, wins over endpoint */
  int metrics_protocol;        /* only when set: else protocol */
  int metrics_temporality;     /* TGO__TEMPORALITY_* */
  int metrics_cardinality_limit;
  int logs_exporter;          /* OTEL_LOGS_EXPORTER: TGO__EXPORTER_* */
  char logs_endpoint[1024];   /* full URL, wins over endpoint + /v1/logs */
  int logs_protocol;          /* only when set: else protocol */
  int log_export_level;       /* Python levelno / 10 */
  int log_correlation;        /* OTEL_PYTHON_LOG_CORRELATION: the default format too */
  int logs_queue_size;
  /* Per setting of the table: the layer its value came from (TGO__LAYER_*),
   * so that re-reading the environment never overrides app.config. */
  unsigned char layer[TGO__MAX_SETTINGS];
} tgo__config;

extern tgo__config tgo__cfg;
extern pthread_mutex_t tgo__cfg_lock; /* guards string fields read by the exporter */
void tgo__config_defaults(tgo__config *c);
/* Loads file then environment into c; envp is the environment to read. */
void tgo__config_load(tgo__config *c, char **envp);
int tgo__config_apply(tgo__config *c, const char *key, const char *value, const char *origin);
int tgo__config_load_file(tgo__config *c, const char *path, int must_exist);
int tgo__config_load_stream(tgo__config *c, FILE *f, const char *name);
int tgo__parse_bool(const char *s, int *out);
/* Re-reads envp at environment precedence: values that changed since the
 * last read and were not set by app.config. Returns how many changed. */
int tgo__config_reload_env(tgo__config *c, char **envp, int started);
/* Warns about TIGEROPS_/OTEL_ names in envp that are ours misspelt. */
void tgo__config_check_names(char **envp);
/* Edit distance of a and b, or max+1 when it exceeds max. */
size_t tgo__edit_distance(const char *a, const char *b, size_t max);
/* The URL one traces export goes to under c's protocol (the gRPC method's
 * path for grpc, /v1/traces for HTTP); the caller holds tgo__cfg_lock for
 * tgo__cfg. Returns snprintf's count. */
int tgo__config_traces_url(const tgo__config *c, char *out, size_t cap);
/* The same for any signal (OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT: a full URL),
 * and the protocol its export uses. */
enum { TGO__SIGNAL_TRACES = 0, TGO__SIGNAL_METRICS, TGO__SIGNAL_LOGS, TGO__SIGNAL_COUNT };
int tgo__config_signal_url(const tgo__config *c, int signal, char *out, size_t cap);
int tgo__config_signal_protocol(const tgo__config *c, int signal);
/* The endpoint without user-info or query: they may carry credentials. */
void tgo__config_shown_url(const char *url, char *out, size_t cap);
/* The info-level start-up line: service, endpoint, protocol, sampler. */
void tgo__config_log_summary(const tgo__config *c, const char *what);

/* ---- ids and clocks --------------------------------------------------- */
void tgo__random_bytes(uint8_t *out, size_t n); /* fast, fork-aware, never all-zero ids */
void tgo__new_trace_id(uint8_t out[16]);
void tgo__new_span_id(uint8_t out[8]);
extern atomic_uint tgo__fork_generation;
static inline uint64_t tgo__now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- spans ------------------------------------------------------------ */
enum {
  TGO__V_STR = 1, TGO__V_INT, TGO__V_DOUBLE, TGO__V_BOOL,
  TGO__V_STR_ARRAY, TGO__V_INT_ARRAY, TGO__V_DOUBLE_ARRAY, TGO__V_BOOL_ARRAY
};

typedef struct {
  const char *s;
  uint32_t len;
} tgo__str;

typedef struct tgo__attr {
  struct tgo__attr *next;
  const char *key;
  uint32_t key_len;
  uint32_t key_hash; /* length and edge bytes: a cheap reject before memcmp */
  uint32_t n; /* string length, or array count */
  uint8_t type;
  uint8_t immortal; /* v.s is a literal or interned: the exporter may memoise its masking */
  union {
    const char *s;
    int64_t i;
    double d;
    int b;
    const tgo__str *sa;
    const int64_t *ia;
    const double *da;
    const uint8_t *ba;
  } v;
} tgo__attr;

struct tgo_attrs {
  tgo__attr *head, *tail;
  uint32_t count, dropped;
  tgo_span *span;
  uint8_t fresh; /* between tgo__attrs_fresh(a, 1) and (a, 0): tgo__attr_*_new append unchecked */
  uint8_t checked; /* an attribute was set by key (attr_slot): fresh appends could repeat it */
};

typedef struct tgo__event {
  struct tgo__event *next;
  uint64_t time_ns;
  const char *name;
  uint32_t name_len;
  struct tgo_attrs attrs;
} tgo__event;

/* A link to another span (OpenTelemetry links: batch consumers, fan-in). */
typedef struct tgo__link {
  struct tgo__link *next;
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t flags, is_remote;
  const char *tracestate;
  uint32_t tracestate_len;
  struct tgo_attrs attrs;
} tgo__link;

typedef struct tgo__chunk {
  struct tgo__chunk *next;
  size_t size;
  char data[];
} tgo__chunk;

/* A baggage header, shared read-only by the spans of a request. */
typedef struct tgo__baggage {
  atomic_int refs;
  uint32_t len;
  char data[];
} tgo__baggage;

struct tgo_span {
  atomic_int refs;
  uint8_t recording, ended, kind, status;
  uint8_t flags, has_parent, parent_is_remote;
  /* Recording although head sampling dropped the trace: held until the local
   * root ends and decides (tail keep). */
  uint8_t deferred;
  /* On a deferred local root: written under the tail lock; keep_trace is
   * also read without it (tgo__span_will_export). */
  _Atomic uint8_t keep_trace;
  uint8_t decided;
  struct tgo_span *local_root;     /* deferred spans; a child holds a reference */
  struct tgo_span *held_next, *held_head;
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t parent_span_id[8];
  uint64_t start_ns, end_ns, mono_start_ns;
  const char *name;
  uint32_t name_len;
  uint8_t name_immortal; /* name is a literal or interned (tgo__span_set_static_name) */
  const char *status_msg;
  uint32_t status_msg_len;
  const char *tracestate;
  uint32_t tracestate_len;
  tgo__baggage *baggage; /* one reference; NULL when none */
  struct tgo_attrs attrs;
  tgo__event *events, *events_tail;
  uint32_t n_events, dropped_events;
  tgo__link *links, *links_tail;
  uint32_t n_links, dropped_links;
  uint32_t inline_cap;   /* bytes of arena[], by kind at start (tgo__span_inline_cap) */
  uint32_t queued_bytes; /* what the span counts against TIGEROPS_MAX_QUEUE_BYTES, set at submit */
  size_t arena_used;  /* bytes taken from the arena, bounded per span */
  char *arena_pos;
  size_t arena_left;
  tgo__chunk *chunks;
  struct tgo_span *returned_next; /* freed: the next on a list of spans for reuse (span.c) */
  char arena[];
};

/* Allocates a chunk of size bytes and links it at *head. */
tgo__chunk *tgo__chunk_push(tgo__chunk **head, size_t size);
void tgo__chunks_free(tgo__chunk *head);

/* A server or consumer span carries the request's attributes (about 700
 * bytes for a plain GET), the others a few (a SQL span about 250: the
 * statement is interned). The rest goes to chunks of TGO__SPAN_CHUNK bytes
 * at least. Every queued span costs its whole inline arena, so these sizes
 * are most of the queue's memory. */
#define TGO__SPAN_INLINE_ROOT 1024
#define TGO__SPAN_INLINE_LEAF 512
#define TGO__SPAN_CHUNK 2048
#define TGO__SPAN_MAX_ARENA (256 * 1024)
#define TGO__SPAN_MAX_ATTRS 128
#define TGO__SPAN_MAX_EVENTS 128
#define TGO__SPAN_MAX_LINKS 128

void *tgo__span_alloc_slow(tgo_span *s, size_t n);
/* The heap bytes a span holds: itself, its inline arena, its chunks. */
static inline size_t tgo__span_mem(const tgo_span *s) { return sizeof *s + s->inline_cap + s->arena_used; }
/* Bump allocation from the span's inline arena; chunks past it. */
static inline void *tgo__span_alloc(tgo_span *s, size_t n) {
  n = (n + 7) & ~(size_t)7;
  if (TGO__LIKELY(n <= s->arena_left)) {
    void *p = s->arena_pos;
    s->arena_pos += n;
    s->arena_left -= n;
    return p;
  }
  return tgo__span_alloc_slow(s, n);
}
const char *tgo__span_strdup(tgo_span *s, const char *src, size_t *len);
void tgo__span_free(tgo_span *s);
void tgo__utf8_repair(unsigned char *p, size_t n); /* invalid bytes become '?' */
size_t tgo__utf8_cut(const char *s, size_t limit);
int tgo__is_ascii(const char *p, size_t n);
void tgo__attr_set_static_str(tgo_attrs *a, const char *key, const char *val, size_t len);
static inline int tgo__span_is_local_root(const tgo_span *s) {
  return !s->has_parent || s->parent_is_remote;
}

/* ---- sampling ---------------------------------------------------------- */
enum { TGO__SAMPLE_DROP = 0, TGO__SAMPLE_KEEP = 1, TGO__SAMPLE_DEFER = 2 };
/* Decides for a new span; parent_sampled is -1 without a parent. DEFER: the
 * local ratio dropped the trace but tail keep may still want it. */
int tgo__sample(const tgo__config *c, const uint8_t trace_id[16], int parent_sampled, int parent_remote);
/* Tail keep: admits one more held span within the bound; 0 when full. */
int tgo__tail_admit(int new_trace);
/* Ends a deferred span: held, or submitted/dropped per its root's verdict. */
void tgo__tail_end(tgo_span *s);
void tgo__tail_span_freed(tgo_span *s); /* from tgo__span_free */
void tgo__tail_unadmit(void);          /* an admitted span could not be made */
void tgo__tail_fork_child(void);

/* ---- PII masking -------------------------------------------------------- */
/* Between begin and end (the exporter's encode of one batch), mask_now masks
 * e-mails, cards, phones and the configured patterns in place, keeping the
 * length; outside, or with masking off, it does nothing. */
void tgo__pii_begin(void);
void tgo__pii_end(void);
size_t tgo__pii_mask_now(char *p, size_t n);
size_t tgo__pii_scan_builtin(unsigned char *p, size_t n); /* the built-in masks without the pre-check */
void tgo__pii_fork_child(void);
/* Between begin and end: changes whenever what mask_now masks may have
 * (the patterns recompiled, masking switched), so a verdict kept under one
 * generation holds while it lasts. 0 outside, or with masking off. */
extern unsigned tgo__pii_generation;
int tgo__pii_patterns_check(const char *list); /* 0, or -EINVAL with a warning */
/* Masks with '*', in place and keeping the length, the bind values that
 * SQLAlchemy and databases echo into error texts ("[parameters: ...]",
 * literals in "[SQL: ...]" and "LINE n:", "DETAIL:  Key (c)=(v)", ...).
 * Always on; returns the number of ranges masked. */
size_t tgo__scrub(char *p, size_t n);

/* ---- export pipeline --------------------------------------------------- */
/* Takes the starter's reference of an ended, recording span. */
void tgo__pipeline_submit(tgo_span *s);
void tgo__pipeline_fork_child(void);
void tgo__pipeline_fork_prepare(void);
void tgo__pipeline_fork_parent(void);
int tgo__pipeline_flush(int timeout_ms);
int tgo__pipeline_shutdown(int timeout_ms);

/* ---- exporters (exporter.c) ------------------------------------------- */
/* What the exporter thread hands batches of ended spans to; the entry is
 * looked up from tgo__cfg.exporter, never branched on by name. */
typedef struct tgo__exporter {
  const char *name; /* the TIGEROPS_EXPORTER value */
  /* On the exporter thread; takes the batch's references and counts the
   * spans exported or failed. abort_flag is set when a shutdown wants the
   * thread back: stop retrying. NULL: spans are dropped at submit and no
   * thread starts. */
  void (*export)(tgo_span **spans, size_t n, const atomic_int *abort_flag);
  /* After a flush has drained the queue: writes out what the exporter holds
   * back (the console's incomplete traces). May be NULL. */
  void (*flush)(void);
  /* In a forked child: drops what the parent buffered and resets the
   * exporter's locks. May be NULL. */
  void (*fork_child)(void);
} tgo__exporter;
extern const tgo__exporter tgo__exporter_otlp;    /* export.c: OTLP/HTTP protobuf */
extern const tgo__exporter tgo__exporter_console; /* console.c: traces as trees on stderr */
extern const tgo__exporter *const tgo__exporters[TGO__EXPORTER_COUNT];
static inline const tgo__exporter *tgo__exporter_current(void) {
  return tgo__exporters[tgo__cfg.exporter];
}
int tgo__exporter_index(const char *name); /* TGO__EXPORTER_*, or -1 */
void tgo__exporters_fork_child(void);

/* ---- counters (stats.c) ------------------------------------------------ */
typedef struct {
  atomic_ullong spans_started, spans_ended, spans_dropped, spans_exported, spans_failed, export_requests;
  atomic_ullong traces_tail_kept, spans_tail_dropped;
} tgo__counters;
extern tgo__counters tgo__stats;

/* A growable byte buffer for encoded payloads. */
typedef struct {
  uint8_t *data;
  size_t len, cap;
} tgo__buf;
int tgo__buf_reserve(tgo__buf *b, size_t extra);
/* At least extra bytes from offset at, every byte before at kept: for a
 * writer ahead of b->len, which is left as it was. */
int tgo__buf_reserve_at(tgo__buf *b, size_t at, size_t extra);
void tgo__buf_free(tgo__buf *b);

/* OTLP encoding of a batch, resource included. */
int tgo__otlp_encode_traces(tgo_span *const *spans, size_t n, tgo__buf *out);
size_t tgo__otlp_span_size(const tgo_span *s);
/* s written at p, exactly tgo__otlp_span_size(s) bytes there. */
uint8_t *tgo__otlp_span_write(uint8_t *p, const tgo_span *s);
/* s written at p, inside buf, which grows as the fields need (p moves
 * with it): the end, or NULL without memory. */
uint8_t *tgo__otlp_span_write_in(tgo__buf *buf, uint8_t *p, const tgo_span *s);
/* OTLP/JSON encoding of the same batch (otlp_json.c). */
int tgo__otlp_json_encode_traces(tgo_span *const *spans, size_t n, tgo__buf *out);
/* gzip Content-Encoding of a request body, appended to out (gzip.c). */
int tgo__gzip(const uint8_t *in, size_t len, tgo__buf *out);

/* The resource: key/value pairs copied at encode time. */
typedef struct {
  char key[128];
  char value[512];
} tgo__kv;
/* Every string valid UTF-8, whatever its source. */
size_t tgo__resource_collect(tgo__kv *out, size_t max);
/* The locks a thread the child does not have (the exporter, another request
 * thread) can hold at fork, reset by these in the child. Not static only so
 * that tests/unit/test_fork.c can hold them. */
extern pthread_mutex_t tgo__resource_lock, tgo__intern_lock;
void tgo__resource_fork_child(void);
void tgo__intern_fork_child(void);

/* HTTP POST through libcurl loaded at first use. */
typedef struct {
  long status;        /* 0 when no response */
  int retry_after_s;  /* -1 when absent */
  int transport_error;
  int curl_code;      /* CURLcode of a transport error */
  char error[256];
  char body[200];     /* the response body's first bytes, raw (not terminated) */
  size_t body_len;
  /* gRPC, from the response headers or trailers: */
  int grpc_status;    /* -1 when absent */
  int grpc_retry_ms;  /* RetryInfo's delay in grpc-status-details-bin, -1 when absent */
  char grpc_message[200]; /* percent-decoded, terminated */
} tgo__http_result;
/* How to reach the collector beyond the URL. */
typedef struct {
  int http2;             /* HTTP/2: prior knowledge for http://, ALPN h2 for https:// */
  const char *ca_file;   /* NULL or "": the system's CA bundle */
  const char *client_cert, *client_key;
} tgo__http_opts;
int tgo__http_post(const char *url, const char *const *headers, size_t n_headers,
                   const uint8_t *body, size_t len, int timeout_ms, tgo__http_result *res);
/* Same, with TLS files and HTTP/2 (opts may be NULL). */
int tgo__http_post_opts(const char *url, const char *const *headers, size_t n_headers, const uint8_t *body,
                        size_t len, int timeout_ms, const tgo__http_opts *opts, tgo__http_result *res);

/* http_plain.c: http:// without HTTP/2 or a proxy goes without libcurl. */
int tgo__http_plain_eligible(const char *url, const tgo__http_opts *opts);
int tgo__http_plain_post(const char *url, const char *const *headers, size_t n_headers, const uint8_t *body,
                         size_t len, int timeout_ms, tgo__http_result *res);
int tgo__http_past_cut(void); /* a shutdown's deadline for the request in flight has passed */

/* One export attempt of spans with the configured protocol, TLS and
 * headers, no retry (tigerops-run --check). Does not take the references. */
typedef struct {
  int accepted, retryable, transport_error;
  long http_status;   /* 0: no answer */
  int grpc_status;    /* -1: not gRPC or no answer */
  char url[1100];     /* without user-info */
  char detail[1600];  /* the error, or what the collector said */
} tgo__check_report;
int tgo__export_check(tgo_span **spans, size_t n, tgo__check_report *rep);
/* On the exporter thread: one signal's OTLP protobuf body (n_items data
 * points or records) to its endpoint, with retries (export.c). */
void tgo__export_signal(int signal, const tgo__buf *body, size_t n_items, const atomic_int *abort_flag);

/* ---- OTLP/gRPC (grpc.c): framing and status of unary Export calls ---- */
#define TGO__GRPC_TRACES_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define TGO__GRPC_METRICS_PATH "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
#define TGO__GRPC_LOGS_PATH "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
enum {
  TGO__GRPC_OK = 0, TGO__GRPC_CANCELLED = 1, TGO__GRPC_UNKNOWN = 2, TGO__GRPC_INVALID_ARGUMENT = 3,
  TGO__GRPC_DEADLINE_EXCEEDED = 4, TGO__GRPC_NOT_FOUND = 5, TGO__GRPC_ALREADY_EXISTS = 6,
  TGO__GRPC_PERMISSION_DENIED = 7, TGO__GRPC_RESOURCE_EXHAUSTED = 8, TGO__GRPC_FAILED_PRECONDITION = 9,
  TGO__GRPC_ABORTED = 10, TGO__GRPC_OUT_OF_RANGE = 11, TGO__GRPC_UNIMPLEMENTED = 12,
  TGO__GRPC_INTERNAL = 13, TGO__GRPC_UNAVAILABLE = 14, TGO__GRPC_DATA_LOSS = 15,
  TGO__GRPC_UNAUTHENTICATED = 16
};
/* Appends msg to out as one length-prefixed gRPC message, gzip-compressed
 * when gzip is set and compression works. Returns 1 compressed, 0 plain,
 * negative errno. */
int tgo__grpc_frame(const uint8_t *msg, size_t len, int gzip, tgo__buf *out);
/* Takes grpc-status, grpc-message and grpc-status-details-bin out of one
 * response header or trailer line ("name: value\r\n"); other lines are ignored. */
void tgo__grpc_on_header(tgo__http_result *r, const char *line, size_t len);
/* The call's status: the trailer's, else the HTTP status mapped as gRPC
 * does (HTTP 503 -> UNAVAILABLE...); -1 for a transport error. */
int tgo__grpc_status_of(const tgo__http_result *r);
/* The OTLP spec's retryable codes; RESOURCE_EXHAUSTED only with RetryInfo. */
int tgo__grpc_retryable(int status, int retry_ms);
const char *tgo__grpc_status_name(int status);
/* Reads ExportTraceServiceResponse.partial_success from a framed response
 * body, maybe only its head (a cut message reads as far as it goes): 1 when
 * it reports rejected spans or a message, 0 when not, -1 when the body is
 * not an uncompressed gRPC message. */
int tgo__grpc_partial_success(const uint8_t *body, size_t len, long long *rejected, char *msg, size_t cap);
/* Requests in flight or started later fail at this CLOCK_MONOTONIC time in
 * ns (0: no deadline); any thread may set it. */
void tgo__http_set_deadline(uint64_t mono_ns);


/* Parses "k=v,k2=v2" with percent-decoding (W3C baggage style lists used by
 * OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS). Calls cb per pair. */
int tgo__parse_kv_list(const char *s, void (*cb)(const char *k, const char *v, void *ud), void *ud);

/* ---- logs (logs.c, otlp_logs.c) ---------------------------------------- */
/* A Python log record copied into C memory on the logging thread, in one
 * allocation with its strings; freed after export. */
typedef struct tgo__log_rec {
  uint64_t time_ns, observed_ns;
  int64_t line;
  uint8_t severity;    /* OTLP SeverityNumber */
  uint8_t has_context; /* trace_id/span_id/flags are those of the span current at the call */
  uint8_t flags;
  uint8_t trace_id[16], span_id[8];
  tgo__str severity_text, body, logger, file, function, exc_type, exc_message, exc_stack;
  char data[];
} tgo__log_rec;
typedef struct {
  atomic_ullong queued, dropped, exported, failed;
} tgo__log_counters;
extern tgo__log_counters tgo__log_stats;
/* Python levelno as OTLP SeverityNumber (OpenTelemetry Python's mapping). */
uint8_t tgo__logs_severity(int level);
/* The exporter thread's part: records are waiting (no lock) ... */
size_t tgo__logs_pending(void);
/* ... sends up to one batch of them; returns how many it took. */
size_t tgo__logs_export_some(const atomic_int *abort_flag);
/* Flush bookkeeping: the sequence number of the last record queued, and
 * whether every record up to seq has been exported or dropped. */
uint64_t tgo__logs_submitted(void);
int tgo__logs_done(uint64_t seq);
/* Drops what is queued, counted as failed (a shutdown out of time). */
void tgo__logs_drop_queued(void);
void tgo__logs_fork_prepare(void);
void tgo__logs_fork_parent(void);
void tgo__logs_fork_child(void);
/* Starts the exporter thread if this process has none and wakes it when a
 * batch is ready (pipeline.c). */
void tgo__pipeline_kick(int wake_now);
/* The batch's Resource message body, appended to out (otlp.c). */
int tgo__otlp_resource(tgo__buf *out);
/* OTLP ExportLogsServiceRequest of a batch (otlp_logs.c). */
int tgo__otlp_encode_logs(tgo__log_rec *const *recs, size_t n, tgo__buf *out);
/* Sends a batch with the OTLP exporter's protocol, TLS and retries (export.c). */
void tgo__export_logs(tgo__log_rec *const *recs, size_t n, const atomic_int *abort_flag);

int tgo__hex_decode(const char *in, size_t n, uint8_t *out);
void tgo__hex_encode(const uint8_t *in, size_t n, char *out);

/* ---- metrics: collection and export (metrics.c, otlp_metrics.c) -------- */
_Static_assert((int)TGO__MATTR_STR == (int)TGO__V_STR && (int)TGO__MATTR_INT == (int)TGO__V_INT &&
                   (int)TGO__MATTR_DOUBLE == (int)TGO__V_DOUBLE && (int)TGO__MATTR_BOOL == (int)TGO__V_BOOL,
               "one set of value types");
enum { TGO__TEMPORALITY_CUMULATIVE = 0, TGO__TEMPORALITY_DELTA = 1, TGO__TEMPORALITY_LOWMEMORY = 2 };
extern const double tgo__metric_default_bounds[TGO__METRIC_DEFAULT_N_BOUNDS];
typedef struct {
  uint8_t trace_id[16], span_id[8];
  double value;
  uint64_t time_ns;
} tgo__mexemplar;
/* One series' point: attrs are OTLP KeyValue entries each tagged as field 7
 * (NumberDataPoint.attributes); the encoder re-tags them for histograms. */
typedef struct {
  const uint8_t *attrs;
  size_t attrs_len;
  double value;                        /* counter, updown, gauge */
  uint64_t count;                      /* histogram: */
  double sum, min, max;
  int has_min_max;
  const uint64_t *buckets;             /* n_bounds + 1 */
  const tgo__mexemplar *exemplars;
  size_t n_exemplars;
} tgo__mpoint;
typedef struct {
  const char *name, *unit, *description;
  int kind;                            /* TGO__METRIC_* */
  int temporality;                     /* OTLP AggregationTemporality: 1 delta, 2 cumulative; gauges 0 */
  const double *bounds;
  size_t n_bounds;
  uint64_t start_ns, time_ns;
  const tgo__mpoint *points;
  size_t n_points;
  void *arena;                         /* the snapshot's: points, buckets, exemplars */
} tgo__mdata;
typedef struct {
  tgo__mdata *metrics;
  size_t n;
} tgo__msnapshot;
/* Reads every instrument's series that have something to report; pref is
 * TGO__TEMPORALITY_* (delta/lowmemory: counters and histograms are reset by
 * the read, up-down counters and gauges stay cumulative). */
int tgo__metrics_snapshot(int pref, tgo__msnapshot *snap);
void tgo__metrics_snapshot_free(tgo__msnapshot *snap);
void tgo__metrics_set_limit(unsigned long limit); /* for instruments made from now on */
void tgo__metrics_init_clock(void);
void tgo__metrics_fork_child(void);
void tgo__metrics_reset(void); /* unit tests */
int tgo__metrics_active(void);  /* an instrument exists */
/* One collection, on the exporter thread, to OTEL_METRICS_EXPORTER (metrics_export.c). */
void tgo__metrics_export(const atomic_int *abort_flag);
/* The exporter thread, started for metrics in this process (pipeline.c). */
void tgo__pipeline_metrics_start(void);
/* ExportMetricsServiceRequest of a snapshot, resource included. */
int tgo__otlp_encode_metrics(const tgo__mdata *metrics, size_t n, tgo__buf *out);

#endif
