"""The exit flush is bounded by TIGEROPS_SHUTDOWN_TIMEOUT_MS, whatever the
export in flight is doing: against a collector that accepts connections and
never answers (the export timeout is 10 s), SIGTERM to exit takes at most the
bound plus a scheduling margin, and the spans are counted as failed."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from agent import APPS, PYTHON, RUN, agent_env, gunicorn, uwsgi
from test_celery import Worker
from util import HangingCollector

# Process start-up and teardown on a loaded 2-core machine, not agent time:
# before the fix a 2 s bound took 4.5 s in a gunicorn worker.
MARGIN_S = 1.5


class ExportCollector(HangingCollector):
    """The hanging collector, counting OTLP/HTTP exports."""

    def wait_request(self, count=1, timeout=20):
        deadline = time.monotonic() + timeout
        while self.started(b"POST /v1/traces") < count:
            assert time.monotonic() < deadline, "no export reached the hanging collector"
            time.sleep(0.02)


@pytest.fixture
def collector():
    c = ExportCollector()
    yield c
    c.close()


def hanging_env(collector, bound_ms, **extra):
    # A short schedule delay puts an export in flight at once; the export
    # timeout is longer than any bound under test.
    return agent_env(None, TIGEROPS_ENDPOINT=collector.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="10000",
                     TIGEROPS_SHUTDOWN_TIMEOUT_MS=str(bound_ms), OTEL_BSP_SCHEDULE_DELAY="50", **extra)


def time_to_exit(proc, timeout=30):
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return time.monotonic() - start


# Ends a span (its export then hangs), queues more while it is in flight,
# and exits through sys.exit on SIGTERM as servers do. The SIGTERM handler
# also calls shutdown() itself first, so three bounded waits (its own, the
# atexit one and the library's last-chance one) must share one bound.
SCRIPT = r"""
import json, signal, sys, time
import _tigerops
from tigerops import Span

def on_term(*_):
    ok = _tigerops.shutdown()
    print(json.dumps(dict(_tigerops.stats(), shutdown_ok=ok)), flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
with Span("first", _tigerops.KIND_INTERNAL, {}):
    pass
sys.stdin.readline()  # the test says when the export is in flight
for i in range(20):
    with Span("queued", _tigerops.KIND_INTERNAL, {}):
        pass
print("ready", flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("bound_ms", [1000, 2000])
def test_a_python_process_exits_within_the_bound_with_an_export_in_flight(collector, bound_ms):
    proc = subprocess.Popen([RUN, PYTHON, "-c", SCRIPT], env=hanging_env(collector, bound_ms), cwd=APPS,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        collector.wait_request()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        took = time_to_exit(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out, err = proc.communicate()
    assert took <= bound_ms / 1000 + MARGIN_S, "SIGTERM to exit took %.2f s with a %d ms bound" % (took, bound_ms)
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["shutdown_ok"] is False, "the bound was hit: shutdown says so"
    assert stats["spans_exported"] == 0
    # The in-flight one and the queued ones are all accounted for as failed
    # or dropped by the time shutdown returns, none left hanging.
    assert stats["spans_failed"] + stats["spans_dropped"] == 21, stats
    # and the loss is said, once the bound is hit
    assert re.search(r"warning: exit flush not done within \d+ ms \(TIGEROPS_SHUTDOWN_TIMEOUT_MS\): "
                     r"\d+ queued spans dropped", err), err


@pytest.mark.parametrize("bound_ms", [1000, 2000])
def test_gunicorn_sigterm_exits_within_the_bound_with_an_export_in_flight(collector, bound_ms):
    env = hanging_env(collector, bound_ms)
    with gunicorn("hello:app", env, workers=2) as web:
        for _ in range(4):
            assert web.get("/health")[0] == 200
        collector.wait_request()
        took = time_to_exit(web.proc)
        assert web.proc.returncode == 0, web.output()
    assert took <= bound_ms / 1000 + MARGIN_S, "SIGTERM to exit took %.2f s with a %d ms bound" % (took, bound_ms)


def celery_warm_exit(env, redis_server, pool, collector=None):
    """Seconds from SIGTERM (warm shutdown) to exit of a worker that ran one
    task; with a collector, once an export is in flight to it."""
    worker = Worker(env, pool=pool, concurrency=1)
    try:
        code = "import tasks; print(tasks.echo.delay(5).get(timeout=20))"
        client_env = agent_env(None, REDIS_URL=redis_server.url, TIGEROPS_ENABLED="false")
        out = subprocess.run([PYTHON, "-c", code], env=client_env, cwd=APPS, capture_output=True, text=True,
                             timeout=60)
        assert out.stdout.strip() == "5", out.stderr
        if collector:
            collector.wait_request()
        return time_to_exit(worker.proc)
    finally:
        worker.stop()


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_celery_warm_shutdown_stays_within_the_bound_with_an_export_in_flight(collector, redis_server, tmp_path,
                                                                              pool):
    bound_ms = 2000
    env = hanging_env(collector, bound_ms, REDIS_URL=redis_server.url, JOBS_DB=str(tmp_path / "jobs.db"))
    took = celery_warm_exit(env, redis_server, pool, collector)
    # Celery's own warm shutdown, measured here on the same loaded machine
    # (billiard's child alone sleeps 1 s after reporting its exit): the
    # agent may add its bound to it, plus scheduling noise between the two
    # runs. An absolute bound failed at 4.52 s against 4.5 s under load.
    bare = celery_warm_exit(dict(env, TIGEROPS_ENABLED="false"), redis_server, pool)
    # The bound is per process: under prefork the pool child flushes its
    # task spans, then the main process its metrics (queue depth), each
    # within the bound, one after the other.
    flushing_processes = 2 if pool == "prefork" else 1
    allowed = bare + flushing_processes * bound_ms / 1000 + MARGIN_S
    assert took <= allowed, "SIGTERM to exit took %.2f s with a %d ms bound (%.2f s without the agent)" % (
        took, bound_ms, bare)


@pytest.mark.parametrize("server", ["gunicorn", "uwsgi"])
def test_workers_recycled_by_max_requests_lose_no_span(otlp, server):
    # The default 5 s schedule delay: a recycled worker's last spans are
    # still queued when it exits, and only its exit flush can send them.
    env = agent_env(otlp, OTEL_BSP_SCHEDULE_DELAY="5000")
    n = 300
    if server == "gunicorn":
        web = gunicorn("hello:app", env, 2, extra=("--max-requests", "20"))
    else:  # uWSGI recycles no worker younger than 60 s unless told
        web = uwsgi("hello:app", env, 2, extra=("--max-requests", "20", "--min-worker-lifetime", "0"))
    with web:
        for i in range(n):
            assert web.get("/hello/%d" % i)[0] == 200
        # Before the stop: the client has the last response before the
        # server calls its close(), which ends the span, and uWSGI's workers
        # exit() from their SIGTERM/SIGINT handler whatever they are doing,
        # so a stop right away lost that span under load (299 of 300). The
        # live workers send within the schedule delay; the recycled ones only
        # by their exit flush, which is what this test is about.
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>", count=n, timeout=30)
    pids = {s["resource"]["process.pid"] for s in spans if s["name"] == "GET /hello/<name>"}
    assert len(pids) >= 10, "workers were recycled (%d seen)" % len(pids)
    paths = sorted(s["attributes"]["url.path"] for s in spans if s["name"] == "GET /hello/<name>")
    assert paths == sorted("/hello/%d" % i for i in range(n))


def gone(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return "\nState:\tZ" in f.read()
    except FileNotFoundError:
        return True


def test_a_second_signal_during_a_uwsgi_workers_exit_flush_does_not_hang_it(otlp):
    # uWSGI's worker calls exit() from its SIGINT/SIGTERM handler, so our
    # flush runs inside a signal handler; a second signal (the master's
    # SIGINT after a SIGTERM to the group, as systemd sends) re-entered the
    # flush from the C atexit handler and deadlocked both in the queue's
    # condition variable: the worker hung until SIGKILL, its spans lost.
    otlp.set_mode(delay_ms=1500)  # recorded on arrival, answered 1.5 s later
    env = agent_env(otlp, OTEL_BSP_SCHEDULE_DELAY="60000", TIGEROPS_SHUTDOWN_TIMEOUT_MS="5000")
    with uwsgi("hello:app", env, 1) as web:
        for i in range(5):
            assert web.get("/hello/%d" % i)[0] == 200
        (worker,) = [int(p) for p in subprocess.run(["pgrep", "-P", str(web.proc.pid)], capture_output=True,
                                                     text=True).stdout.split()]
        os.kill(worker, signal.SIGTERM)
        otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>", count=5, timeout=10)
        os.kill(worker, signal.SIGINT)  # while the export waits for its answer
        start = time.monotonic()
        while not gone(worker) and time.monotonic() - start < 15:
            time.sleep(0.05)
        took = time.monotonic() - start
    assert took <= 5 + MARGIN_S, "the worker took %.1f s to exit after the second signal" % took
