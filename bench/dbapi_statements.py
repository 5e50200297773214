"""Benchmark: CPU per SQL statement through a DB-API driver used directly
(sqlite3, in memory, `cursor.execute("SELECT ... WHERE id = ?")` in a loop
inside one Flask request), bare vs under the agent (OTLP export on, every
statement a span).

    /usr/bin/python3 bench/dbapi_statements.py [--prefix P] [--statements N] [--callgrind]

Prints µs per statement and the agent's extra µs; with --callgrind the
instructions per statement (fixed hash seed: randomised hashing alone moves
counts)."""
import sqlite_statements  # the same harness, this child program

CHILD = r"""
import sqlite3, sys, time
from flask import Flask
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
conn.execute("INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')")
app = Flask(__name__)
N = int(sys.argv[1])
result = {}

@app.route("/loop")
def loop():
    cur = conn.cursor()
    for i in range(200):
        cur.execute("SELECT name FROM items WHERE id = ?", (1,)).fetchall()
    t0 = time.process_time()
    for i in range(N):
        cur.execute("SELECT name FROM items WHERE id = ?", (1,)).fetchall()
    result["cpu"] = time.process_time() - t0
    return "ok"

app.test_client().get("/loop").close()
traced = "tigerops" in app.extensions
extra = 0.0
if traced:
    import tigerops
    t0 = time.process_time()
    tigerops.flush(30000)
    extra = time.process_time() - t0
print("RESULT", (result["cpu"] + extra) / N * 1e6, traced)
"""


if __name__ == "__main__":
    sqlite_statements.main(CHILD, "sqlite3 cursor.execute, in-memory")
