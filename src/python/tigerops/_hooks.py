"""Post-import hooks: when a module we instrument finishes loading (whatever
imported it, and whenever), the matching patch runs once. Modules already
imported when the agent starts are patched at once."""
import sys
from _thread import allocate_lock

_patches = {}
_lock = allocate_lock()


def _run_patch(name, module):
    target = _patches.pop(name, None)
    if target is None:
        return
    try:
        # "package.module:function", imported only now: the agent's start-up
        # must not pay for instrumentations of libraries the app never uses.
        module_name, _, function = target.partition(":")
        patch = getattr(__import__(module_name, fromlist=[function]), function)
        patch(module)
    except Exception as exc:  # fail open: the app runs untraced
        import _tigerops
        _tigerops.log(2, "could not instrument %s: %r" % (name, exc))


class _PostImportFinder:
    """A meta path finder that only wraps the loader's exec_module of the
    modules we patch; every other import goes straight past it."""

    def find_spec(self, name, path=None, target=None):
        if name not in _patches:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_then_patch(module):
            exec_module(module)
            _run_patch(name, module)

        try:
            loader.exec_module = exec_then_patch  # this loader instance is the module's own
        except Exception:
            return spec
        return spec


_finder = _PostImportFinder()


def register(name, patch):
    """patch: "module:function", called with the module once it is loaded."""
    with _lock:
        if name in sys.modules:
            _patches[name] = patch
            _run_patch(name, sys.modules[name])
            return
        _patches[name] = patch
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def install():
    register("flask.app", "tigerops._flask:patch_flask_module")
    register("sqlalchemy.engine.create", "tigerops._sqlalchemy:patch_create_module")
    register("requests.sessions", "tigerops._http:patch_requests")
    register("httpx._client", "tigerops._http:patch_httpx")
    register("jinja2.environment", "tigerops._jinja2:patch_environment_module")
    register("redis.client", "tigerops._redis:patch_client_module")
    register("flask_caching", "tigerops._caches:patch_flask_caching")
    register("flask.views", "tigerops._flask_internals:patch_views")
    register("celery.app.base", "tigerops._celery:patch_celery")
    register("flask_restful", "tigerops._flask_internals:patch_restful")
    register("flask_restful.reqparse", "tigerops._flask_internals:patch_reqparse")
    register("pymemcache.client.base", "tigerops._caches:patch_pymemcache")
    register("asgiref.wsgi", "tigerops._asgi:patch_wsgi")
    register("sqlite3.dbapi2", "tigerops._dbapi:patch_sqlite3")
    register("psycopg2", "tigerops._dbapi:patch_psycopg2")
    register("psycopg", "tigerops._dbapi:patch_psycopg")
    register("pymysql", "tigerops._dbapi:patch_pymysql")
    register("urllib3.connectionpool", "tigerops._http:patch_urllib3")
    register("urllib.request", "tigerops._http:patch_urllib_request")
    register("aiohttp.client", "tigerops._http:patch_aiohttp")
    register("flask_restx", "tigerops._flask_internals:patch_restx")
    register("opentelemetry.trace", "tigerops._otel_bridge:install")
    register("asyncio.events", "tigerops._context:watch_event_loops")
    register("aiosqlite.core", "tigerops._dbapi:patch_aiosqlite")
    register("celery.backends.redis", "tigerops._caches:patch_celery_redis_backend")
