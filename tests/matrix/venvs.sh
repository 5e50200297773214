#!/usr/bin/env bash
# Creates or refreshes the version-matrix venvs: build/matrix/<name> for each
# tests/matrix/<name>.txt (or only the names given), made from the pyenv
# interpreter the name says (py39 -> /root/.pyenv/versions/3.9.*) and filled
# with exactly the hash-pinned lock (pip install --require-hashes). A venv
# whose stamp holds the lock's sha256 is reused as it is; pip's download
# cache makes a rebuild cheap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${TIGEROPS_MATRIX_DIR:-$root/build/matrix}
pyenv=${PYENV_ROOT:-/root/.pyenv}
mkdir -p "$out"

names=("$@")
if [ ${#names[@]} = 0 ]; then
  for lock in "$here"/py*.txt; do names+=("$(basename "$lock" .txt)"); done
fi

interpreter() {  # py312 -> newest /root/.pyenv/versions/3.12.*/bin/python3
  local minor=${1#py3}
  ls -d "$pyenv"/versions/3."$minor".*/bin/python3 2>/dev/null | sort -V | tail -1
}

build() {
  local name=$1 lock=$here/$1.txt venv=$out/$1 python sum
  [ -f "$lock" ] || { echo "$name: no lock $lock" >&2; return 1; }
  python=$(interpreter "$name")
  [ -n "$python" ] || { echo "$name: no interpreter for $name under $pyenv/versions" >&2; return 1; }
  sum="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.lock-sha256" 2>/dev/null)" = "$sum" ]; then
    echo "$name: up to date ($venv)"
    return 0
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv"
  # Only the lock: --require-hashes refuses anything unpinned or unhashed.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock" \
      >"$out/$name.pip.log" 2>&1 || { echo "$name: pip install failed:" >&2; tail -20 "$out/$name.pip.log" >&2; return 1; }
  echo "$sum" >"$venv/.lock-sha256"
  echo "$name: built ($("$venv/bin/python" -V), $venv)"
}

pids=() failed=0
for name in "${names[@]}"; do build "$name" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
exit $failed
