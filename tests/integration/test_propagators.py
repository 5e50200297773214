"""OTEL_PROPAGATORS end to end: a request arrives under gunicorn with
tracecontext / b3 / b3multi headers and baggage; every HTTP client and a
Celery task pass on what the configuration says to a downstream server that
records the headers it received, and the spans nest."""
import http.server
import threading
import time

import pytest

from agent import agent_env, gunicorn, server_spans
from test_celery import Worker

CLIENTS = ["requests", "httpx", "httpx-async", "urllib3", "urllib-request", "aiohttp"]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
BAGGAGE = "tenant=acme,userId=alice%20smith;private"
PROPAGATION = ("traceparent", "tracestate", "baggage", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled",
               "x-b3-flags")


class Downstream:
    """An HTTP server (no agent) keeping the propagation headers of every
    request by path."""

    def __init__(self):
        self.seen = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.seen[self.path] = {k.lower(): v for k, v in self.headers.items()
                                             if k.lower() in PROPAGATION}
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def headers(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if path in self.seen:
                    return self.seen[path]
            time.sleep(0.05)
        raise AssertionError("%s never reached the downstream server; got %s" % (path, sorted(self.seen)))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def downstream():
    d = Downstream()
    yield d
    d.close()


def run_calls(otlp, downstream, incoming, clients=CLIENTS, **settings):
    """Each client called once from a request carrying incoming; the spans."""
    env = agent_env(otlp, DOWNSTREAM_URL=downstream.base, TIGEROPS_SERVICE_NAME="front", **settings)
    with gunicorn("propagating:app", env, workers=1) as front:
        for client in clients:
            status, body, _ = front.get("/call/" + client, headers=incoming)
            assert (status, body) == (200, "ok"), (client, body, front.output())
        # The CLIENT spans and the request spans that enclose them may leave
        # in different batches: wait for both kinds the tests read.
        otlp.wait_for_spans(lambda s: s["kind"] == 3, count=len(clients))
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /call/<client>", count=len(clients))
        log = front.output()
    return spans, log


def client_of(spans, client):
    """(server span of /call/client, its one CLIENT span)."""
    (server,) = [s for s in server_spans(spans, "GET /call/<client>")
                 if s["attributes"]["url.path"] == "/call/" + client]
    (span,) = [s for s in spans if s["kind"] == 3 and s.get("parentSpanId") == server["spanId"]]
    assert span["traceId"] == server["traceId"]
    return server, span


def test_default_passes_traceparent_and_baggage_to_every_client(otlp, downstream):
    spans, log = run_calls(otlp, downstream, {"traceparent": "00-%s-%s-01" % (TRACE, PARENT),
                                              "tracestate": "vendor=opaque", "baggage": BAGGAGE})
    for client in CLIENTS:
        server, span = client_of(spans, client)
        assert server["traceId"] == TRACE and server["parentSpanId"] == PARENT
        got = downstream.headers("/" + client)
        assert got["traceparent"] == "00-%s-%s-01" % (TRACE, span["spanId"]), client
        assert got["tracestate"] == "vendor=opaque", client
        assert got["baggage"] == BAGGAGE, client
        assert not {"b3", "x-b3-traceid"} & set(got), client
    assert "baggage" not in log


def test_baggage_without_a_trace_context_still_passes_on(otlp, downstream):
    run_calls(otlp, downstream, {"baggage": "k=v"}, clients=["requests"])
    got = downstream.headers("/requests")
    assert got["baggage"] == "k=v"
    assert got["traceparent"].startswith("00-")


@pytest.mark.parametrize("metrics", ["otlp", "none"])
def test_an_unsampled_request_passes_its_decision_on_in_the_view_and_its_streamed_body(otlp, downstream,
                                                                                       metrics):
    """The caller's "not sampled" reaches the next hop, both from the view
    and from a body the server iterates after the view returned. With the
    HTTP server metrics off, such a request runs without a request object
    of ours (middleware.c run_unrecorded): only its context is current. A
    call that saw no context, or only a recording span (the clients' test
    before), passes nothing on, and the next hop would then decide for
    itself; so does one without the agent."""
    env = agent_env(otlp, DOWNSTREAM_URL=downstream.base, OTEL_METRICS_EXPORTER=metrics)
    incoming = {"traceparent": "00-%s-%s-00" % (TRACE, PARENT), "baggage": "k=v"}
    with gunicorn("propagating:app", env, workers=1) as front:
        for path, want in (("/call/requests", "ok"), ("/stream/requests", "called ok"),
                           ("/stream/httpx", "called ok")):
            status, body, _ = front.get(path, headers=incoming)
            assert (status, body) == (200, want), (path, body, front.output())
            got = downstream.headers(path.replace("/call", ""))
            assert "traceparent" in got, (path, got)
            version, trace, span_id, flags = got["traceparent"].split("-")
            assert (trace, flags) == (TRACE, "00"), (path, got)
            assert span_id != PARENT, "the client's own span id"
            assert got["baggage"] == "k=v", (path, got)


def test_malformed_baggage_is_dropped_with_one_warning(otlp, downstream):
    huge = ",".join("k%d=v" % i for i in range(181))
    spans, log = run_calls(otlp, downstream, {"traceparent": "00-%s-%s-01" % (TRACE, PARENT), "baggage": huge},
                           clients=["requests", "httpx"])
    for client in ("requests", "httpx"):
        got = downstream.headers("/" + client)
        assert "baggage" not in got
        assert got["traceparent"].split("-")[1] == TRACE, "the trace context still passes"
    assert log.count("baggage header was ignored") == 1, log


def test_b3multi_first_extracts_64_bit_ids_and_injects_both(otlp, downstream):
    incoming = {"X-B3-TraceId": "a3ce929d0e0e4736", "X-B3-SpanId": PARENT, "X-B3-Sampled": "1",
                "traceparent": "00-%s-1111111111111111-01" % TRACE}
    spans, _ = run_calls(otlp, downstream, incoming, clients=["requests", "aiohttp", "urllib-request"],
                         OTEL_PROPAGATORS="b3multi,tracecontext")
    for client in ("requests", "aiohttp", "urllib-request"):
        server, span = client_of(spans, client)
        assert server["traceId"] == "0000000000000000a3ce929d0e0e4736", "b3multi came first, padded"
        assert server["parentSpanId"] == PARENT
        got = downstream.headers("/" + client)
        assert got["x-b3-traceid"] == server["traceId"]
        assert got["x-b3-spanid"] == span["spanId"]
        assert got["x-b3-sampled"] == "1"
        assert got["traceparent"] == "00-%s-%s-01" % (server["traceId"], span["spanId"])
        assert "b3" not in got and "baggage" not in got


def test_b3_single_header_in_and_out(otlp, downstream):
    incoming = {"b3": "%s-%s-1" % (TRACE, PARENT)}
    spans, _ = run_calls(otlp, downstream, incoming, clients=["httpx", "urllib3"], OTEL_PROPAGATORS="b3")
    for client in ("httpx", "urllib3"):
        server, span = client_of(spans, client)
        assert server["traceId"] == TRACE and server["parentSpanId"] == PARENT
        got = downstream.headers("/" + client)
        assert got == {"b3": "%s-%s-1" % (TRACE, span["spanId"])}, got


def test_b3_without_a_sampling_decision_lets_the_sampler_decide(otlp, downstream):
    spans, _ = run_calls(otlp, downstream, {"b3": "%s-%s" % (TRACE, PARENT)}, clients=["requests"],
                         OTEL_PROPAGATORS="b3", OTEL_TRACES_SAMPLER="parentbased_always_on")
    server, span = client_of(spans, "requests")
    assert server["traceId"] == TRACE
    assert downstream.headers("/requests")["b3"].endswith("-1")


def test_none_propagates_nothing(otlp, downstream):
    spans, _ = run_calls(otlp, downstream, {"traceparent": "00-%s-%s-01" % (TRACE, PARENT), "baggage": "k=v"},
                         clients=["requests"], OTEL_PROPAGATORS="none")
    server, _ = client_of(spans, "requests")
    assert server["traceId"] != TRACE and not server.get("parentSpanId")
    assert downstream.headers("/requests") == {}


@pytest.mark.parametrize("propagators", ["tracecontext,baggage", "b3multi,baggage"])
def test_celery_messages_carry_the_context_and_baggage(otlp, downstream, redis_server, propagators):
    settings = dict(REDIS_URL=redis_server.url, DOWNSTREAM_URL=downstream.base, OTEL_PROPAGATORS=propagators)
    worker = Worker(agent_env(otlp, preload=False, TIGEROPS_SERVICE_NAME="worker", **settings),
                    pool="solo", app="propagating_tasks", extra=("-Q", "propagating"))
    try:
        env = agent_env(otlp, TIGEROPS_SERVICE_NAME="web", **settings)
        with gunicorn("propagating:app", env, workers=1) as web:
            incoming = {"traceparent": "00-%s-%s-01" % (TRACE, PARENT)}
            if propagators.startswith("b3multi"):
                incoming = {"X-B3-TraceId": TRACE, "X-B3-SpanId": PARENT, "X-B3-Sampled": "1"}
            status, _, _ = web.get("/celery", headers=dict(incoming, baggage=BAGGAGE))
            assert status == 200
            got = downstream.headers("/celery")
            # Each process exports on its own schedule: wait for every span read below.
            otlp.wait_for_spans(lambda s: s["kind"] == 3 and s["resource"]["service.name"] == "worker")
            otlp.wait_for_spans(lambda s: s["name"] == "GET /celery")
            spans = otlp.wait_for_spans(lambda s: s["name"] == "process propagating_tasks.forward")
    finally:
        worker.stop()
    trace = [s for s in spans if s["traceId"] == TRACE]
    names = {s["name"]: s for s in trace}
    root, publish = names["GET /celery"], names["publish propagating_tasks.forward"]
    process = names["process propagating_tasks.forward"]
    client = [s for s in trace if s["kind"] == 3 and s["resource"]["service.name"] == "worker"][0]
    assert root["parentSpanId"] == PARENT
    assert publish["parentSpanId"] == root["spanId"]
    assert process["parentSpanId"] == publish["spanId"], "the worker continued the message's context"
    assert client["parentSpanId"] == process["spanId"]
    assert got["baggage"] == BAGGAGE, "baggage crossed the broker and the worker passed it on"
    if propagators.startswith("b3multi"):
        assert got["x-b3-traceid"] == TRACE and got["x-b3-spanid"] == client["spanId"]
        assert "traceparent" not in got
    else:
        assert got["traceparent"] == "00-%s-%s-01" % (TRACE, client["spanId"])
