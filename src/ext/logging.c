/* Python logging: a LogRecord factory in C that wraps the one logging had
 * (or the one the app installs later: tigerops._logging wraps every
 * setLogRecordFactory). Each record gets the trace context under
 * OpenTelemetry Python's names (otelTraceID, otelSpanID, otelTraceSampled,
 * otelServiceName; "0", "0", False outside a span) and, at or above
 * TIGEROPS_LOG_EXPORT_LEVEL, is copied into the core's log queue. Outside a
 * span a record costs four dict stores of shared objects, no Python call. */
#include "glue.h"

#include <limits.h>
#include <string.h>

typedef struct {
  PyObject_HEAD
  PyObject *inner; /* the factory wrapped: LogRecord, or the app's */
} RecordFactory;

static PyTypeObject *factory_type;
static PyObject *n_trace, *n_span, *n_sampled, *n_service, *zero, *service_name;
static PyObject *n_levelno, *n_levelname, *n_name, *n_pathname, *n_funcName, *n_lineno, *n_created, *n_exc_info,
    *n_getMessage, *n_msg;
static PyObject *exception_parts; /* (exc_info) -> (type, message, stacktrace), from tigerops._logging */

/* Set while a factory call of ours runs on this thread: a factory of ours
 * called from inside it (an app factory chaining the one it found, which is
 * ours) only delegates, so a record is correlated and exported once. */
static __thread int in_factory;
/* Set while a record is read for export: records made meanwhile (a
 * __str__ that logs) are correlated but never exported, so no loop. */
static __thread int exporting;

static void hex(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
}

static void set_context(PyObject *rec) {
  tgo_span_context ctx;
  tgo_span *span = tgo__py_current_traced(&ctx);
  PyObject *trace = zero, *sid = zero, *sampled = Py_False;
  Py_INCREF(zero);
  Py_INCREF(zero);
  Py_INCREF(Py_False);
  if (span) {
    char buf[32];
    hex(ctx.trace_id, 16, buf);
    Py_XSETREF(trace, PyUnicode_FromStringAndSize(buf, 32));
    hex(ctx.span_id, 8, buf);
    Py_XSETREF(sid, PyUnicode_FromStringAndSize(buf, 16));
    Py_XSETREF(sampled, PyBool_FromLong(ctx.flags & 1));
  }
  if (!trace || !sid || !sampled || PyObject_SetAttr(rec, n_trace, trace) < 0 ||
      PyObject_SetAttr(rec, n_span, sid) < 0 || PyObject_SetAttr(rec, n_sampled, sampled) < 0 ||
      PyObject_SetAttr(rec, n_service, service_name) < 0)
    PyErr_Clear(); /* a record type that refuses attributes still logs */
  Py_XDECREF(trace);
  Py_XDECREF(sid);
  Py_XDECREF(sampled);
}

/* A borrowed UTF-8 view of rec.<name> kept alive in *hold. */
static const char *text_attr(PyObject *rec, PyObject *name, PyObject **hold, size_t *len) {
  Py_ssize_t n = 0;
  *hold = PyObject_GetAttr(rec, name);
  const char *s = tgo__py_utf8(*hold, &n);
  if (!*hold)
    PyErr_Clear();
  *len = s ? (size_t)n : 0;
  return s;
}

static int starts_with_tigerops(const char *s, size_t n) {
  return n >= 8 && !memcmp(s, "tigerops", 8) && (n == 8 || s[8] == '.');
}

static void export_record(PyObject *rec) {
  int threshold = tgo__logs_threshold();
  if (threshold == INT_MAX || exporting)
    return;
  PyObject *lv = PyObject_GetAttr(rec, n_levelno);
  long level = lv ? PyLong_AsLong(lv) : -1;
  Py_XDECREF(lv);
  if (level < threshold) {
    PyErr_Clear();
    return;
  }
  tgo__log_view v = {0};
  PyObject *name, *levelname, *path, *func, *body = NULL, *parts = NULL, *exc = NULL;
  v.logger = text_attr(rec, n_name, &name, &v.logger_len);
  if (v.logger && starts_with_tigerops(v.logger, v.logger_len)) { /* our own words are never exported */
    Py_XDECREF(name);
    return;
  }
  exporting = 1;
  v.level = (int)level;
  v.level_name = text_attr(rec, n_levelname, &levelname, &v.level_name_len);
  v.file = text_attr(rec, n_pathname, &path, &v.file_len);
  v.function = text_attr(rec, n_funcName, &func, &v.function_len);
  PyObject *o = PyObject_GetAttr(rec, n_lineno);
  v.line = o && PyLong_Check(o) ? PyLong_AsLongLong(o) : 0;
  Py_XDECREF(o);
  o = PyObject_GetAttr(rec, n_created);
  double created = o ? PyFloat_AsDouble(o) : -1.0;
  Py_XDECREF(o);
  v.time_ns = created > 0 ? (uint64_t)(created * 1e9) : 0;
  PyErr_Clear();
  /* The message with its arguments, as getMessage gives it to handlers. */
  body = PyObject_CallMethodObjArgs(rec, n_getMessage, NULL);
  if (!body) {
    PyErr_Clear();
    PyObject *msg = PyObject_GetAttr(rec, n_msg);
    body = msg ? PyObject_Str(msg) : NULL;
    Py_XDECREF(msg);
    PyErr_Clear();
  }
  Py_ssize_t n = 0;
  v.body = tgo__py_utf8(body, &n);
  v.body_len = v.body ? (size_t)n : 0;
  exc = PyObject_GetAttr(rec, n_exc_info);
  if (exc && PyTuple_Check(exc) && PyTuple_Size(exc) == 3 && PyTuple_GetItem(exc, 0) != Py_None && exception_parts) {
    parts = PyObject_CallFunctionObjArgs(exception_parts, exc, NULL);
    if (parts && PyTuple_Check(parts) && PyTuple_Size(parts) == 3) {
      v.exc_type = tgo__py_utf8(PyTuple_GetItem(parts, 0), &n);
      v.exc_type_len = v.exc_type ? (size_t)n : 0;
      v.exc_message = tgo__py_utf8(PyTuple_GetItem(parts, 1), &n);
      v.exc_message_len = v.exc_message ? (size_t)n : 0;
      v.exc_stack = tgo__py_utf8(PyTuple_GetItem(parts, 2), &n);
      v.exc_stack_len = v.exc_stack ? (size_t)n : 0;
    }
  }
  PyErr_Clear();
  tgo_span *span = tgo__py_current();
  tgo_span_context ctx;
  if (span) {
    tgo_span_get_context(span, &ctx);
    v.ctx = &ctx;
  }
  tgo__logs_emit(&v);
  exporting = 0;
  Py_XDECREF(name);
  Py_XDECREF(levelname);
  Py_XDECREF(path);
  Py_XDECREF(func);
  Py_XDECREF(body);
  Py_XDECREF(exc);
  Py_XDECREF(parts);
}

static PyObject *factory_call(PyObject *self, PyObject *args, PyObject *kwargs) {
  PyObject *inner = ((RecordFactory *)self)->inner;
  if (in_factory)
    return PyObject_Call(inner, args, kwargs);
  in_factory = 1;
  PyObject *rec = PyObject_Call(inner, args, kwargs);
  in_factory = 0;
  if (!rec)
    return NULL;
  set_context(rec);
  export_record(rec);
  return rec;
}

static PyObject *factory_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  PyObject *inner;
  if (kwargs && PyDict_Size(kwargs)) {
    PyErr_SetString(PyExc_TypeError, "RecordFactory(factory) takes no keyword arguments");
    return NULL;
  }
  if (!PyArg_ParseTuple(args, "O:RecordFactory", &inner))
    return NULL;
  if (!PyCallable_Check(inner)) {
    PyErr_SetString(PyExc_TypeError, "a log record factory must be callable");
    return NULL;
  }
  RecordFactory *f = (RecordFactory *)PyType_GenericAlloc(type, 0);
  if (!f)
    return NULL;
  Py_INCREF(inner);
  f->inner = inner;
  return (PyObject *)f;
}

static int factory_traverse(PyObject *op, visitproc visit, void *arg) {
  Py_VISIT(((RecordFactory *)op)->inner);
  Py_VISIT(Py_TYPE(op));
  return 0;
}

static int factory_clear(PyObject *op) {
  Py_CLEAR(((RecordFactory *)op)->inner);
  return 0;
}

static void factory_dealloc(PyObject *op) {
  PyTypeObject *tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  factory_clear(op);
  freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
  free_fn(op);
  Py_DECREF(tp);
}

static PyObject *factory_get_wrapped(PyObject *op, void *closure) {
  (void)closure;
  PyObject *inner = ((RecordFactory *)op)->inner;
  Py_INCREF(inner);
  return inner;
}

static PyGetSetDef factory_getset[] = {
    {"__wrapped__", factory_get_wrapped, NULL, "the record factory under the agent", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot factory_slots[] = {
    {Py_tp_call, factory_call},
    {Py_tp_new, factory_new},
    {Py_tp_getset, factory_getset},
    {Py_tp_traverse, factory_traverse},
    {Py_tp_clear, factory_clear},
    {Py_tp_dealloc, factory_dealloc},
    {Py_tp_doc, (void *)"RecordFactory(factory): factory's records with the trace context, exported"},
    {0, NULL},
};

static PyType_Spec factory_spec = {
    "_tigerops.RecordFactory", sizeof(RecordFactory), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, factory_slots,
};

/* configure_logging(exception_parts): the formatter of exc_info, and the
 * service name read again (app.config may have changed it). */
PyObject *tgo__py_configure_logging(PyObject *m, PyObject *formatter) {
  (void)m;
  char buf[512];
  tgo__service_name(buf, sizeof buf);
  PyObject *name = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)strlen(buf), "replace");
  if (!name)
    return NULL;
  Py_XSETREF(service_name, name);
  if (formatter != Py_None) {
    Py_INCREF(formatter);
    Py_XSETREF(exception_parts, formatter);
  }
  Py_RETURN_NONE;
}

/* queued, dropped, exported, failed log records of this process. */
PyObject *tgo__py_log_stats(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  unsigned long long s[4];
  tgo__logs_stats(s);
  return Py_BuildValue("{sKsKsKsK}", "queued", s[0], "dropped", s[1], "exported", s[2], "failed", s[3]);
}

int tgo__py_logging_init(PyObject *module) {
#define NAME(var, text)                                \
  if (!(var = PyUnicode_InternFromString(text))) \
    return -1;
  NAME(n_trace, "otelTraceID");
  NAME(n_span, "otelSpanID");
  NAME(n_sampled, "otelTraceSampled");
  NAME(n_service, "otelServiceName");
  NAME(zero, "0");
  NAME(n_levelno, "levelno");
  NAME(n_levelname, "levelname");
  NAME(n_name, "name");
  NAME(n_pathname, "pathname");
  NAME(n_funcName, "funcName");
  NAME(n_lineno, "lineno");
  NAME(n_created, "created");
  NAME(n_exc_info, "exc_info");
  NAME(n_getMessage, "getMessage");
  NAME(n_msg, "msg");
#undef NAME
  if (!service_name && !(service_name = PyUnicode_FromString("")))
    return -1;
  factory_type = (PyTypeObject *)PyType_FromSpec(&factory_spec);
  if (!factory_type)
    return -1;
  Py_INCREF(factory_type);
  if (PyModule_AddObject(module, "RecordFactory", (PyObject *)factory_type) < 0) {
    Py_DECREF(factory_type);
    return -1;
  }
  return 0;
}
