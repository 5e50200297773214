#!/usr/bin/env bash
# Builds the test suite's OpenTelemetry Collector (main.go here, versions
# pinned by go.mod/go.sum, modules from the Go module proxy) into
#   build/collector/otelcol-tgo        (or $1/otelcol-tgo)
# and does nothing when that binary was built from the same sources and Go:
# a hash of them is kept beside it. Cold (empty module and build caches) it
# takes minutes; the caches (~/go/pkg/mod, ~/.cache/go-build) make a rebuild
# after a change to main.go quick. Go is the one on PATH, else /usr/local/go.
# go.mod names go 1.26, which this machine's Go is: no GOTOOLCHAIN needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/collector}
bin=$out/otelcol-tgo
stamp=$bin.inputs

go=$(command -v go || true)
[ -n "$go" ] || go=/usr/local/go/bin/go
if [ ! -x "$go" ]; then
  echo "build.sh: no Go toolchain (go on PATH or /usr/local/go/bin/go)" >&2
  exit 1
fi

inputs=$(cd "$here" && {
  "$go" version
  find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -d' ' -f1)
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  echo "otelcol-tgo: up to date ($bin)"
  exit 0
fi

mkdir -p "$out"
start=$(date +%s)
# -mod=readonly: go.sum is the pin; a build never resolves versions anew.
# GOTOOLCHAIN=local: never fetch another Go behind our back.
(cd "$here" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
  "$go" build -trimpath -ldflags='-s -w' -o "$bin.tmp" .)
mv "$bin.tmp" "$bin"
echo "$inputs" >"$stamp"
echo "otelcol-tgo: built in $(($(date +%s) - start)) s ($bin)"
"$bin" --version
