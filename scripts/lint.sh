#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/lint.sh - static analysis of the library, the tools and the demo:
# cppcheck (warnings and portability) and clang-tidy (clang-analyzer-* and
# bugprone-*).  Any finding fails the stage.  Run from a configured tree
# (config.h must exist); scripts/test.sh runs it after the fast path.
#
# Left out, with the reason:
#   bugprone-easily-swappable-parameters   flags every (ptr, len) pair
#   bugprone-reserved-identifier           our internal prefix is dsm__
#   clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling
#                                          asks for C11 Annex K (memcpy_s),
#                                          which glibc does not have
#   bugprone-implicit-widening-of-multiplication-result
#                                          fires on every constant product
#                                          such as 1024 * 1024, which cannot
#                                          overflow; run-time sizes are size_t
# bugprone-sizeof-expression flags calloc(n, sizeof(*p)) when p points to
# pointers to structures, which is right: those lines carry NOLINTNEXTLINE
# (clang-tidy 14 has no option to turn that case off).
# A false positive is silenced on its line with NOLINT(check) and a reason.
set -e
cd "$(dirname "$0")/.."
[ -f config.h ] || { echo "lint: run scripts/build.sh first (no config.h)" >&2; exit 2; }
files=$(git ls-files 'src/*.c' 'tools/*.c' 'contrib/*.c' 2>/dev/null || find src tools contrib -name '*.c')
flags="-I. -Iinclude -Isrc -DDSM_BUILDING_LIBRARY -D_GNU_SOURCE -pthread"
status=0

# A library with initial-exec TLS cannot be dlopen()ed once the static TLS
# surplus is gone (Python's ctypes, plugin hosts): refuse it at the source.
if grep -rn 'tls_model *( *"initial-exec"' src include; then
    echo "lint: initial-exec TLS in the library (it must stay dlopen()-able)"; status=1
fi

if command -v cppcheck >/dev/null; then
    # shellcheck disable=SC2086
    cppcheck -q --enable=warning,portability --inline-suppr --std=c11 --error-exitcode=1 \
        -I. -Iinclude -DDSM_HAVE_POSIX -DDSM_HAVE_SYSV -DDSM_HAVE_MMAP $files || status=1
    echo "lint: cppcheck over $(echo $files | wc -w) files: $([ $status = 0 ] && echo clean || echo FINDINGS)"
else
    echo "lint: cppcheck not installed (scripts/deps.sh --test installs it)"; status=1
fi

if command -v clang-tidy >/dev/null; then
    checks='-*,clang-analyzer-*,bugprone-*,-bugprone-easily-swappable-parameters'
    checks="$checks,-bugprone-reserved-identifier"
    checks="$checks,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling"
    checks="$checks,-bugprone-implicit-widening-of-multiplication-result"
    out=$(mktemp)
    # Two at a time: the machine has few cores and the files are independent.
    # shellcheck disable=SC2086
    printf '%s\n' $files | xargs -P "$(nproc 2>/dev/null || echo 2)" -I{} \
        clang-tidy -quiet --checks="$checks" --warnings-as-errors='*' {} -- $flags >"$out" 2>/dev/null || true
    n=$(grep -c 'error:\|warning:' "$out" || true)
    if [ "$n" -ne 0 ]; then
        grep -A3 'error:\|warning:' "$out"
        status=1
    fi
    echo "lint: clang-tidy (clang-analyzer-*, bugprone-*) over $(echo $files | wc -w) files: $n finding(s)"
    rm -f "$out"
else
    echo "lint: clang-tidy not installed (scripts/deps.sh --test installs it)"; status=1
fi
exit $status
