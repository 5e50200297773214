"""The OpenTelemetry API bridge: an app instrumented with opentelemetry-api
alone (no SDK) runs under the agent in gunicorn; its manual spans nest in
our traces with their attributes, events, links and status, and
trace.get_current_span() answers with our spans.

Needs opentelemetry-api importable by the interpreter running pytest (a
venv: tests/otelapi/requirements-*.txt); skipped otherwise."""
import json

import pytest

pytest.importorskip("opentelemetry.trace")

from agent import agent_env, gunicorn, server_spans  # noqa: E402

LINKED_TRACE, LINKED_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def otlp_module():
    from otlp import OtlpReceiver
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def app(otlp_module):
    with gunicorn("otelapi_app:app", agent_env(otlp_module, TIGEROPS_SERVICE_NAME="otelapi"), workers=1) as server:
        yield otlp_module, server


def get_json(server, path, status=200):
    code, body, _ = server.get(path)
    assert code == status, (path, body, server.output())
    return json.loads(body)


def spans_of(otlp, root_name, count):
    otlp.wait_for_spans(lambda s: s["name"] == root_name)
    (root,) = server_spans(otlp.spans(), root_name)
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"], count=count)
    return root, {s["name"]: s for s in spans if s["traceId"] == root["traceId"]}


def test_manual_spans_nest_in_the_request_trace_with_their_data(app):
    otlp, server = app
    seen = get_json(server, "/manual")
    root, spans = spans_of(otlp, "GET /manual", 3)
    outer, inner = spans["load-user"], spans["render-profile"]
    assert seen["view"] == {"trace_id": root["traceId"], "span_id": root["spanId"]}, \
        "get_current_span() in a view is the request span"
    assert seen["outer"] == seen["outer_current"] == {"trace_id": root["traceId"], "span_id": outer["spanId"]}
    assert seen["inner_current"] == seen["inner"] == {"trace_id": root["traceId"], "span_id": inner["spanId"]}
    assert seen["back_to_outer"] == seen["outer"]
    assert seen["recording"] is True
    assert outer["parentSpanId"] == root["spanId"] and inner["parentSpanId"] == outer["spanId"]
    assert outer["kind"] == 3  # CLIENT
    a = outer["attributes"]
    assert a["user.id"] == 42 and a["cache.hit"] is False and a["db.rows"] == 3 and a["tags"] == ["a", "b"]
    assert [(e["name"], e["attributes"]) for e in outer["events"]] == [("cache-miss", {"key": "user:42"})]
    assert outer["links"] == [{"traceId": LINKED_TRACE, "spanId": LINKED_SPAN, "attributes": {"link.reason": "batch"}}]
    assert outer["status"]["code"] == 0
    assert inner["status"] == {"code": 2, "message": "partial profile"}
    (exc,) = inner["events"]
    assert exc["name"] == "exception" and exc["attributes"]["exception.type"] == "KeyError"
    assert exc["attributes"]["handled"] is True
    assert int(inner["endTimeUnixNano"]) <= int(outer["endTimeUnixNano"]) <= int(root["endTimeUnixNano"])


def test_explicit_contexts_choose_the_parent(app):
    otlp, server = app
    seen = get_json(server, "/explicit-parent")
    root, spans = spans_of(otlp, "GET /explicit-parent", 3)
    parent, child = spans["parent-not-current"], spans["child-of-explicit"]
    assert parent["parentSpanId"] == root["spanId"], "start_span without context: under the current span"
    assert child["parentSpanId"] == parent["spanId"] and child["traceId"] == root["traceId"]
    otlp.wait_for_spans(lambda s: s["name"] == "fresh-root")
    (fresh,) = [s for s in otlp.spans() if s["name"] == "fresh-root"]
    assert fresh["traceId"] != root["traceId"] and not fresh["parentSpanId"], "an empty context starts a trace"
    assert seen["root"]["trace_id"] == fresh["traceId"]


def test_decorator_form_nests_too(app):
    otlp, server = app
    seen = get_json(server, "/decorated")
    root, spans = spans_of(otlp, "GET /decorated", 2)
    work = spans["decorated-work"]
    assert work["parentSpanId"] == root["spanId"]
    assert seen == {"trace_id": root["traceId"], "span_id": work["spanId"]}


def test_error_bodies_keep_the_trace_id_and_failing_spans_record_it(app):
    otlp, server = app
    body = get_json(server, "/fails", status=500)
    root, spans = spans_of(otlp, "GET /fails", 2)
    assert body["trace_id"] == root["traceId"]
    doomed = spans["doomed"]
    assert doomed["parentSpanId"] == root["spanId"]
    assert doomed["status"] == {"code": 2, "message": "RuntimeError: boom"}
    assert [e["name"] for e in doomed["events"]] == ["exception"]


def test_an_app_that_sets_its_own_provider_keeps_it(otlp):
    with gunicorn("otelapi_own_provider:app", agent_env(otlp), workers=1) as server:
        seen = get_json(server, "/own")
        otlp.wait_for_spans(lambda s: s["name"] == "GET /own")
        log = server.output()
    assert seen == {"provider": "NoOpTracerProvider", "span": "NonRecordingSpan", "recording": False}
    assert not [s for s in otlp.spans() if s["name"] == "should-not-be-ours"]
    assert log.count("set its own OpenTelemetry TracerProvider") == 1, log


def test_apps_that_do_not_use_opentelemetry_never_import_it(otlp):
    with gunicorn("otelapi_free:app", agent_env(otlp), workers=1) as server:
        assert get_json(server, "/modules") == []


def test_the_apis_own_propagators_see_our_spans(app):
    otlp, server = app
    seen = get_json(server, "/propagate")
    root, _ = spans_of(otlp, "GET /propagate", 1)
    assert seen["injected"]["traceparent"] == "00-%s-%s-01" % (root["traceId"], root["spanId"])
    otlp.wait_for_spans(lambda s: s["name"] == "continues-remote")
    (remote,) = [s for s in otlp.spans() if s["name"] == "continues-remote"]
    assert remote["traceId"] == LINKED_TRACE and remote["parentSpanId"] == LINKED_SPAN
    assert seen["continued"] == {"trace_id": LINKED_TRACE, "span_id": remote["spanId"]}
