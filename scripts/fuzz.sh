#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/fuzz.sh - build the libFuzzer targets of test/fuzz/ with clang
# (out of tree in _build/fuzz, configure --enable-fuzzing) and run each one
# for FUZZ_SECONDS seconds (default 300; scripts/test.sh runs 20), all
# targets at once.  `make fuzz` runs this.
#
#   FUZZ_SECONDS=60 sh scripts/fuzz.sh [settings] [state_file] [control]
#
# Each target starts from its seed corpus, test/fuzz/corpus/<target>/ (small,
# hand-made, read only here), and keeps what it finds in
# _build/fuzz/corpus/<target>/ for the next run.  A crash, a leak, a
# sanitizer report or a broken promise (the targets trap) fails the run; the
# input is saved as _build/fuzz/artifacts/<target>/crash-... -- rerun it with
#   _build/fuzz/test/fuzz/fuzz_<target> _build/fuzz/artifacts/<target>/crash-...
# and, once fixed, add it to the seed corpus as a regression seed.
set -e
. "$(dirname "$0")/oot.sh"

FUZZ_SECONDS=${FUZZ_SECONDS:-300}
[ $# -gt 0 ] || set -- settings state_file control mq area

command -v clang >/dev/null || { echo "fuzz: clang is not installed (scripts/deps.sh)" >&2; exit 1; }
t0=$(date +%s)
dir=$(oot_build fuzz CC=clang --enable-fuzzing)
targets=""
for t in "$@"; do
    targets="$targets test/fuzz/fuzz_$t"
done
# shellcheck disable=SC2086
make -s -C "$dir" -j"$(nproc 2>/dev/null || echo 2)" $targets >"$dir/build.log" 2>&1 ||
    oot_fail fuzz "$dir/build.log"

# Longest input per target: a bit past each parser's own cap, so the
# "too long" paths are reached too.
max_len() {
    case $1 in
    settings) echo 16500 ;;   # lines are capped at 8192 bytes
    state_file) echo 4200 ;;  # the state file at 4096
    control) echo 4096 ;;     # up to ~90 slots with the "make it valid" flag
    mq) echo 4096 ;;          # a script of up to ~1300 queue operations
    area) echo 3000 ;;        # 1000 patches of the metadata
    esac
}

pids=""
for t in "$@"; do
    [ -d "$top/test/fuzz/corpus/$t" ] || { echo "fuzz: no seed corpus test/fuzz/corpus/$t" >&2; exit 1; }
    mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t"
    # libFuzzer: the first directory receives new inputs, the second seeds only.
    (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "./test/fuzz/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$t/" "corpus/$t" "$top/test/fuzz/corpus/$t") \
        >"$dir/fuzz_$t.log" 2>&1 &
    pids="$pids $!:$t"
done

failed=""
for pt in $pids; do
    if ! wait "${pt%%:*}"; then
        failed="$failed ${pt#*:}"
    fi
done
for t in "$@"; do
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz_$t.log")
    cov=$(grep -E -o 'cov: [0-9]+' "$dir/fuzz_$t.log" | tail -1)
    corpus=$(ls "$dir/corpus/$t" | wc -l)
    echo "fuzz_$t: ${runs:-?} runs in ${FUZZ_SECONDS}s, $cov, corpus $corpus inputs"
done
if [ -n "$failed" ]; then
    for t in $failed; do
        echo "---- fuzz_$t:" >&2
        grep -v -E '^#[0-9]+' "$dir/fuzz_$t.log" | tail -60 >&2
        ls "$dir/artifacts/$t" >&2
    done
    echo "fuzz: FAILED:$failed" >&2
    exit 1
fi
echo "fuzz: no crash, leak or report ($(($(date +%s) - t0)) s)"
