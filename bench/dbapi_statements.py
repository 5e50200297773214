"""Benchmark: CPU per SQL statement through a DB-API driver used directly
(sqlite3, in memory, `cursor.execute("SELECT ... WHERE id = ?")` in a loop
inside one Flask request), bare vs under the agent (OTLP export on, every
statement a span).

    /usr/bin/python3 bench/dbapi_statements.py [--prefix P] [--statements N] [--callgrind]

Prints µs per statement and the agent's extra µs; with --callgrind the
instructions per statement (fixed hash seed: randomised hashing alone moves
counts)."""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

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


def run(env, n):
    out = subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env, capture_output=True, text=True,
                         check=True)
    m = re.search(r"RESULT (\S+) (\S+)", out.stdout)
    return float(m.group(1)), m.group(2) == "True"


def instructions(env, n):
    def total(count):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                              "-c", CHILD, str(count)], env=dict(env, PYTHONHASHSEED="0"), capture_output=True,
                             text=True)
        return int(re.search(r"Collected : (\d+)", out.stderr).group(1))
    return (total(3 * n) - total(n)) / (2 * n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=os.path.join(ROOT, "build", "ci", "install"))
    ap.add_argument("--statements", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    lib = os.path.join(args.prefix, "lib", "libtigerops.so")
    sink = subprocess.Popen([sys.executable, os.path.join(HERE, "otlp_sink.py"), "0"], stdout=subprocess.PIPE,
                            text=True)
    port = int(sink.stdout.readline().split()[1])
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TIGEROPS_", "OTEL_"))}
        base.pop("LD_PRELOAD", None)
        agent = dict(base, LD_PRELOAD=lib, TIGEROPS_ENDPOINT="http://127.0.0.1:%d" % port,
                     OTEL_BSP_MAX_QUEUE_SIZE="100000")
        bare, traced = [], []
        for _ in range(args.rounds):
            bare.append(run(base, args.statements)[0])
            us, ok = run(agent, args.statements)
            if not ok:
                sys.exit("the agent did not trace the app: is %s installed?" % lib)
            traced.append(us)
        b, t = statistics.median(bare), statistics.median(traced)
        print("sqlite3 cursor.execute, in-memory, %d statements x %d rounds (medians)"
              % (args.statements, args.rounds))
        print("  bare:          %6.2f us CPU/statement" % b)
        print("  tigerops+OTLP: %6.2f us CPU/statement" % t)
        print("  overhead:      %6.2f us/statement (best rounds: %.2f)" % (t - b, min(traced) - min(bare)))
        if args.callgrind:
            n = 2000
            ib, ia = instructions(base, n), instructions(agent, n)
            print("  callgrind:     bare %.0f, tigerops %.0f instructions/statement: +%.0f" % (ib, ia, ia - ib))
    finally:
        sink.terminate()


if __name__ == "__main__":
    main()
