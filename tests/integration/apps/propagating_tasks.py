"""A Celery task that calls DOWNSTREAM_URL: what the worker received from
the publisher is what it passes on."""
import os

import requests
from celery import Celery

app = Celery("propagating_tasks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
app.conf.task_default_queue = "propagating"


@app.task
def forward(name):
    return requests.get(os.environ.get("DOWNSTREAM_URL", "http://127.0.0.1:1") + "/" + name, timeout=10).status_code
