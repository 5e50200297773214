/* Route facts (route, endpoint, view function, blueprint) per url_rule
 * object: made once from Python attributes, then a request costs one
 * pointer-keyed lookup. Bounded: past MAX_ROUTES a rule's facts are made
 * per request instead of cached. */
#include "flask.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES 4096

void tgo__py_route_clear(tgo__py_route *r) {
  Py_CLEAR(r->rule);
  free(r->route);
  free(r->endpoint);
  free(r->function);
  free(r->namespace);
  free(r->blueprint);
  tgo__attr_run_free(r->attrs);
  memset(r, 0, sizeof *r);
}

void tgo__py_route_cache_free(tgo__py_route_cache *cache) {
  for (size_t i = 0; i < cache->cap; i++)
    if (cache->slots[i].rule)
      tgo__py_route_clear(&cache->slots[i]);
  free(cache->slots);
  memset(cache, 0, sizeof *cache);
}

static size_t slot_of(const void *p, size_t cap) {
  uintptr_t h = (uintptr_t)p >> 4;
  h ^= h >> 17;
  h *= 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 20) & (cap - 1);
}

static char *dup_attr_str(PyObject *obj, PyObject *name) {
  PyObject *v = obj ? PyObject_GetAttr(obj, name) : NULL;
  Py_ssize_t len;
  const char *p = tgo__py_utf8(v, &len);
  char *out = p ? strndup(p, (size_t)len) : NULL;
  Py_XDECREF(v);
  PyErr_Clear();
  return out;
}

static const char *intern_or_null(const char *s) { return s ? tgo__intern(s, strlen(s)) : NULL; }

/* The route's span attributes, as one run: the interned strings pointed
 * at, the others (a scratch entry's, or past the intern table's bound)
 * copied per span. NULL when out of memory. */
static tgo__attr_run *route_run(const tgo__py_route *r) {
  tgo__attr_run *run = tgo__attr_run_new(5);
  if (!run)
    return NULL;
  int rc = TGO__ATTR_RUN_STR(run, "http.route", r->shared_route, r->route, r->route_len);
  rc |= TGO__ATTR_RUN_STR(run, "flask.endpoint", r->shared_endpoint, r->endpoint, r->endpoint_len);
  rc |= TGO__ATTR_RUN_STR(run, "flask.blueprint", r->shared_blueprint, r->blueprint, r->blueprint_len);
  rc |= TGO__ATTR_RUN_STR(run, "code.function", r->shared_function, r->function, r->function_len);
  rc |= TGO__ATTR_RUN_STR(run, "code.namespace", r->shared_namespace, r->namespace, r->namespace_len);
  if (rc) {
    tgo__attr_run_free(run);
    return NULL;
  }
  return run;
}

static int route_fill(PyObject *view_functions, PyObject *rule, tgo__py_route *r, int shared) {
  memset(r, 0, sizeof *r);
  r->route = dup_attr_str(rule, tgo__py_str.rule);
  r->endpoint = dup_attr_str(rule, tgo__py_str.endpoint);
  if (!r->route) {
    free(r->endpoint);
    r->endpoint = NULL;
    return -1;
  }
  r->route_len = strlen(r->route);
  if (r->endpoint) {
    const char *dot = strrchr(r->endpoint, '.');
    if (dot)
      r->blueprint = strndup(r->endpoint, (size_t)(dot - r->endpoint));
    PyObject *key = PyUnicode_FromString(r->endpoint);
    PyObject *view = key && view_functions ? PyObject_GetItem(view_functions, key) : NULL;
    PyErr_Clear();
    Py_XDECREF(key);
    if (view) {
      /* A class-based view (MethodView, Flask-RESTful/RESTX resources) is
       * a function made by as_view ("View.as_view.<locals>.view"): the
       * class it names is the code. Once per route, so no interned name. */
      PyObject *cls = PyObject_GetAttrString(view, "view_class");
      PyErr_Clear();
      PyObject *code = cls && PyType_Check(cls) ? cls : view;
      r->function = dup_attr_str(code, tgo__py_str.__qualname__);
      r->namespace = dup_attr_str(code, tgo__py_str.__module__);
      Py_XDECREF(cls);
      Py_DECREF(view);
    }
  }
  r->endpoint_len = r->endpoint ? strlen(r->endpoint) : 0;
  r->function_len = r->function ? strlen(r->function) : 0;
  r->namespace_len = r->namespace ? strlen(r->namespace) : 0;
  r->blueprint_len = r->blueprint ? strlen(r->blueprint) : 0;
  if (shared) {
    r->shared_route = intern_or_null(r->route);
    r->shared_endpoint = intern_or_null(r->endpoint);
    r->shared_function = intern_or_null(r->function);
    r->shared_namespace = intern_or_null(r->namespace);
    r->shared_blueprint = intern_or_null(r->blueprint);
  }
  r->attrs = route_run(r);
  if (!r->attrs) { /* out of memory: no route this time, tried again next */
    tgo__py_route_clear(r);
    return -1;
  }
  Py_INCREF(rule);
  r->rule = rule;
  return 0;
}

static int cache_grow(tgo__py_route_cache *cache) {
  size_t cap = cache->cap ? cache->cap * 2 : 64;
  tgo__py_route *t = calloc(cap, sizeof *t);
  if (!t)
    return -1;
  for (size_t i = 0; i < cache->cap; i++) {
    if (!cache->slots[i].rule)
      continue;
    size_t s = slot_of(cache->slots[i].rule, cap);
    while (t[s].rule)
      s = (s + 1) & (cap - 1);
    t[s] = cache->slots[i];
  }
  free(cache->slots);
  cache->slots = t;
  cache->cap = cap;
  return 0;
}

const tgo__py_route *tgo__py_route_lookup(tgo__py_route_cache *cache, PyObject *view_functions,
                                          PyObject *rule, tgo__py_route *scratch) {
  if (cache->cap) {
    size_t s = slot_of(rule, cache->cap);
    while (cache->slots[s].rule) {
      if (cache->slots[s].rule == rule)
        return &cache->slots[s];
      s = (s + 1) & (cache->cap - 1);
    }
  }
  if (cache->len >= MAX_ROUTES || ((cache->len + 1) * 2 > cache->cap && cache_grow(cache) < 0))
    return route_fill(view_functions, rule, scratch, 0) == 0 ? scratch : NULL;
  tgo__py_route r;
  if (route_fill(view_functions, rule, &r, 1) < 0)
    return NULL;
  size_t s = slot_of(rule, cache->cap);
  while (cache->slots[s].rule)
    s = (s + 1) & (cache->cap - 1);
  cache->slots[s] = r;
  cache->len++;
  return &cache->slots[s];
}
