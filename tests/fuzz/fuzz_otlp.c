/* libFuzzer: whatever a span holds (fuzz_span.h), the OTLP/protobuf
 * encoder writes, for a batch of one to three copies of it after whatever
 * the buffer already held, a message protobuf-c decodes and packs again
 * to the same bytes (field order, lengths of every width, no default
 * written), and never reads or writes out of bounds: the writer checks
 * each field against the buffer's room and grows it, and moves a span or
 * the batch whose length comes out another width than it guessed. A span
 * written alone into a buffer with little room grows it to the bytes an
 * exact room gets. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_span.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "tgo-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_span_extra extra;
  tgo_span *s = fuzz_span(data, size, &extra);
  if (!s)
    return 0;
  size_t copies = 1 + (size ? data[size - 1] % 3 : 0), before = size % 7 * 1000;
  tgo_span *batch[3] = {s, s, s};
  tgo__buf out = {0};
  if (before) { /* bytes the batch goes after, kept as they were */
    if (tgo__buf_reserve(&out, before) < 0)
      abort();
    memset(out.data, 0xA5, before);
    out.len = before;
  }
  if (tgo__otlp_encode_traces(batch, copies, &out) == 0) {
    for (size_t i = 0; i < before; i++)
      if (out.data[i] != 0xA5)
        abort();
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, out.len - before,
                                                                                         out.data + before);
    if (!m)
      abort();
    size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(m);
    uint8_t *again = malloc(n ? n : 1);
    if (n != out.len - before ||
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(m, again) != n ||
        memcmp(again, out.data + before, n))
      abort();
    free(again);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);
  }
  tgo__buf_free(&out);
  /* The span alone into a room of a few bytes, grown as its fields need:
   * the bytes an exact room of tgo__otlp_span_size gets. */
  size_t exact = tgo__otlp_span_size(s);
  uint8_t *want = malloc(exact), *end = tgo__otlp_span_write(want, s);
  if (!end || (size_t)(end - want) != exact)
    abort();
  size_t cap = 1 + (size ? data[0] % 64 : 0), at = cap / 2; /* tgo__buf_reserve's least is 4 KB */
  tgo__buf small = {malloc(cap), at, cap};
  if (!small.data)
    abort();
  end = tgo__otlp_span_write_in(&small, small.data + at, s);
  if (!end || (size_t)(end - small.data) - at != exact || memcmp(small.data + at, want, exact))
    abort();
  tgo__buf_free(&small);
  free(want);
  fuzz_span_free(s, &extra);
  return 0;
}
