"""One Flask app, sync and async views and a streamed response, served as
WSGI (gunicorn: asgiapp:app) or as ASGI through asgiref's WsgiToAsgi
(uvicorn, hypercorn: asgiapp:asgi)."""
import asyncio
import os
import time

from asgiref.wsgi import WsgiToAsgi
from flask import Flask, Response, request, stream_with_context

import tigerops

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/items/<int:i>")
def item(i):
    with tigerops.span("outer-%d" % i):
        time.sleep(0.001)
        with tigerops.span("inner-%d" % i):
            time.sleep(0.001)
    return "item %d" % i


async def run_async(i):
    with tigerops.span("outer-%d" % i):
        await asyncio.sleep(0.002)
        with tigerops.span("inner-%d" % i):
            await asyncio.gather(asyncio.sleep(0.001), asyncio.sleep(0.002))
    return "async %d" % i


# Without async views the agent keeps the current span in thread-locals;
# ASYNC_VIEWS=0 serves the app that way (asgiref runs the WSGI app in one
# thread of its own).
if os.environ.get("ASYNC_VIEWS", "1") == "1":
    app.add_url_rule("/async/<int:i>", view_func=run_async)


@app.route("/stream/<int:n>")
def stream(n):
    def chunks():
        for i in range(n):
            with tigerops.span("chunk-%d" % i):
                time.sleep(0.01)
                yield "%s %d\n" % (request.args.get("word", "chunk"), i)
    return Response(stream_with_context(chunks()), mimetype="text/plain")


@app.route("/fail")
def fail():
    raise RuntimeError("boom from the view")


asgi = WsgiToAsgi(app)
