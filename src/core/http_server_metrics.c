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
 * must not be able to make new series. method_index gives the index in
 * known_methods (N_METHODS for _OTHER). */
#define N_METHODS 9
static const struct {
  const char *name;
  size_t len;
} known_methods[N_METHODS] = {{"GET", 3},   {"POST", 4},    {"HEAD", 4},    {"PUT", 3},  {"DELETE", 6},
                              {"PATCH", 5}, {"OPTIONS", 7}, {"CONNECT", 7}, {"TRACE", 5}};

/* By length first, with compares of constant size the compiler makes
 * plain loads of: this runs twice for every request. */
static unsigned method_index(const char *m, size_t len) {
  switch (len) {
  case 3:
    return !memcmp(m, "GET", 3) ? 0 : !memcmp(m, "PUT", 3) ? 3 : N_METHODS;
  case 4:
    return !memcmp(m, "POST", 4) ? 1 : !memcmp(m, "HEAD", 4) ? 2 : N_METHODS;
  case 5:
    return !memcmp(m, "PATCH", 5) ? 5 : !memcmp(m, "TRACE", 5) ? 8 : N_METHODS;
  case 6:
    return !memcmp(m, "DELETE", 6) ? 4 : N_METHODS;
  case 7:
    return !memcmp(m, "OPTIONS", 7) ? 6 : !memcmp(m, "CONNECT", 7) ? 7 : N_METHODS;
  default:
    return N_METHODS;
  }
}

const char *tgo__http_method_literal(const char *method, size_t len) {
  unsigned index = method_index(method, len);
  return index < N_METHODS ? known_methods[index].name : NULL;
}

static void method_attr(tgo__mattr *a, unsigned index) {
  *a = index < N_METHODS ? (tgo__mattr){"http.request.method", 19, TGO__MATTR_STR, (uint32_t)known_methods[index].len,
                                        {.s = known_methods[index].name}}
                         : (tgo__mattr){"http.request.method", 19, TGO__MATTR_STR, 6, {.s = "_OTHER"}};
}

static void scheme_attr(tgo__mattr *a, int https) {
  *a = (tgo__mattr){"url.scheme", 10, TGO__MATTR_STR, https ? 5 : 4, {.s = https ? "https" : "http"}};
}

/* Series pointers are never freed while the process runs (a fork resets
 * their values in place), so a pointer found once is good for good; only
 * tgo__metrics_reset, for unit tests, frees them, and those never reach
 * the memos below. */
static _Atomic(tgo__mseries *) active_by[N_METHODS + 1][2];

tgo__mseries *tgo__http_server_begin(const char *method, size_t method_len, int https) {
  tgo__metric *m = instrument(&active, TGO__METRIC_UPDOWN, "http.server.active_requests", "{request}",
                              "Number of active HTTP server requests.");
  if (!m)
    return NULL;
  unsigned index = method_index(method, method_len);
  _Atomic(tgo__mseries *) *memo = &active_by[index][https != 0];
  tgo__mseries *s = atomic_load_explicit(memo, memory_order_acquire);
  if (!s) {
    tgo__mattr attrs[2]; /* in key order */
    method_attr(&attrs[0], index);
    scheme_attr(&attrs[1], https);
    s = tgo__metric_series_sorted(m, attrs, 2);
    atomic_store_explicit(memo, s, memory_order_release);
  }
  tgo__series_record(m, s, 1, NULL);
  return s;
}

/* A route memo word: the series address in the low 48 bits (user-space
 * addresses fit there on the 64-bit targets we build for; a series above
 * is simply not memoised) and a 15-bit key with a set low bit above. */
#define MEMO_ADDRESS_BITS 48
#define MEMO_ADDRESS_MASK ((UINT64_C(1) << MEMO_ADDRESS_BITS) - 1)

static uint64_t memo_key(unsigned method_index, int https, int status_code) {
  if (status_code < 100 || status_code > 599)
    return 0;
  return 1u | method_index << 1 | (unsigned)(https != 0) << 5 | (unsigned)(status_code - 100) << 6;
}

void tgo__http_server_end(const tgo__http_server_request *r) {
  tgo__metric *a = atomic_load_explicit(&active, memory_order_acquire);
  if (r->active && a)
    tgo__series_record(a, r->active, -1, NULL);
  tgo__metric *m = instrument(&duration, TGO__METRIC_HISTOGRAM, "http.server.request.duration", "s",
                              "Duration of HTTP server requests.");
  if (!m)
    return;
  unsigned index = method_index(r->method, r->method_len);
  /* A set with error.type is not memoised: the key has no room for it, and
   * errors are the rarer requests. */
  uint64_t key = r->memo && r->route_len && !r->error_type_len ? memo_key(index, r->https, r->status_code) : 0;
  if (key) {
    uint64_t word = atomic_load_explicit(r->memo, memory_order_acquire);
    if (word >> MEMO_ADDRESS_BITS == key) {
      tgo__series_record(m, (tgo__mseries *)(uintptr_t)(word & MEMO_ADDRESS_MASK), (double)r->duration_ns / 1e9,
                         r->span);
      return;
    }
  }
  tgo__mattr attrs[5]; /* in key order: the set is not sorted again */
  size_t n = 0;
  if (r->error_type_len)
    attrs[n++] = (tgo__mattr){"error.type", 10, TGO__MATTR_STR, (uint32_t)r->error_type_len, {.s = r->error_type}};
  method_attr(&attrs[n++], index);
  if (r->status_code > 0)
    attrs[n++] = (tgo__mattr){"http.response.status_code", 25, TGO__MATTR_INT, 0, {.i = r->status_code}};
  if (r->route_len)
    attrs[n++] = (tgo__mattr){"http.route", 10, TGO__MATTR_STR, (uint32_t)r->route_len, {.s = r->route}};
  scheme_attr(&attrs[n++], r->https);
  tgo__mseries *s = tgo__metric_series_sorted(m, attrs, n);
  if (key && s && ((uintptr_t)s & ~(uintptr_t)MEMO_ADDRESS_MASK) == 0)
    atomic_store_explicit(r->memo, key << MEMO_ADDRESS_BITS | (uint64_t)(uintptr_t)s, memory_order_release);
  tgo__series_record(m, s, (double)r->duration_ns / 1e9, r->span);
}
