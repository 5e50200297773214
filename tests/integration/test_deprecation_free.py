"""On Flask 3.1 / Werkzeug 3.1 / SQLAlchemy 2.0 the agent imports and runs
every hook without touching a deprecated API: apps/everything.py, run under
`python -W error::DeprecationWarning`, exercises them all in test-client
requests; a deprecated (or removed) name the agent used would fail the run
or show in the agent's log, and the spans prove each path was traced."""
import json
import subprocess

import pytest

from agent import APPS, PYTHON, agent_env, server_spans

REQUIRED = ["flask", "werkzeug", "sqlalchemy", "flask_sqlalchemy", "flask_caching", "flask_login", "jinja2",
            "requests", "httpx", "urllib3", "celery", "redis"]
PROBE = """
import importlib, importlib.metadata as m, json
missing = []
for name in %r:
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
def version(dist):
    try:
        return tuple(int(p) for p in m.version(dist).split(".")[:2])
    except Exception:
        return None
print(json.dumps({"missing": missing, "flask": version("flask"), "werkzeug": version("werkzeug"),
                  "sqlalchemy": version("sqlalchemy")}))
""" % (REQUIRED,)


def _stack():
    r = subprocess.run([PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else {"missing": ["(probe failed: %s)" % r.stderr[-200:]]}


STACK = _stack()


def _skip_reason():
    if STACK["missing"]:
        return "needs %s for %s" % (", ".join(STACK["missing"]), PYTHON)
    for dist, least in (("flask", (3, 1)), ("werkzeug", (3, 1)), ("sqlalchemy", (2, 0))):
        if STACK[dist] is None or tuple(STACK[dist]) < least:
            return ("the Flask 3.1 / Werkzeug 3.1 / SQLAlchemy 2.0 stack only (%s is %s here)"
                    % (dist, ".".join(map(str, STACK[dist] or ("?",)))))
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def test_every_hook_runs_without_deprecated_apis(otlp, redis_server):
    env = agent_env(otlp, TIGEROPS_LOG_LEVEL="info")
    r = subprocess.run([PYTHON, "-W", "error::DeprecationWarning", "everything.py", redis_server.url],
                       env=env, cwd=APPS, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    agent_lines = [line for line in r.stderr.splitlines() if line.startswith("tigerops[")]
    assert [line for line in agent_lines if ": info: tracer " not in line] == [], \
        "the agent logged a problem (a hook that failed open):\n" + "\n".join(agent_lines)

    spans = otlp.wait_for_spans(lambda s: s["kind"] == 2, count=5)
    (work,) = server_spans(spans, "GET /work")
    trace = [s for s in spans if s["traceId"] == work["traceId"] and s["spanId"] != work["spanId"]]
    assert all(s["parentSpanId"] == work["spanId"] for s in trace), [s["name"] for s in trace]
    systems = sorted(s["attributes"].get("db.system.name", "") for s in trace if s["kind"] == 3)
    assert systems.count("sqlite") == 3 and "redis" in systems, systems  # INSERT, SELECT; sqlite3's SELECT 1
    names = [s["name"] for s in trace]
    assert {"cache.set", "cache.get", "render <string>", "publish everything.ping"} <= set(names), names
    http = [s for s in trace if s["kind"] == 3 and "http.request.method" in s["attributes"]]
    assert len(http) == 4, "requests, httpx, urllib3, urllib.request: %s" % names
    assert work["attributes"]["code.function"] == "work"

    (fail,) = server_spans(spans, "GET /fail")
    (event,) = [e for e in fail["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "LookupError", "got_request_exception is connected"

    if "flask_restx" not in r.stdout:  # installed
        invalid = [s for s in server_spans(spans, "POST /x/echo")
                   if s["attributes"]["http.response.status_code"] == 400]
        assert len(invalid) == 1 and invalid[0]["status"].get("code", 0) == 0
