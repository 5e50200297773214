"""Flask + SQLAlchemy 2.0 (typed declarative models, Session.execute and
Session.scalars with select(), insertmanyvalues bulk inserts) on the
database named by DATABASE_URL."""
import asyncio
import os

from flask import Flask, jsonify
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session

import tigerops

from sqla2_models import Author, Book, seed

URL = os.environ["DATABASE_URL"]
seed(URL)
engine = create_engine(URL)
with engine.connect():
    pass  # the dialect's first-connect queries run here, not in a traced request
app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/select")
def select_route():
    with Session(engine) as s:
        author = s.execute(select(Author).where(Author.name != "literal-secret", Author.id == 2)).scalar_one()
        titles = s.scalars(select(Book.title).where(Book.author_id.in_([1, 2, 3]))).all()
    return jsonify(author=author.id, n=len(titles))


@app.route("/bulk/<int:n>")
def bulk(n):
    """ORM bulk insert with RETURNING: insertmanyvalues pages."""
    with Session(engine) as s:
        ids = s.scalars(insert(Book).returning(Book.id),
                        [{"title": "secret-bulk-%d" % i, "author_id": 1} for i in range(n)]).all()
        s.commit()
    return jsonify(n=len(ids))


@app.route("/bulk-plain/<int:n>")
def bulk_plain(n):
    """ORM bulk insert without RETURNING: the driver's executemany."""
    with Session(engine) as s:
        s.execute(insert(Book), [{"title": "secret-bulk-%d" % i, "author_id": 1} for i in range(n)])
        s.commit()
    return jsonify(n=n)


@app.route("/unit-of-work/<int:n>")
def unit_of_work(n):
    """Session.add_all + flush: the unit of work's ordered insertmanyvalues."""
    with Session(engine) as s:
        s.add_all([Book(title="secret-bulk-%d" % i, author_id=2) for i in range(n)])
        s.flush()
        ids = [b.id for b in s.new] + [1]
        s.rollback()
    return jsonify(n=len(ids))


@app.route("/loop-in-view")
def loop_in_view():
    """A sync view that runs concurrent coroutines (asyncio.run): the first
    such request switches the process to contextvars halfway through."""
    async def query(i):
        with tigerops.span("task-%d" % i):
            await asyncio.sleep(0.005)  # both tasks are inside their blocks now
            with Session(engine) as s:
                s.scalars(select(Author.id).where(Author.id == i)).all()

    async def main():
        await asyncio.gather(query(1), query(2))

    asyncio.run(main())
    with Session(engine) as s:
        s.scalars(select(Book.id).where(Book.id == 1)).all()
    return "ok"


@app.route("/broken")
def broken():
    with Session(engine) as s:
        s.execute(text("SELECT no_such_column FROM authors2"))
    return "unreachable"
