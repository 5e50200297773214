/* Span lifecycle and attribute storage. A recording span is one malloc with
 * an inline arena; everything set on it is copied there, so the exporter
 * thread reads plain C memory and never Python objects. */
#include "tgo-internal.h"
#include "tgo-copy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static __thread tgo_span *current_span;

tgo_span *tgo_current(void) { return current_span; }

tgo_span *tgo_set_current(tgo_span *span) {
  tgo_span *prev = current_span;
  current_span = span;
  return prev;
}

/* Past the inline arena: chained chunks, bounded so one runaway span
 * cannot take the host's memory. n is already rounded. */
void *tgo__span_alloc_slow(tgo_span *s, size_t n) {
  if (s->arena_used + n > TGO__SPAN_MAX_ARENA)
    return NULL;
  size_t size = n > TGO__SPAN_CHUNK ? n : TGO__SPAN_CHUNK;
  tgo__chunk *c = tgo__chunk_push(&s->chunks, size);
  if (!c)
    return NULL;
  s->arena_used += size;
  s->arena_pos = c->data + n;
  s->arena_left = size - n;
  return c->data;
}

/* OTLP strings must be valid UTF-8 (collectors reject the whole batch
 * otherwise); invalid bytes become '?' so lengths never change. */
void tgo__utf8_repair(unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c <= 0xDF ? 1 : 0;
    if (c >= 0xF5)
      need = 0;
    int ok = need != 0;
    for (size_t k = 1; ok && k <= need; k++)
      ok = i + k < n && (p[i + k] & 0xC0) == 0x80;
    if (ok && need == 2 && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F)))
      ok = 0; /* overlong, or a UTF-16 surrogate */
    if (ok && need == 3 && ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F)))
      ok = 0;
    if (!ok) {
      p[i++] = '?';
      continue;
    }
    i += need + 1;
  }
}

int tgo__is_ascii(const char *p, size_t n) { return tgo__ascii_run(p, n); }

/* Where to cut s (longer than limit) at most limit bytes in without
 * splitting a character: back over at most three continuation bytes, to the
 * lead byte of the character the cut would split. Invalid runs of
 * continuation bytes are cut at the limit (repair turns them into '?'). */
size_t tgo__utf8_cut(const char *s, size_t limit) {
  size_t k = limit;
  while (k > 0 && limit - k < 3 && ((unsigned char)s[k] & 0xC0) == 0x80)
    k--;
  return ((unsigned char)s[k] & 0xC0) == 0xC0 && k < limit ? k : limit;
}

/* Copies at most the configured value limit, cut on a UTF-8 boundary. */
static inline size_t within_value_limit(const char *src, size_t n) {
  size_t limit = (size_t)tgo__cfg.attr_value_limit;
  return TGO__UNLIKELY(n > limit) ? tgo__utf8_cut(src, limit) : n;
}

/* n bytes of src at p, terminated, invalid UTF-8 repaired. */
static inline __attribute__((always_inline)) void store_text(char *p, const char *src, size_t n) {
  if (!tgo__copy_short_ascii(p, src, n))
    tgo__utf8_repair((unsigned char *)p, n);
  p[n] = '\0';
}

const char *tgo__span_strdup(tgo_span *s, const char *src, size_t *len) {
  size_t n = within_value_limit(src, *len);
  char *p = tgo__span_alloc(s, n + 1);
  if (!p)
    return NULL;
  store_text(p, src, n);
  *len = n;
  return p;
}

static void baggage_unref(tgo__baggage *b) {
  if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
    free(b);
}

/* One freed span kept per thread for that thread's next start. A thread
 * whose traces are dropped (head sampling, tail keep) frees its root span
 * before it starts the next, and the allocator's round trip cost about 300
 * instructions a request (a span without arena came from calloc, which
 * glibc serves past its per-thread cache). Freed when the thread exits.
 * Not under ASan, which would then miss a use after free. */
#define TGO__SPARE_SPAN (!TGO__ASAN)

/* Recording spans are freed on another thread than the one that made
 * them: the exporter frees each once it is encoded. glibc takes such a
 * chunk back through the exporter's cache or the arena's lock, and the
 * request thread's next malloc misses its own cache: the 100% figure moved
 * by up to ~1,000 instructions a request between runs of one build, and a
 * SQL statement paid ~140 in the arena's lock. So a freed recording span
 * goes on a shared stack of its size instead, and a thread starting a span
 * takes the whole stack when its own list is empty. Any thread pushes (a
 * CAS on the head, writing only its own span); a taker swaps the head for
 * NULL, so no span is ever popped from the shared stack alone and ABA
 * cannot happen. Bounded: RETURNED_MAX spans per size on the shared stack
 * (an export batch's worth, which the exporter frees together: about
 * 700 KB of server spans at most), and TAKEN_MAX on each thread's list,
 * which is freed when the thread exits. */
#define RETURNED_MAX 512
#define TAKEN_MAX 64
enum { RETURNED_LEAF, RETURNED_ROOT, RETURNED_SIZES };
static _Atomic(tgo_span *) returned_spans[RETURNED_SIZES];
static atomic_uint returned_count[RETURNED_SIZES];

static __thread tgo_span *spare_span;
static __thread tgo_span *taken_spans[RETURNED_SIZES]; /* this thread's list */
static __thread uint8_t spare_span_allowed; /* the thread's exit frees them */
static pthread_key_t spare_span_key;
static pthread_once_t spare_span_once = PTHREAD_ONCE_INIT;
static int spare_span_key_made;

static void free_list(tgo_span *s) {
  while (s) {
    tgo_span *next = s->returned_next;
    free(s);
    s = next;
  }
}

static void spare_span_thread_exit(void *unused) {
  (void)unused;
  spare_span_allowed = 0; /* a span freed by a later destructor registers again */
  free(spare_span);
  spare_span = NULL;
  for (int i = 0; i < RETURNED_SIZES; i++) {
    free_list(taken_spans[i]);
    taken_spans[i] = NULL;
  }
}

/* The thread that exits the process runs no key destructor. */
__attribute__((destructor)) static void spare_span_process_exit(void) { spare_span_thread_exit(NULL); }

static void spare_span_key_make(void) {
  spare_span_key_made = pthread_key_create(&spare_span_key, spare_span_thread_exit) == 0;
}

/* Whether this thread may keep spans: its exit will free them. */
static int thread_may_keep_spans(void) {
  if (TGO__LIKELY(spare_span_allowed))
    return 1;
  pthread_once(&spare_span_once, spare_span_key_make);
  if (!spare_span_key_made || pthread_setspecific(spare_span_key, &spare_span_allowed) != 0)
    return 0;
  spare_span_allowed = 1;
  return 1;
}

static int spare_span_keep(tgo_span *s) {
  if (!TGO__SPARE_SPAN || spare_span || !thread_may_keep_spans())
    return 0;
  spare_span = s;
  return 1;
}

static inline int returned_size(size_t inline_cap) {
  return inline_cap == TGO__SPAN_INLINE_ROOT ? RETURNED_ROOT
         : inline_cap == TGO__SPAN_INLINE_LEAF ? RETURNED_LEAF
                                               : -1;
}

/* Pushes the chain first..last (ours alone) onto the shared stack. */
static void push_returned(int size, tgo_span *first, tgo_span *last) {
  tgo_span *head = atomic_load_explicit(&returned_spans[size], memory_order_relaxed);
  do
    last->returned_next = head;
  while (!atomic_compare_exchange_weak_explicit(&returned_spans[size], &head, first, memory_order_release,
                                                memory_order_relaxed));
}

static int span_return(tgo_span *s) {
  int size = returned_size(s->inline_cap);
  if (!TGO__SPARE_SPAN || size < 0)
    return 0;
  if (atomic_fetch_add_explicit(&returned_count[size], 1, memory_order_relaxed) >= RETURNED_MAX) {
    atomic_fetch_sub_explicit(&returned_count[size], 1, memory_order_relaxed);
    return 0;
  }
  push_returned(size, s, s);
  return 1;
}

/* Up to TAKEN_MAX spans of the shared stack as this thread's list: the
 * stack is taken whole and the rest pushed back as one chain. */
static tgo_span *take_returned(int size) {
  if (!atomic_load_explicit(&returned_spans[size], memory_order_relaxed) || !thread_may_keep_spans())
    return NULL;
  tgo_span *list = atomic_exchange_explicit(&returned_spans[size], NULL, memory_order_acquire);
  if (!list)
    return NULL;
  unsigned n = 1;
  tgo_span *last = list;
  for (; n < TAKEN_MAX && last->returned_next; n++)
    last = last->returned_next;
  tgo_span *rest = last->returned_next;
  last->returned_next = NULL;
  atomic_fetch_sub_explicit(&returned_count[size], n, memory_order_relaxed);
  if (rest) {
    tgo_span *rest_tail = rest;
    while (rest_tail->returned_next)
      rest_tail = rest_tail->returned_next;
    push_returned(size, rest, rest_tail);
  }
  return list;
}

static tgo_span *span_alloc(size_t inline_cap) {
  tgo_span *s = spare_span;
  if (s && s->inline_cap == inline_cap) {
    spare_span = NULL;
    return s;
  }
  int size = returned_size(inline_cap);
  if (TGO__SPARE_SPAN && size >= 0) {
    s = taken_spans[size];
    if (!s)
      s = take_returned(size);
    if (s) {
      taken_spans[size] = s->returned_next;
      return s;
    }
  }
  return malloc(sizeof(tgo_span) + inline_cap);
}

void tgo__span_free(tgo_span *s) {
  baggage_unref(s->baggage);
  if (TGO__UNLIKELY(s->deferred))
    tgo__tail_span_freed(s);
  tgo__chunks_free(s->chunks);
  if (spare_span_keep(s))
    return;
  if (!span_return(s))
    free(s);
}

static tgo_span noop_span = {.refs = 1 << 30, .ended = 1};

tgo_span *tgo_span_invalid(void) { return &noop_span; }

tgo_span *tgo_span_start(const char *name, size_t name_len, tgo_kind kind, tgo_span *parent,
                         const tgo_span_context *remote) {
  if (TGO__UNLIKELY(!tgo__cfg.enabled))
    return &noop_span;
  int parent_sampled = -1, parent_remote = 0;
  if (parent && parent != &noop_span)
    parent_sampled = parent->flags & 1;
  else if (remote) {
    parent = NULL;
    parent_sampled = (remote->flags & TGO__FLAG_DEFERRED) ? -1 : remote->flags & 1;
    parent_remote = 1;
  } else {
    parent = NULL;
  }
  uint8_t trace_id[16];
  if (parent)
    memcpy(trace_id, parent->trace_id, 16);
  else if (remote)
    memcpy(trace_id, remote->trace_id, 16);
  else
    tgo__new_trace_id(trace_id);
  int in_held_trace = parent && parent->deferred;
  int decision = in_held_trace ? TGO__SAMPLE_DEFER
                               : tgo__sample(&tgo__cfg, trace_id, parent_sampled, parent_remote);
  if (decision == TGO__SAMPLE_DEFER && !tgo__tail_admit(!in_held_trace))
    decision = TGO__SAMPLE_DROP;
  int sampled = decision != TGO__SAMPLE_DROP;

  size_t inline_cap = !sampled ? 0
                      : kind == TGO_KIND_SERVER || kind == TGO_KIND_CONSUMER ? TGO__SPAN_INLINE_ROOT
                                                                             : TGO__SPAN_INLINE_LEAF;
  tgo_span *s = span_alloc(inline_cap);
  if (TGO__UNLIKELY(!s)) {
    if (decision == TGO__SAMPLE_DEFER)
      tgo__tail_unadmit();
    TGO__LOG_ONCE(TGO_LOG_ERROR, "out of memory starting a span; tracing continues without it");
    return &noop_span;
  }
  memset(s, 0, sizeof *s);
  atomic_init(&s->refs, 1);
  s->recording = (uint8_t)sampled;
  s->flags = (uint8_t)(decision == TGO__SAMPLE_KEEP);
  if (decision == TGO__SAMPLE_DEFER) {
    s->deferred = 1;
    s->local_root = in_held_trace ? parent->local_root : s;
    if (s->local_root != s)
      tgo_span_ref(s->local_root);
  }
  s->kind = (uint8_t)kind;
  s->attrs.span = s;
  s->arena_pos = s->arena;
  s->arena_left = inline_cap;
  s->inline_cap = (uint32_t)inline_cap;
  memcpy(s->trace_id, trace_id, 16);
  tgo__new_span_id(s->span_id);
  if (parent) {
    memcpy(s->parent_span_id, parent->span_id, 8);
    s->has_parent = 1;
  } else if (remote) {
    memcpy(s->parent_span_id, remote->span_id, 8);
    s->has_parent = 1;
    s->parent_is_remote = 1;
  }
  const char *ts = parent ? parent->tracestate : remote ? remote->tracestate : NULL;
  size_t ts_len = parent ? parent->tracestate_len : remote ? remote->tracestate_len : 0;
  if (ts && ts_len && sampled) {
    s->tracestate = tgo__span_strdup(s, ts, &ts_len);
    s->tracestate_len = s->tracestate ? (uint32_t)ts_len : 0;
  }
  if (parent && parent->baggage) {
    s->baggage = parent->baggage;
    atomic_fetch_add_explicit(&s->baggage->refs, 1, memory_order_relaxed);
  }
  atomic_fetch_add_explicit(&tgo__stats.spans_started, 1, memory_order_relaxed);
  if (sampled) {
    /* A child's wall-clock start is its parent's plus the monotonic time
     * since: one clock read less per child span (a SQL statement's), and
     * the child never starts before its parent when the wall clock steps. */
    s->mono_start_ns = tgo__now_ns(CLOCK_MONOTONIC);
    if (parent && parent->recording && parent->start_ns && s->mono_start_ns >= parent->mono_start_ns)
      s->start_ns = parent->start_ns + (s->mono_start_ns - parent->mono_start_ns);
    else
      s->start_ns = tgo__now_ns(CLOCK_REALTIME);
    tgo_span_set_name(s, name, name_len);
  }
  return s;
}

void tgo_span_set_name(tgo_span *s, const char *name, size_t len) {
  if (!s->recording || s->ended || !name)
    return;
  const char *p = tgo__span_strdup(s, name, &len);
  if (p) {
    s->name = p;
    s->name_len = (uint32_t)len;
    s->name_immortal = 0;
  }
}

void tgo__span_set_static_name(tgo_span *s, const char *name, size_t len) {
  if (!s->recording || s->ended || !name)
    return;
  size_t limit = (size_t)tgo__cfg.attr_value_limit;
  s->name = name;
  s->name_len = (uint32_t)(len > limit ? tgo__utf8_cut(name, limit) : len);
  s->name_immortal = 1;
}

void tgo_span_ref(tgo_span *s) {
  if (s != &noop_span)
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void tgo_span_unref(tgo_span *s) {
  if (s == &noop_span)
    return;
  if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
    tgo__span_free(s);
}

void tgo_span_end(tgo_span *s) {
  if (s == &noop_span || s->ended)
    return;
  s->ended = 1;
  atomic_fetch_add_explicit(&tgo__stats.spans_ended, 1, memory_order_relaxed);
  if (!s->recording) {
    tgo_span_unref(s);
    return;
  }
  if (TGO__LIKELY(!s->end_ns)) /* else given by tgo__span_end_at */
    s->end_ns = s->start_ns + (tgo__now_ns(CLOCK_MONOTONIC) - s->mono_start_ns);
  if (TGO__UNLIKELY(s->deferred))
    tgo__tail_end(s);
  else
    tgo__pipeline_submit(s);
}

uint64_t tgo_span_elapsed_ns(const tgo_span *s) {
  return s->recording ? tgo__now_ns(CLOCK_MONOTONIC) - s->mono_start_ns : 0;
}

int tgo_span_is_recording(const tgo_span *s) { return s->recording && !s->ended; }
int tgo_span_is_ended(const tgo_span *s) { return s->ended; }

void tgo_span_get_context(const tgo_span *s, tgo_span_context *out) {
  memcpy(out->trace_id, s->trace_id, 16);
  memcpy(out->span_id, s->span_id, 8);
  out->flags = s->flags;
  out->is_remote = 0;
  out->tracestate = s->tracestate;
  out->tracestate_len = s->tracestate_len;
}

void tgo__span_set_baggage(tgo_span *s, const char *baggage, size_t len) {
  if (s == &noop_span || !baggage || !len || len > TGO__BAGGAGE_MAX_BYTES)
    return;
  tgo__baggage *b = malloc(sizeof *b + len);
  if (!b)
    return;
  atomic_init(&b->refs, 1);
  b->len = (uint32_t)len;
  memcpy(b->data, baggage, len);
  baggage_unref(s->baggage);
  s->baggage = b;
}

const char *tgo__span_baggage(const tgo_span *s, size_t *len) {
  *len = s->baggage ? s->baggage->len : 0;
  return s->baggage ? s->baggage->data : NULL;
}

void tgo_span_set_status(tgo_span *s, tgo_status code, const char *msg, size_t msg_len) {
  if (!s->recording || s->ended)
    return;
  /* OK is final; UNSET never overrides (OpenTelemetry span status rules). */
  if (s->status == TGO_STATUS_OK || code == TGO_STATUS_UNSET)
    return;
  s->status = (uint8_t)code;
  s->status_msg = NULL;
  s->status_msg_len = 0;
  if (code == TGO_STATUS_ERROR && msg && msg_len) {
    s->status_msg = tgo__span_strdup(s, msg, &msg_len);
    s->status_msg_len = s->status_msg ? (uint32_t)msg_len : 0;
  }
}

tgo_status tgo_span_get_status(const tgo_span *s) { return (tgo_status)s->status; }

void tgo_span_set_kind(tgo_span *s, tgo_kind kind) {
  if (s->recording && !s->ended)
    s->kind = (uint8_t)kind;
}

tgo_attrs *tgo_span_attrs(tgo_span *s) { return s->recording && !s->ended ? &s->attrs : NULL; }

tgo_attrs *tgo_span_add_event(tgo_span *s, const char *name, size_t name_len) {
  if (!s->recording || s->ended)
    return NULL;
  if (s->n_events >= TGO__SPAN_MAX_EVENTS) {
    s->dropped_events++;
    return NULL;
  }
  tgo__event *e = tgo__span_alloc(s, sizeof *e);
  const char *n = e ? tgo__span_strdup(s, name ? name : "", &name_len) : NULL;
  if (!n) {
    s->dropped_events++;
    return NULL;
  }
  memset(e, 0, sizeof *e);
  e->name = n;
  e->name_len = (uint32_t)name_len;
  e->time_ns = s->start_ns + (tgo__now_ns(CLOCK_MONOTONIC) - s->mono_start_ns);
  e->attrs.span = s;
  if (s->events_tail)
    s->events_tail->next = e;
  else
    s->events = e;
  s->events_tail = e;
  s->n_events++;
  return &e->attrs;
}

tgo_attrs *tgo__span_add_link(tgo_span *s, const tgo_span_context *ctx) {
  if (!s->recording || s->ended || !ctx)
    return NULL;
  if (s->n_links >= TGO__SPAN_MAX_LINKS) {
    s->dropped_links++;
    return NULL;
  }
  tgo__link *l = tgo__span_alloc(s, sizeof *l);
  if (!l) {
    s->dropped_links++;
    return NULL;
  }
  memset(l, 0, sizeof *l);
  memcpy(l->trace_id, ctx->trace_id, 16);
  memcpy(l->span_id, ctx->span_id, 8);
  l->flags = ctx->flags & 1;
  l->is_remote = ctx->is_remote;
  if (ctx->tracestate && ctx->tracestate_len) {
    size_t n = ctx->tracestate_len;
    l->tracestate = tgo__span_strdup(s, ctx->tracestate, &n);
    l->tracestate_len = l->tracestate ? (uint32_t)n : 0;
  }
  l->attrs.span = s;
  if (s->links_tail)
    s->links_tail->next = l;
  else
    s->links = l;
  s->links_tail = l;
  s->n_links++;
  return &l->attrs;
}

/* The monotonic start moves with it, so the duration stays end - start. */
void tgo__span_set_start_time(tgo_span *s, uint64_t unix_ns) {
  if (!s->recording || s->ended || !unix_ns)
    return;
  int64_t shift = (int64_t)(unix_ns - s->start_ns);
  s->start_ns = unix_ns;
  s->mono_start_ns = (uint64_t)((int64_t)s->mono_start_ns + shift);
}

void tgo__span_end_at(tgo_span *s, uint64_t unix_ns) {
  if (s == &noop_span || s->ended)
    return;
  if (s->recording && unix_ns) /* never before the start: a negative duration */
    s->end_ns = unix_ns < s->start_ns ? s->start_ns : unix_ns;
  tgo_span_end(s);
}

const char *tgo_attrs_key(tgo_attrs *a, const char *key, size_t len) {
  if (!a || !key || !len || len > 255) /* OpenTelemetry keys are non-empty */
    return NULL;
  char *p = tgo__span_alloc(a->span, len + 1);
  if (p) {
    memcpy(p, key, len);
    p[len] = '\0';
  }
  return p;
}

static inline uint32_t key_hash(const char *key, size_t len) {
  return (uint32_t)len | (uint32_t)(unsigned char)key[0] << 16 |
         (uint32_t)(unsigned char)key[len ? len - 1 : 0] << 24;
}

int tgo_attrs_has(const tgo_attrs *a, const char *key) {
  if (!a || !key || !*key)
    return 0;
  size_t klen = strlen(key);
  uint32_t h = key_hash(key, klen);
  for (const tgo__attr *it = a->head; it; it = it->next)
    if (it->key_hash == h && (it->key == key || !memcmp(it->key, key, klen)))
      return 1;
  return 0;
}

/* it, its key set, at the end of the span's list. */
static inline tgo__attr *attr_link(tgo_attrs *a, tgo__attr *it, const char *key, size_t klen, uint32_t h) {
  it->next = NULL;
  it->key = key;
  it->key_len = (uint32_t)klen;
  it->key_hash = h;
  if (a->tail)
    a->tail->next = it;
  else
    a->head = it;
  a->tail = it;
  a->count++;
  return it;
}

/* A new attribute at the end of the span's list, or NULL (no memory). */
static tgo__attr *attr_new(tgo_attrs *a, const char *key, size_t klen, uint32_t h) {
  tgo__attr *it = tgo__span_alloc(a->span, sizeof *it);
  if (!it)
    return NULL;
  memset(it, 0, sizeof *it);
  return attr_link(a, it, key, klen, h);
}

/* Finds the slot for key (replacing an existing value), or appends one. */
static tgo__attr *attr_slot(tgo_attrs *a, const char *key) {
  if (!a || !key || !*key || a->span->ended)
    return NULL;
  a->checked = 1;
  size_t klen = strlen(key);
  uint32_t h = key_hash(key, klen);
  for (tgo__attr *it = a->head; it; it = it->next)
    if (it->key_hash == h && (it->key == key || !memcmp(it->key, key, klen))) {
      it->immortal = 0; /* whatever replaces the value says so again */
      return it;
    }
  tgo__attr *it = a->count < TGO__SPAN_MAX_ATTRS ? attr_new(a, key, klen, h) : NULL;
  if (!it)
    a->dropped++;
  return it;
}

/* A new key's slot on a span that has no attribute yet, or NULL: then the
 * caller takes the checked path. Skips the strlen and the duplicate scan,
 * which a request span's first dozen attributes paid quadratically. */
static tgo__attr *attr_append(tgo_attrs *a, const char *key, size_t klen) {
  if (!a || a->span->ended)
    return NULL;
  tgo__attr *it = a->count < TGO__SPAN_MAX_ATTRS ? attr_new(a, key, klen, key_hash(key, klen)) : NULL;
  if (!it)
    a->dropped++; /* counted as the checked path counts it */
  return it;
}

/* A fresh attribute with extra bytes after it, taken from the span's arena
 * in one bump, or NULL when the arena must grow (or the span cannot take
 * it): then the caller goes the general way. Every field is written here or
 * by the caller, so there is no memset; the refill stays out of line, so
 * this saves no registers. A request span makes a dozen of these. */
static inline tgo__attr *attr_bump(tgo_attrs *a, const char *key, uint32_t hash, size_t extra) {
  tgo_span *s = a->span;
  size_t need = sizeof(tgo__attr) + ((extra + 7) & ~(size_t)7);
  if (TGO__UNLIKELY(s->ended || a->count >= TGO__SPAN_MAX_ATTRS || need > s->arena_left))
    return NULL;
  tgo__attr *it = (tgo__attr *)s->arena_pos;
  s->arena_pos += need;
  s->arena_left -= need;
  return attr_link(a, it, key, hash & 0xFFFF, hash);
}

/* it's value a copy of val, or "" when the span has no memory for it. */
static void set_copied_str(tgo__attr *it, tgo_span *s, const char *val, size_t len) {
  const char *v = tgo__span_strdup(s, val ? val : "", &len);
  it->type = TGO__V_STR;
  it->v.s = v ? v : "";
  it->n = v ? (uint32_t)len : 0;
}

static __attribute__((noinline)) void attr_str_append(tgo_attrs *a, const char *key, size_t klen, const char *val,
                                                      size_t len) {
  tgo__attr *it = attr_append(a, key, klen); /* zeroed: not immortal */
  if (it)
    set_copied_str(it, a->span, val, len);
}

void tgo__attr_str_new(tgo_attrs *a, const char *key, uint32_t hash, const char *val, size_t len) {
  if (!a || !a->fresh) {
    tgo_attr_str(a, key, val, len);
    return;
  }
  if (!val) {
    val = "";
    len = 0;
  }
  len = within_value_limit(val, len);
  tgo__attr *it = attr_bump(a, key, hash, len + 1);
  if (TGO__UNLIKELY(!it)) {
    attr_str_append(a, key, hash & 0xFFFF, val, len);
    return;
  }
  char *p = (char *)(it + 1);
  store_text(p, val, len);
  it->type = TGO__V_STR;
  it->immortal = 0;
  it->v.s = p;
  it->n = (uint32_t)len;
}

void tgo__attr_int_new(tgo_attrs *a, const char *key, uint32_t hash, int64_t val) {
  if (!a || !a->fresh) {
    tgo_attr_int(a, key, val);
    return;
  }
  tgo__attr *it = attr_bump(a, key, hash, 0);
  if (TGO__UNLIKELY(!it))
    it = attr_append(a, key, hash & 0xFFFF);
  if (it) {
    it->type = TGO__V_INT;
    it->immortal = 0;
    it->n = 0;
    it->v.i = val;
  }
}

void tgo__attrs_fresh(tgo_attrs *a, int on) {
  if (a)
    a->fresh = (uint8_t)(on && !a->checked);
}

void tgo_attr_str(tgo_attrs *a, const char *key, const char *val, size_t len) {
  tgo__attr *it = attr_slot(a, key); /* a reused slot's immortal mark is cleared */
  if (it)
    set_copied_str(it, a->span, val, len);
}

static void set_static_str(tgo__attr *it, const char *val, size_t len) {
  size_t limit = (size_t)tgo__cfg.attr_value_limit;
  if (len > limit)
    len = tgo__utf8_cut(val, limit);
  it->type = TGO__V_STR;
  it->v.s = val;
  it->n = (uint32_t)len;
  it->immortal = 1;
}

void tgo__attr_set_static_str(tgo_attrs *a, const char *key, const char *val, size_t len) {
  tgo__attr *it = attr_slot(a, key);
  if (it)
    set_static_str(it, val, len);
}

void tgo__attr_static_new(tgo_attrs *a, const char *key, uint32_t hash, const char *val, size_t len) {
  if (!a || !a->fresh) {
    tgo__attr_set_static_str(a, key, val, len);
    return;
  }
  tgo__attr *it = attr_bump(a, key, hash, 0);
  if (TGO__UNLIKELY(!it))
    it = attr_append(a, key, hash & 0xFFFF);
  if (it)
    set_static_str(it, val, len);
}

/* A run's value beyond what its attribute holds: the whole length (the
 * attribute's is cut at the limit of when the run was made), and whether
 * each span gets a copy rather than the pointer. */
typedef struct {
  size_t len;
  int copied;
} run_value;

struct tgo__attr_run {
  uint32_t n, cap;
  int unusable;    /* an attribute did not fit */
  int copies;      /* some values are copied per span: no one-copy append */
  int value_limit; /* the limit the values were cut to */
  run_value *values; /* cap of them, after attrs */
  tgo__attr attrs[];
};

tgo__attr_run *tgo__attr_run_new(unsigned cap) {
  tgo__attr_run *run = calloc(1, sizeof *run + cap * (sizeof(tgo__attr) + sizeof(run_value)));
  if (run) {
    run->cap = cap;
    run->value_limit = tgo__cfg.attr_value_limit;
    run->values = (run_value *)&run->attrs[cap];
  }
  return run;
}

void tgo__attr_run_free(tgo__attr_run *run) { free(run); }

static tgo__attr *run_slot(tgo__attr_run *run, const char *key, uint32_t hash) {
  if (!run)
    return NULL;
  if (run->n >= run->cap) {
    run->unusable = 1;
    return NULL;
  }
  tgo__attr *it = &run->attrs[run->n++];
  it->key = key;
  it->key_len = hash & 0xFFFF;
  it->key_hash = hash;
  return it;
}

int tgo__attr_run_str(tgo__attr_run *run, const char *key, uint32_t hash, const char *shared, const char *own,
                      size_t len) {
  if (!shared && !own)
    return 0;
  tgo__attr *it = run_slot(run, key, hash);
  if (!it)
    return -1;
  run_value *v = &run->values[run->n - 1];
  v->len = len;
  v->copied = !shared;
  if (shared) {
    /* cut at today's limit; a later limit re-cuts from v->len */
    set_static_str(it, shared, len);
  } else {
    it->type = TGO__V_STR;
    it->v.s = own;
    run->copies = 1;
  }
  return 0;
}

int tgo__attr_run_int(tgo__attr_run *run, const char *key, uint32_t hash, int64_t val) {
  tgo__attr *it = run_slot(run, key, hash);
  if (!it)
    return -1;
  it->type = TGO__V_INT;
  it->v.i = val;
  return 0;
}

/* The run's attributes through the fresh appends, each as the caller
 * would have appended it: they check keys once anything was set by key,
 * copy or cut under today's limit, and take the span's memory as it comes. */
static void append_run_one_by_one(tgo_attrs *a, const tgo__attr_run *run) {
  for (uint32_t i = 0; i < run->n; i++) {
    const tgo__attr *it = &run->attrs[i];
    const run_value *v = &run->values[i];
    if (it->type == TGO__V_INT)
      tgo__attr_int_new(a, it->key, it->key_hash, it->v.i);
    else if (v->copied)
      tgo__attr_str_new(a, it->key, it->key_hash, it->v.s, v->len);
    else
      tgo__attr_static_new(a, it->key, it->key_hash, it->v.s, v->len);
  }
}

int tgo__attrs_append_run(tgo_attrs *a, const tgo__attr_run *run) {
  if (!a || !run || run->unusable || !run->n)
    return 0;
  tgo_span *s = a->span;
  size_t need = run->n * sizeof(tgo__attr); /* a multiple of 8: the arena stays aligned */
  if (TGO__UNLIKELY(!a->fresh || run->copies || run->value_limit != tgo__cfg.attr_value_limit || s->ended ||
                    a->count + run->n > TGO__SPAN_MAX_ATTRS || need > s->arena_left)) {
    append_run_one_by_one(a, run);
    return 0;
  }
  tgo__attr *it = (tgo__attr *)s->arena_pos;
  memcpy(it, run->attrs, need);
  s->arena_pos += need;
  s->arena_left -= need;
  for (uint32_t i = 0; i + 1 < run->n; i++)
    it[i].next = &it[i + 1];
  it[run->n - 1].next = NULL;
  if (a->tail)
    a->tail->next = it;
  else
    a->head = it;
  a->tail = &it[run->n - 1];
  a->count += run->n;
  return 1;
}

void tgo_attr_int(tgo_attrs *a, const char *key, int64_t val) {
  tgo__attr *it = attr_slot(a, key);
  if (it) {
    it->type = TGO__V_INT;
    it->v.i = val;
  }
}

void tgo_attr_double(tgo_attrs *a, const char *key, double val) {
  tgo__attr *it = attr_slot(a, key);
  if (it) {
    it->type = TGO__V_DOUBLE;
    it->v.d = val;
  }
}

void tgo_attr_bool(tgo_attrs *a, const char *key, int val) {
  tgo__attr *it = attr_slot(a, key);
  if (it) {
    it->type = TGO__V_BOOL;
    it->v.b = !!val;
  }
}

void tgo_attr_str_array(tgo_attrs *a, const char *key, const char *const *vals, const size_t *lens,
                        size_t n) {
  tgo__attr *it = attr_slot(a, key);
  if (!it)
    return;
  tgo__str *items = n ? tgo__span_alloc(a->span, n * sizeof *items) : NULL;
  size_t kept = 0;
  for (size_t i = 0; items && i < n; i++) {
    size_t len = lens ? lens[i] : strlen(vals[i]);
    const char *v = tgo__span_strdup(a->span, vals[i], &len);
    if (!v)
      break;
    items[kept].s = v;
    items[kept++].len = (uint32_t)len;
  }
  it->type = TGO__V_STR_ARRAY;
  it->v.sa = items;
  it->n = (uint32_t)kept;
}

static void *copy_array(tgo_attrs *a, const void *vals, size_t size) {
  void *p = size ? tgo__span_alloc(a->span, size) : NULL;
  if (p)
    memcpy(p, vals, size);
  return p;
}

void tgo_attr_int_array(tgo_attrs *a, const char *key, const int64_t *vals, size_t n) {
  tgo__attr *it = attr_slot(a, key);
  if (!it)
    return;
  it->type = TGO__V_INT_ARRAY;
  it->v.ia = copy_array(a, vals, n * sizeof *vals);
  it->n = it->v.ia ? (uint32_t)n : 0;
}

void tgo_attr_double_array(tgo_attrs *a, const char *key, const double *vals, size_t n) {
  tgo__attr *it = attr_slot(a, key);
  if (!it)
    return;
  it->type = TGO__V_DOUBLE_ARRAY;
  it->v.da = copy_array(a, vals, n * sizeof *vals);
  it->n = it->v.da ? (uint32_t)n : 0;
}

void tgo_attr_bool_array(tgo_attrs *a, const char *key, const int *vals, size_t n) {
  tgo__attr *it = attr_slot(a, key);
  if (!it)
    return;
  uint8_t *b = n ? tgo__span_alloc(a->span, n) : NULL;
  for (size_t i = 0; b && i < n; i++)
    b[i] = vals[i] ? 1 : 0;
  it->type = TGO__V_BOOL_ARRAY;
  it->v.ba = b;
  it->n = b ? (uint32_t)n : 0;
}
