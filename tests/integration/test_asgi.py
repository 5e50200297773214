"""A Flask app served as ASGI through asgiref's WsgiToAsgi, under uvicorn and
under hypercorn: one SERVER span per request with the attributes gunicorn's
gives, and concurrent requests (sync views, async views, streamed
responses) each a whole trace with nothing crossing."""
import concurrent.futures

import pytest

from agent import PYTHON, Server, agent_env, free_port, gunicorn, server_spans

N = 50
HEADERS = {"User-Agent": "tigerops-test/1.0", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def uvicorn(app, env):
    port = free_port()
    return Server([PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--interface", "asgi3",
                   "--no-access-log", app], env, port)


def hypercorn(app, env):
    port = free_port()
    return Server([PYTHON, "-m", "hypercorn", "-b", "127.0.0.1:%d" % port, app], env, port)


SERVERS = {"uvicorn": uvicorn, "hypercorn": hypercorn}


def request_span(otlp, server, path):
    status, body, _ = server.get(path, headers=HEADERS)
    spans = otlp.wait_for_spans(lambda s: s["kind"] == 2 and s["attributes"].get("url.path") == path.split("?")[0])
    found = [s for s in server_spans(spans) if s["attributes"].get("url.path") == path.split("?")[0]]
    assert len(found) == 1, [s["name"] for s in spans]
    return status, found[0]


def comparable(span, port):
    """The attributes, with those that name the listening port by value."""
    a = dict(span["attributes"])
    assert a.pop("server.port") == port
    return a


@pytest.mark.parametrize("serve", sorted(SERVERS))
def test_one_server_span_per_request_with_gunicorns_attributes(otlp, serve):
    paths = ("/items/7?verbose=1", "/async/8?x=1", "/fail", "/no/such/page")
    with gunicorn("asgiapp:app", agent_env(otlp), workers=1) as server:
        wsgi = {p: request_span(otlp, server, p) for p in paths}
        wsgi_port = server.port
    otlp.reset()
    with SERVERS[serve]("asgiapp:asgi", agent_env(otlp)) as server:
        asgi = {p: request_span(otlp, server, p) for p in paths}
        asgi_port = server.port
        spans = otlp.wait_for_spans(lambda s: s["name"].startswith("inner-"), count=2)
    for p in paths:
        (ws, w), (as_, a) = wsgi[p], asgi[p]
        assert ws == as_, p
        assert a["name"] == w["name"] and a["kind"] == w["kind"] == 2, p
        assert comparable(a, asgi_port) == comparable(w, wsgi_port), p
        assert a["status"] == w["status"], p
        assert a["traceId"] == HEADERS["traceparent"][3:35] and a["parentSpanId"] == "00f067aa0ba902b7"
        assert [e["name"] for e in a["events"]] == [e["name"] for e in w["events"]], p
    assert asgi["/fail"][1]["status"]["code"] == 2
    assert asgi["/items/7?verbose=1"][1]["attributes"]["http.route"] == "/items/<int:i>"
    assert asgi["/items/7?verbose=1"][1]["attributes"]["user_agent.original"] == "tigerops-test/1.0"
    for i, p in ((7, "/items/7?verbose=1"), (8, "/async/8?x=1")):
        root = asgi[p][1]
        by_name = {s["name"]: s for s in spans if s["traceId"] == root["traceId"] and s["kind"] == 1}
        assert by_name["outer-%d" % i]["parentSpanId"] == root["spanId"], p
        assert by_name["inner-%d" % i]["parentSpanId"] == by_name["outer-%d" % i]["spanId"], p


def get_all(server, paths):
    with concurrent.futures.ThreadPoolExecutor(25) as pool:
        return list(pool.map(lambda p: server.get(p, timeout=60), paths))


@pytest.mark.parametrize("async_views", (True, False), ids=("async-views", "sync-only"))
@pytest.mark.parametrize("serve", sorted(SERVERS))
def test_concurrent_requests_do_not_cross(otlp, serve, async_views):
    paths = ["/items/%d" % i if i % 3 == 0 or (i % 3 == 1 and not async_views) else
             "/async/%d" % i if i % 3 == 1 else "/stream/%d" % (i % 4 + 1) for i in range(N)]
    env = agent_env(otlp, ASYNC_VIEWS="1" if async_views else "0")
    with SERVERS[serve]("asgiapp:asgi", env) as server:
        answers = get_all(server, paths)
        assert [a[0] for a in answers] == [200] * N
        spans = otlp.wait_for_spans(lambda s: s["kind"] == 2 and s["name"] != "GET /health", count=N, timeout=30)
    roots = [s for s in server_spans(spans) if s["name"] != "GET /health"]
    assert len(roots) == N and len({r["traceId"] for r in roots}) == N, "one trace per request"
    assert not [r for r in roots if r["parentSpanId"]]
    spans = otlp.spans()
    for root in roots:
        path = root["attributes"]["url.path"]
        trace = [s for s in spans if s["traceId"] == root["traceId"]]
        by_name = {s["name"]: s for s in trace}
        n = int(path.rsplit("/", 1)[1])
        if path.startswith("/stream/"):
            assert sorted(by_name) == sorted([root["name"]] + ["chunk-%d" % k for k in range(n)]), path
            assert all(s["parentSpanId"] == root["spanId"] for s in trace if s["spanId"] != root["spanId"]), path
            continue
        assert sorted(by_name) == sorted([root["name"], "outer-%d" % n, "inner-%d" % n]), (path, sorted(by_name))
        assert by_name["outer-%d" % n]["parentSpanId"] == root["spanId"], path
        assert by_name["inner-%d" % n]["parentSpanId"] == by_name["outer-%d" % n]["spanId"], path
