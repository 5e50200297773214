"""Redis, Flask-Caching and memcached calls as spans under the request, with
keys masked to their pattern and no value ever exported."""

from agent import agent_env, gunicorn, server_spans


def children_of(otlp, route, count):
    spans = otlp.wait_for_spans(lambda s: s["name"] == route and s["kind"] == 2)
    (root,) = server_spans(spans, route)
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"], count=count + 1)
    return root, [s for s in spans if s["traceId"] == root["traceId"] and s["spanId"] != root["spanId"]]


KEY_IDS = [b"918273", b"735291", b"640213", b"640214", b"770011", b"770012"]


def assert_no_values(otlp):
    """Neither a cached value nor an id from a key is in the exported bytes."""
    for raw in otlp.bodies():
        assert b"SECRET" not in raw
        for key_id in KEY_IDS:
            assert key_id not in raw, key_id


def test_redis_commands_and_transactional_pipeline(otlp, redis_server):
    env = agent_env(otlp, REDIS_URL=redis_server.url)
    with gunicorn("cachey:app", env, workers=1) as server:
        assert server.get("/redis")[0] == 200
        root, spans = children_of(otlp, "GET /redis", 3)
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"SET", "GET", "MULTI"}, [s["name"] for s in spans]
    for s in spans:
        assert s["kind"] == 3 and s["parentSpanId"] == root["spanId"]
        assert s["attributes"]["db.system.name"] == "redis"
        assert s["attributes"]["server.port"] == redis_server.port
        assert s["attributes"]["db.namespace"] == "0"
    assert by_name["GET"]["attributes"]["db.query.text"] == "GET user:?:profile"
    multi = by_name["MULTI"]["attributes"]
    assert multi["db.operation.batch.size"] == 3
    assert multi["redis.pipeline.commands"] == ["INCRBY visits:?", "EXPIRE visits:?", "GET user:?:profile"]
    assert_no_values(otlp)


def test_flask_caching_hits_and_misses_simple_and_redis(otlp, redis_server):
    for cache_type in ("SimpleCache", "RedisCache"):
        otlp.reset()
        env = agent_env(otlp, REDIS_URL=redis_server.url, CACHE_TYPE=cache_type)
        with gunicorn("cachey:app", env, workers=1) as server:
            assert server.get("/cache")[0] == 200
            root, spans = children_of(otlp, "GET /cache", 5)
        ops = [s for s in spans if s["name"].startswith("cache.")]
        ops.sort(key=lambda s: int(s["startTimeUnixNano"]))
        assert [s["name"] for s in ops] == ["cache.get", "cache.set", "cache.get", "cache.get_many",
                                            "cache.delete"], cache_type
        assert ops[0]["attributes"]["cache.hit"] is False
        assert ops[2]["attributes"]["cache.hit"] is True
        assert ops[0]["attributes"]["cache.key"] == "page:?"
        assert ops[0]["attributes"]["cache.backend"] == cache_type
        assert all(s["parentSpanId"] == root["spanId"] for s in ops)
        assert_no_values(otlp)


def test_pymemcache_against_memcached(otlp, memcached):
    env = agent_env(otlp, MEMCACHED_PORT=memcached.port)
    with gunicorn("cachey:app", env, workers=1) as server:
        assert server.get("/memcached")[0] == 200
        root, spans = children_of(otlp, "GET /memcached", 4)
    spans.sort(key=lambda s: int(s["startTimeUnixNano"]))
    assert [s["name"] for s in spans] == ["set", "get", "get", "delete"]
    assert [s["attributes"].get("cache.hit") for s in spans] == [None, True, False, None]
    for s in spans:
        a = s["attributes"]
        assert s["kind"] == 3
        assert a["db.system.name"] == "memcached"
        assert a["server.port"] == memcached.port
        assert a["db.query.text"].split()[1] == "item:?"
    assert_no_values(otlp)
