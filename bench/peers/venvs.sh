#!/usr/bin/env bash
# Makes the peer-benchmark venvs: build/peers/<agent> for each
# bench/peers/<agent>.txt (bare, otel, sentry, ddtrace; or only the names
# given), all from ONE pyenv interpreter (CPython 3.11.* if present, else
# 3.12.*) so every agent runs on the same interpreter and the same
# Flask/SQLAlchemy/Jinja2/redis-py/gunicorn (common.in). Each venv holds
# exactly its hash-pinned lock (pip install --require-hashes); a venv whose
# stamp matches the lock and interpreter is reused. TigerOps needs no venv of
# its own: it runs in the bare venv from the build prefix (LD_PRELOAD).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${TIGEROPS_PEERS_DIR:-$root/build/peers}
pyenv=${PYENV_ROOT:-/root/.pyenv}
mkdir -p "$out"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(bare otel sentry ddtrace)

python=${TIGEROPS_PEERS_PYTHON:-}
if [ -z "$python" ]; then
  for minor in 11 12; do
    python=$(ls -d "$pyenv"/versions/3."$minor".*/bin/python3 2>/dev/null | sort -V | tail -1)
    [ -z "$python" ] || break
  done
fi
[ -n "$python" ] || { echo "no CPython 3.11 or 3.12 under $pyenv/versions" >&2; exit 1; }

build() {
  local name=$1 lock=$here/$1.txt venv=$out/$1 sum
  [ -f "$lock" ] || { echo "$name: no lock $lock" >&2; return 1; }
  sum="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.lock-sha256" 2>/dev/null)" = "$sum" ]; then
    echo "$name: up to date ($venv)"
    return 0
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock" \
      >"$out/$name.pip.log" 2>&1 || { echo "$name: pip install failed:" >&2; tail -20 "$out/$name.pip.log" >&2; return 1; }
  echo "$sum" >"$venv/.lock-sha256"
  echo "$name: built ($("$venv/bin/python" -V), $venv)"
}

pids=() failed=0
for name in "${names[@]}"; do build "$name" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
exit $failed
