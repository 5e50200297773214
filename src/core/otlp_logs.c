/* OTLP/protobuf encoding of a batch of log records: ExportLogsServiceRequest
 * > ResourceLogs > one ScopeLogs per logger name (OpenTelemetry Python makes
 * the logger name the instrumentation scope) > LogRecord. Fields in number
 * order, proto3 defaults omitted: the bytes protobuf-c writes for the same
 * message (tests/unit/test_otlp_logs.c compares them). Strings the app chose
 * (body, exception message and stack) are scrubbed and PII-masked as they
 * are written, as span strings are. */
#include "tgo-internal.h"
#include "tgo-pbwire.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TAG_LEN(f) TGO__PB_TAG(f, TGO__PB_LEN)

/* "Authorization: Bearer <token>", "authorization=<token>": the credential
 * is starred out whatever its scheme; a log line is no place for it. */
static void mask_authorization(char *p, size_t n) {
  static const char key[] = "authorization";
  const size_t klen = sizeof key - 1;
  for (size_t i = 0; i + klen < n; i++) {
    if (strncasecmp(p + i, key, klen))
      continue;
    size_t j = i + klen;
    while (j < n && (p[j] == '"' || p[j] == '\'' || p[j] == ' '))
      j++;
    if (j >= n || (p[j] != ':' && p[j] != '='))
      continue;
    j++;
    while (j < n && (p[j] == ' ' || p[j] == '"' || p[j] == '\''))
      j++;
    size_t w = j; /* a scheme word (Bearer, Basic, Token) stays readable */
    while (w < n && isalpha((unsigned char)p[w]))
      w++;
    if (w < n && p[w] == ' ' && w > j)
      j = w + 1;
    size_t k = j;
    while (k < n && p[k] != ' ' && p[k] != '"' && p[k] != '\'' && p[k] != ',' && p[k] != '\n' && p[k] != '}')
      p[k++] = '*';
    i = k;
  }
}

static inline uint8_t *text_field(uint8_t *p, uint8_t tag, const tgo__str *s) {
  p = tgo__pb_bytes(p, tag, s->s, s->len);
  char *t = (char *)p - s->len;
  tgo__scrub(t, s->len);
  tgo__pii_mask_now(t, s->len);
  mask_authorization(t, s->len);
  return p;
}

typedef struct {
  const char *key;
  uint8_t key_len;
  const tgo__str *text; /* NULL: the int */
  int64_t i;
  int app_text;         /* masked like the body */
} kv;

static size_t any_size(const kv *a) {
  return a->text ? tgo__pb_ld_len(a->text->len) : 1 + tgo__pb_varint_len((uint64_t)a->i);
}
static size_t kv_size(const kv *a) { return tgo__pb_ld_len(a->key_len) + tgo__pb_ld_len(any_size(a)); }

static uint8_t *write_kv(uint8_t *p, const kv *a) {
  p = tgo__pb_ld_head(p, TAG_LEN(6), kv_size(a)); /* LogRecord.attributes */
  p = tgo__pb_bytes(p, TAG_LEN(1), a->key, a->key_len);
  p = tgo__pb_ld_head(p, TAG_LEN(2), any_size(a));
  if (!a->text) {
    *p++ = TGO__PB_TAG(3, TGO__PB_VARINT); /* AnyValue.int_value */
    return tgo__pb_varint(p, (uint64_t)a->i);
  }
  if (a->app_text)
    return text_field(p, TAG_LEN(1), a->text);
  return tgo__pb_bytes(p, TAG_LEN(1), a->text->s, a->text->len);
}

#define KV(k, t, app) {k, sizeof k - 1, t, 0, app}

/* The record's attributes: code location (current semconv names) and, for
 * logger.exception, the exception. */
static size_t collect(const tgo__log_rec *r, kv *out) {
  size_t n = 0;
  if (r->file.len)
    out[n++] = (kv)KV("code.file.path", &r->file, 0);
  if (r->function.len)
    out[n++] = (kv)KV("code.function.name", &r->function, 0);
  if (r->line > 0)
    out[n++] = (kv){"code.line.number", sizeof "code.line.number" - 1, NULL, r->line, 0};
  if (r->exc_type.len)
    out[n++] = (kv)KV("exception.type", &r->exc_type, 0);
  if (r->exc_message.len)
    out[n++] = (kv)KV("exception.message", &r->exc_message, 1);
  if (r->exc_stack.len)
    out[n++] = (kv)KV("exception.stacktrace", &r->exc_stack, 1);
  return n;
}

static size_t record_size(const tgo__log_rec *r) {
  size_t n = 0;
  if (r->time_ns)
    n += 9;
  if (r->severity)
    n += 2;
  if (r->severity_text.len)
    n += tgo__pb_ld_len(r->severity_text.len);
  n += tgo__pb_ld_len(tgo__pb_ld_len(r->body.len)); /* body: AnyValue{string_value}, even "" */
  kv attrs[6];
  size_t na = collect(r, attrs);
  for (size_t i = 0; i < na; i++)
    n += tgo__pb_ld_len(kv_size(&attrs[i]));
  if (r->has_context) {
    if (r->flags)
      n += 5;
    n += tgo__pb_ld_len(16) + tgo__pb_ld_len(8);
  }
  if (r->observed_ns)
    n += 9;
  return n;
}

static uint8_t *write_record(uint8_t *p, const tgo__log_rec *r) {
  if (r->time_ns) {
    *p++ = TGO__PB_TAG(1, TGO__PB_FIXED64);
    p = tgo__pb_fixed64(p, r->time_ns);
  }
  if (r->severity) {
    *p++ = TGO__PB_TAG(2, TGO__PB_VARINT);
    *p++ = r->severity;
  }
  if (r->severity_text.len)
    p = tgo__pb_bytes(p, TAG_LEN(3), r->severity_text.s, r->severity_text.len);
  p = tgo__pb_ld_head(p, TAG_LEN(5), tgo__pb_ld_len(r->body.len));
  p = text_field(p, TAG_LEN(1), &r->body);
  kv attrs[6];
  size_t na = collect(r, attrs);
  for (size_t i = 0; i < na; i++)
    p = write_kv(p, &attrs[i]);
  if (r->has_context) {
    if (r->flags) {
      *p++ = TGO__PB_TAG(8, TGO__PB_FIXED32);
      *p++ = r->flags;
      *p++ = 0;
      *p++ = 0;
      *p++ = 0;
    }
    p = tgo__pb_bytes(p, TAG_LEN(9), r->trace_id, 16);
    p = tgo__pb_bytes(p, TAG_LEN(10), r->span_id, 8);
  }
  if (r->observed_ns) {
    *p++ = TGO__PB_TAG(11, TGO__PB_FIXED64);
    p = tgo__pb_fixed64(p, r->observed_ns);
  }
  return p;
}

static int same_logger(const tgo__log_rec *a, const tgo__log_rec *b) {
  return a->logger.len == b->logger.len && !memcmp(a->logger.s, b->logger.s, a->logger.len);
}

int tgo__otlp_encode_logs(tgo__log_rec *const *recs, size_t n, tgo__buf *out) {
  int rc = -ENOMEM;
  tgo__buf resource = {0};
  size_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
  size_t *first = malloc((n ? n : 1) * sizeof *first);       /* index of the first record of its logger */
  size_t *scope_len = malloc((n ? n : 1) * sizeof *scope_len); /* per first record: its ScopeLogs body */
  if (!sizes || !first || !scope_len || tgo__otlp_resource(&resource) < 0)
    goto bail;
  size_t resource_logs_len = tgo__pb_ld_len(resource.len);
  for (size_t i = 0; i < n; i++) {
    sizes[i] = record_size(recs[i]);
    first[i] = i;
    for (size_t j = 0; j < i; j++)
      if (first[j] == j && same_logger(recs[i], recs[j])) {
        first[i] = j;
        break;
      }
    if (first[i] == i)
      scope_len[i] = recs[i]->logger.len ? tgo__pb_ld_len(tgo__pb_ld_len(recs[i]->logger.len))
                                         : tgo__pb_ld_len(0);
    scope_len[first[i]] += tgo__pb_ld_len(sizes[i]);
  }
  for (size_t i = 0; i < n; i++)
    if (first[i] == i)
      resource_logs_len += tgo__pb_ld_len(scope_len[i]);
  if (tgo__buf_reserve(out, tgo__pb_ld_len(resource_logs_len)) < 0)
    goto bail;
  uint8_t *p = out->data + out->len;
  p = tgo__pb_ld_head(p, TAG_LEN(1), resource_logs_len);       /* ExportLogsServiceRequest.resource_logs */
  p = tgo__pb_bytes(p, TAG_LEN(1), resource.data, resource.len); /* ResourceLogs.resource */
  tgo__pii_begin();
  for (size_t g = 0; g < n; g++) {
    if (first[g] != g)
      continue;
    p = tgo__pb_ld_head(p, TAG_LEN(2), scope_len[g]); /* ResourceLogs.scope_logs */
    const tgo__str *name = &recs[g]->logger;
    p = tgo__pb_ld_head(p, TAG_LEN(1), name->len ? tgo__pb_ld_len(name->len) : 0); /* ScopeLogs.scope */
    if (name->len)
      p = tgo__pb_bytes(p, TAG_LEN(1), name->s, name->len); /* InstrumentationScope.name */
    for (size_t i = g; i < n; i++)
      if (first[i] == g) {
        p = tgo__pb_ld_head(p, TAG_LEN(2), sizes[i]); /* ScopeLogs.log_records */
        p = write_record(p, recs[i]);
      }
  }
  tgo__pii_end();
  out->len = (size_t)(p - out->data);
  rc = 0;
bail:
  tgo__buf_free(&resource);
  free(sizes);
  free(first);
  free(scope_len);
  return rc;
}
