"""redis-py: a CLIENT span per command (named after the command, the key
masked to its pattern, values never recorded) and one span per pipeline.
GET-style reads, traced or not, count their hits and misses (a nil reply is
a miss) into tigerops.cache.lookups with cache.backend=redis, unless
Flask-Caching made the read and counts it itself."""
import _tigerops
from tigerops import Span
from tigerops._caches import below_a_counted_read, count_lookups

# Reads whose nil reply means "not there": one key, or one per element.
_SINGLE_READS = frozenset(("GET", "GETEX", "GETDEL", "HGET", "get", "getex", "getdel", "hget"))
_MULTI_READS = frozenset(("MGET", "HMGET", "mget", "hmget"))

# Commands whose first argument is not a key, or whose arguments are secret.
_NO_KEY = frozenset(("AUTH", "HELLO", "PING", "INFO", "SELECT", "CLIENT", "CONFIG", "ECHO", "FLUSHDB",
                     "FLUSHALL", "DBSIZE", "TIME", "SCRIPT", "EVAL", "EVALSHA", "MULTI", "EXEC", "DISCARD",
                     "QUIT", "SAVE", "BGSAVE", "LASTSAVE", "SHUTDOWN", "SLOWLOG", "MONITOR", "PUBLISH",
                     "SCAN", "KEYS", "COMMAND", "MEMORY", "DEBUG", "ACL", "CLUSTER", "READONLY", "WAIT"))


def _statement(args):
    if not args:
        return "", ""
    command = args[0]
    name = command.decode("latin-1") if isinstance(command, bytes) else str(command)
    name = name.upper()
    if name in _NO_KEY or len(args) < 2:
        return name, name.split()[0] if name else name
    return _tigerops.key_statement(name, args[1]), name


def _connection_attributes(span, client):
    try:
        kw = client.connection_pool.connection_kwargs
    except AttributeError:
        return
    span.set_attribute("db.namespace", str(kw.get("db", 0)))
    if "host" in kw:
        span.set_attribute("server.address", kw["host"])
        span.set_attribute("server.port", int(kw.get("port", 6379)))
    elif "path" in kw:
        span.set_attribute("server.address", kw["path"])


def patch_client_module(module):
    redis_class = module.Redis
    original = redis_class.execute_command
    if getattr(original, "__tigerops__", False):
        return

    def execute_command(self, *args, **options):
        if not _tigerops.tracing_now():
            result = original(self, *args, **options)
        else:
            statement, name = _statement(args)
            with Span(name or "redis", _tigerops.KIND_CLIENT) as span:
                span.set_attribute("db.system.name", "redis")
                span.set_attribute("db.operation.name", name)
                span.set_attribute("db.query.text", statement)
                _connection_attributes(span, self)
                result = original(self, *args, **options)
        if args and args[0] in _SINGLE_READS:
            if not below_a_counted_read():
                count_lookups("redis", 0, 1) if result is None else count_lookups("redis", 1, 0)
        elif args and args[0] in _MULTI_READS and isinstance(result, list) and not below_a_counted_read():
            hits = sum(1 for r in result if r is not None)
            count_lookups("redis", hits, len(result) - hits)
        return result

    execute_command.__tigerops__ = True
    execute_command.__wrapped__ = original
    redis_class.execute_command = execute_command

    pipeline_class = module.Pipeline
    original_execute = pipeline_class.execute

    def execute(self, *args, **kwargs):
        if not _tigerops.tracing_now() or not self.command_stack:
            return original_execute(self, *args, **kwargs)
        commands = [_statement(c[0])[0] for c in self.command_stack]
        name = "MULTI" if self.transaction else "PIPELINE"
        with Span(name, _tigerops.KIND_CLIENT) as span:
            span.set_attribute("db.system.name", "redis")
            span.set_attribute("db.operation.name", name)
            span.set_attribute("db.operation.batch.size", len(commands))
            span.set_attribute("db.query.text", "; ".join(commands))
            span.set_attribute("redis.pipeline.commands", commands[:128])
            _connection_attributes(span, self)
            return original_execute(self, *args, **kwargs)

    execute.__tigerops__ = True
    execute.__wrapped__ = original_execute
    pipeline_class.execute = execute
