"""Benchmark: CPU per SQL statement, SQLAlchemy 1.4 Core on in-memory
SQLite, `SELECT ... WHERE id = ?` in a loop inside one Flask request, bare vs
under the agent (OTLP export on, every statement a span).

    /usr/bin/python3 bench/sqlite_statements.py [--prefix P] [--statements N] [--callgrind] [--sample-ratio R]

Prints µs per statement and the agent's extra µs (target: <= 2 µs; the
OpenTelemetry SQLAlchemy instrumentation adds about 34 µs here)."""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import sys, time
from flask import Flask
from sqlalchemy import create_engine, text
engine = create_engine("sqlite://", future=True)
with engine.begin() as c:
    c.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
    c.execute(text("INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')"))
app = Flask(__name__)
N = int(sys.argv[1])
STMT = text("SELECT name FROM items WHERE id = :id")
result = {}

@app.route("/loop")
def loop():
    with engine.connect() as conn:
        for i in range(200):
            conn.execute(STMT, {"id": 1}).fetchall()
        t0 = time.process_time()
        for i in range(N):
            conn.execute(STMT, {"id": 1}).fetchall()
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
stats = {}
if traced:
    import _tigerops
    stats = _tigerops.stats()
print("RESULT", (result["cpu"] + extra) / N * 1e6, traced, stats.get("spans_exported", 0), stats.get("spans_dropped", 0))
"""


def run(child, env, n):
    out = subprocess.run([sys.executable, "-c", child, str(n)], env=env, capture_output=True, text=True,
                         check=True)
    m = re.search(r"RESULT (\S+) (\S+)", out.stdout)
    return float(m.group(1)), m.group(2) == "True"


def instructions(child, env, n):
    """Per statement, from a n- and a 3n-statement run; the hash seed is
    fixed (randomised hashing alone moves counts)."""
    env = dict(env, PYTHONHASHSEED="0")

    def total(count):
        # --fair-sched=yes: the exporter thread interleaves as on two cores (cost_profile.py)
        out = subprocess.run(["valgrind", "--tool=callgrind", "--fair-sched=yes",
                              "--callgrind-out-file=/dev/null", sys.executable,
                              "-c", child, str(count)], env=env, capture_output=True, text=True)
        return int(re.search(r"Collected : (\d+)", out.stderr).group(1))
    return (total(3 * n) - total(n)) / (2 * n)


def main(child=CHILD, title="SQLAlchemy Core + in-memory SQLite"):
    """The benchmark for one child program (bench/dbapi_statements.py runs
    its own through this)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=os.path.join(ROOT, "build", "ci", "install"))
    ap.add_argument("--statements", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--callgrind", action="store_true")
    # Below 1, most requests are not traced: what their statements still
    # cost (metrics are recorded for every statement whatever the sampler).
    ap.add_argument("--sample-ratio", default="1")
    # e.g. OTEL_METRICS_EXPORTER=none: the cost of the statement metrics is the difference.
    ap.add_argument("--agent-env", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    lib = os.path.join(args.prefix, "lib", "libtigerops.so")
    sink = subprocess.Popen([sys.executable, os.path.join(HERE, "otlp_sink.py"), "0"], stdout=subprocess.PIPE,
                            text=True)
    port = int(sink.stdout.readline().split()[1])
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TIGEROPS_", "OTEL_"))}
        base.pop("LD_PRELOAD", None)
        agent = dict(base, LD_PRELOAD=lib, TIGEROPS_ENDPOINT="http://127.0.0.1:%d" % port,
                     OTEL_BSP_MAX_QUEUE_SIZE="100000", OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                     OTEL_TRACES_SAMPLER_ARG=args.sample_ratio)
        agent.update(item.split("=", 1) for item in args.agent_env)
        bare, traced = [], []
        for _ in range(args.rounds):
            bare.append(run(child, base, args.statements)[0])
            us, ok = run(child, agent, args.statements)
            if not ok:
                sys.exit("the agent did not trace the app: is %s installed?" % lib)
            traced.append(us)
        b, t = statistics.median(bare), statistics.median(traced)
        print("%s, %d statements x %d rounds (medians)" % (title, args.statements, args.rounds))
        print("  bare:          %6.2f us CPU/statement" % b)
        print("  tigerops+OTLP: %6.2f us CPU/statement" % t)
        print("  overhead:      %6.2f us/statement (best rounds: %.2f)" % (t - b, min(traced) - min(bare)))
        if args.callgrind:
            n = 2000
            ib, ia = instructions(child, base, n), instructions(child, agent, n)
            print("  callgrind:     bare %.0f, tigerops %.0f instructions/statement: +%.0f" % (ib, ia, ia - ib))
    finally:
        sink.terminate()


if __name__ == "__main__":
    main()
