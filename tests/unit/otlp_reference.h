/* protobuf-c reference encodings for the unit tests (otlp_reference.c). */
#ifndef OTLP_REFERENCE_H
#define OTLP_REFERENCE_H

#include "tgo-internal.h"

/* A Span message as protobuf-c packs it, appended to out. */
int otlp_ref_pack_span(const tgo_span *s, tgo__buf *out);
/* The whole ExportTraceServiceRequest (this process's resource, our scope,
 * the spans) as protobuf-c packs it, appended to out. */
int otlp_ref_pack_request(tgo_span *const *spans, size_t n, tgo__buf *out);

#endif
