"""Benchmark (b): requests/s of a Flask hello app under gunicorn (1 sync
worker) driven by wrk over loopback, bare vs under the agent with OTLP
export on at 100% sampling. Prints both and the ratio agent/bare.

    /usr/bin/python3 bench/gunicorn_wrk.py [--prefix P] [--seconds 10] [--rounds 3]

Not a timed test: the figures depend on the machine; read the ratio."""
import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APPS = os.path.join(ROOT, "tests", "integration", "apps")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from util import free_port  # noqa: E402 (the one free_port, beside the apps it serves)


def wait_ready(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server not ready: " + url)


def measure(env, seconds):
    port = free_port()
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:%d" % port,
                             "hello:app"], cwd=APPS, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d/hello/bench" % port
        wait_ready(url)
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", url], capture_output=True, check=True)  # warm up
        out = subprocess.run(["wrk", "-t1", "-c4", "-d%ds" % seconds, url], capture_output=True, text=True,
                             check=True).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=os.path.join(ROOT, "build", "ci", "install"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    lib = os.path.join(args.prefix, "lib", "libtigerops.so")
    if not os.path.exists(lib):
        sys.exit("no %s: build and install first (tests/run-all.sh does)" % lib)
    sink = subprocess.Popen([sys.executable, os.path.join(HERE, "otlp_sink.py"), "0"], stdout=subprocess.PIPE,
                            text=True)
    port = int(sink.stdout.readline().split()[1])
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIGEROPS_", "OTEL_"))}
    base.pop("LD_PRELOAD", None)
    base["PYTHONPATH"] = APPS
    agent = dict(base, LD_PRELOAD=lib, TIGEROPS_ENDPOINT="http://127.0.0.1:%d" % port, TIGEROPS_SAMPLE_RATE="1")
    try:
        bare, traced = [], []
        for _ in range(args.rounds):
            bare.append(measure(base, args.seconds))
            traced.append(measure(agent, args.seconds))
        b, t = max(bare), max(traced)
        print("gunicorn 1 sync worker + wrk -t1 -c4, %ds x %d rounds (best round)" % (args.seconds, args.rounds))
        print("  bare:          %8.0f requests/s" % b)
        print("  tigerops+OTLP: %8.0f requests/s" % t)
        print("  ratio agent/bare: %.3f" % (t / b))
    finally:
        sink.terminate()


if __name__ == "__main__":
    main()
