"""Celery tasks (broker and result backend: REDIS_URL; BROKER_URL, when set,
is the broker), one of them running SQL, one failing, one retrying, one
raising an expected exception. TASKS_BEAT_EVERY=seconds gives celery beat a
schedule that queues tasks.echo that often."""
import os
import time

from celery import Celery, Task
from flask import Flask, current_app
from sqlalchemy import create_engine, text

app = Celery("tasks", broker=os.environ.get("BROKER_URL") or os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
             backend=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
app.conf.task_default_queue = "celery"
if os.environ.get("TASKS_BEAT_EVERY"):
    app.conf.beat_schedule = {"tick": {"task": "tasks.echo", "schedule": float(os.environ["TASKS_BEAT_EVERY"]),
                                       "args": (5,)}}
# A file, not :memory:, so every pool thread and process sees the table.
engine = create_engine("sqlite:///" + os.environ.get("JOBS_DB", "/tmp/tigerops-jobs.db"), future=True)
with engine.begin() as c:
    c.execute(text("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, n INTEGER)"))


@app.task
def record(n):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO jobs (n) VALUES (:n)"), {"n": n})
        return conn.execute(text("SELECT count(*) FROM jobs WHERE n = :n"), {"n": n}).scalar()


@app.task
def fail():
    raise ValueError("task failed on purpose")


@app.task(bind=True, max_retries=1)
def flaky(self):
    if self.request.retries == 0:
        raise self.retry(exc=RuntimeError("first try fails"), countdown=0)
    return "second try"


@app.task(throws=(KeyError,))
def expected():
    raise KeyError("expected")


flask_app = Flask("worker-app")


class ContextTask(Task):
    """The Flask docs' pattern: every task body runs inside the app context."""

    def __call__(self, *args, **kwargs):
        with flask_app.app_context():
            return self.run(*args, **kwargs)


@app.task(base=ContextTask)
def in_app_context():
    return current_app.name


@app.task
def total(values):
    return sum(values)


# A task whose argument ends up in a database error: a UNIQUE violation
# (the value inserted twice in one transaction, always rolled back) on
# CHARGES_DB_URL, or the jobs SQLite file. Retried once, then it fails.
charges = create_engine(os.environ.get("CHARGES_DB_URL") or
                        "sqlite:///" + os.environ.get("JOBS_DB", "/tmp/tigerops-jobs.db"), future=True)


@app.task(bind=True, max_retries=1)
def charge(self, token):
    from sqlalchemy.exc import IntegrityError
    try:
        with charges.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS echo_charges (token VARCHAR(80) UNIQUE)"))
            for _ in range(2):
                conn.execute(text("INSERT INTO echo_charges (token) VALUES (:t)"), {"t": token})
    except IntegrityError as e:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=e, countdown=0)
        raise


@app.task
def echo(n):
    return n


@app.task
def nested(i):
    """Spans inside a task around sleeps that, under -P gevent (time patched),
    hand the thread to the other tasks' greenlets half-way through."""
    import tigerops
    with tigerops.span("outer-%d" % i):
        time.sleep(0.05)
        with tigerops.span("inner-%d" % i):
            time.sleep(0.05)
            with engine.connect() as conn:
                conn.execute(text("SELECT :i AS task_%d" % i), {"i": i})
    return i


@app.task(bind=True)
def headers_seen(self):
    """The traceparent the worker read from the message headers."""
    return self.request.get("traceparent")


@app.task(bind=True)
def sleepy(self, seconds):
    """Marks itself started in the result backend's redis, then sleeps (to be
    terminated while it runs)."""
    import redis
    redis.Redis.from_url(os.environ["REDIS_URL"]).set("started:" + self.request.id, 1, ex=120)
    time.sleep(seconds)


@app.task
def fan_out(queue, n):
    """Publishes n echo tasks to queue, from inside a task."""
    for i in range(n):
        echo.apply_async((i,), queue=queue)
    return n
