"""httpx.AsyncClient in Flask async views: a CLIENT span per request with
the W3C context injected, so the called service continues the trace; calls
gathered in one task are siblings, never each other's parent."""
import concurrent.futures

from agent import agent_env, gunicorn, server_spans

N = 10


def test_async_client_calls_propagate_one_trace(otlp):
    with gunicorn("hello:app", agent_env(otlp, TIGEROPS_SERVICE_NAME="backend"), workers=1) as backend:
        env = agent_env(otlp, TIGEROPS_SERVICE_NAME="frontend", BACKEND_URL=backend.base)
        with gunicorn("asyncfront:app", env, workers=1, extra=("-k", "gthread", "--threads", "4")) as front:
            with concurrent.futures.ThreadPoolExecutor(5) as pool:
                answers = list(pool.map(lambda i: front.get("/call/%d" % i), range(N)))
            for i, (status, body, _) in enumerate(answers):
                assert status == 200 and body == "hello one-%d|hello a-%d|hello b-%d" % (i, i, i), (
                    status, body, front.output())
            spans = otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "backend", count=3 * N)
            spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /call/<int:i>", count=N)
    roots = server_spans(spans, "GET /call/<int:i>")
    assert len(roots) == N and len({r["traceId"] for r in roots}) == N
    for root in roots:
        i = int(root["attributes"]["url.path"].rsplit("/", 1)[1])
        trace = [s for s in spans if s["traceId"] == root["traceId"]]
        assert len(trace) == 9, (i, sorted(s["name"] for s in trace))
        by_name = {s["name"]: s for s in trace if s["kind"] != 3 and s["resource"]["service.name"] == "frontend"}
        outer, inner = by_name["outer-%d" % i], by_name["inner-%d" % i]
        assert outer["parentSpanId"] == root["spanId"]
        assert inner["parentSpanId"] == outer["spanId"]
        clients = {s["attributes"]["url.full"].split("/hello/")[1].split("?")[0]: s for s in trace if s["kind"] == 3}
        assert sorted(clients) == sorted(["one-%d" % i, "a-%d" % i, "b-%d" % i]), sorted(clients)
        assert clients["one-%d" % i]["parentSpanId"] == outer["spanId"]
        assert clients["a-%d" % i]["parentSpanId"] == inner["spanId"], "gathered calls are siblings"
        assert clients["b-%d" % i]["parentSpanId"] == inner["spanId"], "gathered calls are siblings"
        for word, client in clients.items():
            a = client["attributes"]
            assert client["name"] == "GET" and client["resource"]["service.name"] == "frontend"
            assert a["http.request.method"] == "GET"
            assert a["http.response.status_code"] == 200
            assert a["server.address"] == "127.0.0.1" and a["server.port"] == backend.port
            assert client["status"]["code"] == 0
            (back,) = [s for s in trace if s["resource"]["service.name"] == "backend"
                       and s["attributes"]["url.path"] == "/hello/" + word]
            assert back["kind"] == 2 and back["parentSpanId"] == client["spanId"], word
            assert int(client["startTimeUnixNano"]) <= int(back["startTimeUnixNano"])
        assert "sig=REDACTED" in clients["one-%d" % i]["attributes"]["url.full"]
    for raw in otlp.bodies():
        assert b"secret-sig" not in raw


def test_async_client_error_statuses_and_connection_errors(otlp):
    with gunicorn("hello:app", agent_env(otlp, TIGEROPS_SERVICE_NAME="backend"), workers=1) as backend:
        env = agent_env(otlp, TIGEROPS_SERVICE_NAME="frontend", BACKEND_URL=backend.base)
        with gunicorn("asyncfront:app", env, workers=1, extra=("-k", "gthread", "--threads", "2")) as front:
            assert front.get("/missing")[:2] == (200, "backend answered 404")
            assert front.get("/unreachable")[0] == 502
            spans = otlp.wait_for_spans(lambda s: s["kind"] == 3, count=2)
            spans = otlp.wait_for_spans(lambda s: s["name"] in ("GET /missing", "GET /unreachable"), count=2)
    (missing_root,) = server_spans(spans, "GET /missing")
    (unreachable_root,) = server_spans(spans, "GET /unreachable")
    (not_found,) = [s for s in spans if s["kind"] == 3 and s["traceId"] == missing_root["traceId"]]
    assert not_found["parentSpanId"] == missing_root["spanId"]
    assert not_found["attributes"]["http.response.status_code"] == 404
    assert not_found["attributes"]["error.type"] == "404"
    assert not_found["status"]["code"] == 2
    (refused,) = [s for s in spans if s["kind"] == 3 and s["traceId"] == unreachable_root["traceId"]]
    assert refused["parentSpanId"] == unreachable_root["spanId"]
    assert refused["status"]["code"] == 2
    assert refused["attributes"]["error.type"] == "ConnectError"
    assert "http.response.status_code" not in refused["attributes"]


def test_async_client_gathered_in_a_sync_view_under_thread_locals(otlp):
    with gunicorn("hello:app", agent_env(otlp, TIGEROPS_SERVICE_NAME="backend"), workers=1) as backend:
        env = agent_env(otlp, TIGEROPS_SERVICE_NAME="frontend", BACKEND_URL=backend.base)
        with gunicorn("frontend:app", env, workers=1) as front:
            assert front.get("/via-httpx-async")[:2] == (200, "hello async-a|hello async-b")
            spans = otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "backend", count=2)
            spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /via-httpx-async")
    (root,) = server_spans(spans, "GET /via-httpx-async")
    trace = [s for s in spans if s["traceId"] == root["traceId"]]
    clients = [s for s in trace if s["kind"] == 3]
    assert len(clients) == 2 and len(trace) == 5, [s["name"] for s in trace]
    for client in clients:
        assert client["parentSpanId"] == root["spanId"], "concurrent calls are siblings, not nested"
        word = client["attributes"]["url.full"].rsplit("/", 1)[1]
        (back,) = [s for s in trace if s["resource"]["service.name"] == "backend"
                   and s["attributes"]["url.path"] == "/hello/" + word]
        assert back["parentSpanId"] == client["spanId"]
