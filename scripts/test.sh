#!/bin/sh
# scripts/test.sh - the README's second command and CI's only step: build
# everything and run the whole test suite, then prove the tarball builds and
# passes on its own (make distcheck).
set -e
cd "$(dirname "$0")/.."
sh scripts/build.sh
make -s -j"$(nproc)" check
make -s distcheck >distcheck.out 2>&1 || { tail -50 distcheck.out; exit 1; }
grep -E '^[0-9]+%: Checks: |archives ready|dynshm-.*\.tar\.gz' distcheck.out | sort -u
