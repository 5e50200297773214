"""Flask async views (asgiref) on a SQLAlchemy 2.0 async engine
(create_async_engine: aiosqlite, asyncpg or psycopg async, named by
ASYNC_URL; SETUP_URL seeds the same database with a sync driver). NullPool:
asgiref runs each view in an event loop of its own, and async driver
connections belong to the loop that opened them."""
import asyncio
import os

from flask import Flask, jsonify
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

import tigerops
from sqla2_models import Author, Book, seed

seed(os.environ["SETUP_URL"])
engine = create_async_engine(os.environ["ASYNC_URL"], poolclass=NullPool)


async def _first_connect():
    async with engine.connect():
        pass  # the dialect's first-connect queries run here, not in a traced request


asyncio.run(_first_connect())
app = Flask(__name__)


@app.route("/health")
def health():
    return "ok"


@app.route("/async/<int:i>")
async def run_async(i):
    with tigerops.span("outer-%d" % i):
        async with AsyncSession(engine) as s:
            author = (await s.execute(select(Author).where(Author.id == i % 6 + 1))).scalar_one()
            with tigerops.span("inner-%d" % i):
                titles = (await s.scalars(select(Book.title).where(Book.author_id == author.id))).all()
    return jsonify(n=len(titles))


@app.route("/async-broken")
async def broken():
    async with engine.connect() as conn:
        await conn.execute(text("SELECT no_such_column FROM authors2"))
    return "unreachable"
