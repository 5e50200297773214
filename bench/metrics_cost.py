"""Benchmark: what the HTTP server metrics add to a request, at 100% and at
1% trace sampling.

    /usr/bin/python3 bench/metrics_cost.py [--prefix INSTALL_PREFIX] [--requests N] [--rounds R] [--callgrind]

Runs bench/wsgi_loop.py's in-process hello-world loop (its CHILD) under the
agent with metrics on (OTEL_METRICS_EXPORTER=otlp, the default; exported to
a local sink at the end of the run by the final flush) and off
(OTEL_METRICS_EXPORTER=none: no instrument exists), for each sampling rate,
in fresh processes, interleaved. CPU is process CPU time (all threads);
instructions are callgrind's, all threads, per request. Not a timed test."""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import wsgi_loop  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=os.path.join(ROOT, "build", "ci", "install"))
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    lib = os.path.join(args.prefix, "lib", "libtigerops.so")
    sink = subprocess.Popen([sys.executable, os.path.join(HERE, "otlp_sink.py"), "0"],
                            stdout=subprocess.PIPE, text=True)
    port = int(sink.stdout.readline().split()[1])
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TIGEROPS_", "OTEL_"))}
        base.pop("LD_PRELOAD", None)
        agent = dict(base, LD_PRELOAD=lib, TIGEROPS_ENDPOINT="http://127.0.0.1:%d" % port,
                     OTEL_BSP_MAX_QUEUE_SIZE="65536")
        configs = {}
        for rate in ("1.0", "0.01"):
            for metrics in ("otlp", "none"):
                configs[(rate, metrics)] = dict(agent, TIGEROPS_SAMPLE_RATE=rate, OTEL_METRICS_EXPORTER=metrics)
        cpu = {k: [] for k in configs}
        for _ in range(args.rounds):
            for k, env in configs.items():
                us, traced, _, _ = wsgi_loop.run(env, args.requests)
                if not traced:
                    sys.exit("the agent did not trace the app: is %s built and installed?" % lib)
                cpu[k].append(us)
        print("in-process WSGI, %d requests x %d interleaved rounds" % (args.requests, args.rounds))
        for rate in ("1.0", "0.01"):
            on, off = cpu[(rate, "otlp")], cpu[(rate, "none")]
            print("  sampling %-4s: metrics on  median %6.2f us CPU/request, off %6.2f: +%.2f us (best +%.2f)"
                  % (rate, statistics.median(on), statistics.median(off),
                     statistics.median(on) - statistics.median(off), min(on) - min(off)))
        if args.callgrind:
            n = 1000
            for rate in ("1.0", "0.01"):
                on = wsgi_loop.instructions(configs[(rate, "otlp")], n)
                off = wsgi_loop.instructions(configs[(rate, "none")], n)
                print("  callgrind, sampling %-4s: metrics on %.0f, off %.0f instructions/request: +%.0f"
                      % (rate, on, off, on - off))
    finally:
        sink.terminate()


if __name__ == "__main__":
    main()
