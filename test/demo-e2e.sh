#!/bin/sh
# SPDX-License-Identifier: MIT
# test/demo-e2e.sh - drives the real dsm_demo server and client end to end,
# on every backend (posix, sysv, mmap, none); run by `make check`.
#
# The unit suites prove each function; this proves the whole promise of
# dynshm the way a user meets it: a supervisor forks a worker per session,
# segments pass between sessions by handle (PostgreSQL's dsm_demo_create()
# in one session, dsm_demo_read() in another), pins outlive sessions, a
# 64 MiB binary payload survives the trip, a client that vanishes mid-create
# leaks nothing, a worker crash is answered by a crash reset (or, under
# dsm_crash_policy=reclaim, by releasing only the dead worker's references),
# a worker whose supervisor is killed ends its session, a kill -9 of the
# whole server is cleaned up by the next start, and after a stop nothing is
# left in /dev/shm, in the data directory's dynshm_mmap/ or in `ipcs -m`.
# Also: bad settings, a second server on one directory, max_connections,
# stop on a full server, no server running, and the backend none.
#
# Two sessions run at once, each fed through a FIFO and answering into a
# file; the test waits (with a timeout) for each answer line.  Objects are
# counted by name (posix: /dev/shm/dynshm.<instance>.*, mmap: the data
# directory), or for sysv by creator pid (`ipcs -m -p`): the server runs
# with log_connections=on, so its log names every worker it started.
# Counting by our own pids keeps the test right while other tests create
# segments in parallel.
#
# Works from a VPATH build (make distcheck): the program is found relative
# to the current directory (the build directory); nothing is read from
# $srcdir.  Every wait has a timeout and a watchdog bounds the whole run.
# Whatever happens, the EXIT trap kills the processes this test started
# and removes what it created (restarting a server on each data directory,
# whose start-up cleanup removes leftovers, then stopping it).
# Prints one line per check.  Exit status: 0 all passed, 1 a check failed,
# 99 the test could not run.

LC_ALL=C
export LC_ALL
unset DSM_DEMO_DIR

DEMO=${DSM_DEMO:-./contrib/dsm_demo/dsm_demo}
case $DEMO in /*) ;; *) DEMO=$(pwd)/$DEMO ;; esac
if [ ! -x "$DEMO" ]; then
    echo "ERROR: $DEMO is not built"
    exit 99
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/dsm_demo-e2e.XXXXXX") || exit 99
: >"$T/pids"
: >"$T/clients"
ipcs -m 2>/dev/null | awk '$2 ~ /^[0-9]+$/ { print $2 }' | sort >"$T/ipcs.before"

. "${srcdir:-.}/test/testlib.sh"
# expect_match DESCRIPTION ACTUAL EXTENDED-REGEX
expect_match() {
    if printf '%s\n' "$2" | grep -Eq -- "$3"; then ok "$1"; else not_ok "$1: got \"$2\", expected /$3/"; fi
}


is_dsm_demo() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q dsm_demo
}

# ---- cleanup, whatever happened ----------------------------------------------

cleanup() {
    set +e
    for fd in 3 4 5 6 7 8; do
        eval "exec $fd>&-"
    done 2>/dev/null
    for p in $(cat "$T/pids"); do
        if proc_alive "$p" && is_dsm_demo "$p"; then
            kill -9 $(children_of "$p") "$p" 2>/dev/null
        fi
    done
    for p in $(cat "$T/clients"); do
        kill -9 "$p" 2>/dev/null
    done
    # A data directory with a state file may hold leftovers: a server's own
    # start-up cleanup is the tool for that.
    for d in "$T"/*/; do
        [ -f "$d/dynshm.state" ] || continue
        wait_for 5 no_live_server "$d"
        timeout 20 "$DEMO" server -D "$d" --daemon >/dev/null 2>&1 &&
            timeout 20 "$DEMO" stop -D "$d" >/dev/null 2>&1
    done
    for i in $(cat "$T"/*/dsm_demo.log 2>/dev/null | sed -n 's/.*instance \([0-9a-f]\{16\}\).*/\1/p' | sort -u); do
        rm -f /dev/shm/dynshm."$i".*
    done
    [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
    rm -rf "$T"
}
no_live_server() {
    for p in $(cat "$T/pids"); do
        proc_alive "$p" && is_dsm_demo "$p" && return 1
    done
    return 0
}
trap cleanup EXIT
trap 'echo "FAIL - interrupted or timed out"; exit 1' INT TERM HUP
trap '' PIPE # a session that ended makes writes to its FIFO fail, not kill us

(sleep 55 && kill -TERM $$) >/dev/null 2>&1 &
watchdog=$!

# ---- the server ---------------------------------------------------------------

# start_server DIR [SERVER OPTIONS]: sets $sup to the supervisor's pid.
start_server() {
    _d=$1
    shift
    if ! timeout 20 "$DEMO" server -D "$_d" -c log_connections=on "$@" --daemon \
        >"$T/start.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&-; then
        sed 's/^/    /' "$T/start.out"
        return 1
    fi
    sup=$(cat "$_d/dsm_demo.pid")
    echo "$sup" >>"$T/pids"
}

stop_server() {
    timeout 30 "$DEMO" stop -D "$1" -t 20 2>&1
}

log_has() {
    grep -q -- "$2" "$1/dsm_demo.log"
}

# Every process of ours: supervisors, and workers as their logs name them.
our_pids() {
    {
        cat "$T/pids"
        cat "$T"/*/dsm_demo.log 2>/dev/null |
            sed -n 's/.*session worker \([0-9]*\) started.*/\1/p'
    } | sort -u
}

# Our System V segments: created by one of our processes, and not there before.
sysv_ours() {
    our_pids >"$T/ourpids"
    ipcs -m -p 2>/dev/null |
        awk 'FILENAME == ARGV[1] { ours[$1] = 1; next }
             FILENAME == ARGV[2] { before[$1] = 1; next }
             $1 ~ /^[0-9]+$/ && ($3 in ours) && !($1 in before) { print $1 }' \
            "$T/ourpids" "$T/ipcs.before" -
}

# count_objects BACKEND DIR INSTANCE: how many segments of ours exist.
count_objects() {
    case $1 in
    posix) ls /dev/shm 2>/dev/null | grep -c "^dynshm\.$3\." ;;
    mmap) ls "$2/dynshm_mmap" 2>/dev/null | grep -c "^dynshm\.$3\." ;;
    sysv) sysv_ours | wc -l | tr -d ' ' ;;
    *) echo 0 ;;
    esac
}

# ---- sessions -------------------------------------------------------------------

# session_open NAME FD DIR: a session reading commands from a FIFO on fd FD.
session_open() {
    rm -f "$T/$1.in" "$T/$1.err"
    : >"$T/$1.out" # before the background job creates it: we count its lines at once
    mkfifo "$T/$1.in" || return 1
    # The other sessions' FIFO ends must not leak into this one, or they never see EOF.
    timeout 40 "$DEMO" session -D "$3" <"$T/$1.in" >"$T/$1.out" 2>"$T/$1.err" \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- &
    eval "spid_$1=\$!; sent_$1=0"
    echo $! >>"$T/clients"
    eval "exec $2>\"\$T/$1.in\""
}

answer_ready() {
    [ "$(wc -l <"$T/$1.out")" -ge "$2" ] || proc_gone "$3"
}

# ask NAME FD COMMAND: send one command, wait for its answer line in $answer.
ask() {
    eval "_n=\$((sent_$1 + 1)); sent_$1=\$_n; _p=\$spid_$1"
    printf '%s\n' "$3" >&"$2" 2>/dev/null
    if wait_for 15 answer_ready "$1" "$_n" "$_p"; then
        answer=$(sed -n "${_n}p" "$T/$1.out")
        [ -n "$answer" ] || answer="(session ended without an answer: $(cat "$T/$1.err"))"
    else
        answer="(no answer within 15 s)"
    fi
}

# session_close NAME FD: end of input; the exit status lands in $status.
session_close() {
    eval "exec $2>&-"
    eval "_p=\$spid_$1"
    if wait_for 15 proc_gone "$_p"; then
        wait "$_p"
        status=$?
    else
        status="(still running after 15 s)"
    fi
}

# ---- checks that need no particular backend -------------------------------------

general_checks() {
    echo "# ---- general ----"
    out=$(timeout 10 "$DEMO" read -D "$T/nothing" 0123456789abcdef 2>&1)
    expect "no server: read fails with a clear message" "$?: $out" \
        "1: dsm_demo: no dsm_demo server is running on $T/nothing"
    out=$(timeout 10 "$DEMO" stop -D "$T/nothing" 2>&1)
    expect "no server: stop fails with a clear message" "$?: $out" \
        "1: dsm_demo: no dsm_demo server is running on $T/nothing"
    out=$(timeout 10 "$DEMO" server -D "$T/bad" -c dynamic_shared_memory_type=bogus 2>&1)
    expect_match "bad setting: refused, naming setting, value and valid values" "$?: $out" \
        '^1: dsm_demo: invalid value for parameter "dynamic_shared_memory_type": "bogus"; valid values: posix.*none$'
    out=$(timeout 10 "$DEMO" server -D "$T/bad" -c max_connections=0 2>&1)
    expect_match "bad setting: an application setting out of range is refused" "$?: $out" \
        '^1: .*"max_connections".*1 \.\. '
    [ ! -e "$T/bad" ]
    expect "bad setting: the data directory was not touched" "$?" 0

    D=$T/maxconn
    if ! start_server "$D" -c max_connections=1; then
        not_ok "max_connections: server starts"
        return
    fi
    session_open A 3 "$D"
    ask A 3 "list"
    expect "max_connections=1: the first session is served" "$answer" "no mappings"
    out=$(echo list | timeout 10 "$DEMO" session -D "$D" 2>&1)
    expect "max_connections=1: a second session is refused" "$?: $out" \
        "1: dsm_demo: ERROR: sorry, too many sessions already (max_connections = 1)"
    out=$(stop_server "$D")
    expect "max_connections=1: stop works while the server is full" "$?: $out" "0: server stopped"
    ask A 3 "list"
    expect "max_connections=1: the open session is told why it ended" "$answer" \
        "ERROR: the server ended the session: the server is shutting down"
    session_close A 3
    if ! start_server "$D" -c max_connections=1; then
        not_ok "max_connections=1: restart"
        return
    fi
    session_open A 3 "$D"
    ask A 3 "list"
    session_close A 3
    out=$(echo list | timeout 10 "$DEMO" session -D "$D" 2>&1)
    expect "max_connections=1: once a session ends, the next is served" "$?: $out" "0: no mappings"

    # A worker whose supervisor was killed must not serve on.
    session_open A 3 "$D"
    ask A 3 "create orphaned"
    expect_match "supervisor killed alone: a session holds a segment" "$answer" '^[0-9a-f]{16}$'
    worker=$(children_of "$sup")
    kill -9 "$sup"
    wait_for 10 proc_gone "$worker"
    expect "supervisor killed alone: its worker ends its session by itself" "$?" 0
    ask A 3 "list"
    expect "supervisor killed alone: ... and tells the client why" "$answer" \
        "ERROR: the server ended the session: the supervisor is gone"
    session_close A 3
    if start_server "$D"; then
        ok "supervisor killed alone: a new server starts on the directory"
    else
        not_ok "supervisor killed alone: a new server starts on the directory"
    fi
    out=$(stop_server "$D")
    expect "supervisor killed alone: stop" "$?: $out" "0: server stopped"
}

# ---- the backend none ------------------------------------------------------------

none_checks() {
    D=$1
    session_open A 3 "$D"
    ask A 3 "create something"
    expect_match "none: create in a session gives the library's disabled error and a hint" "$answer" \
        '^ERROR: dynamic shared memory is disabled \(dynamic_shared_memory_type = none\) HINT: Set dynamic_shared_memory_type to one of posix, [a-z, ]+ to use it\.$'
    expect_match "none: the failed create is an ERROR line in the server log too" \
        "$(grep -c 'ERROR: *session [0-9]*: dynamic shared memory is disabled' "$D/dsm_demo.log")" '^[1-9]' 
    out=$(timeout 10 "$DEMO" create -D "$D" something 2>&1)
    expect_match "none: one-shot create fails the same way" "$?: $out" \
        '^1: dsm_demo: dynamic shared memory is disabled \(dynamic_shared_memory_type = none\) HINT: Set dynamic_shared_memory_type to one of posix, [a-z, ]+ to use it\.$'
    ask A 3 "crash"
    expect_match "none: a worker crash" "$answer" '^crashed'
    session_close A 3
    out=$(echo "read 0123456789abcdef" | timeout 10 "$DEMO" session -D "$D" 2>&1)
    expect_match "none: the server keeps accepting after the crash" "$?: $out" \
        '^1: ERROR: dynamic shared memory is disabled \(dynamic_shared_memory_type = none\) HINT: Set dynamic_shared_memory_type to one of posix, [a-z, ]+ to use it\.$'
}

# ---- one backend --------------------------------------------------------------------

big_ok() {
    _need=$((320 * 1024)) # kB: the file, two copies read back, the segment
    _tmp=$(df -Pk "$T" | awk 'NR == 2 { print $4 }')
    [ "${_tmp:-0}" -ge "$_need" ] || return 1
    case $1 in
    posix) [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -ge 196608 ] ;;
    sysv) awk -v m="$(cat /proc/sys/kernel/shmmax)" 'BEGIN { exit !(m + 0 >= 134217728) }' ;;
    *) true ;;
    esac
}

backend_checks() {
    b=$1
    D=$T/$b
    echo "# ---- backend $b ----"
    if ! start_server "$D" -c dynamic_shared_memory_type="$b" -c max_connections=8; then
        not_ok "$b: server starts"
        return
    fi
    ok "$b: server starts (supervisor pid $sup)"
    inst=$(sed -n 's/.*instance \([0-9a-f]\{16\}\).*/\1/p' "$D/dsm_demo.log" | tail -n 1)
    if [ "$b" = none ]; then
        none_checks "$D"
        out=$(stop_server "$D")
        expect "$b: stop" "$?: $out" "0: server stopped"
        return
    fi
    expect "$b: at start only the control segment exists" "$(count_objects "$b" "$D" "$inst")" 1

    # -- dsm_demo_create('something') in A, dsm_demo_read() in B
    session_open A 3 "$D"
    session_open B 4 "$D"
    ask A 3 "create something"
    hA=$answer
    expect_match "$b: session A creates 'something'" "$hA" '^[0-9a-f]{16}$'
    ask B 4 "read $hA"
    expect "$b: session B reads it back" "$answer" "something"
    ask A 3 "list"
    expect "$b: session A lists its mapping" "$answer" "1 mapping: $hA (9 bytes)"
    session_close A 3
    expect "$b: session A quits" "$status" 0
    ask B 4 "read $hA"
    expect "$b: with A gone, B's next read fails" "$answer" \
        "ERROR: no dynamic shared memory segment with handle $hA"

    # -- pin and unpin
    session_open C 5 "$D"
    ask C 5 "create pinned text"
    hP=$answer
    ask C 5 "pin $hP"
    expect "$b: session C pins its segment" "$answer" "pinned $hP"
    session_close C 5
    ask B 4 "read $hP"
    expect "$b: the pinned text outlives its session" "$answer" "pinned text"
    out=$(timeout 10 "$DEMO" read -D "$D" "$hP" 2>&1)
    expect "$b: one-shot read of the pinned text" "$?: $out" "0: pinned text"
    ask B 4 "unpin $hP"
    expect "$b: session B unpins it" "$answer" "unpinned $hP"
    ask B 4 "read $hP"
    expect "$b: once unpinned and unmapped it is gone" "$answer" \
        "ERROR: no dynamic shared memory segment with handle $hP"

    # -- one-shot forms
    h1=$(timeout 10 "$DEMO" create -D "$D" one shot 2>"$T/err")
    expect_match "$b: one-shot create prints the handle" "$?: $h1" '^0: [0-9a-f]{16}$'
    expect_match "$b: ... and warns the segment dies with the one-shot session" "$(cat "$T/err")" \
        'destroyed when it ends.*--pin'
    out=$(timeout 10 "$DEMO" read -D "$D" "$h1" 2>&1)
    expect "$b: ... which it did" "$?: $out" \
        "1: dsm_demo: no dynamic shared memory segment with handle $h1"
    h2=$(timeout 10 "$DEMO" create -D "$D" --pin kept text 2>&1)
    out=$(timeout 10 "$DEMO" read -D "$D" "$h2" 2>&1)
    expect "$b: one-shot create --pin keeps the text" "$?: $out" "0: kept text"
    out=$(timeout 10 "$DEMO" unpin -D "$D" "$h2" 2>&1)
    expect "$b: one-shot unpin" "$?: $out" "0: unpinned $h2"

    # -- a 64 MiB binary payload, there and back
    if big_ok "$b"; then
        ask B 4 "create --file $BIG"
        hB=$answer
        expect_match "$b: 64 MiB create --file" "$hB" '^[0-9a-f]{16}$'
        ask B 4 "read $hB --file $T/big.out"
        expect "$b: 64 MiB read --file" "$answer" "67108864 bytes written to $T/big.out"
        cmp -s "$BIG" "$T/big.out"
        expect "$b: 64 MiB payload comes back byte for byte (cmp)" "$?" 0
        rm -f "$T/big.out"
        out=$(timeout 20 "$DEMO" read -D "$D" "$hB" --file "$T/big.out" 2>&1) &&
            cmp -s "$BIG" "$T/big.out"
        expect "$b: ... and from another session (one-shot read --file, cmp)" "$?: $out" \
            "0: 67108864 bytes written to $T/big.out"
        rm -f "$T/big.out"
        ask B 4 "detach $hB"
        expect "$b: detach the 64 MiB segment" "$answer" "detached $hB"
    else
        echo "skip - $b: 64 MiB payload: not enough room in /dev/shm, shmmax or $T"
    fi

    # -- a client that vanishes in the middle of a command
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$D/dsm_demo.sock" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
f.readline()                                   # the server's hello
s.sendall(b"dsm_demo/1\n")
s.sendall(b"C\0\0\0" + struct.pack(">I", 1 << 20) + b"x" * 1000)  # 1 MiB promised, 1000 sent
s.close()
EOF
        ask B 4 "list"
        wait_for 10 test "$(count_objects "$b" "$D" "$inst")" -eq 1
        expect "$b: a client gone mid-create leaves nothing (count of segments)" \
            "$(count_objects "$b" "$D" "$inst")" 1
    fi
    session_close B 4
    expect "$b: session B quits (status 1: some of its commands failed, as they should)" \
        "$status" 1
    expect "$b: with every session gone only the control segment is left" \
        "$(count_objects "$b" "$D" "$inst")" 1

    # -- a worker crash under the default policy: crash reset
    session_open X 6 "$D"
    session_open Y 7 "$D"
    ask X 6 "create doomed"
    hX=$answer
    ask Y 7 "create also doomed"
    hY=$answer
    hPin=$(timeout 10 "$DEMO" create -D "$D" --pin pinned and doomed 2>/dev/null)
    expect "$b: before the crash: control segment and 3 segments" \
        "$(count_objects "$b" "$D" "$inst")" 4
    ask X 6 "crash"
    expect_match "$b: session X's worker crashes" "$answer" '^crashed'
    wait_for 15 log_has "$D" "accepting connections again"
    expect "$b: the supervisor performs a crash reset (log)" "$?" 0
    ask Y 7 "list"
    expect_match "$b: the other session was disconnected" "$answer" \
        '^ERROR: connection to the server was lost'
    session_close Y 7
    expect "$b: ... and its client exits with status 1" "$status" 1
    session_close X 6
    session_open Z 8 "$D"
    ask Z 8 "read $hY"
    expect "$b: after the reset the server accepts sessions; segments are gone" "$answer" \
        "ERROR: no dynamic shared memory segment with handle $hY"
    ask Z 8 "read $hPin"
    expect "$b: ... pinned ones too" "$answer" \
        "ERROR: no dynamic shared memory segment with handle $hPin"
    session_close Z 8
    expect "$b: after the reset only the control segment is left" \
        "$(count_objects "$b" "$D" "$inst")" 1

    # -- a worker crash under dsm_crash_policy=reclaim
    out=$(stop_server "$D")
    expect "$b: stop" "$?: $out" "0: server stopped"
    if ! start_server "$D" -c dynamic_shared_memory_type="$b" -c dsm_crash_policy=reclaim; then
        not_ok "$b: server starts with dsm_crash_policy=reclaim"
        return
    fi
    session_open A 3 "$D"
    session_open B 4 "$D"
    ask A 3 "create survivor"
    hS=$answer
    ask B 4 "create victim"
    hV=$answer
    ask B 4 "read $hS"
    expect "$b: reclaim: B reads A's text" "$answer" "survivor"
    ask B 4 "crash"
    expect_match "$b: reclaim: session B's worker crashes" "$answer" '^crashed'
    session_close B 4
    wait_for 15 log_has "$D" "the other sessions go on"
    expect "$b: reclaim: the supervisor releases the dead worker's references (log)" "$?" 0
    log_has "$D" "released its references"
    expect "$b: reclaim: ... as the library reports (log)" "$?" 0
    ask A 3 "list"
    expect "$b: reclaim: session A and its mapping survive" "$answer" "1 mapping: $hS (8 bytes)"
    session_open C 5 "$D"
    ask C 5 "read $hS"
    expect "$b: reclaim: others still read A's text" "$answer" "survivor"
    ask C 5 "read $hV"
    expect "$b: reclaim: what only the dead worker held is gone" "$answer" \
        "ERROR: no dynamic shared memory segment with handle $hV"
    session_close C 5
    expect "$b: reclaim: control segment and A's segment are left" \
        "$(count_objects "$b" "$D" "$inst")" 2

    # -- kill -9 of the supervisor and all its workers, then a restart
    hK=$(timeout 10 "$DEMO" create -D "$D" --pin left behind 2>/dev/null)
    workers=$(children_of "$sup")
    expect_match "$b: kill -9: the server has workers" "$workers" '[0-9]'
    # Freeze them all first: otherwise the supervisor could reap a killed worker
    # (and reclaim), or a worker see its supervisor die (and detach), in between.
    kill -STOP "$sup" $workers
    kill -9 "$sup" $workers
    wait_for 10 proc_gone "$sup"
    for w in $workers; do wait_for 10 proc_gone "$w"; done
    session_close A 3
    expect "$b: kill -9 left the old instance's segments behind" \
        "$(count_objects "$b" "$D" "$inst")" 3
    if ! start_server "$D" -c dynamic_shared_memory_type="$b"; then
        not_ok "$b: restart after kill -9"
        return
    fi
    ok "$b: restart after kill -9"
    sed -n "/server starting (pid $sup)/,\$p" "$D/dsm_demo.log" | grep removed >"$T/removed"
    sed 's/^/    /' "$T/removed"
    grep -q "removed the previous control segment" "$T/removed"
    expect "$b: the start-up log reports the old control segment removed" "$?" 0
    expect_match "$b: ... and the leftover segments removed" "$(cat "$T/removed")" \
        "removed [0-9]+ shared memory object\(s\) left by a previous instance"
    expect "$b: after the restart only the new control segment exists" \
        "$(count_objects "$b" "$D" "$inst")" 1
    out=$(timeout 10 "$DEMO" read -D "$D" "$hK" 2>&1)
    expect "$b: the old pinned segment is gone" "$?: $out" \
        "1: dsm_demo: no dynamic shared memory segment with handle $hK"

    # -- one supervisor per data directory
    out=$(timeout 10 "$DEMO" server -D "$D" 2>&1)
    expect "$b: a second server on the same directory is refused (exit status)" "$?" 1
    expect_match "$b: ... saying why" "$out" \
        "FATAL: +data directory \".*\" is in use: .*\\(last supervisor: pid $sup\\)"

    # -- stop, and nothing is left
    out=$(stop_server "$D")
    expect "$b: stop" "$?: $out" "0: server stopped"
    expect "$b: after stop: no segment of ours at all" "$(count_objects "$b" "$D" "$inst")" 0
    [ ! -e "$D/dsm_demo.sock" ] && [ ! -e "$D/dsm_demo.pid" ]
    expect "$b: after stop: socket and pid file removed" "$?" 0
}

# ---- main ------------------------------------------------------------------------------

BIG=$T/big.in
head -c 67108864 /dev/urandom >"$BIG" || exit 99

general_checks
# The backends this build and platform offer, as the settings module lists them.
available=$("$DEMO" server -D "$T/probe" -c dynamic_shared_memory_type=? 2>&1 |
    sed -n 's/.*valid values: //p' | tr -d ',')
for b in posix sysv mmap none; do
    case " $available " in
    *" $b "*) backend_checks "$b" ;;
    *) echo "skip - $b: not available in this build (valid values: $available)" ;;
    esac
done

echo "# ---- after everything ----"
left=$(ls /dev/shm 2>/dev/null | grep -E "^dynshm\.($(cat "$T"/*/dsm_demo.log | sed -n 's/.*instance \([0-9a-f]\{16\}\).*/\1/p' | sort -u | paste -sd'|' -))\." )
expect "/dev/shm: nothing with our instance prefixes" "$left" ""
left=$(ls "$T"/*/dynshm_mmap 2>/dev/null | grep -v ':$' | grep .)
expect "data directories: dynshm_mmap/ is empty" "$left" ""
left=$(sysv_ours | paste -sd' ' -)
expect "ipcs -m: no segment created by this test (compared with before)" "$left" ""

echo "demo-e2e: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
