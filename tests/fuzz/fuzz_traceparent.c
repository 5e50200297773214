/* libFuzzer: traceparent and tracestate parsing on arbitrary bytes. */
#include <string.h>

#include "tgo-internal.h"

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
  return 0;
}
