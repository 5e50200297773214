"""Flask app for the memory test: a hello route and a route with a few SQL
statements (SQLAlchemy Core on an in-memory SQLite), no agent code."""
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

engine = create_engine("sqlite://", future=True, poolclass=StaticPool,
                       connect_args={"check_same_thread": False})
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price INTEGER)"))
    conn.execute(text("INSERT INTO items (name, price) VALUES (:n, :p)"),
                 [{"n": "item-%d" % i, "p": i * 10} for i in range(20)])

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/hello/<name>")
def hello(name):
    return "hello " + name


@app.route("/items/<int:item_id>")
def item(item_id):
    with engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": item_id % 20 + 1}).scalar()
        total = conn.execute(text("SELECT SUM(price) FROM items WHERE price > :p"), {"p": item_id % 50}).scalar()
        count = conn.execute(text("SELECT COUNT(*) FROM items")).scalar()
    return "%s %s %s" % (name, total, count)
