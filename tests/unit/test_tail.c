/* Tail keep: traces head sampling dropped are held until their local root
 * ends, then exported whole when something errored or the root ran slow. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <time.h>

#include "tgo-internal.h"

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("TIGEROPS_SAMPLE_RATE", "0", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(tail, .init = setup);

static tgo_span *start(const char *name, tgo_span *parent) {
  return tgo_span_start(name, 1, TGO_KIND_INTERNAL, parent, NULL);
}

static uint64_t kept(void) { return atomic_load(&tgo__stats.traces_tail_kept); }

Test(tail, a_dropped_trace_is_recorded_but_not_sampled) {
  tgo_span *root = start("r", NULL), *child = start("c", root);
  cr_assert(root->recording && root->deferred && child->deferred);
  cr_assert_eq(root->flags & 1, 0, "the propagated flag still says unsampled");
  cr_assert_eq(child->local_root, root);
  tgo_span_end(child);
  tgo_span_end(root);
  cr_assert_eq(kept(), 0);
}

Test(tail, an_error_anywhere_keeps_the_whole_trace) {
  tgo_span *root = start("r", NULL), *child = start("c", root), *grandchild = start("g", child);
  tgo_span_ref(root);
  tgo_span_ref(grandchild);
  tgo_span_set_status(grandchild, TGO_STATUS_ERROR, "boom", 4);
  tgo_span_end(grandchild);
  tgo_span_end(child);
  cr_assert_eq(grandchild->flags & 1, 0, "held until the root decides");
  tgo_span_end(root);
  cr_assert_eq(kept(), 1);
  cr_assert_eq(root->flags & 1, 1);
  cr_assert_eq(grandchild->flags & 1, 1);
  tgo_span_unref(root);
  tgo_span_unref(grandchild);
}

Test(tail, a_span_ending_after_its_root_follows_the_verdict) {
  tgo_span *root = start("r", NULL), *late = start("l", root);
  tgo_span_ref(late);
  tgo_span_set_status(root, TGO_STATUS_ERROR, NULL, 0);
  tgo_span_end(root);
  tgo_span_end(late);
  cr_assert_eq(late->flags & 1, 1);
  tgo_span_unref(late);

  tgo_span *quiet = start("q", NULL), *quiet_late = start("l", quiet);
  tgo_span_ref(quiet_late);
  tgo_span_end(quiet);
  tgo_span_end(quiet_late);
  cr_assert_eq(quiet_late->flags & 1, 0);
  tgo_span_unref(quiet_late);
  cr_assert_eq(kept(), 1);
}

Test(tail, a_slow_root_keeps_its_trace) {
  /* Wide margins: a "fast" root under valgrind on a loaded machine took
   * more than 2 ms. */
  tgo__cfg.keep_slow_ms = 200;
  tgo_span *fast = start("f", NULL);
  tgo_span_end(fast);
  cr_assert_eq(kept(), 0);
  tgo_span *slow = start("s", NULL);
  struct timespec ts = {0, 250 * 1000 * 1000};
  nanosleep(&ts, NULL); /* the span's duration, not a synchronisation */
  tgo_span_end(slow);
  cr_assert_eq(kept(), 1);
}

Test(tail, errors_are_not_kept_when_switched_off) {
  tgo__cfg.keep_errors = 0;
  tgo_span *root = start("r", NULL);
  cr_assert_not(root->recording, "no reason left to record a dropped trace");
  tgo_span_end(root);
  cr_assert_eq(kept(), 0);
}

Test(tail, held_spans_are_bounded_and_given_back) {
  tgo__cfg.keep_max_spans = 3;
  tgo_span *spans[5];
  for (int i = 0; i < 5; i++)
    spans[i] = start("r", NULL);
  for (int i = 0; i < 5; i++)
    cr_assert_eq(spans[i]->recording, i < 3, "span %d", i);
  cr_assert_eq(atomic_load(&tgo__stats.spans_tail_dropped), 2);
  for (int i = 0; i < 5; i++)
    tgo_span_end(spans[i]);
  tgo_span *roots[3];
  for (int i = 0; i < 3; i++)
    roots[i] = start("r", NULL);
  tgo_span *unended = start("u", roots[0]);
  cr_assert(unended->recording, "a held trace may grow past the bound for new traces");
  tgo_span_unref(unended); /* freed without an end: its place comes back */
  tgo_span *children[4];
  for (int i = 0; i < 4; i++)
    children[i] = start("c", roots[0]);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(children[i]->recording, i < 3, "child %d: held traces stop at twice the bound", i);
  for (int i = 3; i >= 0; i--)
    tgo_span_end(children[i]);
  for (int i = 0; i < 3; i++)
    tgo_span_end(roots[i]);
  tgo_span *again = start("r", NULL);
  cr_assert(again->recording, "every place was given back");
  tgo_span_end(again);
}

Test(tail, an_unsampled_remote_parent_is_never_kept) {
  tgo_span_context remote = {.trace_id = {1, 2, 3}, .span_id = {4, 5}, .flags = 0, .is_remote = 1};
  tgo_span *s = tgo_span_start("srv", 3, TGO_KIND_SERVER, NULL, &remote);
  cr_assert_not(s->recording);
  tgo_span_end(s);
}

Test(tail, a_span_started_under_an_ended_child_after_its_trace_ended_is_safe) {
  tgo_span *root = start("r", NULL), *child = start("c", root);
  tgo_span_ref(child); /* a handle kept by the app */
  tgo_span_end(child);
  tgo_span_end(root); /* dropped: root and held spans are freed, except the handle */
  tgo_span *late = start("l", child);
  cr_assert(late->deferred && late->local_root == root);
  tgo_span_set_status(late, TGO_STATUS_ERROR, NULL, 0);
  tgo_span_end(late);
  cr_assert_eq(kept(), 0, "an error after the verdict does not revive the trace");
  tgo_span_unref(child); /* the last references to the root go here */
}
