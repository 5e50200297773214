"""The OTLP receiver (tests/receiver, node) as a Python object for tests,
and the one protobuf reader for checks on the raw bytes sent (the
receiver decodes with the official schema; this reads what it cannot)."""
import base64
import json
import os
import select
import struct
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(os.path.dirname(HERE), "receiver", "otlp-receiver.js")


class OtlpReceiver:
    """node tests/receiver/otlp-receiver.js on an ephemeral 127.0.0.1 port.

    Spans come back as the receiver flattens them (see otlp-receiver.js):
    {traceId, spanId, parentSpanId, name, kind, startTimeUnixNano,
    endTimeUnixNano, attributes, events, links, status {code, message},
    traceState, flags, droppedAttributesCount, resource, scope {name, version}}.
    """

    def __init__(self, start_timeout=10, args=()):
        # stderr goes to a file, not a pipe nobody reads (a full pipe would
        # block node); its text is in the error when the receiver won't start.
        self.stderr = tempfile.TemporaryFile(prefix="otlp-receiver-")
        self.proc = subprocess.Popen(["node", RECEIVER, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL)
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + start_timeout
        out = b""
        while b"\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:  # EOF: node exited
                    break
                out += chunk
        line = out.decode("utf-8", "replace").split("\n", 1)[0]
        if not line.startswith("LISTENING "):
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stderr.seek(0)
            err = self.stderr.read().decode("utf-8", "replace")[-2000:]
            self.stop()
            raise RuntimeError("OTLP receiver did not start within %ss (did `npm ci` run in tests/receiver?): "
                               "stdout %r, stderr:\n%s" % (start_timeout, line, err))
        words = line.split()
        self.port = int(words[1])
        self.endpoint = "http://127.0.0.1:%d" % self.port
        # "GRPC <port>" / "HTTPS <port>" follow when asked for (grpc_receiver.py)
        extra = dict(zip(words[2::2], words[3::2]))
        self.grpc_port = int(extra["GRPC"]) if "GRPC" in extra else None
        self.https_port = int(extra["HTTPS"]) if "HTTPS" in extra else None

    def _call(self, method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def spans(self):
        return self._call("GET", "/spans")

    def logs(self):
        """Log records received over HTTP or gRPC, flattened by the receiver:
        {timeUnixNano, observedTimeUnixNano, severityNumber, severityText,
        body, attributes, flags, traceId, spanId, resource, scope {name}}."""
        return self._call("GET", "/logs")

    def requests(self, bodies=False):
        return self._call("GET", "/requests" + ("?bodies=1" if bodies else ""))

    def bodies(self, path=None, status=None):
        """The request bodies as sent (gunzipped by the receiver), as bytes;
        only those to path and answered with status, when given."""
        return [base64.b64decode(r["body"]) for r in self.requests(bodies=True)
                if (path is None or r["path"] == path) and (status is None or r["status"] == status)]

    def reset(self):
        self._call("POST", "/reset", {})

    def set_mode(self, status=None, retry_after=None, delay_ms=0, body=None):
        mode = {}
        if body is not None:
            mode["body"] = body
        if status is not None:
            mode["status"] = status
        if retry_after is not None:
            mode["retryAfter"] = str(retry_after)
        if delay_ms:
            mode["delayMs"] = delay_ms
        self._call("POST", "/mode", mode)

    def wait_for(self, fetch, predicate, count, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            items = fetch()
            matching = [x for x in items if predicate(x)]
            if len(matching) >= count:
                return items
            if time.monotonic() > deadline:
                names = [x.get("name", x.get("path", x.get("body"))) for x in items]
                raise AssertionError("waited %ss for %d %s, got %d matching of %d: %s"
                                     % (timeout, count, what, len(matching), len(items), names[:50]))
            time.sleep(0.05)

    def wait_for_spans(self, predicate=None, count=1, timeout=20):
        """All spans received (not only the matching ones: tests look up the
        rest of a trace in them), once at least count of them match
        predicate; AssertionError naming what arrived after timeout s."""
        return self.wait_for(self.spans, predicate or (lambda s: True), count, timeout, "spans")

    def wait_for_logs(self, predicate=None, count=1, timeout=20):
        """All log records received once at least count match predicate."""
        return self.wait_for(self.logs, predicate or (lambda r: True), count, timeout, "log records")

    def wait_for_requests(self, predicate=None, count=1, timeout=20):
        return self.wait_for(self.requests, predicate or (lambda r: True), count, timeout, "requests")

    def metrics(self):
        """Every delivered metric data point, flattened by the receiver:
        {name, unit, type (sum|gauge|histogram), temporality (1 delta,
        2 cumulative), isMonotonic, attributes, startTimeUnixNano,
        timeUnixNano, value | count, sum, min, max, bucketCounts,
        explicitBounds, exemplars [{traceId, spanId, value}], resource}."""
        return self._call("GET", "/metric-points")

    def wait_for_metric(self, name, predicate=None, count=1, timeout=20):
        """The points of metric name once at least count of them match
        predicate (all points of that name are returned)."""
        pred = predicate or (lambda p: True)
        items = self.wait_for(lambda: [p for p in self.metrics() if p["name"] == name], pred, count, timeout,
                              "points of " + name)
        return items

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def protobuf_fields(buf):
    """(field number, value) of each field of a protobuf message: an int for
    varints, bytes for fixed64, fixed32 and length-delimited fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise AssertionError("unexpected wire type %d" % wire)
        yield num, v


# ---- strict view of what went over the wire ----------------------------------

def _utf8(b):
    return bytes(b).decode("utf-8")  # strict: invalid UTF-8 raises


def _any_value(buf):
    for num, v in protobuf_fields(buf):
        if num == 1:
            return _utf8(v)
        if num == 2:
            return bool(v)
        if num == 3:
            return v - (1 << 64) if v >= 1 << 63 else v
        if num == 4:
            return struct.unpack("<d", v)[0]
        if num == 5:
            return [_any_value(x) for n, x in protobuf_fields(v) if n == 1]
        if num == 6:
            return dict(_key_value(x) for n, x in protobuf_fields(v) if n == 1)
        if num == 7:
            return bytes(v)
    return None


def _key_value(buf):
    key, value = "", None
    for num, v in protobuf_fields(buf):
        if num == 1:
            key = _utf8(v)
        elif num == 2:
            value = _any_value(v)
    return key, value


def _span(buf):
    span = {"spanId": "", "name": "", "traceState": "", "attributes": [], "events": [], "status": "", "flags": 0}
    for num, v in protobuf_fields(buf):
        if num == 2:
            span["spanId"] = bytes(v).hex()
        elif num == 16:
            span["flags"] = struct.unpack("<I", v)[0]
        elif num == 3:
            span["traceState"] = _utf8(v)
        elif num == 5:
            span["name"] = _utf8(v)
        elif num == 9:
            span["attributes"].append(_key_value(v))
        elif num == 11:
            event = {"name": "", "attributes": []}
            for n, x in protobuf_fields(v):
                if n == 2:
                    event["name"] = _utf8(x)
                elif n == 3:
                    event["attributes"].append(_key_value(x))
            span["events"].append(event)
        elif num == 13:
            for n, x in protobuf_fields(v):
                if n == 3:
                    _utf8(x)
                elif n == 4:
                    _key_value(x)
        elif num == 15:
            for n, x in protobuf_fields(v):
                if n == 2:
                    span["status"] = _utf8(x)
    return span


def wire_spans(receiver, status=None):
    """Every span of every export request (answered with status, when
    given), decoded from the raw bytes by protobuf_fields with every string
    (resource, scope, span, attribute, event, status) checked as strict
    UTF-8: {spanId, name, traceState, attributes, events, status, flags},
    attributes as (key, value) lists, exact: int64 as int, NaN/inf as
    floats. Span.flags (field 16) is read here because the receiver's
    official protos predate it."""
    out = []
    for body in receiver.bodies("/v1/traces", status=status):
        try:
            for n1, resource_spans in protobuf_fields(body):
                for n2, x in protobuf_fields(resource_spans):
                    if n2 == 1:  # resource
                        for n3, kv in protobuf_fields(x):
                            if n3 == 1:
                                _key_value(kv)
                    elif n2 == 2:  # scope spans
                        for n3, y in protobuf_fields(x):
                            if n3 == 1:  # scope
                                for n4, z in protobuf_fields(y):
                                    if n4 in (1, 2):
                                        _utf8(z)
                                    elif n4 == 3:
                                        _key_value(z)
                            elif n3 == 2:
                                out.append(_span(y))
                            elif n3 == 3:
                                _utf8(y)
                    elif n2 == 3:
                        _utf8(x)
        except UnicodeDecodeError as e:
            raise AssertionError("invalid UTF-8 exported: %s in %r" % (e, e.object[max(0, e.start - 40):e.end + 40]))
    return out
