#!/usr/bin/env bash
# Quick start: install the build and test dependencies (Debian 12, as root),
# build and install TigerOps into ./build/ci/install, then run a real Flask
# app under gunicorn with the agent and print the traces it produced.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(grep -v '^#' .ci/apt-packages.txt) >/dev/null
else
  echo "not root: skipping apt-get (run as root on a fresh machine)" >&2
fi
prefix=$root/build/ci/install
mkdir -p build/ci/plain
autoreconf -fi >/dev/null 2>&1
(cd build/ci/plain && "$root/configure" -q --prefix="$prefix" && make -s -j"$(nproc)" >/dev/null && make -s install >/dev/null)
echo "built and installed into $prefix"

port=18765
log=$(mktemp)
echo "starting: tigerops-run --exporter console gunicorn -w 2 shop:app"
PYTHONPATH=$root/packaging/demo "$prefix/bin/tigerops-run" --exporter console --service shop \
  /usr/bin/python3 -m gunicorn -w 2 -b 127.0.0.1:$port shop:app >"$log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
curl -s "http://127.0.0.1:$port/orders/7" >/dev/null
curl -s -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" "http://127.0.0.1:$port/orders/8" >/dev/null
curl -s -X POST "http://127.0.0.1:$port/orders/9/cancel" >/dev/null
curl -s "http://127.0.0.1:$port/no-such-page" >/dev/null
kill -TERM $server
wait $server || true
echo
echo "traces printed by the agent (console exporter):"
grep -E "^(tigerops trace|  )" "$log"
rm -f "$log"
