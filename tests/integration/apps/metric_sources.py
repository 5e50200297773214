"""Operations whose metrics test_metric_sources.py counts: one scenario per
run, named by argv[1], then the process exits (the agent flushes its
metrics at exit). Servers come from REDIS_URL, MEMCACHED_PORT, HTTP_URL,
BROKER_URL."""
import os
import sys


def caches():
    """3 hits and 1 miss on each backend."""
    import redis
    from flask import Flask
    from flask_caching import Cache
    from pymemcache.client.base import Client as Memcache

    for cache_type in ("SimpleCache", "RedisCache"):
        app = Flask(cache_type)
        cache = Cache(app, config={"CACHE_TYPE": cache_type, "CACHE_REDIS_URL": os.environ["REDIS_URL"],
                                   "CACHE_KEY_PREFIX": cache_type})
        with app.app_context():
            cache.set("k1", "v1")
            cache.set("k2", "v2")
            cache.get("k1")                    # hit
            cache.get_many("k1", "k2", "nope")  # 2 hits, 1 miss
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    r.set("rk1", "v")
    r.get("rk1")             # hit
    r.mget("rk1", "rk-none")  # hit, miss
    r.hset("rh", "f", "v")
    r.hget("rh", "f")         # hit
    mc = Memcache(("127.0.0.1", int(os.environ["MEMCACHED_PORT"])))
    mc.set("mk1", "v")
    mc.set("mk2", "v")
    mc.get("mk1")                          # hit
    mc.get_many(["mk1", "mk2", "mk-none"])  # 2 hits, 1 miss


def sql():
    """SQLAlchemy: 7 SELECTs of items and 1 failing statement; sqlite3 used
    directly: 3 INSERTs. Half of them inside a Flask request."""
    import sqlite3

    from flask import Flask
    from sqlalchemy import create_engine, text
    engine = create_engine("sqlite://", future=True)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
    app = Flask(__name__)

    @app.route("/q")
    def q():
        with engine.connect() as c:
            for _ in range(4):
                c.execute(text("SELECT name FROM items WHERE id = 1")).fetchall()
        return "ok"

    assert app.test_client().get("/q").status_code == 200
    with engine.connect() as c:
        for _ in range(3):
            c.execute(text("SELECT name FROM items WHERE id = 2")).fetchall()
        try:
            c.execute(text("SELECT nothing FROM missing_table"))
        except Exception:
            pass
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (n INTEGER)")
    cur = conn.cursor()
    for i in range(3):
        cur.execute("INSERT INTO t (n) VALUES (?)", (i,))
    conn.commit()


def async_sql():
    """Awaited statements, outside any span: aiosqlite 3 SELECTs of notes
    (timed by the sqlite3 cursor underneath, on aiosqlite's thread); psycopg
    3's AsyncConnection on PG_DSN: 3 SELECTs of pg3m_notes, 1 failing."""
    import asyncio
    import tempfile

    async def main():
        import aiosqlite
        import psycopg
        async with aiosqlite.connect(os.path.join(tempfile.mkdtemp(), "m.db")) as db:
            await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            for _ in range(3):
                await db.execute("SELECT body FROM notes WHERE id = 1")
        conn = await psycopg.AsyncConnection.connect(os.environ["PG_DSN"], autocommit=True)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS pg3m_notes (id serial PRIMARY KEY, body text)")
            async with conn.cursor() as cur:
                for _ in range(3):
                    await cur.execute("SELECT body FROM pg3m_notes WHERE id = %s", (1,))
                try:
                    await cur.execute("SELECT no_such_column FROM pg3m_notes")
                except psycopg.Error:
                    pass
        finally:
            await conn.close()

    asyncio.run(main())


def http():
    """Against HTTP_URL (200 on /ok, 404 elsewhere): requests 2x200, 1x404;
    urllib 1x200, 1x404; httpx 1x200; urllib3 1x200; requests 1x200 inside
    a Flask request; one refused connection."""
    import urllib.error
    import urllib.request

    import httpx
    import requests
    import urllib3
    base = os.environ["HTTP_URL"]
    assert requests.get(base + "/ok").status_code == 200
    assert requests.get(base + "/ok").status_code == 200
    assert requests.get(base + "/missing").status_code == 404
    with urllib.request.urlopen(base + "/ok") as r:
        assert r.status == 200
    try:
        urllib.request.urlopen(base + "/missing")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    assert httpx.get(base + "/ok").status_code == 200
    assert urllib3.PoolManager().request("GET", base + "/ok").status == 200
    from flask import Flask
    app = Flask(__name__)

    @app.route("/call")
    def call():  # under a (sampled or not) request span
        return str(requests.get(base + "/ok").status_code)

    assert app.test_client().get("/call").data == b"200"
    try:
        requests.get("http://127.0.0.1:1/refused", timeout=5)
    except requests.ConnectionError:
        pass


def tasks():
    """To QUEUE: 4 echo (success; the result of the last one is waited
    for), 2 fail (failure), 1 flaky (a retry, then success), 1 expected (a
    failure the task declares: throws=)."""
    from tasks import echo, expected, fail, flaky
    queue = os.environ["QUEUE"]
    for i in range(3):
        echo.apply_async((i,), queue=queue)
    for _ in range(2):
        fail.apply_async(queue=queue)
    flaky.apply_async(queue=queue)
    expected.apply_async(queue=queue)
    # Reading a result (GET on the Redis result backend) is no cache lookup.
    assert echo.apply_async((7,), queue=queue).get(timeout=30) == 7


def fan_out():
    """One task to QUEUE that publishes 5 echo to FAN_OUT_QUEUE."""
    from tasks import fan_out
    fan_out.apply_async((os.environ["FAN_OUT_QUEUE"], 5), queue=os.environ["QUEUE"])


def publish():
    """5 messages to QUEUE that no worker consumes; then waits for the test
    to close stdin (the queue depth observer runs meanwhile)."""
    from tasks import echo
    for i in range(5):
        echo.apply_async((i,), queue=os.environ["QUEUE"])
    import threading
    print("PUBLISHED", ",".join(sorted(t.name for t in threading.enumerate())), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    globals()[sys.argv[1]]()
