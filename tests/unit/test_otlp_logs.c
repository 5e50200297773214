/* The log encoder (otlp_logs.c) must write what protobuf-c writes for the
 * same ExportLogsServiceRequest, carry every field, and mask app text. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "tgo-internal.h"

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest Request;
typedef Opentelemetry__Proto__Logs__V1__LogRecord Record;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("OTEL_SERVICE_NAME", "logs-test", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(otlp_logs, .init = setup);

#define S(lit) ((tgo__str){lit, sizeof lit - 1})

static tgo__log_rec *record(const char *logger, const char *body) {
  tgo__log_rec *r = calloc(1, sizeof *r);
  r->time_ns = 1700000000123456789ull;
  r->observed_ns = 1700000000123999999ull;
  r->severity = 13;
  r->severity_text = S("WARN");
  r->body = (tgo__str){body, (uint32_t)strlen(body)};
  r->logger = (tgo__str){logger, (uint32_t)strlen(logger)};
  r->file = S("/srv/app/views.py");
  r->function = S("checkout");
  r->line = 42;
  return r;
}

/* Encodes, checks protobuf-c reads it and packs it back to the same bytes,
 * and returns the unpacked request. */
static Request *encode_and_check(tgo__log_rec **recs, size_t n) {
  tgo__buf buf = {0};
  cr_assert_eq(tgo__otlp_encode_logs(recs, n, &buf), 0);
  Request *req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, buf.len,
                                                                                                buf.data);
  cr_assert_not_null(req, "protobuf-c cannot read the request");
  size_t size = opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(req);
  cr_assert_eq(size, buf.len, "protobuf-c packs %zu bytes, we wrote %zu", size, buf.len);
  uint8_t *again = malloc(size);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(req, again);
  cr_assert(memcmp(again, buf.data, size) == 0, "bytes differ from protobuf-c's");
  free(again);
  tgo__buf_free(&buf);
  return req;
}

static const KeyValue *attr(const Record *r, const char *key) {
  for (size_t i = 0; i < r->n_attributes; i++)
    if (!strcmp(r->attributes[i]->key, key))
      return r->attributes[i];
  return NULL;
}

Test(otlp_logs, matches_protobuf_c_and_carries_every_field) {
  tgo__log_rec *r = record("shop.views", "payment declined");
  r->has_context = 1;
  r->flags = 1;
  for (int i = 0; i < 16; i++)
    r->trace_id[i] = (uint8_t)(i + 1);
  for (int i = 0; i < 8; i++)
    r->span_id[i] = (uint8_t)(0xA0 + i);
  r->exc_type = S("ValueError");
  r->exc_message = S("bad card");
  r->exc_stack = S("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad card\n");
  Request *req = encode_and_check(&r, 1);
  cr_assert_eq(req->n_resource_logs, 1);
  cr_assert_eq(req->resource_logs[0]->n_scope_logs, 1);
  const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = req->resource_logs[0]->scope_logs[0];
  cr_assert_str_eq(sl->scope->name, "shop.views");
  cr_assert_eq(sl->n_log_records, 1);
  const Record *lr = sl->log_records[0];
  cr_assert_eq(lr->time_unix_nano, 1700000000123456789ull);
  cr_assert_eq(lr->observed_time_unix_nano, 1700000000123999999ull);
  cr_assert_eq(lr->severity_number, 13);
  cr_assert_str_eq(lr->severity_text, "WARN");
  cr_assert_str_eq(lr->body->string_value, "payment declined");
  cr_assert_eq(lr->flags, 1);
  cr_assert_eq(lr->trace_id.len, 16);
  cr_assert(!memcmp(lr->trace_id.data, r->trace_id, 16));
  cr_assert_eq(lr->span_id.len, 8);
  cr_assert(!memcmp(lr->span_id.data, r->span_id, 8));
  cr_assert_str_eq(attr(lr, "code.file.path")->value->string_value, "/srv/app/views.py");
  cr_assert_str_eq(attr(lr, "code.function.name")->value->string_value, "checkout");
  cr_assert_eq(attr(lr, "code.line.number")->value->int_value, 42);
  cr_assert_str_eq(attr(lr, "exception.type")->value->string_value, "ValueError");
  cr_assert_str_eq(attr(lr, "exception.message")->value->string_value, "bad card");
  cr_assert(strstr(attr(lr, "exception.stacktrace")->value->string_value, "ValueError: bad card"));
  /* the resource is the spans' */
  int found = 0;
  const Opentelemetry__Proto__Resource__V1__Resource *res = req->resource_logs[0]->resource;
  for (size_t i = 0; i < res->n_attributes; i++)
    if (!strcmp(res->attributes[i]->key, "service.name"))
      found = !strcmp(res->attributes[i]->value->string_value, "logs-test");
  cr_assert(found);
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req, NULL);
  free(r);
}

Test(otlp_logs, a_record_outside_a_span_has_no_trace_context_and_an_empty_body_is_still_a_string) {
  tgo__log_rec *r = record("root", "");
  r->line = 0;
  r->file = r->function = (tgo__str){"", 0};
  Request *req = encode_and_check(&r, 1);
  const Record *lr = req->resource_logs[0]->scope_logs[0]->log_records[0];
  cr_assert_eq(lr->trace_id.len, 0);
  cr_assert_eq(lr->span_id.len, 0);
  cr_assert_eq(lr->flags, 0);
  cr_assert_eq(lr->n_attributes, 0);
  cr_assert_eq(lr->body->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
  cr_assert_str_eq(lr->body->string_value, "");
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req, NULL);
  free(r);
}

Test(otlp_logs, one_scope_per_logger_name_in_order_of_first_record) {
  tgo__log_rec *recs[4] = {record("a", "1"), record("b", "2"), record("a", "3"), record("c", "4")};
  Request *req = encode_and_check(recs, 4);
  Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[0];
  cr_assert_eq(rl->n_scope_logs, 3);
  cr_assert_str_eq(rl->scope_logs[0]->scope->name, "a");
  cr_assert_eq(rl->scope_logs[0]->n_log_records, 2);
  cr_assert_str_eq(rl->scope_logs[0]->log_records[0]->body->string_value, "1");
  cr_assert_str_eq(rl->scope_logs[0]->log_records[1]->body->string_value, "3");
  cr_assert_str_eq(rl->scope_logs[1]->scope->name, "b");
  cr_assert_str_eq(rl->scope_logs[2]->scope->name, "c");
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req, NULL);
  for (int i = 0; i < 4; i++)
    free(recs[i]);
}

Test(otlp_logs, the_body_and_exception_text_are_masked_and_scrubbed_like_span_strings) {
  tgo__log_rec *r = record("app", "login failed for bob@example.com with Authorization: Bearer s3cr3t.t0ken, retry");
  r->exc_message = S("(psycopg2.errors.UniqueViolation) duplicate [parameters: ('alice@example.com', 'pw1')]");
  Request *req = encode_and_check(&r, 1);
  const Record *lr = req->resource_logs[0]->scope_logs[0]->log_records[0];
  cr_assert_str_eq(lr->body->string_value,
                   "login failed for ***@*******.*** with Authorization: Bearer ************, retry");
  const char *m = attr(lr, "exception.message")->value->string_value;
  cr_assert_null(strstr(m, "alice"), "%s", m);
  cr_assert_null(strstr(m, "pw1"), "%s", m);
  /* the source record is untouched: masking happens in the encoded copy */
  cr_assert(strstr(r->body.s, "s3cr3t.t0ken"));
  opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req, NULL);
  free(r);
}

Test(otlp_logs, python_levels_map_to_severity_numbers_as_opentelemetry_python_does) {
  cr_assert_eq(tgo__logs_severity(0), 0);
  cr_assert_eq(tgo__logs_severity(5), 0);
  cr_assert_eq(tgo__logs_severity(10), 5);
  cr_assert_eq(tgo__logs_severity(11), 6);
  cr_assert_eq(tgo__logs_severity(13), 8);
  cr_assert_eq(tgo__logs_severity(19), 8);
  cr_assert_eq(tgo__logs_severity(20), 9);
  cr_assert_eq(tgo__logs_severity(30), 13);
  cr_assert_eq(tgo__logs_severity(31), 14);
  cr_assert_eq(tgo__logs_severity(40), 17);
  cr_assert_eq(tgo__logs_severity(50), 21);
  cr_assert_eq(tgo__logs_severity(53), 24);
  cr_assert_eq(tgo__logs_severity(54), 24);
  cr_assert_eq(tgo__logs_severity(100), 24);
}
