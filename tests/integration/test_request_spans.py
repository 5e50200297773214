"""What a request span says: routes with blueprint prefixes, errors, 404s,
streaming, an incoming traceparent, and the manual API nested under it."""
import time

from agent import agent_env, gunicorn, server_spans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def one_server_span(otlp, name):
    spans = otlp.wait_for_spans(lambda s: s["name"] == name)
    found = server_spans(spans, name)
    assert len(found) == 1, [s["name"] for s in spans]
    return found[0], spans


def test_factory_app_with_blueprint_prefix_route(otlp):
    with gunicorn("factory:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/api/users/42?verbose=1", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"})
        assert status == 200 and '"id":42' in body.replace(" ", "")
        span, _ = one_server_span(otlp, "GET /api/users/<int:uid>")
    a = span["attributes"]
    assert a["http.route"] == "/api/users/<int:uid>"
    assert a["flask.blueprint"] == "api"
    assert a["flask.endpoint"] == "api.get_user"
    assert a["code.function"] == "get_user"
    assert a["url.path"] == "/api/users/42"
    assert a["url.query"] == "verbose=1"
    assert a["client.address"] == "203.0.113.9"
    assert a["network.peer.address"] == "127.0.0.1"


def test_incoming_traceparent_is_continued(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        server.get("/hello/tp", headers={"traceparent": "00-%s-%s-01" % (TRACE_ID, PARENT_ID),
                                         "tracestate": "vendor=abc"})
        span, _ = one_server_span(otlp, "GET /hello/<name>")
    assert span["traceId"] == TRACE_ID
    assert span["parentSpanId"] == PARENT_ID
    assert span["traceState"] == "vendor=abc"


def test_invalid_traceparent_starts_a_new_trace(otlp):
    bad = ["00-%s-%s-01" % (TRACE_ID.upper(), PARENT_ID), "00-%s-0000000000000000-01" % TRACE_ID,
           "garbage", "ff-%s-%s-01" % (TRACE_ID, PARENT_ID), "00-%s-%s-01-extra" % (TRACE_ID, PARENT_ID)]
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        for i, header in enumerate(bad):
            status, _, _ = server.get("/hello/bad%d" % i, headers={"traceparent": header})
            assert status == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>", count=len(bad))
    for s in server_spans(spans, "GET /hello/<name>"):
        assert s["traceId"] != TRACE_ID.lower()
        assert s["parentSpanId"] == ""


def test_unsampled_incoming_parent_is_respected(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        server.get("/hello/unsampled", headers={"traceparent": "00-%s-%s-00" % (TRACE_ID, PARENT_ID)})
        server.get("/hello/after")
        spans = otlp.wait_for_spans(lambda s: s["attributes"].get("url.path") == "/hello/after")
    assert not [s for s in spans if s["attributes"].get("url.path") == "/hello/unsampled"]


def test_unhandled_exception_is_an_error_span(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        status, _, _ = server.get("/fail")
        assert status == 500
        span, _ = one_server_span(otlp, "GET /fail")
    assert span["status"]["code"] == 2
    assert span["attributes"]["http.response.status_code"] == 500
    assert span["attributes"]["error"] is True


def test_unmatched_route_is_named_by_method_only(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        status, _, _ = server.get("/no/such/page")
        assert status == 404
        span, _ = one_server_span(otlp, "GET")
    a = span["attributes"]
    assert a["http.response.status_code"] == 404
    assert a["error"] is True
    assert "http.route" not in a
    assert span["status"]["code"] == 0, "4xx is not a server error"


def test_streaming_response_span_covers_the_whole_stream(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/stream")
        assert status == 200 and body.count("chunk") == 3
        span, _ = one_server_span(otlp, "GET /stream")
    duration_ms = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
    assert duration_ms >= 290, "the span must end when the server closes the response, not before"


def test_manual_spans_nest_under_the_request_and_init_app_is_idempotent(otlp):
    with gunicorn("manual:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/work")
        assert status == 200
        span, spans = one_server_span(otlp, "GET /work")
        spans = otlp.wait_for_spans(lambda s: s["traceId"] == span["traceId"], count=4)
    trace = [s for s in spans if s["traceId"] == span["traceId"]]
    by_name = {s["name"]: s for s in trace}
    assert sorted(by_name) == ["GET /work", "compute", "failing-block", "outer-block"], sorted(by_name)
    assert len(trace) == 4, "automatic + TigerOps(app) + init_app must give one request span"
    outer, compute, failing = by_name["outer-block"], by_name["compute"], by_name["failing-block"]
    assert outer["parentSpanId"] == span["spanId"]
    assert compute["parentSpanId"] == outer["spanId"]
    assert failing["parentSpanId"] == span["spanId"]
    assert outer["kind"] == 1
    assert outer["attributes"] == {"block.size": 3, "answer": 42}
    assert outer["events"][0]["name"] == "checkpoint" and outer["events"][0]["attributes"] == {"step": 1}
    assert failing["status"]["code"] == 2
    exc = failing["events"][0]
    assert exc["name"] == "exception"
    assert exc["attributes"]["exception.type"] == "ValueError"
    assert "handled inside" in exc["attributes"]["exception.stacktrace"]
    assert span["attributes"]["custom.tag"] == "on-request"
    assert '"traceparent":"00-%s-%s-01"' % (span["traceId"], span["spanId"]) in body.replace(" ", "")


def test_app_config_wins_over_environment(otlp):
    env = agent_env(otlp, TIGEROPS_SERVICE_NAME="from-env")
    with gunicorn("configured:app", env, workers=1) as server:
        server.get("/internal/ping")
        server.get("/health", headers={"X-Tenant": "tenant-4242"})
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /health", count=2)
    assert not [s for s in spans if "internal" in s["name"]], "app.config TIGEROPS_EXCLUDED_URLS applies"
    captured = [s["attributes"]["http.request.header.x-tenant"] for s in spans
                if "http.request.header.x-tenant" in s["attributes"]]
    assert captured == [["*" * len("tenant-4242")]], "app.config header capture and PII pattern apply"
    assert {s["resource"]["service.name"] for s in spans} == {"from-app-config"}
    assert {s["resource"]["deployment.environment.name"] for s in spans} == {"staging"}


def test_secret_query_values_never_leave_the_process(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        server.get("/hello/q?page=3&access_token=tok-SECRET-1&X-Amz-Signature=sig-SECRET-2")
        span, _ = one_server_span(otlp, "GET /hello/<name>")
    assert span["attributes"]["url.query"] == "page=3&access_token=REDACTED&X-Amz-Signature=REDACTED"
    for raw in otlp.bodies():
        assert b"SECRET" not in raw


def test_unhandled_exception_event_has_the_chained_traceback(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        assert server.get("/chained")[0] == 500
        span, _ = one_server_span(otlp, "GET /chained")
        logged = server.output()
    assert "lookup failed" in logged, "Flask logged the exception"
    assert "tigerops/python/tigerops" not in logged, "the app's own traceback shows no agent frame"
    assert span["status"]["code"] == 2
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    a = event["attributes"]
    assert a["exception.type"] == "RuntimeError"
    assert a["exception.message"] == "lookup failed"
    stack = a["exception.stacktrace"]
    assert "KeyError" in stack and "direct cause" in stack and "raise RuntimeError" in stack
    assert span["attributes"]["http.route"] == "/chained"


def test_huge_tracebacks_and_messages_are_bounded(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        assert server.get("/deep")[0] == 500
        span, _ = one_server_span(otlp, "GET /deep")
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    assert len(event["attributes"]["exception.message"]) <= 8192
    assert len(event["attributes"]["exception.stacktrace"]) <= 8192
    assert len(span["status"]["message"]) <= 8192


def test_excluded_urls_get_no_span(otlp):
    env = agent_env(otlp, OTEL_PYTHON_EXCLUDED_URLS="/health$,hello/skip-[0-9]+,([bad")
    with gunicorn("hello:app", env, workers=1) as server:
        for path in ("/health", "/hello/skip-1", "/hello/keep", "/hello/skip-me"):
            assert server.get(path)[0] == 200
        server.get("/hello/last")
        spans = otlp.wait_for_spans(lambda s: s["attributes"].get("url.path") == "/hello/last")
        assert "invalid regular expression" in server.output()
    paths = sorted(s["attributes"]["url.path"] for s in spans)
    assert paths == ["/hello/keep", "/hello/last", "/hello/skip-me"]


def test_excluded_urls_from_app_config_and_init_app(otlp):
    with gunicorn("manual:app", agent_env(otlp, MANUAL_EXCLUDED="/work"), workers=1) as server:
        server.get("/work")
        server.get("/health")
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /health")
    assert not [s for s in spans if s["name"] == "GET /work"]


def test_ten_thousand_frames_are_truncated_keeping_the_innermost(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        assert server.get("/recursion")[0] == 500
        assert server.get("/hello/after")[0] == 200, "the worker carries on"
        span, _ = one_server_span(otlp, "GET /recursion")
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    stack = event["attributes"]["exception.stacktrace"]
    assert len(stack) <= 8192
    assert stack.rstrip().endswith("LookupError: bottom of 10,000 frames"), stack[-300:]
    assert stack.count("in recurse") < 200


def test_exception_an_errorhandler_turns_into_a_500_is_recorded(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/declined")
        assert (status, body) == (500, "payment failed: card refused by the bank")
        assert server.get("/missing")[0] == 404
        declined, _ = one_server_span(otlp, "GET /declined")
        missing, _ = one_server_span(otlp, "GET /missing")
    assert declined["status"]["code"] == 2
    (event,) = [e for e in declined["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "PaymentDeclined"
    assert event["attributes"]["exception.message"] == "card refused by the bank"
    assert "raise PaymentDeclined" in event["attributes"]["exception.stacktrace"]
    assert declined["attributes"]["http.route"] == "/declined"
    assert declined["attributes"]["http.response.status_code"] == 500
    assert "user_agent.original" in declined["attributes"] and "client.address" in declined["attributes"]
    assert not [e for e in missing["events"] if e["name"] == "exception"], "a handled 4xx is no error"
    assert missing["status"].get("code", 0) != 2


def test_exception_in_a_hook_is_recorded_on_the_hook_span(otlp):
    with gunicorn("guarded:app", agent_env(otlp), workers=1) as server:
        assert server.get("/guarded")[0] == 500
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /guarded")
        spans = otlp.wait_for_spans(lambda s: s["attributes"].get("flask.hook") == "before_request"
                                    and s["status"].get("code") == 2)
    server_span = server_spans(spans, "GET /guarded")[0]
    (hook,) = [s for s in spans if s["attributes"].get("flask.hook") == "before_request"
               and s["traceId"] == server_span["traceId"]]
    assert hook["parentSpanId"] == server_span["spanId"]
    (event,) = [e for e in hook["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "PermissionError"
    assert "the guard hook refused" in event["attributes"]["exception.stacktrace"]
    assert server_span["status"]["code"] == 2


def test_exception_whose_str_fails_is_still_recorded(otlp):
    with gunicorn("hello:app", agent_env(otlp), workers=1) as server:
        assert server.get("/unprintable")[0] == 500
        assert server.get("/hello/after")[0] == 200
        span, _ = one_server_span(otlp, "GET /unprintable")
    assert span["status"]["code"] == 2
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "Unprintable"
    assert event["attributes"]["exception.message"] == "<unprintable Unprintable>"
    assert "raise Unprintable()" in event["attributes"]["exception.stacktrace"]
