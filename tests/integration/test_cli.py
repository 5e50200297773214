"""@tigerops.trace_command: a span per run of a Flask CLI command or a
script function, exported before the short-lived process exits."""
import os
import subprocess

from agent import APPS, PYTHON, agent_env


def run(otlp, *argv):
    env = agent_env(otlp, OTEL_BSP_SCHEDULE_DELAY="60000", FLASK_APP="clitool")
    return subprocess.run([PYTHON] + list(argv), env=env, cwd=APPS, capture_output=True, text=True, timeout=60)


def test_flask_command_span_is_exported_before_exit(otlp):
    # A 60 s schedule delay: only the command's own flush can export in time.
    done = run(otlp, "-m", "flask", "nightly")
    assert done.returncode == 0 and "rebuilt" in done.stdout, done.stderr
    spans = otlp.wait_for_spans(lambda s: s["name"] == "rebuild-index", timeout=5)
    (command,) = [s for s in otlp.spans() if s["name"] == "nightly"]
    (child,) = [s for s in spans if s["name"] == "rebuild-index"]
    assert child["parentSpanId"] == command["spanId"] and command["parentSpanId"] == ""
    assert command["attributes"]["code.function"] == "nightly"
    assert command["status"].get("code", 0) != 2


def test_failing_command_records_the_exception(otlp):
    done = run(otlp, "-m", "flask", "cleanup")
    assert done.returncode != 0 and "disk full" in done.stderr
    (span,) = otlp.wait_for_spans(lambda s: s["name"] == "cleanup", timeout=5)
    assert span["status"]["code"] == 2
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "RuntimeError"
    assert "disk full during cleanup" in event["attributes"]["exception.stacktrace"]


def test_exit_zero_is_a_success(otlp):
    done = run(otlp, "-m", "flask", "quiet")
    assert done.returncode == 0, done.stderr
    (span,) = otlp.wait_for_spans(lambda s: s["name"] == "quiet", timeout=5)
    assert span["status"].get("code", 0) != 2 and not span["events"]


def test_plain_script_function(otlp):
    done = run(otlp, os.path.join(APPS, "clitool.py"), "a", "b")
    assert done.returncode == 0, done.stderr
    spans = otlp.wait_for_spans(lambda s: s["name"] == "work", timeout=5)
    (main,) = [s for s in otlp.spans() if s["name"] == "main"]
    assert [s["parentSpanId"] for s in spans if s["name"] == "work"] == [main["spanId"]]
