/* tigerops.Span: the manual API's handle on a C span. Used as a context
 * manager (start on enter, current while inside, end on exit) or wrapped
 * around the current span by current_span() (borrowed: never ends it). */
#include "glue.h"

#include <string.h>

typedef struct {
  PyObject_HEAD
  tgo_span *span;       /* NULL until started; holds one reference */
  tgo__py_saved saved;  /* what __enter__ replaced, restored on exit */
  PyObject *name;       /* for the lazy start */
  PyObject *attributes; /* likewise */
  PyObject *parent;     /* a traceparent or a header mapping to continue instead of the current span */
  int kind;
  int owned;
} SpanObject;

PyTypeObject *tgo__py_span_type;

static void start_now(SpanObject *self) {
  if (self->span)
    return;
  Py_ssize_t len = 0;
  const char *name = tgo__py_utf8(self->name, &len);
  /* An explicit parent that is malformed starts a new trace, as the W3C
   * spec says for a bad incoming header. */
  tgo_span *local = self->parent ? tgo__py_span_of(self->parent) : NULL;
  if (local)
    self->span = tgo_span_start(name ? name : "span", name ? (size_t)len : 4, (tgo_kind)self->kind, local, NULL);
  else if (self->parent)
    self->span = tgo__py_start_from_carrier(name ? name : "span", name ? (size_t)len : 4, self->kind,
                                            self->parent);
  else
    self->span = tgo_span_start(name ? name : "span", name ? (size_t)len : 4, (tgo_kind)self->kind,
                                tgo__py_current(), NULL);
  Py_CLEAR(self->parent);
  tgo_span_ref(self->span); /* the handle's own; ending hands the starter's to the exporter */
  tgo__py_set_attrs(tgo_span_attrs(self->span), self->attributes);
  Py_CLEAR(self->attributes);
}

tgo_span *tgo__py_span_of(PyObject *obj) {
  if (!PyObject_TypeCheck(obj, tgo__py_span_type))
    return NULL;
  return ((SpanObject *)obj)->span;
}

PyObject *tgo__py_span_wrap(tgo_span *span, int owned) {
  SpanObject *self = PyObject_GC_New(SpanObject, tgo__py_span_type);
  if (!self)
    return NULL;
  self->span = span;
  memset(&self->saved, 0, sizeof self->saved);
  self->name = NULL;
  self->attributes = NULL;
  self->parent = NULL;
  self->kind = TGO_KIND_INTERNAL;
  self->owned = owned;
  tgo_span_ref(span);
  PyObject_GC_Track((PyObject *)self);
  return (PyObject *)self;
}

static int span_init(PyObject *op, PyObject *args, PyObject *kwds) {
  SpanObject *self = (SpanObject *)op;
  static char *kwlist[] = {"name", "kind", "attributes", "parent", NULL};
  PyObject *name = NULL, *attributes = NULL, *parent = NULL;
  int kind = TGO_KIND_INTERNAL;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|iOO", kwlist, &name, &kind, &attributes, &parent))
    return -1;
  if (parent == Py_None)
    parent = NULL;
  if (parent && !PyUnicode_Check(parent) && !PyMapping_Check(parent) && !PyObject_TypeCheck(parent, tgo__py_span_type)) {
    PyErr_SetString(PyExc_TypeError, "parent must be a traceparent str, a mapping of headers, a Span or None");
    return -1;
  }
  Py_XINCREF(parent);
  Py_XSETREF(self->parent, parent);
  if (kind < TGO_KIND_INTERNAL || kind > TGO_KIND_CONSUMER) {
    PyErr_SetString(PyExc_ValueError, "kind must be one of tigerops.KIND_*");
    return -1;
  }
  Py_INCREF(name);
  Py_XSETREF(self->name, name);
  Py_XINCREF(attributes);
  Py_XSETREF(self->attributes, attributes);
  self->kind = kind;
  self->owned = 1;
  return 0;
}

static int span_traverse(PyObject *op, visitproc visit, void *arg) {
  SpanObject *self = (SpanObject *)op;
  Py_VISIT(self->name);
  Py_VISIT(self->attributes);
  Py_VISIT(self->parent);
  Py_VISIT(self->saved.tok_span);
  Py_VISIT(self->saved.tok_request);
  Py_VISIT(Py_TYPE(op));
  return 0;
}

static int span_clear(PyObject *op) {
  SpanObject *self = (SpanObject *)op;
  Py_CLEAR(self->name);
  Py_CLEAR(self->attributes);
  Py_CLEAR(self->parent);
  return 0;
}

static void span_dealloc(PyObject *op) {
  SpanObject *self = (SpanObject *)op;
  PyTypeObject *tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  tgo__py_leave(&self->saved); /* dropped while entered: the current span must not dangle */
  if (self->span) {
    if (self->owned && !tgo_span_is_ended(self->span))
      tgo_span_end(self->span); /* dropped without end(): keep its data */
    tgo_span_unref(self->span);
    self->span = NULL;
  }
  span_clear(op);
  freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
  tp_free(op);
  Py_DECREF(tp);
}

static PyObject *span_enter(PyObject *op, PyObject *unused) {
  (void)unused;
  SpanObject *self = (SpanObject *)op;
  start_now(self);
  if (!self->saved.entered)
    self->saved = tgo__py_enter(self->span, NULL);
  Py_INCREF(op);
  return op;
}

static PyObject *span_exit(PyObject *op, PyObject *args) {
  SpanObject *self = (SpanObject *)op;
  PyObject *type = Py_None, *value = Py_None, *tb = Py_None;
  if (!PyArg_UnpackTuple(args, "__exit__", 0, 3, &type, &value, &tb))
    return NULL;
  if (self->span && value != Py_None)
    tgo__py_record_exception(self->span, value, TGO__PY_EXC_STATUS | TGO__PY_EXC_EVENT, NULL);
  tgo__py_leave(&self->saved);
  if (self->span && self->owned)
    tgo_span_end(self->span);
  Py_RETURN_FALSE;
}

/* OpenTelemetry's record_exception: an "exception" event (no status). */
static PyObject *span_record_exception(PyObject *op, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"exception", "attributes", NULL};
  PyObject *exc, *attributes = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:record_exception", kwlist, &exc, &attributes))
    return NULL;
  SpanObject *self = (SpanObject *)op;
  start_now(self);
  tgo__py_record_exception(self->span, exc, TGO__PY_EXC_EVENT, attributes);
  Py_RETURN_NONE;
}

/* The agent's own paths (request, Celery): error status, error.type and
 * the exception event, through the one recorder. */
static PyObject *span_record_error(PyObject *op, PyObject *exc) {
  SpanObject *self = (SpanObject *)op;
  start_now(self);
  tgo__py_record_exception(self->span, exc, TGO__PY_EXC_STATUS | TGO__PY_EXC_EVENT, NULL);
  Py_RETURN_NONE;
}

static PyObject *span_start(PyObject *op, PyObject *unused) {
  (void)unused;
  start_now((SpanObject *)op);
  Py_INCREF(op);
  return op;
}

/* end(end_time=None): end_time in Unix nanoseconds, as OpenTelemetry's. */
static PyObject *span_end(PyObject *op, PyObject *args) {
  SpanObject *self = (SpanObject *)op;
  PyObject *when = Py_None;
  if (!PyArg_UnpackTuple(args, "end", 0, 1, &when))
    return NULL;
  unsigned long long ns = 0;
  if (when != Py_None) {
    ns = PyLong_AsUnsignedLongLong(when);
    if (PyErr_Occurred()) {
      PyErr_Clear();
      ns = 0; /* a bad time: end now */
    }
  }
  if (self->span && self->owned)
    tgo__span_end_at(self->span, ns);
  Py_RETURN_NONE;
}

/* Makes the span current until _leave(), without ending it (OpenTelemetry's
 * use_span(end_on_exit=False)). */
static PyObject *span_leave(PyObject *op, PyObject *unused) {
  (void)unused;
  tgo__py_leave(&((SpanObject *)op)->saved);
  Py_RETURN_NONE;
}

static PyObject *span_set_start_time(PyObject *op, PyObject *when) {
  SpanObject *self = (SpanObject *)op;
  unsigned long long ns = PyLong_AsUnsignedLongLong(when);
  if (PyErr_Occurred())
    return NULL;
  start_now(self);
  tgo__span_set_start_time(self->span, ns);
  Py_RETURN_NONE;
}

/* _add_link(traceparent, is_remote, tracestate=None, attributes=None): a
 * link to the span a traceparent names; a malformed one is ignored. */
static PyObject *span_add_link(PyObject *op, PyObject *args) {
  PyObject *tp, *tracestate = Py_None, *attributes = Py_None;
  int is_remote = 0;
  if (!PyArg_ParseTuple(args, "Up|OO:_add_link", &tp, &is_remote, &tracestate, &attributes))
    return NULL;
  SpanObject *self = (SpanObject *)op;
  start_now(self);
  Py_ssize_t len;
  const char *t = tgo__py_utf8(tp, &len);
  tgo_span_context ctx;
  if (!t || tgo_traceparent_parse(t, (size_t)len, &ctx) < 0)
    Py_RETURN_FALSE;
  ctx.is_remote = (uint8_t)is_remote;
  const char *ts = tgo__py_utf8(tracestate, &len);
  if (ts && tgo_tracestate_check(ts, (size_t)len) > 0) {
    ctx.tracestate = ts;
    ctx.tracestate_len = (size_t)len;
  }
  tgo_attrs *a = tgo__span_add_link(self->span, &ctx);
  if (a && attributes != Py_None)
    tgo__py_set_attrs(a, attributes);
  Py_RETURN_TRUE;
}

static tgo_attrs *live_attrs(SpanObject *self) {
  start_now(self);
  return tgo_span_attrs(self->span);
}

static PyObject *span_set_attribute(PyObject *op, PyObject *args) {
  PyObject *key, *value;
  if (!PyArg_ParseTuple(args, "OO:set_attribute", &key, &value))
    return NULL;
  Py_ssize_t len;
  const char *k = tgo__py_utf8(key, &len); /* a non-str key is ignored, as OpenTelemetry's API does */
  if (k)
    tgo__py_set_attr(live_attrs((SpanObject *)op), k, value);
  Py_RETURN_NONE;
}

static PyObject *span_set_attributes(PyObject *op, PyObject *mapping) {
  tgo__py_set_attrs(live_attrs((SpanObject *)op), mapping);
  Py_RETURN_NONE;
}

static PyObject *span_add_event(PyObject *op, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"name", "attributes", NULL};
  PyObject *name, *attributes = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|O:add_event", kwlist, &name, &attributes))
    return NULL;
  SpanObject *self = (SpanObject *)op;
  start_now(self);
  Py_ssize_t len;
  const char *n = tgo__py_utf8(name, &len);
  if (n)
    tgo__py_set_attrs(tgo_span_add_event(self->span, n, (size_t)len), attributes);
  Py_RETURN_NONE;
}

static PyObject *span_set_status(PyObject *op, PyObject *args) {
  PyObject *code, *description = Py_None;
  if (!PyArg_ParseTuple(args, "O|O:set_status", &code, &description))
    return NULL;
  SpanObject *self = (SpanObject *)op;
  start_now(self);
  tgo_status st = TGO_STATUS_UNSET;
  Py_ssize_t len = 0;
  const char *c = tgo__py_utf8(code, &len);
  if (c && (!strcmp(c, "error") || !strcmp(c, "ERROR")))
    st = TGO_STATUS_ERROR;
  else if (c && (!strcmp(c, "ok") || !strcmp(c, "OK")))
    st = TGO_STATUS_OK;
  else if (PyLong_Check(code))
    st = (tgo_status)PyLong_AsLong(code);
  if (st > TGO_STATUS_ERROR || (int)st < 0) {
    PyErr_SetString(PyExc_ValueError, "status must be 'ok', 'error' or 'unset'");
    return NULL;
  }
  const char *d = tgo__py_utf8(description, &len);
  tgo_span_set_status(self->span, st, d, d ? (size_t)len : 0);
  Py_RETURN_NONE;
}

static PyObject *span_update_name(PyObject *op, PyObject *name) {
  SpanObject *self = (SpanObject *)op;
  start_now(self);
  Py_ssize_t len;
  const char *n = tgo__py_utf8(name, &len);
  if (n)
    tgo_span_set_name(self->span, n, (size_t)len);
  Py_RETURN_NONE;
}

static PyObject *span_is_recording(PyObject *op, PyObject *unused) {
  (void)unused;
  SpanObject *self = (SpanObject *)op;
  return PyBool_FromLong(self->span && tgo_span_is_recording(self->span));
}

static PyObject *context_hex(SpanObject *self, int which) {
  if (!self->span)
    Py_RETURN_NONE;
  tgo_span_context ctx;
  tgo_span_get_context(self->span, &ctx);
  char out[TGO_TRACEPARENT_LEN + 1];
  tgo_traceparent_format(&ctx, out);
  if (which == 0)
    return PyUnicode_FromStringAndSize(out + 3, 32);
  if (which == 1)
    return PyUnicode_FromStringAndSize(out + 36, 16);
  return PyUnicode_FromStringAndSize(out, TGO_TRACEPARENT_LEN);
}

static PyObject *get_trace_id(PyObject *op, void *c) { (void)c; return context_hex((SpanObject *)op, 0); }
static PyObject *get_span_id(PyObject *op, void *c) { (void)c; return context_hex((SpanObject *)op, 1); }
static PyObject *get_traceparent(PyObject *op, void *c) { (void)c; return context_hex((SpanObject *)op, 2); }

static PyMethodDef span_methods[] = {
    {"__enter__", span_enter, METH_NOARGS, NULL},
    {"__exit__", span_exit, METH_VARARGS, NULL},
    {"start", span_start, METH_NOARGS, "Start the span now (otherwise on enter or first use)."},
    {"end", span_end, METH_VARARGS, "end(end_time=None): end the span (end_time: Unix ns); later changes are ignored."},
    {"_leave", span_leave, METH_NOARGS, "stop being current without ending (after __enter__)"},
    {"_set_start_time", span_set_start_time, METH_O, "the start time, Unix ns"},
    {"_add_link", span_add_link, METH_VARARGS, "_add_link(traceparent, is_remote, tracestate=None, attributes=None)"},
    {"set_attribute", span_set_attribute, METH_VARARGS, NULL},
    {"set_attributes", span_set_attributes, METH_O, NULL},
    {"add_event", (PyCFunction)(void (*)(void))span_add_event, METH_VARARGS | METH_KEYWORDS, NULL},
    {"set_status", span_set_status, METH_VARARGS, "set_status('ok'|'error'|'unset', description=None)"},
    {"update_name", span_update_name, METH_O, NULL},
    {"is_recording", span_is_recording, METH_NOARGS, NULL},
    {"_record_error", span_record_error, METH_O, "error status and exception event (agent use)"},
    {"record_exception", (PyCFunction)(void (*)(void))span_record_exception, METH_VARARGS | METH_KEYWORDS,
     "record_exception(exception, attributes=None): an exception event with the traceback"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef span_getset[] = {
    {"trace_id", get_trace_id, NULL, "32 hex digits", NULL},
    {"span_id", get_span_id, NULL, "16 hex digits", NULL},
    {"traceparent", get_traceparent, NULL, "the W3C traceparent of this span", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot span_slots[] = {
    {Py_tp_init, span_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, span_dealloc},
    {Py_tp_traverse, span_traverse},
    {Py_tp_clear, span_clear},
    {Py_tp_methods, span_methods},
    {Py_tp_getset, span_getset},
    {Py_tp_doc, (void *)"A traced operation: use as a context manager."},
    {0, NULL},
};

static PyType_Spec span_spec = {
    "_tigerops.Span", sizeof(SpanObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, span_slots,
};

int tgo__py_span_type_init(PyObject *module) {
  tgo__py_span_type = (PyTypeObject *)PyType_FromSpec(&span_spec);
  if (!tgo__py_span_type)
    return -1;
  Py_INCREF(tgo__py_span_type);
  if (PyModule_AddObject(module, "Span", (PyObject *)tgo__py_span_type) < 0) {
    Py_DECREF(tgo__py_span_type);
    return -1;
  }
  return 0;
}
