/* Resource attributes reach the wire as valid UTF-8 whatever their source
 * (environment, percent-decoded OTEL_RESOURCE_ATTRIBUTES, the public API):
 * a strict OTLP decoder rejects the whole request for one bad string. */
#include <criterion/criterion.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "tgo-internal.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("TIGEROPS_SERVICE_NAME", "shop\xff-api", 1);
  setenv("TIGEROPS_ENVIRONMENT", "pr\xc3od", 1); /* a lead byte without its continuation */
  setenv("OTEL_RESOURCE_ATTRIBUTES", "team=caf%C3%A9,zone=eu%FFwest", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(resource, .init = setup);

/* glibc's iconv refuses invalid UTF-8 (EILSEQ) and truncated sequences
 * (EINVAL): an independent check, not our own repair function. */
static int valid_utf8(const char *s) {
  iconv_t cd = iconv_open("UTF-8", "UTF-8");
  cr_assert_neq(cd, (iconv_t)-1);
  size_t n = strlen(s), cap = 4 * n + 4;
  char *out = malloc(cap), *op = out, *ip = (char *)s;
  size_t left = cap;
  size_t rc = iconv(cd, &ip, &n, &op, &left);
  iconv_close(cd);
  free(out);
  return rc != (size_t)-1 && n == 0;
}

static const char *value_of(Request *r, const char *key) {
  Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_spans[0]->resource;
  for (size_t i = 0; i < res->n_attributes; i++)
    if (!strcmp(res->attributes[i]->key, key))
      return res->attributes[i]->value->string_value;
  return NULL;
}

Test(resource, invalid_utf8_from_every_source_is_repaired_in_the_encoded_request) {
  tgo_resource_set("k8s.pod.name", "web-\x80\xfe-7");
  char long_value[600];
  memset(long_value, 'a', sizeof long_value);
  for (size_t i = 505; i + 2 < sizeof long_value; i += 2)
    memcpy(long_value + i, "\xc3\xa9", 2); /* cut at 511 bytes would split one */
  long_value[sizeof long_value - 1] = '\0';
  tgo_resource_set("long", long_value);
  tgo_span *s = tgo_span_start("x", 1, TGO_KIND_INTERNAL, NULL, NULL);
  s->end_ns = s->start_ns + 1;
  tgo__buf buf = {0};
  cr_assert_eq(tgo__otlp_encode_traces(&s, 1, &buf), 0);
  Request *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, buf.len, buf.data);
  cr_assert_not_null(r, "protobuf-c cannot decode the request");

  cr_assert_str_eq(value_of(r, "service.name"), "shop?-api", "invalid bytes become '?'");
  cr_assert_str_eq(value_of(r, "deployment.environment.name"), "pr?od");
  cr_assert_str_eq(value_of(r, "team"), "caf\xc3\xa9", "valid UTF-8 is kept");
  cr_assert_str_eq(value_of(r, "zone"), "eu?west", "percent-decoded %%FF is repaired too");
  cr_assert_str_eq(value_of(r, "k8s.pod.name"), "web-?" "?-7", "tgo_resource_set repairs as it stores");
  cr_assert_eq(strlen(value_of(r, "long")) % 2, 1, "cut before the character it would split");
  Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_spans[0]->resource;
  for (size_t i = 0; i < res->n_attributes; i++) {
    const KeyValue *kv = res->attributes[i];
    cr_assert(valid_utf8(kv->key), "key %s", kv->key);
    if (kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
      cr_assert(valid_utf8(kv->value->string_value), "value of %s is not UTF-8", kv->key);
  }
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
  tgo__buf_free(&buf);
  tgo_span_unref(s);
}
