"""Streamed responses (stream_with_context) and app.test_client() requests:
the request span covers the whole stream, spans opened while the body is
generated are its children, a failure mid-stream makes it an error span;
test-client requests are traced like served ones, and excluded by
TIGEROPS_EXCLUDED_URLS like them."""
import subprocess

from agent import PYTHON, agent_env, gunicorn, server_spans


def trace_of(spans, root):
    return [s for s in spans if s["traceId"] == root["traceId"]]


def check_stream(spans, n, word):
    (root,) = [s for s in server_spans(spans, "GET /stream/<int:n>")
               if s["attributes"]["url.path"] == "/stream/%d" % n]
    assert root["attributes"]["http.response.status_code"] == 200 and root["status"]["code"] == 0
    children = sorted(trace_of(spans, root), key=lambda s: int(s["startTimeUnixNano"]))[1:]
    assert [s["name"] for s in children] == ["chunk-%d" % i for i in range(n)], [s["name"] for s in children]
    for chunk in children:
        assert chunk["parentSpanId"] == root["spanId"], chunk["name"]
        assert int(root["startTimeUnixNano"]) <= int(chunk["startTimeUnixNano"])
        assert int(chunk["endTimeUnixNano"]) <= int(root["endTimeUnixNano"]), "the span covers the whole stream"
    duration_ms = (int(root["endTimeUnixNano"]) - int(root["startTimeUnixNano"])) / 1e6
    assert duration_ms >= 50 * n * 0.9, duration_ms
    return root


def check_failed_stream(spans):
    (root,) = server_spans(spans, "GET /stream-fail")
    assert root["status"]["code"] == 2, root["status"]
    assert root["attributes"]["http.response.status_code"] == 200, "the status line had gone out"
    assert root["status"]["message"] == "the feed broke mid-stream", root["status"]
    assert root["attributes"]["error.type"] == "RuntimeError", root["attributes"]
    (event,) = [e for e in root["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "RuntimeError"
    assert "the feed broke mid-stream" in event["attributes"]["exception.stacktrace"]
    (child,) = [s for s in trace_of(spans, root) if s["spanId"] != root["spanId"]]
    assert child["name"] == "before-failure" and child["parentSpanId"] == root["spanId"]


def test_streamed_responses_under_gunicorn(otlp):
    with gunicorn("streamy:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/stream/3?word=w")
        assert status == 200 and body == "w 0\nw 1\nw 2\n"
        status, body, _ = server.get("/stream/1")
        assert status == 200 and body == "chunk 0\n"
        try:
            server.get("/stream-fail")
        except Exception:  # the server cuts the chunked body short: the client may see that as an error
            pass
        spans = otlp.wait_for_spans(lambda s: s["kind"] == 2 and "stream" in s["name"], count=3)
        spans = otlp.wait_for_spans(lambda s: s["name"].startswith("chunk-") or s["name"] == "before-failure",
                                    count=5)
    check_stream(spans, 3, "w")
    check_stream(spans, 1, "chunk")
    check_failed_stream(spans)


TEST_CLIENT = """
import streamy, tigerops
client = streamy.app.test_client()
assert client.get("/plain/x").data == b"plain x"
assert client.get("/plain/skip").data == b"plain skip"
with client.get("/stream/3?word=t") as r:
    assert r.data == b"t 0\\nt 1\\nt 2\\n", r.data
r = client.get("/stream-fail")
try:
    r.data
except RuntimeError:
    pass
else:
    raise AssertionError("the failure reached the test client")
r.close()
assert tigerops.flush(10000)
"""


def test_test_client_requests_are_traced_and_excluded_by_config(otlp):
    env = agent_env(otlp, TIGEROPS_EXCLUDED_URLS="/plain/skip")
    r = subprocess.run([PYTHON, "-c", TEST_CLIENT], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    spans = otlp.wait_for_spans(lambda s: s["kind"] == 2, count=3)
    spans = otlp.wait_for_spans(lambda s: s["name"].startswith("chunk-") or s["name"] == "before-failure", count=4)
    (plain,) = server_spans(spans, "GET /plain/<name>")
    assert plain["attributes"]["url.path"] == "/plain/x"
    (work,) = [s for s in spans if s["name"] == "work-x"]
    assert work["parentSpanId"] == plain["spanId"] and work["traceId"] == plain["traceId"]
    assert not [s for s in server_spans(spans) if s["attributes"].get("url.path") == "/plain/skip"]
    check_stream(spans, 3, "t")
    check_failed_stream(spans)
