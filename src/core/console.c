/* The console exporter: holds a trace's spans until its local root ends,
 * then prints the trace as an indented tree with durations, on stderr. */
#include "tgo-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PENDING 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tgo_span *pending[MAX_PENDING];
static size_t n_pending;

static const char *kind_name(int k) {
  static const char *const names[] = {"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER",
                                      "CONSUMER"};
  return k >= 0 && k <= 5 ? names[k] : "?";
}

typedef struct {
  char *data;
  size_t len, cap;
} text;

static void out(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 4096;
    while (cap < t->len + (size_t)n + 1)
      cap *= 2;
    char *p = realloc(t->data, cap);
    if (!p)
      return;
    t->data = p;
    t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

static const tgo__attr *find_attr(const tgo_span *s, const char *key) {
  for (const tgo__attr *a = s->attrs.head; a; a = a->next)
    if (!strcmp(a->key, key))
      return a;
  return NULL;
}

static void print_span(text *t, tgo_span *s, int depth) {
  double ms = (double)(s->end_ns - s->start_ns) / 1e6;
  out(t, "%*s%.*s  %s  %.3f ms", 2 + depth * 2, "", (int)s->name_len, s->name ? s->name : "",
      kind_name(s->kind), ms);
  const tgo__attr *st = find_attr(s, "http.response.status_code");
  if (st && st->type == TGO__V_INT)
    out(t, "  [%lld]", (long long)st->v.i);
  /* Whether a cache lookup hit is what a reader of the tree looks for first. */
  const tgo__attr *hit = find_attr(s, "cache.hit");
  if (hit && hit->type == TGO__V_BOOL)
    out(t, "  [%s]", hit->v.b ? "hit" : "miss");
  if (s->status == TGO_STATUS_ERROR) {
    out(t, "  ERROR");
    /* The exception's type, as a traceback's last line shows it. */
    const tgo__attr *et = find_attr(s, "error.type");
    if (et && et->type == TGO__V_STR && s->status_msg_len)
      out(t, ": %.*s", (int)et->n, et->v.s);
    if (s->status_msg_len)
      out(t, ": %.*s", (int)s->status_msg_len, s->status_msg);
  }
  out(t, "\n");
}

/* Depth-first over the spans of one trace, children in start order. */
static void print_children(text *t, tgo_span **spans, size_t n, const uint8_t *parent, int depth) {
  for (;;) {
    tgo_span *next = NULL;
    for (size_t i = 0; i < n; i++) {
      tgo_span *s = spans[i];
      if (!s || s->parent_is_remote || !s->has_parent || memcmp(s->parent_span_id, parent, 8))
        continue;
      if (!next || s->start_ns < next->start_ns)
        next = s;
    }
    if (!next)
      return;
    print_span(t, next, depth);
    for (size_t i = 0; i < n; i++)
      if (spans[i] == next)
        spans[i] = NULL;
    print_children(t, spans, n, next->span_id, depth + 1);
    tgo_span_unref(next);
  }
}

static void print_trace(tgo_span *root, tgo_span **members, size_t n) {
  text t = {0};
  char trace_hex[33];
  tgo__hex_encode(root->trace_id, 16, trace_hex);
  trace_hex[32] = '\0';
  out(&t, "tigerops trace %s\n", trace_hex);
  print_span(&t, root, 0);
  print_children(&t, members, n, root->span_id, 1);
  /* Spans whose parent is not in this trace part (ended after the root). */
  for (size_t i = 0; i < n; i++) {
    if (members[i]) {
      print_span(&t, members[i], 1);
      tgo_span_unref(members[i]);
    }
  }
  if (t.data) {
    tgo__scrub(t.data, t.len);
    tgo__pii_mask(t.data, t.len);
    ssize_t w = write(STDERR_FILENO, t.data, t.len);
    (void)w;
  }
  free(t.data);
  tgo_span_unref(root);
}

/* Takes the reference. */
static void console_add(tgo_span *s) {
  pthread_mutex_lock(&lock);
  if (!tgo__span_is_local_root(s)) {
    if (n_pending == MAX_PENDING) {
      pthread_mutex_unlock(&lock);
      print_trace(s, NULL, 0);
      return;
    }
    pending[n_pending++] = s;
    pthread_mutex_unlock(&lock);
    return;
  }
  tgo_span *members[MAX_PENDING];
  size_t n = 0, keep = 0;
  for (size_t i = 0; i < n_pending; i++) {
    if (!memcmp(pending[i]->trace_id, s->trace_id, 16))
      members[n++] = pending[i];
    else
      pending[keep++] = pending[i];
  }
  n_pending = keep;
  pthread_mutex_unlock(&lock);
  print_trace(s, members, n);
}

/* Spans held for the parent's traces are the parent's to print. */
static void console_fork_child(void) {
  pthread_mutex_init(&lock, NULL);
  for (size_t i = 0; i < n_pending; i++)
    tgo_span_unref(pending[i]);
  n_pending = 0;
}

/* Prints the spans still waiting for their root, as orphans. */
static void console_flush(void) {
  pthread_mutex_lock(&lock);
  while (n_pending) {
    tgo_span *s = pending[--n_pending];
    pthread_mutex_unlock(&lock);
    print_trace(s, NULL, 0);
    pthread_mutex_lock(&lock);
  }
  pthread_mutex_unlock(&lock);
}

static void console_export(tgo_span **spans, size_t n, const atomic_int *abort_flag) {
  (void)abort_flag;
  for (size_t i = 0; i < n; i++)
    console_add(spans[i]);
  atomic_fetch_add_explicit(&tgo__stats.spans_exported, n, memory_order_relaxed);
}

const tgo__exporter tgo__exporter_console = {"console", console_export, console_flush,
                                             console_fork_child};
