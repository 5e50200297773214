"""Configuration layers and the exporter's wire behaviour, end to end."""
import subprocess
import time

import pytest

from agent import PYTHON, agent_env

REQUEST = ("import hello; c = hello.app.test_client(); "
           "[c.get('/hello/c%d' % i) for i in range({n})]")


def run_app(env, n=1):
    r = subprocess.run([PYTHON, "-c", REQUEST.format(n=n)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def test_api_key_headers_gzip_and_resource_attributes(otlp):
    env = agent_env(otlp, TIGEROPS_API_KEY="sk-test-123", OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme,x-team=a%20b",
                    OTEL_EXPORTER_OTLP_COMPRESSION="gzip", TIGEROPS_SERVICE_NAME="svc",
                    TIGEROPS_SERVICE_VERSION="1.2.3", TIGEROPS_ENVIRONMENT="prod",
                    OTEL_RESOURCE_ATTRIBUTES="team=payments,service.name=overridden")
    r = run_app(env)
    assert "sk-test-123" not in r.stderr
    spans = otlp.wait_for_spans()
    req = [r for r in otlp.requests() if r["path"] == "/v1/traces"][0]
    h = req["headers"]
    assert req["decoded"]
    assert h["authorization"] == "Bearer sk-test-123"
    assert h["x-tenant"] == "acme" and h["x-team"] == "a b"
    assert h["content-encoding"] == "gzip" and h["content-type"] == "application/x-protobuf"
    res = spans[0]["resource"]
    assert res["service.name"] == "svc", "TIGEROPS_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES"
    assert res["service.version"] == "1.2.3"
    assert res["deployment.environment.name"] == "prod"
    assert res["team"] == "payments"
    assert spans[0]["scope"]["name"] == "tigerops"


def test_config_file_then_environment(otlp, tmp_path):
    ini = tmp_path / "tigerops.ini"
    ini.write_text("[tigerops]\nservice_name = from-file\nenvironment = file-env\n")
    run_app(agent_env(otlp, TIGEROPS_CONFIG=str(ini), TIGEROPS_ENVIRONMENT="env-env"))
    res = otlp.wait_for_spans()[0]["resource"]
    assert res["service.name"] == "from-file"
    assert res["deployment.environment.name"] == "env-env"


def test_bad_values_warn_once_by_name_and_keep_defaults(otlp):
    env = agent_env(otlp, TIGEROPS_SAMPLE_RATE="lots", OTEL_BSP_MAX_QUEUE_SIZE="-5", TIGEROPS_EXPORTER="carrier-pigeon")
    r = run_app(env, n=3)
    for key in ("TIGEROPS_SAMPLE_RATE", "OTEL_BSP_MAX_QUEUE_SIZE", "TIGEROPS_EXPORTER"):
        assert r.stderr.count(key) == 1, r.stderr
    assert "lots" not in r.stderr, "values are never echoed: they may be secrets"
    assert len(otlp.wait_for_spans(count=3)) == 3, "defaults: sample everything, export OTLP"


def test_sample_rate_zero_exports_nothing(otlp):
    run_app(agent_env(otlp, TIGEROPS_SAMPLE_RATE="0", TIGEROPS_LOG_LEVEL="debug"), n=20)
    run_app(agent_env(otlp), n=1)  # a process that does export, so "nothing" is not just "not yet"
    spans = otlp.wait_for_spans()
    assert len(spans) == 1


def test_traceidratio_sampler_keeps_about_the_ratio(otlp):
    run_app(agent_env(otlp, OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0.25"), n=400)
    run_app(agent_env(otlp, TIGEROPS_SERVICE_NAME="marker"), n=1)
    spans = otlp.wait_for_spans(lambda s: s["resource"]["service.name"] == "marker")
    kept = len(spans) - 1
    assert 50 <= kept <= 150, kept


def test_retry_after_503_then_delivered(otlp):
    otlp.set_mode(status=503, retry_after=1)
    env = agent_env(otlp, TIGEROPS_SHUTDOWN_TIMEOUT_MS="8000")
    proc = subprocess.Popen([PYTHON, "-c", REQUEST.format(n=2) + "; import tigerops; tigerops.flush(8000)"],
                            env=env, stderr=subprocess.PIPE, text=True)
    otlp.wait_for_requests(lambda r: r["status"] == 503 and r["path"] == "/v1/traces")
    otlp.set_mode()  # the collector recovers; the retry after ~1 s must succeed
    t0 = time.monotonic()
    spans = otlp.wait_for_spans(count=2, timeout=15)
    assert proc.wait(30) == 0
    statuses = [r["status"] for r in otlp.requests() if r["path"] == "/v1/traces"]
    assert statuses[0] == 503 and statuses[-1] == 200, statuses
    assert len(spans) == 2
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_logged_once_with_a_hint_and_the_collectors_words(otlp, status):
    otlp.set_mode(status=status, body="invalid API key\x1b[31m for tenant acme\r\n" + "x" * 400)
    env = agent_env(otlp, TIGEROPS_API_KEY="sk-wrong-123")
    code = ("import hello, tigerops; c = hello.app.test_client()\n"
            "for i in range(3):\n    c.get('/hello/c%d' % i); tigerops.flush(5000)")
    r = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    traces = [q["status"] for q in otlp.requests() if q["path"] == "/v1/traces"]
    assert traces == [status] * 3, "one refused export per flush"
    lines = [l for l in r.stderr.splitlines() if "refused with HTTP %d" % status in l]
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert "TIGEROPS_API_KEY" in line and "OTEL_EXPORTER_OTLP_HEADERS" in line
    assert "invalid API key?[31m for tenant acme" in line, "the collector's message, made printable"
    assert "\x1b" not in r.stderr and "sk-wrong-123" not in r.stderr
    assert 150 <= line.count("x") < 200, "about the first 200 bytes of the body, no more"
    assert "answered HTTP" not in r.stderr, "not also logged as an outage"
