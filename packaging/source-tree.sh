#!/usr/bin/env bash
# source-tree.sh DEST: copies the repository's source files (tracked and
# untracked-but-not-ignored, as git sees them; no build/ output) into DEST,
# so package builds never see a developer's in-tree build products.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: source-tree.sh DEST}
mkdir -p "$dest"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
     xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
     tar --null -T - -cf -) | tar -C "$dest" -xf -
else
  tar -C "$root" --exclude=./build --exclude=./dist -cf - . | tar -C "$dest" -xf -
fi
