/* Metric instruments for the Python instrumentations:
 * _tigerops.metric(kind, name, unit, description, boundaries=None) returns a
 * Metric whose record(value, attributes=None) aggregates in C (metrics.c).
 * record makes no Python object for str/int/float/bool attributes: their
 * bytes are borrowed for the call. */
#include "flask.h"

#include <string.h>

typedef struct {
  PyObject_HEAD
  tgo__metric *metric;
  int kind;
} Metric;

static PyTypeObject *metric_type;

static const char *const kinds[] = {[TGO__METRIC_COUNTER] = "counter", [TGO__METRIC_UPDOWN] = "updown",
                                    [TGO__METRIC_GAUGE] = "gauge", [TGO__METRIC_HISTOGRAM] = "histogram"};

/* One attribute from a dict item; odd keys and values become their str()
 * (kept alive in *tmp until the record is done), or are skipped. */
static int convert_attr(PyObject *key, PyObject *value, tgo__mattr *a, PyObject **tmp, int *n_tmp) {
  Py_ssize_t len;
  const char *k = tgo__py_utf8(key, &len);
  if (!k) {
    PyObject *s = PyObject_Str(key);
    if (!s)
      return -1;
    tmp[(*n_tmp)++] = s;
    if (!(k = tgo__py_utf8(s, &len)))
      return -1;
  }
  a->key = k;
  a->key_len = (uint32_t)len;
  if (PyBool_Check(value)) {
    a->type = TGO__MATTR_BOOL;
    a->v.b = value == Py_True;
    return 0;
  }
  if (PyLong_Check(value)) {
    int overflow = 0;
    long long i = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (!overflow && !(i == -1 && PyErr_Occurred())) {
      a->type = TGO__MATTR_INT;
      a->v.i = i;
      return 0;
    }
    PyErr_Clear();
  } else if (PyFloat_Check(value)) {
    a->type = TGO__MATTR_DOUBLE;
    a->v.d = PyFloat_AsDouble(value);
    return 0;
  }
  const char *s = tgo__py_utf8(value, &len);
  if (!s) {
    PyObject *str = PyObject_Str(value);
    if (!str)
      return -1;
    tmp[(*n_tmp)++] = str;
    if (!(s = tgo__py_utf8(str, &len)))
      return -1;
  }
  a->type = TGO__MATTR_STR;
  a->v.s = s;
  a->len = (uint32_t)len;
  return 0;
}

/* record(value, attributes=None): never raises for what it is given; a
 * value that is not a number is ignored. */
static PyObject *metric_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  Metric *mo = (Metric *)self;
  if (nargs < 1 || nargs > 2) {
    PyErr_SetString(PyExc_TypeError, "record(value, attributes=None)");
    return NULL;
  }
  double v = PyFloat_AsDouble(args[0]);
  if (v == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    Py_RETURN_NONE;
  }
  tgo__mattr attrs[TGO__METRIC_MAX_ATTRS];
  PyObject *tmp[2 * TGO__METRIC_MAX_ATTRS];
  int n_tmp = 0;
  size_t n = 0;
  PyObject *dict = nargs == 2 ? args[1] : Py_None;
  if (dict != Py_None && PyDict_Check(dict)) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (n < TGO__METRIC_MAX_ATTRS && PyDict_Next(dict, &pos, &key, &value)) {
      if (convert_attr(key, value, &attrs[n], tmp, &n_tmp) == 0)
        n++;
      else
        PyErr_Clear();
    }
  }
  const tgo_span *span = mo->kind == TGO__METRIC_HISTOGRAM ? tgo__py_current() : NULL;
  tgo__metric_record(mo->metric, attrs, n, v, span);
  for (int i = 0; i < n_tmp; i++)
    Py_DECREF(tmp[i]);
  Py_RETURN_NONE;
}

static PyObject *metric_get_name(PyObject *self, void *closure) {
  (void)self;
  (void)closure;
  return PyUnicode_FromString(kinds[((Metric *)self)->kind]);
}

static void metric_dealloc(PyObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
  f(self);
  Py_DECREF(tp);
}

static PyMethodDef metric_methods[] = {
    {"record", (PyCFunction)(void (*)(void))metric_record, METH_FASTCALL,
     "record(value, attributes=None): counter/updown add, gauge sets, histogram records"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef metric_getset[] = {
    {"kind", metric_get_name, NULL, "counter, updown, gauge or histogram", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot metric_slots[] = {
    {Py_tp_methods, metric_methods},
    {Py_tp_getset, metric_getset},
    {Py_tp_dealloc, metric_dealloc},
    {Py_tp_doc, (void *)"A metric instrument: _tigerops.metric(kind, name, unit, description, boundaries=None)"},
    {0, NULL},
};

static PyType_Spec metric_spec = {"_tigerops.Metric", sizeof(Metric), 0, Py_TPFLAGS_DEFAULT, metric_slots};

/* metric(kind, name, unit, description, boundaries=None) -> Metric. The same
 * name gives the same C instrument (its first kind, unit and boundaries). */
PyObject *tgo__py_metric(PyObject *m, PyObject *args) {
  (void)m;
  const char *kind, *name, *unit = "", *description = "";
  PyObject *bounds_obj = Py_None;
  if (!PyArg_ParseTuple(args, "ss|zzO:metric", &kind, &name, &unit, &description, &bounds_obj))
    return NULL;
  int k = -1;
  for (int i = 0; i < (int)(sizeof kinds / sizeof kinds[0]); i++)
    if (!strcmp(kind, kinds[i]))
      k = i;
  if (k < 0) {
    PyErr_Format(PyExc_ValueError, "metric kind must be counter, updown, gauge or histogram, not %s", kind);
    return NULL;
  }
  double bounds[TGO__METRIC_MAX_BOUNDS];
  size_t n_bounds = 0;
  if (bounds_obj != Py_None) {
    PyObject *seq = PySequence_Fast(bounds_obj, "boundaries must be a sequence of numbers");
    if (!seq)
      return NULL;
    Py_ssize_t n = PySequence_Size(seq);
    for (Py_ssize_t i = 0; i < n && n_bounds < TGO__METRIC_MAX_BOUNDS; i++) {
      PyObject *it = PySequence_GetItem(seq, i);
      double d = it ? PyFloat_AsDouble(it) : -1.0;
      Py_XDECREF(it);
      if (d == -1.0 && PyErr_Occurred()) {
        Py_DECREF(seq);
        return NULL;
      }
      bounds[n_bounds++] = d;
    }
    Py_DECREF(seq);
  }
  tgo__metric *metric = tgo__metric_get(k, name, unit ? unit : "", description ? description : "",
                                        bounds_obj == Py_None ? NULL : bounds, n_bounds);
  if (!metric && tgo__metrics_on())
    return PyErr_NoMemory(); /* else metrics are off: a Metric that records nothing */
  Metric *self = PyObject_New(Metric, metric_type);
  if (!self)
    return NULL;
  self->metric = metric;
  self->kind = k;
  return (PyObject *)self;
}

int tgo__py_metric_type_init(PyObject *module) {
  metric_type = (PyTypeObject *)PyType_FromSpec(&metric_spec);
  if (!metric_type)
    return -1;
  Py_INCREF(metric_type);
  if (PyModule_AddObject(module, "Metric", (PyObject *)metric_type) < 0) {
    Py_DECREF(metric_type);
    return -1;
  }
  return 0;
}

/* error.type of a raised exception for the request metrics: its type's
 * __qualname__, as the span's error.type (convert.c); "" when unknown. */
void tgo__py_error_type(PyObject *type, char *out, size_t cap) {
  out[0] = '\0';
  if (!type)
    return;
  PyObject *name = PyObject_GetAttr(type, tgo__py_str.__qualname__);
  Py_ssize_t len = 0;
  const char *s = name ? tgo__py_utf8(name, &len) : NULL;
  if (s && (size_t)len < cap) {
    memcpy(out, s, (size_t)len);
    out[len] = '\0';
  }
  Py_XDECREF(name);
  PyErr_Clear();
}

/* request_error(exception): the running request failed with it, whether
 * its span records or not: its type is the duration metric's error.type. */
PyObject *tgo__py_request_error(PyObject *m, PyObject *exc) {
  (void)m;
  tgo__py_request *r = tgo__py_request_running();
  if (r && exc != Py_None) {
    tgo__py_error_type((PyObject *)Py_TYPE(exc), r->error_type, sizeof r->error_type);
    tgo__py_keep_route_source(r); /* an exception Flask lets out never calls start_response */
  }
  Py_RETURN_NONE;
}
