"""The settings table end to end: every source (ini file, environment, a
.env file loaded by the app, app.config) reaching the C core and the Python
glue, and bad configuration never hanging or poisoning the export."""
import os
import subprocess
import time

import pytest

from agent import APPS, LIB, PREFIX, PYTHON, agent_env, clean_env, gunicorn, server_spans

HELLO = ("import hello; c = hello.app.test_client(); c.get('/hello/x'); "
         "import tigerops; tigerops.flush(5000)")


def run(env, code=HELLO, timeout=60):
    r = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, cwd=APPS)
    assert r.returncode == 0, r.stderr
    return r


def test_ini_file_takes_the_python_side_settings(otlp, tmp_path):
    ini = tmp_path / "tigerops.ini"
    ini.write_text("[tigerops]\nservice_name = from-ini\nexcluded_urls = /internal/\n"
                   "denied_headers = x-internal-token\ntrace_cache = false\n"
                   "[otel]\ninstrumentation_http_capture_headers_server_request = x-tenant,x-internal-token\n")
    env = agent_env(otlp, TIGEROPS_CONFIG=str(ini))
    with gunicorn("settings_app:app", env, workers=1) as server:
        assert server.get("/internal/ping")[0] == 200
        assert server.get("/cached", headers={"X-Tenant": "acme", "X-Internal-Token": "tok-SECRET"})[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /cached")
        output = server.output()
    assert "unknown setting" not in output, output
    names = {s["name"] for s in spans}
    assert not any("internal" in n for n in names), "excluded_urls from the ini file: %s" % names
    assert not any(n.startswith("cache.") for n in names), "trace_cache = false from the ini file: %s" % names
    request = server_spans(spans, "GET /cached")[0]
    assert request["attributes"]["http.request.header.x-tenant"] == ["acme"]
    assert "http.request.header.x-internal-token" not in request["attributes"], "denied_headers from the ini file"
    assert request["resource"]["service.name"] == "from-ini"


def test_dotenv_file_loaded_by_the_app_takes_effect(otlp, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("TIGEROPS_SERVICE_NAME=from-dotenv\nTIGEROPS_API_KEY=sk-dotenv-123\n"
                      "TIGEROPS_ENVIRONMENT=staging\nOTEL_BSP_MAX_QUEUE_SIZE=64\n")
    env = agent_env(otlp, DOTENV_PATH=str(dotenv))
    with gunicorn("settings_app:app", env, workers=1) as server:
        assert server.get("/health")[0] == 200
        spans = otlp.wait_for_spans()
        output = server.output()
    resource = spans[0]["resource"]
    assert resource["service.name"] == "from-dotenv"
    assert resource["deployment.environment.name"] == "staging"
    assert otlp.requests()[0]["headers"]["authorization"] == "Bearer sk-dotenv-123"
    assert "OTEL_BSP_MAX_QUEUE_SIZE changed after the agent started" in output, output
    assert "sk-dotenv-123" not in output


@pytest.mark.parametrize("source", ["app.config", "environment"])
def test_trace_cache_switch(otlp, source):
    extra = ({"APP_TIGEROPS_TRACE_CACHE": "false"} if source == "app.config"
             else {"TIGEROPS_TRACE_CACHE": "false"})
    with gunicorn("settings_app:app", agent_env(otlp, **extra), workers=1) as server:
        assert server.get("/cached")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /cached")
        output = server.output()
    assert "unknown setting" not in output, output
    assert [s["name"] for s in spans if s["name"].startswith("cache.")] == []


def test_trace_cache_on_by_default(otlp):
    with gunicorn("settings_app:app", agent_env(otlp), workers=1) as server:
        assert server.get("/cached")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /cached", count=1)
        spans = otlp.wait_for_spans(lambda s: s["name"].startswith("cache."), count=2)
    assert {"cache.get", "cache.set"} <= {s["name"] for s in spans}


def test_app_config_trace_celery_false_stops_celery_spans(otlp, redis_server):
    env = agent_env(otlp, REDIS_URL=redis_server.url, APP_TIGEROPS_TRACE_CELERY="false")
    with gunicorn("settings_app:app", env, workers=1) as server:
        assert server.get("/publish")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /publish")
        output = server.output()
    assert "unknown setting" not in output, output
    assert [s["name"] for s in spans if s["kind"] == 4] == [], "no PRODUCER span"
    assert server_spans(spans, "GET /publish")


def test_app_config_trace_celery_default_traces_publish(otlp, redis_server):
    env = agent_env(otlp, REDIS_URL=redis_server.url)
    with gunicorn("settings_app:app", env, workers=1) as server:
        assert server.get("/publish")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["kind"] == 4)
    assert [s["name"] for s in spans if s["kind"] == 4] == ["publish settings_app.noop"]


def test_otel_sdk_disabled_set_after_start_is_honoured_at_init_app(otlp):
    code = ("import os; os.environ['OTEL_SDK_DISABLED'] = 'true'\n" + HELLO +
            "\nprint('instrumented' if 'tigerops' in hello.app.extensions else 'plain')")
    r = run(agent_env(otlp), code)
    assert r.stdout.strip().endswith("plain"), r.stdout + r.stderr
    run(agent_env(otlp, TIGEROPS_SERVICE_NAME="marker"))  # a process that does export
    spans = otlp.wait_for_spans()
    assert {s["resource"]["service.name"] for s in spans} == {"marker"}


def _no_preload_env(otlp, tmp_path):
    """The package importable as after a pip install: no sitecustomize, no
    LD_PRELOAD; the app itself calls TigerOps(app)."""
    site = tmp_path / "site"
    site.mkdir()
    pydir = os.path.join(PREFIX, "lib", "tigerops", "python")
    for name in ("tigerops", "_tigerops.abi3.so"):
        os.symlink(os.path.join(pydir, name), str(site / name))
    env = clean_env(TIGEROPS_ENDPOINT=otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY="50",
                    PYTHONPATH=APPS + os.pathsep + str(site), LD_LIBRARY_PATH=os.path.dirname(LIB))
    return env


def test_code_first_flask_sqlalchemy_without_preload_exports_sql_spans(otlp, tmp_path):
    env = _no_preload_env(otlp, tmp_path)
    with gunicorn("codefirst:app", env, workers=1) as server:
        status, body, _ = server.get("/items")
        assert status == 200, body
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /items")
        spans = otlp.wait_for_spans(lambda s: s["name"] in ("INSERT item", "SELECT item"), count=2)
    request = [s for s in otlp.spans() if s["name"] == "GET /items"][0]
    sql = [s for s in spans if s["name"] in ("INSERT item", "SELECT item")]
    assert {s["traceId"] for s in sql} == {request["traceId"]}
    assert request["resource"]["service.name"] == "code-first", "app.config applied at init_app"
    assert "LD_PRELOAD" not in env


def test_one_startup_line_and_did_you_mean(otlp):
    env = agent_env(otlp, TIGEROPS_LOG_LEVEL="info", TIGEROPS_SERVICE_NAME="svc", TIGEROPS_SAMPLE_RATE="0.5",
                    TIGEROPS_SERVCE_VERSION="1.0", OTEL_EXPORTER_OTLP_PROTOCOL="http/thrift",
                    OTEL_BLRP_SCHEDULE_DELAY="100")
    with gunicorn("hello:app", env, workers=2) as server:
        for _ in range(4):
            assert server.get("/health")[0] == 200
        server.stop()
        output = server.output()
    lines = [line for line in output.splitlines() if ": info: tracer " in line]
    assert len(lines) == 1, output
    expected = ("service=svc endpoint=%s/v1/traces protocol=http/protobuf sampler=parentbased_traceidratio(0.5) "
                "exporter=otlp" % otlp.endpoint)
    assert expected in lines[0], lines[0]
    assert output.count("TIGEROPS_SERVCE_VERSION ignored; did you mean TIGEROPS_SERVICE_VERSION?") == 1, output
    assert output.count("invalid value for OTEL_EXPORTER_OTLP_PROTOCOL") == 1, output
    # A standard name we implement differently is told once (gunicorn's master,
    # whose workers inherit the checked environment), never "did you mean".
    told = "OTEL_BLRP_SCHEDULE_DELAY is not implemented and is ignored: log records leave on the spans' schedule"
    assert output.count(told) == 1, output
    assert "BLRP_SCHEDULE_DELAY ignored; did you mean" not in output


def test_invalid_utf8_in_resource_settings_is_repaired(otlp):
    # surrogateescape: the child's environment gets the raw bytes 0xFF / 0xC3
    env = agent_env(otlp, TIGEROPS_SERVICE_NAME="svc-\udcff", TIGEROPS_ENVIRONMENT="pr\udcc3od",
                    OTEL_RESOURCE_ATTRIBUTES="team=a%FFb,ok=caf%C3%A9")
    run(env)
    spans = otlp.wait_for_spans()
    resource = spans[0]["resource"]
    assert resource["service.name"] == "svc-?"
    assert resource["deployment.environment.name"] == "pr?od"
    assert resource["team"] == "a?b"
    assert resource["ok"] == "caf\u00e9"
    for raw in otlp.bodies():
        assert b"svc-\xff" not in raw and b"a\xffb" not in raw


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "directory"])
def test_a_config_path_that_is_not_a_regular_file_never_hangs_the_start(otlp, tmp_path, target):
    if target == "fifo":
        path = str(tmp_path / "tigerops.ini")
        os.mkfifo(path)
    elif target == "directory":
        path = str(tmp_path)
    else:
        path = target
    t0 = time.monotonic()
    r = run(agent_env(otlp, TIGEROPS_CONFIG=path, TIGEROPS_SERVICE_NAME="still-traced"), timeout=30)
    assert time.monotonic() - t0 < 20
    assert "is not a regular file" in r.stderr, r.stderr
    assert otlp.wait_for_spans()[0]["resource"]["service.name"] == "still-traced"
