#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/demo.sh - the README's first command: build everything, run the raw
# layer's round trip on every backend, then walk through contrib/dsm_demo on
# the default backend -- PostgreSQL's dsm_demo_create('something') and
# dsm_demo_read() across two sessions, pins, a worker crash and the crash
# reset, a kill -9 of the whole server and the restart that cleans up after
# it -- and show that nothing is left behind.
#
# Every step prints what it does and what came back, and checks it: the
# script exits non-zero at the first step that misbehaves.  Whatever
# happens, the EXIT trap stops the server and removes the temporary data
# directory.  Two sessions run at once, each fed through a FIFO.
set -e
cd "$(dirname "$0")/.."
sh scripts/build.sh
echo "== raw layer: create, attach from a second process, destroy =="
make -s examples/raw_roundtrip >/dev/null && ./examples/raw_roundtrip

DEMO=$(pwd)/contrib/dsm_demo/dsm_demo
D=$(mktemp -d "${TMPDIR:-/tmp}/dsm_demo.XXXXXX")
sup=
trap '' PIPE

# ---- helpers ---------------------------------------------------------------------

step() {
    echo
    echo "-- $*"
}
fail() {
    echo "demo: FAILED: $*" >&2
    exit 1
}
# show_log PATTERN: the server log lines that match, indented.
show_log() {
    grep -E -- "$1" "$D/dsm_demo.log" | sed 's/^/   log: /' || true
}
proc_alive() {
    _st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$_st" ] && [ "$_st" != Z ]
}
children_of() {
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v p="$1" '{ r = $0; sub(/^.*\) /, "", r); split(r, f, " "); if (f[2] == p) print $1 }'
}
# wait_until SECONDS COMMAND...: poll every 50 ms.
wait_until() {
    _tries=$(($1 * 20))
    shift
    while ! "$@"; do
        _tries=$((_tries - 1))
        [ "$_tries" -gt 0 ] || return 1
        sleep 0.05
    done
}
our_objects() {
    ls /dev/shm | grep "^dynshm\.$inst\." || true
}

cleanup() {
    set +e
    exec 3>&- 4>&- 5>&- 2>/dev/null
    if [ -n "$sup" ] && proc_alive "$sup"; then
        timeout 20 "$DEMO" stop -D "$D" >/dev/null 2>&1 || kill -9 $(children_of "$sup") "$sup" 2>/dev/null
    fi
    [ -n "$KEEP" ] || rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# session NAME FD: a session in the background reading commands from a FIFO.
session() {
    mkfifo "$D/$1.in"
    : >"$D/$1.out" # before the background job creates it: we count its lines at once
    timeout 60 "$DEMO" session -D "$D" <"$D/$1.in" >"$D/$1.out" 2>&1 3>&- 4>&- 5>&- &
    eval "sent_$1=0"
    eval "exec $2>\"\$D/$1.in\""
}
lines_at_least() {
    [ "$(wc -l <"$1")" -ge "$2" ]
}
# ask NAME FD COMMAND: print the command and its one-line answer (in $answer).
ask() {
    eval "n=\$((sent_$1 + 1)); sent_$1=\$n"
    echo "$1> $3"
    printf '%s\n' "$3" >&"$2" 2>/dev/null || true
    wait_until 10 lines_at_least "$D/$1.out" "$n" || fail "session $1 did not answer \"$3\""
    answer=$(sed -n "${n}p" "$D/$1.out")
    echo "   $answer"
}
# expect WHAT EXTENDED-REGEX
expect() {
    printf '%s\n' "$answer" | grep -Eq -- "$2" || fail "$1: expected /$2/, got \"$answer\""
}

# ---- the walk-through ------------------------------------------------------------

echo
echo "== dsm_demo: a supervisor, a worker per session, segments shared by handle =="
step "start the server (default backend) on a fresh data directory"
echo "\$ dsm_demo server -D $D --daemon"
"$DEMO" server -D "$D" -c log_connections=on --daemon || fail "the server did not start"
sup=$(cat "$D/dsm_demo.pid")
inst=$(sed -n 's/.*instance \([0-9a-f]\{16\}\).*/\1/p' "$D/dsm_demo.log" | tail -n 1)
show_log 'started: backend'

step "session A: dsm_demo_create('something'); session B reads it back by its handle"
session A 3
session B 4
ask A 3 "create something"
expect "create" '^[0-9a-f]{16}$'
h=$answer
ask B 4 "read $h"
expect "B's read" '^something$'

step "A pins the segment and quits: the text outlives its session"
ask A 3 "pin $h"
expect "pin" "^pinned $h\$"
ask A 3 "quit"
expect "quit" '^bye$'
ask B 4 "read $h"
expect "read after A quit" '^something$'

step "B unpins it: nobody maps it any more, so it is destroyed"
ask B 4 "unpin $h"
expect "unpin" "^unpinned $h\$"
ask B 4 "read $h"
expect "read after unpin" "^ERROR: no dynamic shared memory segment with handle $h\$"

step "a worker crash (crash makes C's worker call abort()); the default policy is a crash reset"
session C 5
ask C 5 "create doomed"
expect "create" '^[0-9a-f]{16}$'
hc=$answer
echo "\$ dsm_demo create -D \$D --pin 'pinned, but doomed too'"
hp=$("$DEMO" create -D "$D" --pin "pinned, but doomed too") || fail "one-shot create --pin"
echo "   $hp"
echo "   /dev/shm: $(our_objects | wc -l) segment(s) of this server, the control segment included"
ask C 5 "crash"
expect "crash" '^crashed'
wait_until 10 grep -q "accepting connections again" "$D/dsm_demo.log" || fail "no crash reset was logged"
show_log 'terminated by signal|crash reset|other session|reinitialized'
ask B 4 "list"
expect "B after the reset" '^ERROR: connection to the server was lost'
echo "\$ echo 'read $hc' | dsm_demo session -D \$D   # the server still accepts sessions"
answer=$(echo "read $hc" | "$DEMO" session -D "$D" 2>&1) || true
echo "   $answer"
expect "read after the reset" "^ERROR: no dynamic shared memory segment with handle $hc\$"
echo "   /dev/shm: $(our_objects | wc -l) segment(s): the new control segment only"
[ "$(our_objects | wc -l)" -eq 1 ] || fail "segments survived the crash reset"

step "kill -9 of the supervisor and all its workers leaves segments behind"
session E 3
ask E 3 "create left behind"
expect "create" '^[0-9a-f]{16}$'
workers=$(children_of "$sup")
# Frozen first, so that none of them can react to another's death (the
# supervisor would reap and reset, a worker would end its session cleanly).
echo "\$ kill -STOP $sup $(echo $workers); kill -9 $sup $(echo $workers)"
kill -STOP "$sup" $workers
kill -9 "$sup" $workers
for p in $workers $sup; do
    wait_until 10 eval "! proc_alive $p" || fail "process $p did not die"
done
exec 3>&-
our_objects | sed 's/^/   \/dev\/shm: /'
[ "$(our_objects | wc -l)" -ge 2 ] || fail "expected leftovers after kill -9"

step "restart: the start-up log reports what it removed"
echo "\$ dsm_demo server -D $D --daemon"
"$DEMO" server -D "$D" --daemon || fail "the restart failed"
old=$sup
sup=$(cat "$D/dsm_demo.pid")
sed -n "/server starting (pid $sup)/,\$p" "$D/dsm_demo.log" | grep removed | sed 's/^/   log: /'
grep -q "removed the previous control segment" "$D/dsm_demo.log" || fail "no cleanup was logged"
[ "$(our_objects | wc -l)" -eq 1 ] || fail "leftovers survived the restart"
echo "   (the old supervisor was pid $old; /dev/shm now holds only the new control segment)"

step "stop"
echo "\$ dsm_demo stop -D $D"
"$DEMO" stop -D "$D" || fail "stop failed"
sup=
show_log 'shut down'
[ -z "$(our_objects)" ] || fail "segments left after stop: $(our_objects)"

echo
echo "== left behind in /dev/shm (dynshm.*) and ipcs -m (ours) =="
ls /dev/shm | grep '^dynshm\.' || echo "/dev/shm: nothing"
ipcs -m | awk -v u="$(id -un)" 'NR>3 && $3==u && $4=="600"' | grep . || echo "ipcs -m: nothing"
