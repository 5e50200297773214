#!/usr/bin/env bash
# Builds bench/pii_cost.c with gcc -O2 against the core sources and the
# protoc-c files of a configured build dir (as tests/fuzz/run.sh builds the
# fuzz targets) and prints the PII masking cost table. With --callgrind it
# also counts instructions per span under valgrind (slower, optional).
# Usage: bash bench/pii_cost.sh BUILDDIR [--callgrind] [-- pii_cost args...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BUILDDIR [--callgrind] [-- --runs N --ms MS]" >&2; exit 2; }
build=$(cd "$1" && pwd)
shift
callgrind=0
while [ $# -gt 0 ]; do
  case $1 in
    --callgrind) callgrind=1; shift ;;
    --) shift; break ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -f "$build/config.h" ] || { echo "$build has no config.h: configure a build there first" >&2; exit 2; }
out=$build/bench
mkdir -p "$out"
core=$(ls "$root"/src/core/*.c)
gen=$(find "$build/proto-gen" -name '*.pb-c.c')
[ -n "$gen" ] || { echo "no protoc-c output under $build/proto-gen: run make there first" >&2; exit 2; }
# The library's own flags (AM_CFLAGS and CFLAGS in Makefile.am/configure), -O2.
flags="-std=gnu11 -O2 -g -Wall -Wextra -Wshadow -Wformat=2 -fvisibility=hidden -DHAVE_CONFIG_H
  -I$root/include -I$root/src/core -I$build -I$build/proto-gen
  $(pkg-config --cflags libprotobuf-c libcurl inih zlib)"
libs="$(pkg-config --libs libprotobuf-c inih zlib) -ldl -lpthread -lm"
# shellcheck disable=SC2086
gcc $flags "$here/pii_cost.c" $core $gen $libs -o "$out/pii_cost"

"$out/pii_cost" "$@"

if [ $callgrind = 1 ]; then
  command -v valgrind >/dev/null || { echo "valgrind not installed" >&2; exit 1; }
  reps=10
  echo
  echo "Instructions per span (callgrind, inclusive Ir of $reps encodes of the batch / spans):"
  printf '| %-9s | %12s | %12s | %5s | %12s | %5s |\n' variant "off Ir" "builtin Ir" ratio "+2 regex Ir" ratio
  echo "|-----------|-------------:|-------------:|------:|-------------:|------:|"
  for v in server sql request exception pii; do
    ir=()
    for c in off builtin "+2 regex"; do
      f=$(mktemp "$out/callgrind.XXXXXX")
      valgrind --tool=callgrind --callgrind-out-file="$f" --collect-atstart=no \
        --toggle-collect=counted_encode "$out/pii_cost" --count "$v" "$c" "$reps" >/dev/null 2>&1
      total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
      rm -f "$f"
      ir+=("$((total / (reps * 512)))")
    done
    awk -v v="$v" -v a="${ir[0]}" -v b="${ir[1]}" -v c="${ir[2]}" 'BEGIN {
      printf "| %-9s | %12d | %12d | %5.2f | %12d | %5.2f |\n", v, a, b, b / a, c, c / a }'
  done
fi
