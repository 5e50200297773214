"""tigerops.Span and _tigerops.Span in process: the context manager, the
decorator, current_span() handles, attribute conversion of odd Python
values, events, status and exception recording, read back as exported."""
import asyncio
import math
import re
import sys

import pytest

import _tigerops
import tigerops
from inproc import assert_clean_exit, exported_one, isolated, wire_span

STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


def test_a_with_block_is_one_span_current_inside_and_ended_after(receiver, unique):
    assert not tigerops.current_span().is_recording()
    with tigerops.span(unique, attributes={"a": 1}) as s:
        assert s.is_recording()
        inner = tigerops.current_span()
        assert (inner.trace_id, inner.span_id) == (s.trace_id, s.span_id)
        assert s.traceparent == "00-%s-%s-01" % (s.trace_id, s.span_id)
    assert not tigerops.current_span().is_recording()
    span = exported_one(receiver, unique)
    assert (span["traceId"], span["spanId"], span["parentSpanId"]) == (s.trace_id, s.span_id, "")
    assert span["attributes"]["a"] == 1
    assert span["kind"] == 1  # INTERNAL


def test_nested_blocks_are_parent_and_child_and_the_parent_is_restored(receiver, unique):
    with tigerops.span(unique + "-outer") as outer:
        with tigerops.span(unique + "-inner", kind=tigerops.KIND_CLIENT) as inner:
            pass
        assert tigerops.current_span().span_id == outer.span_id
    child = exported_one(receiver, unique + "-inner")
    assert child["parentSpanId"] == outer.span_id and child["traceId"] == outer.trace_id
    assert child["kind"] == 3 and inner.trace_id == outer.trace_id


def test_the_decorator_makes_a_span_per_call_named_after_the_function(receiver, unique):
    @tigerops.span
    def work(x):
        return tigerops.current_span().span_id, x * 2

    ids = [work(i) for i in range(3)]
    assert [r for _, r in ids] == [0, 2, 4]
    assert len({i for i, _ in ids}) == 3
    named = tigerops.span(unique)(lambda: tigerops.current_span().span_id)
    sid = named()
    assert exported_one(receiver, unique)["spanId"] == sid


def test_the_decorator_on_a_coroutine_spans_the_await(receiver, unique):
    @tigerops.span(unique)
    async def work():
        await asyncio.sleep(0)
        return tigerops.current_span().span_id

    sid = asyncio.run(work())
    assert exported_one(receiver, unique)["spanId"] == sid


def test_a_current_span_handle_writes_to_the_running_span_and_never_ends_it(receiver, unique):
    with tigerops.span(unique) as s:
        handle = tigerops.current_span()
        handle.set_attribute("from.handle", "yes")
        handle.end()  # borrowed: ending is the owner's business
        assert s.is_recording()
        handle.set_attribute("after.handle.end", True)
        del handle
    span = exported_one(receiver, unique)
    assert span["attributes"]["from.handle"] == "yes"
    assert span["attributes"]["after.handle.end"] is True


def test_a_handle_outside_any_span_is_a_harmless_no_op():
    handle = tigerops.current_span()
    assert not handle.is_recording()
    handle.set_attribute("k", "v")
    handle.add_event("e", {"k": 1})
    handle.set_status("error", "nothing to fail")
    handle.update_name("x")
    handle.end()
    with handle:
        pass
    assert handle.trace_id == "0" * 32 and handle.span_id == "0" * 16


class Unprintable:
    def __str__(self):
        raise RuntimeError("no str for you")

    __repr__ = __str__


class SneakyDict(dict):
    """A dict subclass whose items() is not the dict's own."""
    def items(self):
        return [("sneaky.items", "from items()")]


class RaisingItems(dict):
    def items(self):
        raise KeyError("items() fails")


ODD = {
    "int.max": 2 ** 63 - 1,
    "int.min": -2 ** 63,
    "int.huge": 2 ** 100,
    "int.huge.negative": -3 ** 90,
    "float.nan": math.nan,
    "float.inf": math.inf,
    "float.neg_inf": -math.inf,
    "float.tiny": 5e-324,
    "bool": True,
    "bytes.invalid_utf8": b"ok\xff\xfe\xc3(",
    "str.lone_surrogate": "a\ud800b",
    "str.nul": "a\x00b",
    "list.nested": [[1, 2], [3]],
    "list.mixed": [1, "two", 3.0],
    "list.surrogates": ["fine", "\udcff"],
    "list.huge_ints": [1, 2 ** 64],
    "list.empty": [],
    "tuple.floats": (1.5, math.nan),
    "dict": {"k": "v"},
    "unprintable": Unprintable(),
    "none": None,
    "object": object(),
}


def test_odd_python_values_never_raise_and_export_as_valid_utf8(receiver, unique):
    with tigerops.span(unique) as s:
        for key, value in ODD.items():
            s.set_attribute(key, value)
        s.set_attribute(12, "non-str key")
        s.set_attribute("\ud800key", "surrogate key")
        s.set_attributes(SneakyDict(plain="x"))
        s.set_attributes(RaisingItems(plain2="y"))
        s.set_attributes({"from.set_attributes": 7})
        assert sys.exc_info() == (None, None, None)
    attrs = dict(wire_span(receiver, unique)["attributes"])  # strict UTF-8, exact values
    assert attrs["int.max"] == 2 ** 63 - 1 and attrs["int.min"] == -2 ** 63
    assert attrs["int.huge"] == str(2 ** 100)  # beyond int64: its decimal text, not a wrapped int
    assert attrs["int.huge.negative"] == str(-3 ** 90)
    assert math.isnan(attrs["float.nan"])
    assert attrs["float.inf"] == math.inf and attrs["float.neg_inf"] == -math.inf
    assert attrs["float.tiny"] == 5e-324
    assert attrs["bool"] is True
    assert re.fullmatch("ok[?\ufffd]+\\(", attrs["bytes.invalid_utf8"])  # repaired, the rest kept
    assert attrs.get("str.lone_surrogate") in (None, "a\ufffdb", "a?b")
    assert attrs["str.nul"] in ("a\x00b", "a b")
    assert attrs["list.nested"] == "[[1, 2], [3]]"
    assert attrs["list.mixed"] == "[1, 'two', 3.0]"
    surrogates = attrs.get("list.surrogates")  # dropped, repaired, or as text: never raw
    assert surrogates is None or "fine" in surrogates
    assert attrs["list.huge_ints"] == str([1, 2 ** 64])
    assert attrs["list.empty"] == []
    assert attrs["tuple.floats"][0] == 1.5 and math.isnan(attrs["tuple.floats"][1])
    assert attrs["dict"] == "{'k': 'v'}"
    assert "unprintable" not in attrs and "none" not in attrs
    assert attrs["object"].startswith("<object object at ")
    assert attrs["sneaky.items"] == "from items()"
    assert attrs["from.set_attributes"] == 7
    assert "12" not in attrs


def test_very_long_values_are_cut_on_a_character_boundary(receiver, unique):
    long_ascii = "x" * (1 << 20)
    long_utf8 = "\u00e9\u4e2d\U0001f600" * 100000
    with tigerops.span(unique) as s:
        s.set_attribute("long.ascii", long_ascii)
        s.set_attribute("long.utf8", long_utf8)
        s.set_attribute("long.bytes", b"\xff" * (1 << 20))
        s.set_attribute("long.list", ["y" * 100] * 5000)
    attrs = dict(wire_span(receiver, unique)["attributes"])
    for key, full in (("long.ascii", long_ascii), ("long.utf8", long_utf8)):
        assert 0 < len(attrs[key]) < len(full), key
        assert full.startswith(attrs[key]), key
    assert 0 < len(attrs["long.bytes"]) < 1 << 20
    assert 0 < len(attrs["long.list"]) <= 5000


def test_events_carry_their_attributes_and_odd_ones_are_skipped(receiver, unique):
    with tigerops.span(unique) as s:
        s.add_event("plain")
        s.add_event("with-attrs", {"n": 1, "bad": Unprintable(), "b": b"\xff"})
        s.add_event(name="by-keyword", attributes=SneakyDict())
        with pytest.raises(TypeError):
            s.add_event(b"not a str name")
        with pytest.raises(TypeError):
            s.add_event()
    span = exported_one(receiver, unique)
    events = {e["name"]: e["attributes"] for e in span["events"]}
    assert set(events) == {"plain", "with-attrs", "by-keyword"}
    assert events["with-attrs"]["n"] == 1 and "bad" not in events["with-attrs"]
    assert events["by-keyword"] == {"sneaky.items": "from items()"}


@pytest.mark.parametrize("args, code, message", [
    (("ok",), STATUS_OK, ""),
    (("OK",), STATUS_OK, ""),
    (("error", "it broke"), STATUS_ERROR, "it broke"),
    (("ERROR",), STATUS_ERROR, ""),
    ((2, "by number"), STATUS_ERROR, "by number"),
    (("unset",), STATUS_UNSET, ""),
    (("error", b"bytes description"), STATUS_ERROR, ""),
])
def test_set_status_variants(receiver, unique, args, code, message):
    with tigerops.span(unique) as s:
        s.set_status(*args)
    status = exported_one(receiver, unique)["status"]
    assert (status["code"], status["message"]) == (code, message)


@pytest.mark.parametrize("bad", [("bogus",), (7,), (-1,), (None,), (2 ** 80,), (b"error",)])
def test_a_bad_status_never_sets_one(receiver, unique, bad):
    with tigerops.span(unique) as s:
        try:
            s.set_status(*bad)
        except (ValueError, TypeError, OverflowError):
            pass
        assert sys.exc_info() == (None, None, None)
    assert exported_one(receiver, unique)["status"]["code"] == STATUS_UNSET


def test_ok_is_final(receiver, unique):
    with tigerops.span(unique) as s:
        s.set_status("ok")
        s.set_status("error", "too late")
    assert exported_one(receiver, unique)["status"]["code"] == STATUS_OK


def _assert_exception_recorded(span, type_name, message):
    assert span["status"]["code"] == STATUS_ERROR, span["status"]
    assert span["attributes"].get("error.type") == type_name
    events = [e for e in span["events"] if e["name"] == "exception"]
    assert len(events) == 1, span["events"]
    attrs = events[0]["attributes"]
    assert attrs["exception.type"] == type_name
    assert attrs["exception.message"] == message
    assert "Traceback" in attrs["exception.stacktrace"] and type_name in attrs["exception.stacktrace"]


def test_an_exception_in_a_span_block_is_recorded_and_propagates(receiver, unique):
    with pytest.raises(KeyError):
        with tigerops.span(unique):
            raise KeyError("missing")
    _assert_exception_recorded(exported_one(receiver, unique), "KeyError", "'missing'")


def test_an_exception_in_a_block_of_the_c_type_is_recorded(receiver, unique):
    with pytest.raises(ValueError):
        with _tigerops.Span(unique):
            raise ValueError("from the C type")
    _assert_exception_recorded(exported_one(receiver, unique), "ValueError", "from the C type")


def test_an_exception_in_a_block_on_a_current_span_handle_is_recorded(receiver, unique):
    """Bug 16: Span.__exit__ called record_exception, which only the Python
    subclass defines, so current_span()'s handle recorded no event."""
    with tigerops.span(unique):
        with pytest.raises(ZeroDivisionError):
            with tigerops.current_span():
                1 / 0
    _assert_exception_recorded(exported_one(receiver, unique), "ZeroDivisionError", "division by zero")


def test_an_exception_whose_str_raises_is_still_recorded(receiver, unique):
    class Weird(Exception):
        def __str__(self):
            raise RuntimeError("no message")

    with pytest.raises(Weird):
        with tigerops.span(unique):
            raise Weird()
    span = exported_one(receiver, unique)
    assert span["status"]["code"] == STATUS_ERROR
    assert [e["attributes"]["exception.type"] for e in span["events"] if e["name"] == "exception"] == [
        Weird.__qualname__]


def test_an_uninitialised_span_is_safe_to_use():
    """_tigerops.Span.__new__ without __init__: every method works or raises cleanly."""
    out = assert_clean_exit(isolated(
        "import _tigerops\n"
        "s = _tigerops.Span.__new__(_tigerops.Span)\n"
        "print(s.is_recording())\n"
        "s.set_attribute('a', 1); s.add_event('e'); s.set_status('ok'); s.update_name('n')\n"
        "with s: pass\n"
        "s.end(); s.end()\n"
        "t = _tigerops.Span.__new__(_tigerops.Span)\n"
        "t.__exit__(ValueError, ValueError('x'), None)\n"
        "u = _tigerops.Span.__new__(_tigerops.Span); u.__enter__(); del u\n"
        "print('done', len(s.trace_id))\n"), "uninitialised Span")
    assert out.split() == ["False", "done", "32"]


@pytest.mark.parametrize("args, kwargs, error", [
    ((), {}, TypeError),
    ((b"bytes",), {}, TypeError),
    (("n",), {"kind": 99}, ValueError),
    (("n",), {"kind": -1}, ValueError),
    (("n",), {"parent": 5}, TypeError),
    (("n",), {"nonsense": 1}, TypeError),
])
def test_bad_constructor_arguments_raise(args, kwargs, error):
    with pytest.raises(error):
        _tigerops.Span(*args, **kwargs)


def test_an_explicit_parent_continues_that_trace_and_a_bad_one_starts_a_new_trace(receiver, unique):
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with tigerops.Span(unique + "-good", parent="00-%s-%s-01" % (tid, sid)) as good:
        assert good.trace_id == tid
    with tigerops.Span(unique + "-bad", parent="00-%s-%s-zz" % (tid, sid)) as bad:
        assert bad.trace_id != tid
    assert exported_one(receiver, unique + "-good")["parentSpanId"] == sid
    assert exported_one(receiver, unique + "-bad")["parentSpanId"] == ""


def test_a_long_traceback_is_cut_on_line_boundaries():
    # The exporter's scrubber finds bind values after their marker
    # ("[parameters:"): a cut inside a line would leave values without it.
    message = "\n".join("row %d [parameters: ('sk_live_cut',)]" % i for i in range(5000))
    try:
        raise ValueError(message)
    except ValueError as exc:
        event, raised = tigerops.exception_event(exc), exc
    stack = event["exception.stacktrace"]
    assert "... (truncated) ..." in stack
    head, tail = stack.split("\n... (truncated) ...\n")
    full = set(_traceback_lines(raised))
    assert head.splitlines()[-1] in full and tail.splitlines()[0] in full


def _traceback_lines(exc):
    import traceback
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
