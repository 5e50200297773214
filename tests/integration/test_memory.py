"""What the agent costs a gunicorn sync worker in memory: after 30,000
requests (a hello route and a route with three SQL statements), the worker's
RSS is within 2 MB of the same app's worker without the agent, with a healthy
collector and with one that hangs (the span queue at its bound, a batch held
in flight; a refused connection costs less), and it does not grow between
10,000 and 30,000 requests.

The bare worker and the agent's run side by side in the same test, so the
machine's state is the same for both; RSS is read from /proc/PID/smaps_rollup
of the worker (not the master)."""
import os
import socket
import threading
import time

from agent import APPS, agent_env, clean_env, gunicorn
from util import HangingCollector

REQUESTS = int(os.environ.get("TIGEROPS_MEMORY_REQUESTS", "30000"))
CHECKPOINTS = (REQUESTS // 3, REQUESTS)
# The agent's worker over the bare worker: issue 12's 2 MB. The venvs had
# measured +2.0-2.3 MB: their interpreters found no bytecode of the agent
# (PYTHONDONTWRITEBYTECODE here, a root-owned install in production) and
# compiled it at start-up, leaving ~800 KB of fragmented heap; the install
# now byte-compiles for them (PYTHON_BYTECODE_FOR), as the packages do.
BUDGET_KB = 2048
GROWTH_KB = 256       # between the checkpoints: no growth beyond noise


def worker_pid(server):
    pid = server.proc.pid
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        kids = f.read().split()
    assert len(kids) == 1, "one sync worker expected, found %r" % kids
    return int(kids[0])


def rss_kb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    raise AssertionError("no Rss in smaps_rollup of %d" % pid)


def get(port, path):
    """One request on its own connection (a sync worker closes it anyway)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        head = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            head += chunk
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"), head[:300]


def drive(server, results, key):
    """REQUESTS requests, two hello for one SQL route, and the worker's RSS
    at each checkpoint."""
    try:
        pid = worker_pid(server)
        done, rss = 0, []
        for stop in CHECKPOINTS:
            while done < stop:
                get(server.port, "/items/%d" % (done % 97) if done % 3 == 1 else "/hello/w%d" % (done % 2))
                done += 1
            rss.append(rss_kb(pid))
        results[key] = rss
    except BaseException as e:  # reported by the test, not lost in the thread
        results[key] = e


def test_worker_rss_stays_within_its_ceiling_over_the_bare_worker_healthy_and_collector_down(otlp):
    hanging = HangingCollector()
    servers = {}
    try:
        servers["bare"] = gunicorn("memapp:app", clean_env(PYTHONPATH=APPS), workers=1)
        # The production schedule (5 s), not the tests' 50 ms: what a worker holds between exports.
        for key, endpoint in (("healthy", otlp), ("hanging", hanging)):
            servers[key] = gunicorn("memapp:app", agent_env(endpoint, OTEL_BSP_SCHEDULE_DELAY="5000"), workers=1)
        results = {}
        t0 = time.monotonic()
        threads = [threading.Thread(target=drive, args=(srv, results, key)) for key, srv in servers.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        for key, r in results.items():
            if isinstance(r, BaseException):
                raise AssertionError("%s: %r\n%s" % (key, r, servers[key].output()[-3000:]))
        bare = results["bare"]
        report = "after %s requests (%.0f s): bare %s kB; %s" % (
            CHECKPOINTS, took, bare, "; ".join("%s %s kB (%+d)" % (k, results[k], results[k][-1] - bare[-1])
                                               for k in ("healthy", "hanging")))
        print(report)
        # The agent traced and exported (or tried to) all along.
        assert len(otlp.spans()) > REQUESTS // 2, report
        assert hanging.started(b"POST /v1/traces") >= 1, report
        for key in ("healthy", "hanging"):
            first, last = results[key]
            assert last - bare[-1] <= BUDGET_KB, "%s worker over bare by more than %d kB: %s" % (key, BUDGET_KB, report)
            assert last - first <= GROWTH_KB + max(0, bare[-1] - bare[0]), \
                "%s worker grew between %d and %d requests: %s" % (key, CHECKPOINTS[0], CHECKPOINTS[1], report)
    finally:
        for srv in servers.values():
            srv.__exit__(None, None, None)
        hanging.close()
