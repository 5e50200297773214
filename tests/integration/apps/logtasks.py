"""A Celery task that logs (broker and result backend: REDIS_URL)."""
import logging
import os

from celery import Celery

app = Celery("logtasks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
             backend=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
app.conf.task_default_queue = "logtasks"
log = logging.getLogger("logtasks")


@app.task
def log_in_task(n):
    log.warning("task step %d", n)
    return n
