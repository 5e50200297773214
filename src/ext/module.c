/* _tigerops: the CPython face of the tracer. */
#include "glue.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

tgo__py_names tgo__py_str;

static PyObject *py_init(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  return PyBool_FromLong(tgo_init() == 0);
}

static PyObject *py_enabled(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  return PyBool_FromLong(tgo_enabled());
}

/* Waiting for the exporter never holds the GIL: the app's other threads
 * keep running while we flush. */
static PyObject *py_flush(PyObject *m, PyObject *args) {
  (void)m;
  int timeout_ms = 5000, rc;
  if (!PyArg_ParseTuple(args, "|i:flush", &timeout_ms))
    return NULL;
  Py_BEGIN_ALLOW_THREADS
  rc = tgo_flush(timeout_ms);
  Py_END_ALLOW_THREADS
  return PyBool_FromLong(rc == 0);
}

static PyObject *py_shutdown(PyObject *m, PyObject *args) {
  (void)m;
  int timeout_ms = -1, rc;
  if (!PyArg_ParseTuple(args, "|i:shutdown", &timeout_ms))
    return NULL;
  if (timeout_ms < 0) {
    char buf[32];
    timeout_ms = tgo_config_get("TIGEROPS_SHUTDOWN_TIMEOUT_MS", buf, sizeof buf) == 0 ? atoi(buf) : 5000;
  }
  Py_BEGIN_ALLOW_THREADS
  rc = tgo_shutdown(timeout_ms);
  Py_END_ALLOW_THREADS
  return PyBool_FromLong(rc == 0);
}

static PyObject *py_config_set(PyObject *m, PyObject *args) {
  (void)m;
  const char *key, *value;
  if (!PyArg_ParseTuple(args, "ss:config_set", &key, &value))
    return NULL;
  return PyBool_FromLong(tgo_config_set(key, value) == 0);
}

static PyObject *py_config_get(PyObject *m, PyObject *args) {
  (void)m;
  const char *key;
  char buf[2048];
  if (!PyArg_ParseTuple(args, "s:config_get", &key))
    return NULL;
  if (tgo_config_get(key, buf, sizeof buf) < 0)
    Py_RETURN_NONE;
  return PyUnicode_FromString(buf);
}

static PyObject *py_config_reload(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  return PyBool_FromLong(tgo__config_reload());
}

/* ((name, per_app), ...) for every setting of the table: the glue routes
 * app.config keys with it instead of keeping a list of its own. */
static PyObject *py_config_settings(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  PyObject *list = PyList_New(0);
  const char *name;
  unsigned flags;
  for (size_t i = 0; list && (name = tgo__config_setting(i, &flags)) != NULL; i++) {
    PyObject *item = Py_BuildValue("(sO)", name, (flags & TGO__SETTING_PER_APP) ? Py_True : Py_False);
    if (!item || PyList_Append(list, item) < 0) {
      Py_XDECREF(item);
      Py_CLEAR(list);
      break;
    }
    Py_DECREF(item);
  }
  return list;
}

static PyObject *py_resource_set(PyObject *m, PyObject *args) {
  (void)m;
  const char *key, *value;
  if (!PyArg_ParseTuple(args, "ss:resource_set", &key, &value))
    return NULL;
  tgo_resource_set(key, value);
  Py_RETURN_NONE;
}

static PyObject *py_stats(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  tgo_stats s;
  tgo_get_stats(&s);
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "spans_started", (unsigned long long)s.spans_started,
                       "spans_ended", (unsigned long long)s.spans_ended, "spans_dropped",
                       (unsigned long long)s.spans_dropped, "spans_exported",
                       (unsigned long long)s.spans_exported, "spans_failed",
                       (unsigned long long)s.spans_failed, "export_requests",
                       (unsigned long long)s.export_requests, "traces_tail_kept",
                       (unsigned long long)s.traces_tail_kept, "spans_tail_dropped",
                       (unsigned long long)s.spans_tail_dropped);
}

static PyObject *py_current_span(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  tgo_span *s = tgo__py_current();
  return tgo__py_span_wrap(s ? s : tgo_span_invalid(), 0);
}

/* The server span of the Flask request running on this thread (borrowed
 * handle), or None: for hooks such as got_request_exception. */
static PyObject *py_request_span(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  tgo_span *s = tgo__py_request_span();
  if (!s)
    Py_RETURN_NONE;
  return tgo__py_span_wrap(s, 0);
}

/* True when a recording span is current: the cheap test instrumentations
 * make before doing any work. */
static PyObject *py_tracing_now(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  tgo_span *s = tgo__py_current();
  return PyBool_FromLong(s && tgo_span_is_recording(s));
}

/* Whether a trace is current, recorded or not (its context is still
 * passed on: a "not sampled" decision must reach the next hop too). */
static PyObject *py_in_trace(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  tgo_span_context ctx;
  return PyBool_FromLong(tgo__py_current_traced(&ctx) != NULL);
}

/* inject(headers, span=None): writes the context of span (the current span
 * by default) into a mapping with every configured propagator. */
static PyObject *py_inject(PyObject *m, PyObject *args) {
  (void)m;
  PyObject *headers, *span_obj = Py_None;
  if (!PyArg_ParseTuple(args, "O|O:inject", &headers, &span_obj))
    return NULL;
  tgo_span *s = span_obj == Py_None ? tgo__py_current() : tgo__py_span_of(span_obj);
  if (!s)
    Py_RETURN_FALSE;
  if (tgo__py_inject_span(s, headers) < 0)
    return NULL;
  Py_RETURN_TRUE;
}

/* Tooling that must never be traced (package managers, ...): matched on
 * argv[0]'s basename and on "python -m NAME". */
static PyObject *py_process_denied(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  char cmd[4096];
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    Py_RETURN_FALSE;
  ssize_t n = read(fd, cmd, sizeof cmd - 1);
  close(fd);
  if (n <= 0)
    Py_RETURN_FALSE;
  cmd[n] = '\0';
  char list[1100];
  char user[1024] = "";
  tgo_config_get("TIGEROPS_DENYLIST", user, sizeof user);
  snprintf(list, sizeof list, "pip,pip3,pipx,ensurepip,virtualenv,venv,poetry,pdm,tox,nox,twine%s%s",
           *user ? "," : "", user);
  /* Candidate names: basename of argv[0], basename of the script, and -m X. */
  const char *cands[3] = {NULL, NULL, NULL};
  const char *argv0 = cmd;
  const char *slash = strrchr(argv0, '/');
  cands[0] = slash ? slash + 1 : argv0;
  const char *p = cmd + strlen(cmd) + 1;
  int seen_m = 0;
  while (p < cmd + n) {
    if (seen_m) {
      cands[2] = p;
      break;
    }
    if (!strcmp(p, "-m"))
      seen_m = 1;
    else if (p[0] != '-' && !cands[1]) {
      const char *s = strrchr(p, '/');
      cands[1] = s ? s + 1 : p;
      if (!strstr(cands[0], "python"))
        break;
    }
    p += strlen(p) + 1;
  }
  for (int i = 0; i < 3; i++) {
    if (!cands[i])
      continue;
    for (const char *e = list; *e;) {
      const char *comma = strchr(e, ',');
      size_t len = comma ? (size_t)(comma - e) : strlen(e);
      while (len && *e == ' ') {
        e++;
        len--;
      }
      if (len && !strncmp(cands[i], e, len) &&
          (cands[i][len] == '\0' || !strcmp(cands[i] + len, ".py") ||
           (cands[i][len] >= '0' && cands[i][len] <= '9')))
        Py_RETURN_TRUE;
      if (!comma)
        break;
      e = comma + 1;
    }
  }
  Py_RETURN_FALSE;
}

/* (normalised SQL, operation, table) for a statement; the C normaliser,
 * exposed for the database instrumentations. */
static PyObject *py_sql_normalize(PyObject *m, PyObject *arg) {
  (void)m;
  Py_ssize_t len;
  const char *sql = tgo__py_utf8(arg, &len);
  if (!sql) {
    PyErr_SetString(PyExc_TypeError, "sql_normalize() takes a str");
    return NULL;
  }
  char buf[4096];
  size_t n = tgo__sql_normalize(sql, (size_t)len, buf, sizeof buf);
  const char *op, *table;
  size_t op_len, table_len;
  tgo__sql_summary(buf, n, &op, &op_len, &table, &table_len);
  return Py_BuildValue("(s#s#s#)", buf, (Py_ssize_t)n, op, (Py_ssize_t)op_len, table ? table : "",
                       (Py_ssize_t)table_len);
}

static PyObject *py_redact_query(PyObject *m, PyObject *arg) {
  (void)m;
  Py_ssize_t len;
  const char *q = tgo__py_utf8(arg, &len);
  if (!q) {
    PyErr_SetString(PyExc_TypeError, "redact_query() takes a str");
    return NULL;
  }
  char buf[4096];
  if ((size_t)len >= sizeof buf)
    return PyUnicode_FromString("REDACTED");
  size_t n = tgo__redact_query(q, (size_t)len, buf, sizeof buf);
  return PyUnicode_FromStringAndSize(buf, (Py_ssize_t)n);
}

/* "COMMAND key:pattern" for a Redis command: the key masked, arguments
 * after it (values) never included. */
static PyObject *py_key_statement(PyObject *m, PyObject *args) {
  (void)m;
  PyObject *command, *key = Py_None;
  if (!PyArg_ParseTuple(args, "O|O:key_statement", &command, &key))
    return NULL;
  char buf[600];
  size_t n = 0;
  PyObject *cmd_text = PyUnicode_Check(command) ? (Py_INCREF(command), command) : PyObject_Str(command);
  if (PyBytes_Check(command)) {
    Py_XDECREF(cmd_text);
    cmd_text = PyUnicode_DecodeLatin1(PyBytes_AsString(command), PyBytes_Size(command), "replace");
  }
  Py_ssize_t clen = 0;
  const char *c = tgo__py_utf8(cmd_text, &clen);
  for (Py_ssize_t i = 0; c && i < clen && n < 64; i++)
    buf[n++] = (char)(c[i] >= 'a' && c[i] <= 'z' ? c[i] - 'a' + 'A' : c[i]);
  Py_XDECREF(cmd_text);
  PyErr_Clear();
  const char *k = NULL;
  Py_ssize_t klen = 0;
  PyObject *key_text = NULL;
  if (PyUnicode_Check(key)) {
    k = tgo__py_utf8(key, &klen);
  } else if (PyBytes_Check(key)) {
    key_text = PyUnicode_DecodeLatin1(PyBytes_AsString(key), PyBytes_Size(key), "replace");
    k = tgo__py_utf8(key_text, &klen);
  }
  if (k && klen > 0 && klen < 4096) {
    buf[n++] = ' ';
    n += tgo__key_pattern(k, (size_t)klen, buf + n, sizeof buf - n);
  }
  Py_XDECREF(key_text);
  PyErr_Clear();
  return PyUnicode_FromStringAndSize(buf, (Py_ssize_t)n);
}

static PyObject *py_set_exception_formatter(PyObject *m, PyObject *formatter) {
  (void)m;
  if (formatter != Py_None && !PyCallable_Check(formatter)) {
    PyErr_SetString(PyExc_TypeError, "the exception formatter must be callable or None");
    return NULL;
  }
  tgo__py_set_exception_formatter(formatter == Py_None ? NULL : formatter);
  Py_RETURN_NONE;
}

/* The concurrency model: False for threads (thread-locals), True for
 * greenlets and coroutines (ContextVars). Takes effect for spans and
 * requests entered from now on. */
static PyObject *py_set_context_mode(PyObject *m, PyObject *on) {
  (void)m;
  int flag = PyObject_IsTrue(on);
  if (flag < 0 || tgo__py_set_context_mode(flag) < 0)
    return NULL;
  Py_RETURN_NONE;
}

static PyObject *py_context_mode(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  return PyBool_FromLong(tgo__py_context_mode());
}

static PyObject *py_log(PyObject *m, PyObject *args) {
  (void)m;
  int level;
  const char *msg;
  if (!PyArg_ParseTuple(args, "is:log", &level, &msg))
    return NULL;
  tgo_log(level, msg);
  Py_RETURN_NONE;
}

static PyObject *py_traceparent_valid(PyObject *m, PyObject *arg) {
  (void)m;
  Py_ssize_t len;
  const char *s = tgo__py_utf8(arg, &len);
  tgo_span_context ctx;
  return PyBool_FromLong(s && tgo_traceparent_parse(s, (size_t)len, &ctx) == 0);
}

static PyMethodDef module_functions[] = {
    {"flask_class_hooks", tgo__py_flask_class_hooks, METH_VARARGS,
     "flask_class_hooks(Flask, request_ctx_get=None) -> (wsgi_app, request_context, request_context_hooked): "
     "Flask's own functions, once the agent's hooks are on the class (put there at the first call; with Flask's "
     "request context getter, request_context is not hooked)."},
    {"init", py_init, METH_NOARGS, "Start the tracer (config file + environment). True if tracing."},
    {"enabled", py_enabled, METH_NOARGS, NULL},
    {"flush", py_flush, METH_VARARGS, "flush(timeout_ms=5000) -> bool"},
    {"shutdown", py_shutdown, METH_VARARGS, "shutdown(timeout_ms=configured) -> bool"},
    {"config_set", py_config_set, METH_VARARGS, NULL},
    {"config_get", py_config_get, METH_VARARGS, NULL},
    {"config_reload", py_config_reload, METH_NOARGS,
     "Re-read the environment at its precedence. True if still tracing."},
    {"config_settings", py_config_settings, METH_NOARGS, "[(name, per_app), ...] of every setting."},
    {"resource_set", py_resource_set, METH_VARARGS, NULL},
    {"stats", py_stats, METH_NOARGS, NULL},
    {"current_span", py_current_span, METH_NOARGS, NULL},
    {"inject", py_inject, METH_VARARGS, NULL},
    {"request_span", py_request_span, METH_NOARGS, "the running Flask request's span, or None"},
    {"tracing_now", py_tracing_now, METH_NOARGS, "True when a recording span is current on this thread"},
    {"in_trace", py_in_trace, METH_NOARGS,
     "True when a span is current on this thread, recording or not: its context is passed on"},
    {"process_denied", py_process_denied, METH_NOARGS, NULL},
    {"sql_normalize", py_sql_normalize, METH_O, "sql_normalize(sql) -> (normalised, operation, table)"},
    {"redact_query", py_redact_query, METH_O, "redact_query(query) -> query with secret values REDACTED"},
    {"key_statement", py_key_statement, METH_VARARGS, "key_statement(command, key=None) -> 'CMD key:?'"},
    {"set_exception_formatter", py_set_exception_formatter, METH_O,
     "set_exception_formatter(f): f(exc) -> exception event attributes, for every recorded exception"},
    {"set_context_mode", py_set_context_mode, METH_O,
     "set_context_mode(on): the current span lives in ContextVars (greenlets, coroutines) or thread-locals"},
    {"context_mode", py_context_mode, METH_NOARGS, NULL},
    {"log", py_log, METH_VARARGS, "log(level, message): 1 error, 2 warning, 3 info, 4 debug"},
    {"traceparent_valid", py_traceparent_valid, METH_O, NULL},
    {"flask_closing_iterator", tgo__py_flask_closing_iterator, METH_O,
     "flask_closing_iterator(werkzeug.wsgi.ClosingIterator): what a Flask response's body comes in"},
    {"request_error", tgo__py_request_error, METH_O,
     "request_error(exception): the running request's error.type for its metrics"},
    {"metric", tgo__py_metric, METH_VARARGS,
     "metric(kind, name, unit, description, boundaries=None) -> Metric; kind: counter, updown, gauge, histogram"},
    {"configure_logging", tgo__py_configure_logging, METH_O,
     "configure_logging(exception_parts): exc_info -> (type, message, stacktrace) for exported records; "
     "re-reads the service name"},
    {"log_stats", tgo__py_log_stats, METH_NOARGS, "{queued, dropped, exported, failed} log records"},
    {NULL, NULL, 0, NULL},
};

static int intern_names(void) {
#define NAME(field, text)                                      \
  if (!(tgo__py_str.field = PyUnicode_InternFromString(text))) \
    return -1;
  NAME(request, "request");
  NAME(url_rule, "url_rule");
  NAME(rule, "rule");
  NAME(endpoint, "endpoint");
  NAME(__qualname__, "__qualname__");
  NAME(__module__, "__module__");
  NAME(close, "close");
  NAME(traceparent, "traceparent");
  NAME(tracestate, "tracestate");
  NAME(rowcount, "rowcount");
  NAME(search, "search");
  NAME(empty, "");
  NAME(extensions, "extensions");
  NAME(app, "app");
  NAME(_callbacks, "_callbacks");
  NAME(response, "response");
  NAME(_on_close, "_on_close");
  NAME(tigerops, "tigerops");
  NAME(wsgi_app, "wsgi_app");
  NAME(request_context, "request_context");
  NAME(__call__, "__call__");
#undef NAME
  return 0;
}

static int module_exec(PyObject *m) {
  if (intern_names() < 0 || tgo__py_propagate_init() < 0 || tgo__py_env_init() < 0 || tgo__py_span_type_init(m) < 0 || tgo__py_middleware_type_init(m) < 0 ||
      tgo__py_db_type_init(m) < 0 || tgo__py_metric_type_init(m) < 0 || tgo__py_logging_init(m) < 0)
    return -1;
  if (PyModule_AddIntConstant(m, "KIND_INTERNAL", TGO_KIND_INTERNAL) < 0 ||
      PyModule_AddIntConstant(m, "KIND_SERVER", TGO_KIND_SERVER) < 0 ||
      PyModule_AddIntConstant(m, "KIND_CLIENT", TGO_KIND_CLIENT) < 0 ||
      PyModule_AddIntConstant(m, "KIND_PRODUCER", TGO_KIND_PRODUCER) < 0 ||
      PyModule_AddIntConstant(m, "KIND_CONSUMER", TGO_KIND_CONSUMER) < 0 ||
      PyModule_AddStringConstant(m, "__version__", tgo_version()) < 0)
    return -1;
  return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_tigerops", "TigerOps tracer (C core).", 0, module_functions,
    module_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tigerops(void) { return PyModuleDef_Init(&module_def); }
