/* The Flask request span's pieces, shared by the files of the extension
 * that make it: route_cache.c (url_rule -> route facts), environ.c (WSGI
 * environ -> attributes), middleware.c (the app's wsgi_app), request.c (one
 * object per request: start_response, response iterable, request state). */
#ifndef TGO__PY_FLASK_H
#define TGO__PY_FLASK_H

#include "glue.h"

/* What a url_rule tells about a request, cached per rule object. */
typedef struct {
  PyObject *rule; /* strong: keeps the key's address unique */
  char *route, *endpoint, *function, *namespace, *blueprint;
  size_t route_len, endpoint_len, function_len, namespace_len, blueprint_len; /* 0 for NULL */
  /* The same interned, for span attributes that point rather than copy
   * (and whose masking the exporter remembers): a span may outlive the app
   * and its cache. NULL (copy instead) in a scratch entry or when the table
   * is full. */
  const char *shared_route, *shared_endpoint, *shared_function, *shared_namespace, *shared_blueprint;
  /* The span name "{method} {route}" interned for the method last seen. */
  const char *shared_name;
  size_t shared_name_len;
  char name_method[24];
  _Atomic uint64_t duration_memo; /* tgo__http_server_request.memo */
  /* The route's span attributes as one run; NULL when out of memory */
  tgo__attr_run *attrs;
} tgo__py_route;

typedef struct {
  tgo__py_route *slots; /* open addressing on the rule's address */
  size_t cap, len;
} tgo__py_route_cache;

/* Facts for a url_rule: from the cache, or made into *scratch when the cache
 * is full (free it with tgo__py_route_clear). NULL when none can be had. */
const tgo__py_route *tgo__py_route_lookup(tgo__py_route_cache *cache, PyObject *view_functions,
                                          PyObject *rule, tgo__py_route *scratch);
void tgo__py_route_clear(tgo__py_route *r);
void tgo__py_route_cache_free(tgo__py_route_cache *cache);

/* FlaskMiddleware: replaces app.wsgi_app. It never holds the app strongly
 * (the app holds it): a method bound to the app is kept as its function
 * and called with the app from a weak reference, so a dropped app is freed
 * at once, as without the agent. */
typedef struct {
  PyObject_HEAD
  PyObject *app_ref;          /* weakref to the app */
  PyObject *wsgi_app;         /* callable, or the app's function when wsgi_app_unbound */
  PyObject *request_context;  /* likewise */
  int wsgi_app_unbound, request_context_unbound;
  PyObject *view_functions;
  PyObject *on_first_request; /* cleared once called */
  PyObject *excluded;         /* compiled regex searched in the full URL, or NULL */
  /* Opt-in header capture (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*):
   * callables (span, environ) and (span, headers), NULL when off. */
  PyObject *capture_request, *capture_response;
  tgo__py_route_cache routes;
  /* Reached through the hooks on the Flask class (flask_class_hooks)
   * rather than as app.wsgi_app: the app's own __dict__ stays untouched. */
  int via_class;
  /* A finished request's object, all its fields cleared, for the next. */
  struct tgo__py_request *spare_request;
} tgo__py_middleware;

/* Calls one of the middleware's wrapped callables (bound back to the app
 * when kept unbound: known_app, or read from the middleware's weak
 * reference when NULL) with one or two arguments; NULL with an exception. */
PyObject *tgo__py_middleware_call_wrapped(tgo__py_middleware *mw, PyObject *known_app, PyObject *callable,
                                          int unbound, PyObject *a, PyObject *b);

#define TGO__PY_NPO_SLOTS 64

/* One per request, made by the middleware: at once the start_response the
 * app sees (to read the status) and, unless the body is already made, the
 * iterable the server gets (to end the span when the server closes it, so
 * streaming responses are timed whole). It owns all per-request state. */
typedef struct tgo__py_request {
  PyObject_HEAD
  void *vectorcall; /* request_vectorcall: the type's __vectorcalloffset__ */
  tgo__py_middleware *mw;
  tgo_span *span; /* one reference of ours */
  PyObject *start_response;
  PyObject *inner;
  PyObject *iter;
  /* Flask's RequestContext, kept from its creation (Flask < 2.2, whose
   * request_context is hooked): the matched url_rule is read at the end. */
  PyObject *ctx;
  /* The matched url_rule (None: none matched), read inside the app, when
   * it calls start_response or reports its exception. The Request it came
   * from is not held: Flask's context pop frees it, as without the agent
   * (held to the end, the last reference was ours and the free ran in our
   * finish: 30-110 instructions a request more at 100%). */
  PyObject *url_rule;
  PyObject *call_environ; /* borrowed, only while the app is called */
  PyObject *environ; /* held only for a tail-keep span: its attributes are read at the end, if kept */
  int status_code;
  int finished;
  char method[24];
  size_t method_len;
  /* HTTP server metrics, for every request (sampled or not). */
  uint64_t start_ns;           /* CLOCK_MONOTONIC */
  tgo__mseries *active;        /* http.server.active_requests' series, taken off at the end */
  int https;
  char error_type[64];         /* the exception's type name, when the app raised */
  /* N+1 detection: statement shapes counted in this request, allocated at
   * its first statement, so the object stays small enough for pymalloc. */
  struct tgo__py_npo_slot {
    uint64_t hash;
    uint32_t count;
  } *npo;
  uint32_t npo_flagged; /* 1 + the slot of the shape the span names, or 0 */
} tgo__py_request;

/* Makes the request object for a started span (takes a reference of it). */
tgo__py_request *tgo__py_request_new(tgo__py_middleware *mw, tgo_span *span, PyObject *start_response,
                                     const char *method, size_t method_len);
/* Ends the span once, with route, status and error facts. */
void tgo__py_request_finish(tgo__py_request *r);
/* Drops the middleware's reference of a request it no longer hands out. */
void tgo__py_request_release(tgo__py_request *r);

/* Flask >= 2.2: the running request keeps the matched url_rule of the
 * pushed RequestContext, read from Flask's context variable (nothing when
 * it has a rule or a context already). */
void tgo__py_keep_flask_request_context(tgo__py_request *r);
/* Keeps the url_rule of environ's werkzeug Request; 1 when r has one. */
int tgo__py_keep_flask_request(tgo__py_request *r, PyObject *environ);
/* Keeps request.url_rule; 1 when r has it. */
int tgo__py_keep_rule_of(tgo__py_request *r, PyObject *request);
/* Inside the app: keeps the matched url_rule, from environ's Request
 * (through the class hook) or the pushed RequestContext. */
void tgo__py_keep_route_source(tgo__py_request *r);

/* The running request (context.c decides how that is known). */
tgo__py_request *tgo__py_request_running(void);

/* ---- environ -> attributes -------------------------------------------- */
/* The environ keys the agent reads, each with its own slot (environ.c):
 * the name's slot is known at compile time, where a table keyed by the
 * string's address was probed on every read. */
enum {
  TGO__ENV_REQUEST_METHOD,
  TGO__ENV_PATH_INFO,
  TGO__ENV_SCRIPT_NAME,
  TGO__ENV_QUERY_STRING,
  TGO__ENV_URL_SCHEME,
  TGO__ENV_HTTP_HOST,
  TGO__ENV_SERVER_NAME,
  TGO__ENV_SERVER_PORT,
  TGO__ENV_REMOTE_ADDR,
  TGO__ENV_HTTP_X_FORWARDED_FOR,
  TGO__ENV_HTTP_X_REAL_IP,
  TGO__ENV_HTTP_USER_AGENT,
  TGO__ENV_SERVER_PROTOCOL,
  TGO__ENV_WERKZEUG_REQUEST,
  TGO__ENV_FILE_WRAPPER,
  TGO__ENV_HEADER, /* + TGO__H_*: the propagation headers (HTTP_TRACEPARENT, ...) */
  TGO__ENV_COUNT = TGO__ENV_HEADER + TGO__H_COUNT
};

/* Where a key was in the last environ it was found in (environ.c). */
typedef struct {
  PyObject *key;  /* ours, set at module exec */
  PyObject *seen; /* the environ's own key object at pos when learnt, or NULL */
  Py_ssize_t pos;
  int misses_left;
} tgo__py_env_slot;
extern tgo__py_env_slot tgo__py_env_slots[TGO__ENV_COUNT];

/* The lookup, when the key is not the entry at its slot's position (k and
 * v: that entry, or NULL). */
PyObject *tgo__py_env_lookup(PyObject *environ, tgo__py_env_slot *s, PyObject *k, PyObject *v);

/* environ[key] (borrowed), or NULL. A server builds every request's
 * environ in the same order, so a key is usually at the entry where the
 * last request had it: read inline, the hit costs no call of ours. */
static inline PyObject *tgo__py_env(PyObject *environ, int which) {
  tgo__py_env_slot *s = &tgo__py_env_slots[which];
  Py_ssize_t pos = s->pos;
  PyObject *k = NULL, *v = NULL;
  if (s->seen && PyDict_Next(environ, &pos, &k, &v) && (k == s->seen || k == s->key))
    return v;
  return tgo__py_env_lookup(environ, s, k, v);
}
/* The environ's attributes, through the fresh appends: call it between
 * tgo__attrs_fresh(a, 1) and (a, 0). Its keys are distinct from each other
 * and from set_route's (request.c). Returns whether wsgi.url_scheme is
 * "https", which it reads anyway. */
int tgo__py_set_request_attrs(tgo_attrs *a, PyObject *environ, const char *method, size_t method_len);
/* Reads the incoming W3C context; an invalid header is ignored (0). */
/* The remote context of a request per OTEL_PROPAGATORS (1 when found) and
 * its baggage (borrowed from environ; NULL when none). */
int tgo__py_remote_context(PyObject *environ, tgo_span_context *ctx, const char **baggage, size_t *baggage_len);
/* Whether the compiled pattern matches the request's full URL. */
int tgo__py_url_excluded(PyObject *pattern, PyObject *environ);

/* Header capture (opt-in); its failure costs the headers, never the request. */
void tgo__py_capture_headers(PyObject *capture, tgo_span *span, PyObject *headers);

int tgo__py_request_type_init(PyObject *module);

#endif
