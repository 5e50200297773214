"""A Flask app that queues Celery tasks."""
from celery import chain, chord, group
from flask import Flask, request

import tasks

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/enqueue")
def enqueue():
    tasks.record.delay(7)
    return "queued"


@app.route("/variety")
def variety():
    tasks.record.apply_async(args=(8,))
    tasks.app.send_task("tasks.record", args=(9,))
    chain(tasks.record.si(10), tasks.record.si(11)).apply_async()
    group(tasks.record.si(20), tasks.record.si(21)).apply_async()
    chord([tasks.record.si(30), tasks.record.si(31)])(tasks.total.s())
    tasks.in_app_context.delay()
    return "queued"


@app.route("/failures")
def failures():
    tasks.fail.delay()
    tasks.flaky.delay()
    tasks.expected.delay()
    return "queued"


@app.route("/publish")
def publish():
    return tasks.echo.apply_async(args=(1,), task_id=request.args.get("id")).id


@app.cli.command("enqueue")
def enqueue_command():
    """A command that queues a task outside any span (FLASK_APP=publisher)."""
    result = tasks.record.delay(43)
    print(result.id, result.get(timeout=30))
