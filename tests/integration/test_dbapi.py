"""DB-API drivers used directly (sqlite3, psycopg2, psycopg 3, pymysql on a
real MariaDB): one CLIENT span per statement under the request span, with
the attributes the SQLAlchemy spans have, no bind value or literal in the
exported bytes; and SQLAlchemy on the same drivers still one span per
statement."""
import pytest

from agent import agent_env, gunicorn, server_spans
from servers import MariaDB

SECRETS = ["secret-bind", "literal-secret", "pg-secret-password"]


@pytest.fixture(scope="module")
def mariadb():
    with MariaDB() as server:
        yield server


def trace_of(otlp, route, count):
    spans = otlp.wait_for_spans(lambda s: s["name"] == route and s["kind"] == 2)
    root = server_spans(spans, route)[-1]
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"], count=count + 1)
    return root, [s for s in spans if s["traceId"] == root["traceId"] and s["spanId"] != root["spanId"]]


def assert_no_secrets(otlp):
    for raw in otlp.bodies():
        for secret in SECRETS:
            assert secret.encode() not in raw, "%s leaked into the export" % secret


def by_name(children, name):
    return [s for s in children if s["name"] == name]


def assert_statement(span, root, system, op, table, text=None):
    assert span["kind"] == 3
    assert span["parentSpanId"] == root["spanId"]
    a = span["attributes"]
    assert a["db.system.name"] == system
    assert a["db.operation.name"] == op
    assert a["db.collection.name"] == table
    if text is not None:
        assert a["db.query.text"] == text
    return a


def pg_env(otlp, postgres, **extra):
    dsn = "host=127.0.0.1 port=%d user=postgres password=pg-secret-password dbname=postgres" % postgres.port
    rest = "postgres:pg-secret-password@127.0.0.1:%d/postgres" % postgres.port
    return agent_env(otlp, PG_DSN=dsn, PG_URL_REST=rest, **extra)


def test_sqlite3_statements_are_client_spans(otlp):
    with gunicorn("dbapi_app:app", agent_env(otlp), workers=1) as server:
        assert server.get("/sqlite")[0] == 200
        root, children = trace_of(otlp, "GET /sqlite", 4)
    assert len(children) == 4, [s["name"] for s in children]
    (create,) = by_name(children, "CREATE")
    assert create["parentSpanId"] == root["spanId"]
    assert create["attributes"]["db.query.text"].startswith("CREATE TABLE IF NOT EXISTS notes")
    (insert,) = by_name(children, "INSERT notes")
    a = assert_statement(insert, root, "sqlite", "INSERT", "notes", "INSERT INTO notes (body) VALUES (?)")
    assert a["db.operation.batch.size"] == 2
    assert a["db.response.affected_rows"] == 2
    assert a["db.namespace"].endswith("app.db")
    select_ok, broken = sorted(by_name(children, "SELECT notes"), key=lambda s: "status" in s and s["status"].get("code") == 2)
    # conn.execute() (the sqlite3 shortcut) goes through the traced cursor too.
    assert_statement(select_ok, root, "sqlite", "SELECT", "notes",
                     "SELECT body FROM notes WHERE body != ? AND id > ?")
    assert broken["status"]["code"] == 2
    assert broken["events"][0]["name"] == "exception"
    assert "no_such_column" in broken["events"][0]["attributes"]["exception.message"]
    assert_no_secrets(otlp)


def test_sqlalchemy_on_sqlite3_is_not_spanned_twice(otlp):
    with gunicorn("dbapi_app:app", agent_env(otlp), workers=1) as server:
        assert server.get("/sqlite-sqlalchemy")[0] == 200
        root, children = trace_of(otlp, "GET /sqlite-sqlalchemy", 2)
    names = sorted(s["name"] for s in children)
    assert names == ["CREATE", "SELECT notes"], names
    for s in children:
        assert s["parentSpanId"] == root["spanId"]
        # The SQLAlchemy span (it alone has the engine's connection string).
        assert s["attributes"]["db.connection_string"].startswith("sqlite:///")


def test_psycopg2_statements_are_client_spans(otlp, postgres):
    with gunicorn("dbapi_app:app", pg_env(otlp, postgres), workers=1) as server:
        assert server.get("/pg2")[0] == 200
        root, children = trace_of(otlp, "GET /pg2", 4)
    assert len(children) == 4, [s["name"] for s in children]
    (insert,) = by_name(children, "INSERT pg2_notes")
    a = assert_statement(insert, root, "postgresql", "INSERT", "pg2_notes", "INSERT INTO pg2_notes (body) VALUES (?)")
    assert a["db.namespace"] == "postgres"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == postgres.port
    assert a["db.operation.batch.size"] == 2
    selects = by_name(children, "SELECT pg2_notes")
    assert len(selects) == 2
    ok = [s for s in selects if s["status"].get("code") != 2]
    (ok,) = ok
    a = assert_statement(ok, root, "postgresql", "SELECT", "pg2_notes")
    assert "secret" not in a["db.query.text"] and "?" in a["db.query.text"]
    assert a["db.response.returned_rows"] >= 2
    (broken,) = [s for s in selects if s["status"].get("code") == 2]
    assert "no_such_column" in broken["events"][0]["attributes"]["exception.message"]
    assert_no_secrets(otlp)


def test_sqlalchemy_on_psycopg2_is_not_spanned_twice(otlp, postgres):
    with gunicorn("dbapi_app:app", pg_env(otlp, postgres), workers=1) as server:
        assert server.get("/pg2-sqlalchemy")[0] == 200
        root, children = trace_of(otlp, "GET /pg2-sqlalchemy", 1)
    selects = [s for s in children if s["attributes"].get("db.query.text", "").startswith("SELECT ? WHERE")]
    assert len(selects) == 1, [s["name"] for s in children]
    assert selects[0]["attributes"]["db.connection_string"].startswith("postgresql+psycopg2://")
    assert all("db.connection_string" in s["attributes"] for s in children), [s["name"] for s in children]
    assert_no_secrets(otlp)


def test_psycopg3_statements_are_client_spans(otlp, postgres):
    with gunicorn("dbapi_app:app", pg_env(otlp, postgres), workers=1) as server:
        assert server.get("/pg3")[0] == 200
        root, children = trace_of(otlp, "GET /pg3", 3)
    assert len(children) == 3, [s["name"] for s in children]
    (insert,) = by_name(children, "INSERT pg3_notes")
    a = assert_statement(insert, root, "postgresql", "INSERT", "pg3_notes", "INSERT INTO pg3_notes (body) VALUES (?)")
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == postgres.port
    assert a["db.namespace"] == "postgres"
    (select,) = by_name(children, "SELECT pg3_notes")
    assert_statement(select, root, "postgresql", "SELECT", "pg3_notes",
                     "SELECT body FROM pg3_notes WHERE body <> ? AND id > ?")
    assert_no_secrets(otlp)


def test_pymysql_on_mariadb_statements_are_client_spans(otlp, mariadb):
    env = agent_env(otlp, MYSQL_PORT=mariadb.port)
    with gunicorn("dbapi_app:app", env, workers=1) as server:
        assert server.get("/mysql")[0] == 200
        root, children = trace_of(otlp, "GET /mysql", 4)
    assert len(children) == 4, [s["name"] for s in children]
    (insert,) = by_name(children, "INSERT my_notes")
    a = assert_statement(insert, root, "mysql", "INSERT", "my_notes", "INSERT INTO my_notes (body) VALUES (?)")
    assert a["db.namespace"] == "app"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == mariadb.port
    assert a["db.operation.batch.size"] == 2
    assert a["db.response.affected_rows"] == 2
    selects = by_name(children, "SELECT my_notes")
    (broken,) = [s for s in selects if s["status"].get("code") == 2]
    assert "no_such_column" in broken["events"][0]["attributes"]["exception.message"]
    assert_no_secrets(otlp)


def test_sqlalchemy_on_pymysql_is_not_spanned_twice(otlp, mariadb):
    env = agent_env(otlp, MYSQL_PORT=mariadb.port)
    with gunicorn("dbapi_app:app", env, workers=1) as server:
        assert server.get("/mysql-sqlalchemy")[0] == 200
        root, children = trace_of(otlp, "GET /mysql-sqlalchemy", 1)
    selects = [s for s in children if "FROM dual" in s["attributes"].get("db.query.text", "")]
    assert len(selects) == 1, [s["name"] for s in children]
    assert all("db.connection_string" in s["attributes"] for s in children), [s["name"] for s in children]



def test_factories_cursor_classes_and_keyword_calls_are_traced(otlp, postgres, mariadb):
    """sqlite3 with the app's own connection factory, psycopg2 with a
    cursor_factory and vars= by keyword, pymysql with a cursor class per
    call: each statement still one span."""
    env = pg_env(otlp, postgres, MYSQL_PORT=mariadb.port)
    with gunicorn("dbapi_app:app", env, workers=1) as server:
        status, body, _ = server.get("/variants")
        assert (status, body) == (200, "ok")
        root, children = trace_of(otlp, "GET /variants", 3)
    assert len(children) == 3, [s["name"] for s in children]
    (lite,) = by_name(children, "SELECT sqlite_master")
    assert_statement(lite, root, "sqlite", "SELECT", "sqlite_master")
    (pg,) = by_name(children, "SELECT pg_class")
    assert_statement(pg, root, "postgresql", "SELECT", "pg_class")
    (my,) = by_name(children, "SELECT dual")
    assert_statement(my, root, "mysql", "SELECT", "dual")
    assert_no_secrets(otlp)
