/* The OTLP/HTTP exporter (protobuf or JSON). One batch out: encode, compress, POST, and retry what the OTLP spec calls
 * retryable (429/502/503/504 honouring Retry-After; transport errors with
 * jittered exponential backoff). Runs only on the exporter thread. */
#include "tgo-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTEMPTS 5
#define MAX_BACKOFF_MS 30000

typedef struct {
  const char *names[40];
  char storage[40][1100];
  size_t n;
} header_list;

static void add_header(const char *k, const char *v, void *ud) {
  header_list *h = ud;
  if (h->n >= 40)
    return;
  int n = snprintf(h->storage[h->n], sizeof h->storage[h->n], "%s: %s", k, v);
  if (n < 0 || (size_t)n >= sizeof h->storage[h->n])
    return; /* a cut header would send a wrong credential */
  h->names[h->n] = h->storage[h->n];
  h->n++;
}

/* The OTLP/HTTP encodings, indexed by TGO__PROTOCOL_*: the one place that
 * picks an encoder and the Content-Type that names it. */
typedef struct {
  int (*encode)(tgo_span *const *spans, size_t n, tgo__buf *out);
  const char *content_type;
} http_encoding;

static const http_encoding encodings[] = {
    [TGO__PROTOCOL_HTTP_PROTOBUF] = {tgo__otlp_encode_traces, "application/x-protobuf"},
    [TGO__PROTOCOL_HTTP_JSON] = {tgo__otlp_json_encode_traces, "application/json"},
};

/* Everything the request needs, copied under the config lock because
 * app.config may change it while we send. */
typedef struct {
  char url[1100];
  int timeout_ms;
  int gzip;
  const http_encoding *encoding;
  header_list headers;
} send_plan;

static void plan_request(send_plan *p) {
  tgo__config *c = &tgo__cfg;
  pthread_mutex_lock(&tgo__cfg_lock);
  int n = *c->traces_endpoint ? snprintf(p->url, sizeof p->url, "%s", c->traces_endpoint)
                               : snprintf(p->url, sizeof p->url, "%s/v1/traces", c->endpoint);
  if (n < 0 || (size_t)n >= sizeof p->url)
    TGO__LOG_ONCE(TGO_LOG_WARN, "the OTLP endpoint URL is too long and was cut");
  p->timeout_ms = c->timeout_ms;
  p->gzip = c->gzip;
  p->encoding = &encodings[(unsigned)c->protocol < sizeof encodings / sizeof encodings[0] ? c->protocol : 0];
  p->headers.n = 0;
  add_header("Content-Type", p->encoding->content_type, &p->headers);
  if (*c->api_key) {
    char bearer[600];
    if (snprintf(bearer, sizeof bearer, "Bearer %s", c->api_key) < (int)sizeof bearer)
      add_header("Authorization", bearer, &p->headers);
  }
  if (*c->headers && tgo__parse_kv_list(c->headers, add_header, &p->headers))
    TGO__LOG_ONCE(TGO_LOG_WARN, "OTEL_EXPORTER_OTLP_HEADERS has malformed entries; they are skipped");
  pthread_mutex_unlock(&tgo__cfg_lock);
}

static int retryable(const tgo__http_result *r) {
  if (r->transport_error)
    return 1;
  return r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504;
}

/* Sleeps in small steps so a shutdown is not held up by a long backoff. */
static void backoff_sleep(int ms, const atomic_int *abort_flag) {
  while (ms > 0 && !atomic_load(abort_flag)) {
    int step = ms < 50 ? ms : 50;
    struct timespec ts = {0, step * 1000000L};
    nanosleep(&ts, NULL);
    ms -= step;
  }
}

/* The collector's own words, made safe for a log line: printable ASCII
 * only (no terminal escapes, no line breaks), at most what http.c kept. */
static void sanitise(const char *in, size_t n, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < cap; i++) {
    unsigned char c = (unsigned char)in[i];
    out[k++] = c >= 0x20 && c < 0x7F ? (char)c : c == '\n' || c == '\r' || c == '\t' ? ' ' : '?';
  }
  while (k && out[k - 1] == ' ')
    k--;
  out[k] = '\0';
}

/* A rejected credential is a setup mistake, not an outage: say which
 * settings send one and what the collector answered, once per process. */
static void log_refused(const char *url, const tgo__http_result *r) {
  char said[sizeof r->body + 1];
  sanitise(r->body, r->body_len, said, sizeof said);
  TGO__LOG_ONCE(TGO_LOG_ERROR,
                "export to %s refused with HTTP %ld (%s): check TIGEROPS_API_KEY (sent as "
                "\"Authorization: Bearer ...\") and OTEL_EXPORTER_OTLP_HEADERS; the collector said: "
                "\"%s\"; spans are dropped (logged once)",
                url, r->status, r->status == 401 ? "unauthorized" : "forbidden",
                *said ? said : "(nothing)");
}

static void send_with_retry(const uint8_t *body, size_t len, size_t n_spans, const send_plan *p,
                            const atomic_int *abort_flag) {
  int base_ms = 500;
  for (int attempt = 1;; attempt++) {
    tgo__http_result r;
    atomic_fetch_add_explicit(&tgo__stats.export_requests, 1, memory_order_relaxed);
    tgo__http_post(p->url, p->headers.names, p->headers.n, body, len, p->timeout_ms, &r);
    if (r.status >= 200 && r.status < 300) {
      atomic_fetch_add_explicit(&tgo__stats.spans_exported, n_spans, memory_order_relaxed);
      return;
    }
    if (!retryable(&r) || attempt >= MAX_ATTEMPTS || atomic_load(abort_flag)) {
      if (r.status == 401 || r.status == 403)
        log_refused(p->url, &r);
      else if (r.transport_error)
        TGO__LOG_ONCE(TGO_LOG_WARN, "export to %s failed: %s; spans dropped (logged once)", p->url,
                     r.error);
      else
        TGO__LOG_ONCE(TGO_LOG_WARN, "export to %s answered HTTP %ld; spans dropped (logged once)",
                     p->url, r.status);
      atomic_fetch_add_explicit(&tgo__stats.spans_failed, n_spans, memory_order_relaxed);
      return;
    }
    int delay;
    if (r.retry_after_s >= 0) {
      delay = r.retry_after_s * 1000;
      if (delay > MAX_BACKOFF_MS)
        delay = MAX_BACKOFF_MS;
    } else {
      uint8_t rnd;
      tgo__random_bytes(&rnd, 1);
      delay = base_ms / 2 + (int)((unsigned)base_ms * rnd / 255u);
      base_ms = base_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : base_ms * 2;
    }
    tgo__log(TGO_LOG_DEBUG, "export attempt %d failed (HTTP %ld); retrying in %d ms", attempt,
             r.status, delay);
    backoff_sleep(delay, abort_flag);
  }
}

/* The OTLP/HTTP exporter's batch (protobuf or JSON, as the plan says):
 * takes the spans' references. The plan comes first: it names the
 * encoding. */
static void otlp_export(tgo_span **spans, size_t n, const atomic_int *abort_flag) {
  tgo__buf body = {0}, zipped = {0};
  send_plan *plan = malloc(sizeof *plan);
  int rc = -ENOMEM;
  if (plan) {
    plan_request(plan);
    rc = plan->encoding->encode(spans, n, &body);
  }
  for (size_t i = 0; i < n; i++)
    tgo_span_unref(spans[i]);
  if (rc < 0) {
    TGO__LOG_ONCE(TGO_LOG_ERROR, "cannot encode a batch of %zu spans (%d); dropped", n, rc);
    atomic_fetch_add_explicit(&tgo__stats.spans_failed, n, memory_order_relaxed);
    goto out;
  }
  if (plan->gzip && tgo__gzip(body.data, body.len, &zipped) == 0) {
    add_header("Content-Encoding", "gzip", &plan->headers);
    send_with_retry(zipped.data, zipped.len, n, plan, abort_flag);
  } else {
    send_with_retry(body.data, body.len, n, plan, abort_flag);
  }
out:
  free(plan);
  tgo__buf_free(&body);
  tgo__buf_free(&zipped);
}

const tgo__exporter tgo__exporter_otlp = {"otlp", otlp_export, NULL, NULL};
