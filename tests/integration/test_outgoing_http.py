"""Two Flask services under the agent calling each other: one trace, the
backend's server span a child of the frontend's client span."""

from agent import agent_env, gunicorn, server_spans


def test_requests_and_httpx_propagate_one_trace(otlp):
    backend_env = agent_env(otlp, TIGEROPS_SERVICE_NAME="backend")
    with gunicorn("hello:app", backend_env, workers=1) as backend:
        front_env = agent_env(otlp, TIGEROPS_SERVICE_NAME="frontend", BACKEND_URL=backend.base)
        with gunicorn("frontend:app", front_env, workers=1) as front:
            status, body, _ = front.get("/via-requests")
            assert status == 200 and body == "backend said hello from-requests"
            status, body, _ = front.get("/via-httpx")
            assert status == 200 and body == "hello from-httpx"
            # Everything read below. The backend also has the readiness
            # probes' "GET /health" spans, which must not count for the
            # calls; the frontend's request spans end last (after their
            # CLIENT span), so they are waited for last.
            paths = {"/hello/from-requests", "/hello/from-httpx"}
            otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "backend" and s["kind"] == 2
                                and s["attributes"].get("url.path") in paths, count=2)
            otlp.wait_for_spans(lambda s: s["kind"] == 3, count=2)
            otlp.wait_for_spans(lambda s: s["name"].startswith("render "))
            spans = otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "frontend" and s["kind"] == 2
                                        and s["name"] in ("GET /via-requests", "GET /via-httpx"), count=2)
    for route, path in (("GET /via-requests", "/hello/from-requests"), ("GET /via-httpx", "/hello/from-httpx")):
        (front_root,) = server_spans(spans, route)
        trace = [s for s in spans if s["traceId"] == front_root["traceId"]]
        client = [s for s in trace if s["kind"] == 3]
        assert len(client) == 1, [s["name"] for s in trace]
        client = client[0]
        back = [s for s in trace if s["resource"]["service.name"] == "backend"]
        assert len(back) == 1, "the backend continued the frontend's trace"
        assert client["parentSpanId"] == front_root["spanId"]
        assert back[0]["parentSpanId"] == client["spanId"]
        assert back[0]["attributes"]["url.path"] == path
        a = client["attributes"]
        assert client["name"] == "GET"
        assert a["http.request.method"] == "GET"
        assert a["http.response.status_code"] == 200
        assert a["server.address"] == "127.0.0.1"
    client = [s for s in spans if s["kind"] == 3 and "from-requests" in s["attributes"]["url.full"]][0]
    url = client["attributes"]["url.full"]
    assert "hunter2" not in url and "alice" not in url and "secret-sig" not in url
    assert "page=2" in url and "sig=REDACTED" in url
    render = [s for s in spans if s["name"].startswith("render ")][0]
    (via_requests,) = server_spans(spans, "GET /via-requests")
    assert render["parentSpanId"] == via_requests["spanId"]
    for raw in otlp.bodies():
        assert b"hunter2" not in raw and b"secret-sig" not in raw


def test_connection_errors_are_client_error_spans(otlp):
    with gunicorn("frontend:app", agent_env(otlp), workers=1) as front:
        assert front.get("/unreachable")[0] == 502
        spans = otlp.wait_for_spans(lambda s: s["kind"] == 3)
    client = [s for s in spans if s["kind"] == 3][0]
    assert client["status"]["code"] == 2
    assert client["attributes"]["error.type"] == "ConnectionError"
    assert "http.response.status_code" not in client["attributes"]
