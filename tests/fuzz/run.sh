#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) against the core
# sources and runs each for a bounded time. Usage: run.sh BUILDDIR [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "$1" && pwd)
seconds=${2:-5}
out=$build/fuzz
mkdir -p "$out"
core=$(ls "$root"/src/core/*.c)
gen=$(find "$build/proto-gen" -name '*.pb-c.c')
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$root/include -I$root/src/core -I$build -I$build/proto-gen $(pkg-config --cflags libprotobuf-c libcurl inih zlib)"
libs="$(pkg-config --libs libprotobuf-c inih zlib) -ldl -lpthread -lm"
status=0
for target in traceparent sql config pii scrub json otlp grpc; do
  clang $flags "$here/fuzz_$target.c" $core $gen $libs -o "$out/fuzz_$target"
  mkdir -p "$out/corpus_$target"
  if "$out/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -artifact_prefix="$out/crash-$target-" \
       "$out/corpus_$target" "$here/corpus/$target" >"$out/fuzz_$target.log" 2>&1; then
    echo "fuzz $target: $(grep -o 'Done [0-9]* runs' "$out/fuzz_$target.log" | tail -1), no crash"
  else
    echo "fuzz $target: FAILED"; tail -40 "$out/fuzz_$target.log"; status=1
  fi
done
exit $status
