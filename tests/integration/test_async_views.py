"""Flask async views: asgiref runs the coroutine in another thread's event
loop with the request's context copied, so spans opened around awaits must
still be children of the request span."""
import concurrent.futures
import subprocess

from agent import APPS, PYTHON, agent_env, gunicorn


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


REGISTRATION = """
import flask, _tigerops
app = flask.Flask("registration")
@app.route("/sync")
def sync_view():
    return "ok"
after_sync = _tigerops.context_mode()
bp = flask.Blueprint("bp", "bp")
@bp.route("/async")
async def async_view():
    return "ok"
before_blueprint = _tigerops.context_mode()
app.register_blueprint(bp)
print(after_sync, before_blueprint, _tigerops.context_mode())
"""


def test_an_async_view_switches_to_contextvars_when_registered_not_at_a_request():
    """gthread workers start several requests at once: the model must be
    decided before any of them opens a span, so registration decides it
    (here through a blueprint) and no request ever runs."""
    r = subprocess.run([PYTHON, "-c", REGISTRATION], env=agent_env(), cwd=APPS, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "True"], (r.stdout, r.stderr)
