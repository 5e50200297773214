/* Tail keep. At a low sampling ratio the traces an operator needs most, the
 * failing and the slow ones, are exactly the ones head sampling throws away.
 * So a trace our ratio dropped is still recorded ("deferred"): each ended
 * span is held on its local root, and when the root ends the whole local
 * trace is either submitted (some span errored, or the root ran slow) or
 * freed. The number of spans held at once is bounded: past
 * TIGEROPS_KEEP_BUFFER_SPANS new traces are simply not recorded, as head
 * sampling said, while the traces already held may grow to twice that, so
 * a trace is not cut short by its neighbours; only past twice the bound
 * does a held trace lose spans. */
#include "tgo-internal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int held; /* deferred spans alive: started and not yet released */

void tgo__tail_unadmit(void) { atomic_fetch_sub_explicit(&held, 1, memory_order_relaxed); }

int tgo__tail_admit(int new_trace) {
  int limit = new_trace ? tgo__cfg.keep_max_spans : 2 * tgo__cfg.keep_max_spans;
  if (atomic_fetch_add_explicit(&held, 1, memory_order_relaxed) < limit)
    return 1;
  tgo__tail_unadmit();
  atomic_fetch_add_explicit(&tgo__stats.spans_tail_dropped, 1, memory_order_relaxed);
  TGO__LOG_ONCE(TGO_LOG_INFO, "tail keep buffer full (%d spans): some unsampled traces are not "
               "held for the error/slow check", tgo__cfg.keep_max_spans);
  return 0;
}

/* Takes the span's own (starter) reference. */
static void release(tgo_span *s, int keep) {
  tgo__tail_unadmit();
  if (keep) {
    s->flags |= 1;
    tgo__pipeline_submit(s);
  } else {
    tgo_span_unref(s);
  }
}

static int wants_keeping(const tgo_span *s) {
  if (tgo__cfg.keep_errors && s->status == TGO_STATUS_ERROR)
    return 1;
  return s == s->local_root && tgo__cfg.keep_slow_ms > 0 &&
         s->end_ns - s->start_ns >= (uint64_t)tgo__cfg.keep_slow_ms * 1000000ull;
}

/* Asked of a span about to end: whether its data will be exported. Only a
 * deferred local root can answer no (a child's trace is decided later);
 * its end time is fixed here so that the slow check at its end gives the
 * same verdict. A child ending with an error on another thread between
 * this call and the root's end still keeps the trace. */
int tgo__span_is_deferred(const tgo_span *s) { return s->deferred; }

int tgo__span_will_export(tgo_span *s) {
  if (!s->recording || s->ended)
    return 0;
  if (!s->deferred || s != s->local_root)
    return 1;
  if (!s->end_ns)
    s->end_ns = s->start_ns + (tgo__now_ns(CLOCK_MONOTONIC) - s->mono_start_ns);
  /* A child's verdict read without the lock: one arriving just after is
   * the same race as one arriving after the lock was let go. */
  return wants_keeping(s) || atomic_load_explicit(&s->keep_trace, memory_order_acquire);
}

void tgo__tail_end(tgo_span *s) {
  tgo_span *root = s->local_root;
  int keep_this = wants_keeping(s);
  pthread_mutex_lock(&lock);
  if (keep_this && !root->decided) /* a verdict once given stands */
    atomic_store_explicit(&root->keep_trace, 1, memory_order_release);
  if (s == root) {
    root->decided = 1;
    tgo_span *held_spans = root->held_head;
    root->held_head = NULL;
    int keep = atomic_load_explicit(&root->keep_trace, memory_order_relaxed);
    pthread_mutex_unlock(&lock);
    if (keep)
      atomic_fetch_add_explicit(&tgo__stats.traces_tail_kept, 1, memory_order_relaxed);
    while (held_spans) {
      tgo_span *next = held_spans->held_next;
      release(held_spans, keep);
      held_spans = next;
    }
    release(root, keep);
    return;
  }
  if (!root->decided) {
    s->held_next = root->held_head;
    root->held_head = s;
    pthread_mutex_unlock(&lock);
  } else { /* ended after its root: follows the verdict already given */
    int keep = atomic_load_explicit(&root->keep_trace, memory_order_relaxed);
    pthread_mutex_unlock(&lock);
    release(s, keep);
  }
}

/* A deferred span lets go of its root only when freed: until then a span
 * started under it (even after everything ended) still reaches a live
 * root. One freed without an end also gives back its place. */
void tgo__tail_span_freed(tgo_span *s) {
  if (!s->ended)
    tgo__tail_unadmit();
  if (s->local_root != s)
    tgo_span_unref(s->local_root);
}

/* The child keeps only the forking thread; spans other threads held are
 * gone with them, so the count starts over. */
void tgo__tail_fork_child(void) {
  pthread_mutex_init(&lock, NULL);
  atomic_store(&held, 0);
}
