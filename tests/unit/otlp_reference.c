/* protobuf-c's encoding of what the library writes by hand (otlp.c,
 * otlp_writer.c): generated from our proto/, descriptor-driven, slow and
 * obviously right, so the fast writers are tested against it byte for
 * byte. Test code only: the library never links protobuf-c's packer. */
#include "otlp_reference.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;

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
  if (s->n_links) {
    Opentelemetry__Proto__Trace__V1__Span__Link **ls = arena_alloc(a, s->n_links * sizeof *ls);
    if (!ls)
      return NULL;
    size_t n = 0;
    for (tgo__link *l = s->links; l; l = l->next) {
      Opentelemetry__Proto__Trace__V1__Span__Link *lk =
          NEW(a, Opentelemetry__Proto__Trace__V1__Span__Link, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT);
      if (!lk)
        return NULL;
      lk->trace_id.data = l->trace_id;
      lk->trace_id.len = 16;
      lk->span_id.data = l->span_id;
      lk->span_id.len = 8;
      lk->trace_state = l->tracestate ? (char *)l->tracestate : (char *)"";
      if (encode_attrs(a, &l->attrs, &lk->attributes, &lk->n_attributes) < 0)
        return NULL;
      lk->dropped_attributes_count = l->attrs.dropped;
      lk->flags = l->flags | 0x100u | (l->is_remote ? 0x200u : 0);
      ls[n++] = lk;
    }
    sp->links = ls;
    sp->n_links = n;
  }
  sp->dropped_links_count = s->dropped_links;
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

int otlp_ref_pack_span(const tgo_span *s, tgo__buf *out) {
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

int otlp_ref_pack_request(tgo_span *const *spans, size_t n, tgo__buf *out) {
  arena a = {0};
  int rc = -ENOMEM;
  Scope scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  scope.name = (char *)"tigerops";
  scope.version = (char *)PACKAGE_VERSION;
  ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  ResourceSpans *rsp = &rs;
  Request req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  Span **sps = arena_alloc(&a, (n ? n : 1) * sizeof *sps);
  if (!sps || !(rs.resource = encode_resource(&a)))
    goto bail;
  for (size_t i = 0; i < n; i++)
    if (!(sps[i] = encode_span(&a, spans[i])))
      goto bail;
  ss.scope = &scope;
  ss.spans = sps;
  ss.n_spans = n;
  ScopeSpans *ssp = &ss;
  rs.scope_spans = &ssp;
  rs.n_scope_spans = 1;
  req.resource_spans = &rsp;
  req.n_resource_spans = 1;
  if (tgo__buf_reserve(out, protobuf_c_message_get_packed_size(&req.base)) == 0) {
    out->len += protobuf_c_message_pack(&req.base, out->data + out->len);
    rc = 0;
  }
bail:
  arena_free(&a);
  return rc;
}
