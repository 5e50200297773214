/* Which span is current and which request is running: the one place that
 * decides the concurrency model.
 *
 * Threads (the default): C thread-locals, a few instructions.
 * Context: when one OS thread interleaves many requests (gevent and
 * eventlet greenlets, asyncio tasks, asgiref's async views run in another
 * thread with the context copied), thread-locals would mix requests up.
 * Then both live in contextvars.ContextVar objects, which greenlet gives
 * each greenlet its own of, asyncio each task, and asgiref carries across
 * threads. Decided between requests by the Python side (tigerops._context);
 * a handle records the model it entered under, so a switch never strands
 * a block. */
#include "flask.h"

#include <string.h>

static int context_mode;
static PyObject *var_span;    /* ContextVar: capsule of the current tgo_span (a reference) */
static PyObject *var_request; /* ContextVar: the running tgo__py_request */
/* Bound methods, looked up once: the lookup would cost more than the call. */
static PyObject *span_get, *span_set, *span_reset, *request_get, *request_set, *request_reset;
static __thread tgo__py_request *running_request;

int tgo__py_context_mode(void) { return context_mode; }

int tgo__py_set_context_mode(int on) {
  if (on && !var_span) {
    PyObject *mod = PyImport_ImportModule("contextvars");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, "ContextVar") : NULL;
    Py_XDECREF(mod);
    if (!cls)
      return -1;
    var_span = PyObject_CallFunction(cls, "s", "tigerops_current_span");
    var_request = PyObject_CallFunction(cls, "s", "tigerops_running_request");
    Py_DECREF(cls);
    if (!var_span || !var_request)
      return -1;
    span_get = PyObject_GetAttrString(var_span, "get");
    span_set = PyObject_GetAttrString(var_span, "set");
    span_reset = PyObject_GetAttrString(var_span, "reset");
    request_get = PyObject_GetAttrString(var_request, "get");
    request_set = PyObject_GetAttrString(var_request, "set");
    request_reset = PyObject_GetAttrString(var_request, "reset");
    if (!span_get || !span_set || !span_reset || !request_get || !request_set || !request_reset)
      return -1;
  }
  context_mode = on != 0;
  return 0;
}

/* var.get(None) as a borrowed-like pointer: the context keeps the value
 * alive while it is current, and we use it before anything can switch. */
static PyObject *var_value(PyObject *get) {
  PyObject *v = PyObject_CallFunctionObjArgs(get, Py_None, NULL);
  if (!v) {
    PyErr_Clear();
    return NULL;
  }
  Py_DECREF(v);
  return v == Py_None ? NULL : v;
}

static void span_capsule_free(PyObject *capsule) {
  tgo_span *s = PyCapsule_GetPointer(capsule, "tigerops.span");
  if (s)
    tgo_span_unref(s);
}

/* In context mode an empty ContextVar falls back to the thread-local: the
 * switch can come while blocks entered under thread-locals are open (a
 * Celery task or sync view that starts an event loop inside a span), and
 * the coroutines of that loop are still inside those blocks. Nothing sets
 * the thread-locals once the mode is on, so they empty as those blocks
 * close. */
tgo_span *tgo__py_current(void) {
  if (!context_mode)
    return tgo_current();
  PyObject *v = var_value(span_get);
  return v ? PyCapsule_GetPointer(v, "tigerops.span") : tgo_current();
}

tgo_span *tgo__py_current_traced(tgo_span_context *ctx) {
  tgo_span *s = tgo__py_current();
  if (!s)
    return NULL;
  tgo_span_get_context(s, ctx);
  static const uint8_t nil[16];
  return memcmp(ctx->trace_id, nil, sizeof nil) ? s : NULL;
}

tgo__py_request *tgo__py_request_running(void) {
  if (!context_mode)
    return running_request;
  tgo__py_request *r = (tgo__py_request *)var_value(request_get);
  return r ? r : running_request;
}

tgo_span *tgo__py_request_span(void) {
  tgo__py_request *r = tgo__py_request_running();
  return r ? r->span : NULL;
}

/* var.set(value) -> token, or NULL (error cleared): then leave does nothing. */
static PyObject *var_set(PyObject *set, PyObject *value) {
  PyObject *token = PyObject_CallFunctionObjArgs(set, value, NULL);
  if (!token)
    PyErr_Clear();
  return token;
}

/* Tokens must be reset in the context that made them; a block left from
 * another context (a generator finished elsewhere) just lets go. */
static void var_reset(PyObject *reset, PyObject *token) {
  if (!token)
    return;
  PyObject *r = PyObject_CallFunctionObjArgs(reset, token, NULL);
  if (!r)
    PyErr_Clear();
  Py_XDECREF(r);
  Py_DECREF(token);
}

tgo__py_saved tgo__py_enter(tgo_span *span, tgo__py_request *request) {
  tgo__py_saved saved = {0};
  saved.mode = context_mode;
  saved.entered = 1;
  if (!saved.mode) {
    saved.prev_span = tgo_set_current(span);
    saved.span = span;
    /* A span block's previous span is restored later: it must not be freed
     * meanwhile. A request's enter and leave nest around the app call. */
    if (saved.prev_span && !request)
      tgo_span_ref(saved.prev_span);
    if (request) {
      saved.prev_request = running_request;
      saved.request_set = 1;
      running_request = request;
    }
    return saved;
  }
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject *capsule = PyCapsule_New(span, "tigerops.span", span_capsule_free);
  if (capsule) {
    tgo_span_ref(span);
    saved.tok_span = var_set(span_set, capsule);
    Py_DECREF(capsule);
  } else {
    PyErr_Clear();
  }
  if (request) {
    saved.tok_request = var_set(request_set, (PyObject *)request);
    saved.request_set = 1;
  }
  PyErr_Restore(type, value, tb);
  return saved;
}

void tgo__py_leave(tgo__py_saved *saved) {
  if (!saved->entered)
    return;
  saved->entered = 0;
  if (!saved->mode) {
    if (saved->request_set) {
      tgo_set_current(saved->prev_span);
      running_request = saved->prev_request;
      return;
    }
    /* Only when it is still ours: blocks left out of order keep the newer one. */
    if (tgo_current() == saved->span)
      tgo_set_current(saved->prev_span);
    if (saved->prev_span)
      tgo_span_unref(saved->prev_span);
    return;
  }
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  var_reset(span_reset, saved->tok_span);
  if (saved->request_set)
    var_reset(request_reset, saved->tok_request);
  saved->tok_span = saved->tok_request = NULL;
  PyErr_Restore(type, value, tb);
}
