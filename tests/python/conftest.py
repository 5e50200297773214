"""In-process tests of the _tigerops extension and the tigerops package.

The installed agent's python directory (<prefix>/lib/tigerops/python: the
_tigerops.abi3.so and the tigerops package) goes on sys.path here, not in
PYTHONPATH: that directory also holds the agent's sitecustomize.py, which
would start the tracer at interpreter start-up with pytest's environment,
before this file could point the exporter at the test receiver. The prefix
is TIGEROPS_TEST_PREFIX, as for the integration tests.

One tracer per pytest process (the core starts once), exporting OTLP to the
receiver of tests/receiver, which decodes with the official schema. Tests
find their spans by unique names after a flush. Calls that crashed the
interpreter run in a child process (isolated()), so a segfault fails one
test instead of ending the run.
"""
import os
import sys
import uuid

import pytest

from inproc import PREFIX, PYDIR, OtlpReceiver

_receiver = None


def pytest_configure(config):
    global _receiver
    if not os.path.exists(os.path.join(PYDIR, "_tigerops.abi3.so")):
        raise pytest.UsageError("no agent installed under %s: build and install first, "
                                "or set TIGEROPS_TEST_PREFIX" % PREFIX)
    if "tigerops" in sys.modules or "_tigerops" in sys.modules:
        raise pytest.UsageError("the agent was loaded before the conftest (PYTHONPATH holds its "
                                "sitecustomize.py?): run without PYTHONPATH, the conftest adds %s" % PYDIR)
    sys.path.insert(0, PYDIR)
    _receiver = OtlpReceiver()
    for key in [k for k in os.environ if k.startswith(("TIGEROPS_", "OTEL_"))]:
        del os.environ[key]
    os.environ.update({
        "TIGEROPS_ENDPOINT": _receiver.endpoint,
        "TIGEROPS_SERVICE_NAME": "tigerops-pytests",
        "TIGEROPS_LOG_LEVEL": "error",
        "OTEL_BSP_MAX_QUEUE_SIZE": "65536",
    })
    from tigerops import _bootstrap
    if not _bootstrap.start():
        raise pytest.UsageError("the tracer did not start in the test process")


def pytest_unconfigure(config):
    if _receiver is not None:
        import _tigerops
        _tigerops.shutdown(2000)
        _receiver.stop()


@pytest.fixture
def receiver():
    return _receiver


@pytest.fixture
def unique():
    """A name no other test's span carries."""
    return "t-" + uuid.uuid4().hex[:12]
