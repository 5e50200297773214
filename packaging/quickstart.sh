#!/usr/bin/env bash
# Quick start: install the build and test dependencies (Debian 12, as root),
# build and install TigerOps into ./build/ci/install, then run the demo shop
# (packaging/demo: Flask app factory, Flask-SQLAlchemy on SQLite, Flask-Caching
# on Redis, a Celery task on a Redis broker) under the agent and print the
# trace trees it produced.
#
#   bash packaging/quickstart.sh               install, build, run the demo
#   bash packaging/quickstart.sh --no-install  only run the demo, with the install in
#                                              $TIGEROPS_TEST_PREFIX (default build/ci/install)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
install=1
[ "${1:-}" = --no-install ] && install=0

prefix=$root/build/ci/install
if [ $install = 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $(grep -v '^#' .ci/apt-packages.txt) >/dev/null
  else
    echo "not root: skipping apt-get (run as root on a fresh machine)" >&2
  fi
  mkdir -p build/ci/plain
  autoreconf -fi >/dev/null 2>&1
  (cd build/ci/plain && "$root/configure" -q --prefix="$prefix" && make -s -j"$(nproc)" >/dev/null && make -s install >/dev/null)
  echo "built and installed into $prefix"
else
  prefix=${TIGEROPS_TEST_PREFIX:-$prefix}
fi
run=$prefix/bin/tigerops-run
[ -x "$run" ] || { echo "no TigerOps install at $prefix (run without --no-install first)" >&2; exit 1; }

# Debian's interpreter, which has the apt-installed Flask, Celery and gunicorn.
py=/usr/bin/python3
free_port() { $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Polls until "$@" succeeds, for at most $1 seconds: no fixed sleeps.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

tmp=$(mktemp -d /tmp/tigerops-demo.XXXXXX)
pids=()
stop_all() {
  # SIGTERM: gunicorn and the Celery worker shut down warm, and the agent's
  # exit flush prints whatever is still buffered.
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT

# A free port may be taken again between our probe and redis-server's bind,
# by another demo running side by side (the test matrix does), whose Redis
# would then answer our ping and hold our cache. So the port counts only once
# the Redis answering on it reports our redis-server's pid.
redis_is() { [ "$(redis-cli -p "$2" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$1" ]; }
ours_or_gone() { redis_is "$1" "$2" || ! kill -0 "$1" 2>/dev/null; }
start_redis() {
  local attempt pid
  for attempt in 1 2 3 4 5; do
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$tmp/redis.log" 2>&1 &
    pid=$!
    # Ours or gone: a redis-server that lost the port exits at once.
    if wait_for 10 ours_or_gone "$pid" "$redis_port" && redis_is "$pid" "$redis_port"; then
      pids+=("$pid"); return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  done
  cat "$tmp/redis.log"; echo "redis-server did not start" >&2; exit 1
}
start_redis
export REDIS_URL=redis://127.0.0.1:$redis_port/0 SHOP_DB=$tmp/shop.db PYTHONPATH=$root/packaging/demo
export PYTHONDONTWRITEBYTECODE=1 OTEL_BSP_SCHEDULE_DELAY=50 TIGEROPS_EXCLUDED_URLS=/health
unset LD_PRELOAD
cd "$root/packaging/demo"

$py -m flask --app shop init-db

echo "starting: tigerops-run --exporter console --service shop-worker celery -A make_celery worker --pool solo"
"$run" --exporter console --service shop-worker \
  $py -m celery -A make_celery worker --pool solo --without-gossip --without-mingle --without-heartbeat \
  -l warning >"$tmp/worker.log" 2>&1 &
pids+=($!)
echo "starting: tigerops-run --exporter console --service shop gunicorn -w 2 'shop:create_app()'"
"$run" --exporter console --service shop \
  $py -m gunicorn -w 2 -b 127.0.0.1:0 'shop:create_app()' >"$tmp/web.log" 2>&1 &
pids+=($!)
# Port 0: the kernel picks a port no one else holds, and gunicorn logs it.
listening() { grep -m1 -o 'Listening at: http://127\.0\.0\.1:[0-9]*' "$tmp/web.log"; }
wait_for 30 listening || { cat "$tmp/web.log"; echo "gunicorn did not start" >&2; exit 1; }
base=$(listening | sed 's/^Listening at: //')
wait_for 30 curl -sf "$base/health" || { cat "$tmp/web.log"; echo "gunicorn did not start" >&2; exit 1; }

# Shows each request as "METHOD PATH -> status body" (the body cut short).
request() {
  local method=$1 path=$2; shift 2
  local answer
  answer=$(curl -s -X "$method" -w '\n%{http_code}' "$@" "$base$path")
  local note=
  case "$*" in *traceparent:*) note="  (sent with a traceparent: an upstream service's trace)" ;; esac
  printf '  %-4s %-12s -> %s %.70s%s\n' "$method" "$path" "${answer##*$'\n'}" \
    "$(printf '%s' "${answer%$'\n'*}" | head -n 1)" "$note"
  last_body=${answer%$'\n'*}
}
echo "requests:"
# A cache miss (the product comes from SQLite), then a hit from Redis, this
# time as part of a trace begun upstream (an incoming W3C traceparent).
request GET /products/1
request GET /products/1 -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
# An order: SQL, then a Celery task the worker runs (more SQL there).
json="Content-Type: application/json"
request POST /orders -H "$json" -H "X-Customer: 2" -d '{"product_id": 1, "quantity": 2}'
task=$(printf '%s' "$last_body" | $py -c 'import json, sys; print(json.load(sys.stdin)["task"])')
# An unhandled exception: the kettle is out of stock.
request POST /orders -H "$json" -d '{"product_id": 2, "quantity": 1}'

task_done() { redis-cli -p "$redis_port" get "celery-task-meta-$task" | grep -q '"SUCCESS"'; }
wait_for 30 task_done || { cat "$tmp/worker.log"; echo "the Celery task did not finish" >&2; exit 1; }
echo "  Celery task $task: SUCCESS"
stop_all

echo
echo "traces printed by the agent (console exporter), the worker's part of a trace under the request's:"
# Each process prints a trace as "tigerops trace ID" and one line per span;
# the worker's trees go under the web trace they continue.
awk '
  /^tigerops trace / { id = $3; svc = (FILENAME ~ /worker\.log$/) ? "shop-worker" : "shop"; in_trace = 1
                       cur = text[id, svc] $0 "  (" svc ")\n"; text[id, svc] = cur
                       if (svc == "shop" && !(id in seen)) { seen[id] = 1; order[++n] = id }
                       next }
  in_trace && /^  +[^ ].*  (UNSPECIFIED|INTERNAL|SERVER|CLIENT|PRODUCER|CONSUMER)  [0-9.]+ ms/ {
                       cur = cur $0 "\n"; text[id, svc] = cur; next }
  { in_trace = 0 }
  END {
    for (i = 1; i <= n; i++) {
      id = order[i]; printf "%s", text[id, "shop"]
      if ((id, "shop-worker") in text) { printf "%s", text[id, "shop-worker"]; delete text[id, "shop-worker"] }
    }
    for (k in text) { split(k, part, SUBSEP); if (part[2] == "shop-worker") printf "%s", text[k] }
  }' "$tmp/worker.log" "$tmp/web.log"
