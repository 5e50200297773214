"""TigerOps: native tracing for Flask services.

    from tigerops import span

    with span("charge-card", attributes={"amount": 12}) as s:
        s.set_attribute("card.brand", "visa")

    @span
    def rebuild_index(): ...

The spans nest under the current request span and are exported by the
agent's C core."""
import functools

import _tigerops

# Imported at every Python start under the agent: keep this module's own
# imports to what the interpreter has loaded anyway (no inspect, traceback).
_CO_COROUTINE = 0x80

__version__ = _tigerops.__version__
KIND_INTERNAL = _tigerops.KIND_INTERNAL
KIND_SERVER = _tigerops.KIND_SERVER
KIND_CLIENT = _tigerops.KIND_CLIENT
KIND_PRODUCER = _tigerops.KIND_PRODUCER
KIND_CONSUMER = _tigerops.KIND_CONSUMER

_MAX_TRACEBACK_CHARS = 64 * 1024
_MAX_TRACEBACK_FRAMES = 200


def exception_event(exception, attributes=None):
    """The attributes of an "exception" event: type, message and the Python
    traceback (chained causes included), bounded in frames and characters."""
    import traceback
    # A negative limit keeps the innermost frames: where it went wrong.
    stack = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__,
                                               limit=-_MAX_TRACEBACK_FRAMES))
    if len(stack) > _MAX_TRACEBACK_CHARS:
        # Cut on line boundaries: a line cut in the middle would lose the
        # marker ("[parameters:", "DETAIL:") that the exporter's scrubber
        # finds the bind values after.
        half = _MAX_TRACEBACK_CHARS // 2
        head = stack[:half].rpartition("\n")[0]
        tail = stack[-half:].partition("\n")[2]
        stack = head + "\n... (truncated) ...\n" + tail
    try:
        message = str(exception)
    except Exception:  # an exception whose __str__ fails is still recorded
        message = "<unprintable %s>" % type(exception).__qualname__
    event = {
        "exception.type": type(exception).__qualname__,
        "exception.message": message,
        "exception.stacktrace": stack,
    }
    if attributes:
        event.update(attributes)
    return event


# Every recorded exception (span blocks, requests, hooks, statements,
# Celery) gets its event attributes from this one formatter.
_tigerops.set_exception_formatter(exception_event)


class Span(_tigerops.Span):
    """A span: a context manager, or (as a template) a decorator."""

    __slots__ = ("_template",)

    def __call__(self, func):
        """Used as a decorator: a new span per call, named like this one."""
        name, kind, attributes = self._template
        return _decorate(func, name, kind, attributes)


def _decorate(func, name, kind, attributes):
    name = name or getattr(func, "__qualname__", None) or repr(func)
    code = getattr(func, "__code__", None)
    if code is not None and code.co_flags & _CO_COROUTINE:
        @functools.wraps(func)
        async def async_wrapper(*args, **kwargs):
            with Span(name, kind, attributes):
                return await func(*args, **kwargs)
        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with Span(name, kind, attributes):
            return func(*args, **kwargs)
    return wrapper


def span(name=None, kind=KIND_INTERNAL, attributes=None):
    """span("name") as a context manager or decorator; @span on a function
    names the span after it."""
    if callable(name) and not isinstance(name, str):
        return _decorate(name, None, kind, attributes)
    if name is None:
        return lambda func: _decorate(func, None, kind, attributes)
    s = Span(name, kind, attributes)
    s._template = (name, kind, attributes)
    return s


def trace_command(func=None, name=None):
    """A span per run of a CLI command or a script's entry function, flushed
    when the run is a trace of its own, so a short-lived `flask <command>`
    exports before it exits. On a click command (app.cli.command) it wraps
    the callback; exit(0) is a success, any other exit status an error.

        @app.cli.command("rebuild-index")
        @tigerops.trace_command
        def rebuild_index(): ...
    """
    if func is None:
        return lambda f: trace_command(f, name)
    callback = getattr(func, "callback", None)
    if callback is not None and callable(callback) and not isinstance(func, type):
        func.callback = trace_command(callback, name or getattr(func, "name", None))
        return func
    _ensure_started()
    span_name = name or getattr(func, "__qualname__", None) or repr(func)
    attributes = {"code.function": getattr(func, "__qualname__", span_name),
                  "code.namespace": getattr(func, "__module__", "") or ""}

    @functools.wraps(func)
    def run(*args, **kwargs):
        own_trace = not _tigerops.tracing_now()
        s = Span(span_name, KIND_INTERNAL, attributes)
        s.__enter__()
        failure = (None, None, None)
        try:
            return func(*args, **kwargs)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                s.set_status("error", "exit status %s" % (exc.code,))
            raise
        except BaseException as exc:
            failure = (type(exc), exc, exc.__traceback__)
            raise
        finally:
            s.__exit__(*failure)
            if own_trace:
                _tigerops.flush(5000)

    run.__tigerops__ = True
    return run


def current_span():
    """The span current on this thread (a non-recording one when none)."""
    return _tigerops.current_span()


def inject(headers):
    """Adds the context of the current span to a headers mapping, with every
    configured propagator (OTEL_PROPAGATORS): traceparent/tracestate,
    baggage, b3, X-B3-*."""
    _tigerops.inject(headers)
    return headers


def flush(timeout_ms=5000):
    return _tigerops.flush(timeout_ms)


def _ensure_started():
    from tigerops import _bootstrap
    return _bootstrap.start()
