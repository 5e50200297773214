"""One SERVER span per Flask request, under every supported server, with no
change to the app; each worker exports its own spans with its own ids."""
import pytest

from agent import agent_env, flask_run, gunicorn, server_spans, uwsgi

ROUTE = "GET /hello/<name>"


def drive(server, n=8):
    for i in range(n):
        status, body, _ = server.get("/hello/w%d" % i)
        assert status == 200 and body == "hello w%d" % i


def assert_request_spans(spans, n, service):
    hello = server_spans(spans, ROUTE)
    assert len(hello) >= n, [s["name"] for s in spans]
    ids = [s["spanId"] for s in spans]
    assert len(ids) == len(set(ids)), "duplicate span ids across workers"
    for s in hello:
        a = s["attributes"]
        assert a["http.request.method"] == "GET"
        assert a["http.route"] == "/hello/<name>"
        assert a["url.path"].startswith("/hello/w")
        assert a["url.scheme"] == "http"
        assert a["http.response.status_code"] == 200
        assert a["server.address"] == "127.0.0.1"
        assert isinstance(a["server.port"], int) and a["server.port"] > 0
        assert a["client.address"] == "127.0.0.1"
        assert a["network.protocol.version"] in ("1.0", "1.1")
        assert a["user_agent.original"].startswith("Python-urllib")
        assert a["code.function"] == "hello"
        assert a["code.namespace"] == "hello"
        assert a["flask.endpoint"] == "hello"
        assert s["parentSpanId"] == ""
        assert s["status"]["code"] == 0
        r = s["resource"]
        assert r["service.name"] == service
        assert r["telemetry.sdk.name"] == "tigerops"
        assert r["telemetry.sdk.language"] == "python"
        assert r["process.runtime.name"] == "cpython"
        assert isinstance(r["process.pid"], int)
        assert r["host.name"]
    assert len({s["traceId"] for s in hello}) == len(hello)
    return hello


def pids(spans):
    return {s["resource"]["process.pid"] for s in spans}


def busy_all_workers(server, otlp, n=8):
    """Concurrent slow requests: a busy sync worker cannot accept, so every
    worker serves some. Returns the pids that exported their spans."""
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda i: server.get("/slow?s=0.3")[0], range(n)))
    assert statuses == [200] * n
    spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /slow", count=n)
    return pids(server_spans(spans, "GET /slow"))


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_sync_two_workers(otlp, preload):
    env = agent_env(otlp, TIGEROPS_SERVICE_NAME="orders")
    extra = ("--preload",) if preload else ()
    with gunicorn("hello:app", env, workers=2, extra=extra) as server:
        # Enough requests that both workers serve some (the kernel spreads accepts).
        drive(server, 20)
        spans = otlp.wait_for_spans(lambda s: s["name"] == ROUTE, count=20)
        assert len(busy_all_workers(server, otlp)) == 2, "each worker exports its own spans"
    assert_request_spans(spans, 20, "orders")


def test_gunicorn_gthread_concurrent_requests(otlp):
    import concurrent.futures
    env = agent_env(otlp, TIGEROPS_SERVICE_NAME="gthread-svc")
    with gunicorn("hello:app", env, workers=1, extra=("-k", "gthread", "--threads", "4")) as server:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: server.get("/hello/w%d" % i), range(40)))
        assert all(r[0] == 200 for r in results)
        spans = otlp.wait_for_spans(lambda s: s["name"] == ROUTE, count=40)
    hello = assert_request_spans(spans, 40, "gthread-svc")
    assert sorted(s["attributes"]["url.path"] for s in hello) == sorted("/hello/w%d" % i for i in range(40))


def test_uwsgi_master_two_processes(otlp):
    env = agent_env(otlp, TIGEROPS_SERVICE_NAME="uwsgi-svc")
    with uwsgi("hello:app", env, processes=2) as server:
        drive(server, 20)
        spans = otlp.wait_for_spans(lambda s: s["name"] == ROUTE, count=20)
        assert len(busy_all_workers(server, otlp)) == 2, "each worker exports its own spans"
    assert_request_spans(spans, 20, "uwsgi-svc")


def test_flask_run(otlp):
    env = agent_env(otlp, TIGEROPS_SERVICE_NAME="dev-server")
    with flask_run("hello", env) as server:
        drive(server, 5)
        spans = otlp.wait_for_spans(lambda s: s["name"] == ROUTE, count=5)
    assert_request_spans(spans, 5, "dev-server")


def test_preload_master_spans_buffered_at_fork_are_exported_once_by_the_master(otlp):
    # The warm-up span sits in the master's queue when the workers fork
    # (60 s schedule delay): only the master may export it, at its exit.
    env = agent_env(otlp, OTEL_BSP_SCHEDULE_DELAY="60000")
    with gunicorn("warmup:app", env, workers=2, extra=("--preload",)) as server:
        _, master_pid, _ = server.get("/warm")
        for i in range(10):
            assert server.get("/hello/f%d" % i)[0] == 200
        server.stop()
    spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>", count=10)
    warm = [s for s in spans if s["name"] == "GET /warm"]
    master = [s for s in warm if s["resource"]["process.pid"] == int(master_pid)]
    assert len(master) == 1, "the master's buffered span must be exported exactly once: %d" % len(master)
    assert len(warm) == 2, "one from the master at import, one served by a worker"
    ids = [s["spanId"] for s in spans]
    assert len(ids) == len(set(ids))
