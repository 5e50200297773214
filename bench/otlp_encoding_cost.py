"""Exporter-thread instructions per span, OTLP/protobuf vs OTLP/JSON.

    /usr/bin/python3 bench/otlp_encoding_cost.py [--prefix INSTALL_PREFIX] [--requests N]

Runs bench/wsgi_loop.py's in-process Flask loop (one server span with the
usual dozen attributes per request) under callgrind, once per protocol,
exporting to bench/otlp_sink.py, with gzip off and on, and prints the
inclusive instruction counts per span of the batch encoder
(tgo__otlp_encode_traces / tgo__otlp_json_encode_traces) and of the whole
export of a batch (otlp_export: encode, gzip, POST) from
callgrind_annotate. Instruction counts are repeatable here; CPU time is
not (see DESIGN.md). Not a timed test."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from wsgi_loop import CHILD, ROOT  # noqa: E402

FUNCTIONS = ("tgo__otlp_encode_traces", "tgo__otlp_json_encode_traces", "otlp_export", "tgo__gzip")


def inclusive_costs(env, n):
    with tempfile.TemporaryDirectory(prefix="tgo-callgrind-") as tmp:
        out = os.path.join(tmp, "cg.out")
        # --fair-sched=yes: the exporter thread interleaves as on two cores (cost_profile.py)
        run = subprocess.run(["valgrind", "--tool=callgrind", "--fair-sched=yes",
                              "--callgrind-out-file=" + out, sys.executable,
                              "-c", CHILD, str(n)], env=env, capture_output=True, text=True)
        result = re.search(r"RESULT \S+ \S+ (\d+)", run.stdout)
        if not result:
            raise RuntimeError(run.stdout + run.stderr[-3000:])
        exported = int(result.group(1))
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                             capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in ann.splitlines():
        # Each function is listed twice, by file and by file [object]: the latter only.
        m = re.match(r"\s*([\d,]+) (?:\([^)]*\))?\s*\S*:(\S+) \[", line)
        if m and m.group(2) in FUNCTIONS:
            costs[m.group(2)] = costs.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return costs, exported


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=os.path.join(ROOT, "build", "ci", "install"))
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    lib = os.path.join(args.prefix, "lib", "libtigerops.so")
    sink = subprocess.Popen([sys.executable, os.path.join(HERE, "otlp_sink.py"), "0"], stdout=subprocess.PIPE,
                            text=True)
    port = int(sink.stdout.readline().split()[1])
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TIGEROPS_", "OTEL_"))}
        base.pop("LD_PRELOAD", None)
        print("exporter-thread instructions per span (callgrind, inclusive), %d requests of one span"
              % args.requests)
        print("  %-14s %-5s %12s %12s %10s" % ("protocol", "gzip", "encode/span", "export/span", "gzip/span"))
        for compression in ("none", "gzip"):
            for protocol in ("http/protobuf", "http/json"):
                env = dict(base, LD_PRELOAD=lib, TIGEROPS_ENDPOINT="http://127.0.0.1:%d" % port,
                           TIGEROPS_SAMPLE_RATE="1.0", OTEL_BSP_MAX_QUEUE_SIZE="65536", PYTHONHASHSEED="0",
                           OTEL_EXPORTER_OTLP_PROTOCOL=protocol, OTEL_EXPORTER_OTLP_COMPRESSION=compression)
                costs, exported = inclusive_costs(env, args.requests)
                if not exported:
                    sys.exit("nothing exported: is %s built and installed?" % lib)
                encoder = "tgo__otlp_json_encode_traces" if protocol == "http/json" else "tgo__otlp_encode_traces"
                print("  %-14s %-5s %12.0f %12.0f %10.0f" % (
                    protocol, compression, costs.get(encoder, 0) / exported, costs.get("otlp_export", 0) / exported,
                    costs.get("tgo__gzip", 0) / exported))
    finally:
        sink.terminate()


if __name__ == "__main__":
    main()
