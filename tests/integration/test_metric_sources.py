"""The metrics the instrumentations record, by value, decoded by the
receiver from /v1/metrics: cache hits and misses per backend, SQL
statement and outgoing HTTP durations, Celery task outcomes and durations,
and Celery queue depth on Redis and RabbitMQ, all of them for every
operation whatever the trace sampler decides."""
import http.server
import os
import socket
import subprocess
import threading
import time

import pytest

from agent import APPS, PYTHON, agent_env
from test_celery import Worker

FAST = {"OTEL_METRIC_EXPORT_INTERVAL": "300"}
SAMPLERS = {"always_on": {"OTEL_TRACES_SAMPLER": "always_on"},
            "1%": {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
            "always_off": {"OTEL_TRACES_SAMPLER": "always_off"}}


def scenario(name, env, timeout=60):
    """Runs apps/metric_sources.py <name> to its end (its metrics are
    flushed at exit)."""
    out = subprocess.run([PYTHON, "metric_sources.py", name], env=env, cwd=APPS, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def latest(points):
    """The last point of each series (resource instance + attributes):
    cumulative values, so the last one is the total."""
    last = {}
    for p in points:
        key = (p["resource"].get("service.instance.id"), tuple(sorted(p["attributes"].items())))
        if key not in last or int(p["timeUnixNano"]) >= int(last[key]["timeUnixNano"]):
            last[key] = p
    return list(last.values())


def select(points, **attributes):
    attributes = {k.replace("__", "."): v for k, v in attributes.items()}
    return [p for p in points if all(p["attributes"].get(k) == v for k, v in attributes.items())]


def total(points, field="value"):
    return sum(p[field] for p in points)


def wait_total(otlp, name, expected, field="value", timeout=20, **attributes):
    """The latest points of name matching attributes once their total is
    expected (AssertionError with what arrived, after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        points = select(latest([p for p in otlp.metrics() if p["name"] == name]), **attributes)
        if total(points, field) == expected:
            return points
        if time.monotonic() > deadline:
            raise AssertionError("%s %s: wanted %s %s, got %s" % (name, attributes, field, expected,
                                                                 [(p["attributes"], p.get(field)) for p in points]))
        time.sleep(0.05)


def test_cache_hit_ratio_is_three_quarters_on_every_backend(otlp, redis_server, memcached):
    scenario("caches", agent_env(otlp, REDIS_URL=redis_server.url, MEMCACHED_PORT=memcached.port))
    for backend in ("SimpleCache", "RedisCache", "redis", "memcached"):
        hits = wait_total(otlp, "tigerops.cache.lookups", 3, cache__backend=backend, cache__result="hit")
        misses = wait_total(otlp, "tigerops.cache.lookups", 1, cache__backend=backend, cache__result="miss")
        assert total(hits) / (total(hits) + total(misses)) == 0.75, backend
        assert hits[0]["type"] == "sum" and hits[0]["isMonotonic"] and hits[0]["unit"] == "{lookup}"
    # RedisCache's reads go through redis-py: counted once, as RedisCache's.
    points = latest([p for p in otlp.metrics() if p["name"] == "tigerops.cache.lookups"])
    assert total(select(points, cache__backend="redis")) == 4


@pytest.mark.parametrize("sampler", ["always_on", "1%", "always_off"])
def test_every_sql_statement_is_measured_whatever_the_sampler(otlp, sampler):
    scenario("sql", agent_env(otlp, **SAMPLERS[sampler]))
    name = "db.client.operation.duration"
    (selects,) = wait_total(otlp, name, 7, field="count", db__operation__name="SELECT",
                            db__collection__name="items")
    assert selects["attributes"] == {"db.system.name": "sqlite", "db.operation.name": "SELECT",
                                     "db.collection.name": "items"}
    assert selects["unit"] == "s" and selects["type"] == "histogram"
    assert selects["explicitBounds"] == [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]
    assert sum(selects["bucketCounts"]) == 7 and 0 < selects["sum"] < 7 * 10
    (failed,) = wait_total(otlp, name, 1, field="count", db__collection__name="missing_table")
    assert failed["attributes"]["error.type"] == "OperationalError"
    (inserts,) = wait_total(otlp, name, 3, field="count", db__operation__name="INSERT", db__collection__name="t")
    assert inserts["attributes"]["db.system.name"] == "sqlite"  # sqlite3 used directly (DB-API)


def test_awaited_statements_are_measured_once(otlp, postgres):
    """aiosqlite and psycopg 3's AsyncConnection (where installed: the
    tests/matrix venvs), outside any span."""
    pytest.importorskip("aiosqlite")
    pytest.importorskip("psycopg")
    dsn = postgres.url.replace("postgresql+psycopg2://", "postgresql://")
    scenario("async_sql", agent_env(otlp, PG_DSN=dsn))
    name = "db.client.operation.duration"
    (notes,) = wait_total(otlp, name, 3, field="count", db__collection__name="notes")
    assert notes["attributes"]["db.system.name"] == "sqlite"
    (pg,) = wait_total(otlp, name, 3, field="count", db__collection__name="pg3m_notes", db__operation__name="SELECT",
                       error__type=None)
    assert pg["attributes"]["db.system.name"] == "postgresql" and pg["attributes"]["server.port"] == postgres.port
    (failed,) = wait_total(otlp, name, 1, field="count", db__collection__name="pg3m_notes",
                           error__type="UndefinedColumn")
    assert failed["attributes"]["db.operation.name"] == "SELECT"


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("sampler", ["always_on", "1%"])
def test_outgoing_http_requests_are_measured_with_their_status(otlp, http_server, sampler):
    port = http_server.server_port
    scenario("http", agent_env(otlp, HTTP_URL="http://127.0.0.1:%d" % port, **SAMPLERS[sampler]))
    name = "http.client.request.duration"
    # requests 2 + urllib 1 + httpx 1 + urllib3 1 + requests inside a request 1
    (ok,) = wait_total(otlp, name, 6, field="count", http__response__status_code=200)
    assert ok["attributes"] == {"http.request.method": "GET", "server.address": "127.0.0.1", "server.port": port,
                                "http.response.status_code": 200}
    assert ok["explicitBounds"] == [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
    (missing,) = wait_total(otlp, name, 2, field="count", http__response__status_code=404)
    assert missing["attributes"]["error.type"] == "404"
    (refused,) = wait_total(otlp, name, 1, field="count", server__port=1)
    assert refused["attributes"]["error.type"] == "ConnectionError"
    assert "http.response.status_code" not in refused["attributes"]


def test_celery_task_outcomes_and_durations_by_task_name_at_1pct_sampling(otlp, redis_server, tmp_path):
    queue = "metric-outcomes"
    env = agent_env(otlp, preload=False, REDIS_URL=redis_server.url, JOBS_DB=str(tmp_path / "jobs.db"),
                    TIGEROPS_SERVICE_NAME="worker", **FAST, **SAMPLERS["1%"])
    worker = Worker(env, pool="solo", concurrency=1, extra=("-Q", queue))
    try:
        scenario("tasks", agent_env(otlp, REDIS_URL=redis_server.url, QUEUE=queue, TIGEROPS_SERVICE_NAME="publisher",
                                    JOBS_DB=str(tmp_path / "jobs.db")))
        counted = "tigerops.celery.tasks"
        wait_total(otlp, counted, 4, celery__task__name="tasks.echo", celery__task__outcome="success",
                   messaging__destination__name=queue)
        wait_total(otlp, counted, 2, celery__task__name="tasks.fail", celery__task__outcome="failure")
        wait_total(otlp, counted, 1, celery__task__name="tasks.flaky", celery__task__outcome="retry")
        wait_total(otlp, counted, 1, celery__task__name="tasks.flaky", celery__task__outcome="success")
        wait_total(otlp, counted, 1, celery__task__name="tasks.expected", celery__task__outcome="failure")
        (echo,) = wait_total(otlp, "messaging.process.duration", 4, field="count", celery__task__name="tasks.echo")
        assert echo["attributes"] == {"messaging.system": "celery", "messaging.operation.name": "process",
                                      "messaging.destination.name": queue, "celery.task.name": "tasks.echo",
                                      "celery.task.outcome": "success"}
        assert echo["unit"] == "s"
        (failed,) = wait_total(otlp, "messaging.process.duration", 2, field="count", celery__task__name="tasks.fail")
        assert failed["attributes"]["error.type"] == "ValueError"
        # The publisher's exit flush is in (its SQL at import), without a
        # cache lookup for the result it read from the Redis backend.
        otlp.wait_for_metric("db.client.operation.duration", lambda p: p["resource"]["service.name"] == "publisher")
        assert not [p for p in otlp.metrics() if p["name"] == "tigerops.cache.lookups"]
    finally:
        worker.stop()


def _publish_and_hold(env):
    """apps/metric_sources.py publish: 5 messages to QUEUE, then it waits
    (observing, where told to) until its stdin closes."""
    proc = subprocess.Popen([PYTHON, "metric_sources.py", "publish"], env=env, cwd=APPS, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PUBLISHED "):
        proc.kill()
        raise AssertionError("publisher failed: %s%s" % (line, proc.communicate()[1]))
    proc.threads = line.split()[1].split(",")
    return proc


def _release(proc):
    proc.stdin.close()
    proc.wait(30)
    stderr = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    return stderr


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_queue_depth_is_five_for_five_unconsumed_messages(otlp, redis_server, broker, request):
    broker_url = redis_server.url if broker == "redis" else request.getfixturevalue("rabbitmq").url
    queue = "depth-" + broker
    env = agent_env(otlp, REDIS_URL=redis_server.url, BROKER_URL=broker_url, QUEUE=queue,
                    TIGEROPS_CELERY_QUEUE_DEPTH="all", **FAST)
    proc = _publish_and_hold(env)
    try:
        (point,) = wait_total(otlp, "tigerops.celery.queue.depth", 5, messaging__destination__name=queue)
    finally:
        stderr = _release(proc)
    assert proc.threads.count("tigerops-queue-depth") == 1, proc.threads
    assert point["type"] == "gauge" and point["unit"] == "{message}"
    assert point["attributes"] == {"messaging.system": "celery", "messaging.destination.name": queue}
    assert "queue depth" not in stderr, stderr


@pytest.mark.parametrize("setting", [{"TIGEROPS_CELERY_QUEUE_DEPTH": "off"}, {"TIGEROPS_CELERY_QUEUE_DEPTH": "all",
                                                                            "OTEL_METRICS_EXPORTER": "none"}])
def test_no_observer_thread_when_queue_depth_or_metrics_are_off(otlp, redis_server, setting):
    env = agent_env(otlp, REDIS_URL=redis_server.url, QUEUE="depth-off", **FAST, **setting)
    proc = _publish_and_hold(env)
    _release(proc)
    assert "MainThread" in proc.threads and "tigerops-queue-depth" not in proc.threads, proc.threads


def test_queue_depth_is_observed_by_the_prefork_workers_main_process_only(otlp, redis_server, tmp_path):
    """Tasks in the pool's children publish too (=all): still one observer,
    the main process's, and a queue no worker consumes reads 5."""
    consumed, unconsumed = "fan-in", "fan-out-target"
    env = agent_env(otlp, preload=False, REDIS_URL=redis_server.url, JOBS_DB=str(tmp_path / "jobs.db"),
                    TIGEROPS_CELERY_QUEUE_DEPTH="all", TIGEROPS_CELERY_QUEUES=unconsumed, **FAST)
    worker = Worker(env, pool="prefork", concurrency=2, extra=("-Q", consumed))
    try:
        scenario("fan_out", agent_env(otlp, REDIS_URL=redis_server.url, QUEUE=consumed, FAN_OUT_QUEUE=unconsumed,
                                      TIGEROPS_CELERY_QUEUE_DEPTH="off"))
        wait_total(otlp, "tigerops.celery.tasks", 1, celery__task__name="tasks.fan_out",
                   celery__task__outcome="success")
        wait_total(otlp, "tigerops.celery.queue.depth", 5, messaging__destination__name=unconsumed)
        # Two more rounds of observation, time for a wrongly started child observer to report.
        first = max(int(p["timeUnixNano"]) for p in otlp.metrics() if p["name"] == "tigerops.celery.queue.depth")
        otlp.wait_for_metric("tigerops.celery.queue.depth", lambda p: int(p["timeUnixNano"]) > first, count=2)
        pids = {p["resource"]["process.pid"] for p in otlp.metrics() if p["name"] == "tigerops.celery.queue.depth"}
        task_pids = {p["resource"]["process.pid"] for p in otlp.metrics() if p["name"] == "tigerops.celery.tasks"}
    finally:
        worker.stop()
    assert len(pids) == 1, pids
    assert not pids & task_pids, "the task ran in a pool child, which must not observe"


def test_a_broker_that_never_answers_costs_the_observer_a_timeout_and_one_warning(otlp):
    """A listening socket that never answers: connect succeeds, reads hang.
    Each observation gives up after its timeout; the warning is logged once."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        url = "redis://127.0.0.1:%d/0" % hole.getsockname()[1]
        code = ("import time\n"
                "from tasks import app\n"
                "from tigerops import _queue_depth\n"
                "o = _queue_depth._Observer(app, {'q': None}, 1.0)\n"
                "for _ in range(3):\n"
                "    t0 = time.monotonic(); o.observe(); print('ELAPSED', time.monotonic() - t0, flush=True)\n")
        env = agent_env(otlp, REDIS_URL=url, TIGEROPS_LOG_LEVEL="warning")
        out = subprocess.run([PYTHON, "-c", code], env=env, cwd=APPS, capture_output=True, text=True, timeout=60)
    finally:
        hole.close()
    assert out.returncode == 0, out.stderr
    elapsed = [float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("ELAPSED")]
    assert len(elapsed) == 3 and all(0.3 < e < 2.0 for e in elapsed), elapsed  # the 0.5 s timeout, not a hang
    assert out.stderr.count("Celery queue depth: the broker did not answer") == 1, out.stderr
