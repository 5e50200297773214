/* Propagation for the glue (OTEL_PROPAGATORS): extraction from a WSGI
 * environ or from a mapping of header names (Celery messages, explicit
 * parents), injection of every configured propagator into a mapping. The
 * parsing is the core's (src/core/propagation.c). */
#include "flask.h"

#include <string.h>

/* The environ's names of the same headers (HTTP_TRACEPARENT, ...) are
 * environ.c's, with the other keys it reads. */
static PyObject *header_keys[TGO__H_COUNT];
static PyObject *b3_multi_names[3]; /* as injected: X-B3-TraceId, X-B3-SpanId, X-B3-Sampled */

int tgo__py_propagate_init(void) {
  static const char *const hdr[TGO__H_COUNT] = {"traceparent", "tracestate",   "baggage",      "b3",
                                                "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"};
  static const char *const multi[3] = {"X-B3-TraceId", "X-B3-SpanId", "X-B3-Sampled"};
  for (int i = 0; i < TGO__H_COUNT; i++)
    if (!header_keys[i] && !(header_keys[i] = PyUnicode_InternFromString(hdr[i])))
      return -1;
  for (int i = 0; i < 3; i++)
    if (!b3_multi_names[i] && !(b3_multi_names[i] = PyUnicode_InternFromString(multi[i])))
      return -1;
  return 0;
}

/* WSGI environ values are borrowed from the dict the request holds. */
static const char *env_get(void *carrier, int which, size_t *len) {
  Py_ssize_t n = 0;
  const char *v = tgo__py_utf8(tgo__py_env((PyObject *)carrier, TGO__ENV_HEADER + which), &n);
  *len = v ? (size_t)n : 0;
  return v;
}

/* The default propagators (tracecontext, then baggage) on a request with
 * neither header, most requests: the two lookups, without the generic
 * extraction's calls through env_get (~150 instructions a request). A
 * request with either goes the generic way, which finds its header again
 * at the entry just learnt. */
int tgo__py_remote_context(PyObject *environ, tgo_span_context *ctx, const char **baggage, size_t *baggage_len) {
  int props = tgo__propagators();
  if (props == TGO__PROPAGATORS_DEFAULT && !tgo__py_env(environ, TGO__ENV_HEADER + TGO__H_TRACEPARENT) &&
      !tgo__py_env(environ, TGO__ENV_HEADER + TGO__H_BAGGAGE)) {
    *baggage = NULL;
    *baggage_len = 0;
    return 0;
  }
  return tgo__extract(props, env_get, environ, ctx, baggage, baggage_len);
}

typedef struct {
  PyObject *map;
  PyObject *hold[TGO__H_COUNT];
} mapping_carrier;

/* Any mapping (dict, a Celery request's headers, CIMultiDict); the values
 * are held until the carrier is released. */
static const char *map_get(void *carrier, int which, size_t *len) {
  mapping_carrier *c = carrier;
  *len = 0;
  PyObject *v = PyObject_GetItem(c->map, header_keys[which]);
  if (!v) {
    PyErr_Clear();
    return NULL;
  }
  Py_XSETREF(c->hold[which], v);
  Py_ssize_t n = 0;
  const char *s = tgo__py_utf8(v, &n);
  *len = s ? (size_t)n : 0;
  return s;
}

/* Starts a span continuing the context in carrier (a str traceparent, or a
 * mapping of lower-case header names), or a new trace when it has none:
 * an explicit carrier never nests under the current span. */
tgo_span *tgo__py_start_from_carrier(const char *name, size_t name_len, int kind, PyObject *carrier) {
  tgo_span_context remote;
  const char *baggage = NULL;
  size_t baggage_len = 0;
  int found;
  mapping_carrier mc = {carrier, {NULL}};
  if (PyUnicode_Check(carrier)) {
    Py_ssize_t plen = 0;
    const char *tp = tgo__py_utf8(carrier, &plen);
    found = tp && tgo_traceparent_parse(tp, (size_t)plen, &remote) == 0;
  } else {
    found = tgo__extract(tgo__propagators(), map_get, &mc, &remote, &baggage, &baggage_len);
  }
  tgo_span *span = tgo_span_start(name, name_len, (tgo_kind)kind, NULL, found ? &remote : NULL);
  if (baggage)
    tgo__span_set_baggage(span, baggage, baggage_len);
  for (int i = 0; i < TGO__H_COUNT; i++)
    Py_XDECREF(mc.hold[i]);
  return span;
}

static int put(PyObject *headers, PyObject *key, const char *v, size_t n) {
  PyObject *s = PyUnicode_FromStringAndSize(v, (Py_ssize_t)n);
  int rc = s ? PyObject_SetItem(headers, key, s) : -1;
  Py_XDECREF(s);
  return rc;
}

/* Writes span's context into headers with every configured propagator:
 * traceparent (+ tracestate), baggage, b3, X-B3-*. Returns 0 or -1 with an
 * exception set. */
int tgo__py_inject_span(tgo_span *s, PyObject *headers) {
  tgo_span_context ctx;
  tgo_span_get_context(s, &ctx);
  for (int p = tgo__propagators(); p; p >>= 4) {
    char buf[TGO_TRACEPARENT_LEN + 1]; /* the longer of the two */
    size_t n;
    const char *bag;
    switch (p & 15) {
    case TGO__PROP_TRACECONTEXT:
      tgo_traceparent_format(&ctx, buf);
      if (put(headers, tgo__py_str.traceparent, buf, TGO_TRACEPARENT_LEN) < 0)
        return -1;
      if (ctx.tracestate && ctx.tracestate_len &&
          put(headers, tgo__py_str.tracestate, ctx.tracestate, ctx.tracestate_len) < 0)
        return -1;
      break;
    case TGO__PROP_BAGGAGE:
      bag = tgo__span_baggage(s, &n);
      if (bag && put(headers, header_keys[TGO__H_BAGGAGE], bag, n) < 0)
        return -1;
      break;
    case TGO__PROP_B3:
      n = tgo__b3_format(&ctx, buf);
      if (put(headers, header_keys[TGO__H_B3], buf, n) < 0)
        return -1;
      break;
    case TGO__PROP_B3MULTI:
      tgo__b3_format(&ctx, buf);
      if (put(headers, b3_multi_names[0], buf, 32) < 0 || put(headers, b3_multi_names[1], buf + 33, 16) < 0 ||
          put(headers, b3_multi_names[2], buf + 50, 1) < 0)
        return -1;
      break;
    default:
      break;
    }
  }
  return 0;
}
