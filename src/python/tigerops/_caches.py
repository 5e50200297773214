"""Caches: Flask-Caching operations as INTERNAL spans (with hit/miss on
reads) and pymemcache calls as CLIENT spans. Keys are masked to their
pattern; cached values are never recorded.

Every read, traced or not, also counts its keys' hits and misses into
tigerops.cache.lookups (cache.backend, cache.result=hit|miss): the hit
ratio of a backend is hits / (hits + misses). A read made by Flask-Caching
is counted there once, under Flask-Caching's backend: the client library
underneath it (redis-py, pymemcache) does not count it again."""
import contextvars
import functools

import _tigerops
from tigerops import Span, _bootstrap, _metrics

_READS = frozenset(("get", "get_many"))
_lookups = _metrics.instrument("counter", "tigerops.cache.lookups", "{lookup}",
                               "Cache reads by key, and whether the key was found")
# Inside a Flask-Caching read: the client library below does not count.
_counting_above = contextvars.ContextVar("tigerops_cache_read", default=False)
_result_attributes = {}  # backend -> (hit attributes, miss attributes), made once


def count_lookups(backend, hits, misses):
    pair = _result_attributes.get(backend)
    if pair is None:
        pair = _result_attributes[backend] = ({"cache.backend": backend, "cache.result": "hit"},
                                              {"cache.backend": backend, "cache.result": "miss"})
    if hits:
        _lookups.record(hits, pair[0])
    if misses:
        _lookups.record(misses, pair[1])


def _hits_misses(op, result, keys):
    """(hits, misses) of a read's result; None when it is not one we know."""
    if op == "get":
        return (0, 1) if result is None else (1, 0)
    if op == "gets":
        return (0, 1) if not isinstance(result, tuple) or result[0] is None else (1, 0)
    if op == "get_many":
        if isinstance(result, (list, tuple)):
            hits = sum(1 for r in result if r is not None)
            return hits, len(result) - hits
        if isinstance(result, dict):  # only the keys found
            return len(result), max(keys - len(result), 0)
    return None


def _count(backend, op, result, keys):
    try:
        counts = _hits_misses(op, result, keys)
        if counts is not None:
            count_lookups(backend, *counts)
    except Exception:
        pass


def below_a_counted_read():
    return _counting_above.get()


def _key_pattern(key):
    return _tigerops.key_statement("", key).lstrip() if isinstance(key, (str, bytes)) else ""


def _record_hit(span, op, result):
    if op == "get":
        span.set_attribute("cache.hit", result is not None)
    elif op == "get_many" and isinstance(result, (list, tuple)):
        hits = sum(1 for r in result if r is not None)
        span.set_attribute("cache.hits", hits)
        span.set_attribute("cache.hit", hits == len(result) and hits > 0)
    elif op == "get_many" and isinstance(result, dict):
        span.set_attribute("cache.hits", len(result))


def _wrap_flask_caching(op, original):
    read = op in _READS

    @functools.wraps(original)
    def method(self, *args, **kwargs):
        if read:
            token = _counting_above.set(True)
            try:
                result = traced(self, *args, **kwargs)
            finally:
                _counting_above.reset(token)
            _count(type(getattr(self, "cache", None)).__name__, op, result, len(args))
            return result
        return traced(self, *args, **kwargs)

    def traced(self, *args, **kwargs):
        if not _bootstrap.TRACE_CACHE or not _tigerops.tracing_now():
            return original(self, *args, **kwargs)
        with Span("cache." + op, _tigerops.KIND_INTERNAL) as span:
            if args:
                span.set_attribute("cache.key", _key_pattern(args[0]))
            if op == "get_many":
                span.set_attribute("cache.keys", len(args))
            span.set_attribute("cache.backend", type(getattr(self, "cache", None)).__name__)
            result = original(self, *args, **kwargs)
            _record_hit(span, op, result)
            return result

    method.__tigerops__ = True
    return method


def patch_flask_caching(module):
    cache_class = module.Cache
    for op in ("get", "set", "add", "delete", "get_many", "set_many", "delete_many", "has"):
        original = getattr(cache_class, op, None)
        if original is not None and not getattr(original, "__tigerops__", False):
            setattr(cache_class, op, _wrap_flask_caching(op, original))


def _wrap_memcache(op, original):
    read = op in ("get", "gets", "get_many")

    @functools.wraps(original)
    def method(self, *args, **kwargs):
        result = traced(self, *args, **kwargs)
        if read and not _counting_above.get():
            if op == "get" and (len(args) > 1 or "default" in kwargs):
                # get(key, default): a miss returns the caller's default
                default = args[1] if len(args) > 1 else kwargs["default"]
                count_lookups("memcached", 0, 1) if result is default else count_lookups("memcached", 1, 0)
                return result
            keys = len(args[0]) if op == "get_many" and args and isinstance(args[0], (list, tuple)) else 1
            _count("memcached", op, result, keys)
        return result

    def traced(self, *args, **kwargs):
        if not _bootstrap.TRACE_CACHE or not _tigerops.tracing_now():
            return original(self, *args, **kwargs)
        with Span(op, _tigerops.KIND_CLIENT) as span:
            span.set_attribute("db.system.name", "memcached")
            span.set_attribute("db.operation.name", op)
            key = args[0] if args and isinstance(args[0], (str, bytes)) else None
            span.set_attribute("db.query.text", _tigerops.key_statement(op, key) if key is not None
                               else op)
            server = getattr(self, "server", None)
            if isinstance(server, tuple) and len(server) == 2:
                span.set_attribute("server.address", str(server[0]))
                span.set_attribute("server.port", int(server[1]))
            result = original(self, *args, **kwargs)
            _record_hit(span, op, result)
            return result

    method.__tigerops__ = True
    return method


def patch_pymemcache(module):
    client_class = module.Client
    for op in ("get", "set", "add", "delete", "get_many", "gets", "incr", "decr", "touch"):
        original = getattr(client_class, op, None)
        if original is not None and not getattr(original, "__tigerops__", False):
            setattr(client_class, op, _wrap_memcache(op, original))


def _not_a_cache_read(original):
    """A read below which redis GETs are not cache lookups (they are counted
    by nobody)."""
    @functools.wraps(original)
    def method(self, *args, **kwargs):
        token = _counting_above.set(True)
        try:
            return original(self, *args, **kwargs)
        finally:
            _counting_above.reset(token)

    method.__tigerops__ = True
    return method


def patch_celery_redis_backend(module):
    """Celery's Redis result backend reads task results with GET/MGET:
    polling for a result is not a cache lookup, and would count misses."""
    backend = module.RedisBackend
    for name in ("get", "mget"):
        original = backend.__dict__.get(name)
        if original is not None and not getattr(original, "__tigerops__", False):
            setattr(backend, name, _not_a_cache_read(original))
