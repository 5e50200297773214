"""Python logging under the agent: records carry the current span's ids
(OpenTelemetry Python's otel* record fields) and, with OTEL_LOGS_EXPORTER=otlp,
records at or above TIGEROPS_LOG_EXPORT_LEVEL reach /v1/logs, decoded by the
receiver with the official schema."""
import json
import os
import re
import subprocess
import sys

import pytest

from agent import APPS, PYTHON, agent_env, gunicorn, server_spans
from otlp import OtlpReceiver
from util import HangingCollector

HERE = os.path.dirname(os.path.abspath(__file__))


def logs_env(otlp, **extra):
    return agent_env(otlp, OTEL_LOGS_EXPORTER="otlp", TIGEROPS_SERVICE_NAME="shop", **extra)


def get_json(server, path):
    status, body, _ = server.get(path)
    assert status == 200, (status, body, server.output()[-3000:])
    return json.loads(body)


def by_body(logs, body):
    return [r for r in logs if r["body"] == body]


def test_a_warning_inside_a_request_carries_its_span_in_the_record_and_in_v1_logs(otlp):
    with gunicorn("logsapp:app", logs_env(otlp), workers=1) as web:
        info = get_json(web, "/info")
        warn = get_json(web, "/warn")
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /warn")
        logs = otlp.wait_for_logs(lambda r: r["body"] == "stock low for sku-42")
    (span,) = server_spans(spans, "GET /warn")
    # the record itself, as the app's handler saw it
    assert warn["otelSpanID"] == span["spanId"] and warn["otelTraceID"] == span["traceId"]
    assert warn["otelTraceSampled"] is True and warn["otelServiceName"] == "shop"
    assert warn["custom_attribute"] == "from the app's factory"  # the app's own factory still runs
    assert re.fullmatch("[0-9a-f]{16}", info["otelSpanID"]) and info["otelSpanID"] != warn["otelSpanID"]
    # the exported record
    (rec,) = by_body(logs, "stock low for sku-42")
    assert (rec["traceId"], rec["spanId"], rec["flags"]) == (span["traceId"], span["spanId"], 1)
    assert (rec["severityNumber"], rec["severityText"]) == (13, "WARN")
    assert rec["scope"]["name"] == "shop"
    attrs = rec["attributes"]
    assert attrs["code.function.name"] == "warn"
    assert attrs["code.file.path"] == os.path.join(APPS, "logsapp.py")
    assert isinstance(attrs["code.line.number"], int) and attrs["code.line.number"] > 0
    assert "exception.type" not in attrs
    assert rec["resource"]["service.name"] == "shop"
    assert 0 < int(rec["timeUnixNano"]) <= int(rec["observedTimeUnixNano"])
    # INFO is below the default export level: it went out before the warning if at all
    assert by_body(logs, "an info line") == []
    # made at import, outside any request: no trace context
    (outside,) = by_body(logs, "imported, outside any request")
    assert outside["traceId"] == "" and outside["spanId"] == "" and outside["flags"] == 0


def test_logger_exception_exports_the_exception(otlp):
    with gunicorn("logsapp:app", logs_env(otlp), workers=1) as web:
        fields = get_json(web, "/exception")
        logs = otlp.wait_for_logs(lambda r: r["body"] == "lookup failed")
    (rec,) = by_body(logs, "lookup failed")
    attrs = rec["attributes"]
    assert (rec["severityNumber"], rec["severityText"]) == (17, "ERROR")
    assert attrs["exception.type"] == "KeyError" and attrs["exception.message"] == "missing"
    assert attrs["exception.stacktrace"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in attrs["exception.stacktrace"]
    assert rec["spanId"] == fields["otelSpanID"]


def test_emails_and_authorization_values_are_masked(otlp):
    with gunicorn("logsapp:app", logs_env(otlp), workers=1) as web:
        fields = get_json(web, "/secret")
        logs = otlp.wait_for_logs(lambda r: r["body"].startswith("login for"))
    assert "carol@example.com" in fields["msg"]  # the app's own record is untouched
    (rec,) = [r for r in logs if r["body"].startswith("login for")]
    assert rec["body"] == "login for *****@*******.*** with Authorization: Bearer %s refused" % ("*" * 13)


def test_an_app_log_record_class_installed_later_still_gets_the_trace_context(otlp):
    with gunicorn("logsapp:app", logs_env(otlp, LOGSAPP_RECORD_CLASS="1"), workers=1) as web:
        warn = get_json(web, "/warn")
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /warn")
        logs = otlp.wait_for_logs(lambda r: r["body"] == "stock low for sku-42")
    (span,) = server_spans(spans, "GET /warn")
    assert warn["custom_attribute"] == "from the app's LogRecord class"
    assert warn["otelSpanID"] == span["spanId"]
    assert len(by_body(logs, "stock low for sku-42")) == 1  # once, not once per wrapper


def test_the_service_name_follows_app_config(otlp):
    with gunicorn("logsapp:app", logs_env(otlp, LOGSAPP_SERVICE_NAME="from-app-config"), workers=1) as web:
        warn = get_json(web, "/warn")
        logs = otlp.wait_for_logs(lambda r: r["body"] == "stock low for sku-42")
    assert warn["otelServiceName"] == "from-app-config"
    assert by_body(logs, "stock low for sku-42")[0]["resource"]["service.name"] == "from-app-config"


def test_logs_over_grpc_reach_the_logs_service():
    with OtlpReceiver(args=("--grpc-port", "0")) as receiver:
        env = logs_env(receiver, OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                       TIGEROPS_ENDPOINT="http://127.0.0.1:%d" % receiver.grpc_port)
        with gunicorn("logsapp:app", env, workers=1) as web:
            warn = get_json(web, "/warn")
            logs = receiver.wait_for_logs(lambda r: r["body"] == "stock low for sku-42")
        paths = {r["path"] for r in receiver.requests()}
    assert "/opentelemetry.proto.collector.logs.v1.LogsService/Export" in paths
    (rec,) = by_body(logs, "stock low for sku-42")
    assert rec["spanId"] == warn["otelSpanID"]


SCRIPT_CORRELATION = """
import logging, tigerops
logging.getLogger("corr").warning("outside")
with tigerops.span("job"):
    span = tigerops.current_span()
    logging.getLogger("corr").warning("inside")
"""


def test_log_correlation_prints_the_ids_in_opentelemetry_pythons_default_format(otlp):
    env = agent_env(otlp, OTEL_PYTHON_LOG_CORRELATION="true", TIGEROPS_SERVICE_NAME="corrsvc")
    proc = subprocess.run([PYTHON, "-c", SCRIPT_CORRELATION], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    spans = otlp.wait_for_spans(lambda s: s["name"] == "job")
    (job,) = [s for s in spans if s["name"] == "job"]
    lines = [line for line in proc.stderr.splitlines() if "[corr]" in line]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" WARNING \[corr\] \[<string>:3\] \[trace_id=0 span_id=0 "
                        r"resource.service.name=corrsvc trace_sampled=False\] - outside", lines[0]), lines
    assert re.fullmatch(stamp + r" WARNING \[corr\] \[<string>:6\] \[trace_id=%s span_id=%s "
                        r"resource.service.name=corrsvc trace_sampled=True\] - inside"
                        % (job["traceId"], job["spanId"]), lines[1]), lines


SCRIPT_FLOOD = """
import logging, resource, time, _tigerops, tigerops
log = logging.getLogger("flood")
log.propagate = False  # the records are made (and queued), not printed
log.addHandler(logging.NullHandler())
text = "x" * 2000
def rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for i in range(2000):  # warm up: the queue fills, allocators settle
    log.warning("%s %d", text, i)
before, t0 = rss_kb(), time.monotonic()
for i in range(50000):
    log.warning("%s %d", text, i)
elapsed = time.monotonic() - t0
print(rss_kb() - before, elapsed, dict(_tigerops.log_stats()), flush=True)
"""


def test_a_flood_with_the_collector_hanging_neither_blocks_nor_grows_memory():
    collector = HangingCollector()
    try:
        env = agent_env(None, OTEL_LOGS_EXPORTER="otlp", TIGEROPS_ENDPOINT=collector.endpoint,
                        OTEL_BLRP_MAX_QUEUE_SIZE="200", OTEL_EXPORTER_OTLP_TIMEOUT="30000",
                        TIGEROPS_SHUTDOWN_TIMEOUT_MS="500")
        proc = subprocess.run([PYTHON, "-c", SCRIPT_FLOOD], env=env, capture_output=True, text=True, timeout=120)
    finally:
        collector.close()
    assert proc.returncode == 0, proc.stderr
    grown_kb, elapsed, stats = proc.stdout.split(" ", 2)
    stats = eval(stats)  # noqa: S307 (our own dict literal)
    # 52000 records of 2 KB: 100 MB if they were all kept
    assert int(grown_kb) < 10 * 1024, (grown_kb, stats)
    assert float(elapsed) < 20, elapsed  # a blocked logger would wait out 30 s export timeouts
    assert stats["dropped"] >= 50000 - 2 * 200, stats
    assert stats["queued"] + stats["dropped"] == 52000, stats
    assert "log record queue full" in proc.stderr


@pytest.fixture
def celery_worker_env(otlp, redis_server):
    return logs_env(otlp, preload=False, REDIS_URL=redis_server.url)


def test_records_logged_in_a_celery_task_carry_the_task_span(otlp, redis_server, celery_worker_env):
    sys.path.insert(0, HERE)
    from test_celery import Worker
    worker = Worker(celery_worker_env, pool="prefork", concurrency=1, app="logtasks",
                    extra=("-Q", "logtasks"))
    try:
        env = agent_env(otlp, REDIS_URL=redis_server.url)
        send = subprocess.run([PYTHON, "-c", "import logtasks; print(logtasks.log_in_task.delay(7).get(timeout=30))"],
                              env=env, cwd=APPS, capture_output=True, text=True, timeout=60)
        assert send.returncode == 0 and send.stdout.strip() == "7", send.stderr
        spans = otlp.wait_for_spans(lambda s: s["name"] == "process logtasks.log_in_task")
        logs = otlp.wait_for_logs(lambda r: r["body"] == "task step 7")
    finally:
        worker.stop()
    (process,) = [s for s in spans if s["name"] == "process logtasks.log_in_task"]
    (rec,) = by_body(logs, "task step 7")
    assert (rec["traceId"], rec["spanId"]) == (process["traceId"], process["spanId"])
    assert rec["scope"]["name"] == "logtasks"
