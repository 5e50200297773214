/* Metric instruments and their aggregation per attribute set. A request
 * thread records with a few atomic operations: the attribute set is encoded
 * into a stack buffer (the OTLP KeyValue bytes it will be exported as),
 * hashed, and looked up in the instrument's open-addressing table of series
 * pointers; a new set allocates its series once and publishes it with a
 * compare-and-swap. The exporter reads (cumulative) or swaps out (delta) the
 * same atomics: no lock is ever shared between the two. Past the cardinality
 * limit, measurements go to one overflow series (otel.metric.overflow=true,
 * as the OpenTelemetry SDK spec says). */
#include "tgo-internal.h"
#include "tgo-pbwire.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Semantic conventions' http.server.request.duration boundaries (s). */
const double tgo__metric_default_bounds[TGO__METRIC_DEFAULT_N_BOUNDS] = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};

/* One exemplar slot per bucket, written under a seqlock a writer only ever
 * tries (a busy slot skips the exemplar: any sampled one will do), read by
 * the exporter that retries nothing: a torn read is simply skipped. */
typedef struct {
  atomic_uint seq; /* odd while written; 0: never written */
  uint8_t trace_id[16], span_id[8];
  double value;
  uint64_t time_ns;
} exemplar_slot;

struct tgo__mseries {
  uint64_t hash;
  uint32_t attrs_len;
  atomic_uchar touched; /* recorded since the last delta collection (or ever) */
  _Atomic uint64_t value; /* double bits: sum or last gauge value */
  _Atomic uint64_t sum, min, max; /* histogram, double bits */
  _Atomic uint64_t *buckets;     /* n_bounds + 1 */
  exemplar_slot *exemplars;      /* n_bounds + 1 */
  uint8_t *attrs;                /* KeyValue entries, tagged as NumberDataPoint.attributes */
};

struct tgo__metric {
  struct tgo__metric *next; /* the registry: appended, never freed */
  int kind;
  char name[128], unit[32], description[256];
  double bounds[TGO__METRIC_MAX_BOUNDS];
  size_t n_bounds;
  uint32_t limit, mask;
  atomic_uint n_series;
  _Atomic(tgo__mseries *) *slots;
  _Atomic(tgo__mseries *) overflow;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(tgo__metric *) registry;
static _Atomic uint64_t epoch_ns; /* start of cumulative series: process start, or the fork */
static _Atomic uint64_t last_collect_ns; /* start of the next delta interval */
static atomic_ulong cardinality_limit; /* 0: TIGEROPS_METRICS_CARDINALITY_LIMIT */
static atomic_uint started_generation; /* the fork generation the exporter was started for */

int tgo__metrics_on(void) { return tgo_enabled() && tgo__cfg.metrics_exporter != TGO__EXPORTER_NONE; }

int tgo__metrics_active(void) { return atomic_load_explicit(&registry, memory_order_relaxed) != NULL; }

static inline double bits_d(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}
static inline uint64_t d_bits(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

static void add_double(_Atomic uint64_t *p, double v) {
  uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(p, &old, d_bits(bits_d(old) + v), memory_order_relaxed,
                                                memory_order_relaxed))
    ;
}

/* lower: keep the smaller (min) or the larger (max). */
static void extreme_double(_Atomic uint64_t *p, double v, int lower) {
  uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
  while (lower ? v < bits_d(old) : v > bits_d(old))
    if (atomic_compare_exchange_weak_explicit(p, &old, d_bits(v), memory_order_relaxed, memory_order_relaxed))
      break;
}

void tgo__metrics_set_limit(unsigned long limit) { atomic_store(&cardinality_limit, limit); }

void tgo__metrics_init_clock(void) {
  uint64_t zero = 0, now = tgo__now_ns(CLOCK_REALTIME);
  atomic_compare_exchange_strong(&epoch_ns, &zero, now);
  zero = 0;
  atomic_compare_exchange_strong(&last_collect_ns, &zero, now);
}

tgo__metric *tgo__metric_get(int kind, const char *name, const char *unit, const char *description,
                             const double *bounds, size_t n_bounds) {
  if (!name || !*name || kind < 0 || kind > TGO__METRIC_HISTOGRAM || !tgo__metrics_on())
    return NULL; /* OTEL_METRICS_EXPORTER=none: instruments that cost nothing */
  tgo__metrics_init_clock();
  pthread_mutex_lock(&registry_lock);
  tgo__metric *m;
  for (m = atomic_load(&registry); m; m = m->next)
    if (!strcmp(m->name, name))
      goto out; /* the first definition wins, as the API spec allows */
  m = calloc(1, sizeof *m);
  if (!m)
    goto out;
  m->kind = kind;
  snprintf(m->name, sizeof m->name, "%s", name);
  snprintf(m->unit, sizeof m->unit, "%s", unit ? unit : "");
  snprintf(m->description, sizeof m->description, "%s", description ? description : "");
  if (kind == TGO__METRIC_HISTOGRAM) {
    int ok = bounds && n_bounds <= TGO__METRIC_MAX_BOUNDS;
    for (size_t i = 0; ok && i < n_bounds; i++)
      ok = isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]);
    if (!bounds || !ok) {
      if (bounds)
        tgo__log(TGO_LOG_WARN, "metric %s: bucket boundaries must be at most %d increasing numbers; the defaults "
                 "are used", name, TGO__METRIC_MAX_BOUNDS);
      bounds = tgo__metric_default_bounds;
      n_bounds = TGO__METRIC_DEFAULT_N_BOUNDS;
    }
    memcpy(m->bounds, bounds, n_bounds * sizeof *bounds);
    m->n_bounds = n_bounds;
  }
  unsigned long limit = atomic_load(&cardinality_limit);
  m->limit = (uint32_t)(limit ? limit : (unsigned long)tgo__cfg.metrics_cardinality_limit);
  if (m->limit < 2)
    m->limit = 2;
  uint32_t cap = 16;
  while (cap < 2 * m->limit)
    cap <<= 1;
  m->mask = cap - 1;
  m->slots = calloc(cap, sizeof *m->slots);
  if (!m->slots) {
    free(m);
    m = NULL;
    goto out;
  }
  m->next = atomic_load(&registry);
  atomic_store_explicit(&registry, m, memory_order_release);
out:
  pthread_mutex_unlock(&registry_lock);
  return m;
}

/* ---- attribute sets ---------------------------------------------------- */

static int attr_cmp(const tgo__mattr *a, const tgo__mattr *b) {
  size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
  int c = memcmp(a->key, b->key, n);
  return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static size_t any_len(const tgo__mattr *a) {
  switch (a->type) {
  case TGO__V_STR:
    return tgo__pb_ld_len(a->len);
  case TGO__V_INT:
    return 1 + tgo__pb_varint_len((uint64_t)a->v.i);
  case TGO__V_DOUBLE:
    return 9;
  default:
    return 2;
  }
}

/* The set as OTLP KeyValue entries in key order (so that the same set given
 * in another order is the same series): 0 when it does not fit cap. */
static size_t encode_attrs(const tgo__mattr *attrs, size_t n, uint8_t *out, size_t cap) {
  const tgo__mattr *sorted[TGO__METRIC_MAX_ATTRS];
  if (n > TGO__METRIC_MAX_ATTRS)
    n = TGO__METRIC_MAX_ATTRS;
  for (size_t i = 0; i < n; i++) { /* insertion sort: a handful of keys */
    size_t j = i;
    while (j && attr_cmp(sorted[j - 1], &attrs[i]) > 0) {
      sorted[j] = sorted[j - 1];
      j--;
    }
    sorted[j] = &attrs[i];
  }
  uint8_t *p = out, *end = out + cap;
  for (size_t i = 0; i < n; i++) {
    const tgo__mattr *a = sorted[i];
    if (i && attr_cmp(sorted[i - 1], a) == 0)
      continue; /* a key twice: the first wins */
    size_t al = any_len(a), kv = tgo__pb_ld_len(a->key_len) + tgo__pb_ld_len(al);
    if ((size_t)(end - p) < tgo__pb_ld_len(kv))
      return 0;
    p = tgo__pb_ld_head(p, TGO__PB_TAG(7, TGO__PB_LEN), kv);
    p = tgo__pb_bytes(p, TGO__PB_TAG(1, TGO__PB_LEN), a->key, a->key_len);
    p = tgo__pb_ld_head(p, TGO__PB_TAG(2, TGO__PB_LEN), al);
    switch (a->type) {
    case TGO__V_STR:
      p = tgo__pb_bytes(p, TGO__PB_TAG(1, TGO__PB_LEN), a->v.s, a->len);
      break;
    case TGO__V_INT:
      *p++ = TGO__PB_TAG(3, TGO__PB_VARINT);
      p = tgo__pb_varint(p, (uint64_t)a->v.i);
      break;
    case TGO__V_DOUBLE:
      *p++ = TGO__PB_TAG(4, TGO__PB_FIXED64);
      p = tgo__pb_fixed64(p, d_bits(a->v.d));
      break;
    default:
      *p++ = TGO__PB_TAG(2, TGO__PB_VARINT);
      *p++ = a->v.b ? 1 : 0;
      break;
    }
  }
  return p == out ? 0 : (size_t)(p - out);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h ? h : 1;
}

static tgo__mseries *series_new(const tgo__metric *m, const uint8_t *attrs, size_t len, uint64_t hash) {
  size_t nb = m->kind == TGO__METRIC_HISTOGRAM ? m->n_bounds + 1 : 0;
  size_t size = sizeof(tgo__mseries) + nb * (sizeof(uint64_t) + sizeof(exemplar_slot)) + len;
  tgo__mseries *s = calloc(1, size);
  if (!s)
    return NULL;
  s->hash = hash;
  s->attrs_len = (uint32_t)len;
  s->buckets = (_Atomic uint64_t *)(s + 1);
  s->exemplars = (exemplar_slot *)(s->buckets + nb);
  s->attrs = (uint8_t *)(s->exemplars + nb);
  if (len)
    memcpy(s->attrs, attrs, len);
  atomic_init(&s->min, d_bits(INFINITY));
  atomic_init(&s->max, d_bits(-INFINITY));
  return s;
}

static tgo__mseries *overflow_series(tgo__metric *m) {
  tgo__mseries *s = atomic_load_explicit(&m->overflow, memory_order_acquire);
  if (TGO__LIKELY(s != NULL))
    return s;
  uint8_t buf[64];
  tgo__mattr a = {"otel.metric.overflow", 20, TGO__V_BOOL, 0, {.b = 1}};
  size_t len = encode_attrs(&a, 1, buf, sizeof buf);
  tgo__mseries *fresh = series_new(m, buf, len, 0);
  if (!fresh)
    return NULL;
  if (!atomic_compare_exchange_strong(&m->overflow, &s, fresh)) {
    free(fresh);
    return s;
  }
  return fresh;
}

tgo__mseries *tgo__metric_series(tgo__metric *m, const tgo__mattr *attrs, size_t n) {
  if (!m)
    return NULL;
  uint8_t buf[TGO__METRIC_MAX_ATTRS_BYTES];
  size_t len = n ? encode_attrs(attrs, n, buf, sizeof buf) : 0;
  if (n && !len) {
    TGO__LOG_ONCE(TGO_LOG_WARN, "metric %s: an attribute set over %d bytes goes to the overflow series (logged once)",
                  m->name, TGO__METRIC_MAX_ATTRS_BYTES);
    return overflow_series(m);
  }
  uint64_t h = hash_bytes(buf, len);
  tgo__mseries *fresh = NULL;
  for (uint32_t i = (uint32_t)h & m->mask, probes = 0; probes <= m->mask; i = (i + 1) & m->mask, probes++) {
    tgo__mseries *s = atomic_load_explicit(&m->slots[i], memory_order_acquire);
    if (!s) {
      if (!fresh) {
        /* A new set: counted first so that racing threads never pass the
         * limit; the last place of the limit is the overflow series'. */
        if (atomic_fetch_add(&m->n_series, 1) + 1 >= m->limit) {
          atomic_fetch_sub(&m->n_series, 1);
          TGO__LOG_ONCE(TGO_LOG_WARN, "metric %s passed its cardinality limit (%u attribute sets); further sets go "
                        "to the otel.metric.overflow series (logged once)", m->name, m->limit);
          return overflow_series(m);
        }
        if (!(fresh = series_new(m, buf, len, h))) {
          atomic_fetch_sub(&m->n_series, 1);
          return NULL;
        }
      }
      if (atomic_compare_exchange_strong_explicit(&m->slots[i], &s, fresh, memory_order_acq_rel,
                                                  memory_order_acquire))
        return fresh;
      /* Taken meanwhile, maybe by the same set: s is what is there now. */
    }
    if (s->hash == h && s->attrs_len == len && !memcmp(s->attrs, buf, len)) {
      if (fresh) {
        free(fresh);
        atomic_fetch_sub(&m->n_series, 1);
      }
      return s;
    }
  }
  if (fresh) { /* the table is sized twice the limit: never full */
    free(fresh);
    atomic_fetch_sub(&m->n_series, 1);
  }
  return overflow_series(m);
}

static void put_exemplar(exemplar_slot *e, double v, const tgo_span *span) {
  unsigned seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
  if ((seq & 1) ||
      !atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1, memory_order_acquire, memory_order_relaxed))
    return; /* another thread writes this slot now */
  memcpy(e->trace_id, span->trace_id, 16);
  memcpy(e->span_id, span->span_id, 8);
  e->value = v;
  e->time_ns = tgo__now_ns(CLOCK_REALTIME);
  atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
}

void tgo__series_record(tgo__metric *m, tgo__mseries *s, double v, const tgo_span *span) {
  if (TGO__UNLIKELY(!s || isnan(v)))
    return;
  unsigned gen = atomic_load_explicit(&tgo__fork_generation, memory_order_relaxed);
  if (TGO__UNLIKELY(atomic_load_explicit(&started_generation, memory_order_relaxed) != gen)) {
    atomic_store(&started_generation, gen);
    tgo__pipeline_metrics_start();
  }
  switch (m->kind) {
  case TGO__METRIC_COUNTER:
    if (v < 0)
      return; /* a monotonic sum: the API spec drops negative increments */
    /* fallthrough */
  case TGO__METRIC_UPDOWN:
    add_double(&s->value, v);
    break;
  case TGO__METRIC_GAUGE:
    atomic_store_explicit(&s->value, d_bits(v), memory_order_relaxed);
    break;
  default: {
    size_t b = 0;
    while (b < m->n_bounds && v > m->bounds[b])
      b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    add_double(&s->sum, v);
    extreme_double(&s->min, v, 1);
    extreme_double(&s->max, v, 0);
    if (span && span->recording && (span->flags & 1) && !span->deferred)
      put_exemplar(&s->exemplars[b], v, span);
    break;
  }
  }
  if (!atomic_load_explicit(&s->touched, memory_order_relaxed))
    atomic_store_explicit(&s->touched, 1, memory_order_relaxed);
}

void tgo__metric_record(tgo__metric *m, const tgo__mattr *attrs, size_t n, double v, const tgo_span *span) {
  if (m)
    tgo__series_record(m, tgo__metric_series(m, attrs, n), v, span);
}

/* ---- collection ------------------------------------------------------- */

static int delta_for(const tgo__metric *m, int pref) {
  return pref != TGO__TEMPORALITY_CUMULATIVE && (m->kind == TGO__METRIC_COUNTER || m->kind == TGO__METRIC_HISTOGRAM);
}

/* Reads one series into a point; delta swaps the sums out. 0: nothing to
 * report for it. */
static int read_series(const tgo__metric *m, tgo__mseries *s, int delta, tgo__mpoint *pt, uint64_t *buckets,
                       tgo__mexemplar *ex) {
  if (!s)
    return 0;
  int touched = delta ? atomic_exchange_explicit(&s->touched, 0, memory_order_relaxed)
                      : atomic_load_explicit(&s->touched, memory_order_relaxed);
  if (!touched)
    return 0;
  memset(pt, 0, sizeof *pt);
  pt->attrs = s->attrs;
  pt->attrs_len = s->attrs_len;
  if (m->kind != TGO__METRIC_HISTOGRAM) {
    pt->value = bits_d(delta ? atomic_exchange_explicit(&s->value, d_bits(0), memory_order_relaxed)
                             : atomic_load_explicit(&s->value, memory_order_relaxed));
    return 1;
  }
  size_t nb = m->n_bounds + 1;
  for (size_t b = 0; b < nb; b++) {
    buckets[b] = delta ? atomic_exchange_explicit(&s->buckets[b], 0, memory_order_relaxed)
                       : atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
    pt->count += buckets[b];
  }
  pt->buckets = buckets;
  pt->sum = bits_d(delta ? atomic_exchange_explicit(&s->sum, d_bits(0), memory_order_relaxed)
                         : atomic_load_explicit(&s->sum, memory_order_relaxed));
  pt->min = bits_d(delta ? atomic_exchange_explicit(&s->min, d_bits(INFINITY), memory_order_relaxed)
                         : atomic_load_explicit(&s->min, memory_order_relaxed));
  pt->max = bits_d(delta ? atomic_exchange_explicit(&s->max, d_bits(-INFINITY), memory_order_relaxed)
                         : atomic_load_explicit(&s->max, memory_order_relaxed));
  pt->has_min_max = pt->count > 0 && isfinite(pt->min) && isfinite(pt->max);
  pt->exemplars = ex;
  for (size_t b = 0; b < nb; b++) {
    exemplar_slot *e = &s->exemplars[b];
    unsigned seq = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (!seq || (seq & 1))
      continue;
    tgo__mexemplar *x = &ex[pt->n_exemplars];
    memcpy(x->trace_id, e->trace_id, 16);
    memcpy(x->span_id, e->span_id, 8);
    x->value = e->value;
    x->time_ns = e->time_ns;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq)
      continue; /* torn: skipped */
    if (delta) /* an exemplar belongs to the interval it was recorded in */
      atomic_compare_exchange_strong(&e->seq, &seq, 0);
    pt->n_exemplars++;
  }
  return pt->count > 0 || !delta;
}

void tgo__metrics_snapshot_free(tgo__msnapshot *snap) {
  for (size_t i = 0; i < snap->n; i++)
    free(snap->metrics[i].arena);
  free(snap->metrics);
  memset(snap, 0, sizeof *snap);
}

int tgo__metrics_snapshot(int pref, tgo__msnapshot *snap) {
  memset(snap, 0, sizeof *snap);
  uint64_t now = tgo__now_ns(CLOCK_REALTIME);
  uint64_t start_delta = atomic_exchange(&last_collect_ns, now);
  uint64_t start_cumul = atomic_load(&epoch_ns);
  size_t n = 0;
  for (tgo__metric *m = atomic_load_explicit(&registry, memory_order_acquire); m; m = m->next)
    n++;
  if (!n)
    return 0;
  snap->metrics = calloc(n, sizeof *snap->metrics);
  if (!snap->metrics)
    return -ENOMEM;
  for (tgo__metric *m = atomic_load_explicit(&registry, memory_order_acquire); m; m = m->next) {
    int delta = delta_for(m, pref);
    size_t nb = m->kind == TGO__METRIC_HISTOGRAM ? m->n_bounds + 1 : 0;
    size_t cap = (size_t)m->mask + 2; /* every slot and the overflow */
    size_t per = sizeof(tgo__mpoint) + nb * (sizeof(uint64_t) + sizeof(tgo__mexemplar));
    tgo__mdata *d = &snap->metrics[snap->n];
    size_t used = atomic_load(&m->n_series) + 1;
    if (used > cap)
      used = cap;
    d->arena = malloc(used * per);
    if (!d->arena)
      continue;
    tgo__mpoint *pts = d->arena;
    uint64_t *bk = (uint64_t *)(pts + used);
    tgo__mexemplar *ex = (tgo__mexemplar *)(bk + used * nb);
    size_t k = 0;
    for (size_t i = 0; i <= (size_t)m->mask + 1 && k < used; i++) {
      tgo__mseries *s = i <= m->mask ? atomic_load_explicit(&m->slots[i], memory_order_acquire)
                                     : atomic_load_explicit(&m->overflow, memory_order_acquire);
      if (read_series(m, s, delta, &pts[k], bk + k * nb, ex + k * nb))
        k++;
    }
    if (!k) {
      free(d->arena);
      d->arena = NULL;
      continue;
    }
    d->name = m->name;
    d->unit = m->unit;
    d->description = m->description;
    d->kind = m->kind;
    d->temporality = m->kind == TGO__METRIC_GAUGE ? 0 : delta ? 1 : 2; /* OTLP AggregationTemporality */
    d->bounds = m->bounds;
    d->n_bounds = m->n_bounds;
    d->start_ns = delta ? start_delta : start_cumul;
    d->time_ns = now;
    d->points = pts;
    d->n_points = k;
    snap->n++;
  }
  return 0;
}

/* The child reports its own measurements only: every series starts from
 * zero there (the sets stay: request threads may hold their pointers). */
void tgo__metrics_fork_child(void) {
  pthread_mutex_init(&registry_lock, NULL);
  uint64_t now = tgo__now_ns(CLOCK_REALTIME);
  atomic_store(&epoch_ns, now);
  atomic_store(&last_collect_ns, now);
  for (tgo__metric *m = atomic_load(&registry); m; m = m->next) {
    size_t nb = m->kind == TGO__METRIC_HISTOGRAM ? m->n_bounds + 1 : 0;
    for (size_t i = 0; i <= (size_t)m->mask + 1; i++) {
      tgo__mseries *s = i <= m->mask ? atomic_load(&m->slots[i]) : atomic_load(&m->overflow);
      if (!s)
        continue;
      atomic_store(&s->touched, 0);
      atomic_store(&s->value, d_bits(0));
      atomic_store(&s->sum, d_bits(0));
      atomic_store(&s->min, d_bits(INFINITY));
      atomic_store(&s->max, d_bits(-INFINITY));
      for (size_t b = 0; b < nb; b++) {
        atomic_store(&s->buckets[b], 0);
        atomic_store(&s->exemplars[b].seq, 0);
      }
    }
  }
}

/* For unit tests: drops every instrument (no recording may run). */
void tgo__metrics_reset(void) {
  pthread_mutex_lock(&registry_lock);
  tgo__metric *m = atomic_exchange(&registry, NULL);
  while (m) {
    tgo__metric *next = m->next;
    for (size_t i = 0; i <= m->mask; i++)
      free(atomic_load(&m->slots[i]));
    free(atomic_load(&m->overflow));
    free(m->slots);
    free(m);
    m = next;
  }
  atomic_store(&epoch_ns, 0);
  atomic_store(&last_collect_ns, 0);
  pthread_mutex_unlock(&registry_lock);
}
