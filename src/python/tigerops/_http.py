"""Outgoing HTTP (requests, httpx sync and async): a CLIENT span per request,
with the W3C trace context injected so the called service continues the
trace."""
from urllib.parse import urlsplit, urlunsplit

import _tigerops
from tigerops import Span


def redact_url(url):
    """url.full without userinfo and with signature-like query values
    replaced, per the OpenTelemetry HTTP conventions."""
    try:
        parts = urlsplit(str(url))
        netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
        if "@" in parts.netloc:
            netloc = "REDACTED:REDACTED@" + netloc
        query = _tigerops.redact_query(parts.query) if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except Exception:
        return ""


def _client_span(method, url, headers, current=True):
    """Starts the CLIENT span, makes it current (unless current is false)
    and injects its context."""
    method = str(method).upper()
    span = Span(method, _tigerops.KIND_CLIENT)
    if current:
        span.__enter__()
    else:
        span.start()
    if span.is_recording():
        span.set_attribute("http.request.method", method)
        span.set_attribute("url.full", redact_url(url))
        try:
            parts = urlsplit(str(url))
            if parts.hostname:
                span.set_attribute("server.address", parts.hostname)
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
            if port:
                span.set_attribute("server.port", port)
        except ValueError:
            pass
    try:
        if current:
            _tigerops.inject(headers)
        else:
            # The parent's tracestate is the trace's; the traceparent is ours.
            parent = {}
            _tigerops.inject(parent)
            headers["traceparent"] = span.traceparent
            if "tracestate" in parent:
                headers["tracestate"] = parent["tracestate"]
    except Exception:
        pass
    return span


def _finish(span, status, exc, current=True):
    if exc is not None:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status("error", str(exc))
    elif status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status("error")
    if current:
        span.__exit__(None, None, None)
    else:
        span.end()


def _wrap_send(original):
    def send(self, request, *args, **kwargs):
        if not _tigerops.tracing_now():
            return original(self, request, *args, **kwargs)
        span = _client_span(request.method, request.url, request.headers)
        try:
            response = original(self, request, *args, **kwargs)
        except BaseException as exc:
            _finish(span, None, exc)
            raise
        _finish(span, response.status_code, None)
        return response

    send.__tigerops__ = True
    send.__wrapped__ = original
    return send


def _wrap_async_send(original):
    # AsyncClient.send is the one method every request of an AsyncClient goes
    # through (get/post/stream end there), like Client.send. Its span is never
    # made current: tasks gathered on one thread would otherwise see it as
    # their parent while thread-locals hold the current span, and nothing
    # below send (httpcore) opens spans that would need it.
    async def send(self, request, *args, **kwargs):
        if not _tigerops.tracing_now():
            return await original(self, request, *args, **kwargs)
        span = _client_span(request.method, request.url, request.headers, current=False)
        try:
            response = await original(self, request, *args, **kwargs)
        except BaseException as exc:
            _finish(span, None, exc, current=False)
            raise
        _finish(span, response.status_code, None, current=False)
        return response

    send.__tigerops__ = True
    send.__wrapped__ = original
    return send


def patch_requests(module):
    session = module.Session
    if not getattr(session.send, "__tigerops__", False):
        session.send = _wrap_send(session.send)


def patch_httpx(module):
    client = module.Client
    if not getattr(client.send, "__tigerops__", False):
        client.send = _wrap_send(client.send)
    async_client = getattr(module, "AsyncClient", None)
    if async_client is not None and not getattr(async_client.send, "__tigerops__", False):
        async_client.send = _wrap_async_send(async_client.send)
