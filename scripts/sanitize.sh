#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/sanitize.sh - the test suite under ASan+UBSan, TSan and valgrind,
# each in its own out-of-tree build, each failing on any report at all.
#
#   sh scripts/sanitize.sh [asan] [tsan] [valgrind]     (no argument: all three)
#
# asan      _build/asan (configure --enable-asan): `make check`, the whole
#           suite (every Check suite, the man page and end-to-end tests),
#           with leak detection.  Check forks a process per test and the
#           tests fork workers; every process writes its reports to
#           _build/asan/san-logs/, so a report from a worker whose exit
#           status nobody looks at still fails the stage.
# tsan      _build/tsan (--enable-tsan): the threaded tests, Check suite
#           "dsm", case "threads" (ThreadSanitizer slows everything else
#           down and finds nothing in single-threaded code).
# valgrind  _build/valgrind (a plain -O1 -g build): memcheck with
#           --leak-check=full over the unit suites listed in VALGRIND_SUITES,
#           each in one process (CK_FORK=no) so leaks add up across tests;
#           forked workers are checked too (valgrind follows fork), and so
#           are exec'd test helpers (--trace-children, system tools skipped).
#           Not run: "crash", whose kill loops are timing-driven and far too
#           slow under valgrind (they run under ASan instead).
#           Suppressions: test/valgrind.supp, each entry justified there.
#           --vgdb=no: no gdbserver FIFOs in /tmp (a test that changes uid
#           could not remove them, and valgrind would say so in the log).
set -e
. "$(dirname "$0")/oot.sh"

jobs=$(nproc 2>/dev/null || echo 2)
VALGRIND_SUITES=${VALGRIND_SUITES:-"common dsm_impl inject settings dsm lifecycle hostile"}

# Fail the stage if any report file exists (sanitizers write one per process).
no_reports() {
    stage=$1
    logdir=$2
    # LeakSanitizer notes "Running thread N was not suspended" when a forked
    # child inherits the record of its parent's threads (a supervisor's
    # keeper thread, a test's worker threads): a warning, not a report.  A
    # file holding nothing else is dropped; any other line fails the stage.
    for f in "$logdir"/*; do
        [ -f "$f" ] || continue
        if ! grep -v -e '^==[0-9]*==Running thread [0-9]* was not suspended\. False leaks are possible\.$' \
            -e '^[[:space:]]*$' "$f" >/dev/null; then
            rm -f "$f"
        fi
    done
    set -- "$logdir"/*
    [ -e "$1" ] || return 0
    oot_fail "$stage: sanitizer reports" "$@"
}

stage_asan() {
    t0=$(date +%s)
    dir=$(oot_build asan --enable-asan)
    make -s -C "$dir" -j"$jobs" >"$dir/build.log" 2>&1 || oot_fail asan "$dir/build.log"
    logs="$dir/san-logs"
    rm -rf "$logs"
    mkdir -p "$logs"
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$logs/asan"
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
    export ASAN_OPTIONS UBSAN_OPTIONS
    if ! CK_TIMEOUT_MULTIPLIER=4 make -s -C "$dir" -j"$jobs" check >"$dir/check.out" 2>&1; then
        unset ASAN_OPTIONS UBSAN_OPTIONS
        oot_fail asan "$dir/check.out" "$dir"/test/*.log "$logs"/*
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS
    no_reports asan "$logs"
    echo "asan: $(grep -h -E '^[0-9]+%: Checks: ' "$dir/check.out" | tr '\n' ' ')" \
        "all tests pass, no ASan/UBSan/LSan report ($(($(date +%s) - t0)) s)"
}

stage_tsan() {
    t0=$(date +%s)
    dir=$(oot_build tsan --enable-tsan)
    make -s -C "$dir" -j"$jobs" test/check_dynshm >"$dir/build.log" 2>&1 ||
        oot_fail tsan "$dir/build.log"
    logs="$dir/san-logs"
    rm -rf "$logs"
    mkdir -p "$logs"
    (cd "$dir" && CK_RUN_SUITE=dsm CK_RUN_CASE=threads CK_TIMEOUT_MULTIPLIER=4 \
        TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$logs/tsan" \
        ./test/check_dynshm) >"$dir/check.out" 2>&1 || oot_fail tsan "$dir/check.out" "$logs"/*
    no_reports tsan "$logs"
    echo "tsan: $(grep -h -E '^[0-9]+%: Checks: ' "$dir/check.out" | tr '\n' ' ')" \
        "(dsm/threads), no ThreadSanitizer report ($(($(date +%s) - t0)) s)"
}

stage_valgrind() {
    t0=$(date +%s)
    command -v valgrind >/dev/null || { echo "valgrind: not installed (scripts/deps.sh)" >&2; exit 1; }
    dir=$(oot_build valgrind CFLAGS="-g -O1")
    make -s -C "$dir" -j"$jobs" test/check_dynshm test/exec_worker test/fd_list \
        >"$dir/build.log" 2>&1 || oot_fail valgrind "$dir/build.log"
    logs="$dir/vg-logs"
    rm -rf "$logs"
    mkdir -p "$logs"
    checks=""
    for suite in $VALGRIND_SUITES; do
        if ! (cd "$dir" && CK_RUN_SUITE=$suite CK_FORK=no \
            valgrind -q --vgdb=no --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,possible --track-fds=no \
            --trace-children=yes --trace-children-skip='/bin/*,/usr/*,/sbin/*' \
            --suppressions="$top/test/valgrind.supp" \
            --log-file="$logs/$suite.%p.log" ./test/check_dynshm) >"$logs/$suite.out" 2>&1; then
            oot_fail "valgrind ($suite)" "$logs/$suite.out" "$logs/$suite".*.log
        fi
        checks="$checks $suite: $(grep -h -E -o '[0-9]+%: Checks: [0-9]+' "$logs/$suite.out" | sed 's/.*Checks: //')"
        # -q: a log with anything in it holds a report (from any process of the run).
        for f in "$logs/$suite".*.log; do
            [ -s "$f" ] && oot_fail "valgrind ($suite): memcheck reports" "$f"
        done
    done
    echo "valgrind: checks per suite:$checks; no memcheck report ($(($(date +%s) - t0)) s)"
}

[ $# -gt 0 ] || set -- asan tsan valgrind
for stage in "$@"; do
    case $stage in
    asan) stage_asan ;;
    tsan) stage_tsan ;;
    valgrind) stage_valgrind ;;
    *) echo "usage: sh scripts/sanitize.sh [asan] [tsan] [valgrind]" >&2; exit 2 ;;
    esac
done
