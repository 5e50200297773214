/* FlaskMiddleware: starts the request span, makes the per-request object
 * and runs the app under it. Flask's own request_context() is hooked to
 * keep the RequestContext, which gives the matched rule at the end.
 *
 * Both hooks live on the Flask class (flask_class_hooks) when they can,
 * not in the app's __dict__: two more instance attributes push Flask's 29
 * past CPython's 30 shared keys, and every self.method() in Flask's request
 * path then fails to specialise (+880 instructions per request on 3.11).
 * An app whose wsgi_app or request_context is already its own (a subclass
 * override, middleware set before init_app) gets the instance attributes,
 * as before. */
#include "flask.h"

#include <dlfcn.h>
#include <string.h>

PyTypeObject *tgo__py_middleware_type;

/* The app of a middleware holding its function unbound (a new reference),
 * or NULL with the error set. */
static PyObject *wrapped_app(tgo__py_middleware *mw) {
  PyObject *app = mw->app_ref ? PyWeakref_GetObject(mw->app_ref) : NULL;
  if (!app || app == Py_None) {
    PyErr_SetString(PyExc_RuntimeError, "the Flask app of this middleware no longer exists");
    return NULL;
  }
  Py_INCREF(app);
  return app;
}

static PyObject *not_initialised(void) {
  PyErr_SetString(PyExc_TypeError, "FlaskMiddleware is not initialised");
  return NULL;
}

PyObject *tgo__py_middleware_call_wrapped(tgo__py_middleware *mw, PyObject *known_app, PyObject *callable,
                                          int unbound, PyObject *a, PyObject *b) {
  if (!callable)
    return not_initialised();
  PyObject *stack[4] = {NULL, NULL, a, b}; /* b NULL: a call with a alone */
  size_t n = b ? 2 : 1;
  if (!unbound)
    return tgo__py_call(callable, stack + 2, n);
  if (known_app) { /* the caller holds it: no weak reference read (~16 instructions a request) */
    stack[1] = known_app;
    return tgo__py_call(callable, stack + 1, n + 1);
  }
  PyObject *app = wrapped_app(mw);
  if (!app)
    return NULL;
  stack[1] = app;
  PyObject *res = tgo__py_call(callable, stack + 1, n + 1);
  Py_DECREF(app);
  return res;
}

static PyObject *call_original(PyObject *original, PyObject *self, PyObject *args, PyObject *kwargs);

/* callable(*args, **kwargs) as the caller made it, the app first when the
 * middleware holds the function unbound. */
static PyObject *call_wrapped_as_made(tgo__py_middleware *mw, PyObject *callable, int unbound, PyObject *args,
                                      PyObject *kwargs) {
  if (!callable)
    return not_initialised();
  if (!unbound)
    return PyObject_Call(callable, args, kwargs);
  PyObject *app = wrapped_app(mw);
  PyObject *res = app ? call_original(callable, app, args, kwargs) : NULL;
  Py_XDECREF(app);
  return res;
}

static void apply_first_request_config(tgo__py_middleware *mw) {
  PyObject *cb = mw->on_first_request;
  mw->on_first_request = NULL;
  PyObject *res = PyObject_CallObject(cb, NULL);
  if (!res) {
    PyErr_Clear();
    tgo_log(TGO_LOG_WARN, "could not read app.config; using file and environment settings");
  }
  Py_XDECREF(res);
  Py_DECREF(cb);
}

/* app: the app when the caller has it (the class hook's self), or NULL. */
static PyObject *call_app(tgo__py_middleware *mw, PyObject *app, PyObject *environ, PyObject *start_response) {
  return tgo__py_middleware_call_wrapped(mw, app, mw->wsgi_app, mw->wsgi_app_unbound, environ, start_response);
}

static PyObject *run_request(tgo__py_middleware *mw, PyObject *app, PyObject *environ, PyObject *start_response);

static PyObject *middleware_call(PyObject *op, PyObject *args, PyObject *kwargs) {
  if (kwargs || !PyTuple_Check(args) || PyTuple_Size(args) != 2) {
    PyErr_SetString(PyExc_TypeError, "a WSGI app takes (environ, start_response)");
    return NULL;
  }
  return run_request((tgo__py_middleware *)op, NULL, PyTuple_GetItem(args, 0), PyTuple_GetItem(args, 1));
}

/* werkzeug.wsgi.ClosingIterator, what Flask's responses return their body
 * in (flask_closing_iterator), or NULL. */
static PyObject *closing_iterator_type;

/* PyMethod_Self: a bound method's self (borrowed), NULL with SystemError
 * for anything else. Public in every CPython 3.x but outside the stable
 * ABI, so looked up rather than linked: without it, bodies go through the
 * agent's iterable as before. */
static PyObject *(*method_self)(PyObject *);

PyObject *tgo__py_flask_closing_iterator(PyObject *module, PyObject *cls) {
  (void)module;
  if (!PyType_Check(cls)) {
    PyErr_SetString(PyExc_TypeError, "flask_closing_iterator takes werkzeug's ClosingIterator class");
    return NULL;
  }
  if (!method_self)
    *(void **)&method_self = dlsym(RTLD_DEFAULT, "PyMethod_Self");
  Py_INCREF(cls);
  Py_XSETREF(closing_iterator_type, cls);
  Py_RETURN_NONE;
}

/* Whether the WSGI result is a werkzeug response's body already made, a
 * list or tuple with no close callbacks: nothing of the app runs once the
 * app has returned it, so the span can end now, and the server gets the
 * body itself, without our iterable in between (two calls from C into
 * Python frames, about 1,000 instructions a request). A generator, a file
 * or call_on_close work still ends the span when the server closes it. */
static int body_is_materialised(PyObject *result) {
  if (!closing_iterator_type || !method_self || (PyObject *)Py_TYPE(result) != closing_iterator_type)
    return 0;
  PyObject *callbacks = PyObject_GetAttr(result, tgo__py_str._callbacks);
  Py_ssize_t n = callbacks && PyList_Check(callbacks) ? PyList_Size(callbacks) : 0;
  /* Response.close, last after the body iterator's own close */
  PyObject *response = n > 0 ? method_self(PyList_GetItem(callbacks, n - 1)) : NULL;
  Py_XINCREF(response);
  Py_XDECREF(callbacks);
  PyObject *body = response ? PyObject_GetAttr(response, tgo__py_str.response) : NULL;
  PyObject *on_close = body && (PyList_CheckExact(body) || PyTuple_CheckExact(body))
                           ? PyObject_GetAttr(response, tgo__py_str._on_close)
                           : NULL;
  int done = on_close && PyList_CheckExact(on_close) && PyList_Size(on_close) == 0;
  Py_XDECREF(on_close);
  Py_XDECREF(body);
  Py_XDECREF(response);
  if (!done && PyErr_Occurred()) /* PyErr_Clear itself costs ~20 instructions a request */
    PyErr_Clear();
  return done;
}

/* Whether the server gets the app's result itself, the request's span
 * ending now: a body already made, or the server's own file wrapper
 * (sendfile(2) needs the server to see it: handed back rather than lose
 * the zero-copy path). */
static inline __attribute__((always_inline)) int body_goes_to_server(PyObject *environ, PyObject *result) {
  if (body_is_materialised(result))
    return 1;
  PyObject *fw = tgo__py_env(environ, TGO__ENV_FILE_WRAPPER);
  return fw && PyType_Check(fw) && PyObject_TypeCheck(result, (PyTypeObject *)fw);
}

/* A request whose span does not record, with the HTTP server metrics off:
 * nothing of it is exported, so the app runs with only its trace context
 * current (the unsampled decision goes on to its outgoing calls and logs)
 * and no per-request object, start_response of ours, method or route read.
 * A body still to be made keeps the context while the server iterates it,
 * in a request object made then. */
static PyObject *run_unrecorded(tgo__py_middleware *mw, PyObject *app, PyObject *environ, PyObject *start_response,
                                tgo_span *span) {
  tgo__py_saved saved = tgo__py_enter(span, NULL);
  PyObject *result = call_app(mw, app, environ, start_response);
  tgo__py_leave(&saved);
  if (!result || body_goes_to_server(environ, result)) {
    tgo_span_end(span);
    return result;
  }
  tgo__py_request *r = tgo__py_request_new(mw, span, start_response, "", 0);
  if (!r) { /* the body goes without its context rather than not at all */
    PyErr_Clear();
    tgo_span_end(span);
    return result;
  }
  r->inner = result;
  return (PyObject *)r;
}

static PyObject *run_request(tgo__py_middleware *mw, PyObject *app, PyObject *environ, PyObject *start_response) {
  if (!tgo_enabled() || !PyDict_Check(environ) || !mw->wsgi_app)
    return call_app(mw, app, environ, start_response);
  if (__builtin_expect(mw->on_first_request != NULL, 0))
    apply_first_request_config(mw);
  if (mw->excluded && tgo__py_url_excluded(mw->excluded, environ))
    return call_app(mw, app, environ, start_response);

  tgo_span_context remote;
  const char *baggage;
  size_t baggage_len;
  int has_remote = tgo__py_remote_context(environ, &remote, &baggage, &baggage_len);
  tgo_span *span =
      tgo_span_start(NULL, 0, TGO_KIND_SERVER, has_remote ? NULL : tgo__py_current(), has_remote ? &remote : NULL);
  if (__builtin_expect(baggage != NULL, 0))
    tgo__span_set_baggage(span, baggage, baggage_len);
  int recording = tgo_span_is_recording(span);
  if (!recording && !tgo__metrics_on())
    return run_unrecorded(mw, app, environ, start_response, span);

  Py_ssize_t mlen = 0;
  const char *method = tgo__py_utf8(tgo__py_env(environ, TGO__ENV_REQUEST_METHOD), &mlen);
  if (!method || mlen <= 0 || mlen >= 24) {
    method = "_OTHER";
    mlen = 6;
  }
  const char *known_method = tgo__http_method_literal(method, (size_t)mlen);
  if (known_method)
    tgo__span_set_static_name(span, known_method, (size_t)mlen);
  else
    tgo_span_set_name(span, method, (size_t)mlen);
  /* A span only tail keep records is exported in about one trace of a
   * hundred: its environ attributes are read at its end, and only then. */
  int deferred = recording && tgo__span_is_deferred(span);
  int https = -1; /* not read yet */
  if (recording) {
    if (!deferred) {
      tgo_attrs *a = tgo_span_attrs(span);
      tgo__attrs_fresh(a, 1);
      https = tgo__py_set_request_attrs(a, environ, method, (size_t)mlen);
      tgo__attrs_fresh(a, 0);
    }
    if (mw->capture_request)
      tgo__py_capture_headers(mw->capture_request, span, environ);
  }
  tgo__py_request *r = tgo__py_request_new(mw, span, start_response, method, (size_t)mlen);
  if (!r) {
    tgo_span_end(span);
    return NULL;
  }
  if (deferred) {
    Py_INCREF(environ);
    r->environ = environ;
  }
  if (https < 0) {
    Py_ssize_t slen = 0;
    const char *scheme = tgo__py_utf8(tgo__py_env(environ, TGO__ENV_URL_SCHEME), &slen);
    https = slen == 5 && scheme && !memcmp(scheme, "https", 5);
  }
  r->https = https;
  r->active = tgo__http_server_begin(method, (size_t)mlen, r->https);

  tgo__py_saved saved = tgo__py_enter(span, r);
  r->call_environ = environ;
  PyObject *result = call_app(mw, app, environ, (PyObject *)r);
  r->call_environ = NULL;
  tgo__py_leave(&saved);
  /* Flask's context pop clears environ's Request, so this finds one only
   * where the context stayed pushed (a request context the app pushed
   * around the call); an exception the app let out waits meanwhile. */
  if (mw->via_class && !r->url_rule && !r->ctx) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    tgo__py_keep_flask_request(r, environ);
    PyErr_Restore(type, value, tb);
  }

  if (!result) {
    tgo__py_record_exception(span, NULL, TGO__PY_EXC_STATUS, NULL);
    if (!r->status_code)
      r->status_code = 500;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    tgo__py_error_type(type, r->error_type, sizeof r->error_type);
    tgo__py_request_finish(r);
    tgo__py_request_release(r);
    PyErr_Restore(type, value, tb);
    return NULL;
  }
  if (body_goes_to_server(environ, result)) {
    tgo__py_request_finish(r);
    tgo__py_request_release(r);
    return result;
  }
  r->inner = result;
  return (PyObject *)r;
}

/* The running request r, when it is mw's, keeps ctx, its first
 * RequestContext: the one whose request the route is read from at the end. */
static void keep_request_context(tgo__py_request *r, tgo__py_middleware *mw, PyObject *ctx) {
  if (r && r->mw == mw && !r->ctx) {
    Py_INCREF(ctx);
    r->ctx = ctx;
  }
}

/* flask.globals._cv_request.get (Flask >= 2.2), looked up once: where
 * Flask has it, the running request reads the matched rule from its
 * context when the app calls start_response (or reports an unhandled
 * exception), both inside the pushed context, and request_context is not
 * hooked at all: the hook was a C call between two Python frames, about
 * 400 instructions a request. */
static PyObject *flask_request_ctx_get;

void tgo__py_keep_flask_request_context(tgo__py_request *r) {
  if (r->url_rule || r->ctx || !flask_request_ctx_get || !r->mw)
    return;
  PyObject *ctx = PyObject_CallFunctionObjArgs(flask_request_ctx_get, Py_None, NULL);
  if (!ctx || ctx == Py_None) {
    PyErr_Clear();
    Py_XDECREF(ctx);
    return;
  }
  /* Reached through the class hook, the function below us is Flask's own
   * wsgi_app of our app, whose context this is. Otherwise (a middleware of
   * the app's own in between, a DispatcherMiddleware) another app's
   * context is not ours. */
  PyObject *app = r->mw->via_class ? NULL : PyObject_GetAttr(ctx, tgo__py_str.app);
  if (r->mw->via_class || (app && app == PyWeakref_GetObject(r->mw->app_ref))) {
    PyObject *req = PyObject_GetAttr(ctx, tgo__py_str.request);
    if (req)
      tgo__py_keep_rule_of(r, req);
    Py_XDECREF(req);
  }
  Py_XDECREF(app);
  Py_DECREF(ctx);
  PyErr_Clear();
}

/* app.request_context(environ), hooked: Flask calls it at the start of
 * every request; the running request keeps the context. */
static PyObject *middleware_request_context(PyObject *op, PyObject *args, PyObject *kwargs) {
  tgo__py_middleware *mw = (tgo__py_middleware *)op;
  PyObject *ctx = kwargs || PyTuple_Size(args) != 1 /* Flask's own takes environ by keyword too */
                      ? call_wrapped_as_made(mw, mw->request_context, mw->request_context_unbound, args, kwargs)
                      : tgo__py_middleware_call_wrapped(mw, NULL, mw->request_context, mw->request_context_unbound,
                                                        PyTuple_GetItem(args, 0), NULL);
  if (ctx)
    keep_request_context(tgo__py_request_running(), mw, ctx);
  return ctx;
}

/* The hooks on the Flask class. Each calls Flask's own function when the
 * app has no middleware reached this way; nothing else differs for it. */
static PyTypeObject *hooked_class;
static PyObject *original_wsgi_app, *original_request_context, *original_call;
/* The last app served and its middleware: one app per process is the
 * rule, so the app's extensions are read about once. last_app_ref is a
 * weak reference of our own whose callback lets the middleware go with its
 * app (a dropped app must not keep its views alive here). */
static PyObject *last_app_ref;
static tgo__py_middleware *last_mw;
/* The app itself, compared by address only: valid while last_mw is set,
 * since the callback clears last_mw before the app's memory can be reused
 * (a weak reference's read costs ~16 instructions a request). */
static PyObject *last_app;

static PyObject *last_app_dropped(PyObject *module, PyObject *ref) {
  (void)module;
  if (ref == last_app_ref) {
    Py_CLEAR(last_mw); /* the weak reference itself stays until the next app replaces it */
    last_app = NULL;
  }
  Py_RETURN_NONE;
}

static PyMethodDef last_app_dropped_def = {"_last_app_dropped", last_app_dropped, METH_O, NULL};
static PyObject *last_app_dropped_callback;

/* Flask's own function with the app first: for calls the hooks do not
 * trace (keyword arguments, another app). */
static PyObject *call_original(PyObject *original, PyObject *self, PyObject *args, PyObject *kwargs) {
  Py_ssize_t n = PyTuple_Size(args);
  PyObject *all = n >= 0 ? PyTuple_New(n + 1) : NULL;
  if (!all)
    return NULL;
  Py_INCREF(self);
  PyTuple_SetItem(all, 0, self);
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *a = PyTuple_GetItem(args, i);
    Py_INCREF(a);
    PyTuple_SetItem(all, i + 1, a);
  }
  PyObject *res = PyObject_Call(original, all, kwargs);
  Py_DECREF(all);
  return res;
}

static tgo__py_middleware *class_hooked_middleware(PyObject *app) {
  if (last_mw && last_app == app)
    return last_mw;
  PyObject *extensions = PyObject_GetAttr(app, tgo__py_str.extensions);
  PyObject *mw = extensions && PyDict_Check(extensions) ? PyDict_GetItemWithError(extensions, tgo__py_str.tigerops)
                                                        : NULL;
  Py_XINCREF(mw);
  Py_XDECREF(extensions);
  PyErr_Clear();
  if (!mw || !PyObject_TypeCheck(mw, tgo__py_middleware_type) || !((tgo__py_middleware *)mw)->via_class) {
    Py_XDECREF(mw);
    return NULL;
  }
  if (!last_app_dropped_callback)
    last_app_dropped_callback = PyCFunction_New(&last_app_dropped_def, NULL);
  PyObject *ref = last_app_dropped_callback ? PyWeakref_NewRef(app, last_app_dropped_callback) : NULL;
  if (!ref) { /* traced all the same, without the cache */
    PyErr_Clear();
    Py_DECREF(mw); /* the app's extensions hold it for this call */
    return (tgo__py_middleware *)mw;
  }
  Py_XSETREF(last_app_ref, ref);
  Py_XSETREF(last_mw, (tgo__py_middleware *)mw);
  last_app = app;
  return last_mw;
}

/* Flask's own function called as the hook was, the app first. */
static PyObject *call_original_fast(PyObject *original, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames) {
  if (!kwnames && nargs == 2) {
    PyObject *stack[4] = {NULL, self, args[0], args[1]};
    return tgo__py_call(original, stack + 1, 3);
  }
  PyObject *tuple, *kwargs;
  if (tgo__py_args_as_tuple(args, nargs, kwnames, &tuple, &kwargs) < 0)
    return NULL;
  PyObject *res = call_original(original, self, tuple, kwargs);
  Py_DECREF(tuple);
  Py_XDECREF(kwargs);
  return res;
}

/* METH_FASTCALL: the caller's argument array, where METH_VARARGS would
 * make a tuple of it on every request. */
static PyObject *hooked_wsgi_app(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  tgo__py_middleware *mw = !kwnames && nargs == 2 ? class_hooked_middleware(self) : NULL;
  if (!mw)
    return call_original_fast(original_wsgi_app, self, args, nargs, kwnames);
  Py_INCREF(mw); /* a request that replaces last_mw must not free its own middleware */
  PyObject *res = run_request(mw, self, args[0], args[1]);
  Py_DECREF(mw);
  return res;
}

/* Flask.__call__ is `return self.wsgi_app(environ, start_response)`. As a
 * Python function it was a frame the server enters from C, whose call of
 * the hooked wsgi_app then entered Flask's own from C again: two entries
 * of the interpreter where the bare app has one, ~260 instructions a
 * request. Here the server calls C, and the one entry is Flask's
 * wsgi_app. The attribute is looked up as Python would (an app's own
 * wsgi_app, a ProxyFix set on it after init_app, is still called). */
static PyObject *hooked_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  if (kwnames || nargs != 2)
    return call_original_fast(original_call, self, args, nargs, kwnames);
  PyObject *stack[3] = {self, args[0], args[1]};
  return PyObject_VectorcallMethod(tgo__py_str.wsgi_app, stack, 3, NULL);
}

/* Flask.__call__ as the class's tp_call slot itself. With __call__ a
 * method, the server's call went through slot_tp_call: a lookup of
 * __call__, a call with the app prepended, and the method's own call
 * protocol, before hooked_call ran. A slot wrapper descriptor (what a C
 * type's __call__ is) whose wrapped function is this one makes CPython put
 * the function in the slot, for Flask and for every subclass that does not
 * define __call__ (the way C types' slots are inherited). */
static PyObject *flask_slot_call(PyObject *self, PyObject *args, PyObject *kwargs) {
  if ((kwargs && PyDict_Size(kwargs)) || PyTuple_Size(args) != 2)
    return call_original(original_call, self, args, kwargs);
  PyObject *stack[3] = {self, PyTuple_GetItem(args, 0), PyTuple_GetItem(args, 1)};
  return PyObject_VectorcallMethod(tgo__py_str.wsgi_app, stack, 3, NULL);
}

/* A wrapper descriptor's fields (descrobject.h's PyWrapperDescrObject, the
 * same from 3.3 to 3.13), outside the limited API. */
typedef struct {
  PyObject_HEAD
  PyTypeObject *d_type;
  PyObject *d_name, *d_qualname;
  void *d_base; /* typeobject.c's slot definition: which slot, how to call */
  void *d_wrapped;
} wrapper_descriptor_fields;

/* A slot wrapper "__call__" of cls wrapping flask_slot_call, made like the
 * one of a builtin function's type (the same slot definition), or NULL
 * without an error: then __call__ stays a method (hooked_call). Checked
 * field by field, so a CPython laid out otherwise gets the method. */
static PyObject *slot_call_descriptor(PyTypeObject *cls) {
  PyObject *(*new_wrapper)(PyTypeObject *, void *, void *);
  *(void **)&new_wrapper = dlsym(RTLD_DEFAULT, "PyDescr_NewWrapper");
  PyObject *dict = new_wrapper ? PyObject_GetAttrString((PyObject *)&PyCFunction_Type, "__dict__") : NULL;
  PyObject *model = dict ? PyObject_GetItem(dict, tgo__py_str.__call__) : NULL;
  Py_XDECREF(dict);
  PyObject *made = NULL;
  if (model) {
    wrapper_descriptor_fields *f = (wrapper_descriptor_fields *)model;
    PyObject *type_name = PyObject_GetAttrString((PyObject *)Py_TYPE(model), "__name__");
    int is_wrapper = type_name && PyUnicode_Check(type_name) &&
                     PyUnicode_CompareWithASCIIString(type_name, "wrapper_descriptor") == 0;
    Py_XDECREF(type_name);
    if (is_wrapper && f->d_type == &PyCFunction_Type && f->d_name == tgo__py_str.__call__ && f->d_base)
      made = new_wrapper(cls, f->d_base, (void *)flask_slot_call);
    if (made && (Py_TYPE(made) != Py_TYPE(model) || ((wrapper_descriptor_fields *)made)->d_wrapped != (void *)flask_slot_call))
      Py_CLEAR(made);
    Py_DECREF(model);
  }
  PyErr_Clear();
  return made;
}

/* Flask's request_context(environ) accepts environ by keyword too: such a
 * call is passed on as made, and traced alike. */
static PyObject *hooked_request_context(PyObject *self, PyObject *args, PyObject *kwargs) {
  PyObject *ctx = kwargs || PyTuple_Size(args) != 1
                      ? call_original(original_request_context, self, args, kwargs)
                      : PyObject_CallFunctionObjArgs(original_request_context, self, PyTuple_GetItem(args, 0), NULL);
  tgo__py_request *r = ctx ? tgo__py_request_running() : NULL;
  if (r && r->mw && PyWeakref_GetObject(r->mw->app_ref) == self)
    keep_request_context(r, r->mw, ctx);
  return ctx;
}

static PyMethodDef hook_defs[] = {
    {"wsgi_app", (PyCFunction)(void (*)(void))hooked_wsgi_app, METH_FASTCALL | METH_KEYWORDS,
     "Flask.wsgi_app, traced by TigerOps: apps with the agent's middleware start their request span here."},
    {"request_context", (PyCFunction)(void (*)(void))hooked_request_context, METH_VARARGS | METH_KEYWORDS,
     "Flask.request_context, seen by TigerOps: the traced request keeps its context for its route."},
    {"__call__", (PyCFunction)(void (*)(void))hooked_call, METH_FASTCALL | METH_KEYWORDS,
     "Flask.__call__, as Flask's: self.wsgi_app(environ, start_response), called from C."},
};

/* flask_class_hooks(Flask, request_ctx_get=None) -> (original wsgi_app,
 * original request_context, request_context hooked): puts the hooks on the
 * class, once; later calls (any class) return the same. With Flask's
 * request context getter, request_context is left alone. */
PyObject *tgo__py_flask_class_hooks(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *cls, *ctx_get = Py_None;
  if (!PyArg_ParseTuple(args, "O|O:flask_class_hooks", &cls, &ctx_get))
    return NULL;
  if (!hooked_class) {
    if (!PyType_Check(cls)) {
      PyErr_SetString(PyExc_TypeError, "flask_class_hooks takes the Flask class");
      return NULL;
    }
    /* The class's own functions, not inherited ones: the hooks replace them
     * where they are defined. */
    PyObject *dict = PyObject_GetAttrString(cls, "__dict__");
    PyObject *wsgi = dict ? PyObject_GetItem(dict, tgo__py_str.wsgi_app) : NULL;
    PyObject *rc = wsgi ? PyObject_GetItem(dict, tgo__py_str.request_context) : NULL;
    /* Optional: a class without its own __call__ keeps whatever it inherits. */
    PyObject *call = rc ? PyObject_GetItem(dict, tgo__py_str.__call__) : NULL;
    if (!call)
      PyErr_Clear();
    else if (!PyCallable_Check(call))
      Py_CLEAR(call);
    Py_XDECREF(dict);
    if (!wsgi || !rc || !PyCallable_Check(wsgi) || !PyCallable_Check(rc)) {
      Py_XDECREF(wsgi);
      Py_XDECREF(rc);
      Py_XDECREF(call);
      PyErr_Clear();
      PyErr_SetString(PyExc_TypeError, "the class defines no wsgi_app and request_context functions of its own");
      return NULL;
    }
    if (ctx_get != Py_None && !PyCallable_Check(ctx_get)) {
      Py_DECREF(wsgi);
      Py_DECREF(rc);
      Py_XDECREF(call);
      PyErr_SetString(PyExc_TypeError, "request_ctx_get must be callable");
      return NULL;
    }
    int hook_context = ctx_get == Py_None;
    PyObject *slot_call = call ? slot_call_descriptor((PyTypeObject *)cls) : NULL;
    PyObject *descr[3] = {PyDescr_NewMethod((PyTypeObject *)cls, &hook_defs[0]),
                          hook_context ? PyDescr_NewMethod((PyTypeObject *)cls, &hook_defs[1]) : Py_None,
                          slot_call ? slot_call
                          : call    ? PyDescr_NewMethod((PyTypeObject *)cls, &hook_defs[2])
                                    : Py_None};
    if (!hook_context)
      Py_INCREF(Py_None);
    if (!call)
      Py_INCREF(Py_None);
    if (!descr[0] || !descr[1] || !descr[2]) {
      for (int i = 0; i < 3; i++)
        Py_XDECREF(descr[i]);
      Py_DECREF(wsgi);
      Py_DECREF(rc);
      Py_XDECREF(call);
      return NULL;
    }
    original_wsgi_app = wsgi;
    original_request_context = rc;
    original_call = call;
    int failed = PyObject_SetAttr(cls, tgo__py_str.wsgi_app, descr[0]) < 0 ||
                 (hook_context && PyObject_SetAttr(cls, tgo__py_str.request_context, descr[1]) < 0) ||
                 (call && PyObject_SetAttr(cls, tgo__py_str.__call__, descr[2]) < 0);
    /* The slot must now be flask_slot_call; if CPython did not put it there,
     * __call__ is the method after all. */
    if (!failed && slot_call && PyType_GetSlot((PyTypeObject *)cls, Py_tp_call) != (void *)flask_slot_call) {
      PyObject *method = PyDescr_NewMethod((PyTypeObject *)cls, &hook_defs[2]);
      failed = !method || PyObject_SetAttr(cls, tgo__py_str.__call__, method) < 0;
      Py_XDECREF(method);
    }
    for (int i = 0; i < 3; i++)
      Py_DECREF(descr[i]);
    if (failed) {
      PyObject *type, *value, *tb;
      PyErr_Fetch(&type, &value, &tb);
      PyObject_SetAttr(cls, tgo__py_str.wsgi_app, original_wsgi_app);
      PyObject_SetAttr(cls, tgo__py_str.request_context, original_request_context);
      if (original_call)
        PyObject_SetAttr(cls, tgo__py_str.__call__, original_call);
      PyErr_Clear();
      PyErr_Restore(type, value, tb);
      Py_CLEAR(original_wsgi_app);
      Py_CLEAR(original_request_context);
      Py_CLEAR(original_call);
      return NULL;
    }
    Py_INCREF(cls);
    hooked_class = (PyTypeObject *)cls;
    if (!hook_context) {
      Py_INCREF(ctx_get);
      flask_request_ctx_get = ctx_get;
    }
  }
  return Py_BuildValue("(OOO)", original_wsgi_app, original_request_context,
                       flask_request_ctx_get ? Py_False : Py_True);
}


/* A method bound to the app is kept as its function (*unbound = 1): the
 * middleware must not hold the app that holds it. */
static PyObject *unbind(PyObject *callable, PyObject *app, int *unbound) {
  *unbound = 0;
  PyObject *self = PyObject_GetAttrString(callable, "__self__");
  PyObject *func = self == app ? PyObject_GetAttrString(callable, "__func__") : NULL;
  Py_XDECREF(self);
  PyErr_Clear();
  if (func) {
    *unbound = 1;
    return func;
  }
  Py_INCREF(callable);
  return callable;
}

static int middleware_init(PyObject *op, PyObject *args, PyObject *kwds) {
  tgo__py_middleware *mw = (tgo__py_middleware *)op;
  static char *kwlist[] = {"app", "wsgi_app", "request_context", "view_functions", "on_first_request", "via_class",
                           NULL};
  PyObject *app, *wsgi_app, *request_context, *view_functions, *on_first = Py_None;
  int via_class = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|Op", kwlist, &app, &wsgi_app, &request_context,
                                   &view_functions, &on_first, &via_class))
    return -1;
  mw->via_class = via_class;
  if (!PyCallable_Check(wsgi_app) || !PyCallable_Check(request_context)) {
    PyErr_SetString(PyExc_TypeError, "wsgi_app and request_context must be callable");
    return -1;
  }
  PyObject *ref = PyWeakref_NewRef(app, NULL);
  if (!ref)
    return -1;
  Py_XSETREF(mw->app_ref, ref);
  Py_XSETREF(mw->wsgi_app, unbind(wsgi_app, app, &mw->wsgi_app_unbound));
  Py_XSETREF(mw->request_context, unbind(request_context, app, &mw->request_context_unbound));
  Py_INCREF(view_functions);
  Py_XSETREF(mw->view_functions, view_functions);
  if (on_first != Py_None) {
    Py_INCREF(on_first);
    Py_XSETREF(mw->on_first_request, on_first);
  }
  return 0;
}

static int middleware_traverse(PyObject *op, visitproc visit, void *arg) {
  tgo__py_middleware *mw = (tgo__py_middleware *)op;
  Py_VISIT(mw->app_ref);
  Py_VISIT(mw->wsgi_app);
  Py_VISIT(mw->request_context);
  Py_VISIT(mw->view_functions);
  Py_VISIT(mw->on_first_request);
  Py_VISIT(mw->excluded);
  Py_VISIT(mw->capture_request);
  Py_VISIT(mw->capture_response);
  Py_VISIT((PyObject *)mw->spare_request);
  Py_VISIT(Py_TYPE(op));
  return 0;
}

static int middleware_clear(PyObject *op) {
  tgo__py_middleware *mw = (tgo__py_middleware *)op;
  Py_CLEAR(mw->app_ref);
  Py_CLEAR(mw->wsgi_app);
  Py_CLEAR(mw->request_context);
  Py_CLEAR(mw->view_functions);
  Py_CLEAR(mw->on_first_request);
  Py_CLEAR(mw->excluded);
  Py_CLEAR(mw->capture_request);
  Py_CLEAR(mw->capture_response);
  Py_CLEAR(mw->spare_request);
  return 0;
}

static void middleware_dealloc(PyObject *op) {
  PyTypeObject *tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  middleware_clear(op);
  tgo__py_route_cache_free(&((tgo__py_middleware *)op)->routes);
  PyObject_GC_Del(op);
  Py_DECREF(tp);
}

static PyObject *middleware_get_wrapped(PyObject *op, void *closure) {
  (void)closure;
  tgo__py_middleware *mw = (tgo__py_middleware *)op;
  if (!mw->wsgi_app)
    Py_RETURN_NONE;
  if (!mw->wsgi_app_unbound) {
    Py_INCREF(mw->wsgi_app);
    return mw->wsgi_app;
  }
  PyObject *app = PyWeakref_GetObject(mw->app_ref);
  if (!app || app == Py_None)
    Py_RETURN_NONE;
  return PyObject_CallMethod(mw->wsgi_app, "__get__", "O", app); /* bound again */
}

static PyObject *middleware_get_excluded(PyObject *op, void *closure) {
  (void)closure;
  tgo__py_middleware *mw = (tgo__py_middleware *)op;
  PyObject *o = mw->excluded ? mw->excluded : Py_None;
  Py_INCREF(o);
  return o;
}

static int middleware_set_excluded(PyObject *op, PyObject *value, void *closure) {
  (void)closure;
  tgo__py_middleware *mw = (tgo__py_middleware *)op;
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
    {"request_context", (PyCFunction)(void (*)(void))middleware_request_context, METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef middleware_getset[] = {
    {"__wrapped__", middleware_get_wrapped, NULL, "the WSGI app under the agent", NULL},
    {"excluded", middleware_get_excluded, middleware_set_excluded,
     "compiled pattern: requests whose full URL it matches get no span", NULL},
    {"capture_request", middleware_get_capture, middleware_set_capture,
     "capture_request(span, environ): records request headers, or None",
     (void *)offsetof(tgo__py_middleware, capture_request)},
    {"capture_response", middleware_get_capture, middleware_set_capture,
     "capture_response(span, headers): records response headers, or None",
     (void *)offsetof(tgo__py_middleware, capture_response)},
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
    {Py_tp_doc, (void *)"FlaskMiddleware(app, wsgi_app, request_context, view_functions, on_first_request=None, via_class=False)"},
    {0, NULL},
};

static PyType_Spec middleware_spec = {
    "_tigerops.FlaskMiddleware", sizeof(tgo__py_middleware), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    middleware_slots,
};

int tgo__py_middleware_type_init(PyObject *module) {
  if (tgo__py_request_type_init(module) < 0)
    return -1;
  tgo__py_middleware_type = (PyTypeObject *)PyType_FromSpec(&middleware_spec);
  if (!tgo__py_middleware_type)
    return -1;
  Py_INCREF(tgo__py_middleware_type);
  if (PyModule_AddObject(module, "FlaskMiddleware", (PyObject *)tgo__py_middleware_type) < 0) {
    Py_DECREF(tgo__py_middleware_type);
    return -1;
  }
  return 0;
}
