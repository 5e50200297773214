#!/usr/bin/env bash
# packaging/deb/build.sh OUT: builds tigerops_<version>_amd64.deb into OUT
# with dpkg-buildpackage (debhelper), from a clean copy of the source tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:?usage: build.sh OUT}" && cd "$1" && pwd)
version=$(sh "$here/../version.sh")
deb_version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
if [ "${deb_version%-*}" != "$version" ]; then
  echo "debian/changelog says $deb_version but configure.ac says $version: add a changelog entry (dch -v $version-1)" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tigerops-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
bash "$here/../source-tree.sh" "$work/tigerops-$version"
cp -r "$here/debian" "$work/tigerops-$version/debian"
(cd "$work/tigerops-$version" && dpkg-buildpackage -us -uc -b) >"$out/deb-build.log" 2>&1 ||
  { tail -40 "$out/deb-build.log" >&2; exit 1; }
mv "$work"/tigerops*_"$deb_version"_*.deb "$work"/tigerops_"$deb_version"_*.buildinfo "$work"/tigerops_"$deb_version"_*.changes "$out"/
ls "$out"/tigerops_"$deb_version"_*.deb
