/* The metrics encoder (otlp_metrics.c) must produce exactly protobuf-c's
 * bytes for the same snapshot, and what protobuf-c decodes from them must
 * be the values recorded. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "tgo-internal.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar Exemplar;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest Request;

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  /* Metrics on (the exporter thread starts), to a refusing port, collected
   * only by the tests' own snapshots within the run. */
  setenv("TIGEROPS_ENDPOINT", "http://127.0.0.1:9", 1);
  setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000", 1);
  setenv("TIGEROPS_LOG_LEVEL", "none", 1);
  setenv("OTEL_SERVICE_NAME", "metrics-test", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(otlp_metrics, .init = setup);

/* Everything the reference allocates, freed at the end of a test. */
static void *keep[4096];
static size_t n_keep;
static void *alloc(size_t n) {
  void *p = calloc(1, n);
  cr_assert(p && n_keep < 4096);
  keep[n_keep++] = p;
  return p;
}
static void free_all(void) {
  while (n_keep)
    free(keep[--n_keep]);
}

/* The stored attribute entries, unpacked one by one with protobuf-c. */
static KeyValue **unpack_attrs(const uint8_t *p, size_t len, size_t *n) {
  KeyValue **out = alloc(64 * sizeof *out);
  *n = 0;
  const uint8_t *end = p + len;
  while (p < end) {
    cr_assert_eq(*p, 0x3A, "entries are tagged as NumberDataPoint.attributes");
    p++;
    size_t l = 0;
    int shift = 0;
    while (*p & 0x80) {
      l |= (size_t)(*p++ & 0x7F) << shift;
      shift += 7;
    }
    l |= (size_t)*p++ << shift;
    KeyValue *kv = opentelemetry__proto__common__v1__key_value__unpack(NULL, l, p);
    cr_assert(kv, "an attribute entry protobuf-c cannot read");
    out[(*n)++] = kv;
    p += l;
  }
  return out;
}

static void free_attrs(KeyValue **kv, size_t n) {
  for (size_t i = 0; i < n; i++)
    opentelemetry__proto__common__v1__key_value__free_unpacked(kv[i], NULL);
}

static KeyValue **all_unpacked[256];
static size_t all_n[256], n_unpacked;

static Exemplar **exemplars(const tgo__mpoint *pt) {
  Exemplar **out = alloc((pt->n_exemplars + 1) * sizeof *out);
  for (size_t i = 0; i < pt->n_exemplars; i++) {
    Exemplar *e = alloc(sizeof *e);
    *e = (Exemplar)OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__INIT;
    e->has_time_unix_nano = 1;
    e->time_unix_nano = pt->exemplars[i].time_ns;
    e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    e->as_double = pt->exemplars[i].value;
    e->has_span_id = e->has_trace_id = 1;
    e->span_id.data = (uint8_t *)pt->exemplars[i].span_id;
    e->span_id.len = 8;
    e->trace_id.data = (uint8_t *)pt->exemplars[i].trace_id;
    e->trace_id.len = 16;
    out[i] = e;
  }
  return out;
}

static Metric *ref_metric(const tgo__mdata *m) {
  Metric *r = alloc(sizeof *r);
  *r = (Metric)OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
  /* proto2 here (see metrics.proto): NULL is proto3's unset empty string. */
  r->name = *m->name ? (char *)m->name : NULL;
  r->unit = *m->unit ? (char *)m->unit : NULL;
  r->description = *m->description ? (char *)m->description : NULL;
  if (m->kind == TGO__METRIC_HISTOGRAM) {
    Histogram *h = alloc(sizeof *h);
    *h = (Histogram)OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    h->has_aggregation_temporality = 1;
    h->aggregation_temporality = (Opentelemetry__Proto__Metrics__V1__AggregationTemporality)m->temporality;
    h->n_data_points = m->n_points;
    h->data_points = alloc(m->n_points * sizeof *h->data_points);
    for (size_t i = 0; i < m->n_points; i++) {
      const tgo__mpoint *pt = &m->points[i];
      HistogramDataPoint *d = alloc(sizeof *d);
      *d = (HistogramDataPoint)OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
      d->has_start_time_unix_nano = d->has_time_unix_nano = 1;
      d->start_time_unix_nano = m->start_ns;
      d->time_unix_nano = m->time_ns;
      d->has_count = pt->count != 0;
      d->count = pt->count;
      d->has_sum = 1;
      d->sum = pt->sum;
      d->n_bucket_counts = m->n_bounds + 1;
      d->bucket_counts = (uint64_t *)pt->buckets;
      d->n_explicit_bounds = m->n_bounds;
      d->explicit_bounds = (double *)m->bounds;
      d->n_exemplars = pt->n_exemplars;
      d->exemplars = exemplars(pt);
      d->has_min = d->has_max = pt->has_min_max;
      d->min = pt->min;
      d->max = pt->max;
      d->attributes = unpack_attrs(pt->attrs, pt->attrs_len, &d->n_attributes);
      all_unpacked[n_unpacked] = d->attributes;
      all_n[n_unpacked++] = d->n_attributes;
      h->data_points[i] = d;
    }
    r->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    r->histogram = h;
    return r;
  }
  NumberDataPoint **pts = alloc((m->n_points + 1) * sizeof *pts);
  for (size_t i = 0; i < m->n_points; i++) {
    NumberDataPoint *d = alloc(sizeof *d);
    *d = (NumberDataPoint)OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    d->has_start_time_unix_nano = d->has_time_unix_nano = 1;
    d->start_time_unix_nano = m->start_ns;
    d->time_unix_nano = m->time_ns;
    d->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    d->as_double = m->points[i].value;
    d->attributes = unpack_attrs(m->points[i].attrs, m->points[i].attrs_len, &d->n_attributes);
    all_unpacked[n_unpacked] = d->attributes;
    all_n[n_unpacked++] = d->n_attributes;
    pts[i] = d;
  }
  if (m->kind == TGO__METRIC_GAUGE) {
    Gauge *g = alloc(sizeof *g);
    *g = (Gauge)OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g->data_points = pts;
    g->n_data_points = m->n_points;
    r->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    r->gauge = g;
    return r;
  }
  Sum *s = alloc(sizeof *s);
  *s = (Sum)OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
  s->data_points = pts;
  s->n_data_points = m->n_points;
  s->has_aggregation_temporality = 1;
  s->aggregation_temporality = (Opentelemetry__Proto__Metrics__V1__AggregationTemporality)m->temporality;
  s->has_is_monotonic = m->kind == TGO__METRIC_COUNTER;
  s->is_monotonic = 1;
  r->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
  r->sum = s;
  return r;
}

static void reference(const tgo__msnapshot *snap, tgo__buf *out) {
  enum { MAX_RES = 64 };
  tgo__kv *kvs = alloc(MAX_RES * sizeof *kvs);
  size_t n_res = tgo__resource_collect(kvs, MAX_RES);
  Resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.attributes = alloc(MAX_RES * sizeof *res.attributes);
  res.n_attributes = n_res;
  for (size_t i = 0; i < n_res; i++) {
    AnyValue *v = alloc(sizeof *v);
    *v = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = kvs[i].value;
    if (!strcmp(kvs[i].key, "process.pid")) {
      v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
      v->int_value = strtoll(kvs[i].value, NULL, 10);
    }
    KeyValue *kv = alloc(sizeof *kv);
    *kv = (KeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv->key = kvs[i].key;
    kv->value = v;
    res.attributes[i] = kv;
  }
  Scope scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  scope.name = (char *)"tigerops";
  scope.version = (char *)PACKAGE_VERSION;
  ScopeMetrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
  sm.scope = &scope;
  sm.n_metrics = snap->n;
  sm.metrics = alloc((snap->n + 1) * sizeof *sm.metrics);
  for (size_t i = 0; i < snap->n; i++)
    sm.metrics[i] = ref_metric(&snap->metrics[i]);
  ScopeMetrics *smp = &sm;
  ResourceMetrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
  rm.resource = &res;
  rm.scope_metrics = &smp;
  rm.n_scope_metrics = 1;
  ResourceMetrics *rmp = &rm;
  Request req = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
  req.resource_metrics = &rmp;
  req.n_resource_metrics = 1;
  cr_assert_eq(tgo__buf_reserve(out, protobuf_c_message_get_packed_size(&req.base)), 0);
  out->len += protobuf_c_message_pack(&req.base, out->data + out->len);
  for (size_t i = 0; i < n_unpacked; i++)
    free_attrs(all_unpacked[i], all_n[i]);
  n_unpacked = 0;
}

static void record_everything(void) {
  tgo__metric *c = tgo__metric_get(TGO__METRIC_COUNTER, "t.requests", "{request}", "Requests seen", NULL, 0);
  tgo__metric *u = tgo__metric_get(TGO__METRIC_UPDOWN, "t.active", "{request}", "", NULL, 0);
  tgo__metric *g = tgo__metric_get(TGO__METRIC_GAUGE, "t.depth", "{message}", "Queue depth", NULL, 0);
  double bounds[] = {0.5, 1, 300};
  tgo__metric *h = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.duration", "s", "", bounds, 3);
  tgo__metric *hd = tgo__metric_get(TGO__METRIC_HISTOGRAM, "t.default", "s", "", NULL, 0);
  tgo__mattr attrs[] = {
      {"http.request.method", 19, TGO__MATTR_STR, 3, {.s = "GET"}},
      {"http.response.status_code", 25, TGO__MATTR_INT, 0, {.i = 200}},
      {"neg", 3, TGO__MATTR_INT, 0, {.i = -7}},
      {"ratio", 5, TGO__MATTR_DOUBLE, 0, {.d = 0.25}},
      {"ok", 2, TGO__MATTR_BOOL, 0, {.b = 1}},
      {"no", 2, TGO__MATTR_BOOL, 0, {.b = 0}},
      {"empty", 5, TGO__MATTR_STR, 0, {.s = ""}},
  };
  tgo__metric_record(c, attrs, 7, 1, NULL);
  tgo__metric_record(c, attrs, 2, 2.5, NULL);
  tgo__metric_record(c, NULL, 0, 0, NULL); /* a zero value is still a point */
  tgo__metric_record(u, attrs, 1, -3, NULL);
  tgo__metric_record(g, attrs + 1, 1, 5, NULL);
  tgo_span *sp = tgo_span_start("s", 1, TGO_KIND_SERVER, NULL, NULL);
  tgo__metric_record(h, attrs, 3, 0.25, sp);
  tgo__metric_record(h, attrs, 3, 400, sp);
  tgo__metric_record(hd, NULL, 0, 0.12, sp);
  tgo_span_end(sp);
}

Test(otlp_metrics, matches_protobuf_c_for_every_kind_with_exemplars) {
  record_everything();
  tgo__msnapshot snap;
  cr_assert_eq(tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &snap), 0);
  cr_assert_eq(snap.n, 5);
  tgo__buf ours = {0}, ref = {0};
  cr_assert_eq(tgo__otlp_encode_metrics(snap.metrics, snap.n, &ours), 0);
  reference(&snap, &ref);
  cr_assert_eq(ours.len, ref.len, "ours %zu bytes, protobuf-c %zu", ours.len, ref.len);
  cr_assert(!memcmp(ours.data, ref.data, ref.len), "bytes differ from protobuf-c's");
  tgo__buf_free(&ours);
  tgo__buf_free(&ref);
  tgo__metrics_snapshot_free(&snap);
  free_all();
}

Test(otlp_metrics, matches_protobuf_c_for_delta_and_an_empty_snapshot) {
  tgo__msnapshot snap;
  tgo__buf ours = {0}, ref = {0};
  cr_assert_eq(tgo__metrics_snapshot(TGO__TEMPORALITY_DELTA, &snap), 0);
  cr_assert_eq(tgo__otlp_encode_metrics(snap.metrics, snap.n, &ours), 0);
  reference(&snap, &ref);
  cr_assert_eq(ours.len, ref.len);
  cr_assert(!memcmp(ours.data, ref.data, ref.len));
  tgo__metrics_snapshot_free(&snap);
  ours.len = ref.len = 0;
  record_everything();
  cr_assert_eq(tgo__metrics_snapshot(TGO__TEMPORALITY_DELTA, &snap), 0);
  cr_assert_eq(tgo__otlp_encode_metrics(snap.metrics, snap.n, &ours), 0);
  reference(&snap, &ref);
  cr_assert_eq(ours.len, ref.len);
  cr_assert(!memcmp(ours.data, ref.data, ref.len));
  tgo__buf_free(&ours);
  tgo__buf_free(&ref);
  tgo__metrics_snapshot_free(&snap);
  free_all();
}

Test(otlp_metrics, protobuf_c_reads_back_the_recorded_values) {
  record_everything();
  tgo__msnapshot snap;
  tgo__metrics_snapshot(TGO__TEMPORALITY_CUMULATIVE, &snap);
  tgo__buf ours = {0};
  cr_assert_eq(tgo__otlp_encode_metrics(snap.metrics, snap.n, &ours), 0);
  Request *req = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(NULL, ours.len,
                                                                                                      ours.data);
  cr_assert(req);
  ScopeMetrics *sm = req->resource_metrics[0]->scope_metrics[0];
  int seen = 0;
  for (size_t i = 0; i < sm->n_metrics; i++) {
    Metric *m = sm->metrics[i];
    if (!strcmp(m->name, "t.duration")) {
      HistogramDataPoint *d = m->histogram->data_points[0];
      cr_assert_eq(d->count, 2);
      cr_assert_eq(d->n_bucket_counts, 4);
      cr_assert_eq(d->bucket_counts[0], 1); /* 0.25 <= 0.5 */
      cr_assert_eq(d->bucket_counts[3], 1); /* 400 > 300 */
      cr_assert_float_eq(d->sum, 400.25, 1e-9);
      cr_assert_eq(d->n_attributes, 3);
      cr_assert_eq(d->n_exemplars, 2);
      cr_assert_eq(m->histogram->aggregation_temporality, 2);
      seen++;
    } else if (!strcmp(m->name, "t.requests")) {
      cr_assert(m->sum->is_monotonic);
      cr_assert_eq(m->sum->n_data_points, 3);
      seen++;
    } else if (!strcmp(m->name, "t.depth")) {
      cr_assert_float_eq(m->gauge->data_points[0]->as_double, 5.0, 1e-12);
      cr_assert_str_eq(m->gauge->data_points[0]->attributes[0]->key, "http.response.status_code");
      cr_assert_eq(m->gauge->data_points[0]->attributes[0]->value->int_value, 200);
      seen++;
    }
  }
  cr_assert_eq(seen, 3);
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(req, NULL);
  tgo__buf_free(&ours);
  tgo__metrics_snapshot_free(&snap);
}
