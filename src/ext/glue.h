/* Shared between the files of the _tigerops extension. Built against the
 * limited API of 3.9 so one .abi3.so serves every CPython from 3.9 on. */
#ifndef TGO__PY_GLUE_H
#define TGO__PY_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tigerops/tigerops.h"
#include "tgo-ext.h"

#if Py_LIMITED_API + 0 < 0x030A0000
/* Exported by every CPython 3.x; only added to the limited API in 3.10. */
PyAPI_FUNC(const char *) PyUnicode_AsUTF8AndSize(PyObject *unicode, Py_ssize_t *size);
#endif

/* Present since CPython 3.7 with these values; the limited API declares
 * METH_FASTCALL from 3.10 on, the rest from 3.12. */
#ifndef METH_FASTCALL
#define METH_FASTCALL 0x0080
#endif
#ifndef PY_VECTORCALL_ARGUMENTS_OFFSET
#define PY_VECTORCALL_ARGUMENTS_OFFSET ((size_t)1 << (8 * sizeof(size_t) - 1))
#endif
#if Py_LIMITED_API + 0 < 0x030C0000
/* Exported by every CPython from 3.9 on; in the limited API from 3.12. */
PyAPI_FUNC(PyObject *) PyObject_VectorcallDict(PyObject *callable, PyObject *const *args, size_t nargsf,
                                               PyObject *kwargs);
PyAPI_FUNC(PyObject *) PyObject_VectorcallMethod(PyObject *name, PyObject *const *args, size_t nargsf,
                                                 PyObject *kwnames);
#endif

/* The flag and the __vectorcalloffset__ member work for types made by
 * PyType_FromSpec from CPython 3.9 on; the limited API names them only
 * from 3.12, so the flag's bit (the same in every version) is spelled out. */
#ifndef Py_TPFLAGS_HAVE_VECTORCALL
#define Py_TPFLAGS_HAVE_VECTORCALL (1UL << 11)
#endif
#define TGO__VECTORCALL_NARGS(nargsf) ((Py_ssize_t)((nargsf) & ~PY_VECTORCALL_ARGUMENTS_OFFSET))

/* callable(*args[:n]) the way Python calls: no argument tuple, and no
 * varargs walk as in PyObject_CallFunctionObjArgs. args[-1] must be
 * ours to overwrite: a bound method puts its self there rather than copy
 * the arguments. */
static inline PyObject *tgo__py_call(PyObject *callable, PyObject **args, size_t n) {
  return PyObject_VectorcallDict(callable, args, n | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

#ifndef Py_XSETREF
/* Not in the limited API before 3.12: replace a strong reference. */
#define Py_XSETREF(dst, src)     \
  do {                           \
    PyObject *old_ = (PyObject *)(dst); \
    (dst) = (src);               \
    Py_XDECREF(old_);            \
  } while (0)
#endif

/* Interned strings used on the request path, created at module exec. */
typedef struct {
  PyObject *request, *url_rule, *rule, *endpoint, *__qualname__, *__module__, *close, *traceparent, *tracestate,
      *rowcount, *search, *empty, *extensions, *tigerops, *wsgi_app, *request_context, *__call__, *app, *_callbacks,
      *response, *_on_close;
} tgo__py_names;
extern tgo__py_names tgo__py_str;

/* _tigerops.flask_class_hooks(Flask, request_ctx_get=None) (middleware.c). */
PyObject *tgo__py_flask_class_hooks(PyObject *module, PyObject *args);
/* _tigerops.flask_closing_iterator(werkzeug.wsgi.ClosingIterator) (middleware.c). */
PyObject *tgo__py_flask_closing_iterator(PyObject *module, PyObject *cls);

/* propagate.c: OTEL_PROPAGATORS for the glue. */
int tgo__py_propagate_init(void);
/* The environ keys' slots (environ.c). */
int tgo__py_env_init(void);
int tgo__py_inject_span(tgo_span *span, PyObject *headers);
/* The C span of a tigerops.Span (NULL for anything else or one not started). */
tgo_span *tgo__py_span_of(PyObject *obj);
tgo_span *tgo__py_start_from_carrier(const char *name, size_t name_len, int kind, PyObject *carrier);

extern PyTypeObject *tgo__py_span_type;
extern PyTypeObject *tgo__py_middleware_type;
extern PyTypeObject *tgo__py_request_type;

int tgo__py_span_type_init(PyObject *module);
int tgo__py_middleware_type_init(PyObject *module);
int tgo__py_db_type_init(PyObject *module);
/* The concurrency model (context.c): which span is current and which
 * request runs, in C thread-locals (threads) or in ContextVars (greenlets,
 * asyncio, async views). Every reader and writer goes through these. */
struct tgo__py_request;
typedef struct {
  uint8_t mode, entered, request_set;
  tgo_span *span, *prev_span;
  struct tgo__py_request *prev_request;
  PyObject *tok_span, *tok_request; /* context mode: ContextVar tokens */
} tgo__py_saved;
tgo_span *tgo__py_current(void);
/* The current span when its context is valid (the no-op span's is not),
 * with that context in *ctx; NULL otherwise. */
tgo_span *tgo__py_current_traced(tgo_span_context *ctx);
/* Makes span current (and request running, when not NULL) until leave. */
tgo__py_saved tgo__py_enter(tgo_span *span, struct tgo__py_request *request);
void tgo__py_leave(tgo__py_saved *saved);
int tgo__py_context_mode(void);
int tgo__py_set_context_mode(int on);
/* The server span of the running Flask request, or NULL. */
tgo_span *tgo__py_request_span(void);
/* N+1 detection: counts a statement shape (hash) in the running request. */
void tgo__py_request_count_statement(uint64_t hash, const char *text, size_t text_len);


/* A vectorcall's arguments as a tp_call's: a new tuple, and a new dict
 * of the keywords or NULL without any. For the shapes a fast path does not
 * take. 0, or -1 with an exception set and nothing to release. */
int tgo__py_args_as_tuple(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **tuple,
                          PyObject **kwargs);
/* A vectorcall passed on to the object's own tp_call, as tuple and dict. */
PyObject *tgo__py_call_via_tuple(ternaryfunc tp_call, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames);
/* A borrowed UTF-8 view of a str; NULL (no exception) for non-str.
 * Inline: a request reads a dozen. The exact type first: under the
 * limited API PyUnicode_Check is a call (PyType_GetFlags), and nearly
 * every string here is a plain str. */
static inline const char *tgo__py_utf8(PyObject *s, Py_ssize_t *len) {
  if (!s || (Py_TYPE(s) != &PyUnicode_Type && !PyUnicode_Check(s)))
    return NULL;
  const char *p = PyUnicode_AsUTF8AndSize(s, len);
  if (!p)
    PyErr_Clear(); /* lone surrogates: skip the value */
  return p;
}
/* Sets one attribute from a Python value of any type; odd values are
 * stringified or skipped, never raised. */
void tgo__py_set_attr(tgo_attrs *attrs, const char *key, PyObject *value);
/* Applies every item of a mapping as attributes. */
void tgo__py_set_attrs(tgo_attrs *attrs, PyObject *mapping);
/* Records an exception on a span: as its ERROR status with error.type
 * (TGO__PY_EXC_STATUS) and/or an "exception" event (TGO__PY_EXC_EVENT)
 * with the traceback and the extra attributes (a mapping, or NULL). exc
 * NULL: the pending exception, which stays pending. */
enum { TGO__PY_EXC_STATUS = 1, TGO__PY_EXC_EVENT = 2 };
void tgo__py_record_exception(tgo_span *span, PyObject *exc, int what, PyObject *extra);
/* The callable (exc) -> event attributes the tigerops package registers. */
void tgo__py_set_exception_formatter(PyObject *formatter);

/* Wraps a C span in a Python handle (new reference); owned means ending the
 * handle ends the span. */
PyObject *tgo__py_span_wrap(tgo_span *span, int owned);

/* metrics.c: _tigerops.metric and its Metric type. */
PyObject *tgo__py_metric(PyObject *m, PyObject *args);
int tgo__py_metric_type_init(PyObject *module);
/* An exception type's name into out ("" when unknown); no exception left set. */
void tgo__py_error_type(PyObject *type, char *out, size_t cap);
PyObject *tgo__py_request_error(PyObject *m, PyObject *exc);
/* logging.c: the LogRecord factory (trace context, log export). */
int tgo__py_logging_init(PyObject *module);
PyObject *tgo__py_configure_logging(PyObject *m, PyObject *formatter);
PyObject *tgo__py_log_stats(PyObject *m, PyObject *unused);

#endif
