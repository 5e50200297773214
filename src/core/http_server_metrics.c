/* The HTTP server metrics of the semantic conventions, recorded for every
 * request whatever the sampler decided: http.server.request.duration
 * (histogram, s) and http.server.active_requests (up-down counter). The
 * middleware calls begin/end with what it knows as C strings; the attribute
 * set is looked up without a lock (metrics.c). */
#include "tgo-internal.h"

#include <string.h>
#include <strings.h>

static _Atomic(tgo__metric *) duration, active;

static tgo__metric *instrument(_Atomic(tgo__metric *) *slot, int kind, const char *name, const char *unit,
                               const char *description) {
  tgo__metric *m = atomic_load_explicit(slot, memory_order_acquire);
  if (TGO__LIKELY(m != NULL))
    return m;
  m = tgo__metric_get(kind, name, unit, description, NULL, 0);
  atomic_store_explicit(slot, m, memory_order_release);
  return m;
}

/* http.request.method is one of the known methods or _OTHER: a client
 * must not be able to make new series. */
static void method_attr(tgo__mattr *a, const char *method, size_t len) {
  static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  *a = (tgo__mattr){"http.request.method", 19, TGO__MATTR_STR, 6, {.s = "_OTHER"}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strlen(known[i]) == len && !memcmp(known[i], method, len)) {
      a->v.s = known[i];
      a->len = (uint32_t)len;
      return;
    }
}

static void scheme_attr(tgo__mattr *a, int https) {
  *a = (tgo__mattr){"url.scheme", 10, TGO__MATTR_STR, https ? 5 : 4, {.s = https ? "https" : "http"}};
}

tgo__mseries *tgo__http_server_begin(const char *method, size_t method_len, int https) {
  tgo__metric *m = instrument(&active, TGO__METRIC_UPDOWN, "http.server.active_requests", "{request}",
                              "Number of active HTTP server requests.");
  if (!m)
    return NULL;
  tgo__mattr attrs[2];
  method_attr(&attrs[0], method, method_len);
  scheme_attr(&attrs[1], https);
  tgo__mseries *s = tgo__metric_series(m, attrs, 2);
  tgo__series_record(m, s, 1, NULL);
  return s;
}

void tgo__http_server_end(const tgo__http_server_request *r) {
  tgo__metric *a = atomic_load_explicit(&active, memory_order_acquire);
  if (r->active && a)
    tgo__series_record(a, r->active, -1, NULL);
  tgo__metric *m = instrument(&duration, TGO__METRIC_HISTOGRAM, "http.server.request.duration", "s",
                              "Duration of HTTP server requests.");
  if (!m)
    return;
  tgo__mattr attrs[5];
  size_t n = 0;
  method_attr(&attrs[n++], r->method, r->method_len);
  scheme_attr(&attrs[n++], r->https);
  if (r->status_code > 0)
    attrs[n++] = (tgo__mattr){"http.response.status_code", 25, TGO__MATTR_INT, 0, {.i = r->status_code}};
  if (r->route_len)
    attrs[n++] = (tgo__mattr){"http.route", 10, TGO__MATTR_STR, (uint32_t)r->route_len, {.s = r->route}};
  if (r->error_type_len)
    attrs[n++] = (tgo__mattr){"error.type", 10, TGO__MATTR_STR, (uint32_t)r->error_type_len, {.s = r->error_type}};
  tgo__metric_record(m, attrs, n, (double)r->duration_ns / 1e9, r->span);
}
