"""Opt-in HTTP header capture on server spans, configured as OpenTelemetry's
Python instrumentations are:

  OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST   header names or regexes
  OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE  (comma-separated,
                                                               case-insensitive)
  OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS  values become [REDACTED]

Values go to http.request.header.<name> / http.response.header.<name> as
string arrays. Credentials are never captured whatever the lists say:
Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, and any
name in TIGEROPS_DENIED_HEADERS."""
import re

import _tigerops

REQUEST_SETTING = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"
RESPONSE_SETTING = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE"
SANITIZE_SETTING = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
DENIED_SETTING = "TIGEROPS_DENIED_HEADERS"
SETTINGS = (REQUEST_SETTING, RESPONSE_SETTING, SANITIZE_SETTING, DENIED_SETTING)
ALWAYS_DENIED = frozenset(("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"))
REDACTED = "[REDACTED]"
_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def _names(text, setting):
    """(exact lower-case names, one compiled regex for the rest or None)."""
    exact, patterns = set(), []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        if _NAME.match(item) and not any(c in item for c in "*+.^$|"):
            exact.add(item.lower())
            continue
        try:
            re.compile(item)
            patterns.append("(?:%s)" % item)
        except re.error as exc:
            _tigerops.log(2, "%s: %r is neither a header name nor a valid regex (%s); ignored"
                          % (setting, item, exc))
    regex = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None
    return frozenset(exact), regex


def _matches(name, exact, regex):
    return name in exact or (regex is not None and regex.fullmatch(name) is not None)


class Plan(object):
    """Which headers to record and which to redact; built once per app."""

    def __init__(self, request, response, sanitize, denied):
        self.request = _names(request, REQUEST_SETTING)
        self.response = _names(response, RESPONSE_SETTING)
        self.sanitize = _names(sanitize, SANITIZE_SETTING)
        self.denied = ALWAYS_DENIED | _names(denied, DENIED_SETTING)[0]
        for name in (self.request[0] | self.response[0]) & self.denied:
            _tigerops.log(2, "header %r carries credentials and is never captured" % name)
        # Exact request names map straight to their WSGI environ keys.
        self.environ_keys = tuple(
            (_environ_key(name), "http.request.header." + name, _matches(name, *self.sanitize))
            for name in sorted(self.request[0] - self.denied))

    def value(self, name, value):
        return REDACTED if _matches(name, *self.sanitize) else value

    def capture_request(self, span, environ):
        for key, attribute, sanitized in self.environ_keys:
            value = environ.get(key)
            if value is not None:
                span.set_attribute(attribute, [REDACTED if sanitized else _raw(value)])
        if self.request[1] is None:
            return
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name = key.replace("_", "-").lower()
            else:
                continue
            if name in self.denied or name in self.request[0] or not self.request[1].fullmatch(name):
                continue
            span.set_attribute("http.request.header." + name, [self.value(name, _raw(value))])

    def capture_response(self, span, headers):
        captured = {}
        for name, value in headers:
            name = str(name).lower()
            if name in self.denied or not _matches(name, *self.response):
                continue
            captured.setdefault(name, []).append(self.value(name, str(value)))
        for name, values in captured.items():
            span.set_attribute("http.response.header." + name, values)


def _environ_key(name):
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def _raw(value):
    """WSGI header values are latin-1 decoded bytes: give back the bytes' text."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except (UnicodeError, AttributeError):
        return str(value)


def plan_from(config=None):
    """The plan from the settings (file, environment), this app's app.config
    winning; None when off."""
    def setting(name):
        if config is not None and config.get(name) is not None:
            return str(config.get(name))
        return _tigerops.config_get(name) or ""
    request, response = setting(REQUEST_SETTING), setting(RESPONSE_SETTING)
    if not request.strip() and not response.strip():
        return None
    return Plan(request, response, setting(SANITIZE_SETTING), setting(DENIED_SETTING))


def install(middleware, config=None):
    plan = plan_from(config)
    middleware.capture_request = plan.capture_request if plan and (plan.request[0] or plan.request[1]) else None
    middleware.capture_response = plan.capture_response if plan and (plan.response[0] or plan.response[1]) else None
