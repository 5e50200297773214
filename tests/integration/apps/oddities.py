"""Bad input for the agent: an echo view that shows what the app itself saw
(so runs with and without the agent can be compared byte for byte), and a
view that feeds attribute values of odd Python types to the public API.

Loads without the agent too (tigerops is then not importable)."""
import json

from flask import Flask, request

try:
    import tigerops
except ImportError:  # not under the agent
    tigerops = None

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/echo/<path:rest>")
def echo(rest):
    """What the app saw of the request: the agent must not change any of it."""
    try:
        args = sorted(request.args.items(multi=True))
    except UnicodeDecodeError as exc:  # Werkzeug 3 decodes a raw query as strict UTF-8
        args = "undecodable: %s" % exc
    seen = {
        "rest": rest,
        "path": request.path,
        "query_string": request.query_string.decode("latin-1"),
        "args": args,
        "traceparent": request.headers.get("traceparent"),
        "tracestate": request.headers.get("tracestate"),
        "user_agent_len": len(request.headers.get("User-Agent", "")),
        "x_big_len": len(request.headers.get("X-Big", "")),
    }
    return app.response_class(json.dumps(seen, sort_keys=True), mimetype="application/json")


class StrRaises:
    def __str__(self):
        raise RuntimeError("__str__ exploded")


class ReprRaises:
    """__repr__ raises; __str__ is fine."""

    def __repr__(self):
        raise RuntimeError("__repr__ exploded")

    def __str__(self):
        return "ReprRaises-as-str"


class OnlyReprRaises:
    """No __str__ of its own: str() falls back to the raising __repr__."""

    def __repr__(self):
        raise RuntimeError("__repr__ exploded")


class StrReturnsBytes:
    def __str__(self):
        return b"not a str"


def odd_values():
    return {
        "odd.none": None,
        "odd.bytes_utf8": "caf\u00e9 \u2713".encode("utf-8"),
        "odd.bytes_invalid": b"bad \xff\xfe \xc3\x28 end",
        "odd.bytes_empty": b"",
        "odd.list_mixed": [1, "two", 3.5, None, True],
        "odd.list_int_then_huge": [1, 2 ** 70],
        "odd.list_nested": [[1, 2], [3]],
        "odd.list_of_str_raises": [StrRaises()],
        "odd.list_of_repr_raises": [ReprRaises()],
        "odd.tuple_ints": (1, 2, 3),
        "odd.list_strs": ["a", "\u00e9", ""],
        "odd.list_with_surrogate": ["ok", "\ud800"],
        "odd.list_empty": [],
        "odd.list_long": list(range(5000)),
        "odd.dict": {"a": 1, "b": [2, 3]},
        "odd.set": {7},
        "odd.huge_int": 2 ** 200,
        "odd.neg_huge_int": -(2 ** 200),
        "odd.int64_max": 2 ** 63 - 1,
        "odd.int64_min": -(2 ** 63),
        "odd.int64_max_plus_1": 2 ** 63,
        "odd.nan": float("nan"),
        "odd.inf": float("inf"),
        "odd.neg_inf": float("-inf"),
        "odd.bool": False,
        "odd.str_raises": StrRaises(),
        "odd.repr_raises": ReprRaises(),
        "odd.only_repr_raises": OnlyReprRaises(),
        "odd.str_returns_bytes": StrReturnsBytes(),
        "odd.surrogate_str": "lone \ud800 surrogate",
        "odd.nul_str": "a\x00b",
        "odd.huge_str": "x" * 1_000_000,
        "odd.huge_bytes_continuation": b"\x80" * 20000,
        "odd.type": int,
        "odd.function": len,
    }


@app.route("/odd")
def odd():
    """Every odd value through set_attribute on the request span, through
    attributes= of a manual span and set_attribute on it, and through an
    event's attributes."""
    if tigerops is None:
        return "no agent"
    values = odd_values()
    request_span = tigerops.current_span()
    for key, value in values.items():
        request_span.set_attribute(key, value)
    with tigerops.span("odd-child", attributes=values) as child:
        child.set_attributes({"child." + k: v for k, v in values.items()})
        child.add_event("odd-event", values)
    # Odd keys: empty, lone surrogate, longer than any sane key.
    request_span.set_attribute("", "empty key")
    request_span.set_attribute("key.\ud800", "surrogate key")
    request_span.set_attribute("k" * 300, "long key")
    request_span.set_attribute("odd.after", "still recording")
    return "ok"
