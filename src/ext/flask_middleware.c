/* The Flask request span, in C end to end. FlaskMiddleware replaces
 * app.wsgi_app; per request it makes one object, a Request, which is at once
 * the start_response the app sees (to read the status) and the iterable the
 * server gets (to end the span when the server closes it, so streaming
 * responses are timed whole). Route, endpoint and view function are read from
 * the RequestContext that Flask's own request_context() returns, which the
 * middleware's hook captures; they are cached per url_rule object, so a
 * request costs a few dict lookups and one pointer compare. */
#include "glue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  PyObject *rule; /* strong: keeps the key's address unique */
  char *route, *endpoint, *function, *namespace, *blueprint;
  size_t route_len;
} route_info;

typedef struct {
  PyObject_HEAD
  PyObject *wsgi_app;
  PyObject *request_context; /* the app's original bound method */
  PyObject *view_functions;
  PyObject *on_first_request; /* cleared once called */
  PyObject *excluded;         /* compiled regex searched in the full URL, or NULL */
  /* Opt-in header capture (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*):
   * callables (span, environ) and (span, headers), NULL when off. */
  PyObject *capture_request, *capture_response;
  route_info *routes;         /* open addressing on the rule's address */
  size_t routes_cap, routes_len;
} Middleware;

typedef struct {
  PyObject_HEAD
  Middleware *mw;
  tgo_span *span;
  PyObject *start_response;
  PyObject *inner;
  PyObject *iter;
  PyObject *ctx;
  int status_code;
  int finished;
  char method[24];
} Request;

PyTypeObject *tgo__py_middleware_type;
PyTypeObject *tgo__py_request_type;

/* The Request whose app call is running on this thread, for the hook. */
static __thread Request *running_request;

tgo_span *tgo__py_request_span(void) { return running_request ? running_request->span : NULL; }

#define MAX_ROUTES 4096

static void routes_free(Middleware *mw) {
  for (size_t i = 0; i < mw->routes_cap; i++) {
    route_info *r = &mw->routes[i];
    if (!r->rule)
      continue;
    Py_DECREF(r->rule);
    free(r->route);
    free(r->endpoint);
    free(r->function);
    free(r->namespace);
    free(r->blueprint);
  }
  free(mw->routes);
  mw->routes = NULL;
  mw->routes_cap = mw->routes_len = 0;
}

static size_t slot_of(const void *p, size_t cap) {
  uintptr_t h = (uintptr_t)p >> 4;
  h ^= h >> 17;
  h *= 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 20) & (cap - 1);
}

static char *dup_attr_str(PyObject *obj, PyObject *name) {
  PyObject *v = obj ? PyObject_GetAttr(obj, name) : NULL;
  Py_ssize_t len;
  const char *p = tgo__py_utf8(v, &len);
  char *out = p ? strndup(p, (size_t)len) : NULL;
  Py_XDECREF(v);
  PyErr_Clear();
  return out;
}

static int route_fill(Middleware *mw, PyObject *rule, route_info *r) {
  memset(r, 0, sizeof *r);
  r->route = dup_attr_str(rule, tgo__py_str.rule);
  r->endpoint = dup_attr_str(rule, tgo__py_str.endpoint);
  if (!r->route)
    return -1;
  r->route_len = strlen(r->route);
  if (r->endpoint) {
    const char *dot = strrchr(r->endpoint, '.');
    if (dot)
      r->blueprint = strndup(r->endpoint, (size_t)(dot - r->endpoint));
    PyObject *key = PyUnicode_FromString(r->endpoint);
    PyObject *view = key && mw->view_functions ? PyObject_GetItem(mw->view_functions, key) : NULL;
    PyErr_Clear();
    Py_XDECREF(key);
    if (view) {
      r->function = dup_attr_str(view, tgo__py_str.__qualname__);
      r->namespace = dup_attr_str(view, tgo__py_str.__module__);
      Py_DECREF(view);
    }
  }
  Py_INCREF(rule);
  r->rule = rule;
  return 0;
}

static int routes_grow(Middleware *mw) {
  size_t cap = mw->routes_cap ? mw->routes_cap * 2 : 64;
  route_info *t = calloc(cap, sizeof *t);
  if (!t)
    return -1;
  for (size_t i = 0; i < mw->routes_cap; i++) {
    if (!mw->routes[i].rule)
      continue;
    size_t s = slot_of(mw->routes[i].rule, cap);
    while (t[s].rule)
      s = (s + 1) & (cap - 1);
    t[s] = mw->routes[i];
  }
  free(mw->routes);
  mw->routes = t;
  mw->routes_cap = cap;
  return 0;
}

/* Cached route facts for a url_rule; NULL when none can be had. */
static const route_info *route_lookup(Middleware *mw, PyObject *rule, route_info *scratch) {
  if (mw->routes_cap) {
    size_t s = slot_of(rule, mw->routes_cap);
    while (mw->routes[s].rule) {
      if (mw->routes[s].rule == rule)
        return &mw->routes[s];
      s = (s + 1) & (mw->routes_cap - 1);
    }
  }
  if (mw->routes_len >= MAX_ROUTES || ((mw->routes_len + 1) * 2 > mw->routes_cap && routes_grow(mw) < 0))
    return route_fill(mw, rule, scratch) == 0 ? scratch : NULL;
  route_info r;
  if (route_fill(mw, rule, &r) < 0)
    return NULL;
  size_t s = slot_of(rule, mw->routes_cap);
  while (mw->routes[s].rule)
    s = (s + 1) & (mw->routes_cap - 1);
  mw->routes[s] = r;
  mw->routes_len++;
  return &mw->routes[s];
}

static void scratch_free(route_info *r) {
  Py_XDECREF(r->rule);
  free(r->route);
  free(r->endpoint);
  free(r->function);
  free(r->namespace);
  free(r->blueprint);
}

/* ---- environ -> attributes --------------------------------------------- */

static PyObject *env_item(PyObject *environ, PyObject *key) {
  PyObject *v = PyDict_GetItemWithError(environ, key);
  if (!v && PyErr_Occurred())
    PyErr_Clear();
  return v;
}

/* WSGI strings are bytes decoded as latin-1; recover the bytes when they
 * are not ASCII, so the core sees what the client sent. *hold keeps the
 * bytes object alive until the caller drops it. */
static const char *env_bytes(PyObject *v, Py_ssize_t *len, PyObject **hold) {
  *hold = NULL;
  const char *p = tgo__py_utf8(v, len);
  if (!p)
    return NULL;
  Py_ssize_t i = 0;
  while (i < *len && (unsigned char)p[i] < 0x80)
    i++;
  if (i == *len)
    return p;
  PyObject *raw = PyUnicode_AsLatin1String(v);
  char *b;
  if (!raw || PyBytes_AsStringAndSize(raw, &b, len) < 0) {
    PyErr_Clear();
    Py_XDECREF(raw);
    return NULL;
  }
  *hold = raw;
  return b;
}

static void env_attr(tgo_attrs *a, const char *key, PyObject *v) {
  Py_ssize_t len;
  PyObject *hold;
  const char *p = env_bytes(v, &len, &hold);
  if (p)
    tgo_attr_str(a, key, p, (size_t)len);
  Py_XDECREF(hold);
}

static void set_request_attrs(tgo_attrs *a, PyObject *environ, const char *method, size_t method_len) {
  tgo_attr_str(a, "http.request.method", method, method_len);
  PyObject *script = env_item(environ, tgo__py_str.SCRIPT_NAME);
  PyObject *path = env_item(environ, tgo__py_str.PATH_INFO);
  Py_ssize_t slen = 0;
  if (script && tgo__py_utf8(script, &slen) && slen > 0) {
    PyObject *full = path ? PyUnicode_Concat(script, path) : NULL;
    if (full) {
      env_attr(a, "url.path", full);
      Py_DECREF(full);
    } else {
      PyErr_Clear();
    }
  } else if (path) {
    env_attr(a, "url.path", path);
  }
  PyObject *q = env_item(environ, tgo__py_str.QUERY_STRING), *hold;
  Py_ssize_t qlen = 0;
  const char *query = env_bytes(q, &qlen, &hold);
  if (query && qlen > 0) {
    char redacted[2048];
    if ((size_t)qlen < sizeof redacted) {
      size_t n = tgo__redact_query(query, (size_t)qlen, redacted, sizeof redacted);
      tgo_attr_str(a, "url.query", redacted, n);
    } else {
      tgo_attr_str(a, "url.query", "REDACTED", 8); /* too long to check: never export it raw */
    }
  }
  Py_XDECREF(hold);
  env_attr(a, "url.scheme", env_item(environ, tgo__py_str.wsgi_url_scheme));

  Py_ssize_t len;
  const char *host = env_bytes(env_item(environ, tgo__py_str.HTTP_HOST), &len, &hold);
  if (host && len > 0) {
    const char *colon = len && host[0] != '[' ? memchr(host, ':', (size_t)len) : NULL;
    if (host[0] == '[') { /* [v6]:port */
      const char *close = memchr(host, ']', (size_t)len);
      colon = close && close + 1 < host + len && close[1] == ':' ? close + 1 : NULL;
    }
    tgo_attr_str(a, "server.address", host, colon ? (size_t)(colon - host) : (size_t)len);
    if (colon)
      tgo_attr_int(a, "server.port", strtol(colon + 1, NULL, 10));
  } else {
    env_attr(a, "server.address", env_item(environ, tgo__py_str.SERVER_NAME));
  }
  int host_has_port = host && memchr(host, ':', (size_t)len);
  Py_XDECREF(hold);
  if (!host_has_port) {
    const char *port = tgo__py_utf8(env_item(environ, tgo__py_str.SERVER_PORT), &len);
    if (port && len > 0)
      tgo_attr_int(a, "server.port", strtol(port, NULL, 10));
  }

  /* client.address: the original client as proxies report it. */
  const char *xff = env_bytes(env_item(environ, tgo__py_str.HTTP_X_FORWARDED_FOR), &len, &hold);
  PyObject *peer = env_item(environ, tgo__py_str.REMOTE_ADDR);
  if (xff && len > 0) {
    const char *end = memchr(xff, ',', (size_t)len);
    size_t n = end ? (size_t)(end - xff) : (size_t)len;
    while (n && (*xff == ' ' || *xff == '\t')) {
      xff++;
      n--;
    }
    while (n && (xff[n - 1] == ' ' || xff[n - 1] == '\t'))
      n--;
    tgo_attr_str(a, "client.address", xff, n);
  } else {
    PyObject *real = env_item(environ, tgo__py_str.HTTP_X_REAL_IP);
    env_attr(a, "client.address", real && PyUnicode_Check(real) && PyUnicode_GetLength(real) ? real : peer);
  }
  Py_XDECREF(hold);
  env_attr(a, "network.peer.address", peer);
  env_attr(a, "user_agent.original", env_item(environ, tgo__py_str.HTTP_USER_AGENT));
  const char *proto = tgo__py_utf8(env_item(environ, tgo__py_str.SERVER_PROTOCOL), &len);
  if (proto && len > 5 && !memcmp(proto, "HTTP/", 5))
    tgo_attr_str(a, "network.protocol.version", proto + 5, (size_t)len - 5);
}

/* ---- Request ----------------------------------------------------------- */

static void request_finish(Request *r) {
  if (r->finished)
    return;
  r->finished = 1;
  tgo_span *span = r->span;
  if (tgo_span_is_recording(span)) {
    tgo_attrs *a = tgo_span_attrs(span);
    size_t mlen = strlen(r->method);
    PyObject *rule = NULL;
    if (r->ctx) {
      PyObject *req = PyObject_GetAttr(r->ctx, tgo__py_str.request);
      rule = req ? PyObject_GetAttr(req, tgo__py_str.url_rule) : NULL;
      Py_XDECREF(req);
      PyErr_Clear();
    }
    if (rule && rule != Py_None) {
      route_info scratch = {0};
      const route_info *ri = route_lookup(r->mw, rule, &scratch);
      if (ri) {
        char name[512];
        size_t rlen = ri->route_len < sizeof name - 32 ? ri->route_len : sizeof name - 32;
        memcpy(name, r->method, mlen);
        name[mlen] = ' ';
        memcpy(name + mlen + 1, ri->route, rlen);
        tgo_span_set_name(span, name, mlen + 1 + rlen);
        tgo_attr_str(a, "http.route", ri->route, ri->route_len);
        if (ri->endpoint)
          tgo_attr_str(a, "flask.endpoint", ri->endpoint, strlen(ri->endpoint));
        if (ri->blueprint)
          tgo_attr_str(a, "flask.blueprint", ri->blueprint, strlen(ri->blueprint));
        if (ri->function)
          tgo_attr_str(a, "code.function", ri->function, strlen(ri->function));
        if (ri->namespace)
          tgo_attr_str(a, "code.namespace", ri->namespace, strlen(ri->namespace));
      }
      if (ri == &scratch)
        scratch_free(&scratch);
    }
    Py_XDECREF(rule);
    if (r->status_code > 0) {
      tgo_attr_int(a, "http.response.status_code", r->status_code);
      if (r->status_code >= 400)
        tgo_attr_bool(a, "error", 1);
      if (r->status_code >= 500) {
        char code[8];
        int n = snprintf(code, sizeof code, "%d", r->status_code);
        if (!tgo_span_get_status(span))
          tgo_span_set_status(span, TGO_STATUS_ERROR, NULL, 0);
        tgo_attr_str(a, "error.type", code, (size_t)n);
      }
    }
  }
  tgo_span_end(span);
  Py_CLEAR(r->ctx);
}

static int parse_status(PyObject *status) {
  Py_ssize_t len;
  const char *s = tgo__py_utf8(status, &len);
  if (!s || len < 3)
    return 0;
  int code = 0;
  for (int i = 0; i < 3; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    code = code * 10 + (s[i] - '0');
  }
  return code;
}

/* Header capture is Python (opt-in, off the default path); its failure
 * costs the headers, never the request. */
static void capture_headers(PyObject *capture, tgo_span *span, PyObject *headers) {
  Py_INCREF(capture); /* the app may replace the middleware's attribute meanwhile */
  PyObject *handle = tgo__py_span_wrap(span, 0);
  PyObject *res = handle ? PyObject_CallFunctionObjArgs(capture, handle, headers, NULL) : NULL;
  Py_DECREF(capture);
  if (!res) {
    PyErr_Clear();
    tgo_log(2, "header capture failed; headers are not recorded");
  }
  Py_XDECREF(res);
  Py_XDECREF(handle);
}

/* The start_response the app calls. The args tuple is passed on as is. */
static PyObject *request_call(PyObject *op, PyObject *args, PyObject *kwargs) {
  Request *r = (Request *)op;
  if (PyTuple_Check(args) && PyTuple_Size(args) >= 1)
    r->status_code = parse_status(PyTuple_GetItem(args, 0));
  if (r->mw->capture_response && PyTuple_Check(args) && PyTuple_Size(args) >= 2 &&
      tgo_span_is_recording(r->span))
    capture_headers(r->mw->capture_response, r->span, PyTuple_GetItem(args, 1));
  return PyObject_Call(r->start_response, args, kwargs);
}

static PyObject *request_iter(PyObject *op) {
  Request *r = (Request *)op;
  if (!r->iter) {
    r->iter = PyObject_GetIter(r->inner);
    if (!r->iter)
      return NULL;
  }
  Py_INCREF(op);
  return op;
}

static PyObject *request_next(PyObject *op) {
  Request *r = (Request *)op;
  if (!r->iter && !(r->iter = PyObject_GetIter(r->inner)))
    return NULL;
  tgo_span *prev = tgo_set_current(r->span);
  PyObject *item = PyIter_Next(r->iter);
  tgo_set_current(prev);
  if (!item && PyErr_Occurred())
    tgo__py_record_pending_exception(r->span, TGO__PY_EXC_STATUS);
  return item;
}

static PyObject *request_close(PyObject *op, PyObject *unused) {
  (void)unused;
  Request *r = (Request *)op;
  PyObject *res = NULL;
  if (r->inner && !r->finished) {
    PyObject *close = PyObject_GetAttr(r->inner, tgo__py_str.close);
    if (close) {
      tgo_span *prev = tgo_set_current(r->span);
      res = PyObject_CallObject(close, NULL);
      tgo_set_current(prev);
      Py_DECREF(close);
      if (!res)
        tgo__py_record_pending_exception(r->span, TGO__PY_EXC_STATUS);
    } else {
      PyErr_Clear();
    }
  }
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  request_finish(r);
  PyErr_Restore(type, value, tb);
  if (!res && PyErr_Occurred())
    return NULL;
  Py_XDECREF(res);
  Py_RETURN_NONE;
}

static int request_traverse(PyObject *op, visitproc visit, void *arg) {
  Request *r = (Request *)op;
  Py_VISIT(r->mw);
  Py_VISIT(r->start_response);
  Py_VISIT(r->inner);
  Py_VISIT(r->iter);
  Py_VISIT(r->ctx);
  Py_VISIT(Py_TYPE(op));
  return 0;
}

static int request_clear(PyObject *op) {
  Request *r = (Request *)op;
  /* Collected in a cycle without close(): end the span while the request
   * context (route, endpoint) is still reachable. */
  if (!r->finished) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    request_finish(r);
    PyErr_Restore(type, value, tb);
  }
  Py_CLEAR(r->start_response);
  Py_CLEAR(r->inner);
  Py_CLEAR(r->iter);
  Py_CLEAR(r->ctx);
  return 0;
}

static void request_dealloc(PyObject *op) {
  Request *r = (Request *)op;
  PyTypeObject *tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  /* A server that never called close(): the span still ends. */
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  request_finish(r);
  PyErr_Restore(type, value, tb);
  tgo_span_unref(r->span);
  request_clear(op);
  Py_CLEAR(r->mw);
  PyObject_GC_Del(op);
  Py_DECREF(tp);
}

static PyMethodDef request_methods[] = {
    {"close", request_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot request_slots[] = {
    {Py_tp_call, request_call},
    {Py_tp_iter, request_iter},
    {Py_tp_iternext, request_next},
    {Py_tp_methods, request_methods},
    {Py_tp_traverse, request_traverse},
    {Py_tp_clear, request_clear},
    {Py_tp_dealloc, request_dealloc},
    {0, NULL},
};

static PyType_Spec request_spec = {
    "_tigerops.Request", sizeof(Request), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, request_slots,
};

/* ---- Middleware -------------------------------------------------------- */

static void apply_first_request_config(Middleware *mw) {
  PyObject *cb = mw->on_first_request;
  mw->on_first_request = NULL;
  PyObject *res = PyObject_CallObject(cb, NULL);
  if (!res) {
    PyErr_Clear();
    tgo_log(2, "could not read app.config; using file and environment settings");
  }
  Py_XDECREF(res);
  Py_DECREF(cb);
}

/* Reads the incoming W3C context; an invalid header is ignored (new trace). */
static int remote_context(PyObject *environ, tgo_span_context *ctx) {
  Py_ssize_t len;
  const char *tp = tgo__py_utf8(env_item(environ, tgo__py_str.HTTP_TRACEPARENT), &len);
  if (!tp || tgo_traceparent_parse(tp, (size_t)len, ctx) < 0)
    return 0;
  const char *ts = tgo__py_utf8(env_item(environ, tgo__py_str.HTTP_TRACESTATE), &len);
  if (ts && tgo_tracestate_check(ts, (size_t)len) > 0) {
    ctx->tracestate = ts;
    ctx->tracestate_len = (size_t)len;
  }
  return 1;
}

/* Excluded URLs (health checks): the pattern is searched in the full URL,
 * scheme://host/path?query, as the OpenTelemetry Python settings define. */
static int url_excluded(PyObject *pattern, PyObject *environ) {
  PyObject *scheme = env_item(environ, tgo__py_str.wsgi_url_scheme);
  PyObject *host = env_item(environ, tgo__py_str.HTTP_HOST);
  if (!host)
    host = env_item(environ, tgo__py_str.SERVER_NAME);
  PyObject *path = env_item(environ, tgo__py_str.PATH_INFO);
  PyObject *query = env_item(environ, tgo__py_str.QUERY_STRING);
  Py_ssize_t qlen = 0;
  int has_query = query && tgo__py_utf8(query, &qlen) && qlen > 0;
  PyObject *url = PyUnicode_FromFormat("%U://%U%U%s%U", scheme && PyUnicode_Check(scheme) ? scheme : tgo__py_str.empty,
                                       host && PyUnicode_Check(host) ? host : tgo__py_str.empty,
                                       path && PyUnicode_Check(path) ? path : tgo__py_str.empty,
                                       has_query ? "?" : "", has_query ? query : tgo__py_str.empty);
  if (!url) {
    PyErr_Clear();
    return 0;
  }
  PyObject *match = PyObject_CallMethodObjArgs(pattern, tgo__py_str.search, url, NULL);
  Py_DECREF(url);
  int excluded = match && match != Py_None;
  Py_XDECREF(match);
  PyErr_Clear();
  return excluded;
}

static PyObject *middleware_call(PyObject *op, PyObject *args, PyObject *kwargs) {
  Middleware *mw = (Middleware *)op;
  PyObject *environ, *start_response;
  if (kwargs || !PyTuple_Check(args) || PyTuple_Size(args) != 2)
    return PyObject_Call(mw->wsgi_app, args, kwargs);
  environ = PyTuple_GetItem(args, 0);
  start_response = PyTuple_GetItem(args, 1);
  if (!tgo_enabled() || !PyDict_Check(environ))
    return PyObject_Call(mw->wsgi_app, args, NULL);
  if (__builtin_expect(mw->on_first_request != NULL, 0))
    apply_first_request_config(mw);
  if (mw->excluded && url_excluded(mw->excluded, environ))
    return PyObject_Call(mw->wsgi_app, args, NULL);

  Py_ssize_t mlen = 0;
  const char *method = tgo__py_utf8(env_item(environ, tgo__py_str.REQUEST_METHOD), &mlen);
  if (!method || mlen <= 0 || mlen >= 24) {
    method = "_OTHER";
    mlen = 6;
  }
  tgo_span_context remote;
  int has_remote = remote_context(environ, &remote);
  tgo_span *span = tgo_span_start(method, (size_t)mlen, TGO_KIND_SERVER,
                                  has_remote ? NULL : tgo_current(), has_remote ? &remote : NULL);
  if (tgo_span_is_recording(span)) {
    set_request_attrs(tgo_span_attrs(span), environ, method, (size_t)mlen);
    if (mw->capture_request)
      capture_headers(mw->capture_request, span, environ);
  }

  Request *r = PyObject_GC_New(Request, tgo__py_request_type);
  if (!r) {
    tgo_span_end(span);
    return NULL;
  }
  Py_INCREF(mw);
  r->mw = mw;
  r->span = span;
  tgo_span_ref(span); /* ours; the starter's reference goes to the exporter at end */
  Py_INCREF(start_response);
  r->start_response = start_response;
  r->inner = r->iter = r->ctx = NULL;
  r->status_code = 0;
  r->finished = 0;
  memcpy(r->method, method, (size_t)mlen);
  r->method[mlen] = '\0';
  PyObject_GC_Track((PyObject *)r);

  Request *prev_request = running_request;
  running_request = r;
  tgo_span *prev_span = tgo_set_current(span);
  PyObject *result = PyObject_CallFunctionObjArgs(mw->wsgi_app, environ, (PyObject *)r, NULL);
  tgo_set_current(prev_span);
  running_request = prev_request;

  if (!result) {
    tgo__py_record_pending_exception(span, TGO__PY_EXC_STATUS);
    if (!r->status_code)
      r->status_code = 500;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    request_finish(r);
    PyErr_Restore(type, value, tb);
    Py_DECREF(r);
    return NULL;
  }
  /* sendfile(2) needs the server to see its own file wrapper: hand it back
   * and end the span now rather than lose the zero-copy path. */
  PyObject *fw = env_item(environ, tgo__py_str.wsgi_file_wrapper);
  if (fw && PyType_Check(fw) && PyObject_TypeCheck(result, (PyTypeObject *)fw)) {
    request_finish(r);
    Py_DECREF(r);
    return result;
  }
  r->inner = result;
  return (PyObject *)r;
}

/* app.request_context(environ), hooked: Flask calls it at the start of
 * every request; we keep the context to read the matched rule at the end. */
static PyObject *middleware_request_context(PyObject *op, PyObject *environ) {
  Middleware *mw = (Middleware *)op;
  PyObject *ctx = PyObject_CallFunctionObjArgs(mw->request_context, environ, NULL);
  Request *r = running_request;
  if (ctx && r && r->mw == mw && !r->ctx) {
    Py_INCREF(ctx);
    r->ctx = ctx;
  }
  return ctx;
}

static int middleware_init(PyObject *op, PyObject *args, PyObject *kwds) {
  Middleware *mw = (Middleware *)op;
  static char *kwlist[] = {"wsgi_app", "request_context", "view_functions", "on_first_request", NULL};
  PyObject *wsgi_app, *request_context, *view_functions, *on_first = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O", kwlist, &wsgi_app, &request_context,
                                   &view_functions, &on_first))
    return -1;
  if (!PyCallable_Check(wsgi_app) || !PyCallable_Check(request_context)) {
    PyErr_SetString(PyExc_TypeError, "wsgi_app and request_context must be callable");
    return -1;
  }
  Py_INCREF(wsgi_app);
  Py_XSETREF(mw->wsgi_app, wsgi_app);
  Py_INCREF(request_context);
  Py_XSETREF(mw->request_context, request_context);
  Py_INCREF(view_functions);
  Py_XSETREF(mw->view_functions, view_functions);
  if (on_first != Py_None) {
    Py_INCREF(on_first);
    Py_XSETREF(mw->on_first_request, on_first);
  }
  return 0;
}

static int middleware_traverse(PyObject *op, visitproc visit, void *arg) {
  Middleware *mw = (Middleware *)op;
  Py_VISIT(mw->wsgi_app);
  Py_VISIT(mw->request_context);
  Py_VISIT(mw->view_functions);
  Py_VISIT(mw->on_first_request);
  Py_VISIT(mw->excluded);
  Py_VISIT(mw->capture_request);
  Py_VISIT(mw->capture_response);
  Py_VISIT(Py_TYPE(op));
  return 0;
}

static int middleware_clear(PyObject *op) {
  Middleware *mw = (Middleware *)op;
  Py_CLEAR(mw->wsgi_app);
  Py_CLEAR(mw->request_context);
  Py_CLEAR(mw->view_functions);
  Py_CLEAR(mw->on_first_request);
  Py_CLEAR(mw->excluded);
  Py_CLEAR(mw->capture_request);
  Py_CLEAR(mw->capture_response);
  return 0;
}

static void middleware_dealloc(PyObject *op) {
  PyTypeObject *tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  middleware_clear(op);
  routes_free((Middleware *)op);
  PyObject_GC_Del(op);
  Py_DECREF(tp);
}

static PyObject *middleware_get_wrapped(PyObject *op, void *closure) {
  (void)closure;
  Middleware *mw = (Middleware *)op;
  if (!mw->wsgi_app)
    Py_RETURN_NONE;
  Py_INCREF(mw->wsgi_app);
  return mw->wsgi_app;
}

static PyObject *middleware_get_excluded(PyObject *op, void *closure) {
  (void)closure;
  Middleware *mw = (Middleware *)op;
  PyObject *o = mw->excluded ? mw->excluded : Py_None;
  Py_INCREF(o);
  return o;
}

static int middleware_set_excluded(PyObject *op, PyObject *value, void *closure) {
  (void)closure;
  Middleware *mw = (Middleware *)op;
  if (value && value != Py_None && !PyObject_HasAttrString(value, "search")) {
    PyErr_SetString(PyExc_TypeError, "excluded must be a compiled pattern (with .search) or None");
    return -1;
  }
  PyObject *v = value && value != Py_None ? value : NULL;
  Py_XINCREF(v);
  Py_XSETREF(mw->excluded, v);
  return 0;
}

/* closure: offset of the callable's field in Middleware. */
static PyObject *middleware_get_capture(PyObject *op, void *closure) {
  PyObject *o = *(PyObject **)((char *)op + (size_t)closure);
  if (!o)
    o = Py_None;
  Py_INCREF(o);
  return o;
}

static int middleware_set_capture(PyObject *op, PyObject *value, void *closure) {
  if (value && value != Py_None && !PyCallable_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "header capture must be a callable or None");
    return -1;
  }
  PyObject *v = value && value != Py_None ? value : NULL;
  Py_XINCREF(v);
  Py_XSETREF(*(PyObject **)((char *)op + (size_t)closure), v);
  return 0;
}

static PyMethodDef middleware_methods[] = {
    {"request_context", middleware_request_context, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef middleware_getset[] = {
    {"__wrapped__", middleware_get_wrapped, NULL, "the WSGI app under the agent", NULL},
    {"excluded", middleware_get_excluded, middleware_set_excluded,
     "compiled pattern: requests whose full URL it matches get no span", NULL},
    {"capture_request", middleware_get_capture, middleware_set_capture,
     "capture_request(span, environ): records request headers, or None",
     (void *)offsetof(Middleware, capture_request)},
    {"capture_response", middleware_get_capture, middleware_set_capture,
     "capture_response(span, headers): records response headers, or None",
     (void *)offsetof(Middleware, capture_response)},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot middleware_slots[] = {
    {Py_tp_call, middleware_call},
    {Py_tp_init, middleware_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_methods, middleware_methods},
    {Py_tp_getset, middleware_getset},
    {Py_tp_traverse, middleware_traverse},
    {Py_tp_clear, middleware_clear},
    {Py_tp_dealloc, middleware_dealloc},
    {Py_tp_doc, (void *)"FlaskMiddleware(wsgi_app, request_context, view_functions, on_first_request=None)"},
    {0, NULL},
};

static PyType_Spec middleware_spec = {
    "_tigerops.FlaskMiddleware", sizeof(Middleware), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    middleware_slots,
};

int tgo__py_middleware_types_init(PyObject *module) {
  tgo__py_request_type = (PyTypeObject *)PyType_FromSpec(&request_spec);
  tgo__py_middleware_type = (PyTypeObject *)PyType_FromSpec(&middleware_spec);
  if (!tgo__py_request_type || !tgo__py_middleware_type)
    return -1;
  Py_INCREF(tgo__py_middleware_type);
  if (PyModule_AddObject(module, "FlaskMiddleware", (PyObject *)tgo__py_middleware_type) < 0) {
    Py_DECREF(tgo__py_middleware_type);
    return -1;
  }
  return 0;
}
