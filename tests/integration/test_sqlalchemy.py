"""SQLAlchemy statements as CLIENT spans under the request span: normalised
SQL (no literal or parameter value anywhere in the exported bytes), row
counts, batch sizes, errors, slow statements and the N+1 pattern."""

from agent import agent_env, gunicorn, server_spans

SECRETS = ["secret-author", "secret-title", "secret-bulk", "literal-secret"]


def trace_of(otlp, name, count):
    spans = otlp.wait_for_spans(lambda s: s["name"] == name and s["kind"] == 2)
    root = server_spans(spans, name)[0]
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"], count=count)
    return root, [s for s in spans if s["traceId"] == root["traceId"] and s is not root and s["spanId"] != root["spanId"]]


def assert_no_secrets(otlp):
    for raw in otlp.bodies():
        for secret in SECRETS:
            assert secret.encode() not in raw, "%s leaked into the export" % secret


def test_core_statement_span_on_sqlite(otlp):
    with gunicorn("orm:app", agent_env(otlp), workers=1) as server:
        assert server.get("/core/3")[0] == 200
        root, children = trace_of(otlp, "GET /core/<int:author_id>", 2)
    (q,) = children
    assert q["name"] == "SELECT authors" and q["kind"] == 3
    assert q["parentSpanId"] == root["spanId"]
    a = q["attributes"]
    assert a["db.system.name"] == "sqlite"
    assert a["db.operation.name"] == "SELECT"
    assert a["db.collection.name"] == "authors"
    assert a["db.query.text"] == "SELECT name FROM authors WHERE id = ? AND name != ?"
    assert_no_secrets(otlp)


def test_orm_lazy_loads_flag_n_plus_one(otlp):
    with gunicorn("orm:app", agent_env(otlp), workers=1) as server:
        assert server.get("/orm")[0] == 200
        assert server.get("/twice")[0] == 200
        root, children = trace_of(otlp, "GET /orm", 8)
        twice, _ = trace_of(otlp, "GET /twice", 3)
    books = [s for s in children if s["name"] == "SELECT books"]
    assert len(books) == 6
    assert root["attributes"]["tigerops.n_plus_one"] is True
    assert root["attributes"]["tigerops.n_plus_one.count"] == 6
    assert "FROM books" in root["attributes"]["tigerops.n_plus_one.statement"]
    authors = [s for s in children if s["name"] == "SELECT authors"][0]
    assert "IN (?)" in authors["attributes"]["db.query.text"] or "IN (" in authors["attributes"]["db.query.text"]
    assert "tigerops.n_plus_one" not in twice["attributes"], "two runs of a statement are not N+1"
    assert_no_secrets(otlp)


def test_executemany_is_one_span_with_a_batch_size(otlp):
    with gunicorn("orm:app", agent_env(otlp), workers=1) as server:
        assert server.get("/many")[0] == 200
        _, children = trace_of(otlp, "GET /many", 2)
    inserts = [s for s in children if s["name"] == "INSERT books"]
    assert len(inserts) == 1
    assert inserts[0]["attributes"]["db.operation.batch.size"] == 4
    assert_no_secrets(otlp)


def test_failing_statement_is_an_error_span(otlp):
    with gunicorn("orm:app", agent_env(otlp), workers=1) as server:
        assert server.get("/broken")[0] == 500
        root, children = trace_of(otlp, "GET /broken", 2)
    (q,) = children
    assert q["status"]["code"] == 2
    assert q["events"][0]["name"] == "exception"
    assert "no_such_column" in q["events"][0]["attributes"]["exception.message"]


def test_slow_statements_are_flagged(otlp):
    env = agent_env(otlp, TIGEROPS_SLOW_QUERY_MS="0")
    with gunicorn("orm:app", env, workers=1) as server:
        server.get("/core/1")
        _, children = trace_of(otlp, "GET /core/<int:author_id>", 2)
    assert "db.slow" not in children[0]["attributes"], "0 means off"
    otlp.reset()
    env = agent_env(otlp)
    env["DATABASE_URL"] = "sqlite://"
    with gunicorn("slowdb:app", env, workers=1) as server:
        server.get("/slow")
        _, children = trace_of(otlp, "GET /slow", 2)
    (q,) = children
    assert q["attributes"]["db.slow"] is True
    assert q["events"][0]["name"] == "slow_query"


def test_postgresql_through_psycopg2(otlp, postgres):
    env = agent_env(otlp, DATABASE_URL=postgres.url)
    with gunicorn("orm:app", env, workers=1) as server:
        assert server.get("/core/2")[0] == 200
        assert server.get("/orm")[0] == 200
        _, core = trace_of(otlp, "GET /core/<int:author_id>", 2)
        root, orm_children = trace_of(otlp, "GET /orm", 8)
    (q,) = core
    a = q["attributes"]
    assert a["db.system.name"] == "postgresql"
    assert a["db.namespace"] == "postgres"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == postgres.port
    assert a["db.query.text"] == "SELECT name FROM authors WHERE id = ? AND name != ?"
    assert a["db.response.returned_rows"] == 1
    assert "pg-secret-password" not in a["db.connection_string"]
    assert a["db.connection_string"].startswith("postgresql+psycopg2://postgres@127.0.0.1:")
    assert root["attributes"]["tigerops.n_plus_one"] is True
    assert_no_secrets(otlp)
    for raw in otlp.bodies():
        assert b"pg-secret-password" not in raw


def test_sqlcommenter_puts_the_traceparent_in_the_sql_postgres_sees(otlp, postgres):
    env = agent_env(otlp, DATABASE_URL=postgres.url, TIGEROPS_SQLCOMMENTER="true")
    with gunicorn("orm:app", env, workers=1) as server:
        assert server.get("/core/4")[0] == 200
        _, (q,) = trace_of(otlp, "GET /core/<int:author_id>", 2)
    comment = "/*traceparent='00-%s-%s-01'*/" % (q["traceId"], q["spanId"])
    with open(postgres.log, errors="replace") as f:
        log = f.read()
    assert comment in log, "the statement PostgreSQL ran did not carry the span's traceparent"
    assert "traceparent" not in q["attributes"]["db.query.text"], "the exported text stays normalised"


def test_sqlcommenter_is_off_by_default(otlp, postgres):
    env = agent_env(otlp, DATABASE_URL=postgres.url)
    with gunicorn("orm:app", env, workers=1) as server:
        assert server.get("/core/5")[0] == 200
        _, (q,) = trace_of(otlp, "GET /core/<int:author_id>", 2)
    with open(postgres.log, errors="replace") as f:
        assert q["spanId"] not in f.read()


def test_flask_sqlalchemy_lazy_engine(otlp):
    with gunicorn("fsa:app", agent_env(otlp), workers=1) as server:
        status, body, _ = server.get("/notes")
        assert status == 200 and '"n":1' in body.replace(" ", "")
        _, children = trace_of(otlp, "GET /notes", 3)
    names = {s["name"] for s in children}
    assert {"INSERT note", "SELECT note"} <= names, names
    select = [s for s in children if s["name"] == "SELECT note"][0]
    assert select["attributes"]["db.query.text"] == "SELECT note.id, note.body FROM note WHERE note.body = ?"
    for raw in otlp.bodies():
        assert b"note-SECRET" not in raw
