"""Celery tasks (broker and result backend: REDIS_URL), one of them running
SQL, one failing, one retrying, one raising an expected exception."""
import os

from celery import Celery, Task
from flask import Flask, current_app
from sqlalchemy import create_engine, text

app = Celery("tasks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
             backend=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
app.conf.task_default_queue = "celery"
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
