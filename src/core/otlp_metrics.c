/* OTLP/protobuf encoding of a metrics snapshot (ExportMetricsServiceRequest).
 * Written back to front: a message's fields are prepended last field first,
 * so every length is known when its header is prepended and the bytes come
 * out in one pass, in field-number order as protobuf-c writes them
 * (tests/unit/test_otlp_metrics.c compares byte for byte). */
#include "tgo-internal.h"
#include "tgo-pbwire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint8_t *base;
  size_t cap, used; /* the content is the last used bytes of base */
  int err;
} rbuf;

static int room(rbuf *b, size_t n) {
  if (b->err)
    return 0;
  if (b->cap - b->used >= n)
    return 1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->used < n)
    cap *= 2;
  uint8_t *nb = malloc(cap);
  if (!nb) {
    b->err = 1;
    return 0;
  }
  if (b->used)
    memcpy(nb + cap - b->used, b->base + b->cap - b->used, b->used);
  free(b->base);
  b->base = nb;
  b->cap = cap;
  return 1;
}

static uint8_t *head(rbuf *b) { return b->base + b->cap - b->used; }

static void put(rbuf *b, const void *p, size_t n) {
  if (!n || !room(b, n))
    return;
  b->used += n;
  memcpy(head(b), p, n);
}

static void put_varint(rbuf *b, uint64_t v) {
  uint8_t tmp[10];
  put(b, tmp, (size_t)(tgo__pb_varint(tmp, v) - tmp));
}

static void put_tag(rbuf *b, uint8_t tag) { put(b, &tag, 1); }

static void put_raw64(rbuf *b, uint64_t v) {
  uint8_t tmp[8];
  tgo__pb_fixed64(tmp, v);
  put(b, tmp, 8);
}

static void put_fixed64(rbuf *b, uint8_t tag, uint64_t v) {
  put_raw64(b, v);
  put_tag(b, tag);
}

static uint64_t dbits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

static void put_double(rbuf *b, uint8_t tag, double d) { put_fixed64(b, tag, dbits(d)); }

/* Closes a length-delimited field whose body is what was prepended since mark. */
static void close_ld(rbuf *b, size_t mark, uint8_t tag) {
  put_varint(b, b->used - mark);
  put_tag(b, tag);
}

static void put_string(rbuf *b, uint8_t tag, const char *s, size_t n) {
  if (!n)
    return; /* proto3: an empty string is not written */
  size_t mark = b->used;
  put(b, s, n);
  close_ld(b, mark, tag);
}

#define LD(f) TGO__PB_TAG(f, TGO__PB_LEN)
#define F64(f) TGO__PB_TAG(f, TGO__PB_FIXED64)
#define VARINT(f) TGO__PB_TAG(f, TGO__PB_VARINT)

/* The attribute entries, re-tagged from field 7 to tag. */
static void put_attrs(rbuf *b, const uint8_t *attrs, size_t len, uint8_t tag) {
  put(b, attrs, len);
  if (b->err || tag == LD(7))
    return;
  uint8_t *p = head(b), *end = p + len;
  while (p < end) {
    *p++ = tag;
    uint64_t n = 0;
    int shift = 0;
    while (*p & 0x80) {
      n |= (uint64_t)(*p++ & 0x7F) << shift;
      shift += 7;
    }
    n |= (uint64_t)*p++ << shift;
    p += n;
  }
}

/* Exemplar { time_unix_nano = 2; as_double = 3; span_id = 4; trace_id = 5; } */
static void put_exemplar(rbuf *b, const tgo__mexemplar *e, uint8_t tag) {
  size_t mark = b->used;
  put(b, e->trace_id, 16);
  put_varint(b, 16);
  put_tag(b, LD(5));
  put(b, e->span_id, 8);
  put_varint(b, 8);
  put_tag(b, LD(4));
  put_double(b, F64(3), e->value);
  put_fixed64(b, F64(2), e->time_ns);
  close_ld(b, mark, tag);
}

static void put_number_point(rbuf *b, const tgo__mdata *m, const tgo__mpoint *pt) {
  size_t mark = b->used;
  put_attrs(b, pt->attrs, pt->attrs_len, LD(7));
  put_double(b, F64(4), pt->value);
  put_fixed64(b, F64(3), m->time_ns);
  put_fixed64(b, F64(2), m->start_ns);
  close_ld(b, mark, LD(1));
}

static void put_packed_fixed64(rbuf *b, uint8_t tag, const uint64_t *v, size_t n) {
  if (!n)
    return;
  size_t mark = b->used;
  for (size_t i = n; i-- > 0;)
    put_raw64(b, v[i]);
  close_ld(b, mark, tag);
}

static void put_histogram_point(rbuf *b, const tgo__mdata *m, const tgo__mpoint *pt) {
  size_t mark = b->used;
  if (pt->has_min_max) {
    put_double(b, F64(12), pt->max);
    put_double(b, F64(11), pt->min);
  }
  put_attrs(b, pt->attrs, pt->attrs_len, LD(9));
  for (size_t i = pt->n_exemplars; i-- > 0;)
    put_exemplar(b, &pt->exemplars[i], LD(8));
  if (m->n_bounds) {
    size_t bm = b->used;
    for (size_t i = m->n_bounds; i-- > 0;)
      put_raw64(b, dbits(m->bounds[i]));
    close_ld(b, bm, LD(7));
  }
  put_packed_fixed64(b, LD(6), pt->buckets, m->n_bounds + 1);
  put_double(b, F64(5), pt->sum);
  if (pt->count)
    put_fixed64(b, F64(4), pt->count);
  put_fixed64(b, F64(3), m->time_ns);
  put_fixed64(b, F64(2), m->start_ns);
  close_ld(b, mark, LD(1));
}

/* Metric { name = 1; description = 2; unit = 3; gauge = 5 | sum = 7 | histogram = 9; } */
static void put_metric(rbuf *b, const tgo__mdata *m) {
  size_t mark = b->used, data = b->used;
  switch (m->kind) {
  case TGO__METRIC_HISTOGRAM: /* Histogram { data_points = 1; aggregation_temporality = 2; } */
    put_varint(b, (uint64_t)m->temporality);
    put_tag(b, VARINT(2));
    for (size_t i = m->n_points; i-- > 0;)
      put_histogram_point(b, m, &m->points[i]);
    close_ld(b, data, LD(9));
    break;
  case TGO__METRIC_GAUGE: /* Gauge { data_points = 1; } */
    for (size_t i = m->n_points; i-- > 0;)
      put_number_point(b, m, &m->points[i]);
    close_ld(b, data, LD(5));
    break;
  default: /* Sum { data_points = 1; aggregation_temporality = 2; is_monotonic = 3; } */
    if (m->kind == TGO__METRIC_COUNTER) {
      put_varint(b, 1);
      put_tag(b, VARINT(3));
    }
    put_varint(b, (uint64_t)m->temporality);
    put_tag(b, VARINT(2));
    for (size_t i = m->n_points; i-- > 0;)
      put_number_point(b, m, &m->points[i]);
    close_ld(b, data, LD(7));
    break;
  }
  put_string(b, LD(3), m->unit, strlen(m->unit));
  put_string(b, LD(2), m->description, strlen(m->description));
  put_string(b, LD(1), m->name, strlen(m->name));
  close_ld(b, mark, LD(2)); /* ScopeMetrics.metrics */
}

enum { MAX_RESOURCE = 64 };

/* Resource { attributes = 1; }: process.pid as an int, the rest strings. */
static void put_resource(rbuf *b, const tgo__kv *kvs, size_t n) {
  size_t mark = b->used;
  for (size_t i = n; i-- > 0;) {
    size_t kv = b->used, any = b->used;
    if (!strcmp(kvs[i].key, "process.pid")) {
      put_varint(b, (uint64_t)strtoll(kvs[i].value, NULL, 10));
      put_tag(b, VARINT(3));
    } else {
      size_t vm = b->used;
      put(b, kvs[i].value, strlen(kvs[i].value));
      close_ld(b, vm, LD(1));
    }
    close_ld(b, any, LD(2));
    put_string(b, LD(1), kvs[i].key, strlen(kvs[i].key));
    close_ld(b, kv, LD(1));
  }
  close_ld(b, mark, LD(1)); /* ResourceMetrics.resource */
}

static const char scope_name[] = "tigerops";
static const char scope_version[] = PACKAGE_VERSION;

int tgo__otlp_encode_metrics(const tgo__mdata *metrics, size_t n, tgo__buf *out) {
  rbuf b = {0};
  tgo__kv *kvs = malloc(MAX_RESOURCE * sizeof *kvs);
  if (!kvs)
    return -ENOMEM;
  size_t n_res = tgo__resource_collect(kvs, MAX_RESOURCE);
  size_t rm = b.used, sm = b.used, scope;
  for (size_t i = n; i-- > 0;)
    put_metric(&b, &metrics[i]);
  scope = b.used;
  put_string(&b, LD(2), scope_version, sizeof scope_version - 1);
  put_string(&b, LD(1), scope_name, sizeof scope_name - 1);
  close_ld(&b, scope, LD(1)); /* ScopeMetrics.scope */
  close_ld(&b, sm, LD(2));    /* ResourceMetrics.scope_metrics */
  put_resource(&b, kvs, n_res);
  close_ld(&b, rm, LD(1)); /* ExportMetricsServiceRequest.resource_metrics */
  free(kvs);
  int rc = -ENOMEM;
  if (!b.err && tgo__buf_reserve(out, b.used) == 0) {
    memcpy(out->data + out->len, head(&b), b.used);
    out->len += b.used;
    rc = 0;
  }
  free(b.base);
  return rc;
}
