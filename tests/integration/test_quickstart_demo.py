"""The README's Quick start demo, run the way its first command runs it (minus
apt and the build): the printed trees must show what the README says they
show, from the gunicorn app and the Celery worker, both under the agent."""
import os
import re
import subprocess
import time

import pytest

from agent import PREFIX, ROOT, clean_env

SPAN = re.compile(r"^(?P<indent> +)(?P<name>.+?)  (?P<kind>UNSPECIFIED|INTERNAL|SERVER|CLIENT|PRODUCER|CONSUMER)"
                  r"  (?P<ms>[0-9.]+) ms(?P<rest>.*)$")
HEADER = re.compile(r"^tigerops trace (?P<id>[0-9a-f]{32})  \((?P<service>[a-z-]+)\)$")
INCOMING_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Span:
    def __init__(self, m, service, trace_id):
        self.name, self.kind, self.rest = m["name"], m["kind"], m["rest"]
        self.service, self.trace_id = service, trace_id
        self.children = []

    def child(self, name, kind=None):
        found = [c for c in self.children if c.name == name and (kind is None or c.kind == kind)]
        assert found, "%s has no child %s %s: %s" % (self.name, name, kind or "", [c.name for c in self.children])
        return found[0]

    def __repr__(self):
        return "<%s %s%s>" % (self.name, self.kind, self.rest)


def parse_trees(output):
    """The roots of every printed tree, each knowing its trace id and service."""
    roots, stack, header = [], [], None
    for line in output.splitlines():
        h = HEADER.match(line)
        if h:
            header, stack = h, []
            continue
        m = SPAN.match(line)
        if not (m and header):
            header = None
            continue
        depth = len(m["indent"]) // 2 - 1
        span = Span(m, header["service"], header["id"])
        del stack[depth:]
        if stack:
            stack[-1].children.append(span)
        else:
            roots.append(span)
        stack.append(span)
    return roots


@pytest.fixture(scope="module")
def demo():
    start = time.monotonic()
    proc = subprocess.run(["bash", os.path.join(ROOT, "packaging", "quickstart.sh"), "--no-install"],
                          env=clean_env(TIGEROPS_TEST_PREFIX=PREFIX), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert elapsed < 60, "the demo took %.1f s" % elapsed
    return proc.stdout, parse_trees(proc.stdout)


def servers(roots, name, status):
    return [r for r in roots if r.kind == "SERVER" and r.name == name and r.rest.startswith("  [%d]" % status)]


def test_requests_answer_as_the_demo_says(demo):
    out, _ = demo
    assert re.search(r"GET  /products/1 +-> 200 \{", out), out
    assert re.search(r"POST /orders +-> 201 \{\"order\":1", out), out
    assert re.search(r"POST /orders +-> 500 ", out), out
    assert re.search(r"Celery task [0-9a-f-]{36}: SUCCESS", out), out


def test_request_hook_sql_and_cache_miss_then_hit(demo):
    out, roots = demo
    miss, hit = servers(roots, "GET /products/<int:product_id>", 200)
    for root in (miss, hit):
        assert root.service == "shop"
        hook = root.child("load_customer", "INTERNAL")
        hook.child("SELECT customer", "CLIENT")
    get = miss.child("cache.get", "INTERNAL")
    assert get.rest == "  [miss]", get
    get.child("GET", "CLIENT")  # the Redis round trip under the cache call
    miss.child("SELECT product", "CLIENT")
    miss.child("cache.set", "INTERNAL").child("SETEX", "CLIENT")
    assert hit.child("cache.get", "INTERNAL").rest == "  [hit]"
    assert [c.name for c in hit.children] == ["load_customer", "cache.get"], "a hit reads no product row"
    # The incoming traceparent's trace id is the one the hit's tree carries.
    assert hit.trace_id == INCOMING_TRACE_ID and miss.trace_id != INCOMING_TRACE_ID


def test_publish_and_the_workers_task_with_its_sql_share_the_trace(demo):
    out, roots = demo
    (order,) = servers(roots, "POST /orders", 201)
    order.child("INSERT order", "CLIENT")
    publish = order.child("publish shop.ship_order", "PRODUCER")
    assert order.children.index(publish) > order.children.index(order.child("INSERT order")), \
        "the task is published after the order is committed"
    (process,) = [r for r in roots if r.kind == "CONSUMER"]
    assert process.name == "process shop.ship_order" and process.service == "shop-worker"
    assert process.trace_id == order.trace_id, out
    process.child("SELECT order", "CLIENT")
    process.child("UPDATE order", "CLIENT")
    assert "ERROR" not in process.rest


def test_failing_request_shows_its_exception(demo):
    _, roots = demo
    (failed,) = servers(roots, "POST /orders", 500)
    assert failed.rest == "  [500]  ERROR: OutOfStock: kettle: 1 wanted, 0 left", failed
    failed.child("SELECT product", "CLIENT")
    assert not [c for c in failed.children if c.kind == "PRODUCER"], "nothing published for a failed order"
