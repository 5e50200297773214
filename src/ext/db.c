/* Database client spans: DbExecute replaces a SQLAlchemy dialect's
 * do_execute / do_execute_no_params / do_executemany on the dialect
 * instance, so each statement the DBAPI cursor runs is one CLIENT span,
 * child of the current span. The statement text is normalised in C once
 * per distinct statement object (SQLAlchemy reuses the compiled string),
 * so a cached statement costs a pointer compare. The cache is shared by
 * threads and the DBAPI call releases the GIL, so everything a span needs
 * after the call is copied out of the entry before it. N+1 detection counts
 * statement shapes in the running request's own state. */
#include "glue.h"

#include <structmember.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Statements by identity, in sets of CACHE_WAYS: with one entry per
 * slot, two hot statements whose addresses shared a slot evicted each
 * other on every call, and each miss normalises, interns and builds the
 * statement again (~12,000 instructions): an app running 40 statements in
 * turn missed on 1 call in 5. */
#define CACHE_WAYS 8
#define CACHE_SET_BITS 4
#define CACHE_SLOTS (CACHE_WAYS << CACHE_SET_BITS)
#define NPO_SLOTS 64
#define BATCH_SLOTS 4
#define MAX_TRACED_ARGS 8 /* do_execute takes 4 */

typedef struct {
  PyObject *statement; /* strong: keeps the key's address unique */
  char *text;          /* normalised */
  size_t text_len;
  const char *shared_text; /* text interned (immortal), or NULL: copy it */
  char *name; /* "{operation} {table}" */
  size_t name_len;
  char op[32];
  char table[128];
  /* name, op and table interned, or NULL (the table is full): copy them */
  const char *shared_name, *shared_op, *shared_table;
  size_t op_len, table_len;
  uint64_t hash;
  int returns_rows; /* rowcount counts rows returned, not rows changed */
  tgo__mseries *series; /* of successful runs; never freed, so safe to keep past the GIL release */
  tgo__attr_run *attrs; /* the span attributes known before the call; NULL when out of memory */
} statement_info;

typedef struct {
  PyObject_HEAD
  void *vectorcall; /* db_vectorcall: the type's __vectorcalloffset__ */
  PyObject *original;
  int mode; /* 0 do_execute, 1 do_execute_no_params, 2 do_executemany */
  /* Interned when the table has room (then spans point at them), else ours. */
  const char *system, *namespace, *host, *connection;
  size_t system_len, namespace_len, host_len, connection_len; /* per statement, not strlen each time */
  int shared; /* the four strings above are interned */
  long port;
  /* The insertmanyvalues batches SQLAlchemy 2.0 is about to run
   * (next_batch, from the glue's wrapper of the dialect's batch generator):
   * do_execute gets a page of rows as one statement and no row count, so
   * the count comes this way. Keyed by the statement's identity, never
   * dereferenced: a batch that never reaches do_execute (an event hook
   * rewrote it, an error) or whose slot another thread took labels nothing.
   * batches_pending keeps the check to one compare on every other call. */
  int batches_pending;
  const PyObject *batch_statement[BATCH_SLOTS];
  Py_ssize_t batch_size[BATCH_SLOTS];
  /* Each entry's statement, kept apart so that a set's ways are one
   * cache line to scan; NULL for an empty entry. */
  const PyObject *cache_keys[CACHE_SLOTS];
  uint8_t cache_victim[1 << CACHE_SET_BITS]; /* the way a set's next miss fills, in turn */
  Py_ssize_t statements_made; /* cache entries made: misses */
  statement_info cache[CACHE_SLOTS];
} DbExecute;

PyTypeObject *tgo__py_db_execute_type;

/* db.client.operation.duration, made with the first DbExecute. */
static tgo__metric *duration;
static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MSTR(a, n, k, str) \
  ((a)[(n)++] = (tgo__mattr){.key = (k), .key_len = sizeof(k) - 1, .type = TGO__MATTR_STR, \
                            .len = (uint32_t)strlen(str), .v.s = (str)})

/* The statement's metric attributes; room for 7. */
static size_t metric_attrs(const DbExecute *d, const char *op, const char *table, tgo__mattr *a) {
  size_t n = 0;
  MSTR(a, n, "db.system.name", d->system);
  if (*d->namespace)
    MSTR(a, n, "db.namespace", d->namespace);
  if (*op)
    MSTR(a, n, "db.operation.name", op);
  if (*table)
    MSTR(a, n, "db.collection.name", table);
  if (*d->host)
    MSTR(a, n, "server.address", d->host);
  if (d->port > 0)
    a[n++] = (tgo__mattr){.key = "server.port", .key_len = 11, .type = TGO__MATTR_INT, .v.i = d->port};
  return n;
}


static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h ? h : 1;
}

static void entry_clear(statement_info *e) {
  Py_CLEAR(e->statement);
  free(e->text);
  free(e->name);
  tgo__attr_run_free(e->attrs);
  e->attrs = NULL;
  e->text = e->name = NULL;
  e->shared_text = e->shared_name = e->shared_op = e->shared_table = NULL;
}

/* Statements whose rowcount is the rows they return. */
static int returns_rows(const char *op) {
  static const char *const ops[] = {"SELECT", "SHOW", "PRAGMA", "EXPLAIN", "DESCRIBE", "DESC",
                                    "VALUES", "TABLE", "WITH", "FETCH"};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(op, ops[i]))
      return 1;
  return 0;
}

/* The span attributes known before the call, in the order spans get
 * them: the interned strings pointed at, the others copied per span. NULL
 * when out of memory. */
static tgo__attr_run *statement_run(const DbExecute *d, const statement_info *e) {
  tgo__attr_run *run = tgo__attr_run_new(8);
  if (!run)
    return NULL;
#define ENGINE_STR(key, s) TGO__ATTR_RUN_STR(run, key, d->shared ? d->s : NULL, d->s, d->s##_len)
  int rc = ENGINE_STR("db.system.name", system);
  if (*d->namespace)
    rc |= ENGINE_STR("db.namespace", namespace);
  if (e->op_len)
    rc |= TGO__ATTR_RUN_STR(run, "db.operation.name", e->shared_op, e->op, e->op_len);
  if (e->table_len)
    rc |= TGO__ATTR_RUN_STR(run, "db.collection.name", e->shared_table, e->table, e->table_len);
  rc |= TGO__ATTR_RUN_STR(run, "db.query.text", e->shared_text, e->text, e->text_len);
  if (*d->host)
    rc |= ENGINE_STR("server.address", host);
  if (d->port > 0)
    rc |= TGO__ATTR_RUN_INT(run, "server.port", d->port);
  if (*d->connection)
    rc |= ENGINE_STR("db.connection_string", connection);
#undef ENGINE_STR
  if (rc) {
    tgo__attr_run_free(run);
    return NULL;
  }
  return run;
}

static statement_info *statement_lookup(DbExecute *d, PyObject *statement) {
  size_t set = (size_t)(((uint64_t)(uintptr_t)statement * 0x9E3779B97F4A7C15ull) >> (64 - CACHE_SET_BITS));
  const PyObject **keys = &d->cache_keys[set * CACHE_WAYS];
  for (size_t way = 0; way < CACHE_WAYS; way++)
    if (keys[way] == statement)
      return &d->cache[set * CACHE_WAYS + way];
  size_t way = d->cache_victim[set]++ % CACHE_WAYS;
  statement_info *e = &d->cache[set * CACHE_WAYS + way];
  Py_ssize_t len;
  const char *sql = tgo__py_utf8(statement, &len);
  if (!sql)
    return NULL;
  size_t cap = (size_t)len + 1 < 65536 ? (size_t)len + 1 : 65536;
  char *text = malloc(cap);
  if (!text)
    return NULL;
  size_t n = tgo__sql_normalize(sql, (size_t)len, text, cap);
  const char *op, *table;
  size_t op_len, table_len;
  tgo__sql_summary(text, n, &op, &op_len, &table, &table_len);
  keys[way] = NULL; /* until the entry is made again */
  entry_clear(e);
  e->text = text;
  e->text_len = n;
  snprintf(e->op, sizeof e->op, "%.*s", (int)(op_len < sizeof e->op ? op_len : sizeof e->op - 1), op);
  for (char *p = e->op; *p; p++)
    if (*p >= 'a' && *p <= 'z')
      *p = (char)(*p - 'a' + 'A');
  snprintf(e->table, sizeof e->table, "%.*s", (int)(table_len < sizeof e->table ? table_len : sizeof e->table - 1),
           table ? table : "");
  size_t name_cap = sizeof e->op + sizeof e->table + 2;
  e->name = malloc(name_cap);
  if (!e->name) {
    entry_clear(e);
    return NULL;
  }
  int m = snprintf(e->name, name_cap, "%s%s%s", *e->op ? e->op : d->system, *e->table ? " " : "", e->table);
  e->name_len = m > 0 ? (size_t)m : 0;
  e->hash = fnv1a(text, n);
  e->returns_rows = returns_rows(e->op);
  e->shared_text = tgo__intern(text, n);
  e->op_len = strlen(e->op);
  e->table_len = strlen(e->table);
  e->shared_name = tgo__intern(e->name, e->name_len);
  e->shared_op = tgo__intern(e->op, e->op_len);
  e->shared_table = tgo__intern(e->table, e->table_len);
  if (duration) {
    tgo__mattr attrs[7];
    e->series = tgo__metric_series(duration, attrs, metric_attrs(d, e->op, e->table, attrs));
  }
  e->attrs = statement_run(d, e);
  if (!e->attrs) { /* out of memory: untraced, and tried again next time */
    entry_clear(e);
    return NULL;
  }
  Py_INCREF(statement);
  e->statement = statement;
  keys[way] = statement;
  d->statements_made++;
  return e;
}

static void record_rows(tgo_attrs *a, PyObject *cursor, int rows_returned) {
  PyObject *rc = PyObject_GetAttr(cursor, tgo__py_str.rowcount);
  if (!rc) {
    PyErr_Clear();
    return;
  }
  long rows = PyLong_Check(rc) ? PyLong_AsLong(rc) : -1;
  Py_DECREF(rc);
  if (rows == -1 && PyErr_Occurred())
    PyErr_Clear();
  if (rows < 0)
    return;
  /* A fresh append: no other code sets these keys, and once anything set
   * an attribute by key (a batch size) this is the checked tgo_attr_int. */
  tgo__attrs_fresh(a, 1);
  if (rows_returned)
    TGO__ATTR_INT_NEW(a, "db.response.returned_rows", rows);
  else
    TGO__ATTR_INT_NEW(a, "db.response.affected_rows", rows);
  tgo__attrs_fresh(a, 0);
}

/* sqlcommenter: the statement carrying the span's traceparent as a
 * comment (before a trailing ';'), so the database's own logs and
 * pg_stat_activity point at the trace. NULL: use the statement as it is. */
static PyObject *with_sql_comment(PyObject *statement, tgo_span *span) {
  Py_ssize_t len;
  const char *sql = tgo__py_utf8(statement, &len);
  if (!sql || len > (1 << 20))
    return NULL;
  tgo_span_context ctx;
  tgo_span_get_context(span, &ctx);
  char tp[TGO_TRACEPARENT_LEN + 1];
  tgo_traceparent_format(&ctx, tp);
  Py_ssize_t end = len;
  while (end > 0 && (sql[end - 1] == ' ' || sql[end - 1] == '\n' || sql[end - 1] == '\t'))
    end--;
  int semicolon = end > 0 && sql[end - 1] == ';';
  if (semicolon)
    end--;
  static const char head[] = " /*traceparent='", tail[] = "'*/";
  size_t size = (size_t)end + sizeof head - 1 + TGO_TRACEPARENT_LEN + sizeof tail - 1 + 1;
  char *buf = malloc(size);
  if (!buf)
    return NULL;
  char *p = buf;
  memcpy(p, sql, (size_t)end);
  p += end;
  memcpy(p, head, sizeof head - 1);
  p += sizeof head - 1;
  memcpy(p, tp, TGO_TRACEPARENT_LEN);
  p += TGO_TRACEPARENT_LEN;
  memcpy(p, tail, sizeof tail - 1);
  p += sizeof tail - 1;
  if (semicolon)
    *p++ = ';';
  PyObject *text = PyUnicode_FromStringAndSize(buf, p - buf);
  free(buf);
  if (!text)
    PyErr_Clear();
  return text;
}

static size_t batch_slot(const PyObject *statement) {
  uintptr_t h = (uintptr_t)statement >> 4;
  return (size_t)(h ^ (h >> 7)) % BATCH_SLOTS;
}

static Py_ssize_t take_batch(DbExecute *d, const PyObject *statement) {
  size_t i = batch_slot(statement);
  if (d->batch_statement[i] != statement)
    return 0;
  d->batch_statement[i] = NULL;
  d->batches_pending--;
  return d->batch_size[i];
}

/* A failed statement's duration, with error.type (the exception's class
 * name) added to its attributes. Called with the exception set; leaves it
 * set. Rare: the statement's shape is looked up again (the entry may have
 * been reused while the GIL was released). */
static void record_failure(DbExecute *d, PyObject *statement, double seconds, const tgo_span *span) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  statement_info *e = statement_lookup(d, statement);
  PyObject *name = type ? PyObject_GetAttrString(type, "__qualname__") : NULL;
  Py_ssize_t len = 0;
  const char *error = name ? tgo__py_utf8(name, &len) : NULL;
  if (e && error) {
    tgo__mattr attrs[8];
    size_t n = metric_attrs(d, e->op, e->table, attrs);
    attrs[n++] = (tgo__mattr){.key = "error.type", .key_len = 10, .type = TGO__MATTR_STR, .len = (uint32_t)len,
                              .v.s = error};
    tgo__metric_record(duration, attrs, n, seconds, span);
  }
  Py_XDECREF(name);
  PyErr_Clear();
  PyErr_Restore(type, value, tb);
}

/* The dialect's method with the caller's arguments: args[-1] is ours to
 * use when nargsf has the offset flag (a bound method puts self there). */
static inline PyObject *call_original(DbExecute *d, PyObject *const *args, size_t nargsf, PyObject *kwargs) {
  return PyObject_VectorcallDict(d->original, args, nargsf, kwargs);
}

/* An untraced statement: only its duration. */
static PyObject *measured_call(DbExecute *d, PyObject *const *args, size_t nargsf, PyObject *kwargs) {
  PyObject *statement = args[1];
  statement_info *e = statement_lookup(d, statement);
  if (!e) {
    PyErr_Clear();
    return call_original(d, args, nargsf, kwargs);
  }
  tgo__mseries *series = e->series;
  uint64_t t0 = now_ns();
  PyObject *result = call_original(d, args, nargsf, kwargs);
  double seconds = (double)(now_ns() - t0) / 1e9;
  if (result) {
    if (series)
      tgo__series_record(duration, series, seconds, NULL);
  }
  else
    record_failure(d, statement, seconds, NULL);
  return result;
}

static int db_ready(DbExecute *d) {
  if (d->original && d->system && d->namespace && d->host && d->connection)
    return 1;
  PyErr_SetString(PyExc_TypeError, "DbExecute is not initialised");
  return 0;
}

/* The span's attributes known before the call, appended unchecked (a new
 * span has none). */
static void statement_attrs(tgo_attrs *a, const statement_info *e) {
  tgo__attrs_fresh(a, 1);
  tgo__attrs_append_run(a, e->attrs);
  tgo__attrs_fresh(a, 0);
}

/* One statement: args[0] the cursor, args[1] the statement, args[2] the
 * parameters (2 <= nargs <= MAX_TRACED_ARGS). */
static PyObject *db_traced(DbExecute *d, PyObject *const *args, size_t nargsf, PyObject *kwargs) {
  Py_ssize_t nargs = TGO__VECTORCALL_NARGS(nargsf);
  tgo_span *parent = tgo__py_current();
  if (!parent || !tgo_span_is_recording(parent))
    return duration ? measured_call(d, args, nargsf, kwargs) : call_original(d, args, nargsf, kwargs);
  PyObject *cursor = args[0], *statement = args[1];
  statement_info *e = statement_lookup(d, statement);
  if (!e)
    return call_original(d, args, nargsf, kwargs);
  tgo_span *span = tgo_span_start(e->shared_name ? NULL : e->name, e->name_len, TGO_KIND_CLIENT, parent, NULL);
  if (e->shared_name)
    tgo__span_set_static_name(span, e->shared_name, e->name_len);
  tgo_attrs *a = tgo_span_attrs(span);
  statement_attrs(a, e);
  Py_ssize_t batch = d->batches_pending ? take_batch(d, statement) : 0;
  if (batch >= 2) /* semantic conventions: a batch is two operations or more */
    tgo_attr_int(a, "db.operation.batch.size", batch);
  if (d->mode == 2 && nargs >= 3) {
    Py_ssize_t rows = PyObject_Size(args[2]);
    if (rows >= 0)
      tgo_attr_int(a, "db.operation.batch.size", rows);
    else
      PyErr_Clear();
  }
  /* The entry may be reused by another thread once the call below releases
   * the GIL: take what is needed after it now. */
  int rows_returned = e->returns_rows;
  tgo__mseries *series = e->series;
  tgo__py_request_count_statement(e->hash, e->text, e->text_len);
  e = NULL;
  PyObject *commented = tgo__sqlcommenter() ? with_sql_comment(statement, span) : NULL;
  PyObject *stack[1 + MAX_TRACED_ARGS];
  if (commented) { /* a copy of the arguments with the statement replaced */
    for (Py_ssize_t i = 0; i < nargs; i++)
      stack[1 + i] = args[i];
    stack[2] = commented;
    args = stack + 1;
    nargsf = (size_t)nargs | PY_VECTORCALL_ARGUMENTS_OFFSET;
  }
  uint64_t t0 = now_ns();
  PyObject *result = call_original(d, args, nargsf, kwargs);
  double seconds = (double)(now_ns() - t0) / 1e9;
  Py_XDECREF(commented);
  if (!result) {
    if (duration)
      record_failure(d, statement, seconds, span);
    tgo__py_record_exception(span, NULL, TGO__PY_EXC_STATUS | TGO__PY_EXC_EVENT, NULL);
  } else {
    if (series)
      tgo__series_record(duration, series, seconds, span);
    record_rows(a, cursor, rows_returned);
  }
  int slow_ms = tgo__slow_query_ms();
  if (slow_ms > 0 && tgo_span_elapsed_ns(span) >= (uint64_t)slow_ms * 1000000u) {
    tgo_attr_bool(a, "db.slow", 1);
    tgo_attr_int(tgo_span_add_event(span, "slow_query", 10), "tigerops.slow_query_ms", slow_ms);
  }
  tgo_span_end(span);
  return result;
}

/* Called with a tuple: functools.partial, f(*args, **kw), keywords. */
static PyObject *db_call(PyObject *op, PyObject *args, PyObject *kwargs) {
  DbExecute *d = (DbExecute *)op;
  if (!db_ready(d))
    return NULL;
  Py_ssize_t n = PyTuple_Check(args) ? PyTuple_Size(args) : -1;
  if (n < 2 || n > MAX_TRACED_ARGS)
    return PyObject_Call(d->original, args, kwargs);
  PyObject *stack[1 + MAX_TRACED_ARGS];
  for (Py_ssize_t i = 0; i < n; i++)
    stack[1 + i] = PyTuple_GetItem(args, i);
  return db_traced(d, stack + 1, (size_t)n | PY_VECTORCALL_ARGUMENTS_OFFSET, kwargs);
}

/* Called the way SQLAlchemy calls, self.dialect.do_execute(cursor,
 * statement, parameters, context): no argument tuple on either side. */
static PyObject *db_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
  DbExecute *d = (DbExecute *)op;
  Py_ssize_t n = TGO__VECTORCALL_NARGS(nargsf);
  if (!kwnames && n >= 2 && n <= MAX_TRACED_ARGS)
    return db_ready(d) ? db_traced(d, args, nargsf, NULL) : NULL;
  return tgo__py_call_via_tuple(db_call, op, args, n, kwnames);
}

static int db_init(PyObject *op, PyObject *args, PyObject *kwds) {
  DbExecute *d = (DbExecute *)op;
  static char *kwlist[] = {"original", "mode", "system", "namespace", "host", "port", "connection", NULL};
  PyObject *original;
  int mode;
  const char *system, *ns, *host, *conn;
  long port;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oisssls", kwlist, &original, &mode, &system, &ns, &host,
                                   &port, &conn))
    return -1;
  if (!PyCallable_Check(original) || mode < 0 || mode > 2) {
    PyErr_SetString(PyExc_ValueError, "DbExecute(original callable, mode 0..2, ...)");
    return -1;
  }
  Py_INCREF(original);
  Py_XSETREF(d->original, original);
  d->mode = mode;
  if (!d->shared) {
    free((char *)d->system);
    free((char *)d->namespace);
    free((char *)d->host);
    free((char *)d->connection);
  }
  const char *in[4] = {system, ns, host, conn};
  size_t len[4];
  const char *shared[4];
  d->shared = 1;
  for (int i = 0; i < 4; i++) {
    len[i] = strlen(in[i]);
    if (!(shared[i] = tgo__intern(in[i], len[i])))
      d->shared = 0;
  }
  if (d->shared) {
    d->system = shared[0];
    d->namespace = shared[1];
    d->host = shared[2];
    d->connection = shared[3];
  } else {
    d->system = strdup(system);
    d->namespace = strdup(ns);
    d->host = strdup(host);
    d->connection = strdup(conn);
  }
  d->system_len = len[0];
  d->namespace_len = len[1];
  d->host_len = len[2];
  d->connection_len = len[3];
  d->port = port;
  d->vectorcall = (void *)db_vectorcall;
  if (!duration)
    duration = tgo__metric_get(TGO__METRIC_HISTOGRAM, "db.client.operation.duration", "s",
                               "Duration of database client operations", duration_bounds,
                               sizeof duration_bounds / sizeof duration_bounds[0]);
  if (!d->system || !d->namespace || !d->host || !d->connection) {
    PyErr_NoMemory();
    return -1;
  }
  return 0;
}

static int db_traverse(PyObject *op, visitproc visit, void *arg) {
  DbExecute *d = (DbExecute *)op;
  Py_VISIT(d->original);
  Py_VISIT(Py_TYPE(op));
  return 0;
}

static int db_clear(PyObject *op) {
  DbExecute *d = (DbExecute *)op;
  Py_CLEAR(d->original);
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    d->cache_keys[i] = NULL;
    entry_clear(&d->cache[i]);
  }
  return 0;
}

static void db_dealloc(PyObject *op) {
  DbExecute *d = (DbExecute *)op;
  PyTypeObject *tp = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  db_clear(op);
  if (!d->shared) {
    free((char *)d->system);
    free((char *)d->namespace);
    free((char *)d->host);
    free((char *)d->connection);
  }
  PyObject_GC_Del(op);
  Py_DECREF(tp);
}

static PyObject *db_get_wrapped(PyObject *op, void *closure) {
  (void)closure;
  DbExecute *d = (DbExecute *)op;
  PyObject *o = d->original ? d->original : Py_None;
  Py_INCREF(o);
  return o;
}

/* next_batch(statement, rows) before a batch, next_batch(statement, 0)
 * after it (a no-op when do_execute took it). */
static PyObject *db_next_batch(PyObject *op, PyObject *args) {
  DbExecute *d = (DbExecute *)op;
  PyObject *statement;
  Py_ssize_t size;
  if (!PyArg_ParseTuple(args, "On", &statement, &size))
    return NULL;
  size_t i = batch_slot(statement);
  if (d->batch_statement[i] == statement || (size > 0 && d->batch_statement[i])) {
    d->batch_statement[i] = NULL; /* done with, or taken over by a newer batch */
    d->batches_pending--;
  }
  if (size > 0) {
    d->batch_statement[i] = statement;
    d->batch_size[i] = size;
    d->batches_pending++;
  }
  Py_RETURN_NONE;
}

static PyMethodDef db_methods[] = {
    {"next_batch", db_next_batch, METH_VARARGS,
     "next_batch(statement, rows): the next call with this statement object runs a batch of rows; "
     "next_batch(statement, 0) forgets it"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef db_getset[] = {
    {"__wrapped__", db_get_wrapped, NULL, "the dialect method under the agent", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef db_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(DbExecute, vectorcall), READONLY, NULL},
    {"statements_made", T_PYSSIZET, offsetof(DbExecute, statements_made), READONLY,
     "how many times a statement was normalised and cached: once each while the cache holds it"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot db_slots[] = {
    {Py_tp_members, db_members},
    {Py_tp_call, db_call},
    {Py_tp_init, db_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_getset, db_getset},
    {Py_tp_methods, db_methods},
    {Py_tp_traverse, db_traverse},
    {Py_tp_clear, db_clear},
    {Py_tp_dealloc, db_dealloc},
    {Py_tp_doc, (void *)"DbExecute(original, mode, system, namespace, host, port, connection)"},
    {0, NULL},
};

static PyType_Spec db_spec = {
    "_tigerops.DbExecute", sizeof(DbExecute), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL, db_slots,
};

int tgo__py_db_type_init(PyObject *module) {
  tgo__py_db_execute_type = (PyTypeObject *)PyType_FromSpec(&db_spec);
  if (!tgo__py_db_execute_type)
    return -1;
  Py_INCREF(tgo__py_db_execute_type);
  if (PyModule_AddObject(module, "DbExecute", (PyObject *)tgo__py_db_execute_type) < 0) {
    Py_DECREF(tgo__py_db_execute_type);
    return -1;
  }
  return 0;
}
