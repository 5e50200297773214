"""The container entrypoint contract, without a container engine (none runs
on these machines, and no image registry is reachable for podman/buildah):
in a clean Debian 12 root with the .deb installed, the Dockerfile's own
ENTRYPOINT + CMD run as PID 1 of a new PID namespace, the way a container
runtime starts them. SIGTERM to PID 1 (docker stop) must stop gunicorn
gracefully, deliver the last spans, and give the app's exit code."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from agent import Server, free_port
from chroot import DebianRoot
from conftest import BUILD, ROOT, request_span

CONTAINER = os.path.join(ROOT, "packaging", "container")


def dockerfile():
    with open(os.path.join(CONTAINER, "Dockerfile")) as f:
        return f.read()


def instruction(name):
    found = re.findall(r"^%s (.*)$" % name, dockerfile(), re.M)
    assert len(found) == 1, (name, found)
    return json.loads(found[0])


def test_dockerfile_is_multi_stage_with_the_agent_as_entrypoint():
    text = dockerfile()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and stages[1].startswith("python:"), stages
    assert "packaging/deb/build.sh" in text and "apt-get install -y --no-install-recommends /tmp/tigerops_" in text
    assert instruction("ENTRYPOINT") == ["tigerops-run"]
    assert instruction("CMD")[0] == "gunicorn"


@pytest.fixture(scope="module")
def image_root(deb, debian_tarball):
    """The runtime stage, as far as it can be made without docker: the .deb
    installed by apt, the example app and its WORKDIR."""
    path = os.path.join(BUILD, "packaging-tests", "debian-container")
    shutil.rmtree(path, ignore_errors=True)
    root = DebianRoot(debian_tarball, path)
    shutil.copy(deb, root.file("/tmp/tigerops.deb"))
    root.run("apt-get", "update", "-qq")
    root.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "/tmp/tigerops.deb")
    os.makedirs(root.file("/srv/app"))
    shutil.copy(os.path.join(CONTAINER, "app.py"), root.file("/srv/app/app.py"))
    yield root
    shutil.rmtree(path, ignore_errors=True)


def host_pid_of_namespace_init(unshare_pid, timeout=10):
    """unshare --fork's child is PID 1 inside the namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        stat = f.read()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == unshare_pid:
                    return int(entry)
        time.sleep(0.02)
    raise AssertionError("no child of unshare %d" % unshare_pid)


def test_entrypoint_as_pid_1_sigterm_flushes_and_exits_with_the_apps_code(image_root, otlp):
    port = free_port()
    argv = image_root.argv(*instruction("ENTRYPOINT"), *instruction("CMD"), pid_namespace=True)
    # The image's ENV, but the bind address; a long export delay, so the
    # spans can only arrive through the flush at shutdown.
    env = image_root.env(TIGEROPS_SERVICE_NAME="container", OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
                         OTEL_BSP_SCHEDULE_DELAY=600000,
                         GUNICORN_CMD_ARGS="--bind 127.0.0.1:%d --workers 2 --graceful-timeout 20" % port)
    with Server(argv, env, port) as server:
        status, body, _ = server.get("/ppid")
        assert (status, body) == (200, "1"), "gunicorn's master must be PID 1 (tigerops-run execs)"
        assert server.get("/hello/last")[0] == 200
        assert otlp.spans() == [], "exported before shutdown: the flush would not be tested"
        os.kill(host_pid_of_namespace_init(server.proc.pid), signal.SIGTERM)  # docker stop
        assert server.proc.wait(30) == 0, server.output()
        out = server.output()
    assert "Handling signal: term" in out and "Shutting down: Master" in out, out
    spans = otlp.wait_for_spans(lambda s: s["attributes"].get("url.path") == "/hello/last", timeout=5)
    assert request_span(spans, "/hello/last")["resource"]["service.name"] == "container"


def test_entrypoint_passes_the_apps_exit_code(image_root):
    for code in (0, 3):
        r = subprocess.run(image_root.argv("tigerops-run", "python3", "-c", "import sys; sys.exit(%d)" % code,
                                           pid_namespace=True), env=image_root.env(), capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == code, r.stderr
