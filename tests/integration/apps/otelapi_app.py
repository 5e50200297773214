"""A Flask app instrumented by hand with opentelemetry-api only (no SDK), as
apps migrating from the OpenTelemetry SDK are: run under the agent, its
spans must land in TigerOps traces."""
import sys

from flask import Flask, jsonify
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

app = Flask(__name__)
tracer = trace.get_tracer(__name__, "1.0")
LINKED = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, TraceFlags(1))


def ids(span):
    c = span.get_span_context()
    return {"trace_id": "%032x" % c.trace_id, "span_id": "%016x" % c.span_id}


@app.route("/health")
def health():
    return "ok"


@app.route("/manual")
def manual():
    seen = {"view": ids(trace.get_current_span())}
    with tracer.start_as_current_span("load-user", kind=SpanKind.CLIENT, attributes={"user.id": 42},
                                      links=[Link(LINKED, {"link.reason": "batch"})]) as outer:
        outer.set_attribute("cache.hit", False)
        outer.set_attributes({"db.rows": 3, "tags": ["a", "b"]})
        outer.add_event("cache-miss", {"key": "user:42"})
        seen["outer"] = ids(outer)
        seen["outer_current"] = ids(trace.get_current_span())
        seen["recording"] = outer.is_recording()
        inner = tracer.start_span("render-profile")
        with trace.use_span(inner, end_on_exit=True):
            seen["inner_current"] = ids(trace.get_current_span())
            inner.record_exception(KeyError("missing"), {"handled": True})
            inner.set_status(Status(StatusCode.ERROR, "partial profile"))
        seen["inner"] = ids(inner)
        seen["back_to_outer"] = ids(trace.get_current_span())
    return jsonify(seen)


@app.route("/explicit-parent")
def explicit_parent():
    parent = tracer.start_span("parent-not-current")
    child = tracer.start_span("child-of-explicit", context=trace.set_span_in_context(parent))
    root = tracer.start_span("fresh-root", context=trace.set_span_in_context(trace.INVALID_SPAN))
    child.end()
    parent.end()
    root.end()
    return jsonify(parent=ids(parent), child=ids(child), root=ids(root))


@tracer.start_as_current_span("decorated-work")
def decorated_work():
    return ids(trace.get_current_span())


@app.route("/decorated")
def decorated():
    return jsonify(decorated_work())


@app.route("/fails")
def fails():
    with tracer.start_as_current_span("doomed"):
        raise RuntimeError("boom")


@app.errorhandler(RuntimeError)
def on_error(exc):
    # What many apps put in their error bodies.
    return jsonify(error=str(exc), trace_id="%032x" % trace.get_current_span().get_span_context().trace_id), 500


@app.route("/modules")
def modules():
    return jsonify(sorted(m for m in sys.modules if m.startswith("opentelemetry")))


@app.route("/propagate")
def propagate():
    # The API's own propagators (opentelemetry.propagate) read the current
    # span through trace.get_current_span(): they must see ours.
    from opentelemetry import propagate as otel_propagate
    headers = {}
    otel_propagate.inject(headers)
    remote = otel_propagate.extract({"traceparent": "00-%032x-%016x-01" % (LINKED.trace_id, LINKED.span_id)})
    with tracer.start_as_current_span("continues-remote", context=remote) as span:
        continued = ids(span)
    return jsonify(injected=headers, continued=continued)


# Fan-in: a span linked to the messages it consumed, with explicit start
# and end times; the links carry trace state, a PII-bearing attribute (the
# exporter masks it as any other attribute string) and typed values.
FAN_IN = [
    SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True, TraceFlags(1),
                TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")])),
    SpanContext(0x11111111111111112222222222222222, 0x3333333333333333, False, TraceFlags(0)),
]


@app.route("/links")
def links():
    with tracer.start_as_current_span("consume-batch", kind=SpanKind.CONSUMER, start_time=1700000000000000000,
                                      end_on_exit=False,
                                      links=[Link(FAN_IN[0], {"messaging.message.id": "m-1", "reply.to":
                                                              "bob@example.com", "retries": 2, "ok": True}),
                                             Link(FAN_IN[1])]) as span:
        span.add_link(LINKED, {"late": True})
        seen = ids(span)
    span.end(end_time=1700000000000000500)
    return jsonify(seen)


@app.route("/many-links")
def many_links():
    # Past the core's 128 links: the rest are counted, not kept.
    fan_in = [Link(SpanContext(0x0AF7651916CD43DD8448EB211C80319C, i + 1, True, TraceFlags(1)), {"i": i})
              for i in range(200)]
    with tracer.start_as_current_span("fan-in-200", links=fan_in):
        pass
    return jsonify(ok=True)
