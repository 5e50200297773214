"""Flask async views: asgiref runs the coroutine in another thread's event
loop with the request's context copied, so spans opened around awaits must
still be children of the request span."""
import concurrent.futures

from agent import agent_env, gunicorn


def test_spans_in_async_views_nest_under_the_request(otlp):
    n = 40
    with gunicorn("asyncviews:app", agent_env(otlp), workers=1, extra=("-k", "gthread", "--threads", "4")) as server:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda i: server.get("/async/%d" % i)[0], range(n))) == [200] * n
        spans = otlp.wait_for_spans(lambda s: s["name"].startswith("inner-"), count=n)
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /async/<int:i>", count=n)
    roots = [s for s in spans if s["name"] == "GET /async/<int:i>"]
    assert len(roots) == n
    for root in roots:
        i = int(root["attributes"]["url.path"].rsplit("/", 1)[1])
        trace = {s["name"]: s for s in spans if s["traceId"] == root["traceId"]}
        assert sorted(trace) == sorted(["GET /async/<int:i>", "outer-%d" % i, "inner-%d" % i]), (i, sorted(trace))
        assert trace["outer-%d" % i]["parentSpanId"] == root["spanId"]
        assert trace["inner-%d" % i]["parentSpanId"] == trace["outer-%d" % i]["spanId"]
