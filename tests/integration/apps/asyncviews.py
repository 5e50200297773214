"""Flask async views (run by asgiref in an event loop of their own) with
awaits inside span() blocks."""
import asyncio

from flask import Flask

import tigerops

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/async/<int:i>")
async def run_async(i):
    with tigerops.span("outer-%d" % i):
        await asyncio.sleep(0.005)
        with tigerops.span("inner-%d" % i):
            await asyncio.gather(asyncio.sleep(0.002), asyncio.sleep(0.003))
    return "ok"
