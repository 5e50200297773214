/* The bounded span queue and the exporter thread. Request threads only ever
 * take the queue lock for a pointer push; a full queue drops and counts. The
 * thread starts at the first ended span (so non-tracing processes never get
 * one) and again in a forked child, which drops what its parent buffered. */
#include "tgo-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;   /* exporter waits here */
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;   /* flushers wait here */

static tgo_span **ring;
static size_t ring_cap, ring_head, ring_len;
/* Span memory queued (tgo__span_mem): bounded by TIGEROPS_MAX_QUEUE_BYTES,
 * and half of that wakes the exporter like a full batch does, so a healthy
 * worker holds about that much between exports. */
static size_t ring_bytes;
static uint64_t submitted_seq, completed_seq; /* flush waits for completed >= target */
static int flush_waiters;
static atomic_int stopping;
static int running;
static pid_t running_pid;
static pthread_t thread;

/* The end of the exit flush in progress (CLOCK_MONOTONIC ns; 0: none) and the
 * process it belongs to. One process exit makes several shutdown calls (a
 * Celery signal, Python's atexit, our C atexit): they share one bound. It
 * closes when the exporter restarts for spans ended after it. */
static uint64_t exit_end_ns;
static pid_t exit_pid;

/* Set while this thread waits in a flush or shutdown. uWSGI's workers call
 * exit() from their SIGINT/SIGTERM handler, so the exit flush runs inside a
 * signal handler, and a second signal re-enters it through the C atexit
 * handler: that call must not touch the lock or condition variable its own
 * interrupted frame is using (glibc's condvar deadlocked both threads). */
static __thread volatile sig_atomic_t waiting_here;

static void deadline_after(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  uint64_t ns = (uint64_t)ts->tv_nsec + (uint64_t)ms * 1000000ull;
  ts->tv_sec += (time_t)(ns / 1000000000ull);
  ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* The configured exporter's, or dropped when it is "none" (app.config may
 * have switched to it while these spans were queued). */
static void export_batch(tgo_span **spans, size_t n) {
  const tgo__exporter *ex = tgo__exporter_current();
  if (ex->export) {
    ex->export(spans, n, &stopping);
    return;
  }
  for (size_t i = 0; i < n; i++)
    tgo_span_unref(spans[i]);
}

static size_t kick_bytes(void) { return (size_t)tgo__cfg.max_queue_bytes / 2; }

/* Metrics are collected by this thread too: every OTEL_METRIC_EXPORT_INTERVAL
 * (CLOCK_MONOTONIC ns of the next collection) and for each flush request
 * (a flush waits until metrics_done reaches the number it asked for). */
static uint64_t next_metrics_ns, metrics_asked, metrics_done;

static int metrics_due_locked(void) {
  return metrics_asked != metrics_done ||
         (next_metrics_ns && tgo__metrics_active() && tgo__now_ns(CLOCK_MONOTONIC) >= next_metrics_ns);
}

static void schedule_metrics_locked(void) {
  next_metrics_ns = tgo__now_ns(CLOCK_MONOTONIC) + (uint64_t)tgo__cfg.metric_interval_ms * 1000000u;
}

/* Called with the lock held; releases it while exporting. */
static void export_metrics_locked(void) {
  uint64_t asked = metrics_asked;
  schedule_metrics_locked();
  pthread_mutex_unlock(&lock);
  tgo__metrics_export(&stopping);
  pthread_mutex_lock(&lock);
  metrics_done = asked;
  pthread_cond_broadcast(&done);
}

static void realtime_at(struct timespec *ts, uint64_t mono_ns);

static void *exporter_main(void *arg) {
  (void)arg;
  size_t batch_cap = 0;
  tgo_span **batch = NULL;
  pthread_mutex_lock(&lock);
  for (;;) {
    size_t want = (size_t)tgo__cfg.max_batch_size;
    /* Sleep until a full batch, a flush with something to send, a stop, the
     * schedule delay with something to send, or metrics to collect. */
    struct timespec deadline;
    deadline_after(&deadline, tgo__cfg.schedule_delay_ms);
    while (!stopping && ring_len < want && ring_bytes < kick_bytes() && tgo__logs_pending() < want &&
           !(flush_waiters && (ring_len || tgo__logs_pending())) && !metrics_due_locked()) {
      struct timespec until = deadline, metrics_at;
      if (next_metrics_ns && tgo__metrics_active()) {
        realtime_at(&metrics_at, next_metrics_ns);
        if (metrics_at.tv_sec < until.tv_sec || (metrics_at.tv_sec == until.tv_sec && metrics_at.tv_nsec < until.tv_nsec))
          until = metrics_at;
      }
      if (pthread_cond_timedwait(&wake, &lock, &until) == ETIMEDOUT) {
        if (ring_len || tgo__logs_pending())
          break;
        if (!metrics_due_locked())
          deadline_after(&deadline, tgo__cfg.schedule_delay_ms);
      }
    }
    if (metrics_due_locked())
      export_metrics_locked();
    if (ring_len == 0) {
      if (tgo__logs_pending()) { /* log records ride the same thread and schedule */
        pthread_mutex_unlock(&lock);
        tgo__logs_export_some(&stopping);
        pthread_mutex_lock(&lock);
        pthread_cond_broadcast(&done);
        continue;
      }
      if (stopping)
        break;
      continue;
    }
    size_t n = ring_len < want ? ring_len : want;
    if (n > batch_cap) {
      tgo_span **nb = realloc(batch, n * sizeof *nb);
      if (nb) {
        batch = nb;
        batch_cap = n;
      } else if (batch_cap) {
        n = batch_cap;
      } else { /* no memory even for a batch: drop, never spin */
        tgo_span *s = ring[ring_head];
        ring_head = (ring_head + 1) % ring_cap;
        ring_len--;
        ring_bytes -= s->queued_bytes;
        __atomic_store_n(&completed_seq, completed_seq + 1, __ATOMIC_RELEASE);
        atomic_fetch_add_explicit(&tgo__stats.spans_failed, 1, memory_order_relaxed);
        tgo_span_unref(s);
        continue;
      }
    }
    for (size_t i = 0; i < n; i++) {
      batch[i] = ring[ring_head];
      ring_bytes -= batch[i]->queued_bytes;
      ring_head = (ring_head + 1) % ring_cap;
    }
    ring_len -= n;
    pthread_mutex_unlock(&lock);

    export_batch(batch, n);
    tgo__logs_export_some(&stopping);

    pthread_mutex_lock(&lock);
    __atomic_store_n(&completed_seq, completed_seq + n, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&done);
  }
  running = 0;
  pthread_cond_broadcast(&done);
  pthread_mutex_unlock(&lock);
  free(batch);
  return NULL;
}

/* Called with the lock held. Blocks every signal in the new thread so the
 * host's handlers (gunicorn's SIGTERM, SIGCHLD) always run on its threads. */
static int start_exporter_locked(void) {
  if (running && running_pid == getpid())
    return 0;
  if (!ring) {
    ring_cap = (size_t)tgo__cfg.max_queue_size;
    ring = calloc(ring_cap, sizeof *ring);
    if (!ring)
      return -ENOMEM;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  stopping = 0;
  __atomic_store_n(&exit_end_ns, 0, __ATOMIC_RELAXED); /* spans after a shutdown: a later exit gets its own bound */
  tgo__http_set_deadline(0);
  int rc = pthread_create(&thread, &attr, exporter_main, NULL);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) {
    TGO__LOG_ONCE(TGO_LOG_ERROR, "cannot start the exporter thread (%s); spans are dropped",
                 strerror(rc));
    return -rc;
  }
  running = 1;
  running_pid = getpid();
  schedule_metrics_locked();
  return 0;
}

/* The first measurement of a process starts the exporter thread (a process
 * that samples no trace still sends its metrics). */
void tgo__pipeline_metrics_start(void) {
  if (tgo__cfg.metrics_exporter == TGO__EXPORTER_NONE)
    return;
  pthread_mutex_lock(&lock);
  if (!running || running_pid != getpid())
    start_exporter_locked();
  pthread_mutex_unlock(&lock);
}

void tgo__pipeline_kick(int wake_now) {
  pthread_mutex_lock(&lock);
  int ok = (running && running_pid == getpid()) || start_exporter_locked() == 0;
  pthread_mutex_unlock(&lock);
  if (ok && wake_now)
    pthread_cond_signal(&wake);
}

void tgo__pipeline_submit(tgo_span *s) {
  if (!tgo__exporter_current()->export) {
    tgo_span_unref(s);
    return;
  }
  pthread_mutex_lock(&lock);
  if (TGO__UNLIKELY(!running) && start_exporter_locked() < 0) {
    pthread_mutex_unlock(&lock);
    atomic_fetch_add_explicit(&tgo__stats.spans_dropped, 1, memory_order_relaxed);
    tgo_span_unref(s);
    return;
  }
  size_t mem = tgo__span_mem(s);
  if (TGO__UNLIKELY(ring_len == ring_cap || ring_bytes + mem > (size_t)tgo__cfg.max_queue_bytes)) {
    pthread_mutex_unlock(&lock);
    atomic_fetch_add_explicit(&tgo__stats.spans_dropped, 1, memory_order_relaxed);
    TGO__LOG_ONCE(TGO_LOG_WARN,
                  "span queue full (%zu spans, %zu bytes; OTEL_BSP_MAX_QUEUE_SIZE, TIGEROPS_MAX_QUEUE_BYTES): "
                  "dropping spans until the exporter catches up",
                  ring_len, ring_bytes);
    tgo_span_unref(s);
    return;
  }
  s->queued_bytes = (uint32_t)mem;
  ring[(ring_head + ring_len) % ring_cap] = s;
  ring_len++;
  size_t kick_at = kick_bytes();
  int kick = ring_bytes < kick_at && ring_bytes + mem >= kick_at;
  ring_bytes += mem;
  __atomic_store_n(&submitted_seq, submitted_seq + 1, __ATOMIC_RELAXED);
  /* Wake the exporter only for a full batch (in spans or bytes): no
   * syscall per span. */
  kick |= ring_len == (size_t)tgo__cfg.max_batch_size;
  pthread_mutex_unlock(&lock);
  if (kick)
    pthread_cond_signal(&wake);
}

static void exporter_flush(void) {
  const tgo__exporter *ex = tgo__exporter_current();
  if (ex->flush)
    ex->flush();
}

/* pthread_cond_timedwait's CLOCK_REALTIME deadline for a CLOCK_MONOTONIC time. */
static void realtime_at(struct timespec *ts, uint64_t mono_ns) {
  uint64_t now = tgo__now_ns(CLOCK_MONOTONIC);
  uint64_t ms = mono_ns > now ? (mono_ns - now + 999999u) / 1000000u : 0;
  deadline_after(ts, (int)(ms > INT32_MAX ? INT32_MAX : ms));
}

/* Called with the lock held; waits until what was submitted before the call
 * is exported or mono_end passes. */
static int flush_locked(uint64_t mono_end) {
  if (!running || running_pid != getpid())
    return 0;
  uint64_t target = submitted_seq, metrics_target = ++metrics_asked, log_target = tgo__logs_submitted();
  struct timespec deadline;
  realtime_at(&deadline, mono_end);
  int rc = 0;
  flush_waiters++;
  pthread_cond_signal(&wake);
  while ((completed_seq < target || metrics_done < metrics_target || !tgo__logs_done(log_target)) && running) {
    if (pthread_cond_timedwait(&done, &lock, &deadline) == ETIMEDOUT) {
      rc = -ETIMEDOUT;
      break;
    }
  }
  flush_waiters--;
  return rc;
}

/* For a call that found this thread already waiting, or the lock held (by
 * the frame a signal interrupted, queueing a span): watches the exporter
 * drain the queue without the lock, async-signal-safely, until mono_end. */
static int wait_unlocked(uint64_t mono_end) {
  for (;;) {
    uint64_t target = __atomic_load_n(&submitted_seq, __ATOMIC_RELAXED);
    if (__atomic_load_n(&completed_seq, __ATOMIC_ACQUIRE) >= target)
      return 0;
    if (tgo__now_ns(CLOCK_MONOTONIC) >= mono_end)
      return -ETIMEDOUT;
    struct timespec step = {0, 5000000L};
    nanosleep(&step, NULL);
  }
}

/* Takes the lock (0) unless this thread already waits under it (1: the
 * caller waits with wait_unlocked) or cannot get it (-1). Other threads
 * hold it for a pointer push, so the timed lock only runs out when a signal
 * interrupted this very thread inside it, queueing a span: then the
 * exporter cannot take the lock either, and waiting would be for nothing. */
static int lock_or_reentered(uint64_t mono_end) {
  if (waiting_here)
    return 1;
  uint64_t now = tgo__now_ns(CLOCK_MONOTONIC);
  uint64_t until = now + 100000000u < mono_end ? now + 100000000u : mono_end;
  struct timespec ts;
  realtime_at(&ts, until);
  if (pthread_mutex_timedlock(&lock, &ts) != 0)
    return -1;
  waiting_here = 1;
  return 0;
}

static void unlock_waiter(void) {
  waiting_here = 0;
  pthread_mutex_unlock(&lock);
}

int tgo__pipeline_flush(int timeout_ms) {
  uint64_t end = tgo__now_ns(CLOCK_MONOTONIC) + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
  int how = lock_or_reentered(end);
  if (how)
    return how > 0 ? wait_unlocked(end) : -EDEADLK;
  int rc = flush_locked(end);
  unlock_waiter();
  exporter_flush();
  return rc;
}

/* Flushes until the bound, then stops the exporter. What is still queued when
 * the time for sending runs out is counted as failed, and the request in
 * flight is cut (tgo__http_set_deadline), so the exporter thread is gone or
 * going when this returns: no exit ever waits longer than timeout_ms in all. */
int tgo__pipeline_shutdown(int timeout_ms) {
  uint64_t now = tgo__now_ns(CLOCK_MONOTONIC);
  uint64_t end = now + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
  int how = lock_or_reentered(end);
  if (how < 0)
    return -EDEADLK;
  if (how) { /* the exit in progress, if any, bounds this one too */
    uint64_t open_end = __atomic_load_n(&exit_end_ns, __ATOMIC_RELAXED);
    if (open_end && open_end < end && __atomic_load_n(&exit_pid, __ATOMIC_RELAXED) == getpid())
      end = open_end;
    return wait_unlocked(end);
  }
  if (exit_end_ns && exit_pid == getpid()) {
    if (exit_end_ns < end)
      end = exit_end_ns;
  } else {
    __atomic_store_n(&exit_end_ns, end, __ATOMIC_RELAXED);
    __atomic_store_n(&exit_pid, getpid(), __ATOMIC_RELAXED);
  }
  if (!running || running_pid != getpid()) {
    unlock_waiter();
    exporter_flush();
    return 0;
  }
  /* Sending stops a little before the end so the exporter thread can count
   * the cut request and exit inside the bound. */
  uint64_t left = end > now ? end - now : 0;
  uint64_t grace = left / 10 < 100000000u ? left / 10 : 100000000u;
  uint64_t cut = end - grace;
  tgo__http_set_deadline(cut);
  int rc = flush_locked(cut);
  stopping = 1;
  if (rc) /* spans lost at exit are otherwise silent: a recycled worker's last ones */
    tgo__log(TGO_LOG_WARN,
             "exit flush not done within %d ms (TIGEROPS_SHUTDOWN_TIMEOUT_MS): %zu queued spans dropped, "
             "an export in progress is cut off",
             (int)(left / 1000000u), ring_len);
  if (rc && ring_len) { /* not sent in time: never sent */
    for (size_t i = 0; i < ring_len; i++)
      tgo_span_unref(ring[(ring_head + i) % ring_cap]);
    atomic_fetch_add_explicit(&tgo__stats.spans_failed, ring_len, memory_order_relaxed);
    __atomic_store_n(&completed_seq, completed_seq + ring_len, __ATOMIC_RELEASE);
    ring_head = ring_len = ring_bytes = 0;
  }
  if (rc)
    tgo__logs_drop_queued();
  pthread_cond_signal(&wake);
  struct timespec deadline;
  realtime_at(&deadline, end);
  while (running)
    if (pthread_cond_timedwait(&done, &lock, &deadline) == ETIMEDOUT) {
      rc = -ETIMEDOUT;
      break;
    }
  unlock_waiter();
  exporter_flush();
  return rc;
}

void tgo__pipeline_fork_prepare(void) {
  pthread_mutex_lock(&lock);
  tgo__logs_fork_prepare();
}
void tgo__pipeline_fork_parent(void) {
  tgo__logs_fork_parent();
  pthread_mutex_unlock(&lock);
}

/* The child has no exporter thread and must not export the parent's spans:
 * they are freed here and the queue starts empty. */
void tgo__pipeline_fork_child(void) {
  pthread_mutex_init(&lock, NULL);
  pthread_cond_init(&wake, NULL);
  pthread_cond_init(&done, NULL);
  for (size_t i = 0; i < ring_len; i++)
    tgo_span_unref(ring[(ring_head + i) % ring_cap]);
  ring_head = ring_len = ring_bytes = 0;
  submitted_seq = completed_seq = 0;
  metrics_asked = metrics_done = next_metrics_ns = 0;
  flush_waiters = 0;
  running = 0;
  stopping = 0;
  tgo__logs_fork_child();
}
