"""redis-py, Flask-Caching and pymemcache against the servers named in
REDIS_URL and MEMCACHED_PORT."""
import os

import redis
from flask import Flask
from flask_caching import Cache
from pymemcache.client.base import Client as Memcache

app = Flask(__name__)
r = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
cache = Cache(app, config={"CACHE_TYPE": os.environ.get("CACHE_TYPE", "SimpleCache"),
                           "CACHE_REDIS_URL": os.environ.get("REDIS_URL", "")})
mc = Memcache(("127.0.0.1", int(os.environ.get("MEMCACHED_PORT", "1"))))


@app.route("/health")
def health():
    return "ok"


@app.route("/redis")
def use_redis():
    r.set("user:918273:profile", "value-SECRET-1")
    r.get("user:918273:profile")
    with r.pipeline(transaction=True) as p:
        p.incr("visits:735291").expire("visits:735291", 60).get("user:918273:profile")
        p.execute()
    return "ok"


@app.route("/cache")
def use_cache():
    cache.get("page:640213")              # miss
    cache.set("page:640213", "cached-SECRET-2")
    cache.get("page:640213")              # hit
    cache.get_many("page:640213", "page:640214")
    cache.delete("page:640213")
    return "ok"


@app.route("/memcached")
def use_memcached():
    mc.set("item:770011", "mc-SECRET-3")
    mc.get("item:770011")
    mc.get("item:770012")
    mc.delete("item:770011")
    return "ok"
