/* Settings: one table (name, type, default, bounds, where it may come from)
 * drives parsing, applying, getting and listing, for the C core and for the
 * Python glue alike. Layers: defaults < ini file < environment < app.config. */
#include "tgo-internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

tgo__config tgo__cfg = {.enabled = 0, .log_level = TGO_LOG_WARN}; /* on at tgo_init() */
pthread_mutex_t tgo__cfg_lock = PTHREAD_MUTEX_INITIALIZER;

#define TGO__DEFAULT_CONFIG_FILE "/etc/tigerops/tigerops.ini"

enum {
  T_BOOL,  /* int field, true/false */
  T_NOT,   /* OTEL_SDK_DISABLED: true clears the int field */
  T_INT,   /* int field within [lo, hi] */
  T_RATIO, /* double field within [0, 1] */
  T_RATE,  /* TIGEROPS_SAMPLE_RATE: a ratio that also picks the parent-based ratio sampler */
  T_STR,   /* char array */
  T_URL,   /* char array holding an http(s) URL, trailing '/' dropped */
  T_ENUM,  /* int field: the index of the value in names ("a|b": aliases) */
  T_PII,   /* char array of patterns checked by the PII masker */
  T_KV,    /* char array: k=v list, stored re-encoded with valid UTF-8 */
  T_CHECK, /* no field: a feature we do not have; values outside names warn */
  T_PROP,  /* int field: OTEL_PROPAGATORS, packed in order (see tgo__propagators) */
  T_NONE   /* no field: read elsewhere (TIGEROPS_CONFIG by this file) */
};

#define F_FILE TGO__SETTING_FILE
#define F_ENV TGO__SETTING_ENV
#define F_APP TGO__SETTING_APP
#define F_ALL (F_FILE | F_ENV | F_APP)
#define F_SECRET TGO__SETTING_SECRET
#define F_PER_APP TGO__SETTING_PER_APP
#define F_FIXED TGO__SETTING_FIXED
#define F_UTF8 64         /* repaired to valid UTF-8: it goes into the resource */
#define F_EMPTY_UNSET 128 /* an empty value counts as not set */
#define F_LIST 256        /* T_CHECK: every comma-separated item must be in names */

typedef struct {
  const char *name;
  unsigned char type;
  unsigned short flags;
  unsigned short off, size;
  long lo, hi;
  const char *def;          /* the default, as text; NULL: zero / an alias's */
  const char *const *names; /* T_ENUM values; T_CHECK accepted values */
  const char *hint;         /* T_CHECK, T_ENUM: what to say about other values */
} setting;

#define FIELD(f) offsetof(tgo__config, f), sizeof(((tgo__config *)0)->f)
#define NOFIELD 0, 0

static const char *const samplers[] = {"always_on", "always_off", "traceidratio", "parentbased_always_on",
                                       "parentbased_always_off", "parentbased_traceidratio", NULL};
static const char *const exporters[] = {"otlp", "console", "none", NULL};
/* Where Celery queue depth is observed (src/python/tigerops/_queue_depth.py). */
static const char *const queue_depth_modes[] = {"worker", "all", "off|none|false", NULL};
static const char *const levels[] = {"none", "error", "warning|warn", "info", "debug", NULL};
static const char *const compressions[] = {"none|", "gzip", NULL};
/* Indexed by TGO__PROTOCOL_*. */
static const char *const protocols[] = {"http/protobuf", "grpc", "http/json", NULL};
/* Indexed by TGO__PROP_*; "none" is 0. */
static const char *const propagators[] = {"none", "tracecontext", "baggage", "b3", "b3multi", NULL};
/* Indexed by TGO__TEMPORALITY_*. */
static const char *const temporalities[] = {"cumulative", "delta", "lowmemory", NULL};
/* Python's logging levels by tens: index * 10 is the levelno. */
static const char *const py_levels[] = {"notset", "debug", "info", "warning|warn", "error", "critical|fatal", NULL};

/* Several names for one field are aliases; in the environment OTEL_* names
 * are read before the others, so TIGEROPS_* wins, and later rows of a family
 * win over earlier ones (the more specific name). */
static const setting table[] = {
    {"TIGEROPS_ENABLED", T_BOOL, F_ALL, FIELD(enabled), 0, 0, "true", NULL, NULL},
    {"OTEL_SDK_DISABLED", T_NOT, F_ALL, FIELD(enabled), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_SERVICE_NAME", T_STR, F_ALL | F_UTF8, FIELD(service_name), 0, 0, NULL, NULL, NULL},
    {"OTEL_SERVICE_NAME", T_STR, F_ALL | F_UTF8, FIELD(service_name), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_SERVICE_VERSION", T_STR, F_ALL | F_UTF8, FIELD(service_version), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_ENVIRONMENT", T_STR, F_ALL | F_UTF8, FIELD(environment), 0, 0, NULL, NULL, NULL},
    {"OTEL_RESOURCE_ATTRIBUTES", T_KV, F_ALL, FIELD(resource_attributes), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_ENDPOINT", T_URL, F_ALL, FIELD(endpoint), 0, 0, "http://localhost:4318", NULL, NULL},
    {"OTEL_EXPORTER_OTLP_ENDPOINT", T_URL, F_ALL, FIELD(endpoint), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", T_URL, F_ALL, FIELD(traces_endpoint), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_API_KEY", T_STR, F_ALL | F_SECRET, FIELD(api_key), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_HEADERS", T_STR, F_ALL | F_SECRET, FIELD(headers), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", T_STR, F_ALL | F_SECRET, FIELD(headers), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TIMEOUT", T_INT, F_ALL, FIELD(timeout_ms), 1, 600000, "10000", NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", T_INT, F_ALL, FIELD(timeout_ms), 1, 600000, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_COMPRESSION", T_ENUM, F_ALL, FIELD(gzip), 0, 0, "none", compressions, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", T_ENUM, F_ALL, FIELD(gzip), 0, 0, NULL, compressions, NULL},
    {"OTEL_EXPORTER_OTLP_PROTOCOL", T_ENUM, F_ALL, FIELD(protocol), 0, 0, "http/protobuf", protocols, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", T_ENUM, F_ALL, FIELD(protocol), 0, 0, NULL, protocols, NULL},
    {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", T_ENUM, F_ALL, FIELD(logs_protocol), 0, 0, NULL, protocols, NULL},
    /* TLS files: paths, read by libcurl at each connection (a rotated
     * certificate is picked up without a restart). */
    {"OTEL_EXPORTER_OTLP_CERTIFICATE", T_STR, F_ALL, FIELD(certificate), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", T_STR, F_ALL, FIELD(certificate), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", T_STR, F_ALL, FIELD(client_certificate), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", T_STR, F_ALL, FIELD(client_certificate), 0, 0, NULL, NULL,
     NULL},
    {"OTEL_EXPORTER_OTLP_CLIENT_KEY", T_STR, F_ALL, FIELD(client_key), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", T_STR, F_ALL, FIELD(client_key), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_INSECURE", T_BOOL, F_ALL, FIELD(insecure), 0, 0, "false", NULL, NULL},
    {"OTEL_EXPORTER_OTLP_TRACES_INSECURE", T_BOOL, F_ALL, FIELD(insecure), 0, 0, NULL, NULL, NULL},
    {"OTEL_PROPAGATORS", T_PROP, F_ALL | F_EMPTY_UNSET, FIELD(propagators), 0, 0, "tracecontext,baggage", propagators,
     "unknown propagators are skipped (supported: tracecontext, baggage, b3, b3multi, none)"},
    {"OTEL_LOGS_EXPORTER", T_ENUM, F_ALL, FIELD(logs_exporter), 0, 0, "none", exporters, NULL},
    {"TIGEROPS_EXPORTER", T_ENUM, F_ALL, FIELD(exporter), 0, 0, "otlp", exporters, NULL},
    {"OTEL_TRACES_EXPORTER", T_ENUM, F_ALL, FIELD(exporter), 0, 0, NULL, exporters, NULL},
    {"OTEL_TRACES_SAMPLER", T_ENUM, F_ALL, FIELD(sampler), 0, 0, "parentbased_always_on", samplers, NULL},
    {"OTEL_TRACES_SAMPLER_ARG", T_RATIO, F_ALL, FIELD(sampler_ratio), 0, 0, "1", NULL, NULL},
    {"TIGEROPS_SAMPLE_RATE", T_RATE, F_ALL, FIELD(sampler_ratio), 0, 0, NULL, NULL, NULL},
    {"OTEL_BSP_SCHEDULE_DELAY", T_INT, F_ALL, FIELD(schedule_delay_ms), 1, 600000, "5000", NULL, NULL},
    /* The exporter's ring is sized once, when it first starts. */
    {"OTEL_BSP_MAX_QUEUE_SIZE", T_INT, F_ALL | F_FIXED, FIELD(max_queue_size), 1, 1000000, "2048", NULL, NULL},
    /* Spans are counted at their heap size (a GET's server span about 1.3 KB, a SQL span 0.8 KB). */
    {"TIGEROPS_MAX_QUEUE_BYTES", T_INT, F_ALL, FIELD(max_queue_bytes), 65536, 1 << 30, "393216", NULL, NULL},
    {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", T_INT, F_ALL, FIELD(max_batch_size), 1, 100000, "512", NULL, NULL},
    {"TIGEROPS_ATTRIBUTE_VALUE_LIMIT", T_INT, F_ALL, FIELD(attr_value_limit), 16, 1 << 20, "8192", NULL, NULL},
    {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", T_INT, F_ALL, FIELD(attr_value_limit), 16, 1 << 20, NULL, NULL, NULL},
    {"TIGEROPS_SHUTDOWN_TIMEOUT_MS", T_INT, F_ALL, FIELD(shutdown_timeout_ms), 0, 600000, "5000", NULL, NULL},
    {"TIGEROPS_SLOW_QUERY_MS", T_INT, F_ALL, FIELD(slow_query_ms), 0, 3600000, "0", NULL, NULL},
    {"TIGEROPS_N_PLUS_ONE_THRESHOLD", T_INT, F_ALL, FIELD(n_plus_one_threshold), 2, 1000000, "5", NULL, NULL},
    {"TIGEROPS_SQLCOMMENTER", T_BOOL, F_ALL, FIELD(sqlcommenter), 0, 0, "false", NULL, NULL},
    {"TIGEROPS_KEEP_ERRORS", T_BOOL, F_ALL, FIELD(keep_errors), 0, 0, "true", NULL, NULL},
    {"TIGEROPS_KEEP_SLOW_MS", T_INT, F_ALL, FIELD(keep_slow_ms), 0, 3600000, "0", NULL, NULL},
    {"TIGEROPS_KEEP_BUFFER_SPANS", T_INT, F_ALL, FIELD(keep_max_spans), 0, 1000000, "4096", NULL, NULL},
    {"TIGEROPS_PII_MASKING", T_BOOL, F_ALL, FIELD(pii_masking), 0, 0, "true", NULL, NULL},
    {"TIGEROPS_PII_PATTERNS", T_PII, F_ALL, FIELD(pii_patterns), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_LOG_LEVEL", T_ENUM, F_ALL, FIELD(log_level), 0, 0, "warning", levels, NULL},
    /* Decided once per process, before Python runs any app code. */
    {"TIGEROPS_DENYLIST", T_STR, F_FILE | F_ENV | F_FIXED, FIELD(denylist), 0, 0, NULL, NULL, NULL},
    /* Python-only: app.config sets them for that app alone. */
    {"OTEL_PYTHON_EXCLUDED_URLS", T_STR, F_ALL | F_PER_APP | F_EMPTY_UNSET, FIELD(excluded_urls), 0, 0, NULL,
     NULL, NULL},
    {"OTEL_PYTHON_FLASK_EXCLUDED_URLS", T_STR, F_ALL | F_PER_APP | F_EMPTY_UNSET, FIELD(excluded_urls), 0, 0,
     NULL, NULL, NULL},
    {"TIGEROPS_EXCLUDED_URLS", T_STR, F_ALL | F_PER_APP | F_EMPTY_UNSET, FIELD(excluded_urls), 0, 0, NULL, NULL,
     NULL},
    {"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", T_STR, F_ALL | F_PER_APP,
     FIELD(capture_request), 0, 0, NULL, NULL, NULL},
    {"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", T_STR, F_ALL | F_PER_APP,
     FIELD(capture_response), 0, 0, NULL, NULL, NULL},
    {"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", T_STR, F_ALL | F_PER_APP,
     FIELD(sanitize_fields), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_DENIED_HEADERS", T_STR, F_ALL | F_PER_APP, FIELD(denied_headers), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_TRACE_CELERY", T_BOOL, F_ALL, FIELD(trace_celery), 0, 0, "true", NULL, NULL},
    {"TIGEROPS_TRACE_CACHE", T_BOOL, F_ALL, FIELD(trace_cache), 0, 0, "true", NULL, NULL},
    {"TIGEROPS_CAPTURE_USER", T_BOOL, F_ALL, FIELD(capture_user), 0, 0, "false", NULL, NULL},
    {"TIGEROPS_CELERY_QUEUE_DEPTH", T_ENUM, F_ALL, FIELD(celery_queue_depth), 0, 0, "worker", queue_depth_modes,
     NULL},
    {"TIGEROPS_CELERY_QUEUES", T_STR, F_ALL, FIELD(celery_queues), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_CONFIG", T_NONE, F_ENV | F_FIXED, NOFIELD, 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_LIBRARY", T_NONE, F_ENV, NOFIELD, 0, 0, NULL, NULL, NULL}, /* tigerops-run's */
    /* System-wide mode: read by the preload constructor (src/preload/filter.c). */
    {"TIGEROPS_SYSTEM_WIDE", T_NONE, F_FILE | F_ENV | F_FIXED, NOFIELD, 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_INCLUDE_PATHS", T_NONE, F_FILE | F_ENV | F_FIXED, NOFIELD, 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_EXCLUDE_PATHS", T_NONE, F_FILE | F_ENV | F_FIXED, NOFIELD, 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_INCLUDE_ARGS", T_NONE, F_FILE | F_ENV | F_FIXED, NOFIELD, 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_EXCLUDE_ARGS", T_NONE, F_FILE | F_ENV | F_FIXED, NOFIELD, 0, 0, NULL, NULL, NULL},
    /* Metrics (metrics.c, pipeline.c). The per-signal endpoint is a full URL
     * (OTLP exporter spec); protocol, headers, TLS and compression are the
     * traces' unless the metrics rows say otherwise. */
    {"OTEL_METRICS_EXPORTER", T_ENUM, F_ALL, FIELD(metrics_exporter), 0, 0, "otlp", exporters, NULL},
    {"OTEL_METRIC_EXPORT_INTERVAL", T_INT, F_ALL, FIELD(metric_interval_ms), 1, 86400000, "60000", NULL, NULL},
    {"OTEL_METRIC_EXPORT_TIMEOUT", T_INT, F_ALL, FIELD(metric_timeout_ms), 1, 600000, "30000", NULL, NULL},
    {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", T_URL, F_ALL, FIELD(metrics_endpoint), 0, 0, NULL, NULL, NULL},
    {"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", T_ENUM, F_ALL, FIELD(metrics_protocol), 0, 0, NULL, protocols, NULL},
    {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", T_ENUM, F_ALL, FIELD(metrics_temporality), 0, 0,
     "cumulative", temporalities, NULL},
    {"TIGEROPS_METRICS_CARDINALITY_LIMIT", T_INT, F_ALL, FIELD(metrics_cardinality_limit), 2, 1000000, "2000", NULL,
     NULL},
    /* Logs (logs.c): Python records from this level up are exported. */
    {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", T_URL, F_ALL, FIELD(logs_endpoint), 0, 0, NULL, NULL, NULL},
    {"TIGEROPS_LOG_EXPORT_LEVEL", T_ENUM, F_ALL, FIELD(log_export_level), 0, 0, "warning", py_levels, NULL},
    {"OTEL_PYTHON_LOG_CORRELATION", T_BOOL, F_ALL, FIELD(log_correlation), 0, 0, "false", NULL, NULL},
    /* The log queue is sized once, when the first record is queued. */
    {"OTEL_BLRP_MAX_QUEUE_SIZE", T_INT, F_ALL | F_FIXED, FIELD(logs_queue_size), 1, 1000000, "2048", NULL, NULL},
};
#define N_SETTINGS (sizeof table / sizeof table[0])
_Static_assert(N_SETTINGS <= TGO__MAX_SETTINGS, "tgo__config.layer is too small");

/* Standard OTEL_* names of other SDK parts that are close to ours: never
 * "did you mean" them. */
static const char *const others[] = {
    "OTEL_BLRP_SCHEDULE_DELAY", "OTEL_BLRP_EXPORT_TIMEOUT", "OTEL_PYTHON_LOG_FORMAT", "OTEL_PYTHON_LOG_LEVEL",
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_LOG_LEVEL",
};

/* Standard names of parts we implement differently: set, each is told once
 * what applies instead, rather than ignored without a word. */
static const struct {
  const char *name, *instead;
} not_implemented[] = {
    {"OTEL_BLRP_SCHEDULE_DELAY", "log records leave on the spans' schedule (OTEL_BSP_SCHEDULE_DELAY)"},
    {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "log records go in batches of OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
    {"OTEL_BLRP_EXPORT_TIMEOUT", "log exports time out after OTEL_EXPORTER_OTLP_TIMEOUT"},
    {"OTEL_BSP_EXPORT_TIMEOUT", "span exports time out after OTEL_EXPORTER_OTLP_TIMEOUT"},
};

static int find(const char *name) {
  for (size_t i = 0; i < N_SETTINGS; i++)
    if (!strcasecmp(table[i].name, name))
      return (int)i;
  return -1;
}

/* The first row naming the same field: aliases share its layer. */
static size_t slot_of(size_t i) {
  if (!table[i].size)
    return i;
  for (size_t j = 0; j < i; j++)
    if (table[j].off == table[i].off && table[j].size)
      return j;
  return i;
}

static void *field(tgo__config *c, const setting *s) { return (char *)c + s->off; }

int tgo__parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (!strcasecmp(s, yes[i])) {
      *out = 1;
      return 0;
    }
    if (!strcasecmp(s, no[i])) {
      *out = 0;
      return 0;
    }
  }
  return -EINVAL;
}

static int parse_int(const char *s, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  while (*end && isspace((unsigned char)*end))
    end++;
  if (errno || end == s || *end || v < lo || v > hi)
    return -EINVAL;
  *out = (int)v;
  return 0;
}

static int parse_ratio(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < 0.0 || v > 1.0)
    return -EINVAL;
  *out = v;
  return 0;
}

/* Index of v among names, each "a|b" listing aliases; -1 if absent. */
static int enum_index(const char *const *names, const char *v, size_t n) {
  for (int i = 0; names[i]; i++) {
    for (const char *p = names[i];;) {
      const char *bar = strchr(p, '|');
      size_t len = bar ? (size_t)(bar - p) : strlen(p);
      if (len == n && !strncasecmp(p, v, n))
        return i;
      if (!bar)
        break;
      p = bar + 1;
    }
  }
  return -1;
}

static int copy_str(char *dst, size_t cap, const char *v, int repair) {
  size_t n = strlen(v);
  if (n >= cap)
    return -E2BIG;
  memcpy(dst, v, n + 1);
  if (repair)
    tgo__utf8_repair((unsigned char *)dst, n);
  return 0;
}

/* An endpoint must be an http(s) URL; anything else would only fail later,
 * once per batch, far from the typo. */
static int copy_url(char *dst, size_t cap, const char *v) {
  if (strncasecmp(v, "http://", 7) && strncasecmp(v, "https://", 8))
    return -EINVAL;
  int rc = copy_str(dst, cap, v, 0);
  size_t n = strlen(dst);
  while (rc == 0 && n > 8 && dst[n - 1] == '/')
    dst[--n] = '\0';
  return rc;
}

typedef struct {
  char *out;
  size_t cap, len;
  int overflow;
} kv_writer;

static void kv_put(kv_writer *w, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int escape = *p == '%' || *p == ',' || *p == '=' || *p <= ' ' || *p == 0x7f;
    size_t need = escape ? 3 : 1;
    if (w->len + need >= w->cap) {
      w->overflow = 1;
      return;
    }
    if (escape) {
      w->out[w->len++] = '%';
      w->out[w->len++] = hex[*p >> 4];
      w->out[w->len++] = hex[*p & 15];
    } else {
      w->out[w->len++] = (char)*p;
    }
  }
}

/* Each decoded pair, repaired to valid UTF-8 (a %FF must not reach the
 * resource: a strict decoder rejects the whole export), encoded again. */
static void kv_normalise_cb(const char *k, const char *v, void *ud) {
  kv_writer *w = ud;
  char key[256], val[1024];
  snprintf(key, sizeof key, "%s", k);
  snprintf(val, sizeof val, "%s", v);
  tgo__utf8_repair((unsigned char *)key, strlen(key));
  tgo__utf8_repair((unsigned char *)val, strlen(val));
  if (w->len && w->len + 1 < w->cap)
    w->out[w->len++] = ',';
  kv_put(w, key);
  if (w->len + 1 < w->cap)
    w->out[w->len++] = '=';
  kv_put(w, val);
}

static int copy_kv(char *dst, size_t cap, const char *v, int *malformed) {
  char tmp[4096];
  kv_writer w = {tmp, sizeof tmp < cap ? sizeof tmp : cap, 0, 0};
  *malformed = tgo__parse_kv_list(v, kv_normalise_cb, &w);
  if (w.overflow)
    return -E2BIG;
  tmp[w.len] = '\0';
  memcpy(dst, tmp, w.len + 1);
  return 0;
}

/* Every comma-separated item of v (or v itself) is one of names. */
static int accepted(const setting *s, const char *v) {
  if (!*v)
    return 1; /* set to nothing: not asking for the feature */
  if (!(s->flags & F_LIST))
    return enum_index(s->names, v, strlen(v)) >= 0;
  for (const char *p = v; p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    while (n && isspace((unsigned char)*p))
      p++, n--;
    while (n && isspace((unsigned char)p[n - 1]))
      n--;
    if (n && enum_index(s->names, p, n) < 0)
      return 0;
    p = comma ? comma + 1 : NULL;
  }
  return 1;
}

/* "tracecontext,baggage" -> packed, in order, without repeats; "none" (or
 * an empty list) turns propagation off. Unknown names are skipped and make
 * the value malformed (a warning); only unknown names: the value is kept. */
static int parse_propagators(const char *v, int *out, int *malformed) {
  int packed = 0, shift = 0, known = 0, unknown = 0;
  for (const char *p = v; p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    while (n && isspace((unsigned char)*p))
      p++, n--;
    while (n && isspace((unsigned char)p[n - 1]))
      n--;
    int k = n ? enum_index(propagators, p, n) : 0;
    if (k < 0)
      unknown++;
    else if (n)
      known++;
    if (k > 0 && !tgo__propagators_have(packed, k) && shift < 16) {
      packed |= k << shift;
      shift += 4;
    }
    p = comma ? comma + 1 : NULL;
  }
  if (unknown && !known)
    return -ENOTSUP;
  *malformed = unknown > 0;
  *out = packed;
  return 0;
}

static void put_propagators(char *buf, size_t buflen, int packed) {
  size_t len = 0;
  *buf = '\0';
  if (!packed)
    snprintf(buf, buflen, "none");
  for (int p = packed; p && len < buflen; p >>= 4) {
    int n = snprintf(buf + len, buflen - len, "%s%s", len ? "," : "", propagators[p & 15]);
    if (n < 0)
      break;
    len += (size_t)n;
  }
}

/* Parses v into c's field for s. Writes only a valid value. */
static int parse_into(tgo__config *c, const setting *s, const char *v, int *malformed) {
  void *f = field(c, s);
  int b, rc;
  double r;
  switch (s->type) {
  case T_BOOL:
    return tgo__parse_bool(v, f);
  case T_NOT:
    if ((rc = tgo__parse_bool(v, &b)) == 0 && b)
      *(int *)f = 0;
    return rc;
  case T_INT:
    return parse_int(v, s->lo, s->hi, f);
  case T_RATIO:
    return parse_ratio(v, f);
  case T_RATE:
    if ((rc = parse_ratio(v, &r)) == 0) {
      c->sampler = TGO__SAMPLER_PARENT_RATIO;
      c->sampler_ratio = r;
    }
    return rc;
  case T_STR:
    return copy_str(f, s->size, v, s->flags & F_UTF8);
  case T_URL:
    return copy_url(f, s->size, v);
  case T_ENUM:
    if ((b = enum_index(s->names, v, strlen(v))) < 0)
      return s->hint ? -ENOTSUP : -EINVAL; /* a known feature we lack: say so */
    *(int *)f = b;
    return 0;
  case T_PII:
    if (tgo__pii_patterns_check(v) < 0)
      return -EINVAL;
    return copy_str(f, s->size, v, 0);
  case T_KV:
    return copy_kv(f, s->size, v, malformed);
  case T_CHECK:
    return accepted(s, v) ? 0 : -ENOTSUP;
  case T_PROP:
    return parse_propagators(v, f, malformed);
  case T_NONE:
    return 0;
  }
  return -EINVAL;
}

static void set_layer(tgo__config *c, size_t i, int layer) {
  c->layer[slot_of(i)] = (unsigned char)layer;
  if (table[i].type == T_RATE) /* it chose the sampler too */
    c->layer[slot_of((size_t)find("OTEL_TRACES_SAMPLER"))] = (unsigned char)layer;
}

/* Applies setting i at a layer; a bad value leaves the previous one and
 * warns with the setting's name (never the value: it may be a secret). */
static int apply_at(tgo__config *c, size_t i, const char *v, int layer, const char *origin) {
  const setting *s = &table[i];
  unsigned from = layer == TGO__LAYER_FILE ? F_FILE : layer == TGO__LAYER_APP ? F_APP : F_ENV;
  if (!(s->flags & from)) {
    tgo__log(TGO_LOG_WARN, "%s: %s cannot be set there; ignored", origin, s->name);
    return -EPERM;
  }
  if ((s->flags & F_EMPTY_UNSET) && !*v)
    return 0;
  if ((s->flags & F_FIXED) && c == &tgo__cfg && layer > TGO__LAYER_ENV && tgo_enabled()) {
    tgo__log(TGO_LOG_WARN, "%s: %s takes effect only at process start; ignored", origin, s->name);
    return -EBUSY;
  }
  int malformed = 0;
  pthread_mutex_lock(&tgo__cfg_lock);
  int rc = parse_into(c, s, v, &malformed);
  if (rc == 0 && s->size)
    set_layer(c, i, layer);
  pthread_mutex_unlock(&tgo__cfg_lock);
  if (rc == -ENOTSUP)
    tgo__log(TGO_LOG_WARN, "%s: %s: %s", origin, s->name, s->hint);
  else if (rc < 0)
    tgo__log(TGO_LOG_WARN, "%s: invalid value for %s, keeping the %s", origin, s->name,
             c == &tgo__cfg ? "current value" : "default");
  else if (malformed && s->hint)
    tgo__log(TGO_LOG_WARN, "%s: %s: %s", origin, s->name, s->hint);
  else if (malformed)
    tgo__log(TGO_LOG_WARN, "%s: %s has malformed entries; they are skipped", origin, s->name);
  return rc;
}

void tgo__config_defaults(tgo__config *c) {
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < N_SETTINGS; i++) {
    int malformed;
    if (table[i].def)
      parse_into(c, &table[i], table[i].def, &malformed);
  }
}

/* Levenshtein distance with one row, giving up past max. */
size_t tgo__edit_distance(const char *a, const char *b, size_t max) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 127 || lb > 127)
    return max + 1;
  if ((la > lb ? la - lb : lb - la) > max)
    return max + 1;
  size_t row[128];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0], best = row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = toupper((unsigned char)a[i - 1]) != toupper((unsigned char)b[j - 1]);
      size_t v = diag + cost;
      if (up + 1 < v)
        v = up + 1;
      if (row[j - 1] + 1 < v)
        v = row[j - 1] + 1;
      row[j] = v;
      diag = up;
      if (v < best)
        best = v;
    }
    if (best > max)
      return max + 1;
  }
  return row[lb];
}

/* The setting an unknown name most likely meant, or NULL when none is close
 * (other parts of the OpenTelemetry SDK have many OTEL_* names of their own). */
static const char *suggest(const char *name) {
  size_t len = strlen(name);
  if (len < 8 || find(name) >= 0)
    return NULL;
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
    if (!strcasecmp(others[i], name))
      return NULL;
  size_t max = len >= 24 ? 3 : 2, best = max + 1;
  const char *pick = NULL;
  for (size_t i = 0; i < N_SETTINGS; i++) {
    size_t d = tgo__edit_distance(name, table[i].name, max);
    if (d < best) {
      best = d;
      pick = table[i].name;
    }
  }
  return pick;
}

static void warn_unknown(const char *origin, const char *name) {
  const char *close = suggest(name);
  if (close)
    tgo__log(TGO_LOG_WARN, "%s: unknown setting %s ignored; did you mean %s?", origin, name, close);
  else
    tgo__log(TGO_LOG_WARN, "%s: unknown setting %s ignored", origin, name);
}

/* Applies one setting by name; origin names the layer ("config file",
 * "app.config"; anything else is the environment). */
int tgo__config_apply(tgo__config *c, const char *key, const char *value, const char *origin) {
  int i = find(key);
  if (i < 0) {
    warn_unknown(origin, key);
    return -ENOENT;
  }
  int layer = !strcmp(origin, "config file") ? TGO__LAYER_FILE
              : !strcmp(origin, "app.config") ? TGO__LAYER_APP
                                               : TGO__LAYER_ENV;
  return apply_at(c, (size_t)i, value, layer, origin);
}

/* Short ini names ("service_name") mean the TIGEROPS_ setting, or else the
 * OTEL_ one ([otel]: the other way round); full names are accepted too. */
static int ini_entry(void *user, const char *section, const char *name, const char *value) {
  tgo__config *c = user;
  int otel = !strcasecmp(section, "otel");
  if (*section && strcasecmp(section, "tigerops") && !otel) {
    tgo__log(TGO_LOG_WARN, "config file: unknown section [%s] ignored", section);
    return 1;
  }
  char full[160];
  int i = strlen(name) < 100 ? find(name) : -1;
  for (int k = 0; i < 0 && k < 2 && strlen(name) < 100; k++) {
    snprintf(full, sizeof full, "%s_%s", (k == 0) == otel ? "OTEL" : "TIGEROPS", name);
    i = find(full);
  }
  if (i < 0) {
    int prefixed = !strncasecmp(name, "TIGEROPS_", 9) || !strncasecmp(name, "OTEL_", 5);
    snprintf(full, sizeof full, "%s%.100s", prefixed ? "" : otel ? "OTEL_" : "TIGEROPS_", name);
    for (char *p = full; *p; p++)
      *p = (char)toupper((unsigned char)*p);
    warn_unknown("config file", full);
    return 1;
  }
  apply_at(c, (size_t)i, value, TGO__LAYER_FILE, "config file");
  return 1;
}

int tgo__config_load_stream(tgo__config *c, FILE *f, const char *name) {
  int line = ini_parse_file(f, ini_entry, c);
  if (line > 0)
    tgo__log(TGO_LOG_WARN, "config file %s: syntax error on line %d ignored", name, line);
  return line > 0 ? -EINVAL : 0;
}

/* Only a regular file of bounded size is read, and the open never blocks:
 * TIGEROPS_CONFIG naming a FIFO, a device or a huge file must not hang or
 * flood the process at start. */
int tgo__config_load_file(tgo__config *c, const char *path, int must_exist) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int err = errno;
    if (must_exist)
      tgo__log(TGO_LOG_WARN, "cannot read config file %s: %s", path, strerror(err));
    return -err;
  }
  struct stat st;
  int rc = 0;
  char *text = NULL;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    tgo__log(TGO_LOG_WARN, "config file %s is not a regular file; ignored", path);
    rc = -EINVAL;
    goto out;
  }
  if (st.st_size > TGO__CONFIG_FILE_MAX) {
    tgo__log(TGO_LOG_WARN, "config file %s is larger than %d bytes; ignored", path, TGO__CONFIG_FILE_MAX);
    rc = -EFBIG;
    goto out;
  }
  /* st_size may lie (procfs) or grow: the read itself is bounded too. */
  size_t cap = (size_t)st.st_size + 1, len = 0;
  text = malloc(cap + 1);
  if (!text) {
    rc = -ENOMEM;
    goto out;
  }
  for (;;) {
    if (len == cap) {
      if (cap > TGO__CONFIG_FILE_MAX) {
        tgo__log(TGO_LOG_WARN, "config file %s is larger than %d bytes; ignored", path, TGO__CONFIG_FILE_MAX);
        rc = -EFBIG;
        goto out;
      }
      size_t ncap = cap * 2 > TGO__CONFIG_FILE_MAX + 1 ? TGO__CONFIG_FILE_MAX + 1 : cap * 2;
      char *p = realloc(text, ncap + 1);
      if (!p) {
        rc = -ENOMEM;
        goto out;
      }
      text = p;
      cap = ncap;
    }
    ssize_t n = read(fd, text + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      tgo__log(TGO_LOG_WARN, "cannot read config file %s: %s", path, strerror(errno));
      rc = -EIO;
      goto out;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  text[len] = '\0';
  int line = ini_parse_string(text, ini_entry, c);
  if (line > 0) {
    tgo__log(TGO_LOG_WARN, "config file %s: syntax error on line %d ignored", path, line);
    rc = -EINVAL;
  }
out:
  free(text);
  close(fd);
  return rc;
}

static const char *env_get(char **envp, const char *name) {
  size_t n = strlen(name);
  for (char **e = envp; e && *e; e++)
    if (!strncmp(*e, name, n) && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

/* What the environment held for each setting at the last read (a hash, 0:
 * absent), so a re-read applies only what changed: never a value app.config
 * replaced, and a bad value is warned about once. */
static uint64_t env_seen[N_SETTINGS];

static uint64_t hash_text(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h | 1;
}

static void fix_batch_size(tgo__config *c) {
  if (c->max_batch_size > c->max_queue_size) {
    tgo__log(TGO_LOG_WARN, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE exceeds the queue size; using %d",
             c->max_queue_size);
    c->max_batch_size = c->max_queue_size;
  }
}

int tgo__config_reload_env(tgo__config *c, char **envp, int started) {
  int changed = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < N_SETTINGS; i++) {
      const setting *s = &table[i];
      int is_otel = !strncmp(s->name, "OTEL_", 5);
      if (!(s->flags & F_ENV) || is_otel != (pass == 0))
        continue;
      const char *v = env_get(envp, s->name);
      if (!v)
        continue;
      uint64_t h = hash_text(v);
      if (h == env_seen[i])
        continue;
      env_seen[i] = h;
      if (s->size && c->layer[slot_of(i)] > TGO__LAYER_ENV)
        continue;
      if (started && (s->flags & F_FIXED)) {
        tgo__log(TGO_LOG_WARN, "environment: %s changed after the agent started; it takes effect at the "
                               "next start", s->name);
        continue;
      }
      if (apply_at(c, i, v, TGO__LAYER_ENV, "environment") == 0 && s->size)
        changed++;
    }
  }
  fix_batch_size(c);
  return changed;
}

void tgo__config_check_names(char **envp) {
  static uint64_t told[32];
  static size_t n_told;
  for (char **e = envp; e && *e; e++) {
    if (strncmp(*e, "TIGEROPS_", 9) && strncmp(*e, "OTEL_", 5))
      continue;
    const char *eq = strchr(*e, '=');
    char name[128];
    if (!eq || (size_t)(eq - *e) >= sizeof name)
      continue;
    memcpy(name, *e, (size_t)(eq - *e));
    name[eq - *e] = '\0';
    const char *instead = NULL;
    for (size_t i = 0; i < sizeof not_implemented / sizeof not_implemented[0]; i++)
      if (!strcasecmp(not_implemented[i].name, name))
        instead = not_implemented[i].instead;
    const char *close = instead ? NULL : suggest(name);
    if (!close && !instead)
      continue;
    uint64_t h = hash_text(name);
    size_t k = 0;
    while (k < n_told && told[k] != h)
      k++;
    if (k < n_told)
      continue;
    if (n_told < sizeof told / sizeof told[0])
      told[n_told++] = h;
    if (instead)
      tgo__log(TGO_LOG_WARN, "environment: %s is not implemented and is ignored: %s", name, instead);
    else
      tgo__log(TGO_LOG_WARN, "environment: unknown setting %s ignored; did you mean %s?", name, close);
  }
}

void tgo__config_load(tgo__config *c, char **envp) {
  const char *lvl = env_get(envp, "TIGEROPS_LOG_LEVEL");
  int level;
  /* Warnings about the file and the environment obey the level already;
   * before the tracer starts, the level in force is the global one. */
  if (lvl && (level = enum_index(levels, lvl, strlen(lvl))) >= 0) {
    c->log_level = level;
    if (!tgo_enabled())
      tgo__cfg.log_level = level;
  }
  const char *path = env_get(envp, "TIGEROPS_CONFIG");
  if (path && *path)
    tgo__config_load_file(c, path, 1);
  else
    tgo__config_load_file(c, TGO__DEFAULT_CONFIG_FILE, 0);
  memset(env_seen, 0, sizeof env_seen);
  tgo__config_reload_env(c, envp, 0);
  tgo__config_check_names(envp);
}

static void put_enum(char *buf, size_t buflen, const char *const *names, int v);

void tgo__config_shown_url(const char *url, char *out, size_t cap) {
  const char *scheme = strstr(url, "://");
  const char *host = scheme ? scheme + 3 : url;
  const char *at = strchr(host, '@'), *slash = strchr(host, '/');
  if (at && (!slash || at < slash))
    host = at + 1;
  snprintf(out, cap, "%.*s%.*s", scheme ? (int)(scheme + 3 - url) : 0, url, (int)strcspn(host, "?#"), host);
}

/* Per signal (TGO__SIGNAL_*): the OTLP/HTTP path appended to the endpoint
 * and the gRPC method's path. */
typedef struct {
  const char *http_path, *grpc_path;
} signal_path;
static const signal_path signal_paths[TGO__SIGNAL_COUNT] = {
    [TGO__SIGNAL_TRACES] = {"/v1/traces", TGO__GRPC_TRACES_PATH},
    [TGO__SIGNAL_METRICS] = {"/v1/metrics", TGO__GRPC_METRICS_PATH},
    [TGO__SIGNAL_LOGS] = {"/v1/logs", TGO__GRPC_LOGS_PATH},
};

/* The signal's own full URL setting (OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT). */
static const char *signal_endpoint(const tgo__config *c, int signal) {
  switch (signal) {
  case TGO__SIGNAL_METRICS:
    return c->metrics_endpoint;
  case TGO__SIGNAL_LOGS:
    return c->logs_endpoint;
  default:
    return c->traces_endpoint;
  }
}

/* For gRPC the endpoint names the server only (the OTLP exporter spec: used
 * as is, no /v1/traces); the method's path replaces any path it has. The
 * default endpoint follows the protocol: 4317 is the gRPC port. */
int tgo__config_traces_url(const tgo__config *c, char *out, size_t cap) {
  return tgo__config_signal_url(c, TGO__SIGNAL_TRACES, out, cap);
}

int tgo__config_signal_protocol(const tgo__config *c, int signal) {
  if (signal == TGO__SIGNAL_METRICS && c->layer[slot_of((size_t)find("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"))] !=
                                           TGO__LAYER_DEFAULT)
    return c->metrics_protocol;
  if (signal == TGO__SIGNAL_LOGS &&
      c->layer[slot_of((size_t)find("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"))] != TGO__LAYER_DEFAULT)
    return c->logs_protocol;
  return c->protocol;
}

int tgo__config_signal_url(const tgo__config *c, int signal, char *out, size_t cap) {
  const char *own = signal_endpoint(c, signal);
  if (tgo__config_signal_protocol(c, signal) != TGO__PROTOCOL_GRPC)
    return *own ? snprintf(out, cap, "%s", own) : snprintf(out, cap, "%s%s", c->endpoint, signal_paths[(unsigned)signal < TGO__SIGNAL_COUNT ? signal : 0].http_path);
  const char *base = own;
  if (!*base)
    base = c->layer[slot_of((size_t)find("TIGEROPS_ENDPOINT"))] == TGO__LAYER_DEFAULT ? "http://localhost:4317"
                                                                                      : c->endpoint;
  const char *host = strstr(base, "://");
  host = host ? host + 3 : base;
  return snprintf(out, cap, "%.*s%s", (int)(host - base + strcspn(host, "/?#")), base, signal_paths[(unsigned)signal < TGO__SIGNAL_COUNT ? signal : 0].grpc_path);
}

static void find_service_cb(const char *k, const char *v, void *ud) {
  if (!strcmp(k, "service.name"))
    snprintf(ud, 256, "%s", v);
}

void tgo__config_log_summary(const tgo__config *c, const char *what) {
  if (tgo__log_level() < TGO_LOG_INFO)
    return;
  char service[256] = "unknown_service:python", url[1100], shown[1100];
  pthread_mutex_lock(&tgo__cfg_lock);
  tgo__parse_kv_list(c->resource_attributes, find_service_cb, service);
  if (*c->service_name)
    snprintf(service, sizeof service, "%s", c->service_name);
  tgo__config_traces_url(c, url, sizeof url);
  pthread_mutex_unlock(&tgo__cfg_lock);
  tgo__config_shown_url(url, shown, sizeof shown);
  char sampler[64];
  if (c->sampler == TGO__SAMPLER_RATIO || c->sampler == TGO__SAMPLER_PARENT_RATIO)
    snprintf(sampler, sizeof sampler, "%s(%g)", samplers[c->sampler], c->sampler_ratio);
  else
    snprintf(sampler, sizeof sampler, "%s", samplers[c->sampler]);
  char protocol[32];
  put_enum(protocol, sizeof protocol, protocols, c->protocol);
  tgo__log(TGO_LOG_INFO, "%s %s: service=%s endpoint=%s protocol=%s%s sampler=%s exporter=%s", what,
           PACKAGE_VERSION, service, shown, protocol, c->gzip ? "+gzip" : "", sampler, exporters[c->exporter]);
}

int tgo__config_reload(void) {
  extern char **environ;
  if (!tgo_enabled())
    return 0;
  tgo__config_check_names(environ);
  if (tgo__config_reload_env(&tgo__cfg, environ, 1) > 0)
    tgo__config_log_summary(&tgo__cfg, "settings re-read from the environment; tracer");
  return tgo_enabled();
}

const char *tgo__config_setting(size_t i, unsigned *flags) {
  if (i >= N_SETTINGS)
    return NULL;
  if (flags)
    *flags = table[i].flags & (F_ALL | F_SECRET | F_PER_APP | F_FIXED);
  return table[i].name;
}

int tgo_config_set(const char *key, const char *value) {
  if (!key || !value)
    return -EINVAL;
  return tgo__config_apply(&tgo__cfg, key, value, "app.config");
}

int tgo__slow_query_ms(void) { return tgo__cfg.slow_query_ms; }
int tgo__n_plus_one_threshold(void) { return tgo__cfg.n_plus_one_threshold; }
int tgo__sqlcommenter(void) { return tgo__cfg.sqlcommenter; }
int tgo__propagators(void) { return tgo__cfg.propagators; }

/* The first name of an enum value ("warning|warn" -> "warning"). */
static void put_enum(char *buf, size_t buflen, const char *const *names, int v) {
  const char *name = names[v];
  snprintf(buf, buflen, "%.*s", (int)strcspn(name, "|"), name);
}

/* The current value as text that tgo_config_set takes back; secrets are
 * only "(set)" or empty. */
int tgo_config_get(const char *key, char *buf, size_t buflen) {
  int i = key ? find(key) : -1;
  if (i < 0 || !buflen)
    return -ENOENT;
  const setting *s = &table[i];
  tgo__config *c = &tgo__cfg;
  void *f = field(c, s);
  pthread_mutex_lock(&tgo__cfg_lock);
  switch (s->type) {
  case T_BOOL: snprintf(buf, buflen, "%s", *(int *)f ? "true" : "false"); break;
  case T_NOT: snprintf(buf, buflen, "%s", *(int *)f ? "false" : "true"); break;
  case T_INT: snprintf(buf, buflen, "%d", *(int *)f); break;
  case T_RATIO:
  case T_RATE: snprintf(buf, buflen, "%.15g", *(double *)f); break;
  case T_ENUM: put_enum(buf, buflen, s->names, *(int *)f); break;
  case T_PROP: put_propagators(buf, buflen, *(int *)f); break;
  case T_STR:
  case T_URL:
  case T_PII:
  case T_KV:
    snprintf(buf, buflen, "%s", !(s->flags & F_SECRET) ? (const char *)f : *(const char *)f ? "(set)" : "");
    break;
  case T_CHECK: /* what is in use */
    if (s->names[0])
      put_enum(buf, buflen, s->names, 0);
    else
      *buf = '\0';
    break;
  default: *buf = '\0'; break;
  }
  pthread_mutex_unlock(&tgo__cfg_lock);
  return 0;
}
