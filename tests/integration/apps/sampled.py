"""An app for the sampling tests: every /req/<i> makes two child spans
("child" and, inside it, "grandchild"), then fails or runs slow when the
query string asks for it. /flush exports what the worker has ended so far."""
import os
import time

from flask import Flask, jsonify, request

import _tigerops
import tigerops

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/req/<int:i>")
def req(i):
    with tigerops.span("child", attributes={"req.index": i}):
        with tigerops.span("grandchild"):
            pass
    if request.args.get("child_error"):
        try:
            with tigerops.span("failing-child"):
                raise ValueError("handled in the view")
        except ValueError:
            pass
    sleep_ms = request.args.get("sleep_ms")
    if sleep_ms:
        time.sleep(int(sleep_ms) / 1000.0)
    fail = request.args.get("fail")
    if fail == "raise":
        raise RuntimeError("request %d failed" % i)
    if fail == "500":
        return "request %d failed" % i, 500
    return "ok %d" % i


@app.route("/flush")
def flush():
    """Waits until every span this process ended before has been exported
    (with one sync worker: every earlier request's spans)."""
    flushed = tigerops.flush(10000)
    return jsonify(flushed=flushed, pid=os.getpid(), stats=_tigerops.stats())
