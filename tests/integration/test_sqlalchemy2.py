"""SQLAlchemy 2.0: 2.0-style ORM queries, insertmanyvalues batches (one span
per page of rows, its row count, SQL that does not grow with the batch),
async engines (aiosqlite, asyncpg, psycopg async) in Flask async views and
in a plain asyncio job, psycopg 3 under SQLAlchemy, and the sqlcommenter
traceparent in PostgreSQL's own statement log. Runs in the matrix venvs
with SQLAlchemy 2.0; skips on older stacks (Debian's SQLAlchemy 1.4)."""
import concurrent.futures
import re
import subprocess

import pytest

from agent import APPS, PYTHON, agent_env, gunicorn, server_spans

sqlalchemy = pytest.importorskip("sqlalchemy")
if int(sqlalchemy.__version__.split(".")[0]) < 2:
    pytest.skip("SQLAlchemy 2.0 only (this stack has %s)" % sqlalchemy.__version__, allow_module_level=True)

SECRETS = ["secret-author", "secret-title", "secret-bulk", "literal-secret", "pg-secret-password"]


def trace_of(otlp, route, count):
    """The request span for route and its count descendants."""
    spans = otlp.wait_for_spans(lambda s: s["name"] == route and s["kind"] == 2)
    root = server_spans(spans, route)[-1]
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == root["traceId"], count=count + 1)
    return root, [s for s in spans if s["traceId"] == root["traceId"] and s["spanId"] != root["spanId"]]


def assert_no_secrets(otlp):
    for raw in otlp.bodies():
        for secret in SECRETS:
            assert secret.encode() not in raw, "%s leaked into the export" % secret


def uncast(sql):
    """psycopg 3 and asyncpg render a cast after each bind (?::VARCHAR):
    the same shape as the other drivers' text without them."""
    return re.sub(r"::[A-Z]+(\[\])?", "", sql)


def named(spans, name):
    return [s for s in spans if s["name"] == name]


def assert_statement(span, parent, system, op, table):
    assert span["kind"] == 3, span
    assert span["parentSpanId"] == parent["spanId"], (span["name"], parent["name"])
    a = span["attributes"]
    assert a["db.system.name"] == system
    assert a["db.operation.name"] == op
    assert a["db.collection.name"] == table
    return a


def psycopg_url(postgres):
    pytest.importorskip("psycopg")
    return postgres.url.replace("+psycopg2://", "+psycopg://")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """(DATABASE_URL, db.system.name) of the sync engine under test."""
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "app.db"), "sqlite"
    return psycopg_url(request.getfixturevalue("postgres")), "postgresql"


def test_session_execute_and_scalars_with_select(otlp, database):
    url, system = database
    with gunicorn("sqla2_app:app", agent_env(otlp, DATABASE_URL=url), workers=1) as server:
        status, body, _ = server.get("/select")
        assert status == 200, body
        root, children = trace_of(otlp, "GET /select", 2)
    (author,) = named(children, "SELECT authors2")
    a = assert_statement(author, root, system, "SELECT", "authors2")
    assert uncast(a["db.query.text"]) == ("SELECT authors2.id, authors2.name FROM authors2 "
                                          "WHERE authors2.name != ? AND authors2.id = ?")
    if system == "postgresql":  # sqlite3 reports no row count for a SELECT
        assert a["db.response.returned_rows"] == 1
    (books,) = named(children, "SELECT books2")
    a = assert_statement(books, root, system, "SELECT", "books2")
    assert uncast(a["db.query.text"]) == "SELECT books2.title FROM books2 WHERE books2.author_id IN (?)"
    assert_no_secrets(otlp)


def assert_batches(inserts, root, system, sizes):
    """One span per insertmanyvalues page, each with its row count and the
    same short normalised text (the rows collapse to the first one)."""
    assert sorted(s["attributes"].get("db.operation.batch.size") for s in inserts) == sorted(sizes)
    texts = {s["attributes"]["db.query.text"] for s in inserts}
    assert len(texts) == 1, texts
    (sql,) = texts
    assert len(sql) < 300, "the rows of a batch did not collapse: %d characters" % len(sql)
    assert "RETURNING" in sql and sql.count("?") <= 4, sql
    for s in inserts:
        assert_statement(s, root, system, "INSERT", "books2")
    return sql


def test_insertmanyvalues_is_one_span_per_batch(otlp, database):
    url, system = database
    with gunicorn("sqla2_app:app", agent_env(otlp, DATABASE_URL=url), workers=1) as server:
        status, body, _ = server.get("/bulk/2500")
        assert status == 200 and '"n":2500' in body.replace(" ", ""), body
        root, children = trace_of(otlp, "GET /bulk/<int:n>", 3)
    inserts = named(children, "INSERT books2")
    assert len(inserts) == 3, [s["name"] for s in children]
    sql = assert_batches(inserts, root, system, [1000, 1000, 500])
    assert uncast(sql).startswith("INSERT INTO books2 (title, author_id) VALUES (?, ?)"), sql
    assert_no_secrets(otlp)


def test_bulk_insert_without_returning_is_one_executemany_span(otlp, database):
    url, system = database
    with gunicorn("sqla2_app:app", agent_env(otlp, DATABASE_URL=url), workers=1) as server:
        assert server.get("/bulk-plain/1200")[0] == 200
        root, children = trace_of(otlp, "GET /bulk-plain/<int:n>", 1)
    (insert,) = named(children, "INSERT books2")
    a = assert_statement(insert, root, system, "INSERT", "books2")
    assert a["db.operation.batch.size"] == 1200
    assert uncast(a["db.query.text"]) == "INSERT INTO books2 (title, author_id) VALUES (?, ?)"
    assert_no_secrets(otlp)


def test_unit_of_work_flush_batches_on_postgresql(otlp, postgres):
    """Session.add_all + flush on PostgreSQL: ordered pages with
    SQLAlchemy's sentinel column (SELECT ... FROM (VALUES ...) AS imp_sen)."""
    env = agent_env(otlp, DATABASE_URL=psycopg_url(postgres))
    with gunicorn("sqla2_app:app", env, workers=1) as server:
        assert server.get("/unit-of-work/2100")[0] == 200
        root, children = trace_of(otlp, "GET /unit-of-work/<int:n>", 3)
    inserts = named(children, "INSERT books2")
    assert len(inserts) == 3, [s["name"] for s in children]
    sql = assert_batches(inserts, root, "postgresql", [1000, 1000, 100])
    assert "FROM (VALUES (?, ?, ?)) AS imp_sen" in uncast(sql), sql
    assert_no_secrets(otlp)


def test_failing_statement_is_an_error_span(otlp, database):
    url, system = database
    with gunicorn("sqla2_app:app", agent_env(otlp, DATABASE_URL=url), workers=1) as server:
        assert server.get("/broken")[0] == 500
        root, children = trace_of(otlp, "GET /broken", 1)
    (q,) = children
    assert_statement(q, root, system, "SELECT", "authors2")
    assert q["status"]["code"] == 2
    assert q["events"][0]["name"] == "exception"
    assert "no_such_column" in q["events"][0]["attributes"]["exception.message"]


def test_event_loop_started_in_a_sync_view(otlp, tmp_path):
    """asyncio.run inside a sync request: the tasks' blocks nest under the
    request (the switch to contextvars comes mid-request), the statements
    under their task, and the code after the loop under the request again;
    the next request (all contextvars) the same."""
    url = "sqlite:///%s" % (tmp_path / "app.db")
    with gunicorn("sqla2_app:app", agent_env(otlp, DATABASE_URL=url), workers=1) as server:
        assert server.get("/loop-in-view")[0] == 200
        assert server.get("/loop-in-view")[0] == 200
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /loop-in-view", count=2)
        spans = otlp.wait_for_spans(lambda s: s["kind"] == 3, count=6)
    roots = server_spans(spans, "GET /loop-in-view")
    assert len(roots) == 2
    for root in roots:
        trace = [s for s in spans if s["traceId"] == root["traceId"] and s is not root]
        for i in (1, 2):
            (task,) = named(trace, "task-%d" % i)
            assert task["parentSpanId"] == root["spanId"]
            (q,) = [s for s in trace if s.get("parentSpanId") == task["spanId"]]
            assert_statement(q, task, "sqlite", "SELECT", "authors2")
        (after,) = named(trace, "SELECT books2")
        assert_statement(after, root, "sqlite", "SELECT", "books2")


def pg_log(postgres):
    with open(postgres.log, errors="replace") as f:
        return f.read()


def assert_commented(postgres, spans):
    log = pg_log(postgres)
    for s in spans:
        comment = "/*traceparent='00-%s-%s-01'*/" % (s["traceId"], s["spanId"])
        assert comment in log, "PostgreSQL did not log %s's statement with its traceparent" % s["name"]
        assert "traceparent" not in s["attributes"]["db.query.text"], "the exported text stays normalised"


def test_sqlcommenter_through_psycopg3(otlp, postgres):
    env = agent_env(otlp, DATABASE_URL=psycopg_url(postgres), TIGEROPS_SQLCOMMENTER="true")
    with gunicorn("sqla2_app:app", env, workers=1) as server:
        assert server.get("/select")[0] == 200
        assert server.get("/bulk/1500")[0] == 200
        _, selects = trace_of(otlp, "GET /select", 2)
        _, inserts = trace_of(otlp, "GET /bulk/<int:n>", 2)
    assert len(selects) == 2 and len(inserts) == 2
    assert_commented(postgres, selects + inserts)


# --- async engines -----------------------------------------------------------

@pytest.fixture(params=["aiosqlite", "asyncpg", "psycopg"])
def async_db(request, tmp_path):
    """(ASYNC_URL, SETUP_URL, db.system.name) for an async driver."""
    pytest.importorskip("greenlet")
    pytest.importorskip(request.param)
    if request.param == "aiosqlite":
        path = tmp_path / "app.db"
        return "sqlite+aiosqlite:///%s" % path, "sqlite:///%s" % path, "sqlite"
    postgres = request.getfixturevalue("postgres")
    setup = psycopg_url(postgres)
    return postgres.url.replace("+psycopg2://", "+%s://" % request.param), setup, "postgresql"


def test_async_engine_in_async_views(otlp, async_db):
    """Concurrent async views: every statement under the span block around
    its await, in its own request's trace; a failing one is an error."""
    pytest.importorskip("asgiref")
    url, setup, system = async_db
    n = 12
    env = agent_env(otlp, ASYNC_URL=url, SETUP_URL=setup)
    with gunicorn("sqla2_async_app:app", env, workers=1, extra=("-k", "gthread", "--threads", "4")) as server:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            assert list(pool.map(lambda i: server.get("/async/%d" % i)[0], range(n))) == [200] * n
        assert server.get("/async-broken")[0] == 500
        otlp.wait_for_spans(lambda s: s["name"] == "SELECT books2", count=n)
        broken_root, broken = trace_of(otlp, "GET /async-broken", 1)
        spans = otlp.wait_for_spans(lambda s: s["name"] == "GET /async/<int:i>", count=n)
    roots = server_spans(spans, "GET /async/<int:i>")
    assert len(roots) == n
    for root in roots:
        i = int(root["attributes"]["url.path"].rsplit("/", 1)[1])
        trace = [s for s in spans if s["traceId"] == root["traceId"] and s is not root]
        names = sorted(s["name"] for s in trace)
        assert names == sorted(["outer-%d" % i, "inner-%d" % i, "SELECT authors2", "SELECT books2"]), (i, names)
        (outer,) = named(trace, "outer-%d" % i)
        (inner,) = named(trace, "inner-%d" % i)
        assert outer["parentSpanId"] == root["spanId"]
        assert inner["parentSpanId"] == outer["spanId"]
        a = assert_statement(named(trace, "SELECT authors2")[0], outer, system, "SELECT", "authors2")
        assert uncast(a["db.query.text"]) == "SELECT authors2.id, authors2.name FROM authors2 WHERE authors2.id = ?"
        assert_statement(named(trace, "SELECT books2")[0], inner, system, "SELECT", "books2")
    (q,) = broken
    assert_statement(q, broken_root, system, "SELECT", "authors2")
    assert q["status"]["code"] == 2
    assert q["events"][0]["name"] == "exception"
    assert "no_such_column" in q["events"][0]["attributes"]["exception.message"]
    assert broken_root["status"]["code"] == 2
    assert_no_secrets(otlp)


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_async_engine_sqlcommenter(otlp, postgres, driver):
    """The traceparent reaches PostgreSQL through the async drivers too."""
    pytest.importorskip("asgiref")
    pytest.importorskip("greenlet")
    pytest.importorskip(driver)
    url = postgres.url.replace("+psycopg2://", "+%s://" % driver)
    env = agent_env(otlp, ASYNC_URL=url, SETUP_URL=psycopg_url(postgres), TIGEROPS_SQLCOMMENTER="true")
    with gunicorn("sqla2_async_app:app", env, workers=1) as server:
        assert server.get("/async/3")[0] == 200
        _, trace = trace_of(otlp, "GET /async/<int:i>", 4)
    statements = [s for s in trace if s["kind"] == 3]
    assert len(statements) == 2
    assert_commented(postgres, statements)


def test_async_job_outside_a_request(otlp, async_db):
    """A plain asyncio program inside span("job"): concurrent tasks, each
    in its own span block, each task's statements under its own span."""
    url, setup, system = async_db
    env = agent_env(otlp, ASYNC_URL=url, SETUP_URL=setup)
    done = subprocess.run([PYTHON, "sqla2_async_job.py"], env=env, cwd=APPS, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    spans = otlp.wait_for_spans(lambda s: s["name"] == "job")
    (job,) = named(spans, "job")
    spans = otlp.wait_for_spans(lambda s: s["traceId"] == job["traceId"], count=1 + 4 + 8)
    trace = [s for s in spans if s["traceId"] == job["traceId"]]
    assert "parentSpanId" not in job or not job["parentSpanId"]
    for i in range(4):
        (task,) = named(trace, "task-%d" % i)
        assert task["parentSpanId"] == job["spanId"], "task-%d" % i
        # (the first connection's dialect initialisation queries are spans
        # too, under whichever task connected first)
        statements = [s for s in trace if s.get("parentSpanId") == task["spanId"]
                      and s["attributes"].get("db.collection.name") == "authors2"]
        assert len(statements) == 2, ("task-%d" % i, [s["name"] for s in statements])
        for s in statements:
            assert s["kind"] == 3 and s["attributes"]["db.system.name"] == system
        if i == 2:
            (failed,) = [s for s in statements if s.get("status", {}).get("code") == 2]
            assert failed["events"][0]["name"] == "exception"
