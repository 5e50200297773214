"""asyncio database drivers used directly (no SQLAlchemy) in Flask async
views: aiosqlite and psycopg 3's AsyncConnection. Each awaited statement
is one CLIENT span under the span block around it, timed over the await,
with the attributes the sync drivers' spans have and no bind value or
literal in the export; SQLAlchemy's async engines on the same drivers keep
one span per statement (tests/integration/test_sqlalchemy2.py)."""
import pytest

from agent import agent_env, gunicorn, server_spans

pytest.importorskip("asgiref")
SECRETS = ["secret-bind", "literal-secret", "pg-secret-password"]


def trace_of(otlp, route, count):
    spans = otlp.wait_for_spans(lambda s: s["name"] == route and s["kind"] == 2)
    root = server_spans(spans, route)[-1]
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"], count=count + 1)
    return root, [s for s in spans if s["traceId"] == root["traceId"] and s["spanId"] != root["spanId"]]


def assert_no_secrets(otlp):
    for raw in otlp.bodies():
        for secret in SECRETS:
            assert secret.encode() not in raw, "%s leaked into the export" % secret


def check_trace(root, children, system, table, select_text):
    (work,) = [s for s in children if s["name"] == "work"]
    assert work["parentSpanId"] == root["spanId"]
    statements = [s for s in children if s["kind"] == 3]
    for s in statements:
        assert s["parentSpanId"] == work["spanId"], s["name"]
        assert s["attributes"]["db.system.name"] == system
    (insert,) = [s for s in statements if s["name"] == "INSERT " + table]
    assert insert["attributes"]["db.operation.batch.size"] == 2
    assert insert["attributes"]["db.query.text"] == "INSERT INTO %s (body) VALUES (?)" % table
    selects = [s for s in statements if s["name"] == "SELECT " + table]
    (ok,) = [s for s in selects if s.get("status", {}).get("code") != 2]
    (failed,) = [s for s in selects if s.get("status", {}).get("code") == 2]
    assert ok["attributes"]["db.query.text"] == select_text
    assert ok["attributes"]["db.operation.name"] == "SELECT"
    assert ok["attributes"]["db.collection.name"] == table
    assert failed["events"][0]["name"] == "exception"
    assert "no_such_column" in failed["events"][0]["attributes"]["exception.message"]
    return statements


def test_aiosqlite_statements_are_client_spans(otlp):
    pytest.importorskip("aiosqlite")
    with gunicorn("dbapi_async_app:app", agent_env(otlp), workers=1) as server:
        assert server.get("/aiosqlite")[0] == 200
        root, children = trace_of(otlp, "GET /aiosqlite", 5)
    statements = check_trace(root, children, "sqlite", "notes", "SELECT body FROM notes WHERE body != ? AND id > ?")
    assert len(statements) == 4, [s["name"] for s in statements]
    assert all(s["attributes"]["db.namespace"].endswith("app.db") for s in statements)
    assert_no_secrets(otlp)


def test_psycopg_async_connection_statements_are_client_spans(otlp, postgres):
    pytest.importorskip("psycopg")
    dsn = "host=127.0.0.1 port=%d user=postgres password=pg-secret-password dbname=postgres" % postgres.port
    with gunicorn("dbapi_async_app:app", agent_env(otlp, PG_DSN=dsn), workers=1) as server:
        assert server.get("/pg3-async")[0] == 200
        root, children = trace_of(otlp, "GET /pg3-async", 5)
    statements = check_trace(root, children, "postgresql", "pg3a_notes",
                             "SELECT body FROM pg3a_notes WHERE body <> ? AND id > ?")
    assert len(statements) == 4, [s["name"] for s in statements]
    for s in statements:
        a = s["attributes"]
        assert a["db.namespace"] == "postgres"
        assert a["server.address"] == "127.0.0.1" and a["server.port"] == postgres.port
    assert_no_secrets(otlp)
