"""Celery: a PRODUCER span per publish (the W3C context goes into the
message headers) and a CONSUMER span per execution, continuing it, so a
task shows up in the trace of the request that queued it. Spans that live
from one signal to the next are kept by task id; failures carry the
traceback, retries an event, and expected exceptions (throws=) are not
errors."""
import _tigerops
from tigerops import Span, _bootstrap

_publishing = {}
_running = {}
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


def _prerun(task_id=None, task=None, **_):
    # A message's trace context continues the publisher's trace; without one
    # (apply(), task_always_eager) the run nests under the calling span.
    if not _bootstrap.TRACE_CELERY:
        return
    request = getattr(task, "request", None)
    carrier = _carrier(request)
    delivery = getattr(request, "delivery_info", None) or {}
    span = Span("process %s" % task.name, _tigerops.KIND_CONSUMER, {
        "messaging.system": "celery", "messaging.operation.type": "process",
        "messaging.destination.name": delivery.get("routing_key") or "",
        "messaging.message.id": task_id or "", "celery.task.name": task.name,
        "celery.retries": int(getattr(request, "retries", 0) or 0)},
        carrier)
    span.__enter__()
    _remember(_running, task_id, span)


def _postrun(task_id=None, state=None, **_):
    span = _running.pop(task_id, None)
    if span is not None:
        if state:
            span.set_attribute("celery.state", str(state))
        span.__exit__(None, None, None)


def _failure(sender=None, task_id=None, exception=None, einfo=None, **_):
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
    signals.worker_process_shutdown.connect(_worker_process_shutdown, weak=False)
    signals.worker_shutdown.connect(_worker_process_shutdown, weak=False)
    signals._tigerops_connected = True
