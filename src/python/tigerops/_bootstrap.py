"""Starts the agent inside a Python process: the C tracer, the exit flush,
and the import hooks that instrument libraries as they are imported."""
import atexit
import sys

import _tigerops

_started = None
# On/off switches of whole instrumentations, read per call by their glue;
# refreshed whenever a layer of the settings may have changed.
TRACE_CELERY = True
TRACE_CACHE = True


def refresh_switches():
    global TRACE_CELERY, TRACE_CACHE
    TRACE_CELERY = _tigerops.config_get("TIGEROPS_TRACE_CELERY") != "false"
    TRACE_CACHE = _tigerops.config_get("TIGEROPS_TRACE_CACHE") != "false"
    _tigerops.configure_logging(None)  # otelServiceName follows app.config's service name


def reload_settings():
    """Reads the environment again (a .env file loaded by the app, a test
    conftest's OTEL_SDK_DISABLED). Returns True when still tracing."""
    enabled = _tigerops.config_reload()
    refresh_switches()
    return enabled


def _note_missing_bytecode():
    """Says so when this interpreter has no bytecode of the agent and could
    not write it (a root-owned install, PYTHONDONTWRITEBYTECODE): then every
    process compiles the agent's modules at start-up, which costs time and
    about 800 KB of a worker's heap that the compiler leaves fragmented."""
    import os
    cached = globals().get("__cached__")
    if cached and not os.path.exists(cached):
        where = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _tigerops.log(3, "no bytecode of the agent for %s: its modules are compiled at every start-up; "
                         "compile them once with: %s -m compileall %s"
                      % (sys.implementation.cache_tag, sys.executable, where))


def start():
    """Idempotent. Returns True when this process is traced."""
    global _started
    if _started is not None:
        return _started
    _started = False
    if not _tigerops.init():
        return False
    if _tigerops.process_denied():
        _tigerops.log(4, "process is on the deny list; not tracing it")
        return False
    _tigerops.resource_set("process.runtime.name", sys.implementation.name)
    _tigerops.resource_set("process.runtime.version", "%d.%d.%d" % sys.version_info[:3])
    refresh_switches()
    _note_missing_bytecode()
    atexit.register(_tigerops.shutdown)
    from tigerops import _context
    _context.choose()
    from tigerops import _hooks
    _hooks.install()
    # Once logging is imported: a process that never logs never pays for it.
    _hooks.register("logging", "tigerops._logging:install")
    _started = True
    return True
