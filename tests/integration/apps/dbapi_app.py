"""Flask app using DB-API drivers directly (no SQLAlchemy): sqlite3,
psycopg2, psycopg 3 and pymysql, on the databases named by PG_DSN and
MYSQL_PORT; and SQLAlchemy on the same drivers, whose statements must stay
one span each."""
import os
import sqlite3
import tempfile

from flask import Flask, jsonify
from sqlalchemy import create_engine, text

app = Flask(__name__)
SQLITE_PATH = os.path.join(tempfile.mkdtemp(prefix="tigerops-dbapi-"), "app.db")
PG_DSN = os.environ.get("PG_DSN", "")
MYSQL_PORT = int(os.environ.get("MYSQL_PORT", "0"))


@app.route("/health")
def health():
    return "ok"


@app.route("/sqlite")
def sqlite_route():
    conn = sqlite3.connect(SQLITE_PATH)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
    cur.executemany("INSERT INTO notes (body) VALUES (?)", [("secret-bind-1",), ("secret-bind-2",)])
    rows = conn.execute("SELECT body FROM notes WHERE body != 'literal-secret' AND id > ?", (0,)).fetchall()
    try:
        cur.execute("SELECT no_such_column FROM notes")
    except sqlite3.OperationalError:
        pass
    conn.commit()
    conn.close()
    return jsonify(n=len(rows))


@app.route("/sqlite-sqlalchemy")
def sqlite_sqlalchemy():
    engine = create_engine("sqlite:///" + SQLITE_PATH)
    with engine.connect() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)"))
        n = len(c.execute(text("SELECT body FROM notes WHERE id > :id"), {"id": 0}).fetchall())
    engine.dispose()
    return jsonify(n=n)


@app.route("/pg2")
def pg2():
    import psycopg2
    conn = psycopg2.connect(PG_DSN)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS pg2_notes (id serial PRIMARY KEY, body text)")
        cur.executemany("INSERT INTO pg2_notes (body) VALUES (%s)", [("secret-bind-3",), ("secret-bind-4",)])
        cur.execute("SELECT body FROM pg2_notes WHERE body <> 'literal-secret' AND id > %s", (0,))
        n = len(cur.fetchall())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT no_such_column FROM pg2_notes")
    except psycopg2.Error:
        conn.rollback()
    conn.commit()
    conn.close()
    return jsonify(n=n)


@app.route("/variants")
def variants():
    """Cursor classes and calls spelled the other ways drivers allow."""
    import psycopg2
    import psycopg2.extras
    import pymysql

    class Notes(sqlite3.Connection):
        pass

    conn = sqlite3.connect(SQLITE_PATH, factory=Notes)
    assert isinstance(conn, Notes)
    conn.execute("SELECT count(*) FROM sqlite_master WHERE name != 'literal-secret'").fetchall()
    conn.close()
    conn = psycopg2.connect(PG_DSN, cursor_factory=psycopg2.extras.RealDictCursor)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 AS one FROM pg_class WHERE relname <> %(name)s", vars={"name": "secret-bind-9"})
        assert cur.fetchone()["one"] == 1
    conn.close()
    conn = pymysql.connect(host="127.0.0.1", port=MYSQL_PORT, user="root", database="app")
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SELECT 1 AS one FROM dual WHERE %s > 0", (7,))
        assert cur.fetchone()["one"] == 1
    conn.close()
    return "ok"


@app.route("/outside")
def outside():
    return "ok"


@app.route("/pg2-sqlalchemy")
def pg2_sqlalchemy():
    engine = create_engine("postgresql+psycopg2://" + os.environ["PG_URL_REST"])
    with engine.connect() as c:
        n = len(c.execute(text("SELECT 1 WHERE 1 > :x"), {"x": 0}).fetchall())
    engine.dispose()
    return jsonify(n=n)


@app.route("/pg3")
def pg3():
    import psycopg
    with psycopg.connect(PG_DSN) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS pg3_notes (id serial PRIMARY KEY, body text)")
            cur.executemany("INSERT INTO pg3_notes (body) VALUES (%s)", [("secret-bind-5",), ("secret-bind-6",)])
        n = len(conn.execute("SELECT body FROM pg3_notes WHERE body <> 'literal-secret' AND id > %s",
                             (0,)).fetchall())
    return jsonify(n=n)


def _mysql():
    import pymysql
    return pymysql.connect(host="127.0.0.1", port=MYSQL_PORT, user="root", database="app")


@app.route("/mysql")
def mysql():
    import pymysql
    conn = _mysql()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS my_notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)")
        cur.executemany("INSERT INTO my_notes (body) VALUES (%s)", [("secret-bind-7",), ("secret-bind-8",)])
        cur.execute("SELECT body FROM my_notes WHERE body <> 'literal-secret' AND id > %s", (0,))
        n = len(cur.fetchall())
        try:
            cur.execute("SELECT no_such_column FROM my_notes")
        except pymysql.Error:
            pass
    conn.commit()
    conn.close()
    return jsonify(n=n)


@app.route("/mysql-sqlalchemy")
def mysql_sqlalchemy():
    engine = create_engine("mysql+pymysql://root@127.0.0.1:%d/app" % MYSQL_PORT)
    with engine.connect() as c:
        n = len(c.execute(text("SELECT 1 FROM dual WHERE 1 > :x"), {"x": 0}).fetchall())
    engine.dispose()
    return jsonify(n=n)
