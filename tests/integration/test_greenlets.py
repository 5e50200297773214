"""gevent and eventlet: many requests interleave on one thread, so the
current span must follow the greenlet. 200 concurrent requests, each with
nested span() blocks around sleeps, SQL and an outgoing HTTP call, must
give 200 whole traces with every parent right and nothing crossing over."""
import concurrent.futures
import re

from agent import APPS, PYTHON, Server, agent_env, free_port, gunicorn

N = 200


def check_traces(otlp):
    spans = otlp.wait_for_spans(lambda s: s["name"].startswith("GET /leaf"), count=N, timeout=60)
    spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /work/<int:i>", count=N, timeout=30)
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s["traceId"], []).append(s)
    work = [s for s in spans if s["name"] == "GET /work/<int:i>"]
    assert len(work) == N
    assert len({s["traceId"] for s in work}) == N, "requests share a trace"
    seen = set()
    for root in work:
        i = int(root["attributes"]["url.path"].rsplit("/", 1)[1])
        seen.add(i)
        trace = by_trace[root["traceId"]]
        names = sorted(s["name"] for s in trace)
        assert names == sorted(["GET /work/<int:i>", "outer-%d" % i, "inner-%d" % i, "SELECT", "GET",
                                "GET /leaf/<int:i>"]), (i, names)
        by_name = {s["name"]: s for s in trace}
        assert "parentSpanId" not in root or not root.get("parentSpanId")
        outer, inner = by_name["outer-%d" % i], by_name["inner-%d" % i]
        assert outer["parentSpanId"] == root["spanId"], i
        assert inner["parentSpanId"] == outer["spanId"], i
        sql = by_name["SELECT"]
        assert sql["parentSpanId"] == inner["spanId"], i
        assert re.search(r"\brequest_%d\b" % i, sql["attributes"]["db.query.text"]), (i, sql["attributes"])
        client = by_name["GET"]
        assert client["kind"] == 3 and client["parentSpanId"] == inner["spanId"], i
        assert client["attributes"]["url.full"].endswith("/leaf/%d" % i), (i, client["attributes"]["url.full"])
        leaf = by_name["GET /leaf/<int:i>"]
        assert leaf["parentSpanId"] == client["spanId"], i
    assert seen == set(range(N))


def hammer(server):
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda i: server.get("/work/%d" % i, timeout=60)[0], range(N)))
    assert statuses == [200] * N


def run_worker_class(otlp, worker_class):
    port = free_port()
    env = agent_env(otlp, SELF_URL="http://127.0.0.1:%d" % port)
    argv = [PYTHON, "-m", "gunicorn", "-k", worker_class, "-w", "1", "--worker-connections", "500",
            "-b", "127.0.0.1:%d" % port, "greenlets:app"]
    with Server(argv, env, port) as server:
        hammer(server)
        check_traces(otlp)


def test_gunicorn_gevent_workers(otlp):
    run_worker_class(otlp, "gevent")


def test_gunicorn_eventlet_workers(otlp):
    run_worker_class(otlp, "eventlet")


def test_an_app_that_patches_itself_with_gevent(otlp):
    port = free_port()
    with Server([PYTHON, "greenlets.py", str(port)], agent_env(otlp), port, cwd=APPS) as server:
        hammer(server)
        check_traces(otlp)
