#!/usr/bin/env bash
# packaging/wheel/build.sh OUT: the sdist tigerops-<version>.tar.gz and, built
# from that sdist, the wheel tigerops-<version>-cp39-abi3-manylinux_*.whl
# (auditwheel repair bundles the libraries outside the manylinux policy) into
# OUT. The tools (build, auditwheel: packaging/wheel/requirements-build.txt)
# live in a venv kept under build/ between runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:?usage: build.sh OUT}" && cd "$1" && pwd)
# The oldest CPython we support builds the abi3 extension: the limited API
# of 3.9 is what every later version accepts.
python=${TIGEROPS_WHEEL_PYTHON:-$(ls -d /root/.pyenv/versions/3.9.*/bin/python3 2>/dev/null | sort -V | tail -1)}
[ -x "$python" ] || { echo "no CPython 3.9 found (set TIGEROPS_WHEEL_PYTHON)" >&2; exit 1; }
tools=${TIGEROPS_WHEEL_TOOLS:-$root/build/wheel-tools}
stamp=$tools/.requirements
if ! cmp -s "$here/requirements-build.txt" "$stamp" 2>/dev/null; then
  rm -rf "$tools"
  "$python" -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-build.txt"
  cp "$here/requirements-build.txt" "$stamp"
fi
version=$(sh "$here/../version.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/tigerops-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
# sdist first, then the wheel from the unpacked sdist (what pip does with it).
"$tools/bin/python" -m build --outdir "$work" "$here" >"$out/wheel-build.log" 2>&1 ||
  { tail -40 "$out/wheel-build.log" >&2; exit 1; }
"$tools/bin/auditwheel" repair --only-plat --wheel-dir "$work/repaired" "$work/tigerops-$version-cp39-abi3-linux_x86_64.whl" \
  >>"$out/wheel-build.log" 2>&1 || { tail -20 "$out/wheel-build.log" >&2; exit 1; }
rm -f "$out"/tigerops-"$version"*.whl "$out"/tigerops-"$version".tar.gz
mv "$work/tigerops-$version.tar.gz" "$work"/repaired/tigerops-"$version"-*.whl "$out"/
ls "$out"/tigerops-"$version".tar.gz "$out"/tigerops-"$version"-*.whl
