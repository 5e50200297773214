/* Head sampling: the OpenTelemetry samplers, decided from the trace id alone
 * so every service sampling at the same ratio keeps the same traces. */
#include "tgo-internal.h"

static int ratio_keeps(double ratio, const uint8_t trace_id[16]) {
  if (ratio >= 1.0)
    return 1;
  if (ratio <= 0.0)
    return 0;
  uint64_t low = 0;
  for (int i = 8; i < 16; i++)
    low = low << 8 | trace_id[i];
  /* Compare in 63 bits so the threshold (ratio * 2^63) fits a uint64. */
  uint64_t threshold = (uint64_t)(ratio * 9223372036854775808.0);
  return (low >> 1) < threshold;
}

/* Only a drop made by our own ratio may be reconsidered at the root's end:
 * always_off and an unsampled parent are the operator's and the caller's
 * decisions to keep nothing. */
static int by_ratio(const tgo__config *c, const uint8_t trace_id[16]) {
  if (ratio_keeps(c->sampler_ratio, trace_id))
    return TGO__SAMPLE_KEEP;
  return c->keep_errors || c->keep_slow_ms > 0 ? TGO__SAMPLE_DEFER : TGO__SAMPLE_DROP;
}

int tgo__sample(const tgo__config *c, const uint8_t trace_id[16], int parent_sampled, int parent_remote) {
  (void)parent_remote;
  switch (c->sampler) {
  case TGO__SAMPLER_ALWAYS_ON:
    return 1;
  case TGO__SAMPLER_ALWAYS_OFF:
    return 0;
  case TGO__SAMPLER_RATIO:
    return by_ratio(c, trace_id);
  case TGO__SAMPLER_PARENT_ALWAYS_OFF:
    return parent_sampled >= 0 ? parent_sampled : 0;
  case TGO__SAMPLER_PARENT_RATIO:
    return parent_sampled >= 0 ? parent_sampled : by_ratio(c, trace_id);
  case TGO__SAMPLER_PARENT_ALWAYS_ON:
  default:
    return parent_sampled >= 0 ? parent_sampled : 1;
  }
}
