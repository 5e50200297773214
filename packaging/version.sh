#!/bin/sh
# Prints the one version, AC_INIT's in configure.ac, that every package takes.
sed -n 's/^AC_INIT(\[tigerops\], *\[\([^]]*\)\].*/\1/p' "$(dirname "$0")/../configure.ac"
