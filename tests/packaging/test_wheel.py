"""The pip channel: the manylinux wheel (and the sdist) installed with pip
into fresh venvs on the oldest and newest CPython we support, then used
both ways: tigerops-run gunicorn, and TigerOps(app) with no preload."""
import glob
import os
import subprocess
import zipfile

import pytest

from agent import Server, free_port
from conftest import BUILD, HERE, request_span, version

REQUIREMENTS = os.path.join(HERE, "requirements-wheel.txt")
APPS = os.path.join(HERE, "apps")


def pyenv(minor):
    found = sorted(glob.glob("/root/.pyenv/versions/3.%d.*/bin/python3" % minor))
    if not found:
        pytest.skip("no CPython 3.%d under /root/.pyenv/versions" % minor)
    return found[-1]


def venv_env(venv, **extra):
    env = {"PATH": "%s/bin:/usr/bin:/bin" % venv, "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root"),
           "VIRTUAL_ENV": venv}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def make_venv(python, path, *install):
    subprocess.run([python, "-m", "venv", path], check=True)
    r = subprocess.run([path + "/bin/pip", "install", "-q", "--disable-pip-version-check", *install,
                        "-r", REQUIREMENTS], capture_output=True, text=True, env=venv_env(path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return path


@pytest.fixture(scope="module", params=[9, 13], ids=["cp39", "cp313"])
def venv(request, wheel, tmp_path_factory):
    path = os.path.join(BUILD, "packaging-tests", "venv-wheel-3.%d" % request.param)
    subprocess.run(["rm", "-rf", path], check=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    yield make_venv(pyenv(request.param), path, wheel)
    subprocess.run(["rm", "-rf", path], check=True)


def test_wheel_is_one_cp39_abi3_manylinux_wheel_auditwheel_accepts(wheel):
    name = os.path.basename(wheel)
    assert name.startswith("tigerops-%s-cp39-abi3-manylinux_" % version()) and name.endswith("_x86_64.whl")
    auditwheel = os.path.join(BUILD, "wheel-tools", "bin", "auditwheel")
    r = subprocess.run([auditwheel, "show", wheel], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'is consistent with\nthe following platform tag: "manylinux_' in r.stdout, r.stdout


def test_wheel_layout_bundles_libraries_but_not_libcurl(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for p in ("tigerops/__init__.py", "tigerops/contrib/flask.py", "_tigerops.abi3.so", "_tigerops_run.py",
              "tigerops/_lib/libtigerops.so", "tigerops/_lib/libtigerops-core.so",
              "tigerops/_lib/bin/tigerops-run",
              "tigerops/_lib/tigerops/python/sitecustomize.py",
              "tigerops/_lib/tigerops/python/_tigerops.abi3.so",
              "tigerops-%s.dist-info/entry_points.txt" % version()):
        assert p in names, p
    bundled = [n for n in names if n.startswith("tigerops.libs/")]
    assert any("libinih" in n for n in bundled), bundled
    # OTLP is written by our own encoder: protobuf-c is a test-only dependency.
    assert not any("protobuf" in n for n in bundled), bundled
    # libcurl is dlopen'ed from the system (auditwheel cannot see it), as
    # the README says: a wheel must not carry its own TLS stack.
    assert not [n for n in names if "curl" in n]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".la")]


def test_version_everywhere(venv):
    env = venv_env(venv)
    out = subprocess.run([venv + "/bin/tigerops-run", "--version"], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "tigerops-run " + version()
    out = subprocess.run([venv + "/bin/python", "-c", "import tigerops; print(tigerops.__version__)"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == version()


def test_tigerops_run_gunicorn_in_the_venv(venv, otlp):
    port = free_port()
    env = venv_env(venv, TIGEROPS_ENDPOINT=otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY=50,
                   TIGEROPS_SERVICE_NAME="wheel-run")
    argv = [venv + "/bin/tigerops-run", "gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port, "app:app"]
    with Server(argv, env, port, cwd=APPS) as server:
        assert server.get("/hello/wheel")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["attributes"].get("url.path") == "/hello/wheel")
    span = request_span(spans, "/hello/wheel")
    assert span["name"] == "GET /hello/<name>"
    assert span["resource"]["service.name"] == "wheel-run"
    assert span["resource"]["telemetry.sdk.version"] == version()


def test_tigerops_run_preload_serves_any_python_not_only_the_venvs(venv):
    # The library's Python side is self-contained beside it: a Python
    # without the package installed (here Debian's) still gets the agent.
    code = "import os, tigerops; print(os.environ['LD_PRELOAD']); print(tigerops.__file__)"
    r = subprocess.run([venv + "/bin/tigerops-run", "/usr/bin/python3", "-c", code], env=venv_env(venv),
                       capture_output=True, text=True, check=True)
    preload, package = r.stdout.split()
    site = glob.glob(venv + "/lib/python3.*/site-packages")[0]
    assert preload == site + "/tigerops/_lib/libtigerops.so"
    assert package == site + "/tigerops/_lib/tigerops/python/tigerops/__init__.py"
    assert "tigerops" not in r.stderr, r.stderr


def code_first(venv, otlp, path):
    port = free_port()
    env = venv_env(venv, PORT=port, TIGEROPS_ENDPOINT=otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY=50,
                   TIGEROPS_SERVICE_NAME="code-first")
    assert "LD_PRELOAD" not in env and "PYTHONPATH" not in env
    with Server([venv + "/bin/python", "app.py", "--code-first"], env, port, cwd=APPS) as server:
        assert server.get(path)[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["attributes"].get("url.path") == path)
    span = request_span(spans, path)
    assert span["name"] == "GET /hello/<name>" and span["resource"]["service.name"] == "code-first"


def test_code_first_without_preload(venv, otlp):
    code_first(venv, otlp, "/hello/code-first")


def test_sdist_builds_and_installs_with_pip(sdist, scratch, otlp):
    # pip builds the wheel from the sdist (our backend runs configure and
    # make: a C compiler and the -dev packages of the README are needed).
    venv = make_venv(pyenv(13), os.path.join(scratch, "venv"), sdist)
    code_first(venv, otlp, "/hello/sdist")
