"""Nothing is lost across process recycling and shutdown: every task
published from a request has exactly one PRODUCER and one CONSUMER span at
the receiver, with gunicorn workers recycled by --max-requests and prefork
children recycled by --max-tasks-per-child, and both stopped by SIGTERM.

TIGEROPS_LOSS_TASKS sets the number of tasks (a manual full-size run)."""
import collections
import concurrent.futures
import os
import time

import redis

from agent import agent_env, gunicorn
from test_celery import Worker

TASKS = int(os.environ.get("TIGEROPS_LOSS_TASKS", "1000"))


def card_shaped_id(i):
    """A task id whose digit groups read as a Luhn-valid card number: the last
    two (about 1 random UUID in 23,000) for i < 3, the first three (about 1 in
    12,000: it failed a CI run) after that. PII masking once hid such spans."""
    digits = [int(d) for d in "%015d" % (938627114639650 + i)]
    total = sum(d if k % 2 else (2 * d if d < 5 else 2 * d - 9) for k, d in enumerate(reversed(digits)))
    card = "".join(map(str, digits)) + str(-total % 10)
    if i < 3:
        return "%08x-1cd7-4ab3-%s-%s" % (i, card[:4], card[4:])
    return "%s-%s-%s-aec5-%012x" % (card[:8], card[8:12], card[12:], i)


def publish_all(web, n, threads=8):
    """The ids of n tasks, each published by its own request; a few of them
    chosen to look like card numbers."""
    def one(i):
        query = "?id=" + card_shaped_id(i) if i < 6 else ""
        status, body, _ = web.get("/publish" + query)
        assert status == 200, body
        return body.strip()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def wait_results(url, ids, timeout):
    """Polls the result backend until every task has run."""
    client = redis.Redis.from_url(url)
    keys = ["celery-task-meta-" + i for i in ids]
    deadline = time.monotonic() + timeout
    while True:
        done = sum(client.exists(*keys[i:i + 500]) for i in range(0, len(keys), 500))
        if done == len(ids) or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


def message_ids(spans, name):
    return collections.Counter(s["attributes"].get("messaging.message.id") for s in spans if s["name"] == name)


def test_every_task_has_one_producer_and_one_consumer_span_across_recycling_and_shutdown(
        otlp, redis_server, tmp_path):
    # The default 5 s schedule delay: spans wait in the queue as in production, so
    # only the flush at a process's exit can deliver its last ones.
    common = dict(REDIS_URL=redis_server.url, JOBS_DB=str(tmp_path / "jobs.db"), OTEL_BSP_SCHEDULE_DELAY="5000")
    worker = Worker(agent_env(otlp, preload=False, TIGEROPS_SERVICE_NAME="worker", **common),
                    concurrency=4, extra=("--max-tasks-per-child", "25", "-O", "fair"))
    try:
        env = agent_env(otlp, TIGEROPS_SERVICE_NAME="web", **common)
        web = gunicorn("publisher:app", env, workers=2, extra=("--max-requests", "150", "--max-requests-jitter", "30"))
        try:
            ids = publish_all(web, TASKS)
        finally:
            web.stop()
            web_log = web.output()
            os.unlink(web.log.name)
        assert len(set(ids)) == TASKS
        assert wait_results(redis_server.url, ids, timeout=120) == TASKS, worker.output()[-3000:]
    finally:
        worker.stop()
    want = collections.Counter(ids)

    def complete(spans):
        return message_ids(spans, "publish tasks.echo") == want and message_ids(spans, "process tasks.echo") == want
    deadline = time.monotonic() + 20
    spans = otlp.spans()
    while not complete(spans) and time.monotonic() < deadline:
        time.sleep(0.2)
        spans = otlp.spans()
    producers, consumers = message_ids(spans, "publish tasks.echo"), message_ids(spans, "process tasks.echo")
    missing_p, missing_c = want - producers, want - consumers
    extra = (producers - want) + (consumers - want)
    # What the agent said in either service (an exit flush cut short says so).
    said = [line for line in (web_log + worker.output()).splitlines() if "tigerops[" in line]
    assert not missing_p and not missing_c and not extra, (
        "%d tasks: %d PRODUCER and %d CONSUMER spans missing, %d unexpected; missing producers %s, "
        "consumers %s; unexpected %s; the agent said:\n%s" % (
            TASKS, sum(missing_p.values()), sum(missing_c.values()), sum(extra.values()), sorted(missing_p)[:5],
            sorted(missing_c)[:5], sorted(extra)[:5], "\n".join(said[-40:])))
