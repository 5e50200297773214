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
    atexit.register(_tigerops.shutdown)
    from tigerops import _context
    _context.choose()
    from tigerops import _hooks
    _hooks.install()
    # Once logging is imported: a process that never logs never pays for it.
    _hooks.register("logging", "tigerops._logging:install")
    _started = True
    return True
