"""Bind values never leave the process inside exception texts. A Flask +
Flask-SQLAlchemy app under gunicorn with the agent preloaded, on SQLite
and on a real PostgreSQL, fails a UNIQUE constraint, an invalid input, a
statement with a literal and a caught violation, all with planted values;
a real Celery worker (redis broker) retries a task on a UNIQUE violation
that carries its argument, then fails. The spans must still say what went
wrong (exception type, message, stack), and no planted value may appear in
any exported body or in the agent's debug log."""
import re

import pytest
from celery import Celery

from agent import agent_env, gunicorn, server_spans
from test_celery import Worker, wait_all

# The values tests/integration/apps/echoes.py plants.
APP_SECRETS = ["sk_live_SECRET123", "user-name-secret-bob", "sk_live_NOTANID456", "sk_live_LITERAL789",
               "sk_live_CAUGHT000", "deadbeefsecrethash"]
TASK_SECRET = "sk_live_TASKARG555"


def agent_log(output):
    return "\n".join(line for line in output.splitlines() if re.match(r"tigerops\[\d+\]", line))


def assert_nothing_planted(otlp, log, secrets):
    wire = b"".join(otlp.bodies())
    assert wire, "nothing was exported"
    for secret in secrets:
        at = wire.find(secret.encode())
        assert at < 0, "%r was exported: ...%r..." % (secret, wire[max(0, at - 300):at + 60])
        assert secret not in log, "%r was in the agent's log" % secret
    # A truncated, masked copy must not survive either (a cut value keeps its prefix).
    assert b"sk_live_" not in wire


def exception_events(span):
    return [e["attributes"] for e in span["events"] if e["name"] == "exception"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "echoes.db")
    return request.getfixturevalue("postgres").url


def test_bind_values_never_leave_in_request_and_sql_exceptions(otlp, db_url):
    env = agent_env(otlp, ECHOES_DB_URL=db_url, TIGEROPS_LOG_LEVEL="debug", TIGEROPS_SERVICE_NAME="echoes")
    with gunicorn("echoes:app", env, workers=1) as server:
        for path in ("/unique", "/invalid", "/literal"):
            assert server.get(path)[0] == 500, server.output()[-3000:]
        assert server.get("/caught")[0] == 409
        for route in ("GET /unique", "GET /invalid", "GET /literal", "GET /caught"):
            otlp.wait_for_spans(lambda s, r=route: s["name"] == r)
        log = agent_log(server.output())
    assert_nothing_planted(otlp, log, APP_SECRETS)
    spans = otlp.spans()
    postgres = db_url.startswith("postgresql")

    # The request spans still tell what failed, and from where.
    for route, driver_error in (("GET /unique", "UniqueViolation" if postgres else "IntegrityError"),
                                ("GET /invalid", "InvalidTextRepresentation" if postgres else "IntegrityError"),
                                ("GET /literal", "UniqueViolation" if postgres else "IntegrityError")):
        (span,) = server_spans(spans, route)
        assert span["status"]["code"] == 2
        (exc,) = exception_events(span)
        assert exc["exception.type"] in ("IntegrityError", "DataError"), exc
        assert driver_error in exc["exception.message"], exc["exception.message"]
        assert "[SQL: " in exc["exception.message"] and "Background on this error" in exc["exception.message"]
        assert "Traceback" in exc["exception.stacktrace"]
        assert span["status"]["message"] == exc["exception.message"], "the status says the same, scrubbed"
    unique = exception_events(server_spans(spans, "GET /unique")[0])[0]["exception.message"]
    assert "INSERT INTO echo_accounts" in unique and "[parameters: ***" in unique
    if postgres:
        assert "DETAIL:  Key (token)=(*****************) already exists." in unique
        invalid = exception_events(server_spans(spans, "GET /invalid")[0])[0]["exception.message"]
        assert 'invalid input syntax for type integer: "******************"' in invalid
        assert re.search(r"LINE \d+: .*= '\*{18}'", invalid), invalid
    else:
        assert "UNIQUE constraint failed: echo_accounts.token" in unique
    # The failing SQL spans carry the driver's own error, scrubbed too.
    sql_errors = [e for s in spans if s["kind"] == 3 for e in exception_events(s)]
    assert len(sql_errors) >= 4, "each failing statement records its error"
    if postgres:
        assert any("DETAIL:  Key (token)=(" in e["exception.message"] for e in sql_errors)


@pytest.fixture
def charges_url(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "charges.db")
    return request.getfixturevalue("postgres").url


@pytest.mark.parametrize("charges_url", ["sqlite", "postgresql"], indirect=True)
def test_celery_retry_reason_and_failure_carry_no_bind_value(otlp, redis_server, tmp_path, charges_url):
    env = agent_env(otlp, preload=False, REDIS_URL=redis_server.url, TIGEROPS_SERVICE_NAME="worker",
                    TIGEROPS_LOG_LEVEL="debug", JOBS_DB=str(tmp_path / "jobs.db"), CHARGES_DB_URL=charges_url)
    worker = Worker(env, pool="solo")
    try:
        client = Celery("client", broker=redis_server.url)
        client.send_task("tasks.charge", args=[TASK_SECRET])
        spans = wait_all(otlp, {"process tasks.charge": 2})
        log = agent_log(worker.output())
    finally:
        worker.stop()
    assert_nothing_planted(otlp, log, [TASK_SECRET])
    runs = sorted([s for s in spans if s["name"] == "process tasks.charge"],
                  key=lambda s: s["attributes"]["celery.retries"])
    retry = [e["attributes"] for e in runs[0]["events"] if e["name"] == "retry"]
    assert retry, runs[0]
    reason = retry[0]["celery.retry.reason"]
    assert reason.startswith("Retry in 0s: IntegrityError("), reason
    if charges_url.startswith("postgresql"):
        # repr(exc): psycopg2's DETAIL rides in the exception's first argument.
        assert "UniqueViolation" in reason and "DETAIL:  Key (token)=(***" in reason, reason
    failed = runs[1]
    assert failed["status"]["code"] == 2
    (exc,) = exception_events(failed)
    assert exc["exception.type"] == "IntegrityError"
    assert "INSERT INTO echo_charges" in exc["exception.message"]
    assert "Traceback" in exc["exception.stacktrace"]
