"""Calls the backend named by BACKEND_URL with urllib3 (PoolManager and a
pool directly), urllib.request, aiohttp and requests (which runs on
urllib3): each call must be one CLIENT span the backend continues."""
import asyncio
import os
import urllib.error
import urllib.request

import aiohttp
import requests
import urllib3
from flask import Flask

app = Flask(__name__)
BACKEND = os.environ.get("BACKEND_URL", "http://127.0.0.1:1")
pool_manager = urllib3.PoolManager()


@app.route("/health")
def health():
    return "ok"


@app.route("/via-urllib3")
def via_urllib3():
    url = BACKEND.replace("http://", "http://alice:hunter2@") + "/hello/from-urllib3?sig=secret-sig&page=2"
    r = pool_manager.request("GET", url)
    return r.data.decode()


@app.route("/via-urllib3-pool")
def via_urllib3_pool():
    host, port = BACKEND.rsplit("/", 1)[1].split(":")
    with urllib3.HTTPConnectionPool(host, int(port)) as pool:
        r = pool.request("GET", "/hello/from-pool")
    return r.data.decode()


@app.route("/via-urllib-request")
def via_urllib_request():
    with urllib.request.urlopen(BACKEND + "/hello/from-urllib", timeout=10) as r:
        return r.read().decode()


@app.route("/urllib-request-404")
def urllib_request_404():
    try:
        urllib.request.urlopen(BACKEND + "/nowhere", timeout=10)
    except urllib.error.HTTPError as e:
        return "backend said %d" % e.code
    return "?"


@app.route("/via-aiohttp")
def via_aiohttp():
    async def fetch():
        async with aiohttp.ClientSession() as session:
            async with session.get(BACKEND + "/hello/from-aiohttp") as r:
                return await r.text()
    return asyncio.run(fetch())


@app.route("/via-requests")
def via_requests():
    return requests.get(BACKEND + "/hello/from-requests", timeout=10).text


@app.route("/unreachable")
def unreachable():
    errors = []
    try:
        pool_manager.request("GET", "http://127.0.0.1:1/nothing", retries=False)
    except urllib3.exceptions.HTTPError as e:
        errors.append(type(e).__name__)
    try:
        urllib.request.urlopen("http://127.0.0.1:1/nothing", timeout=2)
    except urllib.error.URLError as e:
        errors.append(type(e).__name__)

    async def fetch():
        async with aiohttp.ClientSession() as session:
            try:
                await session.get("http://127.0.0.1:1/nothing")
            except aiohttp.ClientError as e:
                errors.append(type(e).__name__)
    asyncio.run(fetch())
    return ",".join(errors), 502


@app.route("/aiohttp-gather")
def aiohttp_gather():
    """Three requests in flight at once on one loop: none may become the
    parent of another."""
    async def fetch():
        async with aiohttp.ClientSession() as session:
            async def one(name):
                async with session.get(BACKEND + "/hello/" + name) as r:
                    return await r.text()
            return await asyncio.gather(one("g1"), one("g2"), one("g3"))
    return ",".join(asyncio.run(fetch()))
