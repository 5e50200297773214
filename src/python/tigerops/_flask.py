"""Flask glue: every Flask app gets the C middleware when it is created
(automatic) or through TigerOps().init_app(app) (manual); both are
idempotent, so an app is never traced twice."""
import functools
import os
import weakref

import _tigerops

EXTENSION_KEY = "tigerops"
# Comma-separated regexes searched in the full URL; the first set one wins.
EXCLUDED_URLS_SETTINGS = ("TIGEROPS_EXCLUDED_URLS", "OTEL_PYTHON_FLASK_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")


def compile_excluded_urls(text, origin="excluded_urls"):
    """One pattern from a comma-separated list; a bad regex is warned about
    (by setting name) and skipped, the others still apply."""
    import re
    if not text:
        return None
    if not isinstance(text, str):
        text = ",".join(text)
    valid = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            re.compile(part)
            valid.append(part)
        except re.error:
            _tigerops.log(2, "%s: invalid regular expression skipped" % origin)
    return re.compile("|".join("(?:%s)" % p for p in valid)) if valid else None


def _excluded_from_environment():
    for name in EXCLUDED_URLS_SETTINGS:
        if os.environ.get(name):
            return compile_excluded_urls(os.environ[name], name)
    return None


def record_request_exception(sender, exception=None, **_):
    """got_request_exception: the unhandled exception, with its traceback
    (chained causes included, bounded), as an event on the request span."""
    span = _tigerops.request_span()
    if span is None or exception is None or not span.is_recording():
        return
    try:
        span._record_error(exception)
    except Exception as exc:  # Flask's own error handling must go on regardless
        _tigerops.log(2, "could not record a request exception: %r" % (exc,))


def patch_flask_module(module):
    flask_class = module.Flask
    original_init = flask_class.__init__
    if getattr(original_init, "__tigerops__", False):
        return

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        try:
            instrument_app(self)
        except Exception as exc:
            _tigerops.log(2, "could not instrument Flask app %r: %r" % (getattr(self, "name", "?"), exc))

    __init__.__tigerops__ = True
    flask_class.__init__ = __init__


def status_of(rv):
    """The status an errorhandler's return value will answer with."""
    if isinstance(rv, tuple):
        if len(rv) >= 2 and isinstance(rv[1], int):
            return rv[1]
        rv = rv[0] if rv else None
    code = getattr(rv, "status_code", None)
    if code is None:
        code = getattr(rv, "code", None)  # an HTTPException passed through
    return code if isinstance(code, int) else 200


def _config_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _first_request(app_ref):
    """At the app's first request the factory has finished: app.config (which
    wins over file and environment) is applied and the hooks it registered
    are wrapped."""
    app = app_ref()
    if app is None:
        return
    from tigerops import _context
    _context.choose(app)
    middleware = app.extensions.get(EXTENSION_KEY)
    from tigerops import _headers
    header_settings = False
    for key, value in list(app.config.items()):
        if not isinstance(key, str) or value is None:
            continue
        if key in _headers.SETTINGS:
            header_settings = True
        elif key in EXCLUDED_URLS_SETTINGS:
            if middleware is not None:
                middleware.excluded = compile_excluded_urls(value, "app.config " + key)
        elif key.startswith("TIGEROPS_") or key.startswith("OTEL_"):
            _tigerops.config_set(key, _config_text(value))
    if header_settings and middleware is not None:
        _headers.install(middleware, app.config)
    from tigerops import _flask_internals
    _flask_internals.wrap_hooks(app)


def instrument_app(app, excluded_urls=None):
    """Returns the app's middleware, or None when tracing is off."""
    extensions = app.extensions
    existing = extensions.get(EXTENSION_KEY)
    if existing is not None:
        if excluded_urls is not None:
            existing.excluded = compile_excluded_urls(excluded_urls)
        return existing
    from tigerops import _bootstrap
    if not _bootstrap.start():
        return None
    middleware = _tigerops.FlaskMiddleware(
        app,
        app.wsgi_app,
        app.request_context,
        app.view_functions,
        functools.partial(_first_request, weakref.ref(app)),
    )
    middleware.excluded = (compile_excluded_urls(excluded_urls) if excluded_urls is not None
                           else _excluded_from_environment())
    try:
        from tigerops import _headers
        _headers.install(middleware)
    except Exception as exc:
        _tigerops.log(2, "header capture is off: %r" % (exc,))
    app.wsgi_app = middleware
    app.request_context = middleware.request_context
    extensions[EXTENSION_KEY] = middleware
    try:
        from flask.signals import got_request_exception, signals_available
        if signals_available:
            got_request_exception.connect(record_request_exception, app, weak=False)
    except Exception as exc:
        _tigerops.log(3, "request exceptions will carry no traceback: %r" % (exc,))
    return middleware
