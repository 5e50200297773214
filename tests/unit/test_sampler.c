/* Head samplers, decided from the trace id and the parent's flag. */
#include <criterion/criterion.h>

#include "tgo-internal.h"

static tgo__config with(int sampler, double ratio) {
  tgo__config c;
  tgo__config_defaults(&c);
  c.sampler = sampler;
  c.sampler_ratio = ratio;
  return c;
}

static double kept_fraction(const tgo__config *c, int parent) {
  int kept = 0, n = 100000;
  for (int i = 0; i < n; i++) {
    uint8_t id[16];
    tgo__new_trace_id(id);
    kept += tgo__sample(c, id, parent, 0) == TGO__SAMPLE_KEEP;
  }
  return (double)kept / n;
}

Test(sampler, always_on_and_off_ignore_the_parent) {
  tgo__config on = with(TGO__SAMPLER_ALWAYS_ON, 1), off = with(TGO__SAMPLER_ALWAYS_OFF, 1);
  uint8_t id[16] = {1};
  cr_assert_eq(tgo__sample(&on, id, 0, 1), 1);
  cr_assert_eq(tgo__sample(&off, id, 1, 1), 0);
}

Test(sampler, ratio_keeps_about_the_ratio) {
  tgo__config c = with(TGO__SAMPLER_RATIO, 0.25);
  double f = kept_fraction(&c, -1);
  cr_assert(f > 0.24 && f < 0.26, "kept %f", f);
  c.sampler_ratio = 0;
  cr_assert_eq(kept_fraction(&c, -1), 0.0);
  c.sampler_ratio = 1;
  cr_assert_eq(kept_fraction(&c, -1), 1.0);
}

Test(sampler, ratio_decision_depends_only_on_the_trace_id) {
  tgo__config c = with(TGO__SAMPLER_RATIO, 0.5);
  for (int i = 0; i < 1000; i++) {
    uint8_t id[16];
    tgo__new_trace_id(id);
    int first = tgo__sample(&c, id, -1, 0);
    cr_assert(first == TGO__SAMPLE_KEEP || first == TGO__SAMPLE_DEFER);
    cr_assert_eq(tgo__sample(&c, id, -1, 0), first);
  }
}

Test(sampler, parent_based_follows_the_parent_and_falls_back_for_roots) {
  tgo__config on = with(TGO__SAMPLER_PARENT_ALWAYS_ON, 1);
  tgo__config off = with(TGO__SAMPLER_PARENT_ALWAYS_OFF, 1);
  tgo__config ratio = with(TGO__SAMPLER_PARENT_RATIO, 0.1);
  uint8_t id[16] = {9};
  cr_assert_eq(tgo__sample(&on, id, 0, 1), 0);
  cr_assert_eq(tgo__sample(&on, id, -1, 0), 1);
  cr_assert_eq(tgo__sample(&off, id, 1, 1), 1);
  cr_assert_eq(tgo__sample(&off, id, -1, 0), 0);
  cr_assert_eq(kept_fraction(&ratio, 1), 1.0);
  cr_assert_eq(kept_fraction(&ratio, 0), 0.0);
  double f = kept_fraction(&ratio, -1);
  cr_assert(f > 0.09 && f < 0.11, "kept %f", f);
}

Test(sampler, only_our_own_ratio_drop_is_deferred_for_tail_keep) {
  tgo__config ratio = with(TGO__SAMPLER_PARENT_RATIO, 0);
  tgo__config off = with(TGO__SAMPLER_ALWAYS_OFF, 1);
  uint8_t id[16] = {7};
  cr_assert_eq(tgo__sample(&ratio, id, -1, 0), TGO__SAMPLE_DEFER);
  cr_assert_eq(tgo__sample(&ratio, id, 0, 1), TGO__SAMPLE_DROP, "an unsampled caller is respected");
  cr_assert_eq(tgo__sample(&off, id, -1, 0), TGO__SAMPLE_DROP);
  ratio.keep_errors = 0;
  cr_assert_eq(tgo__sample(&ratio, id, -1, 0), TGO__SAMPLE_DROP, "nothing to keep for");
  ratio.keep_slow_ms = 100;
  cr_assert_eq(tgo__sample(&ratio, id, -1, 0), TGO__SAMPLE_DEFER);
}
