"""_tigerops.DbExecute in process: the C wrapper SQLAlchemy's dialect
methods are replaced with, driven here over a real sqlite3 cursor with the
(cursor, statement, parameters, context) calls a dialect makes, and with
arguments no dialect would pass."""
import sqlite3

import pytest

import _tigerops
import tigerops
from inproc import assert_clean_exit, exported_one, isolated

SCHEMA = """
CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, author_id INTEGER);
CREATE TABLE "order" (id INTEGER PRIMARY KEY, total INTEGER);
INSERT INTO articles (title, author_id) VALUES ('a', 1), ('b', 1), ('c', 2);
INSERT INTO "order" (total) VALUES (10), (20);
"""


def do_execute(cursor, statement, parameters, context=None):
    cursor.execute(statement, parameters)


def do_execute_no_params(cursor, statement, context=None):
    cursor.execute(statement)


def do_executemany(cursor, statement, parameters, context=None):
    cursor.executemany(statement, parameters)


@pytest.fixture
def db():
    # A connection as SQLAlchemy gets it: the agent traces the cursors of
    # connections apps open themselves (tigerops._dbapi), not those under a
    # dialect, whose statements DbExecute alone spans.
    conn = getattr(sqlite3.connect, "__wrapped__", sqlite3.connect)(":memory:")
    conn.executescript(SCHEMA)
    wrappers = [_tigerops.DbExecute(f, mode, "sqlite", "main", "", 0, "sqlite://")
                for mode, f in enumerate((do_execute, do_execute_no_params, do_executemany))]
    yield conn, wrappers
    conn.close()


def children(receiver, parent_name):
    parent = exported_one(receiver, parent_name)
    return [s for s in receiver.spans() if s["parentSpanId"] == parent["spanId"]]


def test_statements_become_client_spans_named_by_operation_and_table(receiver, unique, db):
    conn, (execute, no_params, many) = db
    cur = conn.cursor()
    with tigerops.span(unique):
        execute(cur, "SELECT title FROM articles WHERE author_id = ?", (1,))
        assert [r[0] for r in cur.fetchall()] == ["a", "b"]
        no_params(cur, "UPDATE articles SET title = 'z' WHERE id = 3")
        many(cur, "INSERT INTO articles (title, author_id) VALUES (?, ?)", [("d", 3), ("e", 3)])
    spans = {s["name"]: s for s in children(receiver, unique)}
    assert set(spans) == {"SELECT articles", "UPDATE articles", "INSERT articles"}
    select = spans["SELECT articles"]
    assert select["kind"] == 3
    assert select["attributes"]["db.system.name"] == "sqlite"
    assert select["attributes"]["db.query.text"] == "SELECT title FROM articles WHERE author_id = ?"
    assert spans["UPDATE articles"]["attributes"]["db.query.text"] == "UPDATE articles SET title = ? WHERE id = ?"
    assert spans["INSERT articles"]["attributes"]["db.operation.batch.size"] == 2


def test_count_queries_over_a_subquery_and_quoted_tables_are_named_after_the_real_table(receiver, unique, db):
    """Bug 3: SQLAlchemy's count()/paginate() query was named 'SELECT SELECT'
    with db.collection.name 'SELECT'; a quoted table kept its quotes."""
    conn, (execute, _, _) = db
    cur = conn.cursor()
    with tigerops.span(unique):
        execute(cur, "SELECT count(*) AS count_1 FROM (SELECT articles.id AS articles_id, articles.title AS "
                     "articles_title FROM articles WHERE articles.author_id = ?) AS anon_1", (1,))
        assert cur.fetchone() == (2,)
        execute(cur, 'SELECT "order".id, "order".total FROM "order" WHERE "order".total > ?', (5,))
        assert len(cur.fetchall()) == 2
    spans = children(receiver, unique)
    assert sorted(s["name"] for s in spans) == ["SELECT articles", "SELECT order"]
    assert sorted(s["attributes"]["db.collection.name"] for s in spans) == ["articles", "order"]


def test_a_failing_statement_is_recorded_and_the_error_propagates(receiver, unique, db):
    conn, (execute, _, _) = db
    with tigerops.span(unique):
        with pytest.raises(sqlite3.OperationalError):
            execute(conn.cursor(), "SELECT nope FROM articles", ())
    (span,) = children(receiver, unique)
    assert span["status"]["code"] == 2
    assert span["attributes"]["error.type"].endswith("OperationalError")


def test_outside_a_span_the_original_is_called_untraced(db):
    conn, (execute, no_params, _) = db
    cur = conn.cursor()
    assert not tigerops.current_span().is_recording()
    execute(cur, "SELECT count(*) FROM articles", ())
    assert cur.fetchone() == (3,)
    no_params(cur, "SELECT 1")
    assert cur.fetchone() == (1,)


class NoRowcount:
    """A cursor-like object whose attributes raise."""
    @property
    def rowcount(self):
        raise RuntimeError("rowcount fails")

    def execute(self, statement, parameters=None):
        return None


class WeirdStr(str):
    pass


@pytest.mark.parametrize("args, kwargs", [
    ((), {}),
    ((object(),), {}),
    ((NoRowcount(), None, ()), {}),
    ((NoRowcount(), 42, ()), {}),
    ((NoRowcount(), b"SELECT 1", ()), {}),
    ((NoRowcount(), "SELECT \ud800 FROM t", ()), {}),
    ((NoRowcount(), WeirdStr("SELECT a FROM weird"), ()), {}),
    ((NoRowcount(), "", ()), {}),
    ((NoRowcount(), "x" * 200000, ()), {}),
    ((NoRowcount(), "SELECT a FROM t", ()), {"context": None}),
    ((NoRowcount(), "SELECT a FROM t", (), None, "extra", "args"), {}),
    ((NoRowcount(), "SELECT a FROM t") + ("more",) * 9, {}),  # past the traced shapes
    ((NoRowcount(),), {"statement": "SELECT a FROM t"}),
])
def test_odd_arguments_reach_the_original_or_raise_its_type_error(args, kwargs):
    """Whatever a caller passes, DbExecute hands it to the original (which
    decides) and never crashes or turns it into another error."""
    calls = []

    def original(*a, **kw):
        calls.append((a, kw))
        return "result"

    wrapper = _tigerops.DbExecute(original, 0, "sqlite", "", "", 0, "")
    for traced in (False, True):
        calls.clear()
        with tigerops.span("odd-db-args") if traced else _nothing():
            assert wrapper(*args, **kwargs) == "result"
        assert len(calls) == 1 and calls[0][1] == kwargs
        assert calls[0][0][0:1] == args[0:1]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("args", [
    (sqlite3.connect, 0, "s", "", "", 0, ""),  # fine: any callable
    (None, 0, "s", "", "", 0, ""),
    (print, 3, "s", "", "", 0, ""),
    (print, 0, None, "", "", 0, ""),
    (print, 0, "s\ud800", "", "", 0, ""),
    (print, 0, "s", "", "", 2 ** 70, ""),
    (print,),
])
def test_bad_constructor_arguments_raise_cleanly(args):
    if args[0] is sqlite3.connect:
        _tigerops.DbExecute(*args)
        return
    with pytest.raises((TypeError, ValueError, OverflowError, UnicodeError)):
        _tigerops.DbExecute(*args)


def test_a_db_execute_made_without_init_raises_when_called():
    """Bug 6: DbExecute.__new__ without __init__, then a call, segfaulted."""
    out = assert_clean_exit(isolated(
        "import _tigerops, tigerops\n"
        "d = _tigerops.DbExecute.__new__(_tigerops.DbExecute)\n"
        "for traced in (False, True):\n"
        "    try:\n"
        "        if traced:\n"
        "            with tigerops.span('x'):\n"
        "                d(None, 'SELECT 1', ())\n"
        "        else:\n"
        "            d(None, 'SELECT 1', ())\n"
        "    except (TypeError, RuntimeError, ValueError) as e:\n"
        "        print('raised', type(e).__name__)\n"
        "    else:\n"
        "        print('no error')\n"
        "print(type(d.__doc__).__name__)\n"
        "del d\n"
        "print('alive')\n"), "uninitialised DbExecute")
    lines = out.split("\n")
    assert lines[0].startswith("raised ") and lines[1].startswith("raised "), out
    assert "alive" in lines


def test_init_twice_replaces_the_wrapped_callable():
    first, second = [], []
    d = _tigerops.DbExecute(lambda *a: first.append(a), 0, "sqlite", "", "", 0, "")
    d.__init__(lambda *a: second.append(a), 0, "postgresql", "db", "h", 5432, "")
    d(None, "SELECT 1", ())
    assert not first and len(second) == 1


@pytest.mark.parametrize("call", ["positional", "tuple", "keywords", "sqlcommenter"])
def test_every_call_shape_spans_the_statement_and_passes_the_arguments_on(receiver, unique, call, monkeypatch):
    """SQLAlchemy calls positionally (vectorcall, no argument tuple); a
    functools.partial or f(*args) comes as a tuple, and keywords as a dict:
    each is one span, and the original gets what the caller passed (with
    TIGEROPS_SQLCOMMENTER, the statement carrying the traceparent)."""
    import functools
    if call == "sqlcommenter":
        monkeypatch.setenv("TIGEROPS_SQLCOMMENTER", "true")
        _tigerops.config_reload()
    got = []

    def original(cursor, statement, parameters, context=None):
        got.append((cursor, statement, parameters, context))
        return "result"

    wrapper = _tigerops.DbExecute(original, 0, "sqlite", "main", "", 0, "sqlite://")
    statement = "SELECT title FROM articles_%s WHERE id = ?" % call
    cursor, context = NoRowcount(), object()
    try:
        with tigerops.span(unique):
            if call == "tuple":
                result = functools.partial(wrapper, cursor)(statement, (7,), context)
            elif call == "keywords":
                result = wrapper(cursor, statement, (7,), context=context)
            else:
                result = wrapper(cursor, statement, (7,), context)
    finally:
        if call == "sqlcommenter":
            monkeypatch.delenv("TIGEROPS_SQLCOMMENTER")
            _tigerops.config_reload()
    assert result == "result" and len(got) == 1
    assert got[0][0] is cursor and got[0][2] == (7,) and got[0][3] is context
    if call == "sqlcommenter":
        assert got[0][1].startswith(statement + " /*traceparent='00-"), got[0][1]
    else:
        assert got[0][1] is statement
    [span] = children(receiver, unique)
    assert span["name"] == "SELECT articles_" + call
    assert span["attributes"]["db.query.text"] == statement


FULL_TABLE_CHILD = r"""
import sqlite3, sys
import _tigerops, tigerops
from flask import Flask

def do_execute(cursor, statement, parameters, context=None):
    cursor.execute(statement, parameters)

conn = getattr(sqlite3.connect, "__wrapped__", sqlite3.connect)(":memory:")
conn.executescript(%(schema)r)
execute = _tigerops.DbExecute(do_execute, 0, "sqlite", "main", "", 0, "sqlite://")
cur = conn.cursor()
# Each distinct statement interns its text, traced or only measured (as
# here, outside any span: no spans to flood the queue): 3,000 fill the table.
for i in range(3000):
    execute(cur, "SELECT %%d AS column_%%d" %% (i, i), ())
with tigerops.span(%(name)r):
    execute(cur, "SELECT title FROM articles WHERE author_id = ?", (1,))
app = Flask("late")
app.route("/late/<int:n>", endpoint="late_view")(lambda n: str(n))
assert app.test_client().get("/late/7").status_code == 200
_tigerops.shutdown(5000)
"""


def test_statements_and_routes_first_seen_after_the_intern_table_filled_keep_their_attributes(receiver, unique):
    """Past the intern table's bound a statement's and a route's strings
    are the agent's own, copied into each span rather than pointed at:
    every attribute is still there, with the same values."""
    result = isolated(FULL_TABLE_CHILD % {"schema": SCHEMA, "name": unique},
                      TIGEROPS_EXPORTER="otlp", TIGEROPS_ENDPOINT=receiver.endpoint,
                      TIGEROPS_SERVICE_NAME="intern-full", TIGEROPS_LOG_LEVEL="info",
                      OTEL_BSP_MAX_QUEUE_SIZE="65536", timeout=120)
    assert_clean_exit(result, "child")
    assert "interned strings full" in result[2], result[2][-2000:]
    spans = receiver.wait_for_spans(lambda s: s["name"] in (unique, "GET /late/<int:n>"), count=2)
    parent = next(s for s in spans if s["name"] == unique)
    select = next(s for s in spans if s["parentSpanId"] == parent["spanId"])
    assert select["name"] == "SELECT articles"
    attrs = select["attributes"]
    assert attrs["db.system.name"] == "sqlite" and attrs["db.namespace"] == "main"
    assert attrs["db.operation.name"] == "SELECT" and attrs["db.collection.name"] == "articles"
    assert attrs["db.query.text"] == "SELECT title FROM articles WHERE author_id = ?"
    assert attrs["db.connection_string"] == "sqlite://"
    route = next(s for s in spans if s["name"] == "GET /late/<int:n>")["attributes"]
    assert route["http.route"] == "/late/<int:n>" and route["flask.endpoint"] == "late_view"
    assert route["code.function"] == "<lambda>" and route["code.namespace"] == "__main__", route


def old_direct_mapped_slot(statement):
    """The slot the statement cache gave a statement before it had ways:
    one entry per slot, chosen by address."""
    h = id(statement) >> 4
    return (h ^ (h >> 9)) % 128


def test_hot_statements_are_made_once_even_when_their_addresses_share_a_slot(receiver, unique, db):
    """Eight statements in turn, two of them at addresses that shared a slot
    of the one-way cache: there the two evicted each other on every call and
    each call normalised its statement again (~12,000 instructions). The
    cache's sets have eight ways, so eight statements never evict one
    another, wherever they are."""
    conn, (execute, _, _) = db
    cur = conn.cursor()
    by_slot = {}
    candidates = ["SELECT title FROM articles WHERE id = %d" % i for i in range(1000)]
    for s in candidates:
        by_slot.setdefault(old_direct_mapped_slot(s), []).append(s)
    pair = next(group[:2] for group in by_slot.values() if len(group) >= 2)
    others = [s for s in candidates if old_direct_mapped_slot(s) != old_direct_mapped_slot(pair[0])][:6]
    statements = pair + others
    assert len(statements) == 8
    with tigerops.span(unique):
        for _ in range(10):
            for s in statements:
                execute(cur, s, ())
    assert execute.statements_made == 8
    assert len(children(receiver, unique)) == 80


def test_the_statement_cache_is_bounded_and_reuses_its_entries(db):
    """More statements in turn than the cache holds (128): each is made
    again after its entry went to another, and memory stays bounded."""
    conn, (execute, _, _) = db
    cur = conn.cursor()
    statements = ["SELECT title FROM articles WHERE id = %d" % i for i in range(300)]
    with tigerops.span("bounded"):
        for _ in range(2):
            for s in statements:
                execute(cur, s, ())
    assert execute.statements_made > 300
