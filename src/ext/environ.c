/* The WSGI environ as request span attributes, the incoming trace context
 * and excluded URLs. Values are read as the client sent them. */
#include "flask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Where each key was in the last environ it was found in. A server builds
 * every request's environ in the same order, so a key is usually at the
 * same entry as last time: PyDict_Next reads that entry directly, where a
 * lookup probes the table and compares keys (measured in the hello loop:
 * about 75 instructions a read, 40 of them PyDict_Next's, against 117 on
 * average for the lookup; a dozen reads per traced request). The entry's
 * key is compared, so a moved or missing key costs one probe and then the
 * lookup; a key absent from the environ (traceparent, most forwarded
 * headers) is never learnt. The slots are the interpreter's: the GIL
 * serialises them, and both keys are held so neither address can be
 * reused by another string while the slot names it. */
#define ENV_RELEARN 32 /* misses before the next scan for a key's entry */

tgo__py_env_slot tgo__py_env_slots[TGO__ENV_COUNT];

int tgo__py_env_init(void) {
  static const char *const names[TGO__ENV_COUNT] = {
      [TGO__ENV_REQUEST_METHOD] = "REQUEST_METHOD",
      [TGO__ENV_PATH_INFO] = "PATH_INFO",
      [TGO__ENV_SCRIPT_NAME] = "SCRIPT_NAME",
      [TGO__ENV_QUERY_STRING] = "QUERY_STRING",
      [TGO__ENV_URL_SCHEME] = "wsgi.url_scheme",
      [TGO__ENV_HTTP_HOST] = "HTTP_HOST",
      [TGO__ENV_SERVER_NAME] = "SERVER_NAME",
      [TGO__ENV_SERVER_PORT] = "SERVER_PORT",
      [TGO__ENV_REMOTE_ADDR] = "REMOTE_ADDR",
      [TGO__ENV_HTTP_X_FORWARDED_FOR] = "HTTP_X_FORWARDED_FOR",
      [TGO__ENV_HTTP_X_REAL_IP] = "HTTP_X_REAL_IP",
      [TGO__ENV_HTTP_USER_AGENT] = "HTTP_USER_AGENT",
      [TGO__ENV_SERVER_PROTOCOL] = "SERVER_PROTOCOL",
      [TGO__ENV_WERKZEUG_REQUEST] = "werkzeug.request",
      [TGO__ENV_FILE_WRAPPER] = "wsgi.file_wrapper",
      [TGO__ENV_HEADER + TGO__H_TRACEPARENT] = "HTTP_TRACEPARENT",
      [TGO__ENV_HEADER + TGO__H_TRACESTATE] = "HTTP_TRACESTATE",
      [TGO__ENV_HEADER + TGO__H_BAGGAGE] = "HTTP_BAGGAGE",
      [TGO__ENV_HEADER + TGO__H_B3] = "HTTP_B3",
      [TGO__ENV_HEADER + TGO__H_B3_TRACEID] = "HTTP_X_B3_TRACEID",
      [TGO__ENV_HEADER + TGO__H_B3_SPANID] = "HTTP_X_B3_SPANID",
      [TGO__ENV_HEADER + TGO__H_B3_SAMPLED] = "HTTP_X_B3_SAMPLED",
      [TGO__ENV_HEADER + TGO__H_B3_FLAGS] = "HTTP_X_B3_FLAGS",
  };
  for (int i = 0; i < TGO__ENV_COUNT; i++)
    if (!tgo__py_env_slots[i].key && !(tgo__py_env_slots[i].key = PyUnicode_InternFromString(names[i])))
      return -1;
  return 0;
}

/* The entry holding key and value, found by walking the table once. */
static void learn_position(tgo__py_env_slot *s, PyObject *environ, PyObject *value) {
  Py_ssize_t pos = 0, at = 0;
  PyObject *k, *v;
  while (at = pos, PyDict_Next(environ, &pos, &k, &v)) {
    if (v == value && (k == s->key || (PyUnicode_CheckExact(k) && PyUnicode_Compare(k, s->key) == 0))) {
      Py_INCREF(k);
      Py_XSETREF(s->seen, k);
      s->pos = at; /* PyDict_Next goes on from here to this entry */
      return;
    }
  }
}

PyObject *tgo__py_env_lookup(PyObject *environ, tgo__py_env_slot *s, PyObject *k, PyObject *v) {
  /* The entry at the position, under a key object of this request's own
   * making (gunicorn builds every HTTP_ key afresh). */
  if (k && PyUnicode_CheckExact(k) && PyUnicode_Compare(k, s->key) == 0)
    return v;
  v = PyDict_GetItemWithError(environ, s->key);
  if (!v) {
    if (PyErr_Occurred())
      PyErr_Clear();
    return NULL;
  }
  if (--s->misses_left < 0) {
    s->misses_left = ENV_RELEARN;
    learn_position(s, environ, v);
  }
  return v;
}

/* WSGI strings are bytes decoded as latin-1; recover the bytes when they
 * are not ASCII, so the core sees what the client sent. *hold keeps the
 * bytes object alive until the caller drops it. */
static const char *env_bytes(PyObject *v, Py_ssize_t *len, PyObject **hold) {
  *hold = NULL;
  const char *p = tgo__py_utf8(v, len);
  if (!p)
    return NULL;
  /* As many characters as UTF-8 bytes: all ASCII, the bytes as sent. */
  if (PyUnicode_GetLength(v) == *len)
    return p;
  PyObject *raw = PyUnicode_AsLatin1String(v);
  char *b;
  if (!raw || PyBytes_AsStringAndSize(raw, &b, len) < 0) {
    PyErr_Clear();
    Py_XDECREF(raw);
    return NULL;
  }
  *hold = raw;
  return b;
}

/* A value that is one of a few literals (scheme, protocol version) as the
 * literal, so the span points at it rather than copying it. */
static const char *known_value(const char *v, size_t len, const char *const *literals, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strlen(literals[i]) == len && !memcmp(v, literals[i], len))
      return literals[i];
  return NULL;
}

static void env_attr_n(tgo_attrs *a, const char *key, uint32_t key_hash, PyObject *v) {
  Py_ssize_t len;
  PyObject *hold;
  const char *p = env_bytes(v, &len, &hold);
  if (p)
    tgo__attr_str_new(a, key, key_hash, p, (size_t)len);
  Py_XDECREF(hold);
}
#define env_attr(a, key, v) env_attr_n((a), key, TGO__KEY_HASH(key), (v))

static void set_path_and_query(tgo_attrs *a, PyObject *environ) {
  PyObject *script = tgo__py_env(environ, TGO__ENV_SCRIPT_NAME);
  PyObject *path = tgo__py_env(environ, TGO__ENV_PATH_INFO);
  Py_ssize_t slen = 0;
  if (script && tgo__py_utf8(script, &slen) && slen > 0) {
    PyObject *full = path ? PyUnicode_Concat(script, path) : NULL;
    if (full) {
      env_attr(a, "url.path", full);
      Py_DECREF(full);
    } else {
      PyErr_Clear();
    }
  } else if (path) {
    env_attr(a, "url.path", path);
  }
  PyObject *hold;
  Py_ssize_t qlen = 0;
  const char *query = env_bytes(tgo__py_env(environ, TGO__ENV_QUERY_STRING), &qlen, &hold);
  if (query && qlen > 0) {
    char redacted[2048];
    if ((size_t)qlen < sizeof redacted) {
      size_t n = tgo__redact_query(query, (size_t)qlen, redacted, sizeof redacted);
      TGO__ATTR_STR_NEW(a, "url.query", redacted, n);
    } else {
      TGO__ATTR_STR_NEW(a, "url.query", "REDACTED", 8); /* too long to check: never export it raw */
    }
  }
  Py_XDECREF(hold);
}

/* A port's decimal digits (the rest of the field ignored, as strtol
 * would), or -1: strtol's locale and base handling cost ~160 instructions
 * a request. */
static long parse_port(const char *s, size_t n) {
  long port = 0;
  size_t i = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
    if (port < 100000) /* already out of range: stays so, without overflow */
      port = port * 10 + (s[i] - '0');
  return i ? port : -1;
}

/* server.address and server.port from Host ("name", "name:port", "[v6]",
 * "[v6]:port"); a Host without a port means the scheme's default port, as
 * HTTP says. Without Host: SERVER_NAME and SERVER_PORT. */
static void set_server(tgo_attrs *a, PyObject *environ, int https) {
  Py_ssize_t len;
  PyObject *hold;
  const char *host = env_bytes(tgo__py_env(environ, TGO__ENV_HTTP_HOST), &len, &hold);
  if (host && len > 0) {
    const char *colon;
    if (host[0] == '[') {
      const char *close = memchr(host, ']', (size_t)len);
      colon = close && close + 1 < host + len && close[1] == ':' ? close + 1 : NULL;
    } else {
      colon = memchr(host, ':', (size_t)len);
    }
    TGO__ATTR_STR_NEW(a, "server.address", host, colon ? (size_t)(colon - host) : (size_t)len);
    long port = colon ? parse_port(colon + 1, (size_t)(host + len - colon - 1)) : (https ? 443 : 80);
    if (port > 0 && port < 65536)
      TGO__ATTR_INT_NEW(a, "server.port", port);
    Py_XDECREF(hold);
    return;
  }
  Py_XDECREF(hold);
  env_attr(a, "server.address", tgo__py_env(environ, TGO__ENV_SERVER_NAME));
  const char *port = tgo__py_utf8(tgo__py_env(environ, TGO__ENV_SERVER_PORT), &len);
  long number = port ? parse_port(port, (size_t)len) : -1;
  if (number > 0 && number < 65536)
    TGO__ATTR_INT_NEW(a, "server.port", number);
}

/* client.address: the original client as proxies report it. */
static void set_client(tgo_attrs *a, PyObject *environ) {
  Py_ssize_t len;
  PyObject *hold;
  const char *xff = env_bytes(tgo__py_env(environ, TGO__ENV_HTTP_X_FORWARDED_FOR), &len, &hold);
  PyObject *peer = tgo__py_env(environ, TGO__ENV_REMOTE_ADDR);
  if (xff && len > 0) {
    const char *end = memchr(xff, ',', (size_t)len);
    size_t n = end ? (size_t)(end - xff) : (size_t)len;
    while (n && (*xff == ' ' || *xff == '\t')) {
      xff++;
      n--;
    }
    while (n && (xff[n - 1] == ' ' || xff[n - 1] == '\t'))
      n--;
    TGO__ATTR_STR_NEW(a, "client.address", xff, n);
  } else {
    PyObject *real = tgo__py_env(environ, TGO__ENV_HTTP_X_REAL_IP);
    env_attr(a, "client.address", real && PyUnicode_Check(real) && PyUnicode_GetLength(real) ? real : peer);
  }
  Py_XDECREF(hold);
  env_attr(a, "network.peer.address", peer);
}

int tgo__py_set_request_attrs(tgo_attrs *a, PyObject *environ, const char *method, size_t method_len) {
  static const char *const schemes[] = {"http", "https"}, *const versions[] = {"1.1", "1.0", "2", "2.0", "3"};
  const char *known = tgo__http_method_literal(method, method_len);
  if (known)
    TGO__ATTR_STATIC_NEW(a, "http.request.method", known, method_len);
  else
    TGO__ATTR_STR_NEW(a, "http.request.method", method, method_len);
  set_path_and_query(a, environ);
  PyObject *scheme = tgo__py_env(environ, TGO__ENV_URL_SCHEME);
  Py_ssize_t len;
  const char *s = tgo__py_utf8(scheme, &len);
  if (s && (known = known_value(s, (size_t)len, schemes, 2)))
    TGO__ATTR_STATIC_NEW(a, "url.scheme", known, (size_t)len);
  else
    env_attr(a, "url.scheme", scheme);
  int https = s && len == 5 && !memcmp(s, "https", 5);
  set_server(a, environ, https);
  set_client(a, environ);
  env_attr(a, "user_agent.original", tgo__py_env(environ, TGO__ENV_HTTP_USER_AGENT));
  const char *proto = tgo__py_utf8(tgo__py_env(environ, TGO__ENV_SERVER_PROTOCOL), &len);
  if (proto && len > 5 && !memcmp(proto, "HTTP/", 5)) {
    if ((known = known_value(proto + 5, (size_t)len - 5, versions, 5)))
      TGO__ATTR_STATIC_NEW(a, "network.protocol.version", known, (size_t)len - 5);
    else
      TGO__ATTR_STR_NEW(a, "network.protocol.version", proto + 5, (size_t)len - 5);
  }
  return https;
}

/* The pattern is searched in the full URL, scheme://host/path?query, as the
 * OpenTelemetry Python settings define. */
int tgo__py_url_excluded(PyObject *pattern, PyObject *environ) {
  PyObject *scheme = tgo__py_env(environ, TGO__ENV_URL_SCHEME);
  PyObject *host = tgo__py_env(environ, TGO__ENV_HTTP_HOST);
  if (!host)
    host = tgo__py_env(environ, TGO__ENV_SERVER_NAME);
  PyObject *path = tgo__py_env(environ, TGO__ENV_PATH_INFO);
  PyObject *query = tgo__py_env(environ, TGO__ENV_QUERY_STRING);
  Py_ssize_t qlen = 0;
  int has_query = query && tgo__py_utf8(query, &qlen) && qlen > 0;
  PyObject *empty = tgo__py_str.empty;
  PyObject *url = PyUnicode_FromFormat("%U://%U%U%s%U", scheme && PyUnicode_Check(scheme) ? scheme : empty,
                                       host && PyUnicode_Check(host) ? host : empty,
                                       path && PyUnicode_Check(path) ? path : empty, has_query ? "?" : "",
                                       has_query ? query : empty);
  if (!url) {
    PyErr_Clear();
    return 0;
  }
  PyObject *match = PyObject_CallMethodObjArgs(pattern, tgo__py_str.search, url, NULL);
  Py_DECREF(url);
  int excluded = match && match != Py_None;
  Py_XDECREF(match);
  PyErr_Clear();
  return excluded;
}
