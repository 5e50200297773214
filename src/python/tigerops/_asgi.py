"""asgiref's WsgiToAsgi (a Flask app served by uvicorn or hypercorn): its
WsgiToAsgiInstance iterates the WSGI response but never calls its close(),
which PEP 3333 requires of a server (no release does; django/asgiref#587
proposes it). The request span ends in close() (or when the response is
freed, which a reference cycle can put off until the next garbage
collection, so the span would be exported late, with a wrong end time, or
never); Flask's call_on_close callbacks and a streamed generator's cleanup
did not run either. The WSGI app is given a response that closes the app's
response once: when iteration ends, fails, or the response is dropped early
(the Content-Length cut). A version that calls close() itself closes this
wrapper, which closes the app's response only once."""
import functools

import _tigerops


def _closing(iterable):
    try:
        for chunk in iterable:
            yield chunk
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()


def _closing_app(app):
    @functools.wraps(app)
    def wsgi_app(environ, start_response):
        return _closing(app(environ, start_response))

    wsgi_app.__tigerops__ = True
    return wsgi_app


def patch_wsgi(module):
    instance = getattr(module, "WsgiToAsgiInstance", None)
    original = getattr(instance, "__init__", None)
    if original is None:
        _tigerops.log(3, "asgiref.wsgi has no WsgiToAsgiInstance: responses are closed as asgiref does")
        return
    if getattr(original, "__tigerops__", False):
        return

    @functools.wraps(original)
    def __init__(self, wsgi_application, *args, **kwargs):
        if not getattr(wsgi_application, "__tigerops__", False):
            wsgi_application = _closing_app(wsgi_application)
        original(self, wsgi_application, *args, **kwargs)

    __init__.__tigerops__ = True
    instance.__init__ = __init__
