#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/test.sh - the README's second command and CI's only step: build
# everything and run the whole test suite, then prove the tarball builds and
# passes on its own (make distcheck); then the sanitizer, valgrind and
# fuzzing stages.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh --test
# A tree configured by the demo command, before Check and mandoc were
# installed, would run no tests: configure it again.
if [ -f config.log ] && ! grep -q "^HAVE_CHECK_TRUE=''" config.log; then
    rm -f Makefile
fi
sh scripts/build.sh
make -s -j"$(nproc)" check
make -s distcheck >distcheck.out 2>&1 || { tail -50 distcheck.out; exit 1; }
grep -E '^[0-9]+%: Checks: |archives ready|dynshm-.*\.tar\.gz' distcheck.out | sort -u

# Static analysis: cppcheck and clang-tidy must stay clean (scripts/lint.sh).
sh scripts/lint.sh

# Reliability stages, after the fast path above (scripts/sanitize.sh and
# scripts/fuzz.sh say what each runs): the whole suite under ASan+UBSan, the
# threaded tests under TSan, the unit suites under valgrind, then a short
# run of every fuzz target (`make fuzz` runs a longer one).
sh scripts/sanitize.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-20} sh scripts/fuzz.sh
