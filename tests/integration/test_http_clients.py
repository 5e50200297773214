"""Outgoing HTTP through urllib3 (directly), urllib.request and aiohttp:
one CLIENT span per call under the request span, the traceparent injected
so the backend's SERVER span is its child; requests (on urllib3) still one
span."""
import pytest

from agent import agent_env, gunicorn, server_spans
from otlp import OtlpReceiver

CALLS = [
    ("GET /via-urllib3", "/hello/from-urllib3", 200),
    ("GET /via-urllib3-pool", "/hello/from-pool", 200),
    ("GET /via-urllib-request", "/hello/from-urllib", 200),
    ("GET /urllib-request-404", "/nowhere", 404),
    ("GET /via-aiohttp", "/hello/from-aiohttp", 200),
    ("GET /via-requests", "/hello/from-requests", 200),
]


@pytest.fixture(scope="module")
def otlp_module():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def two_services(otlp_module):
    otlp = otlp_module
    backend_env = agent_env(otlp, TIGEROPS_SERVICE_NAME="backend")
    with gunicorn("hello:app", backend_env, workers=1) as backend:
        front_env = agent_env(otlp, TIGEROPS_SERVICE_NAME="frontend", BACKEND_URL=backend.base)
        with gunicorn("http_clients:app", front_env, workers=1) as front:
            for route, _, _ in CALLS:
                status, body, _ = front.get(route.split(" ", 1)[1])
                assert status == 200, (route, body)
            # Everything the tests read: the backend's SERVER spans, the
            # frontend's CLIENT spans and the frontend's SERVER spans. The
            # last end after the response went out (after its CLIENT span),
            # so they come last and the spans returned then hold all three.
            otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "backend"
                                and s["kind"] == 2 and s["name"] != "GET /health", count=len(CALLS))
            otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "frontend"
                                and s["kind"] == 3, count=len(CALLS))
            routes = {route for route, _, _ in CALLS}
            spans = otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "frontend"
                                        and s["kind"] == 2 and s["name"] in routes, count=len(CALLS))
            yield otlp, front, spans


@pytest.mark.parametrize("route,path,status", CALLS, ids=[c[0].split("/")[1] for c in CALLS])
def test_one_client_span_continued_by_the_backend(two_services, route, path, status):
    _, _, spans = two_services
    (front_root,) = [s for s in server_spans(spans, route) if s["resource"]["service.name"] == "frontend"]
    trace = [s for s in spans if s["traceId"] == front_root["traceId"]]
    clients = [s for s in trace if s["kind"] == 3]
    assert len(clients) == 1, [(s["name"], s["attributes"].get("url.full")) for s in trace]
    (client,) = clients
    assert client["parentSpanId"] == front_root["spanId"]
    back = [s for s in trace if s["resource"]["service.name"] == "backend"]
    assert len(back) == 1, "the backend continued the frontend's trace"
    assert back[0]["parentSpanId"] == client["spanId"]
    assert back[0]["attributes"]["url.path"] == path
    a = client["attributes"]
    assert client["name"] == "GET"
    assert a["http.request.method"] == "GET"
    assert a["http.response.status_code"] == status
    assert a["server.address"] == "127.0.0.1"
    assert a["url.full"].endswith(path) or path + "?" in a["url.full"]
    if status >= 400:
        assert client["status"]["code"] == 2 and a["error.type"] == str(status)


def test_urllib3_url_is_redacted(two_services):
    otlp, _, spans = two_services
    (client,) = [s for s in spans if s["kind"] == 3 and "from-urllib3" in s["attributes"].get("url.full", "")]
    url = client["attributes"]["url.full"]
    assert "hunter2" not in url and "alice" not in url and "secret-sig" not in url
    assert "page=2" in url and "sig=REDACTED" in url
    for raw in otlp.bodies():
        assert b"hunter2" not in raw and b"secret-sig" not in raw


def test_connection_errors_are_client_error_spans(two_services):
    otlp, front, _ = two_services
    status, body, _ = front.get("/unreachable")
    assert status == 502 and body == "NewConnectionError,URLError,ClientConnectorError", body
    spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /unreachable")
    (root,) = server_spans(spans, "GET /unreachable")
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"] and s["kind"] == 3, count=3)
    clients = [s for s in spans if s["traceId"] == root["traceId"] and s["kind"] == 3]
    assert len(clients) == 3
    for c in clients:
        assert c["parentSpanId"] == root["spanId"]
        assert c["status"]["code"] == 2
        assert "http.response.status_code" not in c["attributes"]
    assert sorted(c["attributes"]["error.type"] for c in clients) == \
        ["ClientConnectorError", "ConnectionRefusedError", "NewConnectionError"]


def test_concurrent_aiohttp_requests_are_siblings(two_services):
    otlp, front, _ = two_services
    status, body, _ = front.get("/aiohttp-gather")
    assert (status, body) == (200, "hello g1,hello g2,hello g3")
    spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /aiohttp-gather")
    (root,) = server_spans(spans, "GET /aiohttp-gather")
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"] and s["kind"] in (2, 3), count=7)
    trace = [s for s in spans if s["traceId"] == root["traceId"]]
    clients = [s for s in trace if s["kind"] == 3]
    assert len(clients) == 3
    assert all(c["parentSpanId"] == root["spanId"] for c in clients)
    backs = [s for s in trace if s["resource"]["service.name"] == "backend"]
    assert sorted(b["parentSpanId"] for b in backs) == sorted(c["spanId"] for c in clients)
    for c in clients:
        (b,) = [b for b in backs if b["parentSpanId"] == c["spanId"]]
        assert c["attributes"]["url.full"].endswith(b["attributes"]["url.path"])
