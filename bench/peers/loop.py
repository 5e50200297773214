"""Child of run.py: N requests to one route of app.py, called in-process
through WSGI, under whatever agent the environment set up. Prints
"RESULT <CPU us/request> <agent active>". CPU is the process's (all threads,
so exporter threads count), taken after the agent's own flush.

    python loop.py ROUTE N WARMUP"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app import app  # noqa: E402

ENVIRON = {
    "REQUEST_METHOD": "GET", "QUERY_STRING": "a=1",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "bench",
    "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": sys.stderr,
    "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}
statuses = []


def start_response(status, headers, exc_info=None):
    statuses.append(status)


def flush():
    """Each agent's own flush: the export work belongs in the figure."""
    active = []
    if "tigerops" in app.extensions:
        import tigerops
        tigerops.flush(30000)
        active.append("tigerops")
    if "opentelemetry.trace" in sys.modules:
        from opentelemetry import trace
        provider = trace.get_tracer_provider()
        if hasattr(provider, "force_flush"):
            provider.force_flush(30000)
            active.append("otel")
    if "sentry_sdk" in sys.modules:
        import sentry_sdk
        if sentry_sdk.get_client().is_active():
            sentry_sdk.flush(30)
            active.append("sentry")
    if "ddtrace" in sys.modules:
        from ddtrace.trace import tracer
        if tracer.enabled:
            tracer.flush()
            active.append("ddtrace")
    return ",".join(active) or "none"


def main():
    route, n, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    environ = dict(ENVIRON, PATH_INFO="/hello/world" if route == "hello" else "/" + route)

    def one():
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        body.close()

    for _ in range(warmup):
        one()
    flush()
    del statuses[:]
    t0 = time.process_time()
    for _ in range(n):
        one()
    active = flush()
    cpu = time.process_time() - t0
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        sys.exit("non-200 responses: %s" % bad[:3])
    print("RESULT", cpu / n * 1e6, active, flush=True)


main()
