"""_tigerops.FlaskMiddleware and the per-request object it hands the app as
start_response, in process: requests through an instrumented Flask app
(werkzeug's test client and hand-made environs), and the types' behaviour
when Python code creates or calls them in ways no server would."""
import collections
import glob
import io
import re
import sys

import flask
import pytest

import _tigerops
import tigerops
from tigerops import _flask
from inproc import PYTHON, assert_clean_exit, isolated, wire_spans


# buffered=True: werkzeug's client then reads the body and calls close(),
# as a server does, which is when the request span ends.

def make_app(name):
    app = flask.Flask(name)

    @app.route("/hello/<who>")
    def hello(who):
        return "hello " + who

    @app.route("/fail")
    def fail():
        raise RuntimeError("view failed")

    assert _flask.instrument_app(app) is not None
    return app


def request_span(receiver, path):
    assert _tigerops.flush(5000)
    spans = receiver.wait_for_spans(lambda s: s["attributes"].get("url.path") == path)
    found = [s for s in spans if s["attributes"].get("url.path") == path]
    assert len(found) == 1, found
    return found[0]


def test_a_request_through_the_instrumented_app_is_a_server_span(receiver, unique):
    app = make_app(unique)
    path = "/hello/" + unique
    resp = app.test_client().get(path, headers={"User-Agent": "pytest"}, buffered=True)
    assert resp.status_code == 200 and resp.data == b"hello " + unique.encode()
    span = request_span(receiver, path)
    assert span["name"] == "GET /hello/<who>" and span["kind"] == 2
    attrs = span["attributes"]
    assert attrs["http.route"] == "/hello/<who>"
    assert attrs["http.response.status_code"] == 200
    assert attrs["user_agent.original"] == "pytest"


@pytest.mark.parametrize("scheme, port", [("http", 80), ("https", 443)])
def test_an_ipv6_host_without_a_port_gets_the_scheme_default(receiver, unique, scheme, port):
    """Bug 8: Host: [::1] (no port) lost server.port, where example.com
    got the scheme's default."""
    app = make_app(unique)
    client = app.test_client()
    for host in ("example.com", "[::1]"):
        path = "/hello/%s-%s" % (unique, host.strip("[]").replace(":", ""))
        resp = client.get(path, base_url="%s://%s/" % (scheme, host), headers={"Host": host}, buffered=True)
        assert resp.status_code == 200
        attrs = request_span(receiver, path)["attributes"]
        assert attrs["url.scheme"] == scheme
        assert attrs["server.address"].strip("[]") == host.strip("[]")
        assert attrs.get("server.port") == port, (host, attrs)


def test_an_ipv6_host_with_a_port_keeps_it(receiver, unique):
    app = make_app(unique)
    path = "/hello/" + unique
    assert app.test_client().get(path, headers={"Host": "[::1]:8443"}, buffered=True).status_code == 200
    attrs = request_span(receiver, path)["attributes"]
    assert attrs["server.address"].strip("[]") == "::1" and attrs["server.port"] == 8443


@pytest.mark.parametrize("host, server_port, expected", [
    ("example.com:08080", "80", 8080), ("example.com:99999", "80", None), ("example.com:81x", "80", 81),
    ("example.com:", "80", None), ("", "8000", 8000), ("", "abc", None), ("", "70000", None), ("", "0", None)])
def test_server_port_is_the_host_or_server_port_digits_in_range(receiver, unique, host, server_port, expected):
    """The port is parsed by hand (strtol cost ~160 instructions a
    request): leading digits as strtol read them, 1..65535 or no port."""
    app = make_app(unique)
    path = "/hello/" + unique
    # Straight to the WSGI app: newer werkzeug test clients refuse such a
    # Host themselves, before any request is made.
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "example.com",
               "SERVER_PORT": server_port, "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": host,
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
               "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False,
               "wsgi.run_once": False}
    statuses = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(body)
    getattr(body, "close", lambda: None)()
    assert statuses and statuses[0][:3] in ("200", "400"), statuses  # werkzeug may refuse an odd Host
    attrs = request_span(receiver, path)["attributes"]
    assert attrs["server.address"] == "example.com"
    assert attrs.get("server.port") == expected, attrs


def test_an_exception_in_a_view_is_recorded_on_the_request_span(receiver, unique):
    app = make_app(unique)
    assert app.test_client().get("/fail?id=" + unique, buffered=True).status_code == 500
    assert _tigerops.flush(5000)
    spans = receiver.wait_for_spans(lambda s: s["attributes"].get("url.query") == "id=" + unique)
    (span,) = [s for s in spans if s["attributes"].get("url.query") == "id=" + unique]
    assert span["attributes"]["http.route"] == "/fail"
    assert span["status"]["code"] == 2
    assert span["attributes"]["http.response.status_code"] == 500
    assert [e["attributes"]["exception.type"] for e in span["events"] if e["name"] == "exception"] == [
        "RuntimeError"]


def test_an_exception_flask_lets_out_still_gives_the_route(receiver, unique):
    """With PROPAGATE_EXCEPTIONS the app never calls start_response: the
    route comes from the context seen when Flask reports the exception."""
    app = make_app(unique)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError):
        app.test_client().get("/fail?id=" + unique)
    assert _tigerops.flush(5000)
    spans = receiver.wait_for_spans(lambda s: s["attributes"].get("url.query") == "id=" + unique)
    (span,) = [s for s in spans if s["attributes"].get("url.query") == "id=" + unique]
    assert span["name"] == "GET /fail" and span["attributes"]["http.route"] == "/fail"
    assert span["status"]["code"] == 2


@pytest.mark.skipif(_flask._request_ctx_get() is None, reason="Flask < 2.2 has no request context variable")
def test_flask_request_context_is_not_hooked_where_flask_has_its_context_variable(receiver, unique):
    """The hook was a C call between two Python frames on every request;
    the context is read from flask.globals._cv_request instead."""
    from flask.app import Flask
    app = make_app(unique)
    assert type(Flask.__dict__["request_context"]).__name__ == "function"
    assert type(Flask.__dict__["wsgi_app"]).__name__ == "method_descriptor"
    assert "request_context" not in vars(app)
    path = "/hello/" + unique
    assert app.test_client().get(path, buffered=True).status_code == 200
    assert request_span(receiver, path)["name"] == "GET /hello/<who>"


def test_a_hand_made_environ_and_a_plain_start_response_work(receiver, unique):
    app = make_app(unique)
    seen = []
    path = "/hello/" + unique
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "h", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None, "SERVER_PROTOCOL": "HTTP/1.1"}
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: seen.append(status))
    assert b"".join(body) == b"hello " + unique.encode()
    body.close()
    assert seen == ["200 OK"]
    assert request_span(receiver, path)["attributes"]["http.response.status_code"] == 200


def _environ(path):
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "h", "SERVER_PORT": "80",
            "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None, "SERVER_PROTOCOL": "HTTP/1.1"}


def test_environ_keys_are_read_wherever_each_request_puts_them(receiver, unique):
    """The agent reads environ keys at the entry where the last request had
    them (src/ext/environ.c): keys that moved, entries deleted in front of
    them, key objects built afresh and values of another request must all
    read as this request's own."""
    app = make_app(unique)

    def serve(environ):
        statuses = []
        body = app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        assert b"".join(body) == b"hello " + environ["PATH_INFO"].rsplit("/", 1)[1].encode()
        body.close()
        assert statuses == ["200 OK"]

    def fresh(s):  # an equal key that is another object than any seen before
        return "".join(list(s))

    for i in range(3):  # the same layout each time: the keys' entries are learnt and then read directly
        serve(dict(_environ("/hello/%s-%d" % (unique, i)), HTTP_USER_AGENT="ua-%d" % i))
    moved = dict(reversed(list(dict(_environ("/hello/%s-3" % unique), HTTP_USER_AGENT="ua-3").items())))
    serve(moved)
    holes = {"X_%d" % k: k for k in range(12)}
    holes.update(_environ("/hello/%s-4" % unique), HTTP_USER_AGENT="ua-4")
    for k in range(0, 12, 2):
        del holes["X_%d" % k]  # deleted entries in front of every key
    serve(holes)
    rebuilt = {fresh(k): v for k, v in _environ("/hello/%s-5" % unique).items()}
    rebuilt.update({fresh("HTTP_USER_AGENT"): "ua-5", fresh("wsgi.url_scheme"): "https"})
    serve(rebuilt)
    without = _environ("/hello/%s-6" % unique)  # no user agent where every earlier request had one
    serve(without)
    for i in range(7):
        attrs = request_span(receiver, "/hello/%s-%d" % (unique, i))["attributes"]
        assert attrs["http.request.method"] == "GET" and attrs["http.route"] == "/hello/<who>", attrs
        assert attrs.get("user_agent.original") == (None if i == 6 else "ua-%d" % i), attrs
        assert attrs["url.scheme"] == ("https" if i == 5 else "http"), attrs
        assert attrs["http.response.status_code"] == 200, attrs


def test_a_body_already_made_goes_to_the_server_as_flask_made_it_and_the_span_ends_with_the_app(
        receiver, unique):
    """No iterable of the agent's between the server and a list body (two
    calls from C into Python a request): the span has ended, with its
    route and status, before the server reads the body."""
    from werkzeug.wsgi import ClosingIterator
    app = make_app(unique)
    path = "/hello/" + unique
    body = app.wsgi_app(_environ(path), lambda status, headers, exc_info=None: None)
    assert type(body) is ClosingIterator
    span = request_span(receiver, path)  # exported before the body is read
    assert span["name"] == "GET /hello/<who>"
    assert span["attributes"]["http.response.status_code"] == 200
    assert b"".join(body) == b"hello " + unique.encode()
    body.close()


def test_a_response_with_close_work_ends_its_span_when_the_server_closes_it(receiver, unique):
    """call_on_close work is the request's: its spans are the request
    span's children, and the request span ends after it."""
    app = flask.Flask(unique)

    @app.route("/closing/<x>")
    def closing(x):
        resp = flask.make_response("ok " + x)

        @resp.call_on_close
        def after():
            with tigerops.span("close work " + unique):
                pass
        return resp

    assert _flask.instrument_app(app) is not None
    path = "/closing/" + unique
    body = app.wsgi_app(_environ(path), lambda status, headers, exc_info=None: None)
    assert type(body).__name__ == "Request"  # the agent's iterable, which ends the span at close
    assert b"".join(body) == b"ok " + unique.encode()
    body.close()
    span = request_span(receiver, path)
    assert span["name"] == "GET /closing/<x>" and span["attributes"]["http.response.status_code"] == 200
    work = receiver.wait_for_spans(lambda s: s["name"] == "close work " + unique)
    assert [w["parentSpanId"] for w in work if w["name"] == "close work " + unique] == [span["spanId"]]


def test_a_streamed_body_keeps_the_request_span_current_until_the_server_closes_it(receiver, unique):
    app = flask.Flask(unique)

    @app.route("/stream/<x>")
    def stream(x):
        def chunks():
            with tigerops.span("chunk " + unique):
                yield b"a"
            yield b"b"
        return flask.Response(chunks())

    assert _flask.instrument_app(app) is not None
    path = "/stream/" + unique
    body = app.wsgi_app(_environ(path), lambda status, headers, exc_info=None: None)
    assert type(body).__name__ == "Request"
    assert b"".join(body) == b"ab"
    body.close()
    span = request_span(receiver, path)
    chunk = receiver.wait_for_spans(lambda s: s["name"] == "chunk " + unique)
    assert [c["parentSpanId"] for c in chunk if c["name"] == "chunk " + unique] == [span["spanId"]]


# ---- the types, created and called the wrong way -----------------------------------

def test_a_middleware_made_without_init_is_refused_or_raises_cleanly_when_called():
    """Bug 6: FlaskMiddleware.__new__(FlaskMiddleware) then a call raised
    SystemError. Creating it may be refused (TypeError); if it exists,
    calling it raises TypeError or RuntimeError, never SystemError."""
    out = assert_clean_exit(isolated(
        "import _tigerops\n"
        "M = _tigerops.FlaskMiddleware\n"
        "try:\n"
        "    m = M.__new__(M)\n"
        "except TypeError:\n"
        "    print('refused')\n"
        "    raise SystemExit(0)\n"
        "env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/'}\n"
        "for call in (lambda: m(env, print), lambda: m.request_context(env), lambda: m(), lambda: m.__wrapped__,\n"
        "             lambda: m.excluded, lambda: setattr(m, 'excluded', None)):\n"
        "    try:\n"
        "        call()\n"
        "    except (TypeError, RuntimeError, AttributeError) as e:\n"
        "        print('raised', type(e).__name__)\n"
        "    except BaseException as e:\n"
        "        print('WRONG', type(e).__name__, e)\n"
        "    else:\n"
        "        print('returned')\n"
        "del m\n"
        "print('alive')\n"), "uninitialised FlaskMiddleware")
    lines = out.split()
    assert "WRONG" not in out, out
    assert lines == ["refused"] or (lines[:1] == ["raised"] and lines[-1] == "alive"), out


# The object the middleware passes the app as start_response, caught by a
# WSGI layer between the middleware and the app. A real Flask app where
# Flask is installed (/usr/bin/python3); elsewhere (the pyenv interpreters
# the abi3 build also runs on) an object with the attributes the Flask glue
# uses. Run without the preload, so no hook instruments the app before the
# capturing layer is in place.
STEAL_START_RESPONSE = """
import _tigerops
from tigerops import _flask
kept = []
try:
    import flask
except ImportError:
    class App:
        def __init__(self):
            self.extensions, self.view_functions, self.config = {}, {}, {}
        def wsgi_app(self, environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        def request_context(self, environ):
            return None
    app = App()
else:
    app = flask.Flask("steal")
    app.route("/")(lambda: "ok")
inner = app.wsgi_app
def capture(environ, start_response):
    kept.append(start_response)
    return inner(environ, start_response)
app.wsgi_app = capture
assert _flask.instrument_app(app) is not None
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "h", "SERVER_PORT": "80",
           "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None}
body = app.wsgi_app(environ, lambda status, headers, exc_info=None: None)
assert b"".join(body) == b"ok"
body.close()
Request = type(kept[0])
assert Request.__module__ == "_tigerops", Request
del body, inner, capture, environ
"""

PYTHONS = [PYTHON] + [p for p in sorted(glob.glob("/root/.pyenv/versions/3.*/bin/python3"))
                      if re.search(r"/3\.(9|1[0-3])\.", p)]


def _python_id(path):
    if path == PYTHON:
        return "debian" if path == "/usr/bin/python3" else "venv"
    return "pyenv-" + path.split("/")[-3]


@pytest.mark.parametrize("python", PYTHONS, ids=_python_id)
def test_the_request_type_cannot_be_created_from_python(python):
    """Bug 6: type(start_response)() made a request object with no
    middleware, span or start_response, and calling it segfaulted."""
    out = assert_clean_exit(isolated(STEAL_START_RESPONSE + (
        "for make in (lambda: Request(), lambda: Request.__new__(Request), lambda: Request('200 OK', [])):\n"
        "    try:\n"
        "        r = make()\n"
        "    except TypeError:\n"
        "        print('refused')\n"
        "    else:\n"
        "        print('CREATED')\n"
        "        for call in (lambda: r('200 OK', []), lambda: list(r), lambda: r.close(), lambda: next(r)):\n"
        "            try:\n"
        "                call()\n"
        "            except Exception:\n"
        "                pass\n"
        "        del r\n"
        "print('alive')\n"), python=python, preload=False), "creating the request type")
    assert out.split() == ["refused", "refused", "refused", "alive"], out


@pytest.mark.parametrize("python", PYTHONS, ids=_python_id)
def test_a_start_response_outliving_its_request_is_safe(python):
    """A start_response kept past the response (an app or server holding
    on to it) can still be called, iterated and closed: no crash, no
    SystemError."""
    out = assert_clean_exit(isolated(STEAL_START_RESPONSE + (
        "import gc\n"
        "r = kept.pop()\n"
        "del app\n"
        "gc.collect()\n"
        "for call in (lambda: r('200 OK', []), lambda: list(r), lambda: r.close(), lambda: r.close(),\n"
        "             lambda: r(), lambda: r(1, 2, 3, 4), lambda: r('not a status', None), lambda: next(r)):\n"
        "    try:\n"
        "        call()\n"
        "    except Exception as e:\n"
        "        print('raised', type(e).__name__)\n"
        "del r\n"
        "gc.collect()\n"
        "print('alive')\n"), python=python, preload=False), "a kept start_response")
    assert "SystemError" not in out and out.split()[-1] == "alive", out


@pytest.mark.parametrize("shape", ["exc_info", "keywords"])
def test_start_response_called_with_exc_info_or_by_keyword_reaches_the_server_and_gives_the_status(
        receiver, unique, shape):
    """The request object's start_response takes the calls a server's does,
    positional with exc_info and by keyword (the vectorcall fast path takes
    only the positional ones), and reads the status from each."""
    class OwnWsgiApp(flask.Flask):  # the middleware then wraps this app's own wsgi_app
        def wsgi_app(self, environ, start_response):
            if shape == "exc_info":
                start_response("418 I'm a teapot", [("Content-Type", "text/plain")], None)
            else:
                start_response(status="418 I'm a teapot", headers=[("Content-Type", "text/plain")])
            return [b"tea"]

    app = OwnWsgiApp(unique)
    assert _flask.instrument_app(app) is not None
    seen = []

    def server_start_response(status, headers, exc_info=None):
        seen.append((status, exc_info))

    path = "/tea/" + unique
    body = app.wsgi_app(_environ(path), server_start_response)
    assert b"".join(body) == b"tea"
    body.close()
    assert seen == [("418 I'm a teapot", None)]
    assert request_span(receiver, path)["attributes"]["http.response.status_code"] == 418


def test_a_span_handle_inside_a_request_is_the_request_span(receiver, unique):
    app = flask.Flask(unique)
    seen = {}

    @app.route("/handle/<x>")
    def handle(x):
        s = tigerops.current_span()
        s.set_attribute("from.view", x)
        seen["span_id"] = s.span_id
        return "ok"

    _flask.instrument_app(app)
    path = "/handle/" + unique
    assert app.test_client().get(path, buffered=True).status_code == 200
    span = request_span(receiver, path)
    assert span["spanId"] == seen["span_id"] and span["attributes"]["from.view"] == unique


def _plain_app(name, cls=flask.Flask):
    app = cls(name)
    app.route("/hello/<who>", endpoint="hello")(lambda who: "hello " + who)
    return app


def test_an_instrumented_app_gains_no_instance_attributes(receiver, unique):
    """Setting app.wsgi_app and app.request_context pushed Flask's instance
    attributes past CPython's 30 shared keys, and every self.method() in
    Flask's request path stopped specialising (+880 instructions a request
    on 3.11): the middleware is reached through hooks on the Flask class."""
    app = make_app(unique)
    assert "wsgi_app" not in vars(app) and "request_context" not in vars(app), sorted(vars(app))
    assert isinstance(app.extensions["tigerops"], _tigerops.FlaskMiddleware)
    path = "/hello/" + unique
    assert app.test_client().get(path, buffered=True).status_code == 200
    assert request_span(receiver, path)["name"] == "GET /hello/<who>"


def test_one_route_served_with_alternating_methods_names_each_span_by_its_own_method(receiver, unique):
    """The route's span name is kept interned for the method last seen: a
    request with another method must not get it."""
    app = flask.Flask(unique)

    @app.route("/item/<n>", methods=["GET", "POST", "PATCH"])
    def item(n):
        return flask.request.method + " " + n

    assert _flask.instrument_app(app) is not None
    client = app.test_client()
    sent = []
    for i, method in enumerate(["GET", "POST", "POST", "GET", "PATCH", "GET"]):
        path = "/item/%s-%d" % (unique, i)
        assert client.open(path, method=method, buffered=True).data == ("%s %s-%d" % (method, unique, i)).encode()
        sent.append((path, method))
    assert _tigerops.flush(5000)
    for path, method in sent:
        span = request_span(receiver, path)
        assert span["name"] == method + " /item/<n>", (path, span["name"])
        assert span["attributes"]["http.request.method"] == method
        assert span["attributes"]["http.route"] == "/item/<n>"
        assert span["attributes"]["code.function"] == "test_one_route_served_with_alternating_methods_names_" \
                                                      "each_span_by_its_own_method.<locals>.item"


@pytest.mark.parametrize("view_sets", ["nothing", "its_own", "the_agents"])
def test_a_request_span_carries_each_attribute_key_once(receiver, unique, view_sets):
    """The agent appends its request attributes unchecked while they are all
    its own; an attribute the app sets by key (its own, or one of the
    agent's) turns that off, so no key is ever exported twice, and the
    agent's value wins for the agent's keys."""
    app = flask.Flask(unique)

    @app.route("/keys/<n>")
    def keys(n):
        span = tigerops.current_span()
        if view_sets == "its_own":
            span.set_attribute("app.tenant", "t1")
        elif view_sets == "the_agents":
            span.set_attribute("http.route", "/not-the-route")
            span.set_attribute("code.function", "mine")
        return n

    assert _flask.instrument_app(app) is not None
    path = "/keys/" + unique
    assert app.test_client().get(path, buffered=True).status_code == 200
    assert _tigerops.flush(5000)
    request_span(receiver, path)
    [span] = [s for s in wire_spans(receiver) if dict(s["attributes"]).get("url.path") == path]
    names = [k for k, _ in span["attributes"]]
    assert len(names) == len(set(names)), sorted(names)
    attrs = dict(span["attributes"])
    assert attrs["http.route"] == "/keys/<n>" and attrs["http.response.status_code"] == 200
    assert attrs["code.function"].endswith("keys")
    if view_sets == "its_own":
        assert attrs["app.tenant"] == "t1"


def test_wsgi_app_called_by_keyword_is_served_by_flask_untraced(receiver, unique):
    """The class hook traces the server's positional call; any other shape
    goes to Flask's own wsgi_app with the arguments as given."""
    app = make_app(unique)
    seen = []
    path = "/hello/kw-" + unique
    body = app.wsgi_app(environ=_environ(path),
                        start_response=lambda status, headers, exc_info=None: seen.append(status))
    assert b"".join(body) == b"hello kw-" + unique.encode() and seen == ["200 OK"]
    body.close()
    with pytest.raises(TypeError):
        app.wsgi_app(_environ(path), lambda *a: None, "a third argument")
    assert _tigerops.flush(5000)
    assert not [s for s in receiver.spans() if s["attributes"].get("url.path") == path]


def test_an_app_without_the_middleware_is_served_untraced_by_the_class_hooks(receiver, unique):
    traced, bare = make_app(unique + "-traced"), _plain_app(unique + "-bare")
    bare.extensions.pop("tigerops", None)  # made by the creation hook when an earlier test installed it
    assert traced.test_client().get("/hello/" + unique, buffered=True).status_code == 200
    assert bare.test_client().get("/hello/bare-" + unique, buffered=True).data == b"hello bare-" + unique.encode()
    request_span(receiver, "/hello/" + unique)
    assert not [s for s in receiver.spans() if s["attributes"].get("url.path") == "/hello/bare-" + unique]


def test_two_apps_served_in_turn_each_get_their_own_routes(receiver, unique):
    apps = [make_app(unique + "-a"), _plain_app(unique + "-b")]
    apps[1].route("/other/<x>", endpoint="other")(lambda x: x)
    assert _flask.instrument_app(apps[1]) is not None
    for i in range(3):
        for app, path in ((apps[0], "/hello/%s-%d" % (unique, i)), (apps[1], "/other/%s-%d" % (unique, i))):
            assert app.test_client().get(path, buffered=True).status_code == 200
    assert _tigerops.flush(5000)
    names = collections.Counter(s["name"] for s in receiver.spans() if unique in s["attributes"].get("url.path", ""))
    assert names == {"GET /hello/<who>": 3, "GET /other/<x>": 3}, names


class _OwnWsgiApp(flask.Flask):
    def wsgi_app(self, environ, start_response):
        environ["wrapped.by.subclass"] = True
        return super().wsgi_app(environ, start_response)


def test_an_app_with_its_own_wsgi_app_is_traced_once(receiver, unique):
    """A subclass's own wsgi_app gets the instance attribute (the class hook
    it reaches through super() leaves it alone); a middleware the app sets
    on itself, before or after instrumentation, is traced once too."""
    sub = _plain_app(unique + "-sub", _OwnWsgiApp)
    assert _flask.instrument_app(sub) is not None
    assert isinstance(vars(sub)["wsgi_app"], _tigerops.FlaskMiddleware)
    wrapped = _plain_app(unique + "-wrapped")
    inner = wrapped.wsgi_app
    wrapped.wsgi_app = lambda environ, start_response: inner(environ, start_response)
    assert _flask.instrument_app(wrapped) is not None
    for app, label in ((sub, "sub"), (wrapped, "wrapped")):
        path = "/hello/%s-%s" % (label, unique)
        assert app.test_client().get(path, buffered=True).status_code == 200
        assert request_span(receiver, path)["name"] == "GET /hello/<who>"


def test_the_app_called_as_servers_call_it_reaches_a_wsgi_app_set_after_instrumentation(receiver, unique):
    """Flask.__call__ is hooked on the class too (one interpreter entry a
    request where the Python function made two): it still calls the app's
    own wsgi_app, so a middleware set after init_app, as ProxyFix is, runs
    before the span starts and the span sees the environ it made."""
    app = make_app(unique)

    def proxy_fix(wsgi_app):
        def fixed(environ, start_response):
            environ["REMOTE_ADDR"] = environ.get("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
            return wsgi_app(environ, start_response)
        return fixed

    app.wsgi_app = proxy_fix(app.wsgi_app)
    statuses = []
    path = "/hello/" + unique
    environ = dict(_environ(path), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert b"".join(body) == b"hello " + unique.encode() and statuses == ["200 OK"]
    body.close()
    span = request_span(receiver, path)
    assert span["name"] == "GET /hello/<who>"
    assert span["attributes"]["network.peer.address"] == "203.0.113.7"
    # by keyword: Flask's own __call__, which calls the same wsgi_app
    kw_path = "/hello/kw-" + unique
    body = app(environ=_environ(kw_path), start_response=lambda status, headers, exc_info=None: statuses.append(status))
    assert b"".join(body) == b"hello kw-" + unique.encode() and statuses[-1] == "200 OK"
    body.close()
    assert request_span(receiver, kw_path)["name"] == "GET /hello/<who>"
    with pytest.raises(TypeError):
        app(_environ(kw_path), lambda *a: None, "a third argument")


def test_flask_call_is_the_call_slot_of_flask_and_of_its_subclasses(receiver, unique):
    """Flask.__call__ is a slot wrapper, so CPython calls the agent's
    function as the class's call slot (one C call where a method was four
    steps: a lookup, a prepended call, the method's call protocol and the
    method). Subclasses made after the hook inherit the slot; one with its
    own __call__ reaches it through super(); both are traced once, as is a
    call of Flask.__call__ by hand."""
    make_app(unique)  # the class hooks are put on with the first app
    assert type(vars(flask.Flask)["__call__"]).__name__ == "wrapper_descriptor"

    class Later(flask.Flask):
        pass

    class OwnCall(flask.Flask):
        def __call__(self, environ, start_response):
            environ["HTTP_X_FORWARDED_FOR"] = "198.51.100.9"
            return super().__call__(environ, start_response)

    assert type(vars(flask.Flask)["__call__"]) is type(Later.__call__)
    for label, cls, call in (("later", Later, None), ("own", OwnCall, None),
                             ("by-hand", flask.Flask, flask.Flask.__call__)):
        app = _plain_app("%s-%s" % (unique, label), cls)
        assert _flask.instrument_app(app) is not None
        path = "/hello/%s-%s" % (label, unique)
        statuses = []
        start_response = lambda status, headers, exc_info=None: statuses.append(status)  # noqa: E731
        body = call(app, _environ(path), start_response) if call else app(_environ(path), start_response)
        assert b"".join(body) == ("hello %s-%s" % (label, unique)).encode() and statuses == ["200 OK"]
        body.close()
        span = request_span(receiver, path)
        assert span["name"] == "GET /hello/<who>"
        if cls is OwnCall:
            assert span["attributes"]["client.address"] == "198.51.100.9", span["attributes"]


def test_a_dropped_app_takes_its_views_with_it(receiver, unique):
    """The class hooks remember the last app served: not past its life."""
    import gc
    import weakref
    app = make_app(unique)
    view = app.view_functions["hello"]
    assert app.test_client().get("/hello/" + unique, buffered=True).status_code == 200
    view_ref, app_ref = weakref.ref(view), weakref.ref(app)
    del app, view
    gc.collect()  # the test client's and Flask's own cycles
    assert app_ref() is None and view_ref() is None


class _RoomyFlask(flask.Flask):
    """An instance size few other objects share, so the next one allocated
    after one is freed usually takes its place."""
    __slots__ = tuple("_room%d" % i for i in range(40))


def test_an_app_made_where_a_dropped_app_was_is_served_by_its_own_middleware(receiver, unique):
    """The class hooks know the last app served by its address while its
    middleware is kept: the app's death must forget both, or a new app
    allocated at the same address would be served by the old middleware.
    The new app's middleware excludes its URL, the old one's does not, so a
    span for the new app's request says which one served it."""
    import gc
    first = _plain_app(unique + "-first", _RoomyFlask)
    assert _flask.instrument_app(first) is not None
    assert first.test_client().get("/hello/first-" + unique, buffered=True).status_code == 200
    request_span(receiver, "/hello/first-" + unique)
    address = id(first)
    del first
    gc.collect()
    kept, reused = [], None
    for _ in range(50):  # the freed block comes back first as a rule; others are kept so it can
        app = _plain_app(unique + "-second", _RoomyFlask)
        if id(app) == address:
            reused = app
            break
        kept.append(app)
    if reused is None:
        pytest.skip("no new app was allocated at the dropped app's address")
    assert _flask.instrument_app(reused, excluded_urls="/hello/second-") is not None
    path = "/hello/second-" + unique
    assert reused.test_client().get(path, buffered=True).data == b"hello second-" + unique.encode()
    assert _tigerops.flush(5000)
    assert not [s for s in receiver.spans() if s["attributes"].get("url.path") == path]
    # and the new middleware does serve it: a path it does not exclude gets its span
    assert reused.test_client().get("/hello/third-" + unique, buffered=True).status_code == 200
    assert request_span(receiver, "/hello/third-" + unique)["name"] == "GET /hello/<who>"


def test_a_subclass_put_in_place_of_flask_Flask_is_still_instrumented(receiver, unique, monkeypatch):
    """OpenTelemetry's FlaskInstrumentor().instrument() replaces flask.Flask
    with a subclass: apps made from it after the class hooks are in place
    were refused (KeyError on the subclass's __dict__) and went untraced."""
    make_app(unique + "-first")  # the hooks go on flask.app.Flask

    class Replaced(flask.Flask):
        pass

    monkeypatch.setattr(flask, "Flask", Replaced)
    app = _plain_app(unique, Replaced)
    app.extensions.pop("tigerops", None)
    assert _flask.instrument_app(app) is not None
    assert "wsgi_app" not in vars(app)
    path = "/hello/" + unique
    assert app.test_client().get(path, buffered=True).status_code == 200
    assert request_span(receiver, path)["name"] == "GET /hello/<who>"


class _ContextByKeyword(flask.Flask):
    def request_context(self, environ):
        return super().request_context(environ=environ)


def test_request_context_called_with_environ_by_keyword_is_traced_alike(receiver, unique):
    """Flask's request_context takes environ by keyword too; both hooks
    (the class's, and the instance attribute of an app with its own) raised
    TypeError on such a call."""
    from werkzeug.test import EnvironBuilder
    sub = _plain_app(unique + "-sub", _ContextByKeyword)
    assert _flask.instrument_app(sub) is not None
    # Flask < 2.2: its own request_context is wrapped by an instance attribute.
    assert ("request_context" in vars(sub)) == (_flask._request_ctx_get() is None)
    path = "/hello/" + unique
    assert sub.test_client().get(path, buffered=True).status_code == 200
    assert request_span(receiver, path)["name"] == "GET /hello/<who>"
    plain = make_app(unique + "-plain")
    environ = EnvironBuilder(path="/hello/x").get_environ()
    for app in (plain, sub):
        with app.request_context(environ=environ) as ctx:
            assert flask.request.path == "/hello/x" and ctx.request.environ is environ
    with pytest.raises(TypeError):
        plain.request_context(environ, "extra")  # Flask's own error, passed on


def test_another_apps_context_below_the_middleware_gives_no_route(receiver, unique):
    """A middleware of the app's own below ours (set before instrumentation)
    dispatching to another Flask app: that app's context is current when
    start_response comes, and its rule is not our app's route."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    outer, other = _plain_app(unique + "-outer"), flask.Flask(unique + "-other")
    other.route("/b/<x>", endpoint="b")(lambda x: x)
    other.extensions.pop("tigerops", None)
    outer.extensions.pop("tigerops", None)
    outer.wsgi_app = DispatcherMiddleware(outer.wsgi_app, {"/sub": other})
    assert _flask.instrument_app(outer) is not None
    assert outer.test_client().get("/sub/b/" + unique, buffered=True).data == unique.encode()
    path = "/hello/" + unique
    assert outer.test_client().get(path, buffered=True).status_code == 200
    assert request_span(receiver, path)["name"] == "GET /hello/<who>"
    (span,) = [s for s in receiver.spans() if s["attributes"].get("url.path") == "/sub/b/" + unique]
    assert span["name"] == "GET" and "http.route" not in span["attributes"], span


def test_a_start_response_kept_by_the_app_is_not_handed_to_the_next_request(receiver, unique):
    """A finished request's object serves the next request only when
    nothing else holds it: one the app kept stays that request's."""
    kept = []

    class KeepingResponse(flask.Response):
        def __call__(self, environ, start_response):
            kept.append(start_response)
            return super().__call__(environ, start_response)

    app = make_app(unique)
    app.response_class = KeepingResponse
    client = app.test_client()
    paths = ["/hello/%s-%d" % (unique, i) for i in range(3)]
    for path in paths:
        assert client.get(path, buffered=True).status_code == 200
    assert len(kept) == 3 and len({id(r) for r in kept}) == 3, kept
    for path in paths:
        span = request_span(receiver, path)
        assert span["name"] == "GET /hello/<who>"
        assert span["attributes"]["http.response.status_code"] == 200


def test_a_request_left_in_a_cycle_ends_at_the_next_young_collection_though_its_object_served_before(
        receiver, unique):
    """The object a finished request leaves for the next one is aged by the
    collector meanwhile; a request that then ends up in a reference cycle
    (never closed) must still be collected, and its span end with its
    route, at the next collection of the youngest generation, as a fresh
    object would. It waited for a full collection, which at interpreter
    exit no longer finds the route."""
    import gc
    app = make_app(unique)

    class CyclicResponse(flask.Response):
        def __call__(self, environ, start_response):
            self.kept = start_response  # response -> start_response -> body -> response
            return super().__call__(environ, start_response)

    @app.route("/stream/<x>")
    def stream(x):
        return CyclicResponse(iter([b"streamed"]))  # a generator body: the agent's iterable

    assert app.test_client().get("/hello/first", buffered=True).status_code == 200
    gc.collect()  # the spare object ages into the oldest generation
    gc.disable()
    try:
        path = "/stream/" + unique
        body = app.wsgi_app(_environ(path), lambda status, headers, exc_info=None: None)
        assert b"".join(body) == b"streamed"
        del body  # not closed: only the collector can end it
        gc.collect(0)
    finally:
        gc.enable()
    assert request_span(receiver, path)["name"] == "GET /stream/<x>"
