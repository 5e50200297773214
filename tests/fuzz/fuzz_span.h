/* The span the encoder fuzzers (fuzz_json.c, fuzz_otlp.c) write, built
 * from the input. */
#ifndef FUZZ_SPAN_H
#define FUZZ_SPAN_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tgo-internal.h"

/* The tracer as both fuzzers run it: no export, no logs, one PII pattern
 * besides the built-ins. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("TIGEROPS_LOG_LEVEL", "none", 1);
  setenv("TIGEROPS_PII_PATTERNS", "key-[a-z0-9]{4,}", 1);
  tgo_init();
  return 0;
}

/* What fuzz_span made besides the span, freed by fuzz_span_free. */
typedef struct {
  char *state, *name;
} fuzz_span_extra;

/* The input, cut at NUL bytes: the span name, the trace state (stored
 * unchecked, as a bad propagator could), the status message, then one
 * attribute, event or link per piece, its kind chosen by its first byte. */
static tgo_span *fuzz_span(const uint8_t *data, size_t size, fuzz_span_extra *extra) {
  const char *pieces[64];
  size_t lens[64], n = 0;
  for (size_t start = 0; n < 64;) {
    const uint8_t *nul = memchr(data + start, 0, size - start);
    size_t end = nul ? (size_t)(nul - data) : size;
    pieces[n] = (const char *)data + start;
    lens[n++] = end - start;
    if (!nul)
      break;
    start = end + 1;
  }
  tgo_span *s = tgo_span_start(pieces[0], lens[0], TGO_KIND_SERVER, NULL, NULL);
  if (!s->recording) {
    tgo_span_unref(s);
    return NULL;
  }
  /* Strings that bypass span.c's UTF-8 repair: the encoder must cope. */
  char *state = NULL, *name = NULL;
  extra->state = extra->name = NULL;
  if (n > 1 && lens[1]) {
    state = malloc(lens[1]);
    memcpy(state, pieces[1], lens[1]);
    s->tracestate = state;
    s->tracestate_len = (uint32_t)lens[1];
    name = malloc(lens[1]);
    memcpy(name, pieces[1], lens[1]);
    s->name = name;
    s->name_len = (uint32_t)lens[1];
  }
  if (n > 2)
    tgo_span_set_status(s, TGO_STATUS_ERROR, pieces[2], lens[2]);
  tgo_attrs *a = tgo_span_attrs(s);
  for (size_t i = 3; i < n; i++) {
    const char *p = pieces[i];
    size_t len = lens[i];
    if (!len)
      continue;
    char key[16];
    snprintf(key, sizeof key, "k%zu", i);
    const char *k = tgo_attrs_key(a, key, strlen(key));
    int64_t iv = 0;
    double dv = 0;
    memcpy(&iv, p + 1, len - 1 < 8 ? len - 1 : 8);
    memcpy(&dv, p + 1, len - 1 < 8 ? len - 1 : 8);
    switch ((unsigned char)p[0] % 8) {
    case 0: tgo_attr_str(a, k, p + 1, len - 1); break;
    case 1: tgo_attr_int(a, k, iv); break;
    case 2: tgo_attr_double(a, k, dv); break;
    case 3: { /* a string array, items split at 0x01 */
      const char *strs[8];
      size_t sl[8], m = 0, at = 1;
      while (m < 8) {
        const char *sep = memchr(p + at, 1, len - at);
        size_t e = sep ? (size_t)(sep - p) : len;
        strs[m] = p + at;
        sl[m++] = e - at;
        if (!sep)
          break;
        at = e + 1;
      }
      tgo_attr_str_array(a, k, strs, sl, m);
      break;
    }
    case 4: {
      double ds[2] = {dv, -dv};
      tgo_attr_double_array(a, k, ds, 2);
      break;
    }
    case 5: tgo_attr_str(tgo_span_add_event(s, p + 1, len - 1), "m", p, len); break;
    case 6: tgo_attr_bool(a, tgo_attrs_key(a, p + 1, len - 1), 1); break;
    case 7: { /* a link: ids and trace state from the piece, a string attribute */
      tgo_span_context c = {0};
      memcpy(c.trace_id, p, len < 16 ? len : 16);
      memcpy(c.span_id, p, len < 8 ? len : 8);
      c.flags = (uint8_t)p[0];
      c.is_remote = len & 1;
      c.tracestate = p + 1;
      c.tracestate_len = len - 1;
      tgo_attrs *la = tgo__span_add_link(s, &c);
      if (la)
        tgo_attr_str(la, "m", p + 1, len - 1);
      break;
    }
    }
  }
  extra->state = state;
  extra->name = name;
  return s;
}

static void fuzz_span_free(tgo_span *s, fuzz_span_extra *extra) {
  tgo_span_unref(s);
  free(extra->state);
  free(extra->name);
}
#endif
