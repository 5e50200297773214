"""Flask async views using asyncio database drivers directly (no
SQLAlchemy): aiosqlite, and psycopg 3's AsyncConnection on the database
named by PG_DSN."""
import os
import tempfile

from flask import Flask, jsonify

import tigerops

app = Flask(__name__)
SQLITE_PATH = os.path.join(tempfile.mkdtemp(prefix="tigerops-aiosqlite-"), "app.db")
PG_DSN = os.environ.get("PG_DSN", "")


@app.route("/health")
def health():
    return "ok"


@app.route("/aiosqlite")
async def aiosqlite_route():
    import aiosqlite
    with tigerops.span("work"):
        async with aiosqlite.connect(SQLITE_PATH) as db:
            await db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
            await db.executemany("INSERT INTO notes (body) VALUES (?)", [("secret-bind-1",), ("secret-bind-2",)])
            async with db.cursor() as cur:
                await cur.execute("SELECT body FROM notes WHERE body != 'literal-secret' AND id > ?", (0,))
                rows = await cur.fetchall()
            try:
                await db.execute("SELECT no_such_column FROM notes")
            except Exception:
                pass
            await db.commit()
    return jsonify(n=len(rows))


@app.route("/pg3-async")
async def pg3_async():
    import psycopg
    with tigerops.span("work"):
        conn = await psycopg.AsyncConnection.connect(PG_DSN)
        try:
            async with conn.cursor() as cur:
                await cur.execute("CREATE TABLE IF NOT EXISTS pg3a_notes (id serial PRIMARY KEY, body text)")
                await cur.executemany("INSERT INTO pg3a_notes (body) VALUES (%s)",
                                      [("secret-bind-3",), ("secret-bind-4",)])
                await cur.execute("SELECT body FROM pg3a_notes WHERE body <> 'literal-secret' AND id > %s", (0,))
                rows = await cur.fetchall()
            try:
                await conn.execute("SELECT no_such_column FROM pg3a_notes")
            except psycopg.Error:
                await conn.rollback()
            await conn.commit()
        finally:
            await conn.close()
    return jsonify(n=len(rows))
