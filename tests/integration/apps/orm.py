"""Flask + SQLAlchemy 1.4 (Core, ORM, 2.0-style select) on the database
named by DATABASE_URL (SQLite in memory by default)."""
import os

from flask import Flask, jsonify
from sqlalchemy import Column, ForeignKey, Integer, String, create_engine, select, text
from sqlalchemy.orm import Session, declarative_base, relationship

Base = declarative_base()


class Author(Base):
    __tablename__ = "authors"
    id = Column(Integer, primary_key=True)
    name = Column(String(100))
    books = relationship("Book", lazy="select")


class Book(Base):
    __tablename__ = "books"
    id = Column(Integer, primary_key=True)
    title = Column(String(100))
    author_id = Column(Integer, ForeignKey("authors.id"))


engine = create_engine(os.environ.get("DATABASE_URL", "sqlite://"), future=True)
Base.metadata.drop_all(engine)
Base.metadata.create_all(engine)
with Session(engine) as s:
    for i in range(6):
        s.add(Author(id=i + 1, name="secret-author-%d" % (i + 1),
                     books=[Book(title="secret-title-%d" % (i + 1))]))
    s.commit()

app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/core/<int:author_id>")
def core(author_id):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name FROM authors WHERE id = :id AND name != 'literal-secret'"),
                            {"id": author_id}).fetchall()
    return jsonify(n=len(rows))


@app.route("/orm")
def orm():
    with Session(engine) as s:
        authors = s.execute(select(Author).where(Author.id.in_([1, 2, 3, 4, 5, 6]))).scalars().all()
        titles = [b.title for a in authors for b in a.books]  # lazy loads: the N+1 pattern
    return jsonify(n=len(titles))


@app.route("/twice")
def twice():
    with Session(engine) as s:
        for i in (1, 2):
            s.get(Author, i)
    return "ok"


@app.route("/many")
def many():
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO books (title, author_id) VALUES (:t, :a)"),
                     [{"t": "secret-bulk-%d" % i, "a": 1} for i in range(4)])
    return "ok"


@app.route("/broken")
def broken():
    with engine.connect() as conn:
        conn.execute(text("SELECT no_such_column FROM authors"))
    return "unreachable"


@app.route("/twice-then-fail")
def twice_then_fail():
    with Session(engine) as s:
        for i in (1, 2):
            s.get(Author, i)
    raise ValueError("failed after two lookups")


# One distinct statement per n, run five times (the N+1 threshold) and slow
# enough in SQLite that the GIL is released while other threads run theirs.
_COUNT_UP = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) "
             "SELECT count(*) AS col_%d FROM c")


@app.route("/two-shapes")
def two_shapes():
    # Two N+1 shapes in one request: the span names the first, with its count.
    with engine.connect() as conn:
        for i in range(6):
            conn.execute(text("SELECT name FROM authors WHERE id = :id"), {"id": i}).fetchall()
        for i in range(8):
            conn.execute(text("SELECT title FROM books WHERE id = :id"), {"id": i}).fetchall()
    return "ok"


@app.route("/distinct/<int:n>")
def distinct(n):
    with engine.connect() as conn:
        for _ in range(5):
            conn.execute(text(_COUNT_UP % n)).fetchall()
    return "ok"


@app.route("/show")
def show():
    with engine.connect() as conn:
        rows = conn.execute(text("SHOW server_version")).fetchall()
    return jsonify(n=len(rows))
