/* libFuzzer: the propagation parsers (traceparent, tracestate, b3 single
 * and multi, baggage, the configured-order extraction) on arbitrary bytes. */
#include <string.h>

#include "tgo-internal.h"

static const uint8_t *in;
static size_t in_size;

/* Each header is a slice of the input, split at NUL bytes. */
static const char *slice_get(void *carrier, int which, size_t *len) {
  (void)carrier;
  size_t start = 0;
  for (int k = 0; k < which; k++) {
    const uint8_t *z = memchr(in + start, 0, in_size - start);
    if (!z)
      return NULL;
    start = (size_t)(z - in) + 1;
  }
  const uint8_t *z = memchr(in + start, 0, in_size - start);
  *len = z ? (size_t)(z - in) - start : in_size - start;
  return (const char *)in + start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tgo_span_context c;
  if (tgo_traceparent_parse((const char *)data, size, &c) == 0) {
    char out[TGO_TRACEPARENT_LEN + 1];
    tgo_traceparent_format(&c, out);
    tgo_span_context again;
    if (tgo_traceparent_parse(out, TGO_TRACEPARENT_LEN, &again) != 0 ||
        memcmp(again.trace_id, c.trace_id, 16) || memcmp(again.span_id, c.span_id, 8))
      __builtin_trap(); /* what we format must parse back the same */
  }
  tgo_tracestate_check((const char *)data, size);
  if (tgo__b3_parse((const char *)data, size, &c) == 0) {
    char out[TGO_TRACEPARENT_LEN + 1];
    tgo__b3_format(&c, out);
    tgo_span_context again;
    if (tgo__b3_parse(out, TGO__B3_LEN, &again) != 0 || memcmp(again.trace_id, c.trace_id, 16) ||
        memcmp(again.span_id, c.span_id, 8))
      __builtin_trap();
  }
  int n = tgo__baggage_check((const char *)data, size);
  if (n > (int)size || (n > 0 && size > TGO__BAGGAGE_MAX_BYTES + 64))
    __builtin_trap(); /* never a length past the input, never an oversized header */
  in = data;
  in_size = size;
  const char *bag;
  size_t bag_len;
  int props = size ? data[0] | data[size - 1] << 8 : 0x21;
  if (tgo__extract(props, slice_get, NULL, &c, &bag, &bag_len) && !bag)
    (void)c;
  if (bag && (bag < (const char *)data || bag + bag_len > (const char *)data + size))
    __builtin_trap();
  return 0;
}
