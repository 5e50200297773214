"""An app for the metrics tests: /work/<i> answers (or sleeps, fails,
raises, aborts as asked), /custom records through _tigerops.metric, /flush
pushes spans and metrics to the collector; /stream, /file, /kept and
/contexts answer in ways that keep a request's route or status out of
the obvious places (a body made later, a body that is a file, a Request
that outlives the request, another request context inside)."""
import io
import os
import time

from flask import Flask, abort, jsonify, request, send_file, stream_with_context

import _tigerops
import tigerops

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/work/<int:i>")
def work(i):
    sleep_ms = request.args.get("sleep_ms")
    if sleep_ms:
        time.sleep(int(sleep_ms) / 1000.0)
    fail = request.args.get("fail")
    if fail == "raise":
        raise RuntimeError("request %d failed" % i)
    if fail == "500":
        return "failed", 500
    if fail == "abort":
        abort(404)
    return "ok %d" % i


@app.route("/stream/<int:n>")
def stream(n):
    def chunks():
        for k in range(n):
            yield "%d\n" % k
    if request.args.get("with_context"):
        return app.response_class(stream_with_context(chunks()))
    return app.response_class(chunks())


@app.route("/file/<name>")
def file(name):
    # direct_passthrough: the body is the server's file wrapper, not a
    # werkzeug Response's
    return send_file(io.BytesIO(b"contents of " + name.encode()), mimetype="text/plain")


_kept = []


@app.route("/kept/<int:i>")
def kept(i):
    """Keeps this request's Request alive past the request."""
    _kept.append(request._get_current_object())
    return "kept %d" % i


@app.route("/contexts/<int:i>")
def contexts(i):
    """Makes and frees another request context of the app inside this one."""
    with app.test_request_context("/work/99"):
        pass
    return "contexts %d" % i


@app.route("/slow")
def slow():
    time.sleep(0.12)
    return "slow"


@app.route("/custom")
def custom():
    """n measurements of a counter, each with its own attribute value, and
    one of each other kind."""
    n = int(request.args.get("n", "1"))
    counter = _tigerops.metric("counter", "test.custom.count", "{item}", "items")
    for k in range(n):
        counter.record(1, {"item": "i%d" % k, "odd": object(), 7: True})
    _tigerops.metric("gauge", "test.custom.depth", "{message}", "").record(5, {"queue": "q"})
    _tigerops.metric("updown", "test.custom.open", "{conn}", "").record(-2)
    _tigerops.metric("histogram", "test.custom.size", "By", "", [10, 100]).record(50, {"ok": True, "ratio": 0.5})
    return "recorded"


@app.route("/flush")
def flush():
    return jsonify(flushed=tigerops.flush(10000), pid=os.getpid())
