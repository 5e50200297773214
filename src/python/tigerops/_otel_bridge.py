"""The OpenTelemetry API bridge: apps that make their own spans with
opentelemetry-api (`trace.get_tracer(__name__).start_as_current_span(...)`)
get them into TigerOps traces, with no SDK and no code change.

Installed by a post-import hook when the app imports `opentelemetry.trace`
(processes that never do pay nothing). It makes our TracerProvider the one
`trace.get_tracer_provider()` answers with while the app has set none; it
does not call `trace.set_tracer_provider`, so an app that configures the
OpenTelemetry SDK itself keeps it: its `set_tracer_provider` succeeds, and
from then on every tracer, including ones obtained earlier, and
`get_current_span()` are the SDK's (warned once).

Spans are thin handles over the C core's spans: they nest under the
request span and under each other, are exported by our exporter, and
`trace.get_current_span()` answers with the core's current span (the
request span inside a view)."""
import os
from contextlib import contextmanager

import _tigerops
from opentelemetry import context as _context
from opentelemetry import trace as _trace
from opentelemetry.trace import propagation as _propagation
from opentelemetry.trace.span import INVALID_SPAN, INVALID_SPAN_CONTEXT, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

_original = {}
_told = []
_PROVIDER_SETTING = "OTEL_PYTHON_TRACER_PROVIDER"


def _user_provider():
    """The provider the app set (the SDK's, typically), or None."""
    provider = getattr(_trace, "_TRACER_PROVIDER", None)
    if provider is None or isinstance(provider, TracerProvider):
        return None
    if not _told:
        _told.append(True)
        _tigerops.log(2, "the application set its own OpenTelemetry TracerProvider (%s): spans made with "
                         "the OpenTelemetry API go to it, not to TigerOps" % type(provider).__name__)
    return provider


def _hex_context(core):
    tp = core.traceparent
    if not tp:
        return INVALID_SPAN_CONTEXT
    trace_id, span_id = int(tp[3:35], 16), int(tp[36:52], 16)
    if not trace_id or not span_id:
        return INVALID_SPAN_CONTEXT
    return SpanContext(trace_id, span_id, False, TraceFlags(int(tp[53:55], 16)), TraceState())


def _traceparent(span_context):
    return "00-%032x-%016x-%02x" % (span_context.trace_id, span_context.span_id,
                                    int(span_context.trace_flags) & 1)


def _link(core, span_context, attributes):
    if span_context is None or not span_context.is_valid:
        return
    trace_state = span_context.trace_state.to_header() if span_context.trace_state else None
    core._add_link(_traceparent(span_context), bool(span_context.is_remote), trace_state or None,
                   dict(attributes) if attributes else None)


class Span(_trace.Span):
    """An OpenTelemetry API span over a C core span (tigerops.Span)."""

    def __init__(self, core):
        self._core = core
        self._span_context = None

    def get_span_context(self):
        if self._span_context is None:
            self._span_context = _hex_context(self._core)
        return self._span_context

    def end(self, end_time=None):
        self._core.end(end_time)

    def set_attributes(self, attributes):
        if attributes:
            self._core.set_attributes(attributes)

    def set_attribute(self, key, value):
        self._core.set_attribute(key, value)

    def add_event(self, name, attributes=None, timestamp=None):
        # timestamp is not honoured: events are stamped when added.
        self._core.add_event(name, attributes)

    def add_link(self, context, attributes=None):
        _link(self._core, context, attributes)

    def update_name(self, name):
        self._core.update_name(name)

    def is_recording(self):
        return self._core.is_recording()

    def set_status(self, status, description=None):
        if isinstance(status, Status):
            code, description = status.status_code, status.description
        else:
            code = status
        code = getattr(code, "value", code)
        # The API ignores a description except with ERROR.
        self._core.set_status(int(code), description if code == StatusCode.ERROR.value else None)

    def record_exception(self, exception, attributes=None, timestamp=None, escaped=False):
        attributes = dict(attributes) if attributes else {}
        if escaped:
            attributes["exception.escaped"] = True
        self._core.record_exception(exception, attributes or None)

    def __repr__(self):
        context = self.get_span_context()
        return "tigerops Span(trace_id=0x%032x, span_id=0x%016x)" % (context.trace_id, context.span_id)


def _parent_of(context):
    """The core Span to start under for an explicit OpenTelemetry context:
    ours, a traceparent for a foreign (remote) span, or "" (a new trace)."""
    parent = _original["get_current_span"](context)
    if isinstance(parent, Span):
        return parent._core
    span_context = parent.get_span_context()
    return _traceparent(span_context) if span_context.is_valid else ""


@contextmanager
def _use(span, end_on_exit=False, record_exception=True, set_status_on_exception=True):
    """use_span for our spans: current in the OpenTelemetry context and in
    the core (so our own spans nest under it too)."""
    token = _context.attach(_trace.set_span_in_context(span))
    span._core.__enter__()
    try:
        yield span
    except Exception as exc:
        if span.is_recording():
            if record_exception:
                span.record_exception(exc)
            if set_status_on_exception:
                span.set_status(Status(StatusCode.ERROR, "%s: %s" % (type(exc).__name__, exc)))
        raise
    finally:
        span._core._leave()
        _context.detach(token)
        if end_on_exit:
            span.end()


class Tracer(_trace.Tracer):
    def __init__(self, name, version=None, schema_url=None):
        self._scope = (name, version, schema_url)

    def _theirs(self):
        provider = _user_provider()
        return provider.get_tracer(*self._scope) if provider is not None else None

    def start_span(self, name, context=None, kind=_trace.SpanKind.INTERNAL, attributes=None, links=None,
                   start_time=None, record_exception=True, set_status_on_exception=True):
        theirs = self._theirs()
        if theirs is not None:
            return theirs.start_span(name, context, kind, attributes, links, start_time, record_exception,
                                     set_status_on_exception)
        parent = _parent_of(context) if context is not None else None
        core = _tigerops.Span(str(name), getattr(kind, "value", 0) + 1, attributes or None, parent)
        core.start()
        if start_time:
            core._set_start_time(start_time)
        for link in links or ():
            _link(core, link.context, getattr(link, "attributes", None))
        return Span(core)

    @contextmanager
    def start_as_current_span(self, name, context=None, kind=_trace.SpanKind.INTERNAL, attributes=None,
                              links=None, start_time=None, record_exception=True, set_status_on_exception=True,
                              end_on_exit=True):
        theirs = self._theirs()
        if theirs is not None:
            with theirs.start_as_current_span(name, context, kind, attributes, links, start_time,
                                              record_exception, set_status_on_exception, end_on_exit) as span:
                yield span
            return
        span = self.start_span(name, context, kind, attributes, links, start_time, record_exception,
                               set_status_on_exception)
        with _use(span, end_on_exit, record_exception, set_status_on_exception):
            yield span


class TracerProvider(_trace.TracerProvider):
    def get_tracer(self, instrumenting_module_name, instrumenting_library_version=None, schema_url=None,
                   *args, **kwargs):
        return Tracer(instrumenting_module_name, instrumenting_library_version, schema_url)


_PROVIDER = TracerProvider()


def get_tracer_provider():
    if getattr(_trace, "_TRACER_PROVIDER", None) is None and _PROVIDER_SETTING not in os.environ:
        return _PROVIDER
    _user_provider()
    return _original["get_tracer_provider"]()


def get_current_span(context=None):
    theirs = _original["get_current_span"](context)
    if context is not None or getattr(_trace, "_TRACER_PROVIDER", None) is not None:
        return theirs
    core = _tigerops.current_span()
    if isinstance(theirs, Span) and theirs._core.span_id == core.span_id:
        return theirs  # the very object use_span made current
    span = Span(core)
    return span if span.get_span_context().is_valid else INVALID_SPAN


def use_span(span, end_on_exit=False, record_exception=True, set_status_on_exception=True):
    if isinstance(span, Span):
        return _use(span, end_on_exit, record_exception, set_status_on_exception)
    return _original["use_span"](span, end_on_exit, record_exception, set_status_on_exception)


def install(module=None):
    """Post-import hook of opentelemetry.trace."""
    if _original:
        return
    if _PROVIDER_SETTING in os.environ:
        _tigerops.log(3, "%s is set: the OpenTelemetry API keeps that provider" % _PROVIDER_SETTING)
        return
    _original["get_tracer_provider"] = _trace.get_tracer_provider
    _original["get_current_span"] = _propagation.get_current_span
    _original["use_span"] = _trace.use_span
    _trace.get_tracer_provider = get_tracer_provider
    _trace.get_current_span = get_current_span
    _propagation.get_current_span = get_current_span
    _trace.use_span = use_span
