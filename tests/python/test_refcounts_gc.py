"""Reference counting and the cycle collector around the extension's
objects: spans in reference cycles, span handles dropped while current,
Flask apps dropped after instrumentation, and a leak check over many spans
and requests (tracemalloc growth and sys.getrefcount of the objects every
request touches)."""
import collections
import gc
import io
import sys
import tracemalloc
import weakref

import flask
import pytest

import _tigerops
import tigerops
from tigerops import _flask
from inproc import assert_clean_exit, isolated


class Marker:
    """Stored in a span's attributes: its weakref dies when whatever holds
    the attributes is freed. The span types support no weakrefs of their
    own (and are not all GC-tracked, so gc.get_objects() misses them)."""


@pytest.fixture
def no_garbage():
    gc.collect()
    yield
    gc.collect()


def _cycle_freed(make):
    """make(attributes) returns a span whose attributes dict is attributes;
    the dict then gets the span itself and a Marker. True when, once dropped,
    gc.collect() frees the cycle."""
    attributes = {"plain": 1}
    span = make(attributes)
    marker = Marker()
    attributes["self"] = span
    attributes["marker"] = marker
    alive = weakref.ref(marker)
    del span, attributes, marker
    gc.collect()
    return alive() is None


def test_an_unstarted_c_span_in_a_cycle_with_its_attributes_is_collected(no_garbage):
    """Bug 7: _tigerops.Span had no GC support, so a span whose attributes
    dict holds the span was never freed."""
    assert _cycle_freed(lambda attrs: _tigerops.Span("cycle-c", attributes=attrs))


def test_a_span_from_tigerops_span_in_a_cycle_with_its_attributes_is_collected(no_garbage):
    def make(attrs):
        s = tigerops.span("cycle-py", attributes=attrs)
        with s:
            pass
        return s
    assert _cycle_freed(make)


def test_an_unstarted_span_of_the_package_type_in_a_cycle_is_collected(no_garbage):
    assert _cycle_freed(lambda attrs: tigerops.Span("cycle-pkg", tigerops.KIND_INTERNAL, attrs))


def test_a_user_subclass_instance_in_a_cycle_through_its_dict_is_collected(no_garbage):
    class MySpan(tigerops.Span):
        pass

    def make(attrs):
        s = MySpan("cycle-sub")
        s.me = s
        s.attrs = attrs
        return s
    assert _cycle_freed(make)


DROPPED_WHILE_ENTERED = """
import gc, _tigerops, tigerops
outer = tigerops.span("outer")
outer.__enter__()
inner = _tigerops.Span("inner")
inner.__enter__()
inner_id = inner.span_id
assert _tigerops.current_span().span_id == inner_id
del inner
gc.collect()
filler = [_tigerops.Span("filler-%d" % i).start() for i in range(64)]  # reuse the freed memory
current = _tigerops.current_span()
print("current-is-outer", current.span_id == outer.span_id)
with tigerops.span("next") as nxt:
    print("next-parent-is-outer", nxt.trace_id == outer.trace_id)
outer.__exit__(None, None, None)
print("after-outer-recording", _tigerops.current_span().is_recording())
"""


def test_a_span_handle_dropped_while_entered_restores_the_previous_current_span():
    """Bug 7: dropping an entered handle left the thread's current-span
    pointer on the freed span."""
    out = assert_clean_exit(isolated(DROPPED_WHILE_ENTERED, MALLOC_PERTURB_="165"), "dropped entered span")
    assert out.split() == ["current-is-outer", "True", "next-parent-is-outer", "True",
                           "after-outer-recording", "False"], out


BARE_FLASK_FREED = """
import gc, weakref, flask
gc.disable()
app = flask.Flask("bare")
app.route("/")(lambda: "ok")
assert app.test_client().get("/", buffered=True).status_code == 200
ref = weakref.ref(app)
del app
print("freed", ref() is None)
"""


def test_flask_itself_frees_a_dropped_app_without_the_cycle_collector():
    """The premise of the next test: without the agent, the last reference
    to an app going frees it at once."""
    out = assert_clean_exit(isolated(BARE_FLASK_FREED, preload=False), "bare Flask")
    assert out.split() == ["freed", "True"], out


@pytest.mark.parametrize("served", [0, 3])
def test_an_instrumented_app_is_freed_as_soon_as_it_is_dropped(no_garbage, served):
    """Bug 2: the middleware held the app's bound wsgi_app and
    request_context, so every app was in a cycle and lived until a full
    collection (a Celery task calling create_app() pinned an engine and a
    pooled connection per run)."""
    gc.disable()
    try:
        app = flask.Flask("dropped-%d" % served)
        app.route("/")(lambda: "ok")
        assert _flask.instrument_app(app) is not None
        client = app.test_client()
        for _ in range(served):
            assert client.get("/", buffered=True).status_code == 200
        del client
        ref = weakref.ref(app)
        del app
        assert ref() is None, "the app outlived its last reference: %r" % (gc.get_referrers(ref()),)
    finally:
        gc.enable()


# ---- leak check -----------------------------------------------------------------------

SPANS = 10_000
REQUESTS = 10_000
GROWTH_LIMIT = 256 * 1024  # bytes of Python memory; one object kept per iteration is ~1 MB


def _leak_app():
    app = flask.Flask("leaky")
    app.logger.disabled = True  # the failing route would log 1,000 tracebacks

    @app.route("/items/<int:n>")
    def items(n):
        tigerops.current_span().set_attribute("item", n)
        return {"n": n}

    @app.route("/fail")
    def fail():
        raise ValueError("expected failure")

    @app.route("/stream")
    def stream():
        return app.response_class(iter([b"a", b"b"]))

    assert _flask.instrument_app(app) is not None
    return app


def _environ(path):
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "q=1&token=secret",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "[::1]", "HTTP_USER_AGENT": "leak-check", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False}


PATHS = ["/items/%d" % i for i in range(8)] + ["/fail", "/stream", "/missing"]


def _spans(n, name, attributes):
    for i in range(n):
        with tigerops.span(name, attributes=attributes) as s:
            s.set_attribute("i", i)
            s.add_event("tick", attributes)
            with _tigerops.Span(name, tigerops.KIND_CLIENT):
                tigerops.current_span().set_attribute("nested", True)
        dropped = _tigerops.Span(name, attributes=attributes)
        dropped.start()
        del dropped  # ended by dealloc


def _requests(n, app, start_response):
    for i in range(n):
        body = app(_environ(PATHS[i % len(PATHS)]), start_response)
        for _ in body:
            pass
        body.close()


def test_spans_and_requests_leak_no_memory_and_no_references(receiver, no_garbage):
    app = _leak_app()
    middleware = app.extensions["tigerops"]
    seen = collections.Counter()

    def start_response(status, headers, exc_info=None):
        seen[status[:3]] += 1

    name = "leak-span"
    attributes = {"k": "v", "n": 1, "f": 1.5, "l": [1, 2]}
    inner = getattr(middleware, "__wrapped__", None)

    # warm up: Flask's and werkzeug's caches, the route cache, interned strings
    _spans(500, name, attributes)
    _requests(500, app, start_response)
    gc.collect()
    watched = {"app": app, "middleware": middleware, "start_response": start_response, "name": name,
               "attributes": attributes, "Span": _tigerops.Span, "tigerops.Span": tigerops.Span,
               "FlaskMiddleware": _tigerops.FlaskMiddleware, "view": app.view_functions["items"],
               "inner": inner}
    before_refs = {k: sys.getrefcount(v) for k, v in watched.items()}

    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.take_snapshot()
        _spans(SPANS, name, attributes)
        seen.clear()
        _requests(REQUESTS, app, start_response)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert sum(seen.values()) == REQUESTS and set(seen) == {"200", "404", "500"}, seen

    after_refs = {k: sys.getrefcount(v) for k, v in watched.items()}
    assert after_refs == before_refs

    growth = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in growth)
    top = "\n".join(str(stat) for stat in growth[:8])
    assert total < GROWTH_LIMIT, "Python memory grew by %d bytes over %d spans and %d requests:\n%s" % (
        total, SPANS, REQUESTS, top)
    assert _tigerops.flush(10000)
    receiver.reset()  # 40,000 spans the other tests need not search
