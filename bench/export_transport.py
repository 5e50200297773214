"""Exporter-thread cost per span, OTLP/HTTP protobuf vs OTLP/gRPC, in
instructions (callgrind, deterministic):

    /usr/bin/python3 bench/export_transport.py [--prefix INSTALL_PREFIX]

Makes N server-like spans (a dozen attributes each, through the Python
API: Flask requests under callgrind take too long) under the agent, exporting to the test receiver (tests/receiver, node; `npm ci` first)
over each transport, plain and gzip. Only otlp_export (export.c: encode,
frame/compress, send, wait for the answer) is counted, with
--toggle-collect; two runs of N1 and N2 requests give the marginal cost per
span, batch and connection costs included. Not a timed test."""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

CHILD = r"""
import sys, tigerops, _tigerops
from tigerops import Span
attrs = {"http.request.method": "GET", "http.route": "/hello/<name>", "url.path": "/hello/world",
         "url.query": "a=1", "url.scheme": "http", "server.address": "127.0.0.1", "server.port": 8000,
         "client.address": "127.0.0.1", "network.protocol.version": "1.1", "user_agent.original": "bench",
         "http.response.status_code": 200, "flask.endpoint": "hello"}
for i in range(int(sys.argv[1])):
    with Span("GET /hello/<name>", _tigerops.KIND_SERVER, attrs):
        pass
assert tigerops.flush(600000)
"""


def instructions(prefix, env, n):
    out = subprocess.run(["valgrind", "--tool=callgrind", "--fair-sched=yes", "--callgrind-out-file=/dev/null",
                          "--toggle-collect=otlp_export", sys.executable, "-c", CHILD, str(n)],
                         env=env, capture_output=True, text=True, timeout=3600)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or not m:
        raise SystemExit("callgrind run failed:\n" + out.stderr[-3000:])
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=os.path.join(ROOT, "build", "ci", "install"))
    ap.add_argument("--n1", type=int, default=512)
    ap.add_argument("--n2", type=int, default=2048)
    args = ap.parse_args()
    os.environ["TIGEROPS_TEST_PREFIX"] = args.prefix
    from agent import agent_env
    from grpc_receiver import GrpcReceiver
    with GrpcReceiver() as receiver:
        for protocol, endpoint in (("http/protobuf", receiver.endpoint), ("grpc", receiver.grpc_endpoint)):
            for compression in ("none", "gzip"):
                env = agent_env(None, OTEL_EXPORTER_OTLP_PROTOCOL=protocol, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
                                OTEL_EXPORTER_OTLP_COMPRESSION=compression, OTEL_BSP_SCHEDULE_DELAY="600000",
                                OTEL_BSP_MAX_EXPORT_BATCH_SIZE="512", PYTHONHASHSEED="0")
                env["LD_PRELOAD"] = os.path.join(args.prefix, "lib", "libtigerops.so")
                i1 = instructions(args.prefix, env, args.n1)
                i2 = instructions(args.prefix, env, args.n2)
                print("%-14s %-5s %8.0f instructions/span (otlp_export, %d->%d spans: %d -> %d)"
                      % (protocol, compression, (i2 - i1) / (args.n2 - args.n1), args.n1, args.n2, i1, i2), flush=True)
        got = len(receiver.spans())
        print("spans received: %d (expected %d)" % (got, 4 * (args.n1 + args.n2)))


if __name__ == "__main__":
    main()
