/* The per-request object and all per-request state: the span, the status,
 * Flask's RequestContext (for the matched rule), the N+1 statement counts.
 * Which request is running is answered by context.c, the one place that
 * decides the concurrency model. */
#include "flask.h"

#include <structmember.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

PyTypeObject *tgo__py_request_type;

/* Counts a statement shape in the running request; at the threshold, the
 * request span names the shape (tigerops.n_plus_one.*), the first shape to
 * get there. Its final count is set when the request finishes, so an N+1
 * loop does not scan the request span's attributes on every statement. The
 * table lives in the request object, so counts can never carry over to
 * another request. */
void tgo__py_request_count_statement(uint64_t hash, const char *text, size_t text_len) {
  tgo__py_request *r = tgo__py_request_running();
  if (!r || !tgo_span_is_recording(r->span))
    return;
  if (!r->npo && !(r->npo = calloc(TGO__PY_NPO_SLOTS, sizeof *r->npo)))
    return;
  size_t i = hash % TGO__PY_NPO_SLOTS;
  for (size_t probe = 0; probe < TGO__PY_NPO_SLOTS; probe++, i = (i + 1) % TGO__PY_NPO_SLOTS) {
    if (r->npo[i].hash != hash && r->npo[i].hash)
      continue;
    r->npo[i].hash = hash;
    uint32_t count = ++r->npo[i].count;
    uint32_t threshold = (uint32_t)tgo__n_plus_one_threshold();
    if (count == threshold && !r->npo_flagged) {
      tgo_attrs *a = tgo_span_attrs(r->span);
      tgo_attr_bool(a, "tigerops.n_plus_one", 1);
      tgo_attr_str(a, "tigerops.n_plus_one.statement", text, text_len);
      tgo_attr_int(a, "tigerops.n_plus_one.count", count); /* a span ended without finish keeps this */
      r->npo_flagged = (uint32_t)i + 1;
    }
    return;
  }
}

/* The matched rule's facts (cached per rule), or NULL; free *scratch after. */
static const tgo__py_route *route_of(tgo__py_request *r, tgo__py_route *scratch) {
  if (!r->mw || (!r->url_rule && !r->ctx))
    return NULL;
  PyObject *rule = r->url_rule;
  if (rule) {
    Py_INCREF(rule);
  } else {
    PyObject *req = PyObject_GetAttr(r->ctx, tgo__py_str.request);
    rule = req ? PyObject_GetAttr(req, tgo__py_str.url_rule) : NULL;
    Py_XDECREF(req);
    if (!rule)
      PyErr_Clear();
  }
  if (!rule || rule == Py_None) {
    Py_XDECREF(rule);
    return NULL;
  }
  const tgo__py_route *ri = tgo__py_route_lookup(&r->mw->routes, r->mw->view_functions, rule, scratch);
  Py_DECREF(rule); /* the cache, or scratch, holds the rule */
  return ri;
}

/* Span name and route attributes, through the fresh appends (keys distinct
 * from tgo__py_set_request_attrs'). */
static void set_route(tgo__py_request *r, tgo_span *span, tgo_attrs *a, tgo__py_route *ri, int cached) {
  if (!ri)
    return;
  size_t mlen = r->method_len;
  if (cached && ri->shared_name && !strcmp(ri->name_method, r->method)) {
    tgo__span_set_static_name(span, ri->shared_name, ri->shared_name_len);
  } else {
    char name[512];
    size_t rlen = ri->route_len < sizeof name - 32 ? ri->route_len : sizeof name - 32;
    memcpy(name, r->method, mlen);
    name[mlen] = ' ';
    memcpy(name + mlen + 1, ri->route, rlen);
    size_t len = mlen + 1 + rlen;
    /* Only for the nine methods: a client must not fill the table. */
    const char *shared = cached && mlen < sizeof ri->name_method && tgo__http_method_literal(r->method, mlen)
                             ? tgo__intern(name, len)
                             : NULL;
    if (shared) { /* the route's usual method from now on */
      memcpy(ri->name_method, r->method, mlen + 1);
      ri->shared_name = shared;
      ri->shared_name_len = len;
      tgo__span_set_static_name(span, shared, len);
    } else {
      tgo_span_set_name(span, name, len);
    }
  }
  tgo__attrs_append_run(a, ri->attrs);
}

/* http.server.request.duration and active_requests, for every request. */
static void record_metrics(tgo__py_request *r, tgo__py_route *ri, int cached) {
  char code[8];
  tgo__http_server_request m = {r->method, ri ? ri->route : NULL, NULL, r->method_len, ri ? ri->route_len : 0,
                                0, r->https, r->status_code, 0, r->active, r->span,
                                ri && cached ? &ri->duration_memo : NULL};
  if (*r->error_type) {
    m.error_type = r->error_type;
    m.error_type_len = strlen(r->error_type);
  } else if (r->status_code >= 500) {
    m.error_type = code;
    m.error_type_len = (size_t)snprintf(code, sizeof code, "%d", r->status_code);
  }
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  m.duration_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec - r->start_ns;
  tgo__http_server_end(&m);
}

void tgo__py_request_finish(tgo__py_request *r) {
  if (r->finished || !r->span)
    return;
  r->finished = 1;
  tgo_span *span = r->span;
  tgo__py_route scratch; /* filled (route_fill clears it first) only when the route cache is full */
  int recording = tgo_span_is_recording(span), metrics = r->active != NULL;
  if (recording && r->status_code >= 500 && !tgo_span_get_status(span))
    tgo_span_set_status(span, TGO_STATUS_ERROR, NULL, 0);
  /* A trace tail keep drops gets no attributes: nobody would read them.
   * Metrics still need the route, for every request. */
  int attrs = recording && (!r->environ || tgo__span_will_export(span));
  const tgo__py_route *ri = attrs || metrics ? route_of(r, &scratch) : NULL;
  if (metrics) /* the cache's entries are the route's own: only they keep a memo */
    record_metrics(r, (tgo__py_route *)ri, ri != &scratch);
  if (attrs) {
    tgo_attrs *a = tgo_span_attrs(span);
    tgo__attrs_fresh(a, 1);
    if (r->environ)
      tgo__py_set_request_attrs(a, r->environ, r->method, r->method_len);
    set_route(r, span, a, (tgo__py_route *)ri, ri != &scratch);
    if (r->status_code > 0)
      TGO__ATTR_INT_NEW(a, "http.response.status_code", r->status_code);
    tgo__attrs_fresh(a, 0);
    if (r->npo_flagged && r->npo)
      tgo_attr_int(a, "tigerops.n_plus_one.count", r->npo[r->npo_flagged - 1].count);
    if (r->status_code > 0) {
      if (r->status_code >= 400)
        tgo_attr_bool(a, "error", 1);
      if (r->status_code >= 500) {
        /* An exception's type, when one was recorded, says more than the code. */
        if (!tgo_attrs_has(a, "error.type")) {
          char code[8];
          int n = snprintf(code, sizeof code, "%d", r->status_code);
          tgo_attr_str(a, "error.type", code, (size_t)n);
        }
      }
    }
  }
  if (ri == &scratch)
    tgo__py_route_clear(&scratch);
  tgo_span_end(span);
  Py_CLEAR(r->ctx);
  Py_CLEAR(r->url_rule);
  Py_CLEAR(r->environ);
}

static void finish_keeping_error(tgo__py_request *r) {
  if (r->finished || !r->span) /* nothing to finish: the error state's save and restore cost ~40 */
    return;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  tgo__py_request_finish(r);
  PyErr_Restore(type, value, tb);
}

static PyObject *request_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames);

tgo__py_request *tgo__py_request_new(tgo__py_middleware *mw, tgo_span *span, PyObject *start_response,
                                     const char *method, size_t method_len) {
  tgo__py_request *r = mw->spare_request;
  if (r) {
    mw->spare_request = NULL;
    /* Tracked again below, as the collector's youngest: a request left in
     * a reference cycle (a handled exception's traceback holds the
     * start_response of the frames it went through) must be collected,
     * and its span end, as soon as a fresh object's would, not at the
     * next full collection of the generation the spare had aged into. */
    PyObject_GC_UnTrack((PyObject *)r);
  } else if (!(r = PyObject_GC_New(tgo__py_request, tgo__py_request_type))) {
    return NULL;
  }
  Py_INCREF(mw);
  r->mw = mw;
  r->span = span;
  tgo_span_ref(span); /* ours; the starter's reference goes to the exporter at end */
  Py_INCREF(start_response);
  r->start_response = start_response;
  r->inner = r->iter = r->ctx = r->environ = r->url_rule = r->call_environ = NULL;
  r->status_code = 0;
  r->finished = 0;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  r->start_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
  r->active = NULL;
  r->https = 0;
  r->error_type[0] = '\0';
  if (method_len >= sizeof r->method)
    method_len = sizeof r->method - 1;
  memcpy(r->method, method, method_len);
  r->method[method_len] = '\0';
  r->method_len = method_len;
  r->npo = NULL;
  r->npo_flagged = 0;
  r->vectorcall = (void *)request_vectorcall;
  PyObject_GC_Track((PyObject *)r);
  return r;
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

void tgo__py_capture_headers(PyObject *capture, tgo_span *span, PyObject *headers) {
  Py_INCREF(capture); /* the app may replace the middleware's attribute meanwhile */
  PyObject *handle = tgo__py_span_wrap(span, 0);
  PyObject *res = handle ? PyObject_CallFunctionObjArgs(capture, handle, headers, NULL) : NULL;
  Py_DECREF(capture);
  if (!res) {
    PyErr_Clear();
    tgo_log(TGO_LOG_WARN, "header capture failed; headers are not recorded");
  }
  Py_XDECREF(res);
  Py_XDECREF(handle);
}

int tgo__py_keep_rule_of(tgo__py_request *r, PyObject *request) {
  PyObject *rule = PyObject_GetAttr(request, tgo__py_str.url_rule);
  if (!rule) {
    PyErr_Clear();
    return 0;
  }
  Py_XSETREF(r->url_rule, rule);
  return 1;
}

/* The url_rule of the werkzeug Request Flask made for the environ the app
 * was called with (a dictionary lookup, where a context variable's get is
 * a call); nothing without one (a request_class that does not register
 * itself, or Flask's context pop has cleared it), or once the route has
 * its source. */
int tgo__py_keep_flask_request(tgo__py_request *r, PyObject *environ) {
  if (r->url_rule || r->ctx || !environ)
    return r->url_rule != NULL;
  PyObject *req = tgo__py_env(environ, TGO__ENV_WERKZEUG_REQUEST);
  return req && req != Py_None && tgo__py_keep_rule_of(r, req);
}

void tgo__py_keep_route_source(tgo__py_request *r) {
  /* Below the class hook, Flask's own wsgi_app of our app made the
   * environ's Request: no context, and so no app check, is needed. */
  if (!(r->mw && r->mw->via_class && tgo__py_keep_flask_request(r, r->call_environ)))
    tgo__py_keep_flask_request_context(r);
}

/* What the app's start_response(status, headers) call tells: both may be
 * NULL (a call of another shape). */
static void start_response_seen(tgo__py_request *r, PyObject *status, PyObject *headers) {
  tgo__py_keep_route_source(r);
  if (status)
    r->status_code = parse_status(status);
  if (r->mw->capture_response && headers && tgo_span_is_recording(r->span))
    tgo__py_capture_headers(r->mw->capture_response, r->span, headers);
}

/* The start_response the app calls. The args tuple is passed on as is. */
static PyObject *request_call(PyObject *op, PyObject *args, PyObject *kwargs) {
  tgo__py_request *r = (tgo__py_request *)op;
  if (!r->start_response) { /* cleared with a reference cycle it was in */
    PyErr_SetString(PyExc_TypeError, "this request's start_response is gone");
    return NULL;
  }
  Py_ssize_t n = PyTuple_Check(args) ? PyTuple_Size(args) : 0;
  PyObject *status = n >= 1 ? PyTuple_GetItem(args, 0) : NULL, *headers = n >= 2 ? PyTuple_GetItem(args, 1) : NULL;
  if (kwargs && PyDict_Check(kwargs)) { /* the names servers and PEP 3333 give them */
    if (!status)
      status = PyDict_GetItemString(kwargs, "status");
    if (!headers && !(headers = PyDict_GetItemString(kwargs, "headers")))
      headers = PyDict_GetItemString(kwargs, "response_headers");
  }
  start_response_seen(r, status && PyUnicode_Check(status) ? status : NULL, headers);
  return PyObject_Call(r->start_response, args, kwargs);
}

/* The same, called the way Python calls (PEP 590): werkzeug's
 * start_response(status, headers) then makes no argument tuple for us,
 * and we none for the server's. */

static PyObject *request_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
  tgo__py_request *r = (tgo__py_request *)op;
  Py_ssize_t n = TGO__VECTORCALL_NARGS(nargsf);
  if (kwnames || n < 2 || n > 3 || !r->start_response) /* any other shape: as a tuple call */
    return tgo__py_call_via_tuple(request_call, op, args, n, kwnames);
  start_response_seen(r, args[0], args[1]);
  /* The caller's array and flags as they came: with its offset flag,
   * args[-1] is free for a bound method's self. */
  return PyObject_VectorcallDict(r->start_response, args, nargsf, NULL);
}

/* A request whose body went to the server itself (body_is_materialised)
 * is only the start_response the app was given. */
static int is_not_the_response(tgo__py_request *r) {
  if (r->inner)
    return 0;
  PyErr_SetString(PyExc_TypeError, "this request's body went to the server directly: it is not iterable");
  return 1;
}

static PyObject *request_iter(PyObject *op) {
  tgo__py_request *r = (tgo__py_request *)op;
  if (is_not_the_response(r))
    return NULL;
  if (!r->iter && !(r->iter = PyObject_GetIter(r->inner)))
    return NULL;
  Py_INCREF(op);
  return op;
}

static PyObject *request_next(PyObject *op) {
  tgo__py_request *r = (tgo__py_request *)op;
  if (is_not_the_response(r))
    return NULL;
  if (!r->iter && !(r->iter = PyObject_GetIter(r->inner)))
    return NULL;
  tgo__py_saved saved = tgo__py_enter(r->span, r);
  PyObject *item = PyIter_Next(r->iter);
  tgo__py_leave(&saved);
  if (!item && PyErr_Occurred())
    tgo__py_record_exception(r->span, NULL, TGO__PY_EXC_STATUS | TGO__PY_EXC_EVENT, NULL);
  return item;
}

static PyObject *request_close(PyObject *op, PyObject *unused) {
  (void)unused;
  tgo__py_request *r = (tgo__py_request *)op;
  PyObject *res = NULL;
  if (r->inner && !r->finished) {
    PyObject *close = PyObject_GetAttr(r->inner, tgo__py_str.close);
    if (close) {
      tgo__py_saved saved = tgo__py_enter(r->span, r);
      res = PyObject_CallObject(close, NULL);
      tgo__py_leave(&saved);
      Py_DECREF(close);
      if (!res)
        tgo__py_record_exception(r->span, NULL, TGO__PY_EXC_STATUS | TGO__PY_EXC_EVENT, NULL);
    } else {
      PyErr_Clear();
    }
  }
  finish_keeping_error(r);
  if (!res && PyErr_Occurred())
    return NULL;
  Py_XDECREF(res);
  Py_RETURN_NONE;
}

static int request_traverse(PyObject *op, visitproc visit, void *arg) {
  tgo__py_request *r = (tgo__py_request *)op;
  Py_VISIT(r->mw);
  Py_VISIT(r->start_response);
  Py_VISIT(r->inner);
  Py_VISIT(r->iter);
  Py_VISIT(r->ctx);
  Py_VISIT(r->url_rule);
  Py_VISIT(r->environ);
  Py_VISIT(Py_TYPE(op));
  return 0;
}

static int request_clear(PyObject *op) {
  tgo__py_request *r = (tgo__py_request *)op;
  /* Collected in a cycle without close(): end the span while the request
   * context (route, endpoint) is still reachable. */
  finish_keeping_error(r);
  Py_CLEAR(r->start_response);
  Py_CLEAR(r->inner);
  Py_CLEAR(r->iter);
  Py_CLEAR(r->ctx);
  Py_CLEAR(r->url_rule);
  Py_CLEAR(r->environ);
  return 0;
}

/* Everything of the request but the object itself: the span ends (a
 * server that never called close()), and the references and memory go. */
static void request_let_go(tgo__py_request *r) {
  request_clear((PyObject *)r);
  if (r->span) {
    tgo_span_unref(r->span);
    r->span = NULL;
  }
  free(r->npo);
  r->npo = NULL;
  r->npo_flagged = 0;
}

static void request_dealloc(PyObject *op) {
  tgo__py_request *r = (tgo__py_request *)op;
  PyTypeObject *tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  request_let_go(r);
  Py_CLEAR(r->mw);
  PyObject_GC_Del(op);
  Py_DECREF(tp);
}

/* When nobody else holds it (the app kept no reference of its
 * start_response), the object is cleared and kept as its middleware's
 * spare for the next request: the collector's allocation, tracking and
 * free cost about 250 instructions a request. One per middleware. */
void tgo__py_request_release(tgo__py_request *r) {
  tgo__py_middleware *mw = r->mw;
  if (Py_REFCNT(r) != 1 || !mw || mw->spare_request) {
    Py_DECREF(r);
    return;
  }
  request_let_go(r); /* may run Python code (a dropped environ's values): r is still only ours */
  r->mw = NULL;
  if (mw->spare_request) { /* filled meanwhile */
    Py_DECREF(mw);
    Py_DECREF(r);
    return;
  }
  mw->spare_request = r; /* takes our reference */
  Py_DECREF(mw);
}

/* Made only by the middleware: an instance from Python would have no span. */
static PyObject *request_refuse_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  (void)args;
  (void)kwds;
  PyErr_Format(PyExc_TypeError, "cannot create '%s' instances", "_tigerops.Request");
  (void)type;
  return NULL;
}

static PyMethodDef request_methods[] = {
    {"close", request_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef request_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(tgo__py_request, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot request_slots[] = {
    {Py_tp_members, request_members},
    {Py_tp_new, request_refuse_new},
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
    "_tigerops.Request", sizeof(tgo__py_request), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL, request_slots,
};

int tgo__py_request_type_init(PyObject *module) {
  (void)module;
  tgo__py_request_type = (PyTypeObject *)PyType_FromSpec(&request_spec);
  return tgo__py_request_type ? 0 : -1;
}
