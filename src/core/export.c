/* The OTLP exporter, HTTP/protobuf, HTTP/JSON or gRPC (the protocol is the one
 * dispatch point: request plan, wire body, verdict). One batch out: encode,
 * compress, POST, and retry what the OTLP spec calls retryable (HTTP
 * 429/502/503/504 honouring Retry-After; gRPC UNAVAILABLE and the others of
 * grpc.c, honouring RetryInfo; transport errors) with jittered exponential
 * backoff. Runs only on the exporter thread (and once in tigerops-run --check). */
#include "tgo-internal.h"

#include <curl/curl.h> /* error codes only: libcurl itself is loaded by http.c */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The encodings, indexed by TGO__PROTOCOL_*: the one place that picks an
 * encoder and the Content-Type that names it (gRPC frames protobuf). */
typedef struct {
  int (*encode)(tgo_span *const *spans, size_t n, tgo__buf *out);
  const char *content_type;
} http_encoding;

static const http_encoding encodings[] = {
    [TGO__PROTOCOL_HTTP_PROTOBUF] = {tgo__otlp_encode_traces, "application/x-protobuf"},
    [TGO__PROTOCOL_GRPC] = {tgo__otlp_encode_traces, "application/grpc"},
    [TGO__PROTOCOL_HTTP_JSON] = {tgo__otlp_json_encode_traces, "application/json"},
};

/* Everything the request needs, copied under the config lock because
 * app.config may change it while we send. */
typedef struct {
  char url[1100];
  int timeout_ms;
  int gzip;
  const http_encoding *encoding;
  int protocol;
  int signal; /* TGO__SIGNAL_*: the path and the counters */
  char ca_file[1024], client_cert[1024], client_key[1024];
  header_list headers;
} send_plan;

static void plan_signal(send_plan *p, int signal) {
  tgo__config *c = &tgo__cfg;
  pthread_mutex_lock(&tgo__cfg_lock);
  int n = tgo__config_signal_url(c, signal, p->url, sizeof p->url);
  if (n < 0 || (size_t)n >= sizeof p->url)
    TGO__LOG_ONCE(TGO_LOG_WARN, "the OTLP endpoint URL is too long and was cut");
  p->signal = signal;
  p->timeout_ms = signal == TGO__SIGNAL_METRICS ? c->metric_timeout_ms : c->timeout_ms;
  p->gzip = c->gzip;
  p->protocol = tgo__config_signal_protocol(c, signal);
  p->encoding = &encodings[(unsigned)p->protocol < sizeof encodings / sizeof encodings[0] ? p->protocol
                                                                                         : TGO__PROTOCOL_HTTP_PROTOBUF];
  _Static_assert(sizeof p->ca_file == sizeof c->certificate && sizeof p->client_cert == sizeof c->client_certificate &&
                     sizeof p->client_key == sizeof c->client_key,
                 "TLS paths are copied whole");
  memcpy(p->ca_file, c->certificate, sizeof p->ca_file);
  memcpy(p->client_cert, c->client_certificate, sizeof p->client_cert);
  memcpy(p->client_key, c->client_key, sizeof p->client_key);
  int insecure = c->insecure;
  p->headers.n = 0;
  add_header("Content-Type", p->encoding->content_type, &p->headers);
  if (p->protocol == TGO__PROTOCOL_GRPC) {
    char deadline[32];
    add_header("TE", "trailers", &p->headers); /* gRPC servers refuse a call without it */
    snprintf(deadline, sizeof deadline, "%dm", p->timeout_ms);
    add_header("grpc-timeout", deadline, &p->headers);
  }
  if (*c->api_key) {
    char bearer[600];
    if (snprintf(bearer, sizeof bearer, "Bearer %s", c->api_key) < (int)sizeof bearer)
      add_header("Authorization", bearer, &p->headers);
  }
  if (*c->headers && tgo__parse_kv_list(c->headers, add_header, &p->headers))
    TGO__LOG_ONCE(TGO_LOG_WARN, "OTEL_EXPORTER_OTLP_HEADERS has malformed entries; they are skipped");
  pthread_mutex_unlock(&tgo__cfg_lock);
  if (insecure && !strncasecmp(p->url, "https://", 8))
    TGO__LOG_ONCE(TGO_LOG_WARN, "OTEL_EXPORTER_OTLP_INSECURE=true is ignored for an https:// endpoint: the "
                                "scheme decides (OTLP exporter spec); use http:// for plain text (logged once)");
}

static void plan_request(send_plan *p) { plan_signal(p, TGO__SIGNAL_TRACES); }

/* The body as it goes on the wire: a gRPC message, or gzip for HTTP when
 * asked; *out points into wire or body. */
static int make_wire(send_plan *p, const tgo__buf *body, tgo__buf *wire, const uint8_t **out, size_t *len) {
  if (p->protocol == TGO__PROTOCOL_GRPC) {
    int rc = tgo__grpc_frame(body->data, body->len, p->gzip, wire);
    if (rc < 0)
      return rc;
    if (rc == 1)
      add_header("grpc-encoding", "gzip", &p->headers);
    *out = wire->data;
    *len = wire->len;
    return 0;
  }
  if (p->gzip && tgo__gzip(body->data, body->len, wire) == 0) {
    add_header("Content-Encoding", "gzip", &p->headers);
    *out = wire->data;
    *len = wire->len;
  } else {
    *out = body->data;
    *len = body->len;
  }
  return 0;
}

static void post(const send_plan *p, const uint8_t *body, size_t len, tgo__http_result *r) {
  tgo__http_opts opts = {p->protocol == TGO__PROTOCOL_GRPC, p->ca_file, p->client_cert, p->client_key};
  tgo__http_post_opts(p->url, p->headers.names, p->headers.n, body, len, p->timeout_ms, &opts, r);
}

/* The server ended the handshake with a TLS alert (no or a wrong client
 * certificate, no common protocol): its TLS settings, or ours, must change. */
static int tls_refused(const tgo__http_result *r) {
  /* The code varies with the layer that saw it (TLS read, HTTP/2 framing). */
  return r->transport_error && strstr(r->error, " alert ") != NULL;
}

/* TLS set up wrongly: the same files fail the same way on a retry, so the
 * batch is dropped at once, with the setting to fix. */
static int tls_setup_error(const tgo__http_result *r) {
  return r->transport_error && (r->curl_code == CURLE_SSL_CACERT_BADFILE || r->curl_code == CURLE_SSL_CERTPROBLEM ||
                                r->curl_code == CURLE_PEER_FAILED_VERIFICATION ||
                                r->curl_code == CURLE_SSL_CIPHER || r->curl_code == CURLE_SSL_ISSUER_ERROR ||
                                tls_refused(r));
}

enum { SENT_OK, SENT_RETRY, SENT_FAIL };

/* What one answer means; *hint_ms: the server's wish for the next try (-1: ours). */
static int judge(const send_plan *p, const tgo__http_result *r, int *hint_ms) {
  *hint_ms = -1;
  if (tls_setup_error(r))
    return SENT_FAIL;
  if (p->protocol == TGO__PROTOCOL_GRPC) {
    int st = tgo__grpc_status_of(r);
    if (st == TGO__GRPC_OK)
      return SENT_OK;
    if (st < 0)
      return SENT_RETRY;
    if (!tgo__grpc_retryable(st, r->grpc_retry_ms))
      return SENT_FAIL;
    *hint_ms = r->grpc_retry_ms > 0 ? r->grpc_retry_ms : r->retry_after_s >= 0 ? r->retry_after_s * 1000 : -1;
    return SENT_RETRY;
  }
  if (r->status >= 200 && r->status < 300)
    return SENT_OK;
  if (r->transport_error || r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504) {
    *hint_ms = r->retry_after_s >= 0 ? r->retry_after_s * 1000 : -1;
    return SENT_RETRY;
  }
  return SENT_FAIL;
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
static void log_refused(const char *shown_url, const tgo__http_result *r) {
  char said[sizeof r->body + 1];
  sanitise(r->body, r->body_len, said, sizeof said);
  TGO__LOG_ONCE(TGO_LOG_ERROR,
                "export to %s refused with HTTP %ld (%s): check TIGEROPS_API_KEY (sent as "
                "\"Authorization: Bearer ...\") and OTEL_EXPORTER_OTLP_HEADERS; the collector said: "
                "\"%s\"; spans are dropped (logged once)",
                shown_url, r->status, r->status == 401 ? "unauthorized" : "forbidden",
                *said ? said : "(nothing)");
}

/* One line a user can act on when TLS is set up wrongly: which setting,
 * which endpoint, what the TLS library said. */
static void tls_message(const send_plan *p, const tgo__http_result *r, char *out, size_t cap) {
  char url[1100];
  tgo__config_shown_url(p->url, url, sizeof url);
  int n;
  switch (r->curl_code) {
  case CURLE_SSL_CACERT_BADFILE:
    n = snprintf(out, cap, "cannot use the CA file of OTEL_EXPORTER_OTLP_CERTIFICATE (%s) for %s: %s", p->ca_file, url,
             r->error);
    break;
  case CURLE_SSL_CERTPROBLEM:
    n = snprintf(out, cap,
             "cannot use the client certificate/key of OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (%s) and "
             "OTEL_EXPORTER_OTLP_CLIENT_KEY (%s) for %s: %s",
             *p->client_cert ? p->client_cert : "unset", *p->client_key ? p->client_key : "unset", url, r->error);
    break;
  default:
    if (tls_refused(r)) {
      n = snprintf(out, cap,
                   "the TLS server at %s refused the connection: %s (a server that asks for a client certificate "
                   "needs OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY%s)",
                   url, r->error, *p->client_cert ? ", and one it trusts" : "");
      break;
    }
    n = snprintf(out, cap,
             "the TLS certificate of %s is not trusted by %s: %s (OTEL_EXPORTER_OTLP_CERTIFICATE names the CA "
             "file that signed it)",
             url, *p->ca_file ? p->ca_file : "the system CA bundle", r->error);
    break;
  }
  if (n >= (int)cap && cap > 4)
    memcpy(out + cap - 4, "...", 4); /* paths are long; the line stays whole */
}

/* The collector's refusal in its own words, made safe for a log line. */
static void grpc_said(const tgo__http_result *r, char *out, size_t cap) {
  const char *m = *r->grpc_message ? r->grpc_message : r->body;
  size_t n = *r->grpc_message ? strlen(r->grpc_message) : 0;
  sanitise(m, n, out, cap);
}

/* A TLS server that wants a client certificate fails the handshake or
 * the first read (TLS 1.3): name the settings when none was given. */
static const char *client_cert_hint(const send_plan *p, const tgo__http_result *r) {
  return (r->curl_code == CURLE_SSL_CONNECT_ERROR || r->curl_code == CURLE_RECV_ERROR) &&
                 !strncasecmp(p->url, "https://", 8) && !*p->client_cert
             ? " (a server that asks for a client certificate needs OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and "
               "OTEL_EXPORTER_OTLP_CLIENT_KEY)"
             : "";
}

/* Metrics (and any signal but traces): one line of their own, logged once,
 * so that a collector without a metrics pipeline never hides the spans'
 * message, nor is taken for a loss of spans. */
static void log_dropped_signal(const send_plan *p, const tgo__http_result *r) {
  if (tls_setup_error(r))
    return; /* the same TLS files: the spans' line names the setting to fix */
  char shown[1100];
  tgo__config_shown_url(p->url, shown, sizeof shown);
  int grpc_status = p->protocol == TGO__PROTOCOL_GRPC ? tgo__grpc_status_of(r) : -1;
  /* One call site per signal: each is logged once on its own. */
  if (p->signal == TGO__SIGNAL_METRICS)
    TGO__LOG_ONCE(TGO_LOG_WARN, "metrics export to %s failed (HTTP %ld, gRPC status %d%s%s); these metric points are "
                  "dropped, the next collection sends again (logged once)", shown, r->status, grpc_status,
                  r->transport_error ? ": " : "", r->transport_error ? r->error : "");
  else
    TGO__LOG_ONCE(TGO_LOG_WARN, "log export to %s failed (HTTP %ld, gRPC status %d%s%s); these log records are "
                  "dropped (logged once)", shown, r->status, grpc_status, r->transport_error ? ": " : "",
                  r->transport_error ? r->error : "");
}

static void log_dropped(const send_plan *p, const tgo__http_result *r) {
  if (p->signal != TGO__SIGNAL_TRACES) {
    log_dropped_signal(p, r);
    return;
  }
  char shown[1100];
  tgo__config_shown_url(p->url, shown, sizeof shown);
  if (tls_setup_error(r)) {
    char msg[1500];
    tls_message(p, r, msg, sizeof msg);
    TGO__LOG_ONCE(TGO_LOG_ERROR, "%s; spans dropped (logged once)", msg);
  } else if (r->transport_error) {
    TGO__LOG_ONCE(TGO_LOG_WARN, "export to %s failed: %s%s; spans dropped (logged once)", shown, r->error,
                  client_cert_hint(p, r));
  } else if (p->protocol == TGO__PROTOCOL_GRPC) {
    int st = tgo__grpc_status_of(r);
    char said[sizeof r->grpc_message];
    grpc_said(r, said, sizeof said);
    if (st == TGO__GRPC_UNAUTHENTICATED || st == TGO__GRPC_PERMISSION_DENIED)
      TGO__LOG_ONCE(TGO_LOG_ERROR,
                    "export to %s refused with gRPC status %d %s: check TIGEROPS_API_KEY (sent as "
                    "\"authorization: Bearer ...\") and OTEL_EXPORTER_OTLP_HEADERS; the collector said: \"%s\"; "
                    "spans are dropped (logged once)",
                    shown, st, tgo__grpc_status_name(st), *said ? said : "(nothing)");
    else
      TGO__LOG_ONCE(TGO_LOG_WARN,
                    "export to %s answered gRPC status %d %s (HTTP %ld): \"%s\"; spans dropped (logged once)",
                    shown, st, tgo__grpc_status_name(st), r->status, *said ? said : "(nothing)");
  } else if (r->status == 401 || r->status == 403) {
    log_refused(shown, r);
  } else {
    TGO__LOG_ONCE(TGO_LOG_WARN, "export to %s answered HTTP %ld; spans dropped (logged once)", shown, r->status);
  }
}

/* A collector that took the batch but not every span says so in
 * partial_success; the spec asks to surface it, not to retry. */
static void log_partial(const send_plan *p, const tgo__http_result *r, size_t n_spans) {
  long long rejected;
  char msg[sizeof r->body + 1], said[sizeof msg];
  if (p->protocol != TGO__PROTOCOL_GRPC ||
      tgo__grpc_partial_success((const uint8_t *)r->body, r->body_len, &rejected, msg, sizeof msg) <= 0)
    return;
  sanitise(msg, strlen(msg), said, sizeof said);
  char shown[1100];
  tgo__config_shown_url(p->url, shown, sizeof shown);
  TGO__LOG_ONCE(TGO_LOG_WARN, "export to %s: the collector rejected %lld of %zu spans: \"%s\" (logged once)", shown,
                rejected, n_spans, *said ? said : "(no message)");
}

/* What a batch of this plan's signal is counted in (metrics: nothing). */
static atomic_ullong *sent_counter(const send_plan *p) {
  return p->signal == TGO__SIGNAL_LOGS     ? &tgo__log_stats.exported
         : p->signal == TGO__SIGNAL_TRACES ? &tgo__stats.spans_exported
                                           : NULL;
}
static atomic_ullong *failed_counter(const send_plan *p) {
  return p->signal == TGO__SIGNAL_LOGS     ? &tgo__log_stats.failed
         : p->signal == TGO__SIGNAL_TRACES ? &tgo__stats.spans_failed
                                           : NULL;
}

static void send_with_retry(const uint8_t *body, size_t len, size_t n_spans, const send_plan *p,
                            const atomic_int *abort_flag) {
  int base_ms = 500;
  for (int attempt = 1;; attempt++) {
    tgo__http_result r;
    if (p->signal == TGO__SIGNAL_TRACES) /* the public counters are the spans' */
      atomic_fetch_add_explicit(&tgo__stats.export_requests, 1, memory_order_relaxed);
    post(p, body, len, &r);
    int hint_ms, verdict = judge(p, &r, &hint_ms);
    if (verdict == SENT_OK) {
      atomic_ullong *sent = sent_counter(p);
      if (sent)
        atomic_fetch_add_explicit(sent, n_spans, memory_order_relaxed);
      if (p->signal == TGO__SIGNAL_TRACES)
        log_partial(p, &r, n_spans);
      return;
    }
    /* Metrics get one attempt: the exporter thread is the spans' too, and the
     * next collection brings cumulative sums up to date anyway. */
    if (verdict == SENT_FAIL || attempt >= MAX_ATTEMPTS || atomic_load(abort_flag) ||
        p->signal == TGO__SIGNAL_METRICS) {
      log_dropped(p, &r);
      atomic_ullong *failed = failed_counter(p);
      if (failed)
        atomic_fetch_add_explicit(failed, n_spans, memory_order_relaxed);
      return;
    }
    int delay;
    if (hint_ms >= 0) {
      delay = hint_ms > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : hint_ms;
    } else {
      uint8_t rnd;
      tgo__random_bytes(&rnd, 1);
      delay = base_ms / 2 + (int)((unsigned)base_ms * rnd / 255u);
      base_ms = base_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : base_ms * 2;
    }
    tgo__log(TGO_LOG_DEBUG, "export attempt %d failed (HTTP %ld, gRPC %d, %s); retrying in %d ms", attempt,
             r.status, r.grpc_status, r.transport_error ? r.error : "answered", delay);
    backoff_sleep(delay, abort_flag);
  }
}

/* The OTLP exporter's batch (HTTP/protobuf, HTTP/JSON or gRPC, as the
 * plan says): takes the spans' references. The plan comes first: it names
 * the encoding. */
static void otlp_export(tgo_span **spans, size_t n, const atomic_int *abort_flag) {
  tgo__buf body = {0}, wire = {0};
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
  const uint8_t *data;
  size_t len;
  if (make_wire(plan, &body, &wire, &data, &len) < 0)
    atomic_fetch_add_explicit(&tgo__stats.spans_failed, n, memory_order_relaxed);
  else
    send_with_retry(data, len, n, plan, abort_flag);
out:
  free(plan);
  tgo__buf_free(&body);
  tgo__buf_free(&wire);
}

int tgo__export_check(tgo_span **spans, size_t n, tgo__check_report *rep) {
  memset(rep, 0, sizeof *rep);
  rep->grpc_status = -1;
  tgo__buf body = {0}, wire = {0};
  send_plan *plan = malloc(sizeof *plan);
  tgo__http_result *r = malloc(sizeof *r);
  int rc = -ENOMEM;
  const uint8_t *data;
  size_t len;
  if (!plan || !r)
    goto out;
  plan_request(plan);
  tgo__config_shown_url(plan->url, rep->url, sizeof rep->url);
  if ((rc = plan->encoding->encode(spans, n, &body)) < 0 || (rc = make_wire(plan, &body, &wire, &data, &len)) < 0) {
    snprintf(rep->detail, sizeof rep->detail, "cannot encode the test span (%d)", rc);
    goto out;
  }
  post(plan, data, len, r);
  int hint_ms, verdict = judge(plan, r, &hint_ms);
  rep->accepted = verdict == SENT_OK;
  rep->retryable = verdict == SENT_RETRY;
  rep->http_status = r->status;
  rep->transport_error = r->transport_error;
  if (plan->protocol == TGO__PROTOCOL_GRPC && !r->transport_error)
    rep->grpc_status = tgo__grpc_status_of(r);
  if (tls_setup_error(r))
    tls_message(plan, r, rep->detail, sizeof rep->detail);
  else if (r->transport_error)
    snprintf(rep->detail, sizeof rep->detail, "%s%s", r->error, client_cert_hint(plan, r));
  else if (rep->accepted)
    ;
  else if (plan->protocol == TGO__PROTOCOL_GRPC)
    grpc_said(r, rep->detail, sizeof rep->detail);
  else
    sanitise(r->body, r->body_len, rep->detail, sizeof rep->detail);
  rc = 0;
out:
  free(plan);
  free(r);
  tgo__buf_free(&body);
  tgo__buf_free(&wire);
  return rc;
}

/* Another signal's protobuf body (metrics, logs) to its endpoint with the
 * same protocol rules, headers, TLS and retries as spans. http/json has no
 * encoder for them: protobuf is sent, with one warning. */
void tgo__export_signal(int signal, const tgo__buf *body, size_t n_items, const atomic_int *abort_flag) {
  tgo__buf wire = {0};
  send_plan *plan = malloc(sizeof *plan);
  if (!plan)
    return;
  plan_signal(plan, signal);
  if (plan->protocol == TGO__PROTOCOL_HTTP_JSON) {
    TGO__LOG_ONCE(TGO_LOG_WARN, "OTEL_EXPORTER_OTLP_PROTOCOL=http/json: metrics and logs are sent as "
                                "http/protobuf to the same endpoint (logged once)");
    plan->protocol = TGO__PROTOCOL_HTTP_PROTOBUF;
    snprintf(plan->headers.storage[0], sizeof plan->headers.storage[0], "Content-Type: application/x-protobuf");
  }
  const uint8_t *data;
  size_t len;
  if (make_wire(plan, body, &wire, &data, &len) == 0)
    send_with_retry(data, len, n_items, plan, abort_flag);
  free(plan);
}

/* A batch of log records; the records stay the caller's. */
void tgo__export_logs(tgo__log_rec *const *recs, size_t n, const atomic_int *abort_flag) {
  tgo__buf body = {0};
  int rc = tgo__otlp_encode_logs(recs, n, &body);
  if (rc < 0) {
    TGO__LOG_ONCE(TGO_LOG_ERROR, "cannot encode a batch of %zu log records (%d); dropped", n, rc);
    atomic_fetch_add_explicit(&tgo__log_stats.failed, n, memory_order_relaxed);
  } else {
    tgo__export_signal(TGO__SIGNAL_LOGS, &body, n, abort_flag);
  }
  tgo__buf_free(&body);
}

const tgo__exporter tgo__exporter_otlp = {"otlp", otlp_export, NULL, NULL};
