# TigerOps agent bootstrap. libtigerops.so puts this directory first on
# PYTHONPATH, so Python imports this file at start-up (it arms a lazy start,
# below). It must never break the interpreter it runs in (any version, even Python 2): everything is
# guarded, and the user's own sitecustomize, if any, still runs after us.
import sys


# The agent starts when the process first imports one of these: a library
# we instrument (tigerops._hooks.install registers exactly these names; a
# test keeps the two lists equal) or our own package. Until then the process
# pays for this file alone: `python3 -c pass`, pip, apt's Python helpers and
# every script that never touches Flask, Celery or a database load neither
# the extension nor the tracer.
_TIGEROPS_TRIGGERS = frozenset((
    "flask.app", "sqlalchemy.engine.create", "requests.sessions", "httpx._client",
    "jinja2.environment", "redis.client", "flask_caching", "flask.views", "celery.app.base",
    "flask_restful", "flask_restful.reqparse", "pymemcache.client.base", "asgiref.wsgi",
    "sqlite3.dbapi2", "psycopg2", "psycopg", "pymysql", "urllib3.connectionpool",
    "urllib.request", "aiohttp.client", "flask_restx", "opentelemetry.trace", "asyncio.events",
    "aiosqlite.core", "celery.backends.redis",
))
# Pre-fork servers: the master starts the agent before forking its workers,
# as it would have at interpreter start (one start-up line, one tracer whose
# fork handlers the workers inherit).
_TIGEROPS_SERVERS = frozenset(("gunicorn.arbiter",))
# Our own modules start it once they are loaded (starting needs the package).
_TIGEROPS_OWN = frozenset(("tigerops", "_tigerops"))


def _tigerops_start():
    try:
        from tigerops import _bootstrap
        _bootstrap.start()
    except Exception as exc:  # never take the host down
        try:
            sys.stderr.write("tigerops: agent not started: %r\n" % (exc,))
        except Exception:
            pass


class _TigeropsLazyStart(object):
    """A meta path finder that answers no import itself: the first import of
    a trigger starts the agent (whose own import hook then handles that very
    module as if it had been installed from the start)."""

    def find_spec(self, name, path=None, target=None):
        if name in _TIGEROPS_TRIGGERS or name in _TIGEROPS_SERVERS:
            self.remove()
            _tigerops_start()
            try:
                from tigerops import _hooks
                return _hooks._finder.find_spec(name, path, target)
            except Exception:
                return None
        if name in _TIGEROPS_OWN:
            return self.start_after(name, path, target)
        return None

    def start_after(self, name, path, target):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is None:
            return spec
        finder = self

        def exec_then_start(module):
            exec_module(module)
            finder.remove()
            _tigerops_start()

        try:
            spec.loader.exec_module = exec_then_start  # this loader instance is the module's own
        except Exception:
            return spec
        return spec

    def remove(self):
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


def _tigerops_arm():
    if sys.version_info < (3, 9):
        return
    if any(name in sys.modules for name in _TIGEROPS_TRIGGERS | _TIGEROPS_SERVERS | _TIGEROPS_OWN):
        _tigerops_start()
    else:
        sys.meta_path.insert(0, _TigeropsLazyStart())


def _tigerops_chain_user_sitecustomize():
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.get("sitecustomize")
    removed = [i for i, p in enumerate(sys.path) if os.path.abspath(p or ".") == here]
    for i in reversed(removed):
        del sys.path[i]
    del sys.modules["sitecustomize"]
    try:
        import sitecustomize  # noqa: F401  (the user's, found further down the path)
    except ImportError as exc:
        if getattr(exc, "name", "sitecustomize") != "sitecustomize":
            import traceback
            traceback.print_exc()
    except Exception:
        import traceback
        sys.stderr.write("Error in the user's sitecustomize (run under TigerOps):\n")
        traceback.print_exc()
    finally:
        for i in removed:
            sys.path.insert(i, here)
        if "sitecustomize" not in sys.modules and ours is not None:
            sys.modules["sitecustomize"] = ours


_tigerops_arm()
_tigerops_chain_user_sitecustomize()
