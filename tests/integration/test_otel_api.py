"""The OpenTelemetry API bridge: an app instrumented with opentelemetry-api
alone (no SDK) runs under the agent in gunicorn; its manual spans nest in
our traces with their attributes, events, links and status, and
trace.get_current_span() answers with our spans.

Needs opentelemetry-api importable by the interpreter running pytest (a
venv: tests/otelapi/requirements-*.txt); skipped otherwise."""
import base64
import json
import struct

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
    assert outer["links"] == [{"traceId": LINKED_TRACE, "spanId": LINKED_SPAN, "traceState": "",
                               "attributes": {"link.reason": "batch"}, "droppedAttributesCount": 0}]
    assert outer["droppedLinksCount"] == 0
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


# The links apps/otelapi_app.py's /links gives its span, as the receiver
# flattens them; the PII in an attribute is masked as in any attribute.
FAN_IN_LINKS = [
    {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
     "traceState": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
     "attributes": {"messaging.message.id": "m-1", "reply.to": "***@*******.***", "retries": 2, "ok": True},
     "droppedAttributesCount": 0},
    {"traceId": "11111111111111112222222222222222", "spanId": "3333333333333333", "traceState": "",
     "attributes": {}, "droppedAttributesCount": 0},
    {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7", "traceState": "",
     "attributes": {"late": True}, "droppedAttributesCount": 0},
]
# Link.flags as the exporter writes them (sampled, bits 8-9: remoteness
# known, remote), read off the wire: the receiver's protos predate the field.
FAN_IN_FLAGS = [0x301, 0x100, 0x301]


def protobuf_link_flags(body, span_name):
    from otlp import protobuf_fields
    found = []
    for _, resource_spans in protobuf_fields(body):
        for n2, scope_spans in protobuf_fields(resource_spans):
            for n3, span in (protobuf_fields(scope_spans) if n2 == 2 else ()):
                fields = list(protobuf_fields(span)) if n3 == 2 else []
                if (5, span_name.encode()) in [(n, bytes(v)) for n, v in fields if n == 5]:
                    found.append([struct.unpack("<I", dict(protobuf_fields(v))[6])[0] for n, v in fields if n == 13])
    return found


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_links_and_explicit_times_arrive_with_every_protocol(protocol):
    from grpc_receiver import GrpcReceiver
    from otlp import OtlpReceiver
    with (GrpcReceiver() if protocol == "grpc" else OtlpReceiver()) as receiver:
        if protocol == "grpc":
            env = agent_env(None, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint)
        else:
            env = agent_env(receiver)
        env.update(OTEL_EXPORTER_OTLP_PROTOCOL=protocol, TIGEROPS_SERVICE_NAME="otelapi")
        with gunicorn("otelapi_app:app", env, workers=1) as server:
            seen = get_json(server, "/links")
            receiver.wait_for_spans(lambda s: s["name"] == "consume-batch")
        (span,) = [s for s in receiver.spans() if s["name"] == "consume-batch"]
        requests = receiver.requests(bodies=True)
    assert {"trace_id": span["traceId"], "span_id": span["spanId"]} == seen
    assert span["kind"] == 5  # CONSUMER
    assert (span["startTimeUnixNano"], span["endTimeUnixNano"]) == ("1700000000000000000", "1700000000000000500")
    assert span["links"] == FAN_IN_LINKS
    assert span["droppedLinksCount"] == 0
    carrying = [r for r in requests if b"consume-batch" in base64.b64decode(r["body"])]
    assert len(carrying) == 1 and carrying[0]["decoded"], carrying
    (request,) = carrying
    body = base64.b64decode(request["body"])
    if protocol == "http/json":
        assert request["encoding"] == "json"
        (wire,) = [s for rs in json.loads(body)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
                   if s["name"] == "consume-batch"]
        assert [link["flags"] for link in wire["links"]] == FAN_IN_FLAGS
        assert "droppedLinksCount" not in wire
        assert b"bob@example.com" not in body
    else:
        assert request.get("transport", "http") == ("grpc" if protocol == "grpc" else "http")
        assert request.get("encoding", "protobuf") == "protobuf"
        assert protobuf_link_flags(body, "consume-batch") == [FAN_IN_FLAGS]
        assert b"bob@example.com" not in body


def test_links_past_the_limit_are_counted_in_both_encodings():
    from otlp import OtlpReceiver
    got = {}
    for protocol in ("http/protobuf", "http/json"):
        with OtlpReceiver() as receiver:
            env = agent_env(receiver, OTEL_EXPORTER_OTLP_PROTOCOL=protocol, TIGEROPS_SERVICE_NAME="otelapi")
            with gunicorn("otelapi_app:app", env, workers=1) as server:
                get_json(server, "/many-links")
                receiver.wait_for_spans(lambda s: s["name"] == "fan-in-200")
            (span,) = [s for s in receiver.spans() if s["name"] == "fan-in-200"]
        got[protocol] = span
        assert len(span["links"]) == 128 and span["droppedLinksCount"] == 72, protocol
        assert span["links"][127]["attributes"] == {"i": 127}
    assert got["http/protobuf"]["links"] == got["http/json"]["links"]
