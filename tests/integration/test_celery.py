"""Celery under the agent with a real redis broker and worker: the request,
the publish and the execution (and the SQL inside it) form one trace."""
import os
import signal
import subprocess
import tempfile
import time

import pytest

from agent import APPS, PYTHON, RUN, agent_env, gunicorn, server_spans


class Worker:
    def __init__(self, env, pool="prefork", concurrency=2, extra=(), app="tasks"):
        self.final_output = None
        self.log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
        argv = [RUN, PYTHON, "-m", "celery", "-A", app, "worker", "-P", pool, "-c", str(concurrency),
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info", *extra]
        self.proc = subprocess.Popen(argv, env=env, cwd=APPS, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while "ready." not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("celery worker did not start:\n" + self.output())
            time.sleep(0.1)

    def output(self):
        if self.final_output is not None:
            return self.final_output
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.final_output is None:  # kept for failure messages after the stop
            self.final_output = self.output()
            os.unlink(self.log.name)


@pytest.fixture
def worker_env(otlp, redis_server, tmp_path):
    return agent_env(otlp, preload=False, REDIS_URL=redis_server.url, TIGEROPS_SERVICE_NAME="worker",
                     JOBS_DB=str(tmp_path / "jobs.db"))


def wait_all(otlp, counts, timeout=30):
    """All spans, once each name in counts has arrived that many times."""
    for name, count in counts.items():
        spans = otlp.wait_for_spans(lambda s, n=name: s["name"] == n, count=count, timeout=timeout)
    return spans


def by_trace(spans, trace_id):
    return [s for s in spans if s["traceId"] == trace_id]


@pytest.mark.parametrize("pool", ["prefork", "solo", "threads"])
def test_request_publish_execute_and_sql_in_one_trace(otlp, redis_server, worker_env, pool):
    worker = Worker(worker_env, pool=pool)
    try:
        env = agent_env(otlp, REDIS_URL=redis_server.url, TIGEROPS_SERVICE_NAME="web", JOBS_DB=worker_env["JOBS_DB"])
        with gunicorn("publisher:app", env, workers=1) as web:
            assert web.get("/enqueue")[0] == 200
            spans = wait_all(otlp, {"INSERT jobs": 1, "SELECT jobs": 1, "GET /enqueue": 1,
                                    "process tasks.record": 1, "publish tasks.record": 1})
    finally:
        worker.stop()
    (root,) = server_spans(spans, "GET /enqueue")
    trace = by_trace(spans, root["traceId"])
    names = {s["name"]: s for s in trace}
    publish, process = names["publish tasks.record"], names["process tasks.record"]
    assert publish["kind"] == 4 and publish["parentSpanId"] == root["spanId"]
    assert process["kind"] == 5 and process["parentSpanId"] == publish["spanId"]
    assert process["resource"]["service.name"] == "worker"
    pa = process["attributes"]
    assert pa["messaging.system"] == "celery"
    assert pa["messaging.destination.name"] == "celery"
    assert pa["messaging.message.id"] == publish["attributes"]["messaging.message.id"]
    assert pa["celery.task.name"] == "tasks.record" and pa["celery.retries"] == 0
    assert pa["celery.state"] == "SUCCESS"
    for sql in ("INSERT jobs", "SELECT jobs"):
        assert names[sql]["parentSpanId"] == process["spanId"]


def test_apply_async_send_task_and_chain_are_all_linked(otlp, redis_server, worker_env):
    worker = Worker(worker_env)
    try:
        env = agent_env(otlp, REDIS_URL=redis_server.url, JOBS_DB=worker_env["JOBS_DB"])
        with gunicorn("publisher:app", env, workers=1) as web:
            assert web.get("/variety")[0] == 200
            spans = wait_all(otlp, {"process tasks.record": 8, "GET /variety": 1, "publish tasks.record": 8,
                                    "process tasks.total": 1, "process tasks.in_app_context": 1})
    finally:
        worker.stop()
    (root,) = server_spans(spans, "GET /variety")
    trace = by_trace(spans, root["traceId"])
    processes = [s for s in trace if s["kind"] == 5]
    assert sorted(s["name"] for s in processes) == ["process tasks.in_app_context"] + ["process tasks.record"] * 8 + \
        ["process tasks.total"], "apply_async, send_task, chain, group, chord and ContextTask stay in the trace"
    publish_ids = {s["spanId"] for s in trace if s["kind"] == 4}
    assert all(p["parentSpanId"] in publish_ids for p in processes)
    (ctx_task,) = [s for s in processes if s["name"] == "process tasks.in_app_context"]
    assert ctx_task["attributes"]["celery.state"] == "SUCCESS"
    ids = [s["spanId"] for s in spans]
    assert len(ids) == len(set(ids)), "span ids unique across the prefork children"


def test_failure_retry_and_expected_exceptions(otlp, redis_server, worker_env):
    worker = Worker(worker_env, pool="solo")
    try:
        env = agent_env(otlp, REDIS_URL=redis_server.url, JOBS_DB=worker_env["JOBS_DB"])
        with gunicorn("publisher:app", env, workers=1) as web:
            assert web.get("/failures")[0] == 200
            spans = wait_all(otlp, {"process tasks.fail": 1, "process tasks.flaky": 2,
                                    "process tasks.expected": 1})
    finally:
        worker.stop()
    process = {}
    for s in spans:
        if s["kind"] == 5:
            process.setdefault(s["name"], []).append(s)
    (failed,) = process["process tasks.fail"]
    assert failed["status"]["code"] == 2
    exc = [e for e in failed["events"] if e["name"] == "exception"][0]["attributes"]
    assert exc["exception.type"] == "ValueError"
    assert "task failed on purpose" in exc["exception.stacktrace"] and "Traceback" in exc["exception.stacktrace"]
    flaky = sorted(process["process tasks.flaky"], key=lambda s: s["attributes"]["celery.retries"])
    assert [s["attributes"]["celery.retries"] for s in flaky] == [0, 1]
    assert any(e["name"] == "retry" for e in flaky[0]["events"])
    assert flaky[1]["traceId"] == flaky[0]["traceId"], "the retried run stays in the same trace"
    assert flaky[1]["attributes"]["celery.state"] == "SUCCESS"
    (expected,) = process["process tasks.expected"]
    assert expected["status"]["code"] != 2, "throws= exceptions are not errors"


def test_malformed_traceparent_header_starts_a_new_trace_and_the_task_runs(otlp, redis_server, worker_env):
    worker = Worker(worker_env, pool="solo")
    try:
        code = ("import tasks; r = tasks.record.apply_async(args=(12,), headers={'traceparent': 'garbage'});"
                "print(r.get(timeout=20))")
        env = agent_env(None, REDIS_URL=redis_server.url, TIGEROPS_ENABLED="false", JOBS_DB=worker_env["JOBS_DB"])
        out = subprocess.run([PYTHON, "-c", code], env=env, cwd=APPS, capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "1", out.stderr
        spans = otlp.wait_for_spans(lambda s: s["name"] == "process tasks.record", timeout=30)
    finally:
        worker.stop()
    (process,) = [s for s in spans if s["name"] == "process tasks.record"]
    assert process["parentSpanId"] == ""


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_warm_shutdown_flushes_the_workers_spans(otlp, redis_server, worker_env, pool):
    # A 60 s schedule delay: only the shutdown flush can deliver the span.
    env = dict(worker_env, OTEL_BSP_SCHEDULE_DELAY="60000")
    worker = Worker(env, pool=pool)
    try:
        code = "import tasks; print(tasks.record.delay(13).get(timeout=20))"
        client_env = agent_env(None, REDIS_URL=redis_server.url, TIGEROPS_ENABLED="false", JOBS_DB=env["JOBS_DB"])
        out = subprocess.run([PYTHON, "-c", code], env=client_env, cwd=APPS, capture_output=True, text=True,
                             timeout=60)
        assert out.stdout.strip() == "1", out.stderr
        assert not [s for s in otlp.spans() if s["name"] == "process tasks.record"]
    finally:
        worker.stop()
    otlp.wait_for_spans(lambda s: s["name"] == "process tasks.record", timeout=15)


def test_task_ids_reach_the_receiver_unmasked(otlp, redis_server, worker_env):
    # Its last two groups read as a Luhn-valid card number: PII masking once
    # turned this PRODUCER/CONSUMER pair into '...-4ab3-****-************', and
    # a count by task id over 6,666 tasks found both "missing".
    task_id = "6e5a42ba-1cd7-4ab3-9386-271146396504"
    worker = Worker(worker_env, pool="solo")
    try:
        env = agent_env(otlp, REDIS_URL=redis_server.url, JOBS_DB=worker_env["JOBS_DB"])
        with gunicorn("publisher:app", env, workers=1) as web:
            assert web.get("/publish?id=" + task_id)[1] == task_id
            spans = wait_all(otlp, {"publish tasks.echo": 1, "process tasks.echo": 1})
    finally:
        worker.stop()
    ids = {s["name"]: s["attributes"]["messaging.message.id"] for s in spans if "tasks.echo" in s["name"]}
    assert ids == {"publish tasks.echo": task_id, "process tasks.echo": task_id}
    (server,) = server_spans(spans, "GET /publish")
    assert server["attributes"]["url.query"] == "id=" + task_id


def run_script(code, env):
    r = subprocess.run([PYTHON, "-c", code], env=env, cwd=APPS, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_a_publish_outside_any_span_is_a_root_producer_the_worker_continues(otlp, redis_server, worker_env):
    # As a new user tries it: a plain script queues a task.
    worker = Worker(worker_env, pool="solo")
    try:
        env = agent_env(otlp, REDIS_URL=redis_server.url, JOBS_DB=worker_env["JOBS_DB"])
        run_script("import tasks; print(tasks.record.delay(41).get(timeout=30))", env)
        spans = wait_all(otlp, {"publish tasks.record": 1, "process tasks.record": 1, "INSERT jobs": 1})
    finally:
        worker.stop()
    (publish,) = [s for s in spans if s["name"] == "publish tasks.record"]
    (process,) = [s for s in spans if s["name"] == "process tasks.record"]
    assert publish["kind"] == 4 and not publish.get("parentSpanId"), "the publish is the trace's root"
    assert process["traceId"] == publish["traceId"] and process["parentSpanId"] == publish["spanId"]


def test_apply_and_eager_runs_nest_under_the_calling_span(otlp, redis_server, worker_env):
    env = agent_env(otlp, REDIS_URL=redis_server.url, JOBS_DB=worker_env["JOBS_DB"])
    run_script("import tigerops, tasks\n"
               "with tigerops.span('caller'):\n"
               "    tasks.record.apply(args=(7,)).get()\n"
               "    tasks.app.conf.task_always_eager = True\n"
               "    tasks.record.delay(8).get()\n", env)
    spans = wait_all(otlp, {"caller": 1, "process tasks.record": 2, "INSERT jobs": 2})
    (caller,) = [s for s in spans if s["name"] == "caller"]
    runs = [s for s in spans if s["name"] == "process tasks.record"]
    assert [r["parentSpanId"] for r in runs] == [caller["spanId"]] * 2, "apply() and eager runs start no new trace"
    inserts = [s for s in spans if s["name"] == "INSERT jobs"]
    assert sorted(i["parentSpanId"] for i in inserts) == sorted(r["spanId"] for r in runs)
