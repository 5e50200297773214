/* OTLP/JSON (otlp_json.c): the exact text for tricky values, and the same
 * PII masking and scrubbing as the protobuf path, string for string. */
#include <criterion/criterion.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "tgo-internal.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("TIGEROPS_SERVICE_NAME", "unit-svc", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(otlp_json, .init = setup);

/* A span with fixed ids and times, so its JSON is known to the byte. */
static tgo_span *fixed_span(const char *name, tgo_kind kind) {
  tgo_span *s = tgo_span_start(name, strlen(name), kind, NULL, NULL);
  cr_assert(s->recording);
  cr_assert_eq(tgo__hex_decode("4bf92f3577b34da6a3ce929d0e0e4736", 16, s->trace_id), 0);
  cr_assert_eq(tgo__hex_decode("00f067aa0ba902b7", 8, s->span_id), 0);
  s->start_ns = 1700000000123456789ull;
  s->end_ns = 18446744073709551615ull; /* past 2^53: must stay exact */
  return s;
}

/* The request's "spans":[...] array, as a string the caller frees. */
static char *spans_json(tgo_span **spans, size_t n) {
  tgo__buf buf = {0};
  cr_assert_eq(tgo__otlp_json_encode_traces(spans, n, &buf), 0);
  char *text = strndup((const char *)buf.data, buf.len);
  tgo__buf_free(&buf);
  const char *from = strstr(text, "\"spans\":[");
  cr_assert_not_null(from, "%s", text);
  from += strlen("\"spans\":");
  static const char tail[] = "}]}]}";
  size_t len = strlen(from);
  cr_assert(len > strlen(tail) && !strcmp(from + len - strlen(tail), tail), "%s", text);
  char *out = strndup(from, len - strlen(tail));
  free(text);
  return out;
}

static void assert_spans_json(tgo_span **spans, size_t n, const char *expected) {
  char *got = spans_json(spans, n);
  cr_assert_str_eq(got, expected, "\n got: %s\nwant: %s", got, expected);
  free(got);
}

#define IDS "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\""
#define TIMES "\"startTimeUnixNano\":\"1700000000123456789\",\"endTimeUnixNano\":\"18446744073709551615\""

Test(otlp_json, a_bare_span_has_hex_ids_integer_enums_and_times_as_strings) {
  tgo_span *s = fixed_span("root", TGO_KIND_SERVER);
  assert_spans_json(&s, 1, "[{" IDS ",\"name\":\"root\",\"kind\":2," TIMES ",\"flags\":257}]");
  tgo_span_unref(s);
}

Test(otlp_json, strings_are_escaped_control_characters_included) {
  tgo_span *s = fixed_span("q\"b\\s/", TGO_KIND_INTERNAL);
  tgo_attrs *a = tgo_span_attrs(s);
  static const char tricky[] = "tab\there\nnl\rcr\bbs\fff\x01\x1f\x7f \xc3\xa9 \xe2\x80\xa8 end";
  tgo_attr_str(a, "k\"ey", tricky, sizeof tricky - 1);
  tgo_attr_str(a, "empty", "", 0);
  assert_spans_json(&s, 1,
                    "[{" IDS ",\"name\":\"q\\\"b\\\\s/\",\"kind\":1," TIMES ",\"attributes\":["
                    "{\"key\":\"k\\\"ey\",\"value\":{\"stringValue\":\"tab\\there\\nnl\\rcr\\bbs\\fff"
                    "\\u0001\\u001f\x7f \xc3\xa9 \xe2\x80\xa8 end\"}},"
                    "{\"key\":\"empty\",\"value\":{\"stringValue\":\"\"}}],\"flags\":257}]");
  tgo_span_unref(s);
}

Test(otlp_json, invalid_utf8_is_repaired_to_question_marks_like_the_protobuf_path) {
  tgo_span *s = fixed_span("n", TGO_KIND_INTERNAL);
  /* Through the API: span.c repairs the copy, as for protobuf. */
  tgo_attr_str(tgo_span_attrs(s), "v", "a\xff" "b\xc3" "c\xed\xa0\x80", 8);
  /* Strings the encoder gets unrepaired (set behind the API's back): it
   * repairs them itself, the same way, so no invalid byte reaches JSON. */
  s->name = "x\xfe\xc3";
  s->name_len = 3;
  s->tracestate = "k=\x80v";
  s->tracestate_len = 4;
  assert_spans_json(&s, 1,
                    "[{" IDS ",\"traceState\":\"k=?v\",\"name\":\"x??\",\"kind\":1," TIMES
                    ",\"attributes\":[{\"key\":\"v\",\"value\":{\"stringValue\":\"a?b?c???\"}}],"
                    "\"flags\":257}]");
  tgo_span_unref(s);
}

Test(otlp_json, integers_are_decimal_strings_to_the_last_bit) {
  tgo_span *s = fixed_span("n", TGO_KIND_INTERNAL);
  tgo_attrs *a = tgo_span_attrs(s);
  tgo_attr_int(a, "max", INT64_MAX);
  tgo_attr_int(a, "min", INT64_MIN);
  tgo_attr_int(a, "neg", -1);
  tgo_attr_int(a, "zero", 0);
  int64_t ints[] = {9007199254740993, -300};
  tgo_attr_int_array(a, "ia", ints, 2);
  assert_spans_json(&s, 1,
                    "[{" IDS ",\"name\":\"n\",\"kind\":1," TIMES ",\"attributes\":["
                    "{\"key\":\"max\",\"value\":{\"intValue\":\"9223372036854775807\"}},"
                    "{\"key\":\"min\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
                    "{\"key\":\"neg\",\"value\":{\"intValue\":\"-1\"}},"
                    "{\"key\":\"zero\",\"value\":{\"intValue\":\"0\"}},"
                    "{\"key\":\"ia\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"9007199254740993\"},"
                    "{\"intValue\":\"-300\"}]}}}],\"flags\":257}]");
  tgo_span_unref(s);
}

Test(otlp_json, doubles_are_shortest_round_trip_numbers_and_non_finite_are_strings) {
  /* A decimal comma locale must not leak into the numbers. */
  int comma = setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL;
  tgo_span *s = fixed_span("n", TGO_KIND_INTERNAL);
  tgo_attrs *a = tgo_span_attrs(s);
  double ds[] = {0.1, 1.0 / 3, -0.0, 3.0, 1e300, 5e-324, 123456789012.5, NAN, INFINITY, -INFINITY};
  tgo_attr_double_array(a, "da", ds, sizeof ds / sizeof ds[0]);
  tgo_attr_double(a, "d", 2.5);
  assert_spans_json(&s, 1,
                    "[{" IDS ",\"name\":\"n\",\"kind\":1," TIMES ",\"attributes\":["
                    "{\"key\":\"da\",\"value\":{\"arrayValue\":{\"values\":["
                    "{\"doubleValue\":0.1},{\"doubleValue\":0.3333333333333333},{\"doubleValue\":-0},"
                    "{\"doubleValue\":3},{\"doubleValue\":1e+300},{\"doubleValue\":4.94065645841247e-324},"
                    "{\"doubleValue\":123456789012.5},{\"doubleValue\":\"NaN\"},"
                    "{\"doubleValue\":\"Infinity\"},{\"doubleValue\":\"-Infinity\"}]}}},"
                    "{\"key\":\"d\",\"value\":{\"doubleValue\":2.5}}],\"flags\":257}]");
  setlocale(LC_NUMERIC, "C");
  cr_log_info("decimal comma locale %s", comma ? "tried" : "not installed");
  tgo_span_unref(s);
}

Test(otlp_json, booleans_and_empty_arrays_keep_their_presence) {
  tgo_span *s = fixed_span("n", TGO_KIND_CLIENT);
  tgo_attrs *a = tgo_span_attrs(s);
  tgo_attr_bool(a, "t", 1);
  tgo_attr_bool(a, "f", 0);
  int bs[] = {0, 1};
  tgo_attr_bool_array(a, "ba", bs, 2);
  tgo_attr_str_array(a, "none", NULL, NULL, 0);
  tgo_attr_int_array(a, "noints", NULL, 0);
  const char *strs[] = {"a", "", "c\""};
  tgo_attr_str_array(a, "sa", strs, NULL, 3);
  assert_spans_json(&s, 1,
                    "[{" IDS ",\"name\":\"n\",\"kind\":3," TIMES ",\"attributes\":["
                    "{\"key\":\"t\",\"value\":{\"boolValue\":true}},"
                    "{\"key\":\"f\",\"value\":{\"boolValue\":false}},"
                    "{\"key\":\"ba\",\"value\":{\"arrayValue\":{\"values\":[{\"boolValue\":false},"
                    "{\"boolValue\":true}]}}},"
                    "{\"key\":\"none\",\"value\":{\"arrayValue\":{}}},"
                    "{\"key\":\"noints\",\"value\":{\"arrayValue\":{}}},"
                    "{\"key\":\"sa\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
                    "{\"stringValue\":\"\"},{\"stringValue\":\"c\\\"\"}]}}}],\"flags\":257}]");
  tgo_span_unref(s);
}

Test(otlp_json, parent_remote_flags_events_dropped_counts_and_status) {
  tgo_span_context remote;
  cr_assert_eq(tgo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
                                     &remote), 0);
  remote.tracestate = "congo=t61rcWkgMzE";
  remote.tracestate_len = strlen(remote.tracestate);
  tgo_span *s = tgo_span_start("GET /x", 6, TGO_KIND_SERVER, NULL, &remote);
  cr_assert_eq(tgo__hex_decode("b7ad6b7169203331", 8, s->span_id), 0);
  s->start_ns = 10;
  s->end_ns = 20;
  tgo_attrs *ev = tgo_span_add_event(s, "exception", 9);
  tgo_attr_str(ev, "exception.stacktrace", "Traceback:\n  File \"a.py\"", 24);
  ev->dropped = 2;
  s->events->time_ns = 15;
  tgo_span_add_event(s, "", 0);
  s->events->next->time_ns = 0;
  s->attrs.dropped = 7;
  s->dropped_events = 3;
  tgo_span_set_status(s, TGO_STATUS_ERROR, "boom\n", 5);
  assert_spans_json(&s, 1,
                    "[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"b7ad6b7169203331\","
                    "\"traceState\":\"congo=t61rcWkgMzE\",\"parentSpanId\":\"00f067aa0ba902b7\","
                    "\"name\":\"GET /x\",\"kind\":2,\"startTimeUnixNano\":\"10\",\"endTimeUnixNano\":\"20\","
                    "\"droppedAttributesCount\":7,\"events\":[{\"timeUnixNano\":\"15\",\"name\":\"exception\","
                    "\"attributes\":[{\"key\":\"exception.stacktrace\",\"value\":{\"stringValue\":"
                    "\"Traceback:\\n  File \\\"a.py\\\"\"}}],\"droppedAttributesCount\":2},{}],"
                    "\"droppedEventsCount\":3,\"status\":{\"message\":\"boom\\n\",\"code\":2},"
                    "\"flags\":769}]");
  tgo_span_set_status(s, TGO_STATUS_OK, NULL, 0);
  s->events = NULL;
  s->attrs.dropped = 0;
  s->dropped_events = 0;
  assert_spans_json(&s, 1,
                    "[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"b7ad6b7169203331\","
                    "\"traceState\":\"congo=t61rcWkgMzE\",\"parentSpanId\":\"00f067aa0ba902b7\","
                    "\"name\":\"GET /x\",\"kind\":2,\"startTimeUnixNano\":\"10\",\"endTimeUnixNano\":\"20\","
                    "\"status\":{\"code\":1},\"flags\":769}]");
  tgo_span_unref(s);
}

Test(otlp_json, the_request_has_resource_scope_and_every_span_of_the_batch) {
  tgo_resource_set("quote\"d", "v\\1");
  tgo_span *a = fixed_span("a", TGO_KIND_INTERNAL), *b = fixed_span("b", TGO_KIND_INTERNAL);
  tgo_span *batch[] = {a, b};
  tgo__buf buf = {0};
  cr_assert_eq(tgo__otlp_json_encode_traces(batch, 2, &buf), 0);
  char *text = strndup((const char *)buf.data, buf.len);
  static const char head[] =
      "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
      "\"unit-svc\"}},{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"tigerops\"}},";
  cr_assert(!strncmp(text, head, sizeof head - 1), "%s", text);
  char pid[64];
  snprintf(pid, sizeof pid, "{\"key\":\"process.pid\",\"value\":{\"intValue\":\"%d\"}}", (int)getpid());
  cr_assert_not_null(strstr(text, pid), "%s", text);
  cr_assert_not_null(strstr(text, "{\"key\":\"quote\\\"d\",\"value\":{\"stringValue\":\"v\\\\1\"}}"), "%s", text);
  cr_assert_not_null(strstr(text, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"tigerops\",\"version\":\"" PACKAGE_VERSION
                                  "\"},\"spans\":[{"),
                     "%s", text);
  cr_assert_not_null(strstr(text, "\"name\":\"a\""));
  cr_assert_not_null(strstr(text, "},{\"traceId\""), "two spans, comma-separated");
  cr_assert_not_null(strstr(text, "\"name\":\"b\""));
  free(text);
  tgo__buf_free(&buf);
  /* an empty batch is still a whole document */
  cr_assert_eq(tgo__otlp_json_encode_traces(NULL, 0, &buf), 0);
  text = strndup((const char *)buf.data, buf.len);
  cr_assert_not_null(strstr(text, "\"spans\":[]}]}]}"), "%s", text);
  free(text);
  tgo__buf_free(&buf);
  tgo_span_unref(a);
  tgo_span_unref(b);
}

/* JSON string escaping of the decoded protobuf value, for comparing. */
static void json_escape(const char *s, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      out += sprintf(out, "\\%c", c);
    else if (c == '\n')
      out += sprintf(out, "\\n");
    else if (c == '\t')
      out += sprintf(out, "\\t");
    else if (c < 0x20)
      out += sprintf(out, "\\u%04x", c);
    else
      *out++ = (char)c;
  }
  *out = '\0';
}

Test(otlp_json, pii_masking_and_scrubbing_are_those_of_the_protobuf_path) {
  static const char *const values[] = {
      "mail bob.smith@example.com now",
      "card 4111 1111 1111 1111, order 1234567890123",
      "call +44 20 7946 0958 or (555) 123-4567",
      "(psycopg2.errors.UniqueViolation) duplicate key\nDETAIL:  Key (email)=(ann@example.org) exists.\n"
      "[SQL: INSERT INTO users (email, pw) VALUES (%(email)s, %(pw)s)]\n"
      "[parameters: {'email': 'ann@example.org', 'pw': 'hunter2\"\\'}]",
      "custom secret-4242 token",
      "tab\tquote\" control\x02 caf\xc3\xa9 alice@example.com",
  };
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "secret-[0-9]+", "test"), 0);
  size_t nv = sizeof values / sizeof values[0];
  tgo_span *s = fixed_span("user alice@example.com", TGO_KIND_INTERNAL);
  char keys[8][24];
  for (size_t i = 0; i < nv; i++) {
    snprintf(keys[i], sizeof keys[i], "v%zu", i);
    tgo_attr_str(tgo_span_attrs(s), keys[i], values[i], strlen(values[i]));
  }
  tgo_attr_str(tgo_span_add_event(s, "exception", 9), "exception.message", values[3], strlen(values[3]));
  tgo_span_set_status(s, TGO_STATUS_ERROR, values[0], strlen(values[0]));

  tgo__buf pb = {0}, js = {0};
  cr_assert_eq(tgo__otlp_encode_traces(&s, 1, &pb), 0);
  cr_assert_eq(tgo__otlp_json_encode_traces(&s, 1, &js), 0);
  char *json = strndup((const char *)js.data, js.len);
  Request *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, pb.len,
                                                                                             pb.data);
  cr_assert_not_null(r);
  const Opentelemetry__Proto__Trace__V1__Span *ps = r->resource_spans[0]->scope_spans[0]->spans[0];
  char want[4096];
  size_t masked = 0;
  for (size_t i = 0; i < ps->n_attributes; i++) {
    const char *v = ps->attributes[i]->value->string_value;
    masked += strcmp(v, values[i]) != 0;
    char member[4200];
    json_escape(v, strlen(v), want);
    snprintf(member, sizeof member, "{\"key\":\"%s\",\"value\":{\"stringValue\":\"%s\"}}", ps->attributes[i]->key,
             want);
    cr_assert_not_null(strstr(json, member), "JSON lacks the protobuf path's %s\n%s", member, json);
  }
  cr_assert_eq(masked, nv, "every value has something masked: %zu of %zu", masked, nv);
  json_escape(ps->name, strlen(ps->name), want);
  cr_assert_str_eq(ps->name, "user *****@*******.***");
  cr_assert_not_null(strstr(json, "\"name\":\"user *****@*******.***\""), "%s", json);
  json_escape(ps->status->message, strlen(ps->status->message), want);
  cr_assert_not_null(strstr(json, want), "%s", json);
  const char *ev = ps->events[0]->attributes[0]->value->string_value;
  cr_assert_null(strstr(ev, "hunter2"));
  json_escape(ev, strlen(ev), want);
  cr_assert_not_null(strstr(json, want), "%s", json);
  cr_assert_null(strstr(json, "@example"), "%s", json);
  cr_assert_null(strstr(json, "hunter2"), "%s", json);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
  free(json);
  tgo__buf_free(&pb);
  tgo__buf_free(&js);
  tgo_span_unref(s);
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "", "test"), 0);
}

Test(otlp_json, a_full_batch_of_large_spans_is_one_valid_document) {
  enum { N = 512 };
  static tgo_span *batch[N];
  char big[8192];
  memset(big, 0x01, sizeof big); /* 8 KB that grow sixfold as \u0001 */
  for (int i = 0; i < N; i++) {
    batch[i] = fixed_span("big", TGO_KIND_INTERNAL);
    tgo_attr_str(tgo_span_attrs(batch[i]), "x", big, sizeof big);
  }
  tgo__buf buf = {0};
  cr_assert_eq(tgo__otlp_json_encode_traces(batch, N, &buf), 0);
  size_t escaped = 0;
  for (size_t i = 0; i + 6 <= buf.len; i++)
    if (!memcmp(buf.data + i, "\\u0001", 6))
      escaped++, i += 5;
  cr_assert_eq(escaped, (size_t)N * sizeof big, "every byte escaped, none lost to buffer growth");
  cr_assert(buf.len > (size_t)N * 6 * sizeof big && buf.len < (size_t)N * (6 * sizeof big + 512));
  tgo__buf_free(&buf);
  for (int i = 0; i < N; i++)
    tgo_span_unref(batch[i]);
}

Test(otlp_json, the_protocol_setting_takes_http_json_and_its_traces_variant_wins) {
  tgo__config c;
  tgo__config_defaults(&c);
  cr_assert_eq(c.protocol, TGO__PROTOCOL_HTTP_PROTOBUF);
  char *envp[] = {"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "TIGEROPS_CONFIG=/nonexistent-tigerops.ini", NULL};
  tgo__config_load(&c, envp);
  cr_assert_eq(c.protocol, TGO__PROTOCOL_HTTP_JSON);
  char *both[] = {"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf",
                  "TIGEROPS_CONFIG=/nonexistent-tigerops.ini", NULL};
  tgo__config_defaults(&c);
  tgo__config_load(&c, both);
  cr_assert_eq(c.protocol, TGO__PROTOCOL_HTTP_PROTOBUF, "the per-signal name is the more specific one");
  tgo__config_defaults(&c);
  cr_assert_eq(tgo__config_apply(&c, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "test"), 0);
  cr_assert_lt(tgo__config_apply(&c, "OTEL_EXPORTER_OTLP_PROTOCOL", "thrift", "test"), 0);
  cr_assert_eq(c.protocol, TGO__PROTOCOL_HTTP_JSON, "a bad value keeps the one in use");
  char buf[64];
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "test"), 0);
  cr_assert_eq(tgo_config_get("OTEL_EXPORTER_OTLP_PROTOCOL", buf, sizeof buf), 0);
  cr_assert_str_eq(buf, "http/json");
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "test"), 0);
}

/* The spec's escape of one ASCII byte, written out independently. */
static const char *reference_escape(unsigned char c, char buf[8]) {
  switch (c) {
  case '"': return "\\\"";
  case '\\': return "\\\\";
  case '\b': return "\\b";
  case '\f': return "\\f";
  case '\n': return "\\n";
  case '\r': return "\\r";
  case '\t': return "\\t";
  }
  if (c < 0x20)
    snprintf(buf, 8, "\\u%04x", c);
  else
    snprintf(buf, 8, "%c", c);
  return buf;
}

Test(otlp_json, every_ascii_byte_at_every_offset_of_the_word_scan_is_escaped_right) {
  enum { LEN = 19 };
  for (unsigned c = 0; c < 0x80; c++) {
    tgo_span *s = fixed_span("n", TGO_KIND_INTERNAL);
    char keys[LEN][16];
    for (int at = 0; at < LEN; at++) {
      char v[LEN];
      memset(v, 'a', LEN);
      v[at] = (char)c;
      snprintf(keys[at], sizeof keys[at], "k%d", at);
      tgo_attr_str(tgo_span_attrs(s), keys[at], v, LEN);
    }
    char *json = spans_json(&s, 1);
    for (int at = 0; at < LEN; at++) {
      char esc[8], want[128];
      snprintf(want, sizeof want, "{\"key\":\"k%d\",\"value\":{\"stringValue\":\"%.*s%s%.*s\"}}", at, at,
               "aaaaaaaaaaaaaaaaaaaa", reference_escape((unsigned char)c, esc), LEN - at - 1, "aaaaaaaaaaaaaaaaaaaa");
      cr_assert_not_null(strstr(json, want), "byte 0x%02x at %d: want %s in %s", c, at, want, json);
    }
    free(json);
    tgo_span_unref(s);
  }
}

/* A span with two links as the bridge and the consumers make them: a remote
 * sampled one with trace state and attributes, a local unsampled bare one. */
static tgo_span *span_with_links(void) {
  tgo_span *s = fixed_span("batch", TGO_KIND_CONSUMER);
  tgo_span_context other;
  cr_assert_eq(tgo_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55, &other), 0);
  other.tracestate = "congo=t61rcWkgMzE";
  other.tracestate_len = strlen(other.tracestate);
  other.is_remote = 1;
  tgo_attrs *la = tgo__span_add_link(s, &other);
  cr_assert_not_null(la);
  tgo_attr_str(la, "messaging.message.id", "m\"1", 3);
  tgo_attr_int(la, "n", -5);
  const char *strs[] = {"a", "b"};
  tgo_attr_str_array(la, "sa", strs, NULL, 2);
  la->dropped = 2;
  cr_assert_eq(tgo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 55, &other), 0);
  other.is_remote = 0;
  cr_assert_not_null(tgo__span_add_link(s, &other));
  return s;
}

#define LINKS                                                                                                  \
  "\"links\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\","            \
  "\"traceState\":\"congo=t61rcWkgMzE\",\"attributes\":["                                                     \
  "{\"key\":\"messaging.message.id\",\"value\":{\"stringValue\":\"m\\\"1\"}},"                                \
  "{\"key\":\"n\",\"value\":{\"intValue\":\"-5\"}},"                                                          \
  "{\"key\":\"sa\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},{\"stringValue\":\"b\"}]}}}]," \
  "\"droppedAttributesCount\":2,\"flags\":769},"                                                              \
  "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\",\"flags\":256}]"

Test(otlp_json, links_have_hex_ids_trace_state_attributes_and_the_flags_of_the_protobuf_path) {
  tgo_span *s = span_with_links();
  assert_spans_json(&s, 1, "[{" IDS ",\"name\":\"batch\",\"kind\":5," TIMES "," LINKS ",\"flags\":257}]");
  /* droppedLinksCount comes after the links, before the status, as field
   * 14 comes between 13 and 15; alone when every link was dropped. */
  s->dropped_links = 4;
  tgo_span_set_status(s, TGO_STATUS_ERROR, NULL, 0);
  assert_spans_json(&s, 1,
                    "[{" IDS ",\"name\":\"batch\",\"kind\":5," TIMES "," LINKS
                    ",\"droppedLinksCount\":4,\"status\":{\"code\":2},\"flags\":257}]");
  s->links = NULL;
  assert_spans_json(&s, 1,
                    "[{" IDS ",\"name\":\"batch\",\"kind\":5," TIMES
                    ",\"droppedLinksCount\":4,\"status\":{\"code\":2},\"flags\":257}]");
  tgo_span_unref(s);
}

Test(otlp_json, links_past_the_limit_are_counted_as_dropped) {
  tgo_span *s = fixed_span("fan-in", TGO_KIND_INTERNAL);
  tgo_span_context other;
  cr_assert_eq(tgo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55, &other), 0);
  for (int i = 0; i < TGO__SPAN_MAX_LINKS + 3; i++)
    tgo__span_add_link(s, &other);
  char *json = spans_json(&s, 1);
  size_t n = 0;
  for (const char *p = json; (p = strstr(p, "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":"
                                             "\"00f067aa0ba902b7\",\"flags\":769}"));
       p++)
    n++;
  cr_assert_eq(n, TGO__SPAN_MAX_LINKS, "%s", json);
  cr_assert_not_null(strstr(json, "}],\"droppedLinksCount\":3,\"flags\":257}]"), "%s", json);
  free(json);
  tgo_span_unref(s);
}

/* The links of a protobuf-c-decoded span written as our JSON would write
 * them, from the decoded values alone: what the JSON must say if both
 * encodings carry the same links. Covers the value types links get. */
static char *cat(char *p, const char *s) { return p + sprintf(p, "%s", s); }

static char *decoded_scalar(char *p, const Opentelemetry__Proto__Common__V1__AnyValue *v) {
  char esc[4096];
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    json_escape(v->string_value, strlen(v->string_value), esc);
    return p + sprintf(p, "{\"stringValue\":\"%s\"}", esc);
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    return p + sprintf(p, "{\"intValue\":\"%lld\"}", (long long)v->int_value);
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    return p + sprintf(p, "{\"boolValue\":%s}", v->bool_value ? "true" : "false");
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    p = cat(p, "{\"arrayValue\":{");
    if (v->array_value->n_values) {
      p = cat(p, "\"values\":[");
      for (size_t i = 0; i < v->array_value->n_values; i++) {
        if (i)
          p = cat(p, ",");
        p = decoded_scalar(p, v->array_value->values[i]);
      }
      p = cat(p, "]");
    }
    return cat(p, "}}");
  default: cr_assert_fail("value case %d not covered by this test", v->value_case);
  }
  return p;
}

static char *decoded_links(char *p, const Opentelemetry__Proto__Trace__V1__Span *ps) {
  char hex[33];
  if (ps->n_links) {
    p = cat(p, "\"links\":[");
    for (size_t i = 0; i < ps->n_links; i++) {
      const Opentelemetry__Proto__Trace__V1__Span__Link *l = ps->links[i];
      cr_assert_eq(l->trace_id.len, 16);
      cr_assert_eq(l->span_id.len, 8);
      p = cat(p, i ? ",{\"traceId\":\"" : "{\"traceId\":\"");
      tgo__hex_encode(l->trace_id.data, 16, hex);
      hex[32] = 0;
      p = cat(p, hex);
      p = cat(p, "\",\"spanId\":\"");
      tgo__hex_encode(l->span_id.data, 8, hex);
      hex[16] = 0;
      p = cat(p, hex);
      p = cat(p, "\"");
      if (*l->trace_state)
        p += sprintf(p, ",\"traceState\":\"%s\"", l->trace_state);
      if (l->n_attributes) {
        p = cat(p, ",\"attributes\":[");
        for (size_t k = 0; k < l->n_attributes; k++) {
          p += sprintf(p, "%s{\"key\":\"%s\",\"value\":", k ? "," : "", l->attributes[k]->key);
          p = decoded_scalar(p, l->attributes[k]->value);
          p = cat(p, "}");
        }
        p = cat(p, "]");
      }
      if (l->dropped_attributes_count)
        p += sprintf(p, ",\"droppedAttributesCount\":%u", l->dropped_attributes_count);
      p += sprintf(p, ",\"flags\":%u}", l->flags);
    }
    p = cat(p, "]");
  }
  if (ps->dropped_links_count)
    p += sprintf(p, "%s\"droppedLinksCount\":%u", ps->n_links ? "," : "", ps->dropped_links_count);
  return p;
}

Test(otlp_json, links_decode_the_same_from_json_as_from_protobuf_masking_included) {
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "secret-[0-9]+", "test"), 0);
  tgo_span *s = span_with_links();
  /* Link attribute strings are masked and scrubbed on the protobuf path
   * (write_keyvalue's text_field); the JSON must carry the same text. */
  static const char *const values[] = {
      "mail bob.smith@example.com now",
      "card 4111 1111 1111 1111",
      "(psycopg2.errors.UniqueViolation) dup\nDETAIL:  Key (email)=(ann@example.org) exists.\n"
      "[SQL: INSERT INTO u (email) VALUES (%(email)s)]\n[parameters: {'email': 'ann@example.org'}]",
      "custom secret-4242 tab\there",
  };
  tgo_attrs *la = tgo__span_add_link(s, &(tgo_span_context){.trace_id = {1, 2, 3}, .span_id = {9}, .flags = 1});
  cr_assert_not_null(la);
  static char keys[4][8]; /* attribute keys are borrowed, not copied */
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    snprintf(keys[i], sizeof keys[i], "m%zu", i);
    tgo_attr_str(la, keys[i], values[i], strlen(values[i]));
  }
  const char *arr[] = {"to alice@example.com", "plain"};
  tgo_attr_str_array(la, "arr", arr, NULL, 2);
  tgo_attr_bool(la, "b", 1);
  s->dropped_links = 9;

  tgo__buf pb = {0};
  cr_assert_eq(tgo__otlp_encode_traces(&s, 1, &pb), 0);
  char *json = spans_json(&s, 1);
  Request *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, pb.len,
                                                                                             pb.data);
  cr_assert_not_null(r);
  const Opentelemetry__Proto__Trace__V1__Span *ps = r->resource_spans[0]->scope_spans[0]->spans[0];
  cr_assert_eq(ps->n_links, 3);
  cr_assert_eq(ps->dropped_links_count, 9);
  cr_assert_eq(ps->links[2]->n_attributes, 6);
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    cr_assert_str_neq(ps->links[2]->attributes[i]->value->string_value, values[i], "masked in protobuf");
  static char want[32768];
  char *end = decoded_links(want, ps);
  *end = 0;
  const char *from = strstr(json, "\"links\":[");
  cr_assert_not_null(from, "%s", json);
  cr_assert(!strncmp(from, want, strlen(want)), "\n json: %s\nproto: %s", from, want);
  cr_assert(!strncmp(from + strlen(want), ",\"flags\":257}]", 15), "nothing between the links and flags: %s", from);
  cr_assert_null(strstr(json, "@example"), "%s", json);
  cr_assert_null(strstr(json, "4111"), "%s", json);
  cr_assert_null(strstr(json, "secret-4242"), "%s", json);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
  free(json);
  tgo__buf_free(&pb);
  tgo_span_unref(s);
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "", "test"), 0);
}
