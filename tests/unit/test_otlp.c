/* A batch encodes to an ExportTraceServiceRequest that protobuf-c's
 * generated decoder (from our proto/) reads back exactly. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "tgo-internal.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("TIGEROPS_SERVICE_NAME", "unit-svc", 1);
  setenv("OTEL_RESOURCE_ATTRIBUTES", "team=core", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(otlp, .init = setup);

static const KeyValue *kv(KeyValue **kvs, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(kvs[i]->key, key))
      return kvs[i];
  return NULL;
}

static Request *encode_and_decode(tgo_span **spans, size_t n, tgo__buf *buf) {
  cr_assert_eq(tgo__otlp_encode_traces(spans, n, buf), 0);
  Request *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, buf->len, buf->data);
  cr_assert_not_null(r, "protobuf-c cannot decode our bytes");
  return r;
}

Test(otlp, batch_round_trips_through_the_generated_decoder) {
  tgo_span_context remote;
  cr_assert_eq(tgo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
                                     &remote), 0);
  tgo_span *root = tgo_span_start("GET /x", 6, TGO_KIND_SERVER, NULL, &remote);
  tgo_attrs *a = tgo_span_attrs(root);
  tgo_attr_str(a, "http.route", "/x", 2);
  tgo_attr_int(a, "http.response.status_code", 503);
  tgo_attr_double(a, "ratio", 0.5);
  tgo_attr_bool(a, "error", 1);
  const char *tags[] = {"a", "b"};
  tgo_attr_str_array(a, "tags", tags, NULL, 2);
  tgo_attrs *ev = tgo_span_add_event(root, "exception", 9);
  tgo_attr_str(ev, "exception.type", "KeyError", 8);
  tgo_span_set_status(root, TGO_STATUS_ERROR, "down", 4);
  tgo_span *child = tgo_span_start("child", 5, TGO_KIND_CLIENT, root, NULL);
  tgo_span_ref(root);
  tgo_span_ref(child);
  tgo_span_end(child);
  tgo_span_end(root);
  tgo_span *batch[] = {child, root};
  tgo__buf buf = {0};
  Request *r = encode_and_decode(batch, 2, &buf);

  cr_assert_eq(r->n_resource_spans, 1);
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
  KeyValue **res = rs->resource->attributes;
  size_t nres = rs->resource->n_attributes;
  cr_assert_str_eq(kv(res, nres, "service.name")->value->string_value, "unit-svc");
  cr_assert_str_eq(kv(res, nres, "telemetry.sdk.name")->value->string_value, "tigerops");
  cr_assert_str_eq(kv(res, nres, "team")->value->string_value, "core");
  cr_assert_eq(kv(res, nres, "process.pid")->value->int_value, getpid());
  cr_assert_str_eq(rs->scope_spans[0]->scope->name, "tigerops");
  cr_assert_eq(rs->scope_spans[0]->n_spans, 2);

  Opentelemetry__Proto__Trace__V1__Span *c = rs->scope_spans[0]->spans[0];
  Opentelemetry__Proto__Trace__V1__Span *p = rs->scope_spans[0]->spans[1];
  cr_assert_str_eq(p->name, "GET /x");
  cr_assert_eq(p->kind, TGO_KIND_SERVER);
  cr_assert_eq(p->trace_id.len, 16);
  cr_assert(memcmp(p->trace_id.data, remote.trace_id, 16) == 0);
  cr_assert(memcmp(p->parent_span_id.data, remote.span_id, 8) == 0);
  cr_assert_eq(p->flags, 0x301u, "sampled, parent known remote");
  cr_assert(memcmp(c->parent_span_id.data, p->span_id.data, 8) == 0);
  cr_assert_eq(c->flags, 0x101u);
  cr_assert_geq(p->end_time_unix_nano, p->start_time_unix_nano);
  cr_assert_str_eq(kv(p->attributes, p->n_attributes, "http.route")->value->string_value, "/x");
  cr_assert_eq(kv(p->attributes, p->n_attributes, "http.response.status_code")->value->int_value, 503);
  cr_assert_float_eq(kv(p->attributes, p->n_attributes, "ratio")->value->double_value, 0.5, 1e-12);
  cr_assert_eq(kv(p->attributes, p->n_attributes, "error")->value->bool_value, 1);
  const KeyValue *t = kv(p->attributes, p->n_attributes, "tags");
  cr_assert_eq(t->value->array_value->n_values, 2);
  cr_assert_str_eq(t->value->array_value->values[1]->string_value, "b");
  cr_assert_eq(p->n_events, 1);
  cr_assert_str_eq(p->events[0]->name, "exception");
  cr_assert_str_eq(p->events[0]->attributes[0]->value->string_value, "KeyError");
  cr_assert_eq(p->status->code, 2);
  cr_assert_str_eq(p->status->message, "down");

  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
  tgo__buf_free(&buf);
  tgo_span_unref(child);
  tgo_span_unref(root);
}

Test(otlp, gzip_output_inflates_to_the_same_bytes) {
  uint8_t in[5000];
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (uint8_t)(i * 7 % 13);
  tgo__buf z = {0};
  cr_assert_eq(tgo__gzip(in, sizeof in, &z), 0);
  cr_assert_lt(z.len, sizeof in);
  uint8_t out[6000];
  z_stream s = {0};
  cr_assert_eq(inflateInit2(&s, 31), Z_OK);
  s.next_in = z.data;
  s.avail_in = (uInt)z.len;
  s.next_out = out;
  s.avail_out = sizeof out;
  cr_assert_eq(inflate(&s, Z_FINISH), Z_STREAM_END);
  cr_assert_eq(s.total_out, sizeof in);
  cr_assert(memcmp(in, out, sizeof in) == 0);
  inflateEnd(&s);
  tgo__buf_free(&z);
}
