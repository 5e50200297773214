"""Bad input never changes what the app answers and never costs the span:
malformed traceparent/tracestate headers, 64 KiB header values, non-UTF-8
bytes in the request line, and attribute values of odd Python types through
the public API.

Every request goes to one gunicorn under the agent and (where the answer
can be compared) to the same app in one gunicorn without it. Requests are
sent as raw bytes over a socket, so nothing between the test and the server
cleans them up. Exported strings are checked as strict UTF-8 by walking the
raw OTLP bodies the receiver recorded: the receiver's own protobufjs decoder
is lenient and would hide invalid bytes."""
import codecs
import json
import math
import socket

import pytest

from agent import APPS, clean_env, agent_env, gunicorn, server_spans
from otlp import OtlpReceiver, wire_spans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID_TP = "00-%s-%s-01" % (TRACE_ID, PARENT_ID)
LIMIT = 8192  # TIGEROPS_ATTRIBUTE_VALUE_LIMIT's default, in bytes
ROUTE = "GET /echo/<path:rest>"
# gunicorn's own limits (8 KiB header field, 4 KiB request line) would answer
# 400 before the app runs: lift them on both servers so the app sees 64 KiB.
NO_LIMITS = ["--limit-request-field_size", "0", "--limit-request-line", "0"]


# ---- servers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def traced(receiver):
    with gunicorn("oddities:app", agent_env(receiver), workers=1, extra=NO_LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def plain():
    with gunicorn("oddities:app", clean_env(PYTHONPATH=APPS), workers=1, extra=NO_LIMITS) as server:
        status, body, _ = server.get("/odd")
        assert (status, body) == (200, "no agent"), "the comparison server must run without the agent"
        yield server


def raw_request(server, target, headers=()):
    """Sends GET target (bytes) with headers [(name, bytes value)] as they
    are, and returns (status line, headers, body) as bytes."""
    data = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for name, value in headers:
        data += name.encode("ascii") + b": " + value + b"\r\n"
    data += b"Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep, "no complete answer for %r: %r\n%s" % (target[:80], out[:200], server.output()[-3000:])
    lines = head.split(b"\r\n")
    return lines[0], dict(l.split(b": ", 1) for l in lines[1:] if b": " in l), body


def same_answer(traced, plain, target, headers=()):
    """The request's answer under the agent, checked equal to the plain
    server's: status line, content type and body byte for byte."""
    got = raw_request(traced, target, headers)
    want = raw_request(plain, target, headers)
    assert got[0] == want[0], target
    assert got[1].get(b"Content-Type") == want[1].get(b"Content-Type"), target
    assert got[2] == want[2], target
    return got


def assert_worker_alive(server):
    """No crash: the single worker is the one that booted first, no traceback."""
    assert server.proc.poll() is None, server.output()
    out = server.output()
    assert out.count("Booting worker") == 1, "the worker died and was replaced:\n" + out[-5000:]
    assert "Traceback" not in out, out[-5000:]


def spans_with_paths(receiver, paths):
    spans = receiver.wait_for_spans(lambda s: s["kind"] == 2 and s["attributes"].get("url.path") in paths,
                                    count=len(paths), timeout=10)
    found = {}
    for s in server_spans(spans):
        p = s["attributes"].get("url.path")
        if p in paths:
            assert p not in found, "two spans for one request to %s" % p
            found[p] = s
    return found


def wire_span(receiver, url_path=None, name=None):
    found = [s for s in wire_spans(receiver)
             if (url_path is None or dict(s["attributes"]).get("url.path") == url_path)
             and (name is None or s["name"] == name)]
    assert len(found) == 1, (url_path, name, len(found))
    return found[0]


def _question_marks(err):
    return "?" * (err.end - err.start), err.end


codecs.register_error("tigerops-test-question-marks", _question_marks)


def repaired(raw):
    """raw bytes as the agent exports them: valid UTF-8 kept, each invalid
    byte one '?'."""
    return raw.decode("utf-8", "tigerops-test-question-marks")


# ---- 1. malformed trace context -----------------------------------------------

def _h(text):
    return text.encode("latin-1")


BAD_TRACE_CONTEXT = {
    "too-long": [("traceparent", _h(VALID_TP + "-extra"))],
    "too-long-64k": [("traceparent", _h(VALID_TP + "0" * 65536))],
    "too-short": [("traceparent", _h(VALID_TP[:-1]))],
    "version-ff": [("traceparent", _h("ff" + VALID_TP[2:]))],
    "non-hex-trace-id": [("traceparent", _h("00-%sg-%s-01" % (TRACE_ID[:-1], PARENT_ID)))],
    "non-hex-flags": [("traceparent", _h("00-%s-%s-0x" % (TRACE_ID, PARENT_ID)))],
    "upper-case": [("traceparent", _h(VALID_TP.upper()))],
    "zero-trace-id": [("traceparent", _h("00-%s-%s-01" % ("0" * 32, PARENT_ID)))],
    "zero-parent-id": [("traceparent", _h("00-%s-%s-01" % (TRACE_ID, "0" * 16)))],
    "wrong-separators": [("traceparent", _h(VALID_TP.replace("-", "_")))],
    "empty": [("traceparent", b"")],
    "garbage": [("traceparent", b"garbage")],
    "non-ascii-bytes": [("traceparent", b"00-\xe9\xff" + _h(VALID_TP[5:]))],
    "10k-tracestate-only": [("tracestate", _h("k=" + "v" * 10240))],
    "10k-tracestate-bad-parent": [("traceparent", b"garbage"), ("tracestate", _h("k=" + "v" * 10240))],
    "duplicate-traceparent": [("traceparent", _h(VALID_TP)),
                              ("traceparent", _h("00-%s-%s-01" % (TRACE_ID, "1" * 16)))],
}


def test_malformed_trace_context_answers_as_without_the_agent_and_starts_a_new_trace(receiver, traced, plain):
    paths = {}
    for label, headers in BAD_TRACE_CONTEXT.items():
        status, _, body = same_answer(traced, plain, b"/echo/tc-" + label.encode(), headers)
        assert status == b"HTTP/1.1 200 OK", (label, status)
        seen = json.loads(body)
        sent = [v for n, v in headers if n == "traceparent"]
        if len(sent) == 1:
            assert seen["traceparent"] == sent[0].decode("latin-1"), "the app sees the header untouched"
        paths["/echo/tc-" + label] = label
    spans = spans_with_paths(receiver, set(paths))
    for path, label in paths.items():
        span = spans[path]
        assert span["name"] == ROUTE, label
        assert span["traceId"] != TRACE_ID and len(span["traceId"]) == 32, label
        assert span["traceId"] != "0" * 32, label
        assert span["parentSpanId"] == "", label
        assert span["traceState"] == "", "no tracestate without a valid traceparent (%s)" % label
        assert span["attributes"]["http.response.status_code"] == 200, label
    assert len({s["traceId"] for s in spans.values()}) == len(spans), "each request is a new trace"
    wire_spans(receiver)  # all strict UTF-8
    assert_worker_alive(traced)


def test_bad_tracestate_with_a_valid_traceparent_continues_the_trace(receiver, traced, plain):
    cases = {
        "/echo/ts-10k": [("traceparent", _h(VALID_TP)), ("tracestate", _h("k=" + "v" * 10240))],
        "/echo/ts-invalid": [("traceparent", _h(VALID_TP)), ("tracestate", b"Bad Key=1,=,x")],
        "/echo/ts-non-ascii": [("traceparent", _h(VALID_TP)), ("tracestate", b"k=\xff\xfe")],
        # W3C: several tracestate headers are one list, combined in order.
        "/echo/ts-duplicate": [("traceparent", _h(VALID_TP)), ("tracestate", b"a=1"), ("tracestate", b"b=2")],
    }
    for path, headers in cases.items():
        status, _, _ = same_answer(traced, plain, path.encode(), headers)
        assert status == b"HTTP/1.1 200 OK", path
    spans = spans_with_paths(receiver, set(cases))
    for path, span in spans.items():
        assert span["traceId"] == TRACE_ID, path
        assert span["parentSpanId"] == PARENT_ID, path
    assert spans["/echo/ts-duplicate"]["traceState"] == "a=1,b=2"
    assert spans["/echo/ts-invalid"]["traceState"] == ""
    assert spans["/echo/ts-non-ascii"]["traceState"] == ""
    long_state = spans["/echo/ts-10k"]["traceState"]
    assert long_state == "" or (len(long_state) <= 512 and ("k=" + "v" * 10240).startswith(long_state))
    wire_spans(receiver)
    assert_worker_alive(traced)


# ---- 2. 64 KiB header values ----------------------------------------------------

def test_64k_header_values_are_answered_and_bounded(receiver, traced, plain):
    ascii_ua = b"u" * 65536
    # One ASCII byte first, so the limit falls inside a two-byte character.
    utf8_ua = b"a" + "\u00e9".encode("utf-8") * 32768
    big = b"B" * 65536
    for path, ua in (("/echo/big-ascii", ascii_ua), ("/echo/big-utf8", utf8_ua)):
        status, _, body = same_answer(traced, plain, path.encode(), [("User-Agent", ua), ("X-Big", big)])
        assert status == b"HTTP/1.1 200 OK"
        seen = json.loads(body)
        assert seen["x_big_len"] == 65536 and seen["user_agent_len"] == len(ua.decode("latin-1"))
    spans = spans_with_paths(receiver, {"/echo/big-ascii", "/echo/big-utf8"})
    for path in spans:
        assert spans[path]["name"] == ROUTE
        assert spans[path]["attributes"]["http.response.status_code"] == 200

    # A 64 KiB path and query: bounded too.
    long_path, long_query = b"/echo/" + b"p" * 65536, b"q=" + b"v" * 65536
    status, _, body = same_answer(traced, plain, long_path + b"?" + long_query)
    assert status == b"HTTP/1.1 200 OK" and len(json.loads(body)["path"]) == len(long_path)
    cut_path = long_path[:LIMIT].decode()
    spans = spans_with_paths(receiver, {cut_path})
    assert spans[cut_path]["name"] == ROUTE
    query = dict(wire_span(receiver, cut_path)["attributes"]).get("url.query")
    assert query == "REDACTED" or (len(query) <= LIMIT and long_query.decode().startswith(query))

    ascii_span = dict(wire_span(receiver, "/echo/big-ascii")["attributes"])
    assert ascii_span["user_agent.original"] == "u" * LIMIT
    utf8_span = dict(wire_span(receiver, "/echo/big-utf8")["attributes"])
    value = utf8_span["user_agent.original"]  # strict UTF-8 already
    assert LIMIT - 3 <= len(value.encode("utf-8")) <= LIMIT, "cut on a character boundary, at the limit"
    assert utf8_ua.decode("utf-8").startswith(value)
    for attrs in (ascii_span, utf8_span):
        for key, v in attrs.items():
            assert not isinstance(v, str) or len(v.encode("utf-8")) <= LIMIT, key
            assert not isinstance(v, str) or "BBBBBBBB" not in v, "an unknown header is not recorded"
    assert_worker_alive(traced)


# ---- 3. non-UTF-8 bytes in the request line ---------------------------------------

RAW_TARGETS = [
    b"/echo/\xff\xfe?q=\xc3\x28",
    b"/echo/%FF%FE?q=%C3%28&r=\xff",
    b"/echo/\x80\x80?\x80=\xfe",
    b"/echo/caf\xc3\xa9/\xe2\x82?q=\xed\xa0\x80",  # truncated sequence, a UTF-16 surrogate
]


def test_non_utf8_path_and_query_answer_as_without_the_agent(receiver, traced, plain):
    seen = {}
    for target in RAW_TARGETS:
        status, _, body = same_answer(traced, plain, target)
        assert status.startswith(b"HTTP/1.1 "), status
        seen[target] = json.loads(body)
    # url.path is what the app itself saw as request.path (werkzeug shows an
    # undecodable byte as U+FFFD, the agent as '?').
    paths = {seen[t]["path"].replace("\ufffd", "?"): t for t in RAW_TARGETS}
    spans = spans_with_paths(receiver, set(paths))
    for path, target in paths.items():
        assert spans[path]["name"] == ROUTE, target
        assert spans[path]["attributes"]["http.response.status_code"] == 200, target
        assert spans[path]["parentSpanId"] == ""
        wire = dict(wire_span(receiver, path)["attributes"])  # strict UTF-8
        assert wire["url.path"] == path
        assert wire["url.query"], target
    assert_worker_alive(traced)


def test_raw_non_ascii_query_is_exported_as_the_client_sent_it(receiver, traced, plain):
    """url.query must be the bytes the client sent (invalid ones as '?'),
    like url.path and user_agent.original: not the latin-1 WSGI string
    re-encoded as UTF-8 (mojibake: 'été' exported as 'Ã©tÃ©')."""
    targets = {"/echo/query-utf8": b"/echo/query-utf8?q=\xc3\xa9t\xc3\xa9",
               "/echo/query-invalid": b"/echo/query-invalid?q=\xc3\x28"}
    expected = {}
    for path, target in targets.items():
        status, _, body = same_answer(traced, plain, target)
        assert status == b"HTTP/1.1 200 OK"
        expected[path] = repaired(json.loads(body)["query_string"].encode("latin-1"))
    assert expected == {"/echo/query-utf8": "q=\u00e9t\u00e9", "/echo/query-invalid": "q=?("}
    spans_with_paths(receiver, set(targets))
    exported = {path: dict(wire_span(receiver, path)["attributes"])["url.query"] for path in targets}
    assert exported == expected
    assert_worker_alive(traced)


# ---- 4. attribute values of odd Python types --------------------------------------

@pytest.fixture(scope="module")
def odd(receiver, traced):
    """One request to /odd: (status, body, request span, child span, event)
    as they went over the wire."""
    status, body, _ = traced.get("/odd")
    receiver.wait_for_spans(lambda s: s["name"] == "GET /odd", timeout=10)
    receiver.wait_for_spans(lambda s: s["name"] == "odd-child", timeout=10)
    request_span = wire_span(receiver, name="GET /odd")
    child = wire_span(receiver, name="odd-child")
    (event,) = [e for e in child["events"] if e["name"] == "odd-event"]
    return status, body, request_span, child, event


def check_odd_values(attrs, prefix=""):
    """What each odd value of apps/oddities.py becomes."""
    def get(key):
        return attrs.get(prefix + "odd." + key, "<dropped>")

    # Dropped: no value, or a value with no string form.
    for key in ("none", "str_raises", "only_repr_raises", "str_returns_bytes"):
        assert get(key) == "<dropped>", key
    # A str with a lone surrogate has no UTF-8 form: dropped, or repaired.
    assert get("surrogate_str") in ("<dropped>", "lone ? surrogate", "lone \ufffd surrogate")
    # bytes: UTF-8 text, invalid bytes repaired.
    assert get("bytes_utf8") == "caf\u00e9 \u2713"
    assert get("bytes_invalid") == "bad ?? ?( end"
    assert get("bytes_empty") == ""
    # Homogeneous sequences are arrays (bounded), anything else is str().
    assert get("tuple_ints") == [1, 2, 3]
    assert get("list_strs") == ["a", "\u00e9", ""]
    assert get("list_empty") == []
    assert get("list_long") == list(range(1024))
    assert get("list_mixed") == "[1, 'two', 3.5, None, True]"
    assert get("list_int_then_huge") == str([1, 2 ** 70])
    assert get("list_nested") == "[[1, 2], [3]]"
    assert get("list_with_surrogate") in ("<dropped>", "['ok', '\\ud800']")
    assert get("list_of_str_raises").startswith("[<oddities.StrRaises object at 0x")
    assert get("list_of_repr_raises") == "<dropped>", "str(list) needs the raising __repr__"
    assert get("dict") == "{'a': 1, 'b': [2, 3]}"
    assert get("set") == "{7}"
    # Integers: int64 as int, beyond it as the exact decimal string.
    assert get("huge_int") == str(2 ** 200)
    assert get("neg_huge_int") == str(-(2 ** 200))
    assert get("int64_max") == 2 ** 63 - 1 and type(get("int64_max")) is int
    assert get("int64_min") == -(2 ** 63)
    assert get("int64_max_plus_1") == str(2 ** 63)
    assert get("bool") is False
    # Floats as doubles, NaN and infinities included.
    assert isinstance(get("nan"), float) and math.isnan(get("nan"))
    assert get("inf") == math.inf and get("neg_inf") == -math.inf
    assert get("repr_raises") == "ReprRaises-as-str"
    assert get("nul_str") == "a\x00b"
    assert get("huge_str") == "x" * LIMIT
    value = get("huge_bytes_continuation")
    assert isinstance(value, str) and len(value.encode("utf-8")) <= LIMIT and set(value) <= {"?"}
    assert get("type") == "<class 'int'>"
    assert get("function") == "<built-in function len>"


def test_odd_attribute_values_are_dropped_or_stringified(odd, receiver, traced):
    status, body, request_span, child, event = odd
    assert (status, body) == (200, "ok")
    request_attrs = dict(request_span["attributes"])
    assert request_attrs["http.response.status_code"] == 200
    assert request_attrs["odd.after"] == "still recording", "the span records after the odd values"
    check_odd_values(request_attrs)
    child_attrs = dict(child["attributes"])
    check_odd_values(child_attrs)  # attributes= of tigerops.span()
    check_odd_values(child_attrs, "child.")  # set_attributes()
    check_odd_values(dict(event["attributes"]))  # add_event()
    # Keys that cannot be exported as given are dropped, not mangled.
    assert not [k for k in request_attrs if k.startswith("key.") or k.startswith("kkkk")]
    assert child["name"] == "odd-child"
    (parent,) = server_spans(receiver.spans(), "GET /odd")
    assert [s for s in receiver.spans() if s["name"] == "odd-child"][0]["parentSpanId"] == parent["spanId"]
    assert_worker_alive(traced)


def test_empty_attribute_key_is_dropped(odd):
    """OpenTelemetry: an attribute key MUST be a non-empty string."""
    request_attrs = dict(odd[2]["attributes"])
    assert "" not in request_attrs, "set_attribute('', ...) exported an attribute with an empty key"


def test_truncating_invalid_utf8_keeps_up_to_the_limit(odd, receiver, traced):
    """Cutting at the value limit steps back over at most one character's
    continuation bytes (3), not over every 0x80-0xBF byte: 20000 invalid
    bytes become 8192 '?', not an empty string."""
    api_value = dict(odd[2]["attributes"]).get("odd.huge_bytes_continuation")
    status, _, _ = raw_request(traced, b"/echo/ua-continuation", [("User-Agent", b"\x80" * 65536)])
    assert status == b"HTTP/1.1 200 OK"
    spans_with_paths(receiver, {"/echo/ua-continuation"})
    header_value = dict(wire_span(receiver, "/echo/ua-continuation")["attributes"]).get("user_agent.original")
    exported = {"set_attribute(bytes)": api_value, "User-Agent header": header_value}
    assert exported == {k: "?" * LIMIT for k in exported}, \
        {k: None if v is None else "%d x %r" % (len(v), v[:1]) for k, v in exported.items()}
