/* OTLP/protobuf encoding of a batch: the ExportTraceServiceRequest envelope,
 * the resource and the scope are written here, the spans by otlp_writer.c,
 * every level sized before it is written so the bytes go out in one pass.
 * (tests/unit/otlp_reference.c keeps protobuf-c's encoding of the same
 * messages as the reference these writers are tested against.) */
#include "tgo-internal.h"
#include "tgo-pbwire.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TAG_FIELD1_LEN TGO__PB_TAG(1, TGO__PB_LEN)
#define TAG_FIELD2_LEN TGO__PB_TAG(2, TGO__PB_LEN)
#define TAG_ANY_STRING TGO__PB_TAG(1, TGO__PB_LEN)  /* AnyValue.string_value */
#define TAG_ANY_INT TGO__PB_TAG(3, TGO__PB_VARINT)  /* AnyValue.int_value */

enum { MAX_RESOURCE = 64 };

/* One resource attribute, measured: process.pid goes out as an int, the
 * rest as strings (resource.c made them valid UTF-8). */
typedef struct {
  const tgo__kv *kv;
  size_t key_len, value_len, any_len, kv_len;
  int64_t int_value;
  int is_int;
} res_attr;

static size_t measure_resource(const tgo__kv *kvs, size_t n, res_attr *ra) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    res_attr *r = &ra[i];
    r->kv = &kvs[i];
    r->key_len = strlen(kvs[i].key);
    r->value_len = strlen(kvs[i].value);
    r->is_int = !strcmp(kvs[i].key, "process.pid");
    if (r->is_int) {
      r->int_value = strtoll(kvs[i].value, NULL, 10);
      r->any_len = 1 + tgo__pb_varint_len((uint64_t)r->int_value);
    } else {
      r->any_len = tgo__pb_ld_len(r->value_len);
    }
    r->kv_len = tgo__pb_ld_len(r->key_len) + tgo__pb_ld_len(r->any_len);
    total += tgo__pb_ld_len(r->kv_len);
  }
  return total;
}

/* Resource { repeated KeyValue attributes = 1; } */
static uint8_t *write_resource(uint8_t *p, const res_attr *ra, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const res_attr *r = &ra[i];
    p = tgo__pb_ld_head(p, TAG_FIELD1_LEN, r->kv_len);            /* Resource.attributes */
    p = tgo__pb_bytes(p, TAG_FIELD1_LEN, r->kv->key, r->key_len); /* KeyValue.key */
    p = tgo__pb_ld_head(p, TAG_FIELD2_LEN, r->any_len);           /* KeyValue.value */
    if (r->is_int) {
      *p++ = TAG_ANY_INT;
      p = tgo__pb_varint(p, (uint64_t)r->int_value);
    } else {
      p = tgo__pb_bytes(p, TAG_ANY_STRING, r->kv->value, r->value_len);
    }
  }
  return p;
}

static const char scope_name[] = "tigerops";
static const char scope_version[] = PACKAGE_VERSION;
/* InstrumentationScope { string name = 1; string version = 2; } */
#define SCOPE_LEN (tgo__pb_ld_len(sizeof scope_name - 1) + tgo__pb_ld_len(sizeof scope_version - 1))

static uint8_t *write_scope(uint8_t *p) {
  p = tgo__pb_bytes(p, TAG_FIELD1_LEN, scope_name, sizeof scope_name - 1);
  return tgo__pb_bytes(p, TAG_FIELD2_LEN, scope_version, sizeof scope_version - 1);
}

/* The bytes before the first span: the request's and the ResourceSpans'
 * framing, the resource, the ScopeSpans' framing and its scope. */
static size_t envelope_len(size_t resource_len, size_t scope_spans_len) {
  size_t resource_spans_len = tgo__pb_ld_len(resource_len) + tgo__pb_ld_len(scope_spans_len);
  return 1 + tgo__pb_varint_len(resource_spans_len) + tgo__pb_ld_len(resource_len) + 1 +
         tgo__pb_varint_len(scope_spans_len) + tgo__pb_ld_len(SCOPE_LEN);
}

/* Bytes a span took in the last batch encoded: the next batch's first
 * reservation, so the buffer seldom grows while spans are written. Taken
 * at most SPAN_BYTES_GUESS_MAX: after one huge span a batch of 512
 * ordinary ones would otherwise reserve hundreds of MB up front (and fail
 * where address space is limited); the room grows as the spans need. */
static _Atomic size_t span_bytes_seen = 512;
#define SPAN_BYTES_GUESS_MAX 4096

/* The spans are written in one pass, each field checked against the
 * buffer's room as it goes (otlp_writer.c), and framed once written:
 * sizing every span exactly first was a second walk over its attributes
 * (~390 instructions a request span). A span's length is given two bytes
 * (128 to 16383 bytes) and the batch's the width of its expected size;
 * only a span or a batch that comes out another width moves. The envelope
 * in front is written last, when its lengths are known. */
int tgo__otlp_encode_traces(tgo_span *const *spans, size_t n, tgo__buf *out) {
  enum { SPAN_HEAD_GUESS = 3 }; /* ScopeSpans.spans' tag and a two-byte length */
  int rc = -ENOMEM;
  tgo__kv *kvs = malloc(MAX_RESOURCE * sizeof *kvs);
  res_attr *ra = malloc(MAX_RESOURCE * sizeof *ra);
  if (!kvs || !ra)
    goto bail;
  size_t n_res = tgo__resource_collect(kvs, MAX_RESOURCE);
  size_t resource_len = measure_resource(kvs, n_res, ra);
  size_t per_span = atomic_load_explicit(&span_bytes_seen, memory_order_relaxed);
  size_t expected = n * (SPAN_HEAD_GUESS + (per_span < SPAN_BYTES_GUESS_MAX ? per_span : SPAN_BYTES_GUESS_MAX));
  size_t room = envelope_len(resource_len, tgo__pb_ld_len(SCOPE_LEN) + expected);
  /* and some over, so that the batch's last spans too find room enough to
   * write their short attributes unchecked (otlp_writer.c) */
  if (tgo__buf_reserve(out, room + expected + 4096) < 0)
    goto bail;
  size_t start = out->len, first = start + room, at = first; /* offsets: the buffer may move */
  rc = 0;
  tgo__pii_begin();
  for (size_t i = 0; i < n; i++) {
    if (out->cap - at < SPAN_HEAD_GUESS && (rc = tgo__buf_reserve_at(out, at, SPAN_HEAD_GUESS)) < 0)
      break;
    uint8_t *end = tgo__otlp_span_write_in(out, out->data + at + SPAN_HEAD_GUESS, spans[i]);
    if (!end) {
      rc = -ENOMEM;
      break;
    }
    uint8_t *body = out->data + at + SPAN_HEAD_GUESS;
    size_t len = (size_t)(end - body), width = tgo__pb_varint_len(len);
    if (TGO__UNLIKELY(width != SPAN_HEAD_GUESS - 1)) {
      size_t wider = width > SPAN_HEAD_GUESS - 1 ? width - (SPAN_HEAD_GUESS - 1) : 0, used = (size_t)(end - out->data);
      if (wider && out->cap - used < wider) {
        if ((rc = tgo__buf_reserve_at(out, used, wider)) < 0)
          break;
        body = out->data + at + SPAN_HEAD_GUESS;
      }
      memmove(out->data + at + 1 + width, body, len);
    }
    tgo__pb_ld_head(out->data + at, TAG_FIELD2_LEN, len); /* ScopeSpans.spans */
    at += 1 + width + len;
  }
  tgo__pii_end();
  if (rc < 0)
    goto bail;
  size_t spans_len = at - first;
  if (n)
    atomic_store_explicit(&span_bytes_seen, spans_len / n, memory_order_relaxed);
  size_t scope_spans_len = tgo__pb_ld_len(SCOPE_LEN) + spans_len;
  size_t envelope = envelope_len(resource_len, scope_spans_len);
  if (TGO__UNLIKELY(envelope != room)) {
    if (envelope > room && out->cap - at < envelope - room && (rc = tgo__buf_reserve_at(out, at, envelope - room)) < 0)
      goto bail;
    memmove(out->data + start + envelope, out->data + first, spans_len);
  }
  uint8_t *p = out->data + start;
  p = tgo__pb_ld_head(p, TAG_FIELD1_LEN,
                      tgo__pb_ld_len(resource_len) + tgo__pb_ld_len(scope_spans_len)); /* ExportTraceServiceRequest.resource_spans */
  p = tgo__pb_ld_head(p, TAG_FIELD1_LEN, resource_len);    /* ResourceSpans.resource */
  p = write_resource(p, ra, n_res);
  p = tgo__pb_ld_head(p, TAG_FIELD2_LEN, scope_spans_len); /* ResourceSpans.scope_spans */
  p = tgo__pb_ld_head(p, TAG_FIELD1_LEN, SCOPE_LEN);       /* ScopeSpans.scope */
  p = write_scope(p);
  out->len = (size_t)(p - out->data) + spans_len;
  rc = 0;
bail:
  free(kvs);
  free(ra);
  return rc;
}

/* The batch's Resource message body appended to out: the other signals'
 * encoders (otlp_logs.c) frame it themselves. */
int tgo__otlp_resource(tgo__buf *out) {
  int rc = -ENOMEM;
  tgo__kv *kvs = malloc(MAX_RESOURCE * sizeof *kvs);
  res_attr *ra = malloc(MAX_RESOURCE * sizeof *ra);
  if (!kvs || !ra)
    goto bail;
  size_t n_res = tgo__resource_collect(kvs, MAX_RESOURCE);
  size_t len = measure_resource(kvs, n_res, ra);
  if (tgo__buf_reserve(out, len) < 0)
    goto bail;
  out->len = (size_t)(write_resource(out->data + out->len, ra, n_res) - out->data);
  rc = 0;
bail:
  free(kvs);
  free(ra);
  return rc;
}
