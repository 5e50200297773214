#!/usr/bin/env bash
# Runs the OpenTelemetry API bridge tests under the oldest and the newest
# opentelemetry-api we support, each in a venv made from pyenv's 3.12 and
# pinned by requirements-<which>.txt (cached in VENVS between runs).
# Usage: run.sh INSTALL_PREFIX [VENVS_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=$(cd "$1" && pwd)
venvs=${2:-$root/build/otelapi-venvs}
python=${TIGEROPS_OTELAPI_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3}
status=0
for which in oldest newest; do
  venv=$venvs/$which
  stamp=$venv/.requirements
  if ! cmp -s "$here/requirements-$which.txt" "$stamp" 2>/dev/null; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q -r "$here/requirements-$which.txt"
    cp "$here/requirements-$which.txt" "$stamp"
  fi
  version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("opentelemetry-api"))')
  echo "otelapi: opentelemetry-api $version"
  TIGEROPS_TEST_PREFIX=$prefix "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    "$root/tests/integration/test_otel_api.py" || status=1
done
exit $status
