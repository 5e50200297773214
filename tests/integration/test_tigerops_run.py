"""tigerops-run: preloads the agent and execs the command in place."""
import os
import signal
import subprocess

from agent import APPS, PYTHON, RUN, agent_env, clean_env, free_port, Server, server_spans
from util import wait_until


def test_version_and_missing_command():
    r = subprocess.run([RUN, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("tigerops-run ")
    r = subprocess.run([RUN], capture_output=True, text=True)
    assert r.returncode == 2 and "no command" in r.stderr
    r = subprocess.run([RUN, "no-such-command-xyz"], capture_output=True, text=True)
    assert r.returncode == 127 and "no-such-command-xyz" in r.stderr
    r = subprocess.run([RUN, "--bogus", "true"], capture_output=True, text=True)
    assert r.returncode == 2 and "--bogus" in r.stderr


def test_execs_in_place_same_pid_and_preloads():
    code = "import os; print(os.getpid()); print(os.environ['LD_PRELOAD'])"
    p = subprocess.Popen([RUN, PYTHON, "-c", code], stdout=subprocess.PIPE, text=True, env=clean_env())
    out, _ = p.communicate(timeout=30)
    pid, preload = out.split()[:2]
    assert int(pid) == p.pid, "tigerops-run must exec, not fork"
    assert preload.endswith("/libtigerops.so") and os.path.exists(preload)


def test_gunicorn_under_tigerops_run_with_service_flag(otlp):
    port = free_port()
    env = agent_env(otlp, preload=False)
    argv = [RUN, "--service", "run-svc", PYTHON, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port,
            "hello:app"]
    with Server(argv, env, port) as server:
        server.get("/hello/run")
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /hello/<name>")
        # Signals reach the app directly: gunicorn's master is the process we started.
        assert "Starting gunicorn" in server.output()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
    assert server_spans(spans)[0]["resource"]["service.name"] == "run-svc"


def test_console_exporter_prints_the_trace_tree():
    port = free_port()
    env = agent_env(None, preload=False)
    env["OTEL_BSP_SCHEDULE_DELAY"] = "50"
    env["FLASK_APP"] = "manual"  # not --app: the option came with Flask 2.2
    argv = [RUN, "--exporter", "console", PYTHON, "-m", "flask", "run", "--host",
            "127.0.0.1", "--port", str(port), "--no-reload"]
    with Server(argv, env, port) as server:
        status, _, _ = server.get("/work")
        assert status == 200
        # The client has its answer before the view's thread ends the span:
        # stopping now could cut the trace in two at the exit flush.
        wait_until(lambda: "  GET /work  SERVER  " in server.output(), "the /work trace printed")
        server.stop(signal.SIGINT)
        out = server.output()
    lines = out.splitlines()
    start = max(i for i, l in enumerate(lines) if l.startswith("tigerops trace ") and "GET /work" in lines[i + 1])
    tree = lines[start:start + 5]
    assert tree[1].startswith("  GET /work  SERVER  ") and tree[1].endswith("ms  [200]"), tree
    assert tree[2].startswith("    outer-block  INTERNAL  "), tree
    assert tree[3].startswith("      compute  INTERNAL  "), tree
    assert tree[4].startswith("    failing-block  INTERNAL  ") and "ERROR: ValueError: handled inside" in tree[4], tree
