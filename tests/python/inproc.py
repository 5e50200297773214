"""Helpers for the in-process tests (see conftest.py)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from agent import PREFIX  # noqa: E402,F401  (TIGEROPS_TEST_PREFIX, as the integration tests use)
from otlp import OtlpReceiver, wire_spans  # noqa: E402,F401

PYDIR = os.path.join(PREFIX, "lib", "tigerops", "python")
# The interpreter running pytest (a tests/matrix venv's too) runs the isolated children.
PYTHON = os.environ.get("TIGEROPS_TEST_PYTHON") or sys.executable


def exported(receiver, name, count=1, timeout=20):
    """The spans named name once count of them arrived (after a flush)."""
    import _tigerops
    assert _tigerops.flush(5000), "flush timed out"
    spans = receiver.wait_for_spans(lambda s: s["name"] == name, count=count, timeout=timeout)
    return [s for s in spans if s["name"] == name]


def exported_one(receiver, name):
    found = exported(receiver, name)
    assert len(found) == 1, found
    return found[0]


def wire_span(receiver, name):
    """The span named name as its raw bytes decode, every string checked as
    strict UTF-8 (otlp.wire_spans): exact int64 and NaN/inf values."""
    exported(receiver, name)
    found = [s for s in wire_spans(receiver) if s["name"] == name]
    assert len(found) == 1, found
    return found[0]


def isolated(code, timeout=60, python=PYTHON, preload=True, **env):
    """Runs code in a fresh interpreter (exporter none), returning
    (returncode, stdout, stderr); a crash shows as a negative return code
    (the signal) instead of ending pytest. preload: the agent's directory on
    PYTHONPATH, so its sitecustomize starts the agent and its import hooks
    as in production; otherwise only importable (nothing instrumented
    before the code asks)."""
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("TIGEROPS_", "OTEL_", "PYTHON"))}
    child_env.update({"TIGEROPS_EXPORTER": "none", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONFAULTHANDLER": "1"})
    if preload:
        child_env["PYTHONPATH"] = PYDIR
    else:
        code = "import sys\nsys.path.insert(0, %r)\n" % PYDIR + code
    child_env.update(env)
    proc = subprocess.run([python, "-c", code], env=child_env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean_exit(result, what):
    rc, out, err = result
    assert rc == 0, "%s: exit status %d%s\nstdout:\n%s\nstderr:\n%s" % (
        what, rc, " (killed by signal %d)" % -rc if rc < 0 else "", out[-3000:], err[-3000:])
    return out
