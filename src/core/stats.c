/* The tracer's counters: bumped with relaxed atomics wherever a span is
 * started, ended, dropped or exported, read together by tgo_get_stats. */
#include "tgo-internal.h"

tgo__counters tgo__stats;

void tgo_get_stats(tgo_stats *out) {
  out->spans_started = atomic_load(&tgo__stats.spans_started);
  out->spans_ended = atomic_load(&tgo__stats.spans_ended);
  out->spans_dropped = atomic_load(&tgo__stats.spans_dropped);
  out->spans_exported = atomic_load(&tgo__stats.spans_exported);
  out->spans_failed = atomic_load(&tgo__stats.spans_failed);
  out->export_requests = atomic_load(&tgo__stats.export_requests);
  out->traces_tail_kept = atomic_load(&tgo__stats.traces_tail_kept);
  out->spans_tail_dropped = atomic_load(&tgo__stats.spans_tail_dropped);
}
