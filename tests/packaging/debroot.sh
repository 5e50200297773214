#!/usr/bin/env bash
# debroot.sh CACHE_DIR: prints the path of a tarball holding a clean Debian 12
# root (debootstrap minbase + python3-flask + gunicorn from apt), made once
# and reused: the packaging tests unpack a fresh copy of it for every run.
# Bump ROOT_VERSION when the package list changes.
set -euo pipefail
cache=${1:?usage: debroot.sh CACHE_DIR}
ROOT_VERSION=1
mirror=${TIGEROPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball=$cache/bookworm-flask-v$ROOT_VERSION.tar
if [ -s "$tarball" ]; then
  echo "$tarball"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/root.XXXXXX")
chmod 755 "$work"  # the root of the new system: _apt must traverse it
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase bookworm "$work" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
  { tail -30 "$cache/debootstrap.log" >&2; exit 1; }
cp /etc/resolv.conf "$work/etc/resolv.conf"
# A private mount namespace: /proc and /dev vanish with it, even on failure.
unshare --mount --fork sh -c '
  mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" &&
  chroot "$1" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends python3-flask gunicorn >/dev/null && apt-get clean"
' sh "$work" >>"$cache/debootstrap.log" 2>&1 || { tail -30 "$cache/debootstrap.log" >&2; exit 1; }
tar -C "$work" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
