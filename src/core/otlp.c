/* OTLP/protobuf encoding of a batch. protobuf-c (from our proto/) packs the
 * resource and scope, and is the reference encoding of a span that the fast
 * writer in otlp_writer.c is tested against byte for byte. */
#include "tgo-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Status Status;

typedef struct {
  tgo__chunk *chunks;
  char *pos;
  size_t left;
} arena;

static void *arena_alloc(arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n > a->left) {
    size_t size = n > 65536 ? n : 65536;
    tgo__chunk *c = tgo__chunk_push(&a->chunks, size);
    if (!c)
      return NULL;
    a->pos = c->data;
    a->left = size;
  }
  void *p = a->pos;
  a->pos += n;
  a->left -= n;
  return p;
}

static void arena_free(arena *a) {
  tgo__chunks_free(a->chunks);
  a->chunks = NULL;
}

#define NEW(a, T, init)                 \
  ({                                    \
    T *p_ = arena_alloc((a), sizeof(T)); \
    if (p_)                             \
      *p_ = (T)init;                    \
    p_;                                 \
  })

static AnyValue *any_value(arena *a) {
  return NEW(a, AnyValue, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
}

static AnyValue *array_value(arena *a, size_t n, AnyValue ***items) {
  AnyValue *v = any_value(a);
  ArrayValue *arr = NEW(a, ArrayValue, OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT);
  AnyValue **vals = arena_alloc(a, (n ? n : 1) * sizeof *vals);
  if (!v || !arr || !vals)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!(vals[i] = any_value(a)))
      return NULL;
  arr->n_values = n;
  arr->values = vals;
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
  v->array_value = arr;
  *items = vals;
  return v;
}

static AnyValue *encode_value(arena *a, const tgo__attr *at) {
  AnyValue *v, **items;
  switch (at->type) {
  case TGO__V_STR:
    if (!(v = any_value(a)))
      return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)at->v.s;
    return v;
  case TGO__V_INT:
    if (!(v = any_value(a)))
      return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = at->v.i;
    return v;
  case TGO__V_DOUBLE:
    if (!(v = any_value(a)))
      return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = at->v.d;
    return v;
  case TGO__V_BOOL:
    if (!(v = any_value(a)))
      return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = at->v.b;
    return v;
  case TGO__V_STR_ARRAY:
    if (!(v = array_value(a, at->n, &items)))
      return NULL;
    for (uint32_t i = 0; i < at->n; i++) {
      items[i]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
      items[i]->string_value = (char *)at->v.sa[i].s;
    }
    return v;
  case TGO__V_INT_ARRAY:
    if (!(v = array_value(a, at->n, &items)))
      return NULL;
    for (uint32_t i = 0; i < at->n; i++) {
      items[i]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
      items[i]->int_value = at->v.ia[i];
    }
    return v;
  case TGO__V_DOUBLE_ARRAY:
    if (!(v = array_value(a, at->n, &items)))
      return NULL;
    for (uint32_t i = 0; i < at->n; i++) {
      items[i]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
      items[i]->double_value = at->v.da[i];
    }
    return v;
  case TGO__V_BOOL_ARRAY:
    if (!(v = array_value(a, at->n, &items)))
      return NULL;
    for (uint32_t i = 0; i < at->n; i++) {
      items[i]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
      items[i]->bool_value = at->v.ba[i];
    }
    return v;
  }
  return NULL;
}

static KeyValue *keyvalue(arena *a, const char *key, AnyValue *v) {
  KeyValue *kv = NEW(a, KeyValue, OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT);
  if (kv) {
    kv->key = (char *)key;
    kv->value = v;
  }
  return kv;
}

static int encode_attrs(arena *a, const struct tgo_attrs *attrs, KeyValue ***out, size_t *n_out) {
  *n_out = 0;
  *out = NULL;
  if (!attrs->count)
    return 0;
  KeyValue **kvs = arena_alloc(a, attrs->count * sizeof *kvs);
  if (!kvs)
    return -ENOMEM;
  size_t n = 0;
  for (const tgo__attr *at = attrs->head; at; at = at->next) {
    AnyValue *v = encode_value(a, at);
    KeyValue *kv = v ? keyvalue(a, at->key, v) : NULL;
    if (!kv)
      return -ENOMEM;
    kvs[n++] = kv;
  }
  *out = kvs;
  *n_out = n;
  return 0;
}

static Span *encode_span(arena *a, const tgo_span *s) {
  Span *sp = NEW(a, Span, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT);
  if (!sp)
    return NULL;
  sp->trace_id.data = (uint8_t *)s->trace_id;
  sp->trace_id.len = 16;
  sp->span_id.data = (uint8_t *)s->span_id;
  sp->span_id.len = 8;
  if (s->has_parent) {
    sp->parent_span_id.data = (uint8_t *)s->parent_span_id;
    sp->parent_span_id.len = 8;
  }
  /* flags bits 8-9 say whether the parent is known and remote (OTLP 1.1). */
  sp->flags = s->flags | 0x100u | (s->parent_is_remote ? 0x200u : 0);
  sp->trace_state = s->tracestate ? (char *)s->tracestate : (char *)"";
  sp->name = s->name ? (char *)s->name : (char *)"";
  sp->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
  sp->start_time_unix_nano = s->start_ns;
  sp->end_time_unix_nano = s->end_ns;
  if (encode_attrs(a, &s->attrs, &sp->attributes, &sp->n_attributes) < 0)
    return NULL;
  sp->dropped_attributes_count = s->attrs.dropped;
  if (s->n_events) {
    Event **evs = arena_alloc(a, s->n_events * sizeof *evs);
    if (!evs)
      return NULL;
    size_t n = 0;
    for (tgo__event *e = s->events; e; e = e->next) {
      Event *ev = NEW(a, Event, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT);
      if (!ev)
        return NULL;
      ev->time_unix_nano = e->time_ns;
      ev->name = (char *)e->name;
      if (encode_attrs(a, &e->attrs, &ev->attributes, &ev->n_attributes) < 0)
        return NULL;
      ev->dropped_attributes_count = e->attrs.dropped;
      evs[n++] = ev;
    }
    sp->events = evs;
    sp->n_events = n;
  }
  sp->dropped_events_count = s->dropped_events;
  if (s->status != TGO_STATUS_UNSET) {
    Status *st = NEW(a, Status, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT);
    if (!st)
      return NULL;
    st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
    st->message = s->status_msg ? (char *)s->status_msg : (char *)"";
    sp->status = st;
  }
  return sp;
}

static Resource *encode_resource(arena *a) {
  Resource *r = NEW(a, Resource, OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT);
  enum { MAX_RESOURCE = 64 };
  tgo__kv *kvs = arena_alloc(a, MAX_RESOURCE * sizeof *kvs);
  KeyValue **items = arena_alloc(a, MAX_RESOURCE * sizeof *items);
  if (!r || !kvs || !items)
    return NULL;
  size_t n = tgo__resource_collect(kvs, MAX_RESOURCE);
  for (size_t i = 0; i < n; i++) {
    AnyValue *v = any_value(a);
    if (!v)
      return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = kvs[i].value;
    if (!strcmp(kvs[i].key, "process.pid")) {
      v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
      v->int_value = strtoll(kvs[i].value, NULL, 10);
    }
    if (!(items[i] = keyvalue(a, kvs[i].key, v)))
      return NULL;
  }
  r->attributes = items;
  r->n_attributes = n;
  return r;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* A length-delimited field with a one-byte tag: its size on the wire. */
static size_t field_len(size_t body) { return 1 + varint_len(body) + body; }

#define TAG_FIELD1_LEN 0x0A /* field 1, wire type 2 */
#define TAG_FIELD2_LEN 0x12 /* field 2, wire type 2 */

/* The span as protobuf-c packs it: the reference the fast writer
 * (otlp_writer.c) is tested against. */
int tgo__otlp_span_pack_reference(const tgo_span *s, tgo__buf *out) {
  arena a = {0};
  int rc = -ENOMEM;
  Span *sp = encode_span(&a, s);
  if (sp && tgo__buf_reserve(out, protobuf_c_message_get_packed_size(&sp->base)) == 0) {
    out->len += protobuf_c_message_pack(&sp->base, out->data + out->len);
    rc = 0;
  }
  arena_free(&a);
  return rc;
}

/* Resource and scope are packed by protobuf-c, spans by the writer
 * (otlp_writer.c); the three envelope levels (ExportTraceServiceRequest >
 * ResourceSpans > ScopeSpans) are framed here, sized once. */
int tgo__otlp_encode_traces(tgo_span *const *spans, size_t n, tgo__buf *out) {
  arena a = {0};
  int rc = -ENOMEM;
  Scope scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  scope.name = (char *)"tigerops";
  scope.version = (char *)PACKAGE_VERSION;
  size_t *sizes = arena_alloc(&a, (n ? n : 1) * sizeof *sizes);
  Resource *resource = encode_resource(&a);
  if (!sizes || !resource)
    goto bail;
  size_t scope_spans_len = field_len(protobuf_c_message_get_packed_size(&scope.base));
  for (size_t i = 0; i < n; i++) {
    sizes[i] = tgo__otlp_span_size(spans[i]);
    scope_spans_len += field_len(sizes[i]);
  }
  size_t resource_len = protobuf_c_message_get_packed_size(&resource->base);
  size_t resource_spans_len = field_len(resource_len) + field_len(scope_spans_len);
  size_t total = field_len(resource_spans_len);
  if (tgo__buf_reserve(out, total) < 0)
    goto bail;
  uint8_t *p = out->data + out->len;
  *p++ = TAG_FIELD1_LEN; /* ExportTraceServiceRequest.resource_spans */
  p = put_varint(p, resource_spans_len);
  *p++ = TAG_FIELD1_LEN; /* ResourceSpans.resource */
  p = put_varint(p, resource_len);
  p += protobuf_c_message_pack(&resource->base, p);
  *p++ = TAG_FIELD2_LEN; /* ResourceSpans.scope_spans */
  p = put_varint(p, scope_spans_len);
  *p++ = TAG_FIELD1_LEN; /* ScopeSpans.scope */
  p = put_varint(p, protobuf_c_message_get_packed_size(&scope.base));
  p += protobuf_c_message_pack(&scope.base, p);
  tgo__pii_begin();
  for (size_t i = 0; i < n; i++) {
    *p++ = TAG_FIELD2_LEN; /* ScopeSpans.spans */
    p = put_varint(p, sizes[i]);
    p = tgo__otlp_span_write(p, spans[i]);
  }
  tgo__pii_end();
  out->len = (size_t)(p - out->data);
  rc = 0;
bail:
  arena_free(&a);
  return rc;
}

/* gzip framing (windowBits 16+15), level 1: the collector is usually near,
 * so the exporter thread's CPU matters more than the last bytes. */
int tgo__gzip(const uint8_t *in, size_t len, tgo__buf *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -ENOMEM;
  size_t bound = deflateBound(&z, (uLong)len);
  int rc = -ENOMEM;
  if (tgo__buf_reserve(out, bound) == 0) {
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)(out->cap - out->len);
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
      out->len += z.total_out;
      rc = 0;
    } else {
      rc = -EIO;
    }
  }
  deflateEnd(&z);
  return rc;
}
