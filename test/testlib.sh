# SPDX-License-Identifier: MIT
# test/testlib.sh - helpers shared by the shell tests (sourced, not run):
# counting checks, comparing results, bounded waiting, and telling live
# processes from zombies (some container inits never reap).

checks=0
failures=0
ok() {
    checks=$((checks + 1))
    echo "ok   - $*"
}
not_ok() {
    checks=$((checks + 1))
    failures=$((failures + 1))
    echo "FAIL - $*"
}
# expect DESCRIPTION ACTUAL EXPECTED
expect() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got \"$2\", expected \"$3\""; fi
}

# wait_for SECONDS COMMAND...: poll every 50 ms until COMMAND succeeds.
wait_for() {
    _limit=$(($1 * 20))
    shift
    _i=0
    while ! "$@"; do
        _i=$((_i + 1))
        [ "$_i" -ge "$_limit" ] && return 1
        sleep 0.05
    done
    return 0
}

# Alive and not a zombie (a zombie holds no lock and no mapping).
proc_alive() {
    _s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$_s" ] && [ "$_s" != Z ] && [ "$_s" != X ]
}
proc_gone() {
    ! proc_alive "$1"
}
# The pids whose parent is $1, sorted.
children_of() {
    for _f in /proc/[0-9]*/stat; do
        cat "$_f" 2>/dev/null
    done | awk -v p="$1" '{ rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ");
                            if (f[2] == p) print $1 }' | sort -n
}
