"""Celery (Debian's 5.2, or the matrix venvs' 5.2-5.5) on a Redis broker and
on a RabbitMQ one, under each worker pool: every publish is a PRODUCER span
and the worker's CONSUMER span continues it through the message headers;
spans inside a task stay under it even when gevent runs many tasks on one
thread; a revoked task gets a span; a task queued outside any span (a
script, a Flask CLI command, celery beat) starts a trace the worker
continues.

One OTLP receiver and one worker per (broker, pool) serve the whole module,
each worker on a queue of its own; tests tell their spans apart by trace and
task id."""
import concurrent.futures
import importlib.util
import json
import os
import signal
import subprocess
import time

import pytest

from agent import APPS, PYTHON, agent_env
from otlp import OtlpReceiver
from test_celery import Worker

PRODUCER, CONSUMER, CLIENT = 4, 5, 3
# The prefork worker takes the default queue: the script, CLI and beat
# tests publish there as an app would.
QUEUES = {"prefork": "celery", "solo": "solo", "threads": "threads", "gevent": "gevent", "eventlet": "eventlet"}
CONCURRENCY = {"prefork": 2, "solo": 1, "threads": 4, "gevent": 20, "eventlet": 20}
NESTED = 12  # tasks per pool, all in flight at once where the pool allows


def pool_available(pool):
    return pool not in ("gevent", "eventlet") or importlib.util.find_spec(pool) is not None


def skip_unless_available(pool):
    if not pool_available(pool):
        pytest.skip("%s is not installed for %s" % (pool, PYTHON))


@pytest.fixture(scope="module")
def otlp_m():
    with OtlpReceiver() as receiver:
        yield receiver


class Workers:
    """Workers started once for the module: all the Redis ones at once (they
    boot in parallel), the RabbitMQ ones on first use."""

    def __init__(self, otlp, redis_url, jobs_db):
        self.otlp, self.redis_url, self.jobs_db = otlp, redis_url, jobs_db
        self.running = {}

    def start(self, keys, broker_url=None):
        def one(key):
            broker, pool = key
            service = "worker-%s-%s" % key
            env = agent_env(self.otlp, preload=False, REDIS_URL=self.redis_url, BROKER_URL=broker_url or "",
                            TIGEROPS_SERVICE_NAME=service, JOBS_DB=self.jobs_db)
            name = "%s-%s@tgo" % key
            worker = Worker(env, pool=pool, concurrency=CONCURRENCY[pool], extra=("-Q", QUEUES[pool], "-n", name))
            worker.name, worker.queue, worker.service = name, QUEUES[pool], service
            return worker
        todo = [k for k in keys if k not in self.running]
        with concurrent.futures.ThreadPoolExecutor(max(1, len(todo))) as ex:
            futures = {k: ex.submit(one, k) for k in todo}
        errors = []
        for key, future in futures.items():
            try:
                self.running[key] = future.result()
            except Exception as e:  # the rest still get stopped at teardown
                errors.append(e)
        if errors:
            raise errors[0]

    def get(self, broker, pool, broker_url=None):
        self.start([(broker, pool)], broker_url)
        return self.running[(broker, pool)]

    def stop_all(self):
        # In parallel: a gevent worker's warm shutdown alone takes ~5 s.
        with concurrent.futures.ThreadPoolExecutor(max(1, len(self.running))) as ex:
            list(ex.map(lambda w: w.stop(), self.running.values()))


@pytest.fixture(scope="module")
def workers(request, otlp_m, redis_server, tmp_path_factory):
    try:
        request.getfixturevalue("rabbitmq_booting")  # boots while the Redis tests run
    except Exception:
        pass  # the RabbitMQ tests fail with the reason; the Redis ones need no node
    ws = Workers(otlp_m, redis_server.url, str(tmp_path_factory.mktemp("celery-brokers") / "jobs.db"))
    try:
        ws.start([("redis", p) for p in QUEUES if pool_available(p)])
        yield ws
    finally:
        ws.stop_all()


def run_python(otlp, workers, argv, service, broker_url=None, timeout=90, **extra):
    """Runs PYTHON argv under the agent in the apps folder; its last stdout
    line, as JSON when it parses."""
    env = agent_env(otlp, REDIS_URL=workers.redis_url, BROKER_URL=broker_url or "", JOBS_DB=workers.jobs_db,
                    TIGEROPS_SERVICE_NAME=service, **extra)
    r = subprocess.run([PYTHON] + argv, env=env, cwd=APPS, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    try:
        return json.loads(last)
    except ValueError:
        return last


def one(spans, what, **attrs):
    found = [s for s in spans if all((s["attributes"].get(k[5:]) if k.startswith("attr_") else s.get(k)) == v
                                     for k, v in attrs.items())]
    assert len(found) == 1, "%s: %d spans match %r: %s" % (what, len(found), attrs,
                                                           sorted(s["name"] for s in spans))
    return found[0]


def wait_trace(otlp, trace_id, counts, timeout=30):
    """The spans of one trace, once it holds count spans named each name."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in otlp.spans() if s["traceId"] == trace_id]
        have = {n: sum(1 for s in spans if s["name"] == n) for n in counts}
        if all(have[n] >= c for n, c in counts.items()):
            return spans
        if time.monotonic() > deadline:
            raise AssertionError("trace %s after %ss: %r, want %r; names %s"
                                 % (trace_id, timeout, have, counts, sorted(s["name"] for s in spans)))
        time.sleep(0.05)


def check_link(trace, task_id, task, queue, service, parent="", state="SUCCESS"):
    """The PRODUCER span of task_id under parent ("" for a root) and the
    CONSUMER span continuing it: names, kinds, messaging attributes."""
    publish = one(trace, "publish of " + task_id, kind=PRODUCER, **{"attr_messaging.message.id": task_id})
    process = one(trace, "run of " + task_id, kind=CONSUMER, **{"attr_messaging.message.id": task_id})
    assert publish["name"] == "publish " + task and process["name"] == "process " + task
    assert publish["parentSpanId"] == parent
    assert process["parentSpanId"] == publish["spanId"] and process["traceId"] == publish["traceId"]
    for s in (publish, process):
        a = s["attributes"]
        assert a["messaging.system"] == "celery" and a["celery.task.name"] == task, a
        assert a["messaging.destination.name"] == queue, a
    assert publish["attributes"]["messaging.operation.type"] == "publish"
    assert process["attributes"]["messaging.operation.type"] == "process"
    assert process["attributes"]["celery.state"] == state
    assert process["resource"]["service.name"] == service
    return publish, process


CALLER = """
import json, sys, tigerops, tasks
queue, n = sys.argv[1], int(sys.argv[2])
with tigerops.span("caller") as caller:
    results = [tasks.nested.apply_async(args=(i,), queue=queue) for i in range(n)]
    trace = caller.traceparent.split("-")[1]
print(json.dumps({"trace": trace, "ids": {r.id: r.get(timeout=60) for r in results}}))
"""


def check_nested(otlp, worker, out, broker):
    n = len(out["ids"])
    trace = wait_trace(otlp, out["trace"], {"process tasks.nested": n, "caller": 1})
    caller = one(trace, "caller", name="caller")
    assert caller["parentSpanId"] == ""
    for task_id, i in out["ids"].items():
        publish, process = check_link(trace, task_id, "tasks.nested", worker.queue, worker.service,
                                      parent=caller["spanId"])
        outer = one(trace, "outer-%d" % i, name="outer-%d" % i)
        inner = one(trace, "inner-%d" % i, name="inner-%d" % i)
        sql = one(trace, "SQL of task %d" % i, parentSpanId=inner["spanId"])
        assert outer["parentSpanId"] == process["spanId"], (broker, worker.name, i)
        assert inner["parentSpanId"] == outer["spanId"], (broker, worker.name, i)
        assert sql["kind"] == CLIENT and "task_%d" % i in sql["attributes"]["db.query.text"], sql
        # Besides the result backend's own Redis commands.
        assert [s["name"] for s in trace if s["parentSpanId"] == process["spanId"]
                and s["attributes"].get("db.system.name") != "redis"] == ["outer-%d" % i]
    others = [s["name"] for s in trace if s["attributes"].get("db.system.name") != "redis"]
    assert len(others) == 1 + n * 5, sorted(others)


@pytest.mark.parametrize("pool", list(QUEUES))
def test_redis_publish_and_run_linked_in_every_pool(otlp_m, workers, pool):
    # Under gevent and eventlet the tasks' sleeps interleave them on one
    # thread: a current span kept per thread would put one task's inner
    # spans under another task's outer span.
    skip_unless_available(pool)
    worker = workers.get("redis", pool)
    out = run_python(otlp_m, workers, ["-c", CALLER, worker.queue, str(NESTED)], "publisher")
    assert sorted(out["ids"].values()) == list(range(NESTED))
    check_nested(otlp_m, worker, out, "redis")


REVOKE = """
import json, sys, time, uuid, tigerops, tasks
dest, queue = sys.argv[1], sys.argv[2]
doomed = str(uuid.uuid4())
# Revoked by id before it is published: the worker discards it on arrival.
assert tasks.app.control.revoke(doomed, destination=[dest], reply=True, timeout=10, limit=1)
with tigerops.span("caller") as caller:
    tasks.record.apply_async(args=(90,), task_id=doomed, queue=queue)
    # Due in 1 s, expired after 0.2 s: the worker discards it.
    late = tasks.record.apply_async(args=(91,), queue=queue, countdown=1, expires=0.2).id
    trace = caller.traceparent.split("-")[1]
deadline = time.monotonic() + 30
while {tasks.app.AsyncResult(i).state for i in (doomed, late)} != {"REVOKED"}:
    assert time.monotonic() < deadline, [tasks.app.AsyncResult(i).state for i in (doomed, late)]
    time.sleep(0.05)
print(json.dumps({"trace": trace, "doomed": doomed, "late": late}))
"""


def test_revoked_and_expired_tasks_get_a_span(otlp_m, workers):
    worker = workers.get("redis", "solo")
    out = run_python(otlp_m, workers, ["-c", REVOKE, worker.name, worker.queue], "publisher")
    trace = wait_trace(otlp_m, out["trace"], {"process tasks.record": 2})
    caller = one(trace, "caller", name="caller")
    for task_id, reason in ((out["doomed"], "revoked"), (out["late"], "expired")):
        _, process = check_link(trace, task_id, "tasks.record", worker.queue, worker.service,
                                parent=caller["spanId"], state="REVOKED")
        assert process["attributes"]["celery.revoked.reason"] == reason
        assert process["status"].get("code", 0) != 2, "revoking is no error"
    assert not [s for s in trace if s["name"].startswith("INSERT")], "neither task ran"


TERMINATE = """
import json, os, sys, time, redis, tigerops, tasks
dest = sys.argv[1]
with tigerops.span("caller") as caller:
    r = tasks.sleepy.apply_async(args=(60,))
    trace = caller.traceparent.split("-")[1]
started = redis.Redis.from_url(os.environ["REDIS_URL"])
deadline = time.monotonic() + 30
while not started.exists("started:" + r.id):
    assert time.monotonic() < deadline, "never started"
    time.sleep(0.05)
assert tasks.app.control.revoke(r.id, destination=[dest], terminate=True, reply=True, timeout=10, limit=1)
while r.state != "REVOKED":
    assert time.monotonic() < deadline, r.state
    time.sleep(0.05)
print(json.dumps({"trace": trace, "id": r.id}))
"""


def test_a_task_terminated_while_running_gets_a_revoked_span(otlp_m, workers):
    # The main process announces the revocation; the child it killed (SIGTERM:
    # billiard raises SystemExit in the task) ends and flushes its run's span.
    worker = workers.get("redis", "prefork")
    out = run_python(otlp_m, workers, ["-c", TERMINATE, worker.name], "publisher")
    trace = wait_trace(otlp_m, out["trace"], {"process tasks.sleepy": 2})
    caller = one(trace, "caller", name="caller")
    publish = one(trace, "publish", name="publish tasks.sleepy")
    assert publish["parentSpanId"] == caller["spanId"]
    runs = [s for s in trace if s["name"] == "process tasks.sleepy"]
    revoked = one(runs, "revocation", **{"attr_celery.state": "REVOKED"})
    (ran,) = [s for s in runs if s is not revoked]
    for s in (revoked, ran):
        assert s["parentSpanId"] == publish["spanId"] and s["kind"] == CONSUMER
        assert s["attributes"]["messaging.message.id"] == out["id"]
        assert s["resource"]["service.name"] == worker.service
    assert revoked["attributes"]["celery.revoked.reason"] == "terminated"
    assert revoked["attributes"]["celery.revoked.signal"] == "SIGTERM"
    assert revoked["resource"]["process.pid"] != ran["resource"]["process.pid"], "the main process, not the child"
    assert "celery.state" not in ran["attributes"], "the run never finished"
    assert int(revoked["startTimeUnixNano"]) >= int(ran["startTimeUnixNano"])


def test_a_script_publish_is_a_root_producer_span(otlp_m, workers):
    worker = workers.get("redis", "prefork")
    code = "import json, tasks; r = tasks.record.delay(41); r.get(timeout=30); print(json.dumps(r.id))"
    task_id = run_python(otlp_m, workers, ["-c", code], "script")
    spans = otlp_m.wait_for_spans(lambda s: s["attributes"].get("messaging.message.id") == task_id, count=2)
    publish = one(spans, "publish", kind=PRODUCER, **{"attr_messaging.message.id": task_id})
    trace = wait_trace(otlp_m, publish["traceId"], {"process tasks.record": 1, "INSERT jobs": 1})
    _, process = check_link(trace, task_id, "tasks.record", "celery", worker.service)
    assert publish["resource"]["service.name"] == "script"
    assert one(trace, "INSERT", name="INSERT jobs")["parentSpanId"] == process["spanId"]


def test_a_flask_cli_command_publish_is_a_root_producer_span(otlp_m, workers):
    worker = workers.get("redis", "prefork")
    # FLASK_APP, not --app: Flask 2.0 (the CPython 3.9 matrix venv) has no --app.
    out = run_python(otlp_m, workers, ["-m", "flask", "enqueue"], "cli", FLASK_APP="publisher")
    task_id, result = out.split()
    assert result == "1", out
    spans = otlp_m.wait_for_spans(lambda s: s["attributes"].get("messaging.message.id") == task_id, count=2)
    publish = one(spans, "publish", kind=PRODUCER, **{"attr_messaging.message.id": task_id})
    assert publish["resource"]["service.name"] == "cli"
    trace = wait_trace(otlp_m, publish["traceId"], {"process tasks.record": 1, "INSERT jobs": 1})
    check_link(trace, task_id, "tasks.record", "celery", worker.service)


def test_celery_beat_publishes_are_root_producer_spans(otlp_m, workers, tmp_path):
    worker = workers.get("redis", "prefork")
    env = agent_env(otlp_m, REDIS_URL=workers.redis_url, JOBS_DB=workers.jobs_db, TIGEROPS_SERVICE_NAME="beat",
                    TASKS_BEAT_EVERY="1")
    log = open(tmp_path / "beat.log", "w+")
    beat = subprocess.Popen([PYTHON, "-m", "celery", "-A", "tasks", "beat", "-s", str(tmp_path / "schedule"),
                             "--pidfile", str(tmp_path / "beat.pid"), "-l", "info"],
                            env=env, cwd=APPS, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def from_beat(s):
        return s["name"] == "publish tasks.echo" and s["resource"]["service.name"] == "beat"
    try:
        spans = otlp_m.wait_for_spans(from_beat, count=2, timeout=30)
    except AssertionError:
        log.seek(0)
        raise AssertionError("beat:\n" + log.read()[-3000:])
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(20)
        log.close()
    publishes = [s for s in spans if from_beat(s)][:2]
    assert len({s["traceId"] for s in publishes}) == 2, "each tick is a trace of its own"
    for publish in publishes:
        trace = wait_trace(otlp_m, publish["traceId"], {"process tasks.echo": 1})
        check_link(trace, publish["attributes"]["messaging.message.id"], "tasks.echo", "celery", worker.service)


AMQP = """
import json, sys, tigerops, tasks
queue = sys.argv[1]
with tigerops.span("caller") as caller:
    seen = tasks.headers_seen.apply_async(queue=queue)
    recorded = tasks.record.apply_async(args=(77,), queue=queue)
    trace = caller.traceparent.split("-")[1]
print(json.dumps({"trace": trace, "seen": [seen.id, seen.get(timeout=60)], "recorded": recorded.id,
                  "count": recorded.get(timeout=60)}))
"""


@pytest.mark.parametrize("pool", ["prefork", "gevent"])
def test_rabbitmq_publish_and_run_linked(otlp_m, workers, rabbitmq, pool):
    skip_unless_available(pool)
    worker = workers.get("amqp", pool, broker_url=rabbitmq.url)
    assert "amqp://" in worker.output() and str(rabbitmq.port) in worker.output()
    out = run_python(otlp_m, workers, ["-c", AMQP, worker.queue], "publisher", broker_url=rabbitmq.url)
    trace = wait_trace(otlp_m, out["trace"], {"process tasks.headers_seen": 1, "process tasks.record": 1,
                                              "INSERT jobs": 1})
    caller = one(trace, "caller", name="caller")
    seen_id, traceparent = out["seen"]
    publish, _ = check_link(trace, seen_id, "tasks.headers_seen", worker.queue, worker.service,
                            parent=caller["spanId"])
    assert traceparent == "00-%s-%s-01" % (out["trace"], publish["spanId"]), "carried in the AMQP message headers"
    _, process = check_link(trace, out["recorded"], "tasks.record", worker.queue, worker.service,
                            parent=caller["spanId"])
    assert one(trace, "INSERT", name="INSERT jobs")["parentSpanId"] == process["spanId"]
