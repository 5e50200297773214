"""Caches: Flask-Caching operations as INTERNAL spans (with hit/miss on
reads) and pymemcache calls as CLIENT spans. Keys are masked to their
pattern; cached values are never recorded."""
import functools

import _tigerops
from tigerops import Span, _bootstrap

_READS = frozenset(("get", "get_many"))


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
    @functools.wraps(original)
    def method(self, *args, **kwargs):
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
    @functools.wraps(original)
    def method(self, *args, **kwargs):
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
