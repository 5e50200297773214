/* libFuzzer: whatever a span holds (any bytes in names, keys, values,
 * trace state set behind the API, any int or double), the OTLP/JSON
 * encoder writes one valid JSON document in valid UTF-8, checked here by a
 * strict parser of RFC 8259, and never reads or writes out of bounds. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_span.h"
#include "tgo-internal.h"

typedef struct {
  const unsigned char *p, *end;
  int depth;
} parser;

static int value(parser *j);

static void ws(parser *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int ishex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* One UTF-8 sequence at j->p (RFC 3629: no overlongs, no surrogates). */
static int utf8_char(parser *j) {
  unsigned char c = *j->p;
  size_t k = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 0;
  if (!k || (size_t)(j->end - j->p) <= k)
    return 0;
  for (size_t i = 1; i <= k; i++)
    if ((j->p[i] & 0xC0) != 0x80)
      return 0;
  if ((c == 0xE0 && j->p[1] < 0xA0) || (c == 0xED && j->p[1] > 0x9F) || (c == 0xF0 && j->p[1] < 0x90) ||
      (c == 0xF4 && j->p[1] > 0x8F))
    return 0;
  j->p += k + 1;
  return 1;
}

static int string(parser *j) {
  if (j->p >= j->end || *j->p != '"')
    return 0;
  j->p++;
  while (j->p < j->end) {
    unsigned char c = *j->p;
    if (c == '"') {
      j->p++;
      return 1;
    }
    if (c < 0x20)
      return 0;
    if (c == '\\') {
      if (j->end - j->p < 2)
        return 0;
      unsigned char e = j->p[1];
      if (e == 'u') {
        if (j->end - j->p < 6 || !ishex(j->p[2]) || !ishex(j->p[3]) || !ishex(j->p[4]) || !ishex(j->p[5]))
          return 0;
        j->p += 6;
      } else if (strchr("\"\\/bfnrt", e) && e) {
        j->p += 2;
      } else {
        return 0;
      }
    } else if (c >= 0x80) {
      if (!utf8_char(j))
        return 0;
    } else {
      j->p++;
    }
  }
  return 0;
}

static int digits(parser *j) {
  const unsigned char *from = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
    j->p++;
  return j->p > from;
}

static int number(parser *j) {
  if (j->p < j->end && *j->p == '-')
    j->p++;
  if (j->p < j->end && *j->p == '0')
    j->p++;
  else if (!digits(j))
    return 0;
  if (j->p < j->end && *j->p == '.') {
    j->p++;
    if (!digits(j))
      return 0;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
      j->p++;
    if (!digits(j))
      return 0;
  }
  return 1;
}

static int literal(parser *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
    return 0;
  j->p += n;
  return 1;
}

static int members(parser *j, char close, int object) {
  if (++j->depth > 64)
    return 0;
  j->p++;
  ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    j->depth--;
    return 1;
  }
  for (;;) {
    if (object) {
      if (!string(j))
        return 0;
      ws(j);
      if (j->p >= j->end || *j->p != ':')
        return 0;
      j->p++;
    }
    if (!value(j))
      return 0;
    ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      ws(j);
      continue;
    }
    if (j->p < j->end && *j->p == close) {
      j->p++;
      j->depth--;
      return 1;
    }
    return 0;
  }
}

static int value(parser *j) {
  ws(j);
  if (j->p >= j->end)
    return 0;
  switch (*j->p) {
  case '{': return members(j, '}', 1);
  case '[': return members(j, ']', 0);
  case '"': return string(j);
  case 't': return literal(j, "true");
  case 'f': return literal(j, "false");
  case 'n': return literal(j, "null");
  default: return number(j);
  }
}

/* The input builds the span (fuzz_span.h: its name, trace state, status
 * and one attribute, event or link per NUL-separated piece). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_span_extra extra;
  tgo_span *s = fuzz_span(data, size, &extra);
  if (!s)
    return 0;
  tgo__buf out = {0};
  if (tgo__otlp_json_encode_traces(&s, 1, &out) == 0) {
    parser j = {out.data, out.data + out.len, 0};
    if (!value(&j))
      abort();
    ws(&j);
    if (j.p != j.end)
      abort();
  }
  tgo__buf_free(&out);
  fuzz_span_free(s, &extra);
  return 0;
}
