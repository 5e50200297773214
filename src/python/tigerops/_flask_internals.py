"""Flask internals as child spans of the request: before/after/teardown
request hooks (app and blueprint), one span per class-based view method
(flask.views.MethodView, which Flask-RESTful and Flask-RESTX resources
are), and the reqparse.parse_args and marshal of both."""
import contextvars
import functools

import _tigerops
from tigerops import Span

_HOOK_TABLES = (("before_request_funcs", "before_request"), ("after_request_funcs", "after_request"),
                ("teardown_request_funcs", "teardown_request"))
_CO_COROUTINE = 0x80


def _is_async(func):
    code = getattr(func, "__code__", None)
    return bool(code is not None and code.co_flags & _CO_COROUTINE)


def _wrap_hook(func, kind, blueprint):
    name = getattr(func, "__qualname__", None) or repr(func)

    @functools.wraps(func)
    def hook(*args, **kwargs):
        if not _tigerops.tracing_now():
            return func(*args, **kwargs)
        attributes = {"flask.hook": kind, "code.function": name}
        if blueprint:
            attributes["flask.blueprint"] = blueprint
        with Span(name, _tigerops.KIND_INTERNAL, attributes):
            return func(*args, **kwargs)

    hook.__tigerops__ = True
    return hook


def _wrap_error_handler(func):
    """An errorhandler that answers 5xx hides the exception from
    got_request_exception: record it when the handler's answer is a 5xx.
    The handler is wrapped, not Flask's dispatch, so an unhandled exception's
    traceback never passes through agent code."""
    from tigerops._flask import record_request_exception, status_of

    @functools.wraps(func)
    def handler(e):
        rv = func(e)
        try:
            if _tigerops.tracing_now() and status_of(rv) >= 500:
                record_request_exception(None, exception=e)
        except Exception as exc:
            _tigerops.log(4, "could not read an errorhandler's answer: %r" % (exc,))
        return rv

    handler.__tigerops__ = True
    return handler


def wrap_hooks(app):
    """Wraps the app's registered hook functions and exception handlers in
    place; run at the first request, when factories and blueprints have
    registered theirs."""
    for table_name, kind in _HOOK_TABLES:
        table = getattr(app, table_name, None) or {}
        for blueprint, funcs in table.items():
            for i, func in enumerate(funcs):
                if not getattr(func, "__tigerops__", False) and not _is_async(func):
                    funcs[i] = _wrap_hook(func, kind, blueprint)
    try:
        from werkzeug.exceptions import HTTPException
    except ImportError:
        return
    for by_code in (getattr(app, "error_handler_spec", None) or {}).values():
        for code, handlers in by_code.items():
            if code is not None:  # HTTP status handlers: abort(), and 500 after got_request_exception
                continue
            for exc_class, func in list(handlers.items()):
                if (isinstance(exc_class, type) and not issubclass(exc_class, HTTPException)
                        and not getattr(func, "__tigerops__", False) and not _is_async(func)):
                    handlers[exc_class] = _wrap_error_handler(func)


def _traced_dispatch(original):
    from werkzeug.exceptions import HTTPException

    @functools.wraps(original)
    def dispatch_request(self, *args, **kwargs):
        if not _tigerops.tracing_now():
            return original(self, *args, **kwargs)
        from flask import request
        method = request.method.lower()
        if method == "head" and getattr(self, "get", None) is not None and getattr(self, "head", None) is None:
            method = "get"
        name = "%s.%s" % (type(self).__name__, method)
        attributes = {"code.function": name, "code.namespace": type(self).__module__}
        with Span(name, _tigerops.KIND_INTERNAL, attributes) as span:
            try:
                return original(self, *args, **kwargs)
            except HTTPException as exc:
                # abort(404), a payload failing expect(validate=True): the
                # answer the framework makes, a client error, not this
                # span's failure; raised again once the span has ended.
                if not (isinstance(exc.code, int) and exc.code < 500):
                    raise
                span.set_attribute("http.response.status_code", exc.code)
                client_error = exc
        raise client_error

    dispatch_request.__tigerops__ = True
    return dispatch_request


def patch_views(module):
    view = module.MethodView
    if not getattr(view.dispatch_request, "__tigerops__", False):
        view.dispatch_request = _traced_dispatch(view.dispatch_request)


def _traced_function(name, original):
    @functools.wraps(original)
    def traced(*args, **kwargs):
        if not _tigerops.tracing_now():
            return original(*args, **kwargs)
        with Span(name, _tigerops.KIND_INTERNAL):
            return original(*args, **kwargs)

    traced.__tigerops__ = True
    return traced


# marshal calls itself through its module's global for each item of a list
# and each nested dict: one span for the outer call, none per item.
_marshalling = contextvars.ContextVar("tigerops_marshalling", default=False)


def _traced_marshal(name, original):
    @functools.wraps(original)
    def marshal(*args, **kwargs):
        if _marshalling.get() or not _tigerops.tracing_now():
            return original(*args, **kwargs)
        token = _marshalling.set(True)
        try:
            with Span(name, _tigerops.KIND_INTERNAL):
                return original(*args, **kwargs)
        finally:
            _marshalling.reset(token)

    marshal.__tigerops__ = True
    return marshal


def _trace_resource(resource):
    if not getattr(resource.dispatch_request, "__tigerops__", False):
        resource.dispatch_request = _traced_dispatch(resource.dispatch_request)


def patch_restful(module):
    _trace_resource(module.Resource)
    if not getattr(module.marshal, "__tigerops__", False):
        module.marshal = _traced_marshal("flask_restful.marshal", module.marshal)


def patch_reqparse(module):
    parser = module.RequestParser
    if not getattr(parser.parse_args, "__tigerops__", False):
        parser.parse_args = _traced_function("reqparse.parse_args", parser.parse_args)


def patch_restx(module):
    """Flask-RESTX (a fork of Flask-RESTful): its Resource overrides
    dispatch_request (payload validation happens inside), and marshal is
    imported by name into the package, marshalling (marshal_with) and
    namespace (Namespace.marshal); fields.Nested keeps its own, which runs
    inside the outer marshal span."""
    import sys
    _trace_resource(module.Resource)
    # Found by what each version has, never assumed: a piece a release moved
    # is left untraced rather than guessed at.
    marshalling = sys.modules.get("flask_restx.marshalling")
    original = getattr(marshalling, "marshal", None)
    if original is not None and not getattr(original, "__tigerops__", False):
        traced = _traced_marshal("flask_restx.marshal", original)
        for holder in (marshalling, module, sys.modules.get("flask_restx.namespace")):
            if holder is not None and getattr(holder, "marshal", None) is original:
                holder.marshal = traced
    reqparse = sys.modules.get("flask_restx.reqparse")
    if reqparse is not None and hasattr(getattr(reqparse, "RequestParser", None), "parse_args"):
        patch_reqparse(reqparse)
