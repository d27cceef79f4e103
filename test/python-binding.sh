#!/bin/sh
# SPDX-License-Identifier: MIT
# test/python-binding.sh - run python/test_dynshm.py against the library just
# built (.libs/libdynshm.so), if python3 is there; 77 (skipped) if not.
srcdir=${srcdir:-.}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
lib=$(pwd)/.libs/libdynshm.so
[ -f "$lib" ] || { echo "SKIP: $lib not built (static-only build)"; exit 77; }
DYNSHM_LIBRARY=$lib PYTHONPATH="$srcdir/python" exec python3 "$srcdir/python/test_dynshm.py"
