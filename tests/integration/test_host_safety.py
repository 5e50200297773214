"""The agent never breaks or slows its host: non-Python processes are left
alone, a dead or hanging collector costs requests nothing, spans are flushed
on a worker's graceful exit, and the kill switch turns everything off."""
import os
import socket
import subprocess
import threading
import time

from agent import APPS, LIB, PYTHON, agent_env, clean_env, gunicorn, server_spans


def run(argv, env, **kw):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **kw)


def test_shell_and_true_are_untouched():
    env = clean_env(LD_PRELOAD=LIB, TIGEROPS_LOG_LEVEL="debug")
    for argv in (["sh", "-c", "true"], ["true"]):
        r = run(argv, env)
        assert r.returncode == 0
        assert r.stdout == "" and r.stderr == ""
    # A non-Python process gets no thread of ours: it stays single-threaded.
    r = run(["sh", "-c", "grep '^Threads:' /proc/self/status"], env)
    assert r.stdout.split() == ["Threads:", "1"]


def test_curl_output_is_identical_with_and_without_the_agent(otlp):
    argv = ["curl", "-s", "-o", "-", "-w", "%{http_code}", otlp.endpoint + "/health"]
    bare = run(argv, clean_env())
    preloaded = run(argv, clean_env(LD_PRELOAD=LIB, TIGEROPS_LOG_LEVEL="debug"))
    assert bare.returncode == preloaded.returncode == 0
    assert preloaded.stdout == bare.stdout and preloaded.stderr == bare.stderr == ""
    assert otlp.requests() == [], "curl must not export anything"


def test_pythonpath_is_prepended_exactly_once():
    env = clean_env(LD_PRELOAD=LIB, PYTHONPATH="/opt/user-path")
    r = run(["sh", "-c", "sh -c 'echo $PYTHONPATH'"], env)
    entries = r.stdout.strip().split(":")
    assert entries[-1] == "/opt/user-path"
    assert len(entries) == 2 and entries[0].endswith("/tigerops/python"), entries


def test_kill_switch_disables_everything(otlp):
    for switch in ({"TIGEROPS_ENABLED": "false"}, {"OTEL_SDK_DISABLED": "true"}):
        env = agent_env(otlp, **switch)
        r = run(["sh", "-c", "echo $PYTHONPATH"], env)
        assert "tigerops" not in r.stdout
        code = "import hello; c = hello.app.test_client(); print(c.get('/hello/x').status_code, 'tigerops' in hello.app.extensions)"
        r = run([PYTHON, "-c", code], env)
        assert r.stdout.split() == ["200", "False"], r.stderr
    assert otlp.requests() == []


def test_users_own_sitecustomize_still_runs(otlp, tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE_RAN'] = 'yes'\n")
    env = agent_env(otlp)
    env["PYTHONPATH"] = "%s:%s" % (tmp_path, APPS)
    code = ("import os, hello; c = hello.app.test_client(); c.get('/hello/site'); "
            "print(os.environ.get('USER_SITECUSTOMIZE_RAN'), 'tigerops' in hello.app.extensions)")
    r = run([PYTHON, "-c", code], env)
    assert r.stdout.split() == ["yes", "True"], r.stderr
    otlp.wait_for_spans(lambda s: s["attributes"].get("url.path") == "/hello/site")


def test_denylisted_tools_are_not_traced(otlp, tmp_path):
    script = tmp_path / "maintenance.py"
    script.write_text("import hello\nc = hello.app.test_client()\nc.get('/hello/deny')\n"
                      "print('tigerops' in hello.app.extensions)\n")
    env = agent_env(otlp, TIGEROPS_DENYLIST="maintenance")
    r = run([PYTHON, str(script)], env)
    assert r.stdout.strip() == "False", r.stderr
    r = run([PYTHON, "-m", "pip", "--version"], agent_env(otlp, TIGEROPS_LOG_LEVEL="debug"))
    assert "deny list" in r.stderr
    assert otlp.requests() == []


class BlackHole:
    """Accepts connections and never answers: a hung collector."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                return

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def request_times(server, n):
    times = []
    for i in range(n):
        t0 = time.monotonic()
        status, _, _ = server.get("/hello/t%d" % i)
        assert status == 200
        times.append(time.monotonic() - t0)
    return sorted(times)


def test_unreachable_or_hanging_collector_does_not_slow_requests():
    hole = BlackHole()
    dead_port = hole.port + 1 if hole.port < 65000 else hole.port - 1
    try:
        for endpoint in ("http://127.0.0.1:%d" % hole.port, "http://127.0.0.1:%d" % dead_port):
            # One span per batch and a queue of 4: the exporter is always stuck
            # on the collector, the queue is always full.
            env = agent_env(None, TIGEROPS_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="30000",
                            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="1", OTEL_BSP_MAX_QUEUE_SIZE="4",
                            TIGEROPS_SHUTDOWN_TIMEOUT_MS="500")
            with gunicorn("hello:app", env, workers=1) as server:
                times = request_times(server, 200)
                t0 = time.monotonic()
                server.stop()
                assert time.monotonic() - t0 < 8, "shutdown flush must be bounded"
                assert "Traceback" not in server.output()
            assert times[len(times) // 2] < 0.05, "median %.3fs" % times[len(times) // 2]
            assert times[-1] < 0.5, "slowest %.3fs" % times[-1]
    finally:
        hole.close()


def test_spans_are_flushed_when_a_worker_exits_gracefully(otlp):
    # A 60 s schedule delay: only the exit flush can deliver these spans.
    env = agent_env(otlp, OTEL_BSP_SCHEDULE_DELAY="60000")
    with gunicorn("hello:app", env, workers=2) as server:
        for i in range(5):
            server.get("/hello/flush%d" % i)
        assert otlp.spans() == []
        server.stop()
    spans = otlp.wait_for_spans(lambda s: s["attributes"].get("url.path", "").startswith("/hello/flush"), count=5,
                                timeout=10)
    assert len(server_spans(spans, "GET /hello/<name>")) == 5


def test_agent_start_up_imports_stay_small():
    # Every Python process pays for what the agent imports at start: only
    # the core and the import hook, nothing for libraries the app never uses.
    code = ("import sys; heavy = ['inspect', 'traceback', 'threading', 'weakref', 'tigerops._flask', 'flask'];"
            "print(' '.join(m for m in heavy if m in sys.modules) or 'none', '_tigerops' in sys.modules)")
    r = run([PYTHON, "-c", code], clean_env(LD_PRELOAD=LIB))
    assert r.stdout.split() == ["none", "True"], r.stdout + r.stderr


FORK_WHILE_MASKING = r"""
import os, sys, time, tigerops, _tigerops
for i in range(200):  # each value costs the slow pattern ~0.1 s on the exporter
    with tigerops.span("a" * 8000):
        pass
_tigerops.flush(1)  # wakes the exporter: it starts masking the batch (~20 s)
time.sleep(0.5)     # not a synchronisation: only makes the fork land mid-batch
pid = os.fork()
if pid == 0:
    with tigerops.span("from-the-child"):
        pass
    os._exit(0 if _tigerops.flush(5000) else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
os._exit(0)
"""


def test_a_child_forked_while_the_exporter_masks_still_exports(otlp):
    # The parent's exporter is inside glibc's regexec (which holds a lock in
    # the compiled regex) at fork: the child must not inherit it held.
    env = agent_env(otlp, TIGEROPS_PII_PATTERNS=r"[a-z]+@corp\.example")
    started = time.monotonic()
    r = run([PYTHON, "-c", FORK_WHILE_MASKING], env)
    assert r.returncode == 0 and "child 0" in r.stdout, r.stdout + r.stderr
    assert otlp.wait_for_spans(lambda s: s["name"] == "from-the-child", timeout=5)
    assert time.monotonic() - started < 15, "a fork never waits for the exporter's batch"
