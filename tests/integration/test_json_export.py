"""OTLP/HTTP JSON (OTEL_EXPORTER_OTLP_PROTOCOL=http/json). The same app
(apps/jsonshop.py) under gunicorn with the agent preloaded and no code
change gets the same requests twice: once exporting OTLP/protobuf, once
OTLP/JSON, with gzip off and on. The receiver decodes the JSON with the
official generated types after a strict check of the OTLP JSON rules
(tests/receiver/otlp-receiver.js), and both runs must deliver the same
spans: names, kinds, trace ids and tracestate from the incoming
traceparent, the parent/child structure, every attribute value, the
exception events with their tracebacks, the status, the resource and the
scope, with PII masked and bind values scrubbed identically."""
import base64
import json
import re

import pytest

from agent import agent_env, gunicorn

TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
REMOTE_PARENT = "00f067aa0ba902b7"
# Route -> the trace id its request carries in, the same in both runs.
ROUTES = {
    "/user/bob@example.com": "4bf92f3577b34da6a3ce929d0e0e4736",
    "/fail": "0af7651916cd43dd8448eb211c80319c",
    "/dup": "a3ce929d0e0e47364bf92f3577b34da6",
    "/typed": "11111111111111112222222222222222",
}
SECRETS = [b"sk_live_JSONSECRET42", b"bob@example.com", b"4111 1111 1111 1111"]
# What legitimately differs between two runs of the same app.
RUN_SPECIFIC_ATTRIBUTES = {"server.port", "client.port", "network.peer.port", "url.full", "server.address",
                           "network.local.port", "thread.id", "process.pid", "service.instance.id"}


def export_run(otlp, tmp_path, protocol, compress):
    env = agent_env(otlp, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                    JSONSHOP_DB=str(tmp_path / "jsonshop.db"),  # one path: it is in attributes
                    OTEL_EXPORTER_OTLP_COMPRESSION="gzip" if compress else "none",
                    TIGEROPS_SERVICE_NAME="jsonshop", TIGEROPS_LOG_LEVEL="info")
    with gunicorn("jsonshop:app", env, workers=1) as server:
        for path, trace_id in ROUTES.items():
            headers = {"traceparent": "00-%s-%s-01" % (trace_id, REMOTE_PARENT), "tracestate": TRACESTATE}
            status = server.get(path, headers=headers)[0]
            assert status == (500 if path in ("/fail", "/dup") else 200), server.output()[-3000:]
        otlp.wait_for_spans(lambda s: s["kind"] == 2 and s["traceId"] in ROUTES.values(), count=len(ROUTES))
        server.stop()  # the rest of the queue goes out at shutdown
        startup = [line for line in server.output().splitlines() if ": info: tracer " in line]
        assert startup and " protocol=%s%s " % (protocol, "+gzip" if compress else "") in startup[0], startup
    spans = [s for s in otlp.spans() if s["traceId"] in ROUTES.values()]
    requests = [r for r in otlp.requests(bodies=True) if r["path"] == "/v1/traces"]
    return spans, requests


def check_structure(spans):
    """Within one run: every trace hangs off the remote parent, every other
    span off a span of its own trace; ids are hex of the right length."""
    by_trace = {}
    for s in spans:
        assert re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", s["spanId"]), s
        by_trace.setdefault(s["traceId"], []).append(s)
    assert set(by_trace) == set(ROUTES.values())
    for trace in by_trace.values():
        ids = {s["spanId"] for s in trace}
        assert len(ids) == len(trace), "span ids are unique"
        roots = [s for s in trace if s["parentSpanId"] == REMOTE_PARENT]
        assert len(roots) == 1 and roots[0]["kind"] == 2, trace
        for s in trace:
            assert s is roots[0] or s["parentSpanId"] in ids, s


def comparable(spans):
    """The spans of a run without what differs between runs (span ids, times,
    ports, the pid): per trace, a list sorted by name, each span with its
    parent's name in place of the parent's id."""
    names = {s["spanId"]: s["name"] for s in spans}
    out = {}
    for s in spans:
        out.setdefault(s["traceId"], []).append({
            "name": s["name"], "kind": s["kind"], "parent": names.get(s["parentSpanId"], s["parentSpanId"]),
            "traceState": s["traceState"], "status": s["status"],
            "attributes": {k: v for k, v in s["attributes"].items() if k not in RUN_SPECIFIC_ATTRIBUTES},
            "droppedAttributesCount": s["droppedAttributesCount"], "droppedEventsCount": s["droppedEventsCount"],
            "events": [{"name": e["name"], "attributes": e["attributes"]} for e in s["events"]],
            "links": s["links"], "scope": s["scope"],
            "resource": {k: v for k, v in s["resource"].items() if k not in RUN_SPECIFIC_ATTRIBUTES},
            "timed": int(s["startTimeUnixNano"]) > 0 and int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]),
        })
    for trace in out.values():
        trace.sort(key=lambda s: (s["name"], json.dumps(s, sort_keys=True)))
    return out


def assert_same_traces(protobuf, js):
    a, b = comparable(protobuf), comparable(js)
    assert a.keys() == b.keys()
    for trace_id in a:
        assert len(a[trace_id]) == len(b[trace_id]), (trace_id, [s["name"] for s in a[trace_id]],
                                                      [s["name"] for s in b[trace_id]])
        for sp, sj in zip(a[trace_id], b[trace_id]):
            assert sp == sj, "protobuf and JSON differ for %s:\n%s\n%s" % (sp["name"], sp, sj)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_json_export_delivers_what_protobuf_delivers(otlp, tmp_path, compress):
    protobuf, pb_requests = export_run(otlp, tmp_path, "http/protobuf", compress)
    otlp.reset()
    js, js_requests = export_run(otlp, tmp_path, "http/json", compress)

    # The wire: JSON as the spec says, decoded by the receiver, gzip as configured.
    assert js_requests and all(r["decoded"] and r["encoding"] == "json" and r["status"] == 200 for r in js_requests), \
        [(r["encoding"], r["error"]) for r in js_requests]
    for r in js_requests:
        assert r["headers"]["content-type"] == "application/json"
        assert r["headers"].get("content-encoding") == ("gzip" if compress else None)
    assert all(r["encoding"] == "protobuf" and r["headers"]["content-type"] == "application/x-protobuf"
               for r in pb_requests)
    bodies = [base64.b64decode(r["body"]) for r in js_requests]
    documents = [json.loads(b) for b in bodies]  # strict UTF-8 and JSON
    wire_span = next(s for d in documents for rs in d["resourceSpans"] for ss in rs["scopeSpans"]
                     for s in ss["spans"] if s["traceId"] == ROUTES["/typed"] and s["kind"] == 2)
    assert isinstance(wire_span["startTimeUnixNano"], str) and wire_span["kind"] == 2
    assert wire_span["parentSpanId"] == REMOTE_PARENT and wire_span["traceState"] == TRACESTATE
    typed = {kv["key"]: kv["value"] for kv in wire_span["attributes"]}
    assert typed["t.max"] == {"intValue": "9223372036854775807"}
    assert typed["t.min"] == {"intValue": "-9223372036854775808"}
    assert typed["t.nan"] == {"doubleValue": "NaN"} and typed["t.inf"] == {"doubleValue": "Infinity"}
    assert typed["t.ratio"] == {"doubleValue": 0.1} and typed["t.huge"] == {"doubleValue": -1e300}
    assert typed["t.none"] == {"arrayValue": {}}
    assert typed["t.words"]["arrayValue"]["values"][3] == {"stringValue": "d\ne"}
    raw_text = b"".join(bodies)
    assert b"\\u0001\\u001f" in raw_text and b'\\"quote\\"' in raw_text, "control characters and quotes escaped"
    for secret in SECRETS:
        for what, wire in (("JSON", raw_text), ("protobuf", b"".join(base64.b64decode(r["body"])
                                                                     for r in pb_requests))):
            assert secret not in wire, "%r left the process in %s" % (secret, what)

    # The same spans, whichever the encoding.
    check_structure(protobuf)
    check_structure(js)
    assert_same_traces(protobuf, js)

    # ... and they say what the app did.
    spans = comparable(js)
    (fail,) = [s for s in spans[ROUTES["/fail"]] if s["kind"] == 2]
    assert fail["status"]["code"] == 2
    (exc,) = [e["attributes"] for e in fail["events"] if e["name"] == "exception"]
    assert exc["exception.type"] == "ValueError"
    assert exc["exception.message"].startswith('bad "quote" back\\slash tab\t nl\n ctl\x01\x1f caf\u00e9 \u2603 '
                                               '\U0001F600 mail ***@*******.*** card **** **** **** ****')
    assert "Traceback (most recent call last)" in exc["exception.stacktrace"]
    assert 'raise ValueError(TRICKY)' in exc["exception.stacktrace"]
    (dup,) = [s for s in spans[ROUTES["/dup"]] if s["kind"] == 2]
    (dup_exc,) = [e["attributes"] for e in dup["events"] if e["name"] == "exception"]
    assert "[parameters: ***" in dup_exc["exception.message"], dup_exc["exception.message"]
    assert any(s["kind"] == 3 for s in spans[ROUTES["/dup"]]), "the database spans are there"
    (user,) = [s for s in spans[ROUTES["/user/bob@example.com"]] if s["kind"] == 2]
    assert user["attributes"]["url.path"] == "/user/***@*******.***"
    (typed_span,) = [s for s in spans[ROUTES["/typed"]] if s["kind"] == 2]
    t = typed_span["attributes"]
    assert t["t.max"] == "9223372036854775807" and t["t.safe"] == str(2 ** 53 + 1) and t["t.third"] == 1 / 3
    assert t["t.words"] == ["a", 'b"c', "", "d\ne"] and t["t.bools"] == [True, False] and t["t.none"] == []
    assert t["t.ints"] == [1, "-9223372036854775808", str(2 ** 62)]
    assert t["t.str"].endswith("mail ***@*******.*** card **** **** **** ****"), t["t.str"]
    assert typed_span["resource"]["service.name"] == "jsonshop"
    assert isinstance(typed_span["resource"].get("telemetry.sdk.name"), str)
