/* The bounded span queue: ending spans never blocks, overflow is dropped and
 * counted, and a flush against a dead collector returns in bounded time. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tgo-internal.h"

static void dead_collector(void) {
  setenv("TIGEROPS_ENDPOINT", "http://127.0.0.1:9", 1); /* discard port: refused */
  setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8", 1);
  setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4", 1);
  setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1);
  setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200", 1);
  setenv("TIGEROPS_LOG_LEVEL", "none", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(queue, .init = dead_collector);

static double now_s(void) { return (double)tgo__now_ns(CLOCK_MONOTONIC) / 1e9; }

Test(queue, overflow_is_dropped_and_counted_without_blocking) {
  double t0 = now_s();
  for (int i = 0; i < 10000; i++)
    tgo_span_end(tgo_span_start("s", 1, TGO_KIND_INTERNAL, NULL, NULL));
  double took = now_s() - t0;
  cr_assert_lt(took, 1.0, "ending 10000 spans took %.3fs", took);
  tgo_stats st;
  tgo_get_stats(&st);
  cr_assert_eq(st.spans_ended, 10000);
  cr_assert_gt(st.spans_dropped, 9000, "dropped %llu", (unsigned long long)st.spans_dropped);
}

Test(queue, flush_against_a_dead_collector_is_bounded) {
  for (int i = 0; i < 8; i++)
    tgo_span_end(tgo_span_start("s", 1, TGO_KIND_INTERNAL, NULL, NULL));
  double t0 = now_s();
  tgo_flush(300);
  double took = now_s() - t0;
  cr_assert_lt(took, 1.5, "flush took %.3fs", took);
  t0 = now_s();
  tgo_shutdown(300);
  cr_assert_lt(now_s() - t0, 1.5);
}

Test(queue, failed_exports_are_counted_not_retried_forever) {
  for (int i = 0; i < 4; i++)
    tgo_span_end(tgo_span_start("s", 1, TGO_KIND_INTERNAL, NULL, NULL));
  tgo_shutdown(100); /* stop: the backoff gives up */
  tgo_stats st;
  tgo_get_stats(&st);
  cr_assert_eq(st.spans_exported, 0);
  cr_assert_geq(st.export_requests, 1);
}

/* TIGEROPS_MAX_QUEUE_BYTES bounds the queue's span memory whatever the span
 * count allows: big spans are dropped (and counted) long before 100000. */
static void dead_collector_byte_bound(void) {
  setenv("TIGEROPS_ENDPOINT", "http://127.0.0.1:9", 1);
  setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100000", 1);
  setenv("TIGEROPS_MAX_QUEUE_BYTES", "65536", 1);
  setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1);
  setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200", 1);
  setenv("TIGEROPS_LOG_LEVEL", "none", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(queue_bytes, .init = dead_collector_byte_bound);

Test(queue_bytes, span_memory_beyond_the_byte_bound_is_dropped_and_counted) {
  static char big[4000];
  memset(big, 'x', sizeof big);
  for (int i = 0; i < 1000; i++) {
    tgo_span *s = tgo_span_start("s", 1, TGO_KIND_INTERNAL, NULL, NULL);
    cr_assert_gt(tgo__span_mem(s), sizeof *s, "the inline arena counts");
    tgo_attr_str(tgo_span_attrs(s), "big", big, sizeof big);
    cr_assert_gt(tgo__span_mem(s), sizeof big, "chunks count");
    tgo_span_end(s);
  }
  tgo_stats st;
  tgo_get_stats(&st);
  /* 64 KiB holds at most 13 spans of 5 KB; the exporter holds one batch. */
  cr_assert_geq(st.spans_dropped, 1000 - 2 * 13, "dropped %llu", (unsigned long long)st.spans_dropped);
}
