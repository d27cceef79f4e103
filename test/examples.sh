#!/bin/sh
# SPDX-License-Identifier: MIT
# test/examples.sh - runs the example programs the user guide quotes
# (examples/fork_server, examples/exec_worker_demo, examples/mq_workers and the
# others it runs below); run by
# `make check`.
#
# Each run gets a fresh data directory.  A run passes when the program exits
# 0 (it checks its own story: counters, crash policy, segments gone), its
# output shows what the crash policy did, and afterwards nothing of its
# instance is left: no /dev/shm/dynshm.<instance>.* object, no file in the
# data directory's dynshm_mmap/, no state file.  The instance id is read
# from the library's start-up message, which the examples print.  System V
# segments have no names to count by; the sysv backend is covered by the
# Check suites and test/demo-e2e.sh.
#
# The guide quotes parts of the examples.  Each quoted block is marked with
# `<!-- quote: examples/FILE.c -->` before its fence; this test checks that
# every block still appears in that file, line for line (a line that is
# just `...` stands for lines left out), so the guide cannot drift.
#
# Works from a VPATH build (make distcheck): the programs are found
# relative to the current directory, the build directory, and the sources
# through $srcdir (set by the automake test harness).  Exit status: 0 all
# passed, 1 a check failed, 99 the test could not run.

LC_ALL=C
export LC_ALL

EX=$(pwd)/examples
srcdir=${srcdir:-.}
for p in fork_server exec_worker_demo mq_workers; do
    if [ ! -x "$EX/$p" ]; then
        echo "ERROR: $EX/$p is not built"
        exit 99
    fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/dynshm-examples.XXXXXX") || exit 99
: >"$T/instances"

cleanup() {
    # Whatever a failed run left: its instance's objects, then the directories.
    for i in $(sort -u "$T/instances"); do
        rm -f /dev/shm/dynshm."$i".*
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "FAIL - interrupted"; exit 1' INT TERM HUP

. "${srcdir:-.}/test/testlib.sh"

# run NAME EXPECTED-REGEX PROGRAM [OPTIONS...]: one run in its own data directory.
run() {
    name=$1 want=$2 prog=$3
    shift 3
    dir=$T/$name
    mkdir -m 700 "$dir" || exit 99
    timeout 120 "$EX/$prog" "$@" "$dir" >"$T/$name.out" 2>&1
    rc=$?
    inst=$(sed -n 's/.*instance \([0-9a-f]\{16\}\).*/\1/p' "$T/$name.out" | head -n 1)
    [ -n "$inst" ] && echo "$inst" >>"$T/instances"
    if [ "$rc" -eq 0 ]; then
        ok "$name: exit status 0"
    else
        not_ok "$name: exit status $rc; its output:"
        sed 's/^/    /' "$T/$name.out"
    fi
    if grep -Eq -- "$want" "$T/$name.out"; then
        ok "$name: output shows /$want/"
    else
        not_ok "$name: output lacks /$want/"
    fi
    if [ -z "$inst" ]; then
        not_ok "$name: no instance id in the output"
        return
    fi
    left=$(ls /dev/shm 2>/dev/null | grep -c "^dynshm\.$inst\.")
    [ "$left" -eq 0 ] && ok "$name: nothing left in /dev/shm (instance $inst)" ||
        not_ok "$name: $left object(s) left in /dev/shm/dynshm.$inst.*"
    left=$(ls "$dir/dynshm_mmap" 2>/dev/null | grep -c .)
    [ "$left" -eq 0 ] && ok "$name: nothing left in dynshm_mmap/" ||
        not_ok "$name: $left file(s) left in $dir/dynshm_mmap"
    [ ! -e "$dir/dynshm.state" ] && ok "$name: state file removed" ||
        not_ok "$name: $dir/dynshm.state is still there"
}

# The backends this build offers, as the settings module lists them.
available=$("$EX/fork_server" -c dynamic_shared_memory_type=? "$T/probe" 2>&1 |
    sed -n 's/.*valid values: //p' | tr -d ',')
echo "# backends: $available"

run fork-default 'crash reset: destroyed' fork_server
run fork-reclaim 'released its references \(0 segment' fork_server -c dsm_crash_policy=reclaim
run exec-default 'released its references \(1 segment' exec_worker_demo
run exec-reset 'crash reset: destroyed' exec_worker_demo -c dsm_crash_policy=reset
case " $available " in
*" mmap "*)
    run fork-mmap 'crash reset: destroyed' fork_server -c dynamic_shared_memory_type=mmap
    run exec-mmap 'released its references' exec_worker_demo -c dynamic_shared_memory_type=mmap
    ;;
*) echo "skip - mmap: not available in this build" ;;
esac
run area-tree 'killed worker handled by (reclaim|a reset)' area_tree
run hash-wordcount 'every count right; table destroyed, area empty' hash_wordcount
run fork-none 'DSM_EDISABLED, as expected' fork_server -c dynamic_shared_memory_type=none
run mq-workers 'worker 2: gone \(-EPIPE\) after' mq_workers
run named-table 'every program saw one inventory, stocked once' named_table

out=$("$EX/fork_server" -c dsm_max_segments=0 "$T/bad" 2>&1)
rc=$?
[ "$rc" -eq 2 ] && echo "$out" | grep -q 'dsm_max_segments' &&
    ok "a bad setting is refused with a message naming it" ||
    not_ok "a bad setting: status $rc, output: $out"

# ---- the guide's quotations ----------------------------------------------------

GUIDE=$srcdir/doc/guide.md
if [ -f "$GUIDE" ]; then
    awk -v srcdir="$srcdir" '
        # 1 if the quoted lines blk[1..n] appear in file, in order; a line
        # that is only "..." separates runs that must each be contiguous.
        function quoted(file, n,    m, line, i, j, k, start, pos, found) {
            split("", src)
            m = 0
            while ((getline line < file) > 0)
                src[++m] = line
            close(file)
            if (m == 0)
                return 0
            pos = 1
            for (i = 1; i <= n; i = j + 1) {
                for (j = i; j <= n && blk[j] !~ /^[ \t]*\.\.\.[ \t]*$/; j++)
                    ;
                if (j == i)
                    continue
                found = 0
                for (start = pos; !found && start + (j - i) - 1 <= m; start++) {
                    found = 1
                    for (k = 0; k < j - i; k++)
                        if (src[start + k] != blk[i + k]) {
                            found = 0
                            break
                        }
                }
                if (!found)
                    return 0
                pos = start + (j - i)
            }
            return 1
        }
        /^<!-- quote: [^ ]+ -->$/ { file = $3; at = FNR; want_fence = 1; next }
        want_fence && /^```/ { want_fence = 0; inblock = 1; n = 0; next }
        inblock && /^```$/ {
            inblock = 0
            if (quoted(srcdir "/" file, n))
                print "ok   - guide.md line " at ": the quotation of " file " matches it"
            else
                print "FAIL - guide.md line " at ": the quotation of " file " is not in it (any more)"
            next
        }
        inblock { blk[++n] = $0 }
    ' "$GUIDE" >"$T/quotes"
    cat "$T/quotes"
    checks=$((checks + $(grep -c . "$T/quotes")))
    failures=$((failures + $(grep -c '^FAIL' "$T/quotes")))
    [ -s "$T/quotes" ] || not_ok "guide.md has no marked quotations of the examples"
else
    not_ok "$GUIDE is missing"
fi

echo "examples: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
