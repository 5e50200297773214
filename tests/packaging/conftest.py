"""Fixtures for the packaging tests: the built packages (built once, shared
by every test), clean Debian 12 roots, the OTLP receiver."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from otlp import OtlpReceiver  # noqa: E402

BUILD = os.path.join(ROOT, "build")
# tests/run-all.sh builds the packages first and names the folder here; a
# developer running pytest alone gets them built on first use.
PACKAGES = os.environ.get("TIGEROPS_PACKAGES") or os.path.join(BUILD, "packages")
CACHE = os.environ.get("TIGEROPS_PACKAGING_CACHE") or os.path.join(BUILD, "packaging-cache")


def version():
    return subprocess.run(["sh", os.path.join(ROOT, "packaging", "version.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def _built(pattern, builder):
    import glob
    found = sorted(glob.glob(os.path.join(PACKAGES, pattern)))
    if not found:
        subprocess.run(["bash", os.path.join(ROOT, "packaging", builder), PACKAGES], check=True)
        found = sorted(glob.glob(os.path.join(PACKAGES, pattern)))
    assert found, "%s built nothing matching %s" % (builder, pattern)
    return found


@pytest.fixture(scope="session")
def deb():
    return _built("tigerops_%s-*_amd64.deb" % version(), "deb/build.sh")[-1]


@pytest.fixture(scope="session")
def rpm():
    return _built("tigerops-%s-*.x86_64.rpm" % version(), "rpm/build.sh")[-1]


@pytest.fixture(scope="session")
def wheel():
    return _built("tigerops-%s-cp39-abi3-manylinux_*.whl" % version(), "wheel/build.sh")[-1]


@pytest.fixture(scope="session")
def sdist():
    return _built("tigerops-%s.tar.gz" % version(), "wheel/build.sh")[-1]


@pytest.fixture(scope="session")
def debian_tarball():
    r = subprocess.run(["bash", os.path.join(HERE, "debroot.sh"), CACHE], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def request_span(spans, path):
    """The one SERVER span of the request for path, which must have arrived."""
    found = [s for s in spans if s["kind"] == 2 and s["attributes"].get("url.path") == path]
    assert len(found) == 1, [(s["name"], s["attributes"].get("url.path")) for s in spans]
    return found[0]


@pytest.fixture
def otlp():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def scratch():
    """A folder under build/ (not /tmp: roots and venvs are large)."""
    os.makedirs(os.path.join(BUILD, "packaging-tests"), exist_ok=True)
    path = tempfile.mkdtemp(prefix="t-", dir=os.path.join(BUILD, "packaging-tests"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
