#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/build.sh - regenerate, configure (once) and build everything in the
# source tree.  Extra arguments go to configure on the first run.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
[ -f Makefile ] || ./configure -q "$@"
make -s -j"$(nproc)"
