"""Python logging: every LogRecord gets the trace context under
OpenTelemetry Python's names (otelTraceID, otelSpanID, otelTraceSampled,
otelServiceName) and records at or above TIGEROPS_LOG_EXPORT_LEVEL go to the
OTLP logs exporter, both done by _tigerops.RecordFactory in C.

The factory wraps the one logging has, and every factory the app installs
later: setLogRecordFactory is wrapped so that an app's factory (a LogRecord
subclass, a function chaining the old factory) runs under ours instead of
replacing it. A chaining app factory calls ours again from inside ours: the
inner call only delegates (see src/ext/logging.c)."""
import logging
import os
import traceback

import _tigerops

# OpenTelemetry Python's LoggingInstrumentor format, used when
# OTEL_PYTHON_LOG_CORRELATION=true (and OTEL_PYTHON_LOG_FORMAT is unset).
DEFAULT_LOGGING_FORMAT = ("%(asctime)s %(levelname)s [%(name)s] [%(filename)s:%(lineno)d] "
                          "[trace_id=%(otelTraceID)s span_id=%(otelSpanID)s "
                          "resource.service.name=%(otelServiceName)s trace_sampled=%(otelTraceSampled)s] "
                          "- %(message)s")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_MAX_TRACEBACK_FRAMES = 200

_installed = False


def _exception_parts(exc_info):
    """exception.type, exception.message and exception.stacktrace of a
    record's exc_info, as OpenTelemetry Python's LoggingHandler makes them."""
    etype, value, tb = exc_info
    name = getattr(etype, "__name__", "") if etype is not None else ""
    message = ""
    if value is not None and getattr(value, "args", None):
        try:
            message = str(value.args[0])
        except Exception:  # an unprintable argument still logs
            message = ""
    stack = ""
    if tb is not None:
        stack = "".join(traceback.format_exception(etype, value, tb, limit=-_MAX_TRACEBACK_FRAMES))
    return name, message, stack


def _wrap(factory):
    return factory if isinstance(factory, _tigerops.RecordFactory) else _tigerops.RecordFactory(factory)


def install(module=None):
    """Idempotent: puts our factory in place and keeps it there (module:
    logging, as the import hook passes it)."""
    global _installed
    _tigerops.configure_logging(_exception_parts)
    if _installed:
        return
    _installed = True
    original_set = logging.setLogRecordFactory

    def setLogRecordFactory(factory):
        original_set(_wrap(factory))

    setLogRecordFactory.__doc__ = original_set.__doc__
    setLogRecordFactory.__wrapped__ = original_set
    original_set(_wrap(logging.getLogRecordFactory()))
    logging.setLogRecordFactory = setLogRecordFactory
    if _tigerops.config_get("OTEL_PYTHON_LOG_CORRELATION") == "true":
        fmt = os.environ.get("OTEL_PYTHON_LOG_FORMAT") or DEFAULT_LOGGING_FORMAT
        level = _LEVELS.get(os.environ.get("OTEL_PYTHON_LOG_LEVEL", "").lower()) or logging.INFO
        logging.basicConfig(format=fmt, level=level)
