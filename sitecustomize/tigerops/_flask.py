"""Flask glue: every Flask app gets the C middleware when it is created
(automatic) or through TigerOps().init_app(app) (manual); both are
idempotent, so an app is never traced twice."""
import functools
import weakref

import _tigerops

EXTENSION_KEY = "tigerops"


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
    for key, value in list(app.config.items()):
        if isinstance(key, str) and (key.startswith("TIGEROPS_") or key.startswith("OTEL_")):
            if value is None:
                continue
            _tigerops.config_set(key, _config_text(value))
    from tigerops import _flask_internals
    _flask_internals.wrap_hooks(app)


def instrument_app(app):
    """Returns the app's middleware, or None when tracing is off."""
    extensions = app.extensions
    existing = extensions.get(EXTENSION_KEY)
    if existing is not None:
        return existing
    from tigerops import _bootstrap
    if not _bootstrap.start():
        return None
    middleware = _tigerops.FlaskMiddleware(
        app.wsgi_app,
        app.request_context,
        app.view_functions,
        functools.partial(_first_request, weakref.ref(app)),
    )
    app.wsgi_app = middleware
    app.request_context = middleware.request_context
    extensions[EXTENSION_KEY] = middleware
    return middleware
