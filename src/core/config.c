/* Settings: defaults < ini file < environment < tgo_config_set (app.config). */
#include "tgo-internal.h"

#include <errno.h>
#include <ctype.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

tgo__config tgo__cfg = {.enabled = 0, .log_level = TGO_LOG_WARN}; /* on at tgo_init() */
pthread_mutex_t tgo__cfg_lock = PTHREAD_MUTEX_INITIALIZER;

#define TGO__DEFAULT_CONFIG_FILE "/etc/tigerops/tigerops.ini"

void tgo__config_defaults(tgo__config *c) {
  memset(c, 0, sizeof *c);
  c->enabled = 1;
  c->exporter = TGO__EXPORTER_OTLP;
  c->log_level = TGO_LOG_WARN;
  c->sampler = TGO__SAMPLER_PARENT_ALWAYS_ON;
  c->sampler_ratio = 1.0;
  strcpy(c->endpoint, "http://localhost:4318");
  c->timeout_ms = 10000;
  c->schedule_delay_ms = 5000;
  c->max_queue_size = 2048;
  c->max_batch_size = 512;
  c->attr_value_limit = 8192;
  c->shutdown_timeout_ms = 5000;
  c->slow_query_ms = 0;
  c->n_plus_one_threshold = 5;
  c->keep_errors = 1;
  c->keep_max_spans = 4096;
  c->pii_masking = 1;
}

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

static int copy_str(char *dst, size_t cap, const char *v) {
  size_t n = strlen(v);
  if (n >= cap)
    return -E2BIG;
  memcpy(dst, v, n + 1);
  return 0;
}

/* An endpoint must be an http(s) URL; anything else would only fail later,
 * once per batch, far from the typo. */
static int copy_url(char *dst, size_t cap, const char *v) {
  if (strncasecmp(v, "http://", 7) && strncasecmp(v, "https://", 8))
    return -EINVAL;
  int rc = copy_str(dst, cap, v);
  size_t n = strlen(dst);
  while (rc == 0 && n > 0 && dst[n - 1] == '/' && strncasecmp(dst, "http", 4) == 0 && n > 8)
    dst[--n] = '\0';
  return rc;
}

typedef enum {
  K_ENABLED, K_DISABLED, K_SERVICE, K_VERSION, K_ENV, K_ENDPOINT, K_TRACES_ENDPOINT,
  K_API_KEY, K_HEADERS, K_TIMEOUT, K_COMPRESSION, K_SAMPLE_RATE, K_SAMPLER, K_SAMPLER_ARG,
  K_EXPORTER, K_LOG_LEVEL, K_RESOURCE, K_DELAY, K_QUEUE, K_BATCH, K_DENYLIST,
  K_VALUE_LIMIT, K_SHUTDOWN_TIMEOUT, K_SLOW_QUERY, K_N_PLUS_ONE, K_SQLCOMMENTER,
  K_KEEP_ERRORS, K_KEEP_SLOW, K_KEEP_BUFFER, K_PII_MASKING, K_PII_PATTERNS
} key_id;

/* Environment order matters: OTEL_* first, so TIGEROPS_* wins when both are set. */
static const struct {
  const char *name;
  key_id id;
} keys[] = {
    {"OTEL_SDK_DISABLED", K_DISABLED},
    {"OTEL_SERVICE_NAME", K_SERVICE},
    {"OTEL_RESOURCE_ATTRIBUTES", K_RESOURCE},
    {"OTEL_EXPORTER_OTLP_ENDPOINT", K_ENDPOINT},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", K_TRACES_ENDPOINT},
    {"OTEL_EXPORTER_OTLP_HEADERS", K_HEADERS},
    {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", K_HEADERS},
    {"OTEL_EXPORTER_OTLP_TIMEOUT", K_TIMEOUT},
    {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", K_TIMEOUT},
    {"OTEL_EXPORTER_OTLP_COMPRESSION", K_COMPRESSION},
    {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", K_COMPRESSION},
    {"OTEL_TRACES_SAMPLER", K_SAMPLER},
    {"OTEL_TRACES_SAMPLER_ARG", K_SAMPLER_ARG},
    {"OTEL_TRACES_EXPORTER", K_EXPORTER},
    {"OTEL_BSP_SCHEDULE_DELAY", K_DELAY},
    {"OTEL_BSP_MAX_QUEUE_SIZE", K_QUEUE},
    {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", K_BATCH},
    {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", K_VALUE_LIMIT},
    {"TIGEROPS_ENABLED", K_ENABLED},
    {"TIGEROPS_SERVICE_NAME", K_SERVICE},
    {"TIGEROPS_SERVICE_VERSION", K_VERSION},
    {"TIGEROPS_ENVIRONMENT", K_ENV},
    {"TIGEROPS_ENDPOINT", K_ENDPOINT},
    {"TIGEROPS_API_KEY", K_API_KEY},
    {"TIGEROPS_SAMPLE_RATE", K_SAMPLE_RATE},
    {"TIGEROPS_EXPORTER", K_EXPORTER},
    {"TIGEROPS_LOG_LEVEL", K_LOG_LEVEL},
    {"TIGEROPS_DENYLIST", K_DENYLIST},
    {"TIGEROPS_ATTRIBUTE_VALUE_LIMIT", K_VALUE_LIMIT},
    {"TIGEROPS_SHUTDOWN_TIMEOUT_MS", K_SHUTDOWN_TIMEOUT},
    {"TIGEROPS_SLOW_QUERY_MS", K_SLOW_QUERY},
    {"TIGEROPS_N_PLUS_ONE_THRESHOLD", K_N_PLUS_ONE},
    {"TIGEROPS_SQLCOMMENTER", K_SQLCOMMENTER},
    {"TIGEROPS_KEEP_ERRORS", K_KEEP_ERRORS},
    {"TIGEROPS_KEEP_SLOW_MS", K_KEEP_SLOW},
    {"TIGEROPS_KEEP_BUFFER_SPANS", K_KEEP_BUFFER},
    {"TIGEROPS_PII_MASKING", K_PII_MASKING},
    {"TIGEROPS_PII_PATTERNS", K_PII_PATTERNS},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

static int find_key(const char *name) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (!strcasecmp(keys[i].name, name))
      return (int)i;
  return -1;
}

static int apply_sampler(tgo__config *c, const char *v) {
  static const struct {
    const char *name;
    int sampler;
  } names[] = {
      {"always_on", TGO__SAMPLER_ALWAYS_ON},
      {"always_off", TGO__SAMPLER_ALWAYS_OFF},
      {"traceidratio", TGO__SAMPLER_RATIO},
      {"parentbased_always_on", TGO__SAMPLER_PARENT_ALWAYS_ON},
      {"parentbased_always_off", TGO__SAMPLER_PARENT_ALWAYS_OFF},
      {"parentbased_traceidratio", TGO__SAMPLER_PARENT_RATIO},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!strcasecmp(v, names[i].name)) {
      c->sampler = names[i].sampler;
      return 0;
    }
  }
  return -EINVAL;
}

static int apply_value(tgo__config *c, key_id id, const char *v) {
  int b, rc = 0;
  double r;
  switch (id) {
  case K_ENABLED:
    return tgo__parse_bool(v, &c->enabled); /* writes only a valid value */
  case K_DISABLED:
    if ((rc = tgo__parse_bool(v, &b)) == 0 && b)
      c->enabled = 0;
    return rc;
  case K_SERVICE:
    return copy_str(c->service_name, sizeof c->service_name, v);
  case K_VERSION:
    return copy_str(c->service_version, sizeof c->service_version, v);
  case K_ENV:
    return copy_str(c->environment, sizeof c->environment, v);
  case K_ENDPOINT:
    return copy_url(c->endpoint, sizeof c->endpoint, v);
  case K_TRACES_ENDPOINT:
    return copy_url(c->traces_endpoint, sizeof c->traces_endpoint, v);
  case K_API_KEY:
    return copy_str(c->api_key, sizeof c->api_key, v);
  case K_HEADERS:
    return copy_str(c->headers, sizeof c->headers, v);
  case K_RESOURCE:
    return copy_str(c->resource_attributes, sizeof c->resource_attributes, v);
  case K_DENYLIST:
    return copy_str(c->denylist, sizeof c->denylist, v);
  case K_TIMEOUT:
    return parse_int(v, 1, 600000, &c->timeout_ms);
  case K_DELAY:
    return parse_int(v, 1, 600000, &c->schedule_delay_ms);
  case K_QUEUE:
    return parse_int(v, 1, 1000000, &c->max_queue_size);
  case K_BATCH:
    return parse_int(v, 1, 100000, &c->max_batch_size);
  case K_VALUE_LIMIT:
    return parse_int(v, 16, 1 << 20, &c->attr_value_limit);
  case K_SHUTDOWN_TIMEOUT:
    return parse_int(v, 0, 600000, &c->shutdown_timeout_ms);
  case K_SLOW_QUERY:
    return parse_int(v, 0, 3600000, &c->slow_query_ms);
  case K_N_PLUS_ONE:
    return parse_int(v, 2, 1000000, &c->n_plus_one_threshold);
  case K_SQLCOMMENTER:
    return tgo__parse_bool(v, &c->sqlcommenter);
  case K_KEEP_ERRORS:
    return tgo__parse_bool(v, &c->keep_errors);
  case K_KEEP_SLOW:
    return parse_int(v, 0, 3600000, &c->keep_slow_ms);
  case K_KEEP_BUFFER:
    return parse_int(v, 0, 1000000, &c->keep_max_spans);
  case K_PII_MASKING:
    return tgo__parse_bool(v, &c->pii_masking);
  case K_PII_PATTERNS:
    if (tgo__pii_patterns_check(v) < 0)
      return -EINVAL;
    return copy_str(c->pii_patterns, sizeof c->pii_patterns, v);
  case K_COMPRESSION:
    if (!strcasecmp(v, "gzip"))
      c->gzip = 1;
    else if (!strcasecmp(v, "none") || !*v)
      c->gzip = 0;
    else
      return -EINVAL;
    return 0;
  case K_SAMPLE_RATE:
    if ((rc = parse_ratio(v, &r)) == 0) {
      c->sampler = TGO__SAMPLER_PARENT_RATIO;
      c->sampler_ratio = r;
    }
    return rc;
  case K_SAMPLER:
    return apply_sampler(c, v);
  case K_SAMPLER_ARG:
    if ((rc = parse_ratio(v, &r)) == 0)
      c->sampler_ratio = r;
    return rc;
  case K_EXPORTER:
    if (!strcasecmp(v, "otlp"))
      c->exporter = TGO__EXPORTER_OTLP;
    else if (!strcasecmp(v, "console"))
      c->exporter = TGO__EXPORTER_CONSOLE;
    else if (!strcasecmp(v, "none"))
      c->exporter = TGO__EXPORTER_NONE;
    else
      return -EINVAL;
    return 0;
  case K_LOG_LEVEL: {
    static const char *const levels[] = {"none", "error", "warning", "info", "debug"};
    for (int i = 0; i <= TGO_LOG_DEBUG; i++) {
      if (!strcasecmp(v, levels[i])) {
        c->log_level = i;
        return 0;
      }
    }
    if (!strcasecmp(v, "warn")) {
      c->log_level = TGO_LOG_WARN;
      return 0;
    }
    return -EINVAL;
  }
  }
  return -EINVAL;
}

/* Applies one setting; a bad value leaves the previous one and warns once
 * with the key's name (never the value: it may be a secret). */
int tgo__config_apply(tgo__config *c, const char *key, const char *value, const char *origin) {
  int i = find_key(key);
  if (i < 0) {
    tgo__log(TGO_LOG_WARN, "%s: unknown setting %s ignored", origin, key);
    return -ENOENT;
  }
  pthread_mutex_lock(&tgo__cfg_lock);
  int rc = apply_value(c, keys[i].id, value);
  pthread_mutex_unlock(&tgo__cfg_lock);
  if (rc < 0)
    tgo__log(TGO_LOG_WARN, "%s: invalid value for %s, keeping the %s", origin, keys[i].name,
             c == &tgo__cfg ? "current value" : "default");
  return rc;
}

/* Short ini names ("service_name") mean the TIGEROPS_ setting; full names
 * of either family are accepted too. */
static int ini_entry(void *user, const char *section, const char *name, const char *value) {
  tgo__config *c = user;
  if (*section && strcasecmp(section, "tigerops") && strcasecmp(section, "otel")) {
    tgo__log(TGO_LOG_WARN, "config file: unknown section [%s] ignored", section);
    return 1;
  }
  char full[128];
  if (find_key(name) >= 0 || strlen(name) > 90)
    snprintf(full, sizeof full, "%s", name);
  else
    snprintf(full, sizeof full, "%s_%s", strcasecmp(section, "otel") ? "TIGEROPS" : "OTEL", name);
  for (char *p = full; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  tgo__config_apply(c, full, value, "config file");
  return 1;
}

int tgo__config_load_stream(tgo__config *c, FILE *f, const char *name) {
  int line = ini_parse_file(f, ini_entry, c);
  if (line > 0)
    tgo__log(TGO_LOG_WARN, "config file %s: syntax error on line %d ignored", name, line);
  return line > 0 ? -EINVAL : 0;
}

int tgo__config_load_file(tgo__config *c, const char *path, int must_exist) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int err = errno;
    if (must_exist)
      tgo__log(TGO_LOG_WARN, "cannot read config file %s: %s", path, strerror(err));
    return -err;
  }
  tgo__config_load_stream(c, f, path);
  fclose(f);
  return 0;
}

static const char *env_get(char **envp, const char *name) {
  size_t n = strlen(name);
  for (char **e = envp; e && *e; e++)
    if (!strncmp(*e, name, n) && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

void tgo__config_load(tgo__config *c, char **envp) {
  const char *lvl = env_get(envp, "TIGEROPS_LOG_LEVEL");
  if (lvl) /* so that warnings about the file obey it */
    apply_value(c, K_LOG_LEVEL, lvl);
  const char *path = env_get(envp, "TIGEROPS_CONFIG");
  if (path && *path)
    tgo__config_load_file(c, path, 1);
  else
    tgo__config_load_file(c, TGO__DEFAULT_CONFIG_FILE, 0);
  for (size_t i = 0; i < N_KEYS; i++) {
    const char *v = env_get(envp, keys[i].name);
    if (v)
      tgo__config_apply(c, keys[i].name, v, "environment");
  }
  if (c->max_batch_size > c->max_queue_size) {
    tgo__log(TGO_LOG_WARN, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE exceeds the queue size; using %d",
             c->max_queue_size);
    c->max_batch_size = c->max_queue_size;
  }
}

int tgo_config_set(const char *key, const char *value) {
  if (!key || !value)
    return -EINVAL;
  return tgo__config_apply(&tgo__cfg, key, value, "app.config");
}

int tgo__slow_query_ms(void) { return tgo__cfg.slow_query_ms; }
int tgo__n_plus_one_threshold(void) { return tgo__cfg.n_plus_one_threshold; }
int tgo__sqlcommenter(void) { return tgo__cfg.sqlcommenter; }

int tgo_config_get(const char *key, char *buf, size_t buflen) {
  int i = find_key(key);
  if (i < 0 || !buflen)
    return -ENOENT;
  tgo__config *c = &tgo__cfg;
  pthread_mutex_lock(&tgo__cfg_lock);
  switch (keys[i].id) {
  case K_ENABLED: snprintf(buf, buflen, "%s", c->enabled ? "true" : "false"); break;
  case K_DISABLED: snprintf(buf, buflen, "%s", c->enabled ? "false" : "true"); break;
  case K_SERVICE: snprintf(buf, buflen, "%s", c->service_name); break;
  case K_VERSION: snprintf(buf, buflen, "%s", c->service_version); break;
  case K_ENV: snprintf(buf, buflen, "%s", c->environment); break;
  case K_ENDPOINT: snprintf(buf, buflen, "%s", c->endpoint); break;
  case K_TRACES_ENDPOINT: snprintf(buf, buflen, "%s", c->traces_endpoint); break;
  case K_API_KEY: snprintf(buf, buflen, "%s", *c->api_key ? "(set)" : ""); break;
  case K_HEADERS: snprintf(buf, buflen, "%s", *c->headers ? "(set)" : ""); break;
  case K_RESOURCE: snprintf(buf, buflen, "%s", c->resource_attributes); break;
  case K_DENYLIST: snprintf(buf, buflen, "%s", c->denylist); break;
  case K_TIMEOUT: snprintf(buf, buflen, "%d", c->timeout_ms); break;
  case K_DELAY: snprintf(buf, buflen, "%d", c->schedule_delay_ms); break;
  case K_QUEUE: snprintf(buf, buflen, "%d", c->max_queue_size); break;
  case K_BATCH: snprintf(buf, buflen, "%d", c->max_batch_size); break;
  case K_VALUE_LIMIT: snprintf(buf, buflen, "%d", c->attr_value_limit); break;
  case K_SHUTDOWN_TIMEOUT: snprintf(buf, buflen, "%d", c->shutdown_timeout_ms); break;
  case K_SLOW_QUERY: snprintf(buf, buflen, "%d", c->slow_query_ms); break;
  case K_N_PLUS_ONE: snprintf(buf, buflen, "%d", c->n_plus_one_threshold); break;
  case K_SQLCOMMENTER: snprintf(buf, buflen, "%s", c->sqlcommenter ? "true" : "false"); break;
  case K_KEEP_ERRORS: snprintf(buf, buflen, "%s", c->keep_errors ? "true" : "false"); break;
  case K_KEEP_SLOW: snprintf(buf, buflen, "%d", c->keep_slow_ms); break;
  case K_KEEP_BUFFER: snprintf(buf, buflen, "%d", c->keep_max_spans); break;
  case K_PII_MASKING: snprintf(buf, buflen, "%s", c->pii_masking ? "true" : "false"); break;
  case K_PII_PATTERNS: snprintf(buf, buflen, "%s", c->pii_patterns); break;
  case K_COMPRESSION: snprintf(buf, buflen, "%s", c->gzip ? "gzip" : "none"); break;
  case K_SAMPLE_RATE:
  case K_SAMPLER_ARG: snprintf(buf, buflen, "%g", c->sampler_ratio); break;
  case K_SAMPLER: snprintf(buf, buflen, "%d", c->sampler); break;
  case K_EXPORTER:
    snprintf(buf, buflen, "%s", c->exporter == TGO__EXPORTER_OTLP ? "otlp"
                                : c->exporter == TGO__EXPORTER_CONSOLE ? "console" : "none");
    break;
  case K_LOG_LEVEL: snprintf(buf, buflen, "%d", c->log_level); break;
  }
  pthread_mutex_unlock(&tgo__cfg_lock);
  return 0;
}
