"""The OTLP receiver and its fixture, checked with a hand-written protobuf
encoder (field numbers from the OTLP spec), independent of both the agent's
encoder and the receiver's protobufjs decoders. Needs no agent build."""
import base64
import gzip
import json
import struct
import time
import urllib.error
import urllib.request

import pytest

from util import free_port, wait_http

# --- minimal protobuf encoder -------------------------------------------------


def varint(n):
    n &= (1 << 64) - 1  # negative int64: ten-byte two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wire):
    return varint(field << 3 | wire)


def f_varint(field, n):
    return tag(field, 0) + varint(n)


def f_fixed64(field, n):
    return tag(field, 1) + struct.pack("<Q", n)


def f_double(field, x):
    return tag(field, 1) + struct.pack("<d", x)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return tag(field, 2) + varint(len(data)) + data


def any_value(v):  # AnyValue
    if isinstance(v, bool):
        return f_varint(2, int(v))
    if isinstance(v, int):
        return f_varint(3, v)
    if isinstance(v, float):
        return f_double(4, v)
    if isinstance(v, str):
        return f_bytes(1, v)
    if isinstance(v, list):  # ArrayValue.values = 1
        return f_bytes(5, b"".join(f_bytes(1, any_value(x)) for x in v))
    raise TypeError(v)


def attributes(field, attrs):  # repeated KeyValue {key = 1, value = 2}
    return b"".join(f_bytes(field, f_bytes(1, k) + f_bytes(2, any_value(v))) for k, v in attrs.items())


def span(trace_id, span_id, name, kind, start, end, attrs, parent=None, status=None):
    out = f_bytes(1, bytes.fromhex(trace_id)) + f_bytes(2, bytes.fromhex(span_id))
    if parent:
        out += f_bytes(4, bytes.fromhex(parent))
    out += f_bytes(5, name) + f_varint(6, kind) + f_fixed64(7, start) + f_fixed64(8, end)
    out += attributes(9, attrs)
    if status:  # Status {message = 2, code = 3}
        out += f_bytes(15, f_bytes(2, status[1]) + f_varint(3, status[0]))
    return out


def export_request(resource_attrs, scope, spans):
    """ExportTraceServiceRequest with one ResourceSpans and one ScopeSpans."""
    scope_msg = f_bytes(1, scope[0]) + f_bytes(2, scope[1])  # InstrumentationScope
    scope_spans = f_bytes(1, scope_msg) + b"".join(f_bytes(2, s) for s in spans)
    resource = attributes(1, resource_attrs)
    return f_bytes(1, f_bytes(1, resource) + f_bytes(2, scope_spans))


# --- helpers -----------------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
PARENT = "a3ce929d0e0e4736"
START = 1700000000123456789  # beyond 2**53: must come back exact, as a string
END = START + 1500000

ATTRS = {
    "http.request.method": "GET",
    "http.response.status_code": 200,
    "negative": -5,
    "big": 2 ** 40,  # int64 that is a safe integer: a JSON number
    "ratio": 0.25,
    "sampled": True,
    "off": False,
    "list": ["a", "b"],
    "numbers": [1, 2, 3],
    "empty": "",
}


def post(endpoint, body, path="/v1/traces", headers=None):
    """(status, headers, body) of a POST; HTTP errors are answers too."""
    h = {"Content-Type": "application/x-protobuf"}
    h.update(headers or {})
    req = urllib.request.Request(endpoint + path, data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def one_span_request(name="GET /hello/<name>", **kw):
    s = span(TRACE, SPAN, name, 2, START, END, ATTRS, parent=PARENT, status=(2, "boom"), **kw)
    return export_request({"service.name": "receiver-test", "process.pid": 4242}, ("tigerops", "0.1.0"), [s])


# --- tests -------------------------------------------------------------------


def test_span_is_decoded_and_flattened(otlp):
    status, headers, body = post(otlp.endpoint, one_span_request())
    assert status == 200
    assert headers["Content-Type"] == "application/x-protobuf"
    assert body == b"", "an empty ExportTraceServiceResponse"
    (s,) = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>")
    assert s["traceId"] == TRACE and s["spanId"] == SPAN and s["parentSpanId"] == PARENT
    assert s["kind"] == 2
    assert s["startTimeUnixNano"] == str(START) and s["endTimeUnixNano"] == str(END)
    assert s["attributes"] == ATTRS
    assert s["status"] == {"code": 2, "message": "boom"}
    assert s["resource"] == {"service.name": "receiver-test", "process.pid": 4242}
    assert s["scope"] == {"name": "tigerops", "version": "0.1.0"}
    assert s["events"] == [] and s["links"] == []
    assert s["traceState"] == "" and s["flags"] == 0 and s["droppedAttributesCount"] == 0

    (req,) = otlp.requests()
    assert req["path"] == "/v1/traces" and req["decoded"] and req["error"] is None
    assert req["status"] == 200 and req["spans"] == 1
    assert req["headers"]["content-type"] == "application/x-protobuf"
    assert "body" not in req


def test_int64_beyond_double_precision_comes_back_as_a_string(otlp):
    big = 2 ** 62 + 1
    s = span(TRACE, SPAN, "big", 1, 1, 2, {"big": big, "min": -(2 ** 63)})
    assert post(otlp.endpoint, export_request({}, ("s", ""), [s]))[0] == 200
    (got,) = otlp.wait_for_spans()
    assert got["attributes"] == {"big": str(big), "min": str(-(2 ** 63))}
    assert got["parentSpanId"] == "" and got["kind"] == 1


def test_gzip_body_is_gunzipped(otlp):
    raw = one_span_request(name="gzipped")
    packed = gzip.compress(raw)
    assert post(otlp.endpoint, packed, headers={"Content-Encoding": "gzip"})[0] == 200
    (s,) = otlp.wait_for_spans(lambda s: s["name"] == "gzipped")
    assert s["attributes"]["ratio"] == 0.25 and s["traceId"] == TRACE
    (req,) = otlp.requests(bodies=True)
    assert req["headers"]["content-encoding"] == "gzip"
    assert req["size"] == len(packed), "size is what came over the wire"
    assert base64.b64decode(req["body"]) == raw, "body is the un-gzipped protobuf"


def test_garbage_is_rejected_with_400(otlp):
    status, _, body = post(otlp.endpoint, b"\xff\xff\xff")
    assert status == 400 and b"error" in body
    status, _, _ = post(otlp.endpoint, b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert status == 400
    reqs = otlp.requests(bodies=True)
    assert [(r["status"], r["decoded"]) for r in reqs] == [(400, False), (400, False)]
    assert all(r["error"] for r in reqs)
    assert base64.b64decode(reqs[1]["body"]) == b"not gzip at all"
    assert otlp.spans() == []


def test_failure_mode_then_back_to_normal(otlp):
    otlp.set_mode(status=503, retry_after=1)
    status, headers, _ = post(otlp.endpoint, one_span_request(name="rejected"))
    assert status == 503 and headers["Retry-After"] == "1"
    (req,) = otlp.requests()
    assert req["status"] == 503 and req["decoded"], "still recorded and decoded"
    assert otlp.spans() == [], "a rejected export delivers no spans"

    otlp.set_mode(delay_ms=300)
    t0 = time.monotonic()
    assert post(otlp.endpoint, one_span_request(name="slow"))[0] == 200
    assert time.monotonic() - t0 >= 0.25

    otlp.set_mode()
    assert post(otlp.endpoint, one_span_request(name="accepted"))[0] == 200
    assert [s["name"] for s in otlp.wait_for_spans(count=2)] == ["slow", "accepted"]


def test_failure_mode_answers_with_a_body(otlp):
    otlp.set_mode(status=401, body="invalid API key")
    status, headers, body = post(otlp.endpoint, one_span_request())
    assert (status, body) == (401, b"invalid API key")
    assert headers["Content-Type"] == "text/plain"


def test_reset_forgets_everything(otlp):
    otlp.set_mode(status=500)
    post(otlp.endpoint, one_span_request())
    otlp.reset()
    assert otlp.spans() == [] and otlp.requests() == []
    assert post(otlp.endpoint, one_span_request())[0] == 200, "reset restores the normal mode too"


def test_metrics_and_logs_are_decoded(otlp):
    # ExportMetricsServiceRequest{resource_metrics{resource{attributes}}}
    metrics = f_bytes(1, f_bytes(1, attributes(1, {"service.name": "m"})))
    assert post(otlp.endpoint, metrics, path="/v1/metrics")[0] == 200
    assert post(otlp.endpoint, b"", path="/v1/logs")[0] == 200
    with urllib.request.urlopen(otlp.endpoint + "/metrics-data", timeout=10) as resp:
        data = json.loads(resp.read())
    assert data[0]["resourceMetrics"][0]["resource"]["attributes"][0]["key"] == "service.name"
    assert [r["path"] for r in otlp.requests()] == ["/v1/metrics", "/v1/logs"]


def test_wait_for_spans_times_out_naming_what_arrived(otlp):
    post(otlp.endpoint, one_span_request(name="only-this"))
    otlp.wait_for_spans()
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="only-this"):
        otlp.wait_for_spans(lambda s: s["name"] == "never", timeout=0.3)
    assert time.monotonic() - t0 < 5


def test_util_helpers(otlp):
    assert wait_http(otlp.endpoint + "/health", timeout=5) == 200
    assert wait_http(otlp.endpoint + "/nope", timeout=5) == 404, "any answer counts"
    port = free_port()
    assert 0 < port < 65536
    with pytest.raises(AssertionError, match="no HTTP answer"):
        wait_http("http://127.0.0.1:%d/" % port, timeout=0.3)


def test_stop_ends_the_receiver():
    from otlp import OtlpReceiver
    with OtlpReceiver() as r:
        proc = r.proc
        assert wait_http(r.endpoint + "/health", timeout=5) == 200
    assert proc.returncode == 0, "SIGTERM is a clean exit"
