/* Aggregation per attribute set (metrics.c): sums, buckets, the overflow
 * series past the cardinality limit, delta versus cumulative reads,
 * exemplars of sampled spans only, exact totals under concurrent recording. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tgo-internal.h"

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  /* Metrics on: the exporter thread starts and writes the exit flush's
   * collection to stderr (no libcurl in these tests); within the run only
   * the tests' own snapshots collect. */
  setenv("OTEL_METRICS_EXPORTER", "console", 1);
  setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000", 1);
  setenv("TIGEROPS_LOG_LEVEL", "none", 1);
  cr_assert_eq(tgo_init(), 0);
  tgo__metrics_set_limit(TGO__METRIC_DEFAULT_LIMIT);
}

static void teardown(void) { tgo__metrics_reset(); }

TestSuite(metrics, .init = setup, .fini = teardown);

#define STR(k, v) {k, sizeof k - 1, TGO__MATTR_STR, sizeof v - 1, {.s = v}}

static const tgo__mdata *find(const tgo__msnapshot *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->metrics[i].name, name))
      return &s->metrics[i];
  return NULL;
}

/* The point whose attributes contain this string value. */
static const tgo__mpoint *point_with(const tgo__mdata *m, const char *value) {
  for (size_t i = 0; m && i < m->n_points; i++)
    if (memmem(m->points[i].attrs, m->points[i].attrs_len, value, strlen(value)))
      return &m->points[i];
  return NULL;
}

Test(metrics, counter_sums_per_attribute_set_whatever_the_order_of_keys) {
  tgo__metric *c = tgo__metric_get(TGO__METRIC_COUNTER, "t.count", "1", "", NULL, 0);
  tgo__mattr ab[] = {STR("a", "x1"), STR("b", "y")};
  tgo__mattr ba[] = {STR("b", "y"), STR("a", "x1")};
  tgo__mattr other[] = {STR("a", "x2")};
  tgo__metric_record(c, ab, 2, 2, NULL);
  tgo__metric_record(c, ba, 2, 3, NULL);
  tgo__metric_record(c, other, 1, 7, NULL);
  tgo__metric_record(c, other, 1, -5, NULL); /* a counter never goes down */
  cr_assert_eq(tgo__metric_series(c, ab, 2), tgo__metric_series(c, ba, 2));
  tgo__msnapshot s;
  cr_assert_eq(tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s), 0);
  const tgo__mdata *m = find(&s, "t.count");
  cr_assert(m);
  cr_assert_eq(m->n_points, 2);
  cr_assert_float_eq(point_with(m, "x1")->value, 5.0, 1e-12);
  cr_assert_float_eq(point_with(m, "x2")->value, 7.0, 1e-12);
  cr_assert_eq(m->temporality, 2);
  tgo__metrics_snapshot_free(&s);
}

Test(metrics, the_same_name_is_the_same_instrument) {
  tgo__metric *a = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.same", "s", "", NULL, 0);
  tgo__metric *b = tgo__metric_get(TGO__METRIC_COUNTER, "t.same", "1", "", NULL, 0);
  cr_assert_eq(a, b);
}

Test(metrics, histogram_buckets_are_upper_inclusive_with_the_semconv_boundaries) {
  tgo__metric *h = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.dur", "s", "", NULL, 0);
  tgo__metric_record(h, NULL, 0, 0.12, NULL);  /* (0.1, 0.25] */
  tgo__metric_record(h, NULL, 0, 0.1, NULL);   /* (0.075, 0.1] */
  tgo__metric_record(h, NULL, 0, 0.001, NULL); /* (-inf, 0.005] */
  tgo__metric_record(h, NULL, 0, 99, NULL);    /* (10, +inf) */
  tgo__msnapshot s;
  tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s);
  const tgo__mdata *m = find(&s, "t.dur");
  cr_assert_eq(m->n_bounds, 14);
  cr_assert_eq(m->n_points, 1);
  const tgo__mpoint *p = &m->points[0];
  cr_assert_eq(p->count, 4);
  uint64_t want[15] = {1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1};
  for (int i = 0; i < 15; i++)
    cr_assert_eq(p->buckets[i], want[i], "bucket %d: %llu", i, (unsigned long long)p->buckets[i]);
  cr_assert_float_eq(p->sum, 99.221, 1e-9);
  cr_assert_float_eq(p->min, 0.001, 1e-12);
  cr_assert_float_eq(p->max, 99, 1e-12);
  cr_assert_eq(p->n_exemplars, 0);
  tgo__metrics_snapshot_free(&s);
}

Test(metrics, past_the_limit_sets_go_to_one_overflow_series) {
  tgo__metrics_set_limit(5);
  tgo__metric *c = tgo__metric_get(TGO__METRIC_COUNTER, "t.card", "1", "", NULL, 0);
  char v[16];
  for (int i = 0; i < 20; i++) {
    snprintf(v, sizeof v, "v%d", i);
    tgo__mattr a = {"k", 1, TGO__MATTR_STR, (uint32_t)strlen(v), {.s = v}};
    tgo__metric_record(c, &a, 1, 1, NULL);
  }
  tgo__msnapshot s;
  tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s);
  const tgo__mdata *m = find(&s, "t.card");
  cr_assert_eq(m->n_points, 5, "%zu points", m->n_points); /* 4 sets and the overflow */
  const tgo__mpoint *o = point_with(m, "otel.metric.overflow");
  cr_assert(o);
  cr_assert_float_eq(o->value, 16.0, 1e-12);
  double total = 0;
  for (size_t i = 0; i < m->n_points; i++)
    total += m->points[i].value;
  cr_assert_float_eq(total, 20.0, 1e-12);
  tgo__metrics_snapshot_free(&s);
}

Test(metrics, delta_reads_reset_counters_and_histograms_but_not_updown) {
  tgo__metric *c = tgo__metric_get(TGO__METRIC_COUNTER, "t.dc", "1", "", NULL, 0);
  tgo__metric *u = tgo__metric_get(TGO__METRIC_UPDOWN, "t.du", "1", "", NULL, 0);
  tgo__metric *h = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.dh", "s", "", NULL, 0);
  tgo__metric_record(c, NULL, 0, 3, NULL);
  tgo__metric_record(u, NULL, 0, 3, NULL);
  tgo__metric_record(h, NULL, 0, 0.2, NULL);
  tgo__msnapshot s;
  tgo__metrics_snapshot(TGO__TEMPORALITY_DELTA, &s);
  cr_assert_float_eq(find(&s, "t.dc")->points[0].value, 3.0, 1e-12);
  cr_assert_eq(find(&s, "t.dc")->temporality, 1);
  cr_assert_eq(find(&s, "t.du")->temporality, 2);
  cr_assert_eq(find(&s, "t.dh")->points[0].count, 1);
  uint64_t first_end = find(&s, "t.dc")->time_ns;
  tgo__metrics_snapshot_free(&s);
  tgo__metric_record(c, NULL, 0, 4, NULL);
  tgo__metric_record(u, NULL, 0, -1, NULL);
  tgo__metrics_snapshot(TGO__TEMPORALITY_DELTA, &s);
  cr_assert_float_eq(find(&s, "t.dc")->points[0].value, 4.0, 1e-12);
  cr_assert_eq(find(&s, "t.dc")->start_ns, first_end, "a delta interval starts where the last one ended");
  cr_assert_float_eq(find(&s, "t.du")->points[0].value, 2.0, 1e-12);
  cr_assert_null(find(&s, "t.dh"), "no measurement in the interval: no point");
  tgo__metrics_snapshot_free(&s);
  tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s); /* cumulative reads leave the sums */
  tgo__msnapshot s2;
  tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s2);
  cr_assert_float_eq(find(&s2, "t.du")->points[0].value, 2.0, 1e-12);
  tgo__metrics_snapshot_free(&s);
  tgo__metrics_snapshot_free(&s2);
}

Test(metrics, exemplars_come_from_sampled_spans_only) {
  tgo__metric *h = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.ex", "s", "", NULL, 0);
  tgo_span *sampled = tgo_span_start("s", 1, TGO_KIND_SERVER, NULL, NULL);
  tgo_span_context unsampled_ctx;
  cr_assert_eq(tgo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 55, &unsampled_ctx),
               0);
  tgo_span *unsampled = tgo_span_start("u", 1, TGO_KIND_SERVER, NULL, &unsampled_ctx);
  tgo__metric_record(h, NULL, 0, 0.12, sampled);
  tgo__metric_record(h, NULL, 0, 3.0, unsampled);
  tgo__msnapshot s;
  tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s);
  const tgo__mpoint *p = &find(&s, "t.ex")->points[0];
  cr_assert_eq(p->n_exemplars, 1);
  cr_assert(!memcmp(p->exemplars[0].trace_id, sampled->trace_id, 16));
  cr_assert(!memcmp(p->exemplars[0].span_id, sampled->span_id, 8));
  cr_assert_float_eq(p->exemplars[0].value, 0.12, 1e-12);
  tgo__metrics_snapshot_free(&s);
  tgo_span_end(sampled);
  tgo_span_end(unsampled);
}

enum { THREADS = 4, PER_THREAD = 50000, SETS = 10 };
static tgo__metric *conc_c, *conc_h;

static void *recorder(void *arg) {
  (void)arg;
  char v[8];
  for (int i = 0; i < PER_THREAD; i++) {
    snprintf(v, sizeof v, "s%d", i % SETS);
    tgo__mattr a = {"set", 3, TGO__MATTR_STR, (uint32_t)strlen(v), {.s = v}};
    tgo__metric_record(conc_c, &a, 1, 1, NULL);
    tgo__metric_record(conc_h, &a, 1, 0.3, NULL);
  }
  return NULL;
}

Test(metrics, concurrent_recording_loses_nothing) {
  conc_c = tgo__metric_get(TGO__METRIC_COUNTER, "t.conc", "1", "", NULL, 0);
  conc_h = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.conch", "s", "", NULL, 0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, recorder, NULL);
  /* The exporter reads (delta) while they record: the totals still add up. */
  double total = 0;
  uint64_t count = 0;
  size_t most_sets = 0; /* a delta holds only the sets recorded since the last one */
  for (int round = 0; round < 3; round++) {
    tgo__msnapshot s;
    tgo__metrics_snapshot(TGO__TEMPORALITY_DELTA, &s);
    const tgo__mdata *m = find(&s, "t.conc"), *h = find(&s, "t.conch");
    if (m && m->n_points > most_sets)
      most_sets = m->n_points;
    for (size_t i = 0; m && i < m->n_points; i++)
      total += m->points[i].value;
    for (size_t i = 0; h && i < h->n_points; i++)
      count += h->points[i].count;
    tgo__metrics_snapshot_free(&s);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  tgo__msnapshot s;
  tgo__metrics_snapshot(TGO__TEMPORALITY_DELTA, &s);
  const tgo__mdata *m = find(&s, "t.conc"), *h = find(&s, "t.conch");
  for (size_t i = 0; m && i < m->n_points; i++)
    total += m->points[i].value;
  for (size_t i = 0; h && i < h->n_points; i++)
    count += h->points[i].count;
  /* NULL when the recorders were done before the last round's delta (it
   * crashed here once, under valgrind). */
  if (m && m->n_points > most_sets)
    most_sets = m->n_points;
  cr_assert_eq(most_sets, SETS);
  tgo__metrics_snapshot_free(&s);
  cr_assert_float_eq(total, (double)THREADS * PER_THREAD, 1e-6);
  cr_assert_eq(count, (uint64_t)THREADS * PER_THREAD);
}

Test(metrics, a_forked_child_starts_its_series_from_zero) {
  tgo__metric *c = tgo__metric_get(TGO__METRIC_COUNTER, "t.fork", "1", "", NULL, 0);
  tgo__metric *h = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.forkh", "s", "", NULL, 0);
  tgo__mattr a[] = {STR("k", "v")};
  tgo__metric_record(c, a, 1, 41, NULL);
  tgo__metric_record(h, a, 1, 0.3, NULL);
  pid_t pid = fork();
  if (pid == 0) {
    tgo__msnapshot s;
    tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s);
    int bad = s.n != 0; /* nothing of the parent's */
    tgo__metrics_snapshot_free(&s);
    tgo__metric_record(c, a, 1, 2, NULL);
    tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s);
    const tgo__mdata *m = find(&s, "t.fork");
    bad |= !m || m->n_points != 1 || m->points[0].value != 2.0 || find(&s, "t.forkh") != NULL;
    tgo__metrics_snapshot_free(&s);
    _exit(bad);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw its parent's values");
  tgo__msnapshot s;
  tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s);
  cr_assert_float_eq(find(&s, "t.fork")->points[0].value, 41.0, 1e-12, "the parent keeps its own");
  tgo__metrics_snapshot_free(&s);
}

Test(metrics, metrics_exporter_none_makes_no_instrument) {
  tgo__cfg.metrics_exporter = TGO__EXPORTER_NONE;
  cr_assert_null(tgo__metric_get(TGO__METRIC_COUNTER, "t.none", "1", "", NULL, 0));
  tgo__metric_record(NULL, NULL, 0, 1, NULL); /* a no-op, not a crash */
  cr_assert_null(tgo__http_server_begin("GET", 3, 0));
}

Test(metrics, a_sorted_set_is_the_same_series_as_the_same_set_unsorted) {
  tgo__metric *c = tgo__metric_get(TGO__METRIC_COUNTER, "t.sorted", "1", "", NULL, 0);
  tgo__mattr sorted[] = {STR("error.type", "500"), STR("http.request.method", "GET"),
                         {"http.response.status_code", 25, TGO__MATTR_INT, 0, {.i = 500}}, STR("url.scheme", "http")};
  tgo__mattr shuffled[] = {sorted[3], sorted[1], sorted[2], sorted[0]};
  cr_assert_eq(tgo__metric_series_sorted(c, sorted, 4), tgo__metric_series(c, shuffled, 4));
}

/* http_server_metrics.c keeps the last duration series per route in one
 * word (method, scheme, status): requests that alternate between sets must
 * each land in their own series, exactly as the lookup would put them. */
Test(metrics, the_route_memo_puts_each_request_in_its_own_series) {
  _Atomic uint64_t memo = 0;
  static const struct {
    const char *method, *error_type;
    int status, https;
  } reqs[] = {{"GET", NULL, 200, 0},  {"GET", NULL, 200, 0}, {"GET", NULL, 404, 0}, {"POST", NULL, 200, 0},
              {"GET", NULL, 200, 1},  {"GET", "500", 500, 0}, {"GET", NULL, 200, 0}, {"BREW", NULL, 200, 0},
              {"GET", NULL, 404, 0}};
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    size_t mlen = strlen(reqs[i].method);
    tgo__http_server_request r = {reqs[i].method, "/r/<x>", reqs[i].error_type, mlen, 6,
                                  reqs[i].error_type ? strlen(reqs[i].error_type) : 0, reqs[i].https,
                                  reqs[i].status, 1000000, tgo__http_server_begin(reqs[i].method, mlen, reqs[i].https),
                                  NULL, &memo};
    tgo__http_server_end(&r);
  }
  cr_assert_neq(atomic_load(&memo), 0);
  tgo__msnapshot s;
  cr_assert_eq(tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &s), 0);
  const tgo__mdata *m = find(&s, "http.server.request.duration");
  cr_assert(m);
  cr_assert_eq(m->n_points, 6);
  uint64_t plain[2] = {0, 0};
  size_t n_plain = 0;
  for (size_t i = 0; i < m->n_points; i++) {
    const tgo__mpoint *p = &m->points[i];
    int marked = 0;
    for (const char *const *v = (const char *const[]){"https", "POST", "_OTHER", "error.type", NULL}; *v; v++)
      if (memmem(p->attrs, p->attrs_len, *v, strlen(*v))) {
        cr_assert_eq(p->count, 1, "%s: %lu", *v, (unsigned long)p->count);
        marked = 1;
      }
    if (!marked) {
      cr_assert_lt(n_plain, 2);
      plain[n_plain++] = p->count;
    }
  }
  /* GET 200 http three times, GET 404 twice, whatever their order. */
  cr_assert(n_plain == 2 && plain[0] * plain[1] == 6 && plain[0] + plain[1] == 5);
  tgo__metrics_snapshot_free(&s);
}
