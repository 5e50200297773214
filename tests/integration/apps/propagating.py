"""Calls DOWNSTREAM_URL with each HTTP client, and queues a Celery task that
calls it too, so a test can see what every hop passes on (OTEL_PROPAGATORS)."""
import asyncio
import os
import urllib.request

import aiohttp
import httpx
# anyio before 4.4 imports its asyncio backend lazily and unlocked
# (anyio#425): two worker threads making their first AsyncClient at once
# can get the half-imported module and fail with AttributeError, with or
# without an agent. Real apps under threaded servers import it up front.
import anyio._backends._asyncio  # noqa: F401,E402
import requests
import urllib3
from flask import Flask, Response

app = Flask(__name__)
DOWNSTREAM = os.environ.get("DOWNSTREAM_URL", "http://127.0.0.1:1")


def _aiohttp(url):
    async def fetch():
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as r:
                return await r.text()
    return asyncio.run(fetch())


def _httpx_async(url):
    async def fetch():
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).text
    return asyncio.run(fetch())


CLIENTS = {
    "requests": lambda url: requests.get(url, timeout=10).text,
    "httpx": lambda url: httpx.get(url, timeout=10).text,
    "httpx-async": _httpx_async,
    "urllib3": lambda url: urllib3.PoolManager().request("GET", url).data.decode(),
    "urllib-request": lambda url: urllib.request.urlopen(url, timeout=10).read().decode(),
    "aiohttp": _aiohttp,
}


@app.route("/health")
def health():
    return "ok"


@app.route("/call/<client>")
def call(client):
    return CLIENTS[client](DOWNSTREAM + "/" + client)


@app.route("/stream/<client>")
def stream(client):
    """The call made while the server iterates the body, after the view
    has returned."""
    def body():
        yield "called "
        yield CLIENTS[client](DOWNSTREAM + "/stream/" + client)
    return Response(body())


@app.route("/celery")
def celery():
    import propagating_tasks
    propagating_tasks.forward.delay("celery")
    return "queued"
