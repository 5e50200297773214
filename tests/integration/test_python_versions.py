"""One _tigerops build (limited API, abi3) loads and traces on every CPython
3.9-3.13 under /root/.pyenv/versions; absent ones are skipped."""
import glob
import os
import subprocess

import pytest

from agent import agent_env

DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def interpreter(minor):
    found = sorted(glob.glob("/root/.pyenv/versions/3.%d.*/bin/python3" % minor))
    return found[-1] if found else None


@pytest.mark.parametrize("minor", [9, 10, 11, 12, 13])
def test_extension_loads_and_traces(otlp, minor):
    python = interpreter(minor)
    if python is None:
        pytest.skip("no CPython 3.%d under /root/.pyenv/versions" % minor)
    env = agent_env(otlp, TIGEROPS_SERVICE_NAME="py3%d" % minor)
    env["PYTHONPATH"] = env["PYTHONPATH"] + ":" + DIST_PACKAGES  # Flask from Debian, for this smoke test
    code = ("import hello, _tigerops; c = hello.app.test_client(); "
            "print(c.get('/hello/v').status_code, _tigerops.__file__)")
    r = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    status, ext = r.stdout.split()
    assert status == "200" and ext.endswith("_tigerops.abi3.so")
    spans = otlp.wait_for_spans(lambda s: s["resource"].get("service.name") == "py3%d" % minor)
    assert spans[0]["resource"]["process.runtime.version"].startswith("3.%d." % minor)
    assert spans[0]["name"] == "GET /hello/<name>"
