#!/usr/bin/env bash
# packaging/rpm/build.sh OUT: builds tigerops-<version>-1.x86_64.rpm (and the
# -devel one: header, pkg-config file) into OUT
# with rpmbuild, from a clean copy of the source tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:?usage: build.sh OUT}" && cd "$1" && pwd)
version=$(sh "$here/../version.sh")
spec_version=$(sed -n 's/^Version: *//p' "$here/tigerops.spec")
if [ "$spec_version" != "$version" ]; then
  echo "tigerops.spec says $spec_version but configure.ac says $version" >&2
  exit 1
fi
top=$(mktemp -d "${TMPDIR:-/tmp}/tigerops-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/SOURCES" "$top/tree"
bash "$here/../source-tree.sh" "$top/tree/tigerops-$version"
tar -C "$top/tree" -czf "$top/SOURCES/tigerops-$version.tar.gz" "tigerops-$version"
# No debuginfo subpackage: Debian's rpm lacks the find-debuginfo scripts.
rpmbuild -bb --nodeps --define "_topdir $top" --define "debug_package %{nil}" \
  --define "_smp_mflags -j$(nproc)" "$here/tigerops.spec" >"$out/rpm-build.log" 2>&1 ||
  { tail -40 "$out/rpm-build.log" >&2; exit 1; }
mv "$top"/RPMS/x86_64/tigerops-*"$version"-*.x86_64.rpm "$out"/
ls "$out"/tigerops-"$version"-*.x86_64.rpm
