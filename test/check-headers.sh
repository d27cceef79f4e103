#!/bin/sh
# SPDX-License-Identifier: MIT
# test/check-headers.sh - every public header compiles on its own, as C and
# as C++, with warnings as errors: a user may include any one of them first,
# from either language (STYLE.md, habit 10).
srcdir=${srcdir:-.}
CC=${CC:-cc}
CXX=${CXX:-c++}
t=$(mktemp -d "${TMPDIR:-/tmp}/check-headers.XXXXXX") || exit 99
trap 'rm -rf "$t"' EXIT
fail=0
n=0
# Headers from the source tree and the generated ones (version.h) of the build tree.
for base in $(for h in "$srcdir"/include/dynshm/*.h include/dynshm/*.h; do
                  [ -f "$h" ] && echo "${h##*/}"; done | sort -u); do
    h=$base
    name=dynshm/$base
    printf '#include <%s>\n#include <%s>\nint dsm_header_check_%s;\n' "$name" "$name" \
        "$(echo "${h##*/}" | tr -c 'a-z0-9\n' '_')" >"$t/one.c"
    n=$((n + 1))
    if ! out=$($CC -std=c11 -Wall -Wextra -Werror -I"$srcdir/include" -Iinclude -c "$t/one.c" -o "$t/one.o" 2>&1); then
        echo "FAIL: $name does not compile on its own as C:"; echo "$out"; fail=1
    fi
    if command -v "$CXX" >/dev/null 2>&1; then
        cp "$t/one.c" "$t/one.cc"
        if ! out=$($CXX -Wall -Wextra -Werror -I"$srcdir/include" -Iinclude -c "$t/one.cc" -o "$t/one.o" 2>&1); then
            echo "FAIL: $name does not compile on its own as C++:"; echo "$out"; fail=1
        fi
    fi
done
echo "check-headers: $n public headers, each compiled alone as C$(command -v "$CXX" >/dev/null 2>&1 && echo ' and C++')"
exit $fail
