"""Flask glue: every Flask app gets the C middleware when it is created
(automatic) or through TigerOps().init_app(app) (manual); both are
idempotent, so an app is never traced twice."""
import functools
import types
import weakref

import _tigerops

EXTENSION_KEY = "tigerops"
# Comma-separated regexes searched in the full URL; in app.config the first
# set one wins (the settings table gives the same order to file and env).
EXCLUDED_URLS_SETTINGS = ("TIGEROPS_EXCLUDED_URLS", "OTEL_PYTHON_FLASK_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")
# app.config values applied per app: {app: {key: text}}, so a setting is
# applied (and a bad one warned about) once, not at each of init_app and
# the first request.
_applied = weakref.WeakKeyDictionary()
_per_app_names = None


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


def _excluded_from_settings():
    return compile_excluded_urls(_tigerops.config_get(EXCLUDED_URLS_SETTINGS[0]), "excluded_urls")


def _per_app_settings():
    """The settings app.config sets for its own app (URL and header lists);
    the others are process-wide. The C settings table says which is which."""
    global _per_app_names
    if _per_app_names is None:
        _per_app_names = frozenset(name for name, per_app in _tigerops.config_settings() if per_app)
    return _per_app_names


def record_request_exception(sender, exception=None, **_):
    """got_request_exception: the unhandled exception, with its traceback
    (chained causes included, bounded), as an event on the request span."""
    if exception is None:
        return
    # Flask-RESTful and Flask-RESTX send the signal for abort(404) and
    # validation errors too: an HTTP error below 500 is the answer the app
    # chose, which the status code already says.
    code = getattr(exception, "code", None)
    if isinstance(code, int) and code < 500 and _is_http_exception(exception):
        return
    _tigerops.request_error(exception)  # the metrics' error.type, sampled or not
    span = _tigerops.request_span()
    if span is None or not span.is_recording():
        return
    try:
        span._record_error(exception)
    except Exception as exc:  # Flask's own error handling must go on regardless
        _tigerops.log(2, "could not record a request exception: %r" % (exc,))


def _is_http_exception(exception):
    from werkzeug.exceptions import HTTPException
    return isinstance(exception, HTTPException)


def _signals_available(signals):
    """Flask < 2.3 without blinker has no signals; 2.3 warns when asked
    (signals_available is deprecated) and 3.0 removed the name: always
    available there. The module's __dict__ is read, never its __getattr__."""
    return vars(signals).get("signals_available", True)


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

    # An async view decides the concurrency model when it is registered, at
    # import, not at the first request: several worker threads may start
    # requests at once, and one begun under thread-locals before the switch
    # would lose its spans' parents in asgiref's event-loop thread. The
    # first-request check stays for views put in view_functions directly.
    original_add_url_rule = flask_class.add_url_rule

    @functools.wraps(original_add_url_rule)
    def add_url_rule(self, *args, **kwargs):
        result = original_add_url_rule(self, *args, **kwargs)
        view_func = kwargs.get("view_func", args[2] if len(args) > 2 else None)
        if view_func is not None:
            try:
                from tigerops import _context
                _context.note_view(view_func)
            except Exception as exc:
                _tigerops.log(2, "could not check view %r: %r" % (view_func, exc))
        return result

    flask_class.add_url_rule = add_url_rule


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


def _apply_app_config(app, middleware):
    """app.config's TIGEROPS_*/OTEL_* keys: process-wide ones go to the C
    settings (where they win over file and environment), per-app ones (URL
    and header lists) to this app's middleware."""
    per_app = _per_app_settings()
    done = _applied.setdefault(app, {})
    headers_changed = False
    excluded = None
    for key, value in list(app.config.items()):
        if not isinstance(key, str) or value is None or not key.startswith(("TIGEROPS_", "OTEL_")):
            continue
        text = _config_text(value) if not isinstance(value, (list, tuple)) else ",".join(map(str, value))
        if key in per_app:
            if key in EXCLUDED_URLS_SETTINGS:
                if excluded is None or EXCLUDED_URLS_SETTINGS.index(key) < EXCLUDED_URLS_SETTINGS.index(excluded):
                    excluded = key
            elif done.get(key) != text:
                headers_changed = True
        elif done.get(key) != text:
            _tigerops.config_set(key, text)
        done[key] = text
    if middleware is not None:
        if excluded is not None:
            middleware.excluded = compile_excluded_urls(app.config[excluded], "app.config " + excluded)
        if headers_changed:
            from tigerops import _headers
            _headers.install(middleware, app.config)
    from tigerops import _bootstrap
    _bootstrap.refresh_switches()


def _first_request(app_ref):
    """At the app's first request the factory has finished: app.config (which
    wins over file and environment) is applied and the hooks it registered
    are wrapped."""
    app = app_ref()
    if app is None:
        return
    from tigerops import _context
    _context.choose(app)
    _apply_app_config(app, app.extensions.get(EXTENSION_KEY))
    from tigerops import _flask_internals
    _flask_internals.wrap_hooks(app)
    from tigerops import _enduser
    _enduser.install(app)


def instrument_existing_engines(app):
    """Engines Flask-SQLAlchemy made before we started (code-first
    TigerOps(app) after db.init_app(app), no preload): create_engine was not
    ours yet, so they get the statement tracer here."""
    state = app.extensions.get("sqlalchemy")
    if state is None:
        return
    engines = []
    app_engines = getattr(state, "_app_engines", None)  # Flask-SQLAlchemy 3
    if app_engines is not None:
        engines.extend((app_engines.get(app) or {}).values())
    else:  # 2.x: the state object holds the extension; engines are made on demand
        db = getattr(state, "db", state)
        get_engine = getattr(db, "get_engine", None)
        if get_engine is not None:
            with app.app_context():
                engines.append(get_engine(app))
    from tigerops import _sqlalchemy
    for engine in engines:
        _sqlalchemy.instrument_engine(getattr(engine, "sync_engine", engine))


def _entry_points(app):
    """(wsgi_app via the class hook, request_context via the class hook,
    wsgi_app, request_context): the middleware is reached through the hooks
    on the Flask class where the app uses Flask's own functions, so the
    app's __dict__ gains no attributes (two more make every self.method()
    in Flask's request path slower: _tigerops.flask_class_hooks). An app
    with its own (a subclass override, a middleware set on the app before
    init_app) gets instance attributes wrapping them."""
    wsgi_app, request_context = app.wsgi_app, app.request_context
    try:
        # flask.app.Flask, where the two functions are defined: flask.Flask
        # may be another library's subclass by now (OpenTelemetry's
        # FlaskInstrumentor().instrument() puts one there).
        from flask.app import Flask
    except ImportError:
        return False, False, wsgi_app, request_context
    try:
        originals = (_tigerops.flask_class_hooks(Flask, _request_ctx_get()) if isinstance(app, Flask)
                     else None)
    except Exception as exc:
        global _class_hooks_failed
        if not _class_hooks_failed:
            _class_hooks_failed = True
            _tigerops.log(3, "Flask class hooks unavailable (%r): apps get instance attributes" % (exc,))
        originals = None
    if originals is None:
        return False, False, wsgi_app, request_context
    _closing_iterator_known()
    cls, own = type(app), app.__dict__
    wsgi_via_class = "wsgi_app" not in own and getattr(cls, "wsgi_app", None) is Flask.__dict__["wsgi_app"]
    if wsgi_via_class:
        wsgi_app = types.MethodType(originals[0], app)
    if not originals[2]:
        # The context comes from Flask's context variable: request_context
        # needs no hook, on the class or on the app.
        return wsgi_via_class, True, wsgi_app, request_context
    context_via_class = ("request_context" not in own
                         and getattr(cls, "request_context", None) is Flask.__dict__["request_context"])
    if context_via_class:
        request_context = types.MethodType(originals[1], app)
    return wsgi_via_class, context_via_class, wsgi_app, request_context


def _closing_iterator_known():
    """Tells the middleware werkzeug's ClosingIterator: a response whose
    body is already made ends its span when the app returns it."""
    try:
        from werkzeug.wsgi import ClosingIterator
        _tigerops.flask_closing_iterator(ClosingIterator)
    except Exception as exc:
        _tigerops.log(3, "response bodies are passed through the agent: %r" % (exc,))


def _request_ctx_get():
    """flask.globals._cv_request.get (Flask >= 2.2), or None: Flask < 2.2
    keeps its contexts on a stack, and request_context is hooked instead."""
    try:
        from flask import globals as flask_globals
        var = vars(flask_globals).get("_cv_request")
        get = getattr(var, "get", None)
        return get if callable(get) else None
    except Exception:
        return None


_class_hooks_failed = False


def instrument_app(app, excluded_urls=None):
    """Returns the app's middleware, or None when tracing is off."""
    extensions = app.extensions
    existing = extensions.get(EXTENSION_KEY)
    from tigerops import _bootstrap
    if existing is not None:
        _bootstrap.reload_settings()
        _apply_app_config(app, existing)
        if excluded_urls is not None:
            existing.excluded = compile_excluded_urls(excluded_urls)
        _instrument_engines_failing_open(app)
        return existing
    if not _bootstrap.start():
        return None
    # The app may have loaded a .env file, or its tests turned tracing off,
    # since the agent started: the environment is read again now.
    if not _bootstrap.reload_settings():
        _tigerops.log(3, "tracing is off in the environment: Flask app %r not instrumented"
                      % (getattr(app, "name", "?"),))
        return None
    wsgi_via_class, context_via_class, wsgi_app, request_context = _entry_points(app)
    middleware = _tigerops.FlaskMiddleware(
        app,
        wsgi_app,
        request_context,
        app.view_functions,
        functools.partial(_first_request, weakref.ref(app)),
        via_class=wsgi_via_class,
    )
    middleware.excluded = (compile_excluded_urls(excluded_urls) if excluded_urls is not None
                           else _excluded_from_settings())
    try:
        from tigerops import _headers
        _headers.install(middleware)
    except Exception as exc:
        _tigerops.log(2, "header capture is off: %r" % (exc,))
    if not wsgi_via_class:
        app.wsgi_app = middleware
    if not context_via_class:
        app.request_context = middleware.request_context
    extensions[EXTENSION_KEY] = middleware
    try:
        from flask import signals
        if _signals_available(signals):
            signals.got_request_exception.connect(record_request_exception, app, weak=False)
    except Exception as exc:
        _tigerops.log(3, "request exceptions will carry no traceback: %r" % (exc,))
    _apply_app_config(app, middleware)
    _instrument_engines_failing_open(app)
    return middleware


def _instrument_engines_failing_open(app):
    try:
        instrument_existing_engines(app)
    except Exception as exc:
        _tigerops.log(2, "could not instrument the app's existing SQLAlchemy engines: %r" % (exc,))
