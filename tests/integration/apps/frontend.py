"""Calls the backend named by BACKEND_URL with requests and httpx, and
renders a template: the outgoing context must reach the backend."""
import os

import httpx
# anyio before 4.4 imports its asyncio backend lazily and unlocked
# (anyio#425): two worker threads making their first AsyncClient at once
# can get the half-imported module and fail with AttributeError, with or
# without an agent. Real apps under threaded servers import it up front.
import anyio._backends._asyncio  # noqa: F401,E402
import requests
from flask import Flask, render_template_string

app = Flask(__name__)
BACKEND = os.environ.get("BACKEND_URL", "http://127.0.0.1:1")


@app.route("/health")
def health():
    return "ok"


@app.route("/via-requests")
def via_requests():
    url = BACKEND.replace("http://", "http://alice:hunter2@") + "/hello/from-requests?sig=secret-sig&page=2"
    r = requests.get(url, timeout=10)
    return render_template_string("backend said {{ text }}", text=r.text)


@app.route("/via-httpx")
def via_httpx():
    with httpx.Client() as client:
        r = client.get(BACKEND + "/hello/from-httpx")
    return r.text


@app.route("/unreachable")
def unreachable():
    try:
        requests.get("http://127.0.0.1:1/nothing", timeout=2)
    except requests.ConnectionError:
        return "down", 502
    return "?"


@app.route("/via-httpx-async")
def via_httpx_async():
    # A sync view (thread-locals: this app has no async views) running two
    # AsyncClient calls at once on its own event loop.
    import asyncio

    async def both():
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(client.get(BACKEND + "/hello/async-a"), client.get(BACKEND + "/hello/async-b"))

    a, b = asyncio.run(both())
    return a.text + "|" + b.text
