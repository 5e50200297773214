"""Starting real processes under the agent, for the integration tests."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from util import free_port  # noqa: F401 (re-exported: servers.py and tests import it from here)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(HERE, "apps")
# The interpreter that runs pytest also runs the apps: /usr/bin/python3 for
# Debian's stack, a matrix venv's python for the others (tests/matrix).
PYTHON = os.environ.get("TIGEROPS_TEST_PYTHON") or sys.executable
# Whether PYTHON is Debian's interpreter with Debian's packages (not a venv
# of tests/matrix): what uWSGI's python3 plugin and /usr/bin paths run.
DEBIAN_PYTHON = bool(os.path.realpath(PYTHON) == os.path.realpath("/usr/bin/python3") and (
    os.environ.get("TIGEROPS_TEST_PYTHON") or sys.prefix == sys.base_prefix))


def _default_prefix():
    for candidate in (os.path.join(ROOT, "build", "ci", "install"), os.path.join(ROOT, "_install")):
        if os.path.exists(os.path.join(candidate, "lib", "libtigerops.so")):
            return candidate
    return os.path.join(ROOT, "build", "ci", "install")


PREFIX = os.environ.get("TIGEROPS_TEST_PREFIX") or _default_prefix()
LIB = os.path.join(PREFIX, "lib", "libtigerops.so")
RUN = os.path.join(PREFIX, "bin", "tigerops-run")


def clean_env(**extra):
    """The test runner's environment without any agent settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TIGEROPS_", "OTEL_")) and k not in ("LD_PRELOAD", "PYTHONPATH")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def agent_env(otlp=None, preload=True, **extra):
    """Environment for a process under the agent, exporting to otlp."""
    env = clean_env()
    if preload:
        env["LD_PRELOAD"] = LIB
    if otlp is not None:
        env["TIGEROPS_ENDPOINT"] = otlp.endpoint
    env.setdefault("OTEL_BSP_SCHEDULE_DELAY", "50")
    env["PYTHONPATH"] = APPS
    env.update({k: str(v) for k, v in extra.items()})
    return env


def http_get(url, headers=None, timeout=10, method="GET"):
    """(status, body, headers) for a GET (or another bodiless method: POST
    sends an empty body); HTTP errors are answers too."""
    req = urllib.request.Request(url, headers=headers or {}, method=method,
                                 data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), dict(e.headers)


class Server:
    """A server process on 127.0.0.1:port; output goes to a file that
    failure messages show."""

    def __init__(self, argv, env, port, cwd=APPS, ready_path="/health"):
        self.port = port
        self.base = "http://127.0.0.1:%d" % port
        self.log = tempfile.NamedTemporaryFile(prefix="tigerops-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.ready_path = ready_path
        self._wait_ready()

    def _wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s:\n%s" % (self.proc.returncode, self.output()))
            try:
                http_get(self.base + self.ready_path, timeout=2)
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server not ready after %ss:\n%s" % (timeout, self.output()))

    def get(self, path, headers=None, timeout=10, method="GET"):
        return http_get(self.base + path, headers=headers, timeout=timeout, method=method)

    def output(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        os.unlink(self.log.name)


def gunicorn(app, env, workers=2, extra=()):
    port = free_port()
    argv = [PYTHON, "-m", "gunicorn", "-w", str(workers), "-b", "127.0.0.1:%d" % port,
            "--graceful-timeout", "10", *extra, app]
    return Server(argv, env, port)


def uwsgi(module, env, processes=2, extra=()):
    if not DEBIAN_PYTHON:
        import pytest
        pytest.skip("uWSGI's python3 plugin embeds Debian's libpython3.11 and its dist-packages, "
                    "not this venv's interpreter and stack (%s)" % PYTHON)
    port = free_port()
    argv = ["uwsgi", "--plugin", "python3", "--master", "--processes", str(processes),
            "--http-socket", "127.0.0.1:%d" % port, "--module", module, "--pythonpath", APPS,
            "--die-on-term", "--need-app", "--disable-logging", *extra]
    return Server(argv, env, port)


def flask_run(app_module, env):
    port = free_port()
    # FLASK_APP, not --app: the option came with Flask 2.2.
    argv = [PYTHON, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload"]
    return Server(argv, dict(env, FLASK_APP=app_module), port)


def server_spans(spans, name=None):
    return [s for s in spans if s["kind"] == 2 and (name is None or s["name"] == name)]
