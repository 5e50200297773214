"""Async views calling the backend named by BACKEND_URL with
httpx.AsyncClient, awaits inside span() blocks, two calls gathered: each
CLIENT span a child of the block it was made in, never of a sibling call."""
import asyncio
import os

import httpx
# anyio before 4.4 imports its asyncio backend lazily and unlocked
# (anyio#425): two worker threads making their first AsyncClient at once
# can get the half-imported module and fail with AttributeError, with or
# without an agent. Real apps under threaded servers import it up front.
import anyio._backends._asyncio  # noqa: F401,E402
from flask import Flask

import tigerops

app = Flask(__name__)
BACKEND = os.environ.get("BACKEND_URL", "http://127.0.0.1:1")


@app.route("/health")
def health():
    return "ok"


# httpx's default 5 s read timeout is shorter than the one-worker backend's
# queue on a loaded 2-core machine: a timeout there made a 500, not a bug.
PATIENT = httpx.Timeout(60.0)


@app.route("/call/<int:i>")
async def call(i):
    async with httpx.AsyncClient(timeout=PATIENT) as client:
        with tigerops.span("outer-%d" % i):
            await asyncio.sleep(0.002)
            first = await client.get("%s/hello/one-%d?sig=secret-sig" % (BACKEND, i))
            with tigerops.span("inner-%d" % i):
                a, b = await asyncio.gather(client.get("%s/hello/a-%d" % (BACKEND, i)),
                                            client.get("%s/hello/b-%d" % (BACKEND, i)))
    return "|".join((first.text, a.text, b.text))


@app.route("/missing")
async def missing():
    async with httpx.AsyncClient(timeout=PATIENT) as client:
        r = await client.get(BACKEND + "/no/such/page")
    return "backend answered %d" % r.status_code


@app.route("/unreachable")
async def unreachable():
    try:
        async with httpx.AsyncClient() as client:
            await client.get("http://127.0.0.1:1/nothing", timeout=2)
    except httpx.ConnectError:
        return "down", 502
    return "?"
