"""tigerops-run --check: one test span to the configured collector with the
configured protocol, TLS and headers; says whether it was accepted, the
HTTP/gRPC status and the effective settings with every secret masked; exit
status 0 only when accepted."""
import subprocess
import time

import pytest

from agent import RUN, clean_env, free_port
from grpc_receiver import UNAUTHENTICATED, UNAVAILABLE, GrpcReceiver


@pytest.fixture
def receiver():
    with GrpcReceiver() as r:
        yield r


def check(**env):
    t0 = time.monotonic()
    r = subprocess.run([RUN, "--check"], env=clean_env(**env), capture_output=True, text=True, timeout=60)
    return r, time.monotonic() - t0


def test_accepted_over_http_sends_one_span_with_the_configured_headers(receiver):
    r, _ = check(TIGEROPS_ENDPOINT=receiver.endpoint, TIGEROPS_API_KEY="sk-check-1", TIGEROPS_SERVICE_NAME="chk",
                 OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "status: HTTP 200" in r.stdout and "result: ACCEPTED" in r.stdout
    assert "endpoint: %s/v1/traces" % receiver.endpoint in r.stdout
    spans = receiver.wait_for_spans()
    assert [s["name"] for s in spans] == ["tigerops-run --check"]
    assert spans[0]["attributes"] == {"tigerops.check": True} and spans[0]["resource"]["service.name"] == "chk"
    headers = receiver.requests()[0]["headers"]
    assert headers["authorization"] == "Bearer sk-check-1" and headers["x-tenant"] == "acme"


def test_accepted_over_grpc_reports_the_grpc_status(receiver):
    r, _ = check(OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
                 OTEL_EXPORTER_OTLP_COMPRESSION="gzip")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "status: HTTP 200, gRPC 0 OK" in r.stdout
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in r.stdout and " grpc\n" in r.stdout
    assert receiver.wait_for_spans()[0]["name"] == "tigerops-run --check"
    assert receiver.grpc_requests()[0]["grpcStatus"] == 0


def test_refused_over_http_exits_non_zero_with_the_status_and_the_collectors_words(receiver):
    receiver.set_mode(status=401, body="invalid API key")
    r, _ = check(TIGEROPS_ENDPOINT=receiver.endpoint, TIGEROPS_API_KEY="sk-wrong")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "status: HTTP 401" in r.stdout and "invalid API key" in r.stdout
    assert "NOT ACCEPTED (the agent would drop spans)" in r.stdout


@pytest.mark.parametrize("status,name,verdict", [(UNAUTHENTICATED, "UNAUTHENTICATED", "would drop spans"),
                                                 (UNAVAILABLE, "UNAVAILABLE", "would retry this")])
def test_refused_over_grpc_names_the_grpc_status(receiver, status, name, verdict):
    receiver.set_grpc_mode(status=status, message="go away")
    r, _ = check(OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "status: HTTP 200, gRPC %d %s" % (status, name) in r.stdout
    assert "detail: go away" in r.stdout and verdict in r.stdout
    assert len(receiver.grpc_requests()) == 1, "one attempt, no retry"


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_unreachable_collector_says_so_promptly(protocol):
    r, took = check(OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:%d" % free_port())
    assert r.returncode == 1, r.stdout + r.stderr
    assert "status: no answer" in r.stdout and "detail: " in r.stdout
    assert "NOT ACCEPTED" in r.stdout
    assert took < 10


def test_secrets_are_masked_in_the_report(receiver):
    host = receiver.endpoint.replace("http://", "http://user:pa55word@")
    r, _ = check(TIGEROPS_ENDPOINT=host, TIGEROPS_API_KEY="sk-topsecret-1",
                 OTEL_EXPORTER_OTLP_HEADERS="x-api-key=hdr-secret-2,x-tenant=acme",
                 HTTPS_PROXY="http://proxyuser:proxy-secret-3@127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for secret in ("pa55word", "sk-topsecret-1", "hdr-secret-2", "proxy-secret-3", "acme"):
        assert secret not in out, (secret, out)
    assert "x-api-key=**** x-tenant=****" in out
    assert "TIGEROPS_API_KEY" in out and "****" in out
    assert "HTTPS_PROXY" in out and "http://127.0.0.1:9" in out
    assert "endpoint: %s/v1/traces" % receiver.endpoint in out
    # the credentials themselves were sent
    assert receiver.requests()[0]["headers"]["x-api-key"] == "hdr-secret-2"
