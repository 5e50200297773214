"""Celery: a PRODUCER span per publish (the W3C context goes into the
message headers) and a CONSUMER span per execution, continuing it, so a
task shows up in the trace of the request that queued it. Spans that live
from one signal to the next are kept by task id; failures carry the
traceback, retries an event, and expected exceptions (throws=) are not
errors; a revoked task (by id, expired, or terminated) gets a span of its
own. The signals used here, and the arguments Celery sends them with, are
the same in 5.2.6, 5.4.0 and 5.5.3 (their signals.py, app/amqp.py,
app/trace.py and worker/request.py compared).

Metrics, for every task whatever the trace sampler decides:
messaging.process.duration (prerun to postrun) and tigerops.celery.tasks,
a counter of outcomes (success, failure, retry, revoked) by task name and
queue; the queue depth gauge is _queue_depth's."""
from time import perf_counter as _perf

import _tigerops
from tigerops import Span, _bootstrap, _metrics, _queue_depth

_publishing = {}
_running = {}
_timing = {}  # task id -> [start, queue, error.type or None]
_process_duration = _metrics.instrument("histogram", "messaging.process.duration", "s",
                                        "Duration of processing a Celery task", _metrics.MESSAGING_BOUNDARIES)
_outcomes = _metrics.instrument("counter", "tigerops.celery.tasks", "{task}",
                                "Celery tasks run, by task name and outcome")
_metric_attributes = {}  # (task, queue, outcome, error) -> (duration attributes, outcome attributes)
_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}


def _attributes_of(task, queue, outcome, error):
    key = (task, queue, outcome, error)
    pair = _metric_attributes.get(key)
    if pair is None:
        duration = {"messaging.system": "celery", "messaging.operation.name": "process",
                    "messaging.destination.name": queue, "celery.task.name": task, "celery.task.outcome": outcome}
        if error:
            duration["error.type"] = error
        counted = {"messaging.system": "celery", "messaging.destination.name": queue, "celery.task.name": task,
                   "celery.task.outcome": outcome}
        if len(_metric_attributes) >= _MAX_OPEN:
            _metric_attributes.clear()
        pair = _metric_attributes[key] = (duration, counted)
    return pair


def _queue_of(request):
    delivery = getattr(request, "delivery_info", None) or {}
    return delivery.get("routing_key") or ""
_MAX_OPEN = 10000  # bound: a signal pair that never completes must not leak


def _remember(table, task_id, span):
    if len(table) >= _MAX_OPEN:
        table.clear()
    table[task_id] = span


def _before_publish(sender=None, headers=None, routing_key=None, properties=None, **_):
    # Outside any span (a script, a CLI command, celery beat) the publish is
    # the root of its own trace: the worker's span then has a parent that
    # arrives. Under a span that is not sampled, the child carries that
    # decision to the worker.
    if not _bootstrap.TRACE_CELERY or headers is None:
        return
    task_id = headers.get("id") or (properties or {}).get("correlation_id")
    span = Span("publish %s" % sender, _tigerops.KIND_PRODUCER, {
        "messaging.system": "celery", "messaging.operation.type": "publish",
        "messaging.destination.name": routing_key or "", "messaging.message.id": task_id or "",
        "celery.task.name": sender or ""})
    span.__enter__()
    try:
        _tigerops.inject(headers, span)
    except Exception:
        pass
    _remember(_publishing, task_id, span)


def _after_publish(sender=None, headers=None, **_):
    _queue_depth.published()
    span = _publishing.pop((headers or {}).get("id"), None)
    if span is not None:
        span.__exit__(None, None, None)


# Message headers arrive as attributes of task.request, named as injected.
_HEADERS = (("traceparent", "traceparent"), ("tracestate", "tracestate"), ("baggage", "baggage"),
            ("b3", "b3"), ("x-b3-traceid", "X-B3-TraceId"), ("x-b3-spanid", "X-B3-SpanId"),
            ("x-b3-sampled", "X-B3-Sampled"), ("x-b3-flags", "X-B3-Flags"))


def _carrier(request):
    """The propagation headers of the message (lower-case names), or None
    when it brought none."""
    carrier = {}
    for name, attribute in _HEADERS:
        value = getattr(request, attribute, None)
        if isinstance(value, str):
            carrier[name] = value
    return carrier or None


def _consumer_span(name, task_id, request):
    # A message's trace context continues the publisher's trace; without one
    # (apply(), task_always_eager) the run nests under the calling span.
    carrier = _carrier(request)
    delivery = getattr(request, "delivery_info", None) or {}
    return Span("process %s" % name, _tigerops.KIND_CONSUMER, {
        "messaging.system": "celery", "messaging.operation.type": "process",
        "messaging.destination.name": delivery.get("routing_key") or "",
        "messaging.message.id": task_id or "", "celery.task.name": name,
        "celery.retries": int(getattr(request, "retries", 0) or 0)},
        carrier)


def _prerun(task_id=None, task=None, **_):
    try:
        if len(_timing) >= _MAX_OPEN:
            _timing.clear()
        _timing[task_id] = [_perf(), _queue_of(getattr(task, "request", None)), None]
    except Exception:
        pass
    if not _bootstrap.TRACE_CELERY:
        return
    span = _consumer_span(task.name, task_id, getattr(task, "request", None))
    span.__enter__()
    _remember(_running, task_id, span)


def _signal_name(signum):
    # terminate() passes the number, the pool's Terminated error its text.
    try:
        import signal
        return signal.Signals(int(signum)).name
    except (TypeError, ValueError):
        return str(signum)


def _revoked(sender=None, request=None, terminated=False, signum=None, expired=False, **_):
    # Sent where the worker decides (prefork: the main process, never the
    # child that ran the task): revoked by id before it ran, expired, or
    # terminated while running. A span of its own, continuing the publish.
    if not _bootstrap.TRACE_CELERY or request is None:
        return
    task_id = getattr(request, "id", None)
    reason = "terminated" if terminated else "expired" if expired else "revoked"
    name = getattr(sender, "name", None) or getattr(request, "task", None) or "unknown"
    try:
        _outcomes.record(1, _attributes_of(name, _queue_of(request), "revoked", None)[1])
    except Exception:
        pass
    span = _consumer_span(name, task_id, request)
    span.set_attribute("celery.state", "REVOKED")
    span.set_attribute("celery.revoked.reason", reason)
    if terminated and signum is not None:
        span.set_attribute("celery.revoked.signal", _signal_name(signum))
    span.__enter__()
    span.__exit__(None, None, None)


def _worker_init(**_):
    # -P gevent / -P eventlet monkey-patch before the app is imported (and
    # so, mostly, before patch_celery): tasks then share a thread and the
    # current span must follow their greenlets.
    from tigerops import _context
    _context.choose()


def _worker_init_main(**_):
    # worker_init is sent in the worker's main process only, before the
    # pool forks: what the queue depth observer needs to know.
    _queue_depth.worker_init()


def _worker_ready(sender=None, **_):
    _queue_depth.worker_ready(sender)


def _postrun(task_id=None, task=None, state=None, **_):
    timing = _timing.pop(task_id, None)
    if timing is not None:
        try:
            outcome = _OUTCOMES.get(str(state), str(state).lower())
            duration, counted = _attributes_of(getattr(task, "name", None) or "unknown", timing[1], outcome, timing[2])
            _process_duration.record(_perf() - timing[0], duration)
            _outcomes.record(1, counted)
        except Exception:
            pass
    span = _running.pop(task_id, None)
    if span is not None:
        if state:
            span.set_attribute("celery.state", str(state))
        span.__exit__(None, None, None)


def _failure(sender=None, task_id=None, exception=None, einfo=None, **_):
    timing = _timing.get(task_id)
    if timing is not None and exception is not None:
        timing[2] = type(exception).__qualname__
    span = _running.get(task_id)
    if span is None or exception is None:
        return
    expected = getattr(sender, "throws", ()) or ()
    if expected and isinstance(exception, tuple(expected)):
        span.set_attribute("celery.expected_exception", type(exception).__qualname__)
        return
    span._record_error(exception)


def _retry(request=None, reason=None, **_):
    span = _running.get(getattr(request, "id", None))
    if span is not None:
        span.add_event("retry", {"celery.retry.reason": str(reason)[:1024]})


def _worker_process_shutdown(**_):
    # A prefork child leaves through os._exit (no atexit after this), the
    # main process through atexit soon after: both within one exit bound,
    # TIGEROPS_SHUTDOWN_TIMEOUT_MS, which later calls in the exit share.
    _tigerops.shutdown()


def patch_celery(module):
    from celery import signals
    if getattr(signals, "_tigerops_connected", False):
        return
    signals.before_task_publish.connect(_before_publish, weak=False)
    signals.after_task_publish.connect(_after_publish, weak=False)
    signals.task_prerun.connect(_prerun, weak=False)
    signals.task_postrun.connect(_postrun, weak=False)
    signals.task_failure.connect(_failure, weak=False)
    signals.task_retry.connect(_retry, weak=False)
    signals.task_revoked.connect(_revoked, weak=False)
    signals.worker_init.connect(_worker_init, weak=False)
    signals.worker_init.connect(_worker_init_main, weak=False)
    signals.worker_ready.connect(_worker_ready, weak=False)
    signals.worker_process_shutdown.connect(_worker_process_shutdown, weak=False)
    signals.worker_shutdown.connect(_worker_process_shutdown, weak=False)
    signals._tigerops_connected = True
    _worker_init()
