#!/bin/sh
# The .deb in one line: packaging/build-deb.sh [OUT] (default build/packages).
exec bash "$(dirname "$0")/deb/build.sh" "${1:-$(dirname "$0")/../build/packages}"
