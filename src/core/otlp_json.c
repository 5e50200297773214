/* OTLP/JSON encoding of a batch (OTEL_EXPORTER_OTLP_PROTOCOL=http/json),
 * the JSON Protobuf Encoding with the OTLP spec's amendments: trace and
 * span ids as lowercase hex (not base64), enums as integers, lowerCamelCase
 * names, 64-bit integers as decimal strings (proto3 JSON), doubles as
 * numbers or "NaN"/"Infinity"/"-Infinity", default values omitted.
 *
 * It walks the same span records as otlp.c and otlp_writer.c and exports
 * the same fields. The walk is not shared with the protobuf writer: that
 * one sizes every level before writing it, in hand-inlined tags, and an
 * emitter interface between the two would cost the default path
 * instructions per attribute. What must not differ between the two is
 * which strings are masked and how: text() applies tgo__scrub and
 * tgo__pii_mask_now to exactly the strings otlp_writer.c's text_field()
 * does (span, event and status texts, string attribute values), on the raw
 * bytes before escaping, so a pattern sees what it sees in protobuf.
 *
 * Memory: one output buffer grown geometrically and one scratch buffer for
 * the string being masked, both per batch (the batch size bounds them);
 * nothing is allocated per attribute. */
#include "tgo-internal.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  tgo__buf *out;
  tgo__buf scratch;
  int first; /* no member written yet in the innermost object or array */
  int oom;
} jw;

/* Room for k more bytes at the end of the output, or NULL (then the batch
 * is dropped as a whole: a cut JSON document is worth nothing). */
static inline char *room(jw *w, size_t k) {
  if (TGO__LIKELY(w->out->cap - w->out->len >= k)) /* w->out is never shrunk, so this holds after oom too */
    return TGO__UNLIKELY(w->oom) ? NULL : (char *)w->out->data + w->out->len;
  if (TGO__UNLIKELY(w->oom))
    return NULL;
  if (TGO__UNLIKELY(tgo__buf_reserve(w->out, k) < 0)) {
    w->oom = 1;
    return NULL;
  }
  return (char *)w->out->data + w->out->len;
}

static inline void advance(jw *w, const char *p) { w->out->len = (size_t)((const uint8_t *)p - w->out->data); }

static inline void raw(jw *w, const char *s, size_t n) {
  char *p = room(w, n);
  if (p) {
    memcpy(p, s, n);
    advance(w, p + n);
  }
}
#define LIT(w, s) raw((w), (s), sizeof(s) - 1)

/* Object member names and array elements, comma-separated. */
static inline void key(jw *w, const char *quoted_colon, size_t n) {
  char *p = room(w, n + 1);
  if (!p)
    return;
  if (!w->first)
    *p++ = ',';
  w->first = 0;
  memcpy(p, quoted_colon, n);
  advance(w, p + n);
}
#define KEY(w, k) key((w), "\"" k "\":", sizeof("\"" k "\":") - 1)

static inline void elem(jw *w) {
  if (!w->first)
    raw(w, ",", 1);
  w->first = 0;
}

static inline void push(jw *w, char c) {
  raw(w, &c, 1);
  w->first = 1;
}

static inline void pop(jw *w, char c) {
  raw(w, &c, 1);
  w->first = 0;
}

/* 1: the byte must be escaped inside a JSON string. */
static const uint8_t needs_escape[256] = {[0 ... 0x1F] = 1, ['"'] = 1, ['\\'] = 1};

static const char hexdigits[] = "0123456789abcdef";

/* Whether any of 8 bytes is below 0x20, a quote or a backslash, eight at a
 * time (the classic has-zero-byte test): most strings need no escape, and
 * a byte-at-a-time scan was a third of the encoder's instructions. Bytes
 * of 0x80 and up never match. */
static inline int word_needs_escape(const unsigned char *p) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t x;
  memcpy(&x, p, 8);
  uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
  uint64_t below = (x - ones * 0x20) & ~x;
  uint64_t quote = (q - ones) & ~q, backslash = (b - ones) & ~b;
  return ((below | quote | backslash) & highs) != 0;
}

/* s (valid UTF-8) as a quoted JSON string: runs of plain bytes copied,
 * quote, backslash and control characters escaped (the short forms where
 * JSON has them, \u00XX otherwise). */
static void quoted(jw *w, const unsigned char *s, size_t n) {
  char *p = room(w, 6 * n + 2);
  if (!p)
    return;
  *p++ = '"';
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    while (i + 8 <= n && !word_needs_escape(s + i))
      i += 8;
    while (i < n && !needs_escape[s[i]])
      i++;
    memcpy(p, s + start, i - start);
    p += i - start;
    if (i == n)
      break;
    unsigned char c = s[i++];
    *p++ = '\\';
    switch (c) {
    case '"': *p++ = '"'; break;
    case '\\': *p++ = '\\'; break;
    case '\b': *p++ = 'b'; break;
    case '\f': *p++ = 'f'; break;
    case '\n': *p++ = 'n'; break;
    case '\r': *p++ = 'r'; break;
    case '\t': *p++ = 't'; break;
    default:
      *p++ = 'u';
      *p++ = '0';
      *p++ = '0';
      *p++ = hexdigits[c >> 4];
      *p++ = hexdigits[c & 15];
    }
  }
  *p++ = '"';
  advance(w, p);
}

/* A copy of s in the scratch buffer, to be masked or repaired there. */
static unsigned char *scratch_copy(jw *w, const char *s, size_t n) {
  w->scratch.len = 0;
  if (tgo__buf_reserve(&w->scratch, n ? n : 1) < 0) {
    w->oom = 1;
    return NULL;
  }
  memcpy(w->scratch.data, s, n);
  return w->scratch.data;
}

/* A string nobody masks (keys, trace state, the resource): escaped, and
 * repaired to valid UTF-8 like span.c's copies if it is not already (a
 * strict JSON decoder, the collector's protojson, rejects the request). */
static void plain(jw *w, const char *s, size_t n) {
  if (TGO__LIKELY(tgo__is_ascii(s, n))) {
    quoted(w, (const unsigned char *)s, n);
    return;
  }
  unsigned char *c = scratch_copy(w, s, n);
  if (!c)
    return;
  tgo__utf8_repair(c, n);
  quoted(w, c, n);
}

/* A string the user or the app chose: scrubbed of echoed bind values and
 * masked for PII as otlp_writer.c's text_field() does, then escaped. */
static void text(jw *w, const char *s, size_t n) {
  unsigned char *c = scratch_copy(w, s, n);
  if (!c)
    return;
  tgo__scrub((char *)c, n);
  tgo__pii_mask_now((char *)c, n);
  if (!tgo__is_ascii((const char *)c, n))
    tgo__utf8_repair(c, n);
  quoted(w, c, n);
}

static char *u64_digits(char *p, uint64_t v) {
  char tmp[20];
  int k = 0;
  do {
    tmp[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (k)
    *p++ = tmp[--k];
  return p;
}

/* uint32 fields are JSON numbers. */
static void u32_number(jw *w, uint32_t v) {
  char *p = room(w, 10);
  if (p)
    advance(w, u64_digits(p, v));
}

/* int64/uint64 fields are decimal strings in proto3 JSON: a JavaScript
 * number would lose everything past 2^53. */
static void u64_string(jw *w, uint64_t v) {
  char *p = room(w, 22);
  if (!p)
    return;
  *p++ = '"';
  p = u64_digits(p, v);
  *p++ = '"';
  advance(w, p);
}

static void i64_string(jw *w, int64_t v) {
  char *p = room(w, 23);
  if (!p)
    return;
  *p++ = '"';
  if (v < 0) {
    *p++ = '-';
    p = u64_digits(p, -(uint64_t)v); /* INT64_MIN too */
  } else {
    p = u64_digits(p, (uint64_t)v);
  }
  *p++ = '"';
  advance(w, p);
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double,
 * in the C locale whatever the app set with setlocale (a decimal comma is
 * not JSON). Non-finite values are the strings proto3 JSON names. */
static void double_value(jw *w, double d) {
  if (isnan(d)) {
    LIT(w, "\"NaN\"");
    return;
  }
  if (isinf(d)) {
    if (d > 0)
      LIT(w, "\"Infinity\"");
    else
      LIT(w, "\"-Infinity\"");
    return;
  }
  char buf[32];
  int n = 0;
  pthread_once(&c_locale_once, make_c_locale);
  locale_t old = c_locale ? uselocale(c_locale) : (locale_t)0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (prec == 17 || strtod(buf, NULL) == d)
      break;
  }
  if (old)
    uselocale(old);
  if (n > 0 && (size_t)n < sizeof buf)
    raw(w, buf, (size_t)n);
  else
    LIT(w, "0");
}

static void hex_id(jw *w, const uint8_t *id, size_t n) {
  char *p = room(w, 2 * n + 2);
  if (!p)
    return;
  *p++ = '"';
  tgo__hex_encode(id, n, p);
  p += 2 * n;
  *p++ = '"';
  advance(w, p);
}

/* One AnyValue member ("stringValue":..., ...) of a scalar or an element. */
static void scalar(jw *w, int type, const tgo__attr *a, size_t i) {
  switch (type) {
  case TGO__V_STR: KEY(w, "stringValue"); text(w, a->v.s, a->n); break;
  case TGO__V_STR_ARRAY: KEY(w, "stringValue"); text(w, a->v.sa[i].s, a->v.sa[i].len); break;
  case TGO__V_BOOL: KEY(w, "boolValue"); if (a->v.b) LIT(w, "true"); else LIT(w, "false"); break;
  case TGO__V_BOOL_ARRAY: KEY(w, "boolValue"); if (a->v.ba[i]) LIT(w, "true"); else LIT(w, "false"); break;
  case TGO__V_INT: KEY(w, "intValue"); i64_string(w, a->v.i); break;
  case TGO__V_INT_ARRAY: KEY(w, "intValue"); i64_string(w, a->v.ia[i]); break;
  case TGO__V_DOUBLE: KEY(w, "doubleValue"); double_value(w, a->v.d); break;
  case TGO__V_DOUBLE_ARRAY: KEY(w, "doubleValue"); double_value(w, a->v.da[i]); break;
  }
}

/* {"key":...,"value":{...}}; an empty array keeps its presence as
 * "arrayValue":{}, as the protobuf writer keeps an empty array_value. */
static void keyvalue(jw *w, const tgo__attr *a) {
  elem(w);
  push(w, '{');
  KEY(w, "key");
  plain(w, a->key, a->key_len);
  KEY(w, "value");
  push(w, '{');
  if (a->type >= TGO__V_STR_ARRAY) {
    KEY(w, "arrayValue");
    push(w, '{');
    if (a->n) {
      KEY(w, "values");
      push(w, '[');
      for (uint32_t i = 0; i < a->n; i++) {
        elem(w);
        push(w, '{');
        scalar(w, a->type, a, i);
        pop(w, '}');
      }
      pop(w, ']');
    }
    pop(w, '}');
  } else {
    scalar(w, a->type, a, 0);
  }
  pop(w, '}');
  pop(w, '}');
}

static void attributes(jw *w, const struct tgo_attrs *attrs) {
  if (attrs->head) {
    KEY(w, "attributes");
    push(w, '[');
    for (const tgo__attr *a = attrs->head; a; a = a->next)
      keyvalue(w, a);
    pop(w, ']');
  }
  if (attrs->dropped) {
    KEY(w, "droppedAttributesCount");
    u32_number(w, attrs->dropped);
  }
}

static void event(jw *w, const tgo__event *e) {
  elem(w);
  push(w, '{');
  if (e->time_ns) {
    KEY(w, "timeUnixNano");
    u64_string(w, e->time_ns);
  }
  if (e->name_len) {
    KEY(w, "name");
    text(w, e->name, e->name_len);
  }
  attributes(w, &e->attrs);
  pop(w, '}');
}

/* Span.Link as otlp_writer.c writes it: ids and flags always, trace state
 * unmasked like the span's own, attribute strings masked by text(). */
static void link(jw *w, const tgo__link *l) {
  elem(w);
  push(w, '{');
  KEY(w, "traceId");
  hex_id(w, l->trace_id, 16);
  KEY(w, "spanId");
  hex_id(w, l->span_id, 8);
  if (l->tracestate_len) {
    KEY(w, "traceState");
    plain(w, l->tracestate, l->tracestate_len);
  }
  attributes(w, &l->attrs);
  /* Bits 8-9, as otlp_writer.c's link_flags: the link's remoteness is
   * known, and whether it is remote. */
  KEY(w, "flags");
  u32_number(w, l->flags | 0x100u | (l->is_remote ? 0x200u : 0));
  pop(w, '}');
}

/* Span, in the proto's field order; the fields otlp_writer.c omits as
 * defaults are omitted here too. */
static void span(jw *w, const tgo_span *s) {
  elem(w);
  push(w, '{');
  KEY(w, "traceId");
  hex_id(w, s->trace_id, 16);
  KEY(w, "spanId");
  hex_id(w, s->span_id, 8);
  if (s->tracestate_len) {
    KEY(w, "traceState");
    plain(w, s->tracestate, s->tracestate_len);
  }
  if (s->has_parent) {
    KEY(w, "parentSpanId");
    hex_id(w, s->parent_span_id, 8);
  }
  if (s->name_len) {
    KEY(w, "name");
    text(w, s->name, s->name_len);
  }
  if (s->kind) {
    KEY(w, "kind");
    u32_number(w, s->kind);
  }
  if (s->start_ns) {
    KEY(w, "startTimeUnixNano");
    u64_string(w, s->start_ns);
  }
  if (s->end_ns) {
    KEY(w, "endTimeUnixNano");
    u64_string(w, s->end_ns);
  }
  attributes(w, &s->attrs);
  if (s->events) {
    KEY(w, "events");
    push(w, '[');
    for (const tgo__event *e = s->events; e; e = e->next)
      event(w, e);
    pop(w, ']');
  }
  if (s->dropped_events) {
    KEY(w, "droppedEventsCount");
    u32_number(w, s->dropped_events);
  }
  if (s->links) {
    KEY(w, "links");
    push(w, '[');
    for (const tgo__link *l = s->links; l; l = l->next)
      link(w, l);
    pop(w, ']');
  }
  if (s->dropped_links) {
    KEY(w, "droppedLinksCount");
    u32_number(w, s->dropped_links);
  }
  if (s->status != TGO_STATUS_UNSET) {
    KEY(w, "status");
    push(w, '{');
    if (s->status_msg_len) {
      KEY(w, "message");
      text(w, s->status_msg, s->status_msg_len);
    }
    KEY(w, "code");
    u32_number(w, s->status);
    pop(w, '}');
  }
  /* Bits 8-9, as otlp_writer.c's span_flags: the parent's remoteness is
   * known, and whether it is remote. */
  KEY(w, "flags");
  u32_number(w, s->flags | 0x100u | (s->parent_is_remote ? 0x200u : 0));
  pop(w, '}');
}

enum { MAX_RESOURCE = 64 };
static const char scope_name[] = "tigerops";
static const char scope_version[] = PACKAGE_VERSION;

/* Resource attributes as otlp.c writes them: process.pid an int, the rest
 * strings (resource.c made them valid UTF-8). */
static void resource(jw *w, const tgo__kv *kvs, size_t n) {
  KEY(w, "resource");
  push(w, '{');
  if (n) {
    KEY(w, "attributes");
    push(w, '[');
    for (size_t i = 0; i < n; i++) {
      elem(w);
      push(w, '{');
      KEY(w, "key");
      plain(w, kvs[i].key, strlen(kvs[i].key));
      KEY(w, "value");
      push(w, '{');
      if (!strcmp(kvs[i].key, "process.pid")) {
        KEY(w, "intValue");
        i64_string(w, strtoll(kvs[i].value, NULL, 10));
      } else {
        KEY(w, "stringValue");
        plain(w, kvs[i].value, strlen(kvs[i].value));
      }
      pop(w, '}');
      pop(w, '}');
    }
    pop(w, ']');
  }
  pop(w, '}');
}

int tgo__otlp_json_encode_traces(tgo_span *const *spans, size_t n, tgo__buf *out) {
  jw w = {out, {0}, 1, 0};
  tgo__kv *kvs = malloc(MAX_RESOURCE * sizeof *kvs);
  if (!kvs)
    return -ENOMEM;
  size_t n_res = tgo__resource_collect(kvs, MAX_RESOURCE);
  /* A guess at the size from typical spans, so that a batch grows the
   * buffer a few times at most. */
  room(&w, 1024 + n * 1536);
  push(&w, '{');
  KEY(&w, "resourceSpans");
  push(&w, '[');
  elem(&w);
  push(&w, '{');
  resource(&w, kvs, n_res);
  KEY(&w, "scopeSpans");
  push(&w, '[');
  elem(&w);
  push(&w, '{');
  KEY(&w, "scope");
  push(&w, '{');
  KEY(&w, "name");
  plain(&w, scope_name, sizeof scope_name - 1);
  KEY(&w, "version");
  plain(&w, scope_version, sizeof scope_version - 1);
  pop(&w, '}');
  KEY(&w, "spans");
  push(&w, '[');
  tgo__pii_begin();
  for (size_t i = 0; i < n && !w.oom; i++)
    span(&w, spans[i]);
  tgo__pii_end();
  pop(&w, ']');
  pop(&w, '}');
  pop(&w, ']');
  pop(&w, '}');
  pop(&w, ']');
  pop(&w, '}');
  free(kvs);
  tgo__buf_free(&w.scratch);
  return w.oom ? -ENOMEM : 0;
}
