/* Python values to span attributes. */
#include "glue.h"

#include <stdio.h>
#include <string.h>

int tgo__py_args_as_tuple(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **tuple,
                          PyObject **kwargs) {
  Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
  *tuple = PyTuple_New(nargs);
  *kwargs = nkw > 0 ? PyDict_New() : NULL;
  int ok = *tuple && (nkw <= 0 || *kwargs);
  for (Py_ssize_t i = 0; ok && i < nargs; i++) {
    Py_INCREF(args[i]);
    PyTuple_SetItem(*tuple, i, args[i]);
  }
  for (Py_ssize_t i = 0; ok && i < nkw; i++)
    ok = PyDict_SetItem(*kwargs, PyTuple_GetItem(kwnames, i), args[nargs + i]) == 0;
  if (ok)
    return 0;
  Py_CLEAR(*tuple);
  Py_CLEAR(*kwargs);
  return -1;
}

PyObject *tgo__py_call_via_tuple(ternaryfunc tp_call, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames) {
  PyObject *tuple, *kwargs;
  if (tgo__py_args_as_tuple(args, nargs, kwnames, &tuple, &kwargs) < 0)
    return NULL;
  PyObject *res = tp_call(self, tuple, kwargs);
  Py_DECREF(tuple);
  Py_XDECREF(kwargs);
  return res;
}

/* Homogeneous lists and tuples become OTLP arrays (of the first item's type);
 * anything mixed is stringified. */
static int set_array(tgo_attrs *a, const char *key, PyObject *seq) {
  Py_ssize_t n = PySequence_Size(seq);
  if (n < 0) {
    PyErr_Clear();
    return -1;
  }
  if (n > 1024)
    n = 1024;
  PyObject *first = n ? PySequence_GetItem(seq, 0) : NULL;
  if (n && !first) {
    PyErr_Clear();
    return -1;
  }
  int rc = -1;
  if (n == 0) {
    tgo_attr_str_array(a, key, NULL, NULL, 0);
    rc = 0;
  } else if (PyBool_Check(first)) {
    int vals[1024];
    rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
      PyObject *it = PySequence_GetItem(seq, i);
      if (!it || !PyBool_Check(it))
        rc = -1;
      else
        vals[i] = it == Py_True;
      Py_XDECREF(it);
    }
    if (rc == 0)
      tgo_attr_bool_array(a, key, vals, (size_t)n);
  } else if (PyLong_Check(first)) {
    int64_t vals[1024];
    rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
      PyObject *it = PySequence_GetItem(seq, i);
      if (!it || !PyLong_Check(it) || PyBool_Check(it))
        rc = -1;
      else if ((vals[i] = PyLong_AsLongLong(it)) == -1 && PyErr_Occurred())
        rc = -1;
      Py_XDECREF(it);
    }
    if (rc == 0)
      tgo_attr_int_array(a, key, vals, (size_t)n);
  } else if (PyFloat_Check(first)) {
    double vals[1024];
    rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
      PyObject *it = PySequence_GetItem(seq, i);
      if (!it || !PyFloat_Check(it))
        rc = -1;
      else
        vals[i] = PyFloat_AsDouble(it);
      Py_XDECREF(it);
    }
    if (rc == 0)
      tgo_attr_double_array(a, key, vals, (size_t)n);
  } else if (PyUnicode_Check(first)) {
    const char *vals[1024];
    size_t lens[1024];
    PyObject *items[1024];
    Py_ssize_t got = 0;
    rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
      PyObject *it = PySequence_GetItem(seq, i);
      Py_ssize_t len;
      const char *p = it ? tgo__py_utf8(it, &len) : NULL;
      if (!p) {
        Py_XDECREF(it);
        rc = -1;
        break;
      }
      items[got++] = it;
      vals[i] = p;
      lens[i] = (size_t)len;
    }
    if (rc == 0)
      tgo_attr_str_array(a, key, vals, lens, (size_t)n);
    for (Py_ssize_t i = 0; i < got; i++)
      Py_DECREF(items[i]);
  }
  Py_XDECREF(first);
  PyErr_Clear();
  return rc;
}

static void set_from_str_of(tgo_attrs *a, const char *key, PyObject *value) {
  PyObject *s = PyObject_Str(value);
  if (!s) {
    PyErr_Clear(); /* a __str__ that raises: the attribute is skipped */
    return;
  }
  Py_ssize_t len;
  const char *p = tgo__py_utf8(s, &len);
  if (p)
    tgo_attr_str(a, key, p, (size_t)len);
  Py_DECREF(s);
}

void tgo__py_set_attr(tgo_attrs *a, const char *key_text, PyObject *value) {
  if (!a || !key_text || !value || value == Py_None)
    return;
  const char *key = tgo_attrs_key(a, key_text, strlen(key_text));
  if (!key)
    return;
  Py_ssize_t len;
  if (PyUnicode_Check(value)) {
    const char *p = tgo__py_utf8(value, &len);
    if (p)
      tgo_attr_str(a, key, p, (size_t)len);
  } else if (PyBool_Check(value)) {
    tgo_attr_bool(a, key, value == Py_True);
  } else if (PyLong_Check(value)) {
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      set_from_str_of(a, key, value); /* beyond int64 */
    } else {
      tgo_attr_int(a, key, v);
    }
  } else if (PyFloat_Check(value)) {
    tgo_attr_double(a, key, PyFloat_AsDouble(value));
  } else if (PyBytes_Check(value)) {
    char *p;
    if (PyBytes_AsStringAndSize(value, &p, &len) == 0)
      tgo_attr_str(a, key, p, (size_t)len); /* the core repairs invalid UTF-8 */
    else
      PyErr_Clear();
  } else if (PyList_Check(value) || PyTuple_Check(value)) {
    if (set_array(a, key, value) < 0)
      set_from_str_of(a, key, value);
  } else {
    set_from_str_of(a, key, value);
  }
}

void tgo__py_set_attrs(tgo_attrs *a, PyObject *mapping) {
  if (!a || !mapping || mapping == Py_None)
    return;
  PyObject *items = PyMapping_Items(mapping);
  if (!items) {
    PyErr_Clear();
    return;
  }
  Py_ssize_t n = PyList_Size(items);
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *kv = PyList_GetItem(items, i);
    if (!kv || !PyTuple_Check(kv) || PyTuple_Size(kv) != 2)
      continue;
    PyObject *k = PyTuple_GetItem(kv, 0);
    Py_ssize_t klen;
    const char *key = tgo__py_utf8(k, &klen);
    if (key)
      tgo__py_set_attr(a, key, PyTuple_GetItem(kv, 1));
  }
  Py_DECREF(items);
  PyErr_Clear();
}

/* The one exception recorder, for every path (span blocks, requests, hooks,
 * statements, Celery): error status with error.type, and/or an "exception"
 * event whose attributes (type, message, traceback) the tigerops package's
 * registered formatter makes; without one, or when it fails, type and
 * message only. */
static PyObject *exception_formatter;

void tgo__py_set_exception_formatter(PyObject *formatter) {
  Py_XINCREF(formatter);
  Py_XSETREF(exception_formatter, formatter);
}

static PyObject *type_name_of(PyObject *exc) {
  PyObject *type = (PyObject *)Py_TYPE(exc);
  PyObject *name = PyObject_GetAttr(type, tgo__py_str.__qualname__);
  if (!name)
    PyErr_Clear();
  return name;
}

/* str(exc), or "<unprintable T>" when its __str__ fails. */
static PyObject *message_of(PyObject *exc, PyObject *type_name) {
  PyObject *msg = PyObject_Str(exc);
  if (!msg) {
    PyErr_Clear();
    msg = PyUnicode_FromFormat("<unprintable %S>", type_name ? type_name : tgo__py_str.empty);
    if (!msg)
      PyErr_Clear();
  }
  return msg;
}

static void record(tgo_span *span, PyObject *exc, int what, PyObject *extra) {
  PyObject *name = type_name_of(exc);
  PyObject *msg = message_of(exc, name);
  Py_ssize_t nlen = 0, mlen = 0;
  const char *n = tgo__py_utf8(name, &nlen), *m = tgo__py_utf8(msg, &mlen);
  if (what & TGO__PY_EXC_STATUS) {
    if (n)
      tgo_attr_str(tgo_span_attrs(span), "error.type", n, (size_t)nlen);
    tgo_span_set_status(span, TGO_STATUS_ERROR, m ? m : n, m ? (size_t)mlen : (size_t)nlen);
  }
  if (what & TGO__PY_EXC_EVENT) {
    tgo_attrs *ev = tgo_span_add_event(span, "exception", 9);
    PyObject *attrs = exception_formatter ? PyObject_CallFunctionObjArgs(exception_formatter, exc, NULL) : NULL;
    if (attrs && PyDict_Check(attrs)) {
      tgo__py_set_attrs(ev, attrs);
    } else {
      PyErr_Clear();
      if (n)
        tgo_attr_str(ev, "exception.type", n, (size_t)nlen);
      if (m)
        tgo_attr_str(ev, "exception.message", m, (size_t)mlen);
    }
    Py_XDECREF(attrs);
    tgo__py_set_attrs(ev, extra);
  }
  Py_XDECREF(name);
  Py_XDECREF(msg);
}

void tgo__py_record_exception(tgo_span *span, PyObject *exc, int what, PyObject *extra) {
  if (!span || !tgo_span_is_recording(span))
    return;
  if (exc) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb); /* the caller's pending exception, if any, survives */
    if (PyExceptionInstance_Check(exc))
      record(span, exc, what, extra);
    PyErr_Restore(type, value, tb);
    return;
  }
  if (!PyErr_Occurred())
    return;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (value && PyExceptionInstance_Check(value)) {
    if (tb)
      PyException_SetTraceback(value, tb);
    record(span, value, what, extra);
  }
  PyErr_Clear();
  PyErr_Restore(type, value, tb);
}
