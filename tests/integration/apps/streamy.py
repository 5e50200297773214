"""Streamed responses with stream_with_context: spans opened while the body
is generated, the request read from inside the generator, and a stream
that fails after its first chunk."""
import time

from flask import Flask, Response, request, stream_with_context

import tigerops

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/stream/<int:n>")
def stream(n):
    def chunks():
        for i in range(n):
            with tigerops.span("chunk-%d" % i):
                time.sleep(0.05)
                yield "%s %d\n" % (request.args.get("word", "chunk"), i)
    return Response(stream_with_context(chunks()), mimetype="text/plain")


@app.route("/stream-fail")
def stream_fail():
    def chunks():
        yield "first\n"
        with tigerops.span("before-failure"):
            time.sleep(0.01)
        raise RuntimeError("the feed broke mid-stream")
    return Response(stream_with_context(chunks()), mimetype="text/plain")


@app.route("/plain/<name>")
def plain(name):
    with tigerops.span("work-" + name):
        return "plain " + name
