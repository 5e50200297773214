"""OTLP/gRPC export (OTEL_EXPORTER_OTLP_PROTOCOL=grpc) against a real gRPC
server (@grpc/grpc-js in tests/receiver, decoding with the official OTLP
schema): what arrives equals what OTLP/HTTP delivers, retryable statuses are
retried, the others dropped with one log line, and a dead gRPC collector
costs the app nothing."""
import os
import signal
import statistics
import subprocess
import time

import pytest

from agent import PYTHON, agent_env, gunicorn, server_spans
from util import HangingCollector
from grpc_receiver import INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAUTHENTICATED, UNAVAILABLE, GrpcReceiver

GRPC_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = "00-%s-%s-01" % (TRACE_ID, PARENT_ID)

REQUEST = ("import hello, tigerops; c = hello.app.test_client()\n"
           "for i in range({n}):\n    c.get('/hello/c%d' % i)\n"
           "tigerops.flush(15000)\n")


@pytest.fixture
def grpc_otlp():
    with GrpcReceiver() as receiver:
        yield receiver


def grpc_env(receiver, **extra):
    return agent_env(None, OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
                     **extra)


def run_app(env, n=1, timeout=60):
    r = subprocess.run([PYTHON, "-c", REQUEST.format(n=n)], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


# What differs between two runs of the same request, whatever the transport
# (each gunicorn listens on a port of its own).
VARYING = {"client.port", "network.peer.port", "server.port", "process.pid", "service.instance.id"}


def comparable(span):
    s = {k: v for k, v in span.items() if k not in ("spanId", "startTimeUnixNano", "endTimeUnixNano")}
    s["attributes"] = {k: v for k, v in span["attributes"].items() if k not in VARYING}
    s["resource"] = {k: v for k, v in span["resource"].items() if k not in VARYING}
    return s


def gunicorn_trace(env, receiver):
    with gunicorn("hello:app", env, workers=2) as web:
        status, body, _ = web.get("/hello/grpc?x=1", headers={"traceparent": TRACEPARENT, "user-agent": "t/1"})
        assert (status, body) == (200, "hello grpc")
        spans = receiver.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>")
        web.stop()
        return server_spans(spans, "GET /hello/<name>"), web.output()


def test_gunicorn_spans_over_grpc_equal_the_http_ones(grpc_otlp, otlp):
    via_grpc, out = gunicorn_trace(grpc_env(grpc_otlp, TIGEROPS_SERVICE_NAME="svc"), grpc_otlp)
    via_http, _ = gunicorn_trace(agent_env(otlp, TIGEROPS_SERVICE_NAME="svc"), otlp)
    assert len(via_grpc) == len(via_http) == 1
    span = via_grpc[0]
    assert span["traceId"] == TRACE_ID and span["parentSpanId"] == PARENT_ID
    assert span["name"] == "GET /hello/<name>" and span["attributes"]["http.route"] == "/hello/<name>"
    assert len(span["spanId"]) == 16 and span["spanId"] != "0" * 16
    assert comparable(span) == comparable(via_http[0])
    assert len(span["attributes"]) >= 10 and span["resource"]["service.name"] == "svc"
    reqs = grpc_otlp.grpc_requests()
    assert reqs and all(r["decoded"] and r["grpcStatus"] == 0 for r in reqs)
    assert otlp.requests()[0]["path"] == "/v1/traces"
    # The agent's own lines only: gunicorn 23 logs "[ERROR] Worker ... was sent
    # SIGTERM!" itself when a worker is slow to stop on a loaded machine.
    agent_lines = [line for line in out.splitlines() if line.startswith("tigerops[")]
    assert not [line for line in agent_lines if ": error: " in line or ": warning: " in line], out


def test_headers_and_gzip_travel_as_grpc_metadata(grpc_otlp):
    env = grpc_env(grpc_otlp, TIGEROPS_API_KEY="sk-grpc-1", OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme",
                   OTEL_EXPORTER_OTLP_COMPRESSION="gzip")
    r = run_app(env, n=20)
    grpc_otlp.wait_for_spans(count=20)
    req = grpc_otlp.grpc_requests()[0]
    assert req["headers"]["authorization"] == "Bearer sk-grpc-1" and req["headers"]["x-tenant"] == "acme"
    # content-length is the HTTP/2 body: the 5-byte prefix and the gzip'ed message
    assert int(req["headers"]["content-length"]) < req["size"] / 2, req
    assert "sk-grpc-1" not in r.stderr


def test_unavailable_is_retried_then_delivered_once(grpc_otlp):
    grpc_otlp.set_grpc_mode(status=UNAVAILABLE, message="collector restarting", fail_count=2)
    env = grpc_env(grpc_otlp, TIGEROPS_LOG_LEVEL="debug")
    t0 = time.monotonic()
    r = run_app(env, n=3)
    spans = grpc_otlp.wait_for_spans(count=3, timeout=15)
    assert time.monotonic() - t0 < 12
    assert [q["grpcStatus"] for q in grpc_otlp.grpc_requests()] == [UNAVAILABLE, UNAVAILABLE, 0]
    assert len(spans) == 3 and len({s["spanId"] for s in spans}) == 3, "delivered once"
    assert r.stderr.count("retrying in") == 2, r.stderr
    assert "dropped" not in r.stderr


def test_resource_exhausted_with_retry_info_waits_the_delay_then_delivers(grpc_otlp):
    grpc_otlp.set_grpc_mode(status=RESOURCE_EXHAUSTED, message="slow down", retry_info_ms=1200, fail_count=1)
    env = grpc_env(grpc_otlp, TIGEROPS_LOG_LEVEL="debug")
    r = run_app(env, n=1)
    grpc_otlp.wait_for_spans(count=1, timeout=15)
    reqs = grpc_otlp.grpc_requests()
    assert [q["grpcStatus"] for q in reqs] == [RESOURCE_EXHAUSTED, 0]
    assert "retrying in 1200 ms" in r.stderr, "the server's RetryInfo delay, not our backoff"
    assert reqs[1]["time"] - reqs[0]["time"] >= 1100


@pytest.mark.parametrize("status,name", [(RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"),
                                         (INVALID_ARGUMENT, "INVALID_ARGUMENT")])
def test_non_retryable_status_drops_the_batch_with_one_log_line(grpc_otlp, status, name):
    grpc_otlp.set_grpc_mode(status=status, message="no\x1b[31m thanks")
    code = ("import hello, tigerops; c = hello.app.test_client()\n"
            "for i in range(3):\n    c.get('/hello/c%d' % i); tigerops.flush(5000)\n"
            "import _tigerops; print(_tigerops.stats()['spans_failed'])")
    env = grpc_env(grpc_otlp)
    r = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [q["grpcStatus"] for q in grpc_otlp.grpc_requests()] == [status] * 3, "no retry: one call per flush"
    lines = [l for l in r.stderr.splitlines() if "gRPC status %d %s" % (status, name) in l]
    assert len(lines) == 1, r.stderr
    assert "no?[31m thanks" in lines[0] and "\x1b" not in r.stderr
    assert int(r.stdout.split()[-1]) == 3
    assert grpc_otlp.spans() == []


def test_unauthenticated_names_the_credential_settings_once(grpc_otlp):
    grpc_otlp.set_grpc_mode(status=UNAUTHENTICATED, message="bad key")
    env = grpc_env(grpc_otlp, TIGEROPS_API_KEY="sk-wrong-9")
    r = run_app(env, n=2)
    grpc_otlp.wait_for_requests()
    lines = [l for l in r.stderr.splitlines() if "refused with gRPC status 16 UNAUTHENTICATED" in l]
    assert len(lines) == 1, r.stderr
    assert "TIGEROPS_API_KEY" in lines[0] and "OTEL_EXPORTER_OTLP_HEADERS" in lines[0] and "bad key" in lines[0]
    assert "sk-wrong-9" not in r.stderr


def test_partial_success_is_logged_once(grpc_otlp):
    grpc_otlp.set_grpc_mode(partial_rejected=2, partial_message="span too big")
    code = ("import hello, tigerops; c = hello.app.test_client()\n"
            "for i in range(3):\n    c.get('/hello/c%d' % i); tigerops.flush(5000)\n")
    r = subprocess.run([PYTHON, "-c", code], env=grpc_env(grpc_otlp), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(grpc_otlp.grpc_requests()) == 3
    lines = [l for l in r.stderr.splitlines() if "rejected 2 of 1 spans" in l]
    assert len(lines) == 1 and '"span too big"' in lines[0], r.stderr


def test_default_endpoint_is_localhost_4317_and_the_path_is_the_grpc_method():
    env = agent_env(None, OTEL_EXPORTER_OTLP_PROTOCOL="grpc", TIGEROPS_LOG_LEVEL="info")
    r = subprocess.run([PYTHON, "-c", "import hello"], env=env, capture_output=True, text=True, timeout=60)
    assert "endpoint=http://localhost:4317%s protocol=grpc " % GRPC_PATH in r.stderr, r.stderr
    env = agent_env(None, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc", TIGEROPS_LOG_LEVEL="info",
                    OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317/ignored/path")
    r = subprocess.run([PYTHON, "-c", "import hello"], env=env, capture_output=True, text=True, timeout=60)
    assert "endpoint=http://collector:4317%s protocol=grpc " % GRPC_PATH in r.stderr, r.stderr


def latency(web, path):
    t0 = time.perf_counter()
    assert web.get(path)[0] == 200
    return time.perf_counter() - t0


def test_a_dead_grpc_collector_costs_the_app_nothing(grpc_otlp):
    bound_ms = 1500
    silent = HangingCollector()
    try:
        env_live = grpc_env(grpc_otlp)
        env_dead = agent_env(None, OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT=silent.endpoint,
                             OTEL_EXPORTER_OTLP_TIMEOUT="10000", TIGEROPS_SHUTDOWN_TIMEOUT_MS=str(bound_ms))
        # Interleaved rounds against both servers at once: the machine's load
        # moves both medians alike.
        with gunicorn("hello:app", env_live, workers=1) as live_web, \
                gunicorn("hello:app", env_dead, workers=1) as dead_web:
            for i in range(20):
                latency(live_web, "/hello/w%d" % i)
                latency(dead_web, "/hello/w%d" % i)
            deadline = time.monotonic() + 15
            while not silent.started(b"PRI * HTTP/2.0"):
                assert time.monotonic() < deadline, "no export reached the silent collector"
                time.sleep(0.02)
            live, dead = [], []
            for i in range(200):  # with an export hanging in the dead server's worker the whole time
                live.append(latency(live_web, "/hello/l%d" % i))
                dead.append(latency(dead_web, "/hello/l%d" % i))
            t0 = time.monotonic()
            os.killpg(dead_web.proc.pid, signal.SIGTERM)
            dead_web.proc.wait(30)
            took = time.monotonic() - t0
            assert dead_web.proc.returncode == 0, dead_web.output()
    finally:
        silent.close()
    assert statistics.median(dead) <= statistics.median(live) * 1.5 + 0.002, (statistics.median(dead),
                                                                              statistics.median(live))
    assert took <= bound_ms / 1000 + 1.5, "SIGTERM to exit took %.2f s with a %d ms bound" % (took, bound_ms)
    assert len(grpc_otlp.wait_for_spans(count=220)) >= 220, "the live server's spans all arrived"
