"""Outgoing HTTP (requests, httpx sync and async): a CLIENT span per request,
with the trace context (and baggage) injected by every configured
propagator so the called service continues the trace. Every request, traced
or not, is measured into http.client.request.duration."""
from time import perf_counter as _perf
from urllib.parse import urlsplit, urlunsplit

import _tigerops
from tigerops import Span, _metrics

_duration = _metrics.instrument("histogram", "http.client.request.duration", "s",
                                "Duration of HTTP client requests", _metrics.HTTP_BOUNDARIES)
# Semantic conventions: other methods are "_OTHER" (bounded cardinality).
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"))
_servers = {}     # scheme://authority of a URL -> (server.address, server.port)
_attributes = {}  # (method, server, status, error) -> the attribute dict, made once
_CACHE_MAX = 1024


def _server_of(url):
    url = str(url)
    end = url.find("/", url.find("//") + 2)  # the path's start: the authority ends there
    key = url[:end] if end > 0 else url
    server = _servers.get(key)
    if server is None:
        try:
            parts = urlsplit(key)
            server = (parts.hostname or "", parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0))
        except ValueError:
            server = ("", 0)
        if len(_servers) >= _CACHE_MAX:
            _servers.clear()
        _servers[key] = server
    return server


def _measure(t0, method, url, status, exc):
    """Records one request's duration; never raises."""
    elapsed = _perf() - t0
    try:
        method = str(method).upper()
        if method not in _METHODS:
            method = "_OTHER"
        server = _server_of(url)
        error = type(exc).__qualname__ if exc is not None else str(status) if status and status >= 400 else None
        key = (method, server, status, error)
        attributes = _attributes.get(key)
        if attributes is None:
            attributes = {"http.request.method": method}
            if server[0]:
                attributes["server.address"] = server[0]
            if server[1]:
                attributes["server.port"] = server[1]
            if status:
                attributes["http.response.status_code"] = status
            if error:
                attributes["error.type"] = error
            if len(_attributes) >= _CACHE_MAX:
                _attributes.clear()
            _attributes[key] = attributes
        _duration.record(elapsed, attributes)
    except Exception:
        pass


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
        # Every configured propagator (OTEL_PROPAGATORS): traceparent and
        # tracestate, the baggage received, b3 / X-B3-*.
        _tigerops.inject(headers, span)
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
        t0 = _perf()
        if not _tigerops.in_trace():
            try:
                response = original(self, request, *args, **kwargs)
            except BaseException as exc:
                _measure(t0, request.method, request.url, None, exc)
                raise
            _measure(t0, request.method, request.url, response.status_code, None)
            return response
        span = _client_span(request.method, request.url, request.headers)
        try:
            response = original(self, request, *args, **kwargs)
        except BaseException as exc:
            _finish(span, None, exc)
            _measure(t0, request.method, request.url, None, exc)
            raise
        _finish(span, response.status_code, None)
        _measure(t0, request.method, request.url, response.status_code, None)
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
        t0 = _perf()
        span = None
        if _tigerops.in_trace():
            span = _client_span(request.method, request.url, request.headers, current=False)
        try:
            response = await original(self, request, *args, **kwargs)
        except BaseException as exc:
            if span is not None:
                _finish(span, None, exc, current=False)
            _measure(t0, request.method, request.url, None, exc)
            raise
        if span is not None:
            _finish(span, response.status_code, None, current=False)
        _measure(t0, request.method, request.url, response.status_code, None)
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


# --- urllib3, urllib.request, aiohttp ---------------------------------------

def _caller_module(depth):
    """The module name of a caller's frame: requests calls urllib3, and
    urllib3 calls itself for retries; those calls are inside a span already."""
    try:
        return __import__("sys")._getframe(depth).f_globals.get("__name__", "")
    except ValueError:
        return ""


def _wrap_urllib3_urlopen(original):
    """HTTPConnectionPool.urlopen: one CLIENT span per request a pool sends
    on behalf of its caller (PoolManager, or the app). requests already has
    its span (Session.send) and the pool's own retries and redirects are
    part of the first call's span: neither opens another."""
    def urlopen(self, method, url, *args, **kwargs):
        if _caller_module(2).startswith(("requests.", "urllib3.connectionpool")):
            return original(self, method, url, *args, **kwargs)
        t0 = _perf()
        if not _tigerops.in_trace():
            full = url
            if str(url).startswith("/"):
                full = "%s://%s:%s" % (self.scheme, self.host, self.port or {"http": 80, "https": 443}.get(self.scheme))
            try:
                response = original(self, method, url, *args, **kwargs)
            except BaseException as exc:
                _measure(t0, method, full, None, exc)
                raise
            _measure(t0, method, full, getattr(response, "status", None), None)
            return response
        if len(args) >= 2:
            headers = args[1]
        else:
            headers = kwargs.get("headers")
        headers = dict(headers if headers is not None else (self.headers or {}))
        if len(args) >= 2:
            args = args[:1] + (headers,) + args[2:]
        else:
            kwargs["headers"] = headers
        full = url
        if str(url).startswith("/"):
            port = self.port or {"http": 80, "https": 443}.get(self.scheme)
            full = "%s://%s:%s%s" % (self.scheme, self.host, port, url)
        span = _client_span(method, full, headers)
        try:
            response = original(self, method, url, *args, **kwargs)
        except BaseException as exc:
            _finish(span, None, exc)
            _measure(t0, method, full, None, exc)
            raise
        _finish(span, getattr(response, "status", None), None)
        _measure(t0, method, full, getattr(response, "status", None), None)
        return response

    urlopen.__tigerops__ = True
    urlopen.__wrapped__ = original
    return urlopen


def patch_urllib3(module):
    """module: urllib3.connectionpool."""
    pool = module.HTTPConnectionPool
    if not getattr(pool.urlopen, "__tigerops__", False):
        pool.urlopen = _wrap_urllib3_urlopen(pool.urlopen)


def _wrap_do_open(original):
    """AbstractHTTPHandler.do_open: one span per request urllib.request
    sends (each redirect hop is its own request). It sits above
    http.client, which urllib3 and requests use too, so nothing is counted
    twice."""
    def do_open(self, http_class, req, **http_conn_args):
        t0 = _perf()
        if not _tigerops.in_trace():
            try:
                response = original(self, http_class, req, **http_conn_args)
            except BaseException as exc:
                reason = getattr(exc, "reason", None)
                _measure(t0, req.get_method(), req.full_url, None, reason if isinstance(reason, BaseException) else exc)
                raise
            _measure(t0, req.get_method(), req.full_url, getattr(response, "status", None), None)
            return response
        headers = {}
        span = _client_span(req.get_method(), req.full_url, headers)
        for name, value in headers.items():
            # Not carried over to a redirect's request: the next hop gets its own.
            req.add_unredirected_header(name.capitalize(), value)
        try:
            response = original(self, http_class, req, **http_conn_args)
        except BaseException as exc:
            reason = getattr(exc, "reason", None)
            _finish(span, None, reason if isinstance(reason, BaseException) else exc)
            _measure(t0, req.get_method(), req.full_url, None, reason if isinstance(reason, BaseException) else exc)
            raise
        _finish(span, getattr(response, "status", None), None)
        _measure(t0, req.get_method(), req.full_url, getattr(response, "status", None), None)
        return response

    do_open.__tigerops__ = True
    do_open.__wrapped__ = original
    return do_open


def patch_urllib_request(module):
    handler = module.AbstractHTTPHandler
    if not getattr(handler.do_open, "__tigerops__", False):
        handler.do_open = _wrap_do_open(handler.do_open)


def _wrap_aiohttp_request(original):
    """ClientSession._request (what get/post/request and their context
    managers all await). The span is never made current: other tasks run
    on this thread while the request is awaited, and must not see it as
    their parent. Its context goes into the headers explicitly."""
    async def _request(self, method, str_or_url, *args, **kwargs):
        t0 = _perf()
        if not _tigerops.in_trace():
            try:
                response = await original(self, method, str_or_url, *args, **kwargs)
            except BaseException as exc:
                _measure(t0, method, _aiohttp_url(self, str_or_url), None, exc)
                raise
            _measure(t0, method, _aiohttp_url(self, str_or_url), getattr(response, "status", None), None)
            return response
        method_name = str(method).upper()
        span = Span(method_name, _tigerops.KIND_CLIENT)
        span.start()
        try:
            from multidict import CIMultiDict
            headers = CIMultiDict(kwargs.get("headers") or ())
            _tigerops.inject(headers, span)
            kwargs["headers"] = headers
            if span.is_recording():
                span.set_attribute("http.request.method", method_name)
                url = str(str_or_url)
                span.set_attribute("url.full", redact_url(url))
                parts = urlsplit(url)
                if parts.hostname:
                    span.set_attribute("server.address", parts.hostname)
                port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
                if port:
                    span.set_attribute("server.port", port)
        except Exception:
            pass
        try:
            response = await original(self, method, str_or_url, *args, **kwargs)
        except BaseException as exc:
            _end(span, None, exc)
            _measure(t0, method, _aiohttp_url(self, str_or_url), None, exc)
            raise
        _end(span, getattr(response, "status", None), None)
        _measure(t0, method, _aiohttp_url(self, str_or_url), getattr(response, "status", None), None)
        return response

    _request.__tigerops__ = True
    _request.__wrapped__ = original
    return _request


def _aiohttp_url(session, str_or_url):
    # A relative URL is joined to the session's base_url (aiohttp 3.8+).
    url = str(str_or_url)
    if "://" not in url:
        base = getattr(session, "_base_url", None)
        if base is not None:
            return str(base)
    return url


def _end(span, status, exc):
    """_finish for a span that was started but never entered."""
    if exc is not None:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status("error", str(exc))
    elif status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status("error")
    span.end()


def patch_aiohttp(module):
    """module: aiohttp.client."""
    session = module.ClientSession
    if not getattr(session._request, "__tigerops__", False):
        session._request = _wrap_aiohttp_request(session._request)
