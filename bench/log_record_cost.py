"""Logging-thread instructions per Python log record under the agent.

    /usr/bin/python3 bench/log_record_cost.py [--prefix INSTALL_PREFIX] [--records N]

Runs a loop of logger calls under callgrind twice (N and 2N records) per
case and prints (Ir(2N) - Ir(N)) / N: the start-up cancels out. The logger
has one NullHandler and does not propagate, so the count is record creation
plus the agent's factory (trace context fields; copying exported records
into the C queue). The exporter thread never runs during the loop (batch and
queue larger than the loop, long schedule delay) and the process leaves with
os._exit, so no export is counted: that is the exporter thread's work.
Instruction counts are repeatable here; CPU time is not (see DESIGN.md)."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import logging, os, sys
n, level, in_span = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
log = logging.getLogger("bench")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(logging.NullHandler())
def loop():
    for i in range(n):
        log.log(level, "order %s shipped", i)
try:
    import tigerops
except ImportError:
    tigerops = None
if in_span:
    with tigerops.span("bench"):
        loop()
else:
    loop()
sys.stdout.flush()
os._exit(0)
"""

CASES = [
    ("no agent", False, 20, False, {}),
    ("agent, outside a span, INFO (not exported)", True, 20, False, {}),
    ("agent, inside a span, INFO (not exported)", True, 20, True, {}),
    ("agent, outside a span, WARNING exported", True, 30, False, {"OTEL_LOGS_EXPORTER": "otlp"}),
    ("agent, inside a span, WARNING exported", True, 30, True, {"OTEL_LOGS_EXPORTER": "otlp"}),
]


def instructions(env, n, level, in_span):
    with tempfile.TemporaryDirectory(prefix="tgo-callgrind-") as tmp:
        out = os.path.join(tmp, "cg.out")
        # --fair-sched=yes: the exporter thread interleaves as on two cores (cost_profile.py)
        run = subprocess.run(["valgrind", "--tool=callgrind", "--fair-sched=yes",
                              "--callgrind-out-file=" + out, sys.executable, "-c",
                              CHILD, str(n), str(level), "1" if in_span else "0"],
                             env=env, capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(run.stderr[-3000:])
        m = re.search(r"^summary: (\d+)", open(out).read(), re.M)
        return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=os.path.join(ROOT, "build", "dev", "install"))
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()
    lib = os.path.join(args.prefix, "lib", "libtigerops.so")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIGEROPS_", "OTEL_"))
            and k not in ("LD_PRELOAD", "PYTHONPATH")}
    n = args.records
    print("%-48s %12s" % ("case", "Ir/record"))
    for name, agent, level, in_span, extra in CASES:
        env = dict(base)
        if agent:
            env.update({"LD_PRELOAD": lib, "TIGEROPS_ENDPOINT": "http://127.0.0.1:9",
                        "OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100000",
                        "OTEL_BLRP_MAX_QUEUE_SIZE": str(4 * n)}, **extra)
        a = instructions(env, n, level, in_span)
        b = instructions(env, 2 * n, level, in_span)
        print("%-48s %12.0f" % (name, (b - a) / n), flush=True)


if __name__ == "__main__":
    main()
