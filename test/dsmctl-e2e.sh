#!/bin/sh
# SPDX-License-Identifier: MIT
# test/dsmctl-e2e.sh - dsmctl against a real dsm_demo server, on every
# backend (posix, sysv, mmap, none; memfd's own shorter checks); run by `make check`.
#
# For each backend: start a demo server, create segments from several
# sessions (kept open through FIFOs), pinned and not, and check that
# `dsmctl list --json` shows exactly what the sessions hold (handles,
# sizes, reference counts, pins, holder pids) and `status` calls the
# instance alive; `gc` refuses.  Then kill -9 the supervisor and every
# worker at once: `status` calls it dead, `gc --dry-run` lists exactly the
# leftovers (compared with /dev/shm, DIR/dynshm_mmap, or the System V keys
# `ipcs -m` shows for our processes) and removes nothing, `gc` removes them
# all.  A second instance runs beside the first all along and must be
# untouched.  A damaged control segment (posix, mmap) or state file (sysv)
# makes gc fall back to the name-prefix sweep and say so; for sysv that
# sweep can prove nothing, so nothing is removed until the state file is
# whole again.  Also: usage and data directory errors, and the time
# `dsmctl list` takes over 10,000 segments (printed; must be under 1 s).
#
# Works from a VPATH build (make distcheck): programs are found relative
# to the current directory (the build directory); nothing is read from
# $srcdir.  Every wait has a timeout and a watchdog bounds the run (170 s: sanitizer builds on a loaded machine are slow).
# Whatever happens, the EXIT trap kills the processes this test started and
# removes what they created.  Prints one line per check.
# Exit status: 0 all passed, 1 a check failed, 99 the test could not run.

LC_ALL=C
export LC_ALL
unset DSM_DEMO_DIR

abs() {
    case $1 in /*) echo "$1" ;; *) echo "$(pwd)/$1" ;; esac
}
DEMO=$(abs "${DSM_DEMO:-./contrib/dsm_demo/dsm_demo}")
DSMCTL=$(abs "${DSMCTL:-./tools/dsmctl/dsmctl}")
FILL=$(abs "${DSMCTL_FILL:-./test/dsmctl_fill}")
for p in "$DEMO" "$DSMCTL"; do
    if [ ! -x "$p" ]; then
        echo "ERROR: $p is not built"
        exit 99
    fi
done
have_python=no
command -v python3 >/dev/null 2>&1 && have_python=yes

T=$(mktemp -d "${TMPDIR:-/tmp}/dsmctl-e2e.XXXXXX") || exit 99
: >"$T/pids"     # processes to kill at the end (checked to be ours first)
: >"$T/clients"  # session clients

. "${srcdir:-.}/test/testlib.sh"
# expect_match DESCRIPTION ACTUAL EXTENDED-REGEX (ACTUAL's lines joined by spaces)
expect_match() {
    if printf '%s\n' "$2" | tr '\n' ' ' | sed 's/ $//' | grep -Eq -- "$3"; then
        ok "$1"
    else
        not_ok "$1: expected /$3/ in:"
        printf '%s\n' "$2" | sed 's/^/    /'
    fi
}
# expect_same DESCRIPTION FILE-GOT FILE-WANTED: equal sorted line sets
expect_same() {
    sort "$2" >"$2.s"
    sort "$3" >"$3.s"
    if cmp -s "$2.s" "$3.s"; then
        ok "$1 ($(wc -l <"$3.s" | tr -d ' ') lines)"
    else
        not_ok "$1: differences (< got, > wanted):"
        diff "$2.s" "$3.s" | grep '^[<>]' | sed 's/^/    /'
    fi
}

is_ours() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -Eq 'dsm_demo|dsmctl_fill'
}

# ---- cleanup, whatever happened -------------------------------------------------

# Pids of every process of ours that may have created a System V segment.
all_our_pids() {
    {
        cat "$T/pids"
        cat "$T"/*/dsm_demo.log 2>/dev/null | sed -n 's/.*session worker \([0-9]*\) started.*/\1/p'
    } | sort -u
}
# "shmid key" of System V segments created by the given pids (file of pids).
sysv_by_creators() {
    ipcs -m -p 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1, $3 }' >"$T/ipcs.p"
    ipcs -m 2>/dev/null | awk '$2 ~ /^[0-9]+$/ { print $2, $1 }' >"$T/ipcs.k"
    awk 'FILENAME == ARGV[1] { ours[$1] = 1; next }
         FILENAME == ARGV[2] { if ($2 in ours) mine[$1] = 1; next }
         ($1 in mine) { print $1, $2 }' "$1" "$T/ipcs.p" "$T/ipcs.k"
}

cleanup() {
    set +e
    for fd in 3 4 5 6; do
        eval "exec $fd>&-"
    done 2>/dev/null
    for p in $(cat "$T/pids"); do
        if proc_alive "$p" && is_ours "$p"; then
            kill -9 $(children_of "$p") "$p" 2>/dev/null
        fi
    done
    for p in $(cat "$T/clients"); do
        kill -9 "$p" 2>/dev/null
    done
    for p in $(cat "$T/pids"); do
        wait_for 5 proc_gone "$p"
    done
    for d in "$T"/*/; do
        [ -f "$d/dynshm.state" ] || continue
        timeout 20 "$DSMCTL" -D "$d" gc >/dev/null 2>&1 ||
            { timeout 20 "$DEMO" server -D "$d" --daemon >/dev/null 2>&1 &&
                timeout 20 "$DEMO" stop -D "$d" >/dev/null 2>&1; }
    done
    for i in $(sort -u "$T/instances" 2>/dev/null); do
        rm -f /dev/shm/dynshm."$i".*
    done
    all_our_pids >"$T/ourpids"
    for id in $(sysv_by_creators "$T/ourpids" | awk '{ print $1 }'); do
        ipcrm -m "$id" 2>/dev/null
    done
    [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "FAIL - interrupted or timed out"; exit 1' INT TERM HUP
trap '' PIPE

(sleep 170 && kill -TERM $$) >/dev/null 2>&1 &
watchdog=$!

# ---- servers, sessions, dsmctl ------------------------------------------------------

# start_server DIR [OPTIONS]: sets $sup (the supervisor's pid) and $inst.
start_server() {
    _d=$1
    shift
    if ! timeout 20 "$DEMO" server -D "$_d" -c log_connections=on "$@" --daemon \
        >"$T/start.out" 2>&1 3>&- 4>&- 5>&- 6>&-; then
        sed 's/^/    /' "$T/start.out"
        return 1
    fi
    sup=$(cat "$_d/dsm_demo.pid")
    echo "$sup" >>"$T/pids"
    inst=$(timeout 20 "$DSMCTL" -D "$_d" status 2>/dev/null | sed -n 's/^instance: *//p')
    echo "$inst" >>"$T/instances"
}

# kill_all SUPERVISOR: kill -9 it and every worker at once, and wait until gone.
kill_all() {
    _w=$(children_of "$1")
    # Stopped first, so neither can react to the other's death in between.
    kill -STOP "$1" $_w 2>/dev/null
    kill -9 "$1" $_w 2>/dev/null
    for _p in "$1" $_w; do
        wait_for 10 proc_gone "$_p" || return 1
    done
}

# session_open NAME FD DIR: a session reading commands from a FIFO on fd FD.
session_open() {
    rm -f "$T/$1.in"
    : >"$T/$1.out"
    mkfifo "$T/$1.in" || return 1
    timeout 45 "$DEMO" session -D "$3" <"$T/$1.in" >"$T/$1.out" 2>"$T/$1.err" \
        3>&- 4>&- 5>&- 6>&- &
    eval "spid_$1=\$!; sent_$1=0"
    echo $! >>"$T/clients"
    eval "exec $2>\"\$T/$1.in\""
}
answer_ready() {
    [ "$(wc -l <"$T/$1.out")" -ge "$2" ] || proc_gone "$3"
}
# ask NAME FD COMMAND: one command; its answer line lands in $answer.
ask() {
    eval "_n=\$((sent_$1 + 1)); sent_$1=\$_n; _p=\$spid_$1"
    printf '%s\n' "$3" >&"$2" 2>/dev/null
    if wait_for 15 answer_ready "$1" "$_n" "$_p"; then
        answer=$(sed -n "${_n}p" "$T/$1.out")
    else
        answer="(no answer within 15 s)"
    fi
}
session_close() {
    eval "exec $2>&-"
    eval "_p=\$spid_$1"
    wait_for 15 proc_gone "$_p"
}

# ctl ARGS...: run dsmctl; output (stdout and stderr) in $out, status in $rc.
ctl() {
    out=$(timeout 20 "$DSMCTL" "$@" 2>&1)
    rc=$?
}

# The OS names of one instance's objects, as dsmctl prints them.
# objects BACKEND DIR INSTANCE OURPIDS-FILE > lines
objects() {
    case $1 in
    posix) ls /dev/shm 2>/dev/null | grep "^dynshm\.$3\." | sed 's|^|/|' ;;
    mmap) ls "$2/dynshm_mmap" 2>/dev/null | grep "^dynshm\.$3\." | sed "s|^|$2/dynshm_mmap/|" ;;
    sysv) sysv_by_creators "$4" | awk '{ print "key " $2 }' ;;
    esac
}
count_objects() {
    objects "$@" | wc -l | tr -d ' '
}
# The pids that created this instance's objects: its supervisors and workers.
instance_pids() {
    {
        cat "$T/sups.$2" 2>/dev/null
        sed -n 's/.*session worker \([0-9]*\) started.*/\1/p' "$1/dsm_demo.log" 2>/dev/null
    } | sort -u >"$T/ip.$2"
    echo "$T/ip.$2"
}

# Names a gc report lists: `would remove ... "NAME" (...)` (the state file aside).
report_names() {
    grep -E '^(would remove|removed) ' | grep -Ev '^(would remove|removed) state file' |
        sed 's/^[^"]*"\(.*\)"[^"]*$/\1/'
}

# One line per segment from `list --json`: handle size refcnt pinned holders.
json_summary() {
    python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["segments"]:
    print(s["handle"], s["size"], s["refcnt"], "pinned" if s["pinned"] else "unpinned",
          ",".join(str(p) for p in sorted(s["holders"])) or "-")
EOF
}
json_field() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

# ---- usage and data directory errors -----------------------------------------------------

general_checks() {
    echo "# ---- usage and errors ----"
    ctl --help
    expect_match "--help: usage, exit 0" "$rc: $out" '^0: dsmctl - .*Usage:'
    ctl --version
    expect_match "--version" "$rc: $out" '^0: dsmctl \(dynshm\) [0-9]'
    ctl -D "$T"
    expect_match "no command: usage error (exit 2)" "$rc: $out" '^2: dsmctl: no command given'
    ctl -D "$T" frobnicate
    expect_match "unknown command: usage error (exit 2)" "$rc: $out" '^2: dsmctl: unknown command "frobnicate"'
    ctl status
    expect_match "no -D: usage error (exit 2)" "$rc: $out" '^2: dsmctl: no data directory given'
    ctl -D "$T" status --dry-run
    expect_match "--dry-run outside gc: usage error" "$rc: $out" '^2: dsmctl: --dry-run applies to gc only'
    ctl -D "$T/missing" status
    expect "missing DIR" "$rc: $out" "1: dsmctl: data directory \"$T/missing\" does not exist"
    : >"$T/plainfile"
    ctl -D "$T/plainfile" list
    expect "DIR is a file" "$rc: $out" "1: dsmctl: \"$T/plainfile\" is not a directory"
    mkdir "$T/empty"
    ctl -D "$T/empty" gc
    expect "DIR that never hosted dynshm" "$rc: $out" \
        "1: dsmctl: \"$T/empty\" is not a dynshm data directory: it has no dynshm.state and no dynshm.lock (no supervisor ever ran there)"
    # No permission: as root only another user can be refused.
    mkdir -m 700 "$T/private"
    : >"$T/private/dynshm.lock"
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        out=$(timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups "$DSMCTL" -D "$T/private" status 2>&1)
        rc=$?
        expect_match "no permission (as uid 65534)" "$rc: $out" \
            '^1: dsmctl: could not (access|open) data directory ".*/private": Permission denied$'
    elif [ "$(id -u)" != 0 ]; then
        chmod 000 "$T/private"
        ctl -D "$T/private" status
        chmod 700 "$T/private"
        expect "no permission" "$rc: $out" \
            "1: dsmctl: could not open data directory \"$T/private\": Permission denied"
    else
        echo "skip - no permission: running as root without setpriv"
    fi
}

# ---- the backend none ---------------------------------------------------------------------

none_checks() {
    echo "# ---- backend none ----"
    D="$T/none"
    if ! start_server "$D" -c dynamic_shared_memory_type=none; then
        not_ok "none: server starts"
        return
    fi
    ctl -D "$D" status
    expect_match "none: status says running, backend none, exit 0" "$rc: $out" \
        '^0: .*supervisor: +running.*backend: +none'
    ctl -D "$D" list
    expect_match "none: the list is empty" "$rc: $out" '^0: HANDLE +STATE.*0 segments'
    if [ "$have_python" = yes ]; then
        timeout 20 "$DSMCTL" -D "$D" list --json >"$T/none.json"
        expect "none: list --json has no segments" "$(json_field "$T/none.json" 'len(d["segments"]), d["backend"]')" "(0, 'none')"
    fi
    ctl -D "$D" gc
    expect_match "none: gc refuses while alive (exit 4)" "$rc: $out" "^4: dsmctl: a supervisor \\(pid $sup\\)"
    kill_all "$sup"
    ctl -D "$D" status
    expect_match "none: after kill -9 status says not running, leftovers (exit 5)" "$rc: $out" '^5: .*supervisor: +not running'
    ctl -D "$D" gc
    expect_match "none: gc removes only the state file" "$rc: $out" \
        '^0: removed state file .*gc: removed 0 shared memory objects'
}

# ---- the backend memfd ---------------------------------------------------------------------

# memfd segments have no names: list shows where each is held, and after a
# kill -9 of everything nothing is left for gc (or anyone) to remove.
memfd_files() {
    ls -l /proc/[0-9]*/fd 2>/dev/null | grep -c "memfd:dynshm\.$1\."
}

memfd_checks() {
    echo "# ---- backend memfd ----"
    D="$T/memfd"
    if ! start_server "$D" -c dynamic_shared_memory_type=memfd; then
        not_ok "memfd: server starts"
        return
    fi
    echo "$sup" >"$T/sups.memfd"
    hP=$(timeout 10 "$DEMO" create -D "$D" --pin pinned one-shot 2>/dev/null)
    ctl -D "$D" list
    expect_match "memfd: list names the segment and the process holding it" "$rc: $out" \
        "^0: .*$hP +live .*memfd:dynshm\\.$inst\\.$hP \\(pid $sup fd [0-9]+\\)"
    ctl -D "$D" gc
    expect_match "memfd: gc refuses while alive (exit 4)" "$rc: $out" "^4: dsmctl: a supervisor \\(pid $sup\\)"
    kill_all "$sup"
    expect "memfd: after kill -9 no process holds any segment of the instance" "$(memfd_files "$inst")" 0
    expect "memfd: ... and nothing is in /dev/shm" "$(ls /dev/shm | grep -c "^dynshm\.$inst\.")" 0
    ctl -D "$D" status
    expect_match "memfd: status: not running, only the state file left (exit 5)" "$rc: $out" \
        '^5: .*supervisor: +not running.*left behind: +only the state file \(memfd: the kernel freed every segment\)'
    ctl -D "$D" gc
    expect_match "memfd: gc removes only the state file" "$rc: $out" \
        '^0: removed state file .*gc: removed 0 shared memory objects'
}

# ---- one backend ----------------------------------------------------------------------------

backend_checks() {
    b=$1
    echo "# ---- backend $b ----"
    # Quotes and a space in the path: JSON must escape them.
    D="$T/$b dir \"q\""
    D2="$T/$b-other"
    if ! start_server "$D2" -c dynamic_shared_memory_type="$b"; then
        not_ok "$b: second server starts"
        return
    fi
    sup2=$sup
    inst2=$inst
    echo "$sup2" >"$T/sups.2$b"
    h2=$(timeout 10 "$DEMO" create -D "$D2" --pin other instance 2>/dev/null)
    if ! start_server "$D" -c dynamic_shared_memory_type="$b" -c max_connections=8; then
        not_ok "$b: server starts"
        return
    fi
    echo "$sup" >"$T/sups.$b"
    ok "$b: two servers run side by side (pids $sup and $sup2)"
    n2=$(count_objects "$b" "$D2" "$inst2" "$(instance_pids "$D2" 2$b)")
    expect "$b: the other instance has its control segment and one segment" "$n2" 2

    ctl -D "$D" status
    expect_match "$b: status: running, backend $b, exit 0" "$rc: $out" \
        "^0: .*supervisor: +running \\(the data directory lock is held by the supervisor or its workers; supervisor pid $sup\\).*backend: +$b"
    ctlname=$(printf '%s\n' "$out" | sed -n 's/^control segment: *[0-9a-f]* "\(.*\)" (.*/\1/p')

    # -- sessions A and B hold segments; a one-shot session leaves one pinned
    before=$(children_of "$sup")
    session_open A 3 "$D"
    ask A 3 "create alpha"
    hA1=$answer
    wA=$(children_of "$sup" | grep -vxF "$before")
    ask A 3 "create alpha two"
    hA2=$answer
    ask A 3 "pin $hA2"
    before=$(children_of "$sup")
    session_open B 4 "$D"
    ask B 4 "create beta"
    hB=$answer
    wB=$(children_of "$sup" | grep -vxF "$before")
    hP=$(timeout 10 "$DEMO" create -D "$D" --pin pinned one-shot 2>/dev/null)
    expect_match "$b: sessions created four segments (workers $wA, $wB)" "$hA1 $hA2 $hB $hP" \
        '^[0-9a-f]{16} [0-9a-f]{16} [0-9a-f]{16} [0-9a-f]{16}$'
    # The demo stores a 16-byte header before the text.
    {
        echo "$hA1 21 1 unpinned $wA"
        echo "$hA2 25 2 pinned $wA"
        echo "$hB 20 1 unpinned $wB"
        echo "$hP 31 1 pinned -"
    } >"$T/want"

    if [ "$have_python" = yes ]; then
        timeout 20 "$DSMCTL" -D "$D" list --json >"$T/list.json"
        python3 -m json.tool "$T/list.json" >/dev/null 2>&1
        expect "$b: list --json is well-formed JSON (python3 -m json.tool)" "$?" 0
        json_summary "$T/list.json" >"$T/got"
        expect_same "$b: list --json: handles, sizes, refcounts, pins, holder pids" "$T/got" "$T/want"
        expect "$b: list --json: data_directory escaped and read back exactly" \
            "$(json_field "$T/list.json" 'd["data_directory"] == sys.argv[3] and d["running"]' "$D")" True
        expect "$b: list --json: names match the OS objects" \
            "$(json_field "$T/list.json" '" ".join(sorted(s["name"] for s in d["segments"]))')" \
            "$(objects "$b" "$D" "$inst" "$(instance_pids "$D" "$b")" | grep -vxF "$ctlname" | sort | paste -sd' ' -)"
    else
        echo "skip - $b: JSON checks need python3"
    fi
    ctl -D "$D" list
    expect_match "$b: list: a header line, then one row per segment" "$rc: $out" \
        '^0: HANDLE +STATE +SIZE +REFS +PINNED +AGE +HOLDERS +NAME'
    expect "$b: list: rows and footer" "$(printf '%s\n' "$out" | sed 1d | awk '{ print $1 }' | sort | paste -sd' ' -)" \
        "$(printf '%s\n' "$hA1" "$hA2" "$hB" "$hP" 4 | sort | paste -sd' ' -)"

    # -- gc refuses while anything of the instance runs
    ctl -D "$D" gc
    expect "$b: gc refuses while the server runs (exit 4)" "$rc: $out" \
        "4: dsmctl: a supervisor (pid $sup) or its workers are running on \"$D\"; gc only cleans up after a dead instance"
    ctl -D "$D" gc --dry-run
    expect "$b: ... gc --dry-run too" "$rc" 4

    # -- kill -9 of everything
    if kill_all "$sup"; then ok "$b: kill -9 of the supervisor and its workers"; else not_ok "$b: kill -9: processes still there"; fi
    session_close A 3
    session_close B 4
    ctl -D "$D" status
    expect_match "$b: status after kill -9: not running, leftovers (exit 5), leftovers named" "$rc: $out" \
        "^5: .*supervisor: +not running \\(the data directory lock is free; last supervisor pid $sup\\).*left behind: +4 segment"
    if [ "$have_python" = yes ]; then
        timeout 20 "$DSMCTL" -D "$D" list --json >"$T/dead.json"
        expect "$b: list --json after kill -9: same segments, no process alive" \
            "$(json_field "$T/dead.json" 'len(d["segments"]), d["running"], any(p["alive"] for p in d["processes"])')" \
            "(4, False, False)"
    fi

    pids=$(instance_pids "$D" "$b")
    objects "$b" "$D" "$inst" "$pids" >"$T/left"
    expect "$b: the OS shows 5 leftovers (4 segments, the control segment)" "$(wc -l <"$T/left" | tr -d ' ')" 5
    ctl -D "$D" gc --dry-run
    expect_match "$b: gc --dry-run: exit 0, says nothing was removed" "$rc: $out" \
        '^0: .*gc --dry-run: would remove 5 shared memory objects.*nothing was removed'
    printf '%s\n' "$out" | report_names >"$T/dry"
    expect_same "$b: gc --dry-run lists exactly the leftovers" "$T/dry" "$T/left"
    printf '%s\n' "$out" | grep -q '^would remove state file'
    expect "$b: gc --dry-run: would remove the state file" "$?" 0
    objects "$b" "$D" "$inst" "$pids" >"$T/left2"
    expect_same "$b: gc --dry-run removed nothing" "$T/left2" "$T/left"
    [ -f "$D/dynshm.state" ]
    expect "$b: gc --dry-run kept the state file" "$?" 0
    ctl -D "$D" gc
    expect_match "$b: gc: exit 0, reports 5 removed" "$rc: $out" '^0: .*gc: removed 5 shared memory objects'
    printf '%s\n' "$out" | report_names >"$T/gc"
    expect_same "$b: gc removed what --dry-run listed" "$T/gc" "$T/dry"
    expect "$b: after gc nothing of the instance is left" "$(count_objects "$b" "$D" "$inst" "$pids")" 0
    [ ! -e "$D/dynshm.state" ]
    expect "$b: after gc the state file is gone" "$?" 0
    ctl -D "$D" gc
    expect_match "$b: a second gc finds nothing (exit 0)" "$rc: $out" '^0: .*gc: removed 0 shared memory objects'

    expect "$b: the other instance is untouched (objects)" \
        "$(count_objects "$b" "$D2" "$inst2" "$(instance_pids "$D2" 2$b)")" "$n2"
    out=$(timeout 10 "$DEMO" read -D "$D2" "$h2" 2>&1)
    expect "$b: the other instance's segment is still readable" "$?: $out" "0: other instance"

    # -- a damaged control segment (posix, mmap) or state file (sysv)
    if ! start_server "$D" -c dynamic_shared_memory_type="$b"; then
        not_ok "$b: restart on the cleaned directory"
        return
    fi
    echo "$sup" >>"$T/sups.$b"
    timeout 10 "$DEMO" create -D "$D" --pin one >/dev/null 2>&1
    timeout 10 "$DEMO" create -D "$D" --pin two >/dev/null 2>&1
    kill_all "$sup"
    pids=$(instance_pids "$D" "$b")
    objects "$b" "$D" "$inst" "$pids" >"$T/left"
    expect "$b: a second kill -9 leaves 3 objects" "$(wc -l <"$T/left" | tr -d ' ')" 3
    ctl_handle=$(sed -n 's/^control //p' "$D/dynshm.state")
    if [ "$b" = sysv ]; then
        cp "$D/dynshm.state" "$T/state.saved"
        sed -i 's/^pid .*/pid 1/' "$D/dynshm.state"
        ctl -D "$D" status
        expect_match "$b: status reports the damaged state file (exit 1)" "$rc: $out" \
            '^1: .*state file: +INVALID: .*checksum does not match'
        ctl -D "$D" gc --dry-run
        expect_match "$b: gc --dry-run: falls back to the sweep and says so" "$rc: $out" \
            '^0: .*not trusting the state file.*falling back to the name-prefix sweep'
        expect_match "$b: ... which can prove no System V segment ours: nothing listed" "$out" \
            'would remove 0 shared memory objects'
        ctl -D "$D" gc
        expect_match "$b: gc with a damaged state file removes no System V segment" "$rc: $out" \
            '^0: .*gc: removed 0 shared memory objects'
        expect "$b: ... all 3 are still there" "$(count_objects "$b" "$D" "$inst" "$pids")" 3
        cp "$T/state.saved" "$D/dynshm.state"
        ctl -D "$D" gc
        expect_match "$b: with the state file whole again gc removes them (through the control segment)" \
            "$rc: $out" '^0: .*removed control segment .*gc: removed 3 shared memory objects'
    else
        if [ "$b" = posix ]; then
            file=/dev/shm/dynshm.$inst.$ctl_handle
        else
            file=$D/dynshm_mmap/dynshm.$inst.$ctl_handle
        fi
        printf 'XXXXXXXX' | dd of="$file" bs=1 seek=40 conv=notrunc 2>/dev/null
        ctl -D "$D" status
        expect_match "$b: status reports the corrupt control segment (exit 1)" "$rc: $out" \
            "^1: .*control segment: +$ctl_handle INVALID: .*bad header checksum"
        ctl -D "$D" list
        expect_match "$b: list reports it too (exit 1)" "$rc: $out" \
            "^1: dsmctl: the control segment of \".*\" is not valid: .*bad header checksum"
        ctl -D "$D" gc --dry-run
        expect_match "$b: gc --dry-run falls back to the name-prefix sweep and says so" "$rc: $out" \
            '^0: .*not trusting the previous control segment.*falling back to the name-prefix sweep'
        printf '%s\n' "$out" | report_names >"$T/dry"
        expect_same "$b: ... and lists exactly the leftovers" "$T/dry" "$T/left"
        ctl -D "$D" gc
        expect_match "$b: gc removes them by prefix" "$rc: $out" '^0: .*gc: removed 3 shared memory objects'
    fi
    expect "$b: nothing of the instance is left" "$(count_objects "$b" "$D" "$inst" "$pids")" 0

    # -- the other instance, still untouched; then stopped cleanly
    out=$(timeout 10 "$DEMO" read -D "$D2" "$h2" 2>&1)
    expect "$b: the other instance's segment is still readable" "$?: $out" "0: other instance"
    ctl -D "$D2" status
    expect "$b: the other instance is still running" "$rc" 0
    out=$(timeout 30 "$DEMO" stop -D "$D2" 2>&1)
    expect "$b: the other instance stops cleanly" "$?: $out" "0: server stopped"
    expect "$b: ... leaving nothing" "$(count_objects "$b" "$D2" "$inst2" "$(instance_pids "$D2" 2$b)")" 0
}

# ---- 10,000 segments -----------------------------------------------------------------------

now_ms() {
    _t=$(date +%s%N)
    case $_t in *N) echo $(($(date +%s) * 1000)) ;; *) echo $((_t / 1000000)) ;; esac
}
scale_check() {
    echo "# ---- 10,000 segments ----"
    if [ ! -x "$FILL" ]; then
        echo "skip - 10,000 segments: $FILL is not built"
        return
    fi
    b=posix
    case " $available " in *" posix "*) ;; *) b=mmap ;; esac
    D=$T/scale
    mkdir "$D"
    mkfifo "$T/fill.in"
    "$FILL" "$D" 10000 "$b" <"$T/fill.in" >"$T/fill.out" 2>&1 3>&- 4>&- 5>&- 6>&- &
    fill=$!
    echo "$fill" >>"$T/pids"
    exec 5>"$T/fill.in"
    if ! wait_for 30 grep -q ready "$T/fill.out"; then
        not_ok "10,000 segments: the helper did not get ready: $(cat "$T/fill.out")"
        return
    fi
    ok "10,000 segments created and pinned ($b, $(cut -d' ' -f3 "$T/fill.out") s)"
    t0=$(now_ms)
    timeout 20 "$DSMCTL" -D "$D" list >"$T/scale.txt" 2>&1
    rc=$?
    t1=$(now_ms)
    timeout 20 "$DSMCTL" -D "$D" list --json >"$T/scale.json" 2>&1
    t2=$(now_ms)
    echo "# dsmctl list over 10,000 segments: $((t1 - t0)) ms (text), $((t2 - t1)) ms (JSON)"
    expect "10,000 segments: list shows them all" "$rc: $(tail -n 1 "$T/scale.txt")" \
        "0: 10000 segments, 640000 bytes, 10000 pinned"
    if [ $((t1 - t0)) -lt 1000 ] && [ $((t2 - t1)) -lt 1000 ]; then
        ok "10,000 segments: list takes well under a second ($((t1 - t0)) ms, JSON $((t2 - t1)) ms)"
    else
        not_ok "10,000 segments: list took $((t1 - t0)) ms, JSON $((t2 - t1)) ms"
    fi
    if [ "$have_python" = yes ]; then
        expect "10,000 segments: list --json has them all" \
            "$(json_field "$T/scale.json" 'len(d["segments"])')" 10000
    fi
    exec 5>&-
    wait_for 20 proc_gone "$fill"
    wait "$fill"
    expect "10,000 segments: the helper shuts down cleanly" "$?" 0
    expect "10,000 segments: nothing left" "$(ls "$D/dynshm_mmap" /dev/shm 2>/dev/null |
        grep -c "^dynshm\.$(timeout 10 "$DSMCTL" -D "$D" status 2>/dev/null | sed -n 's/^instance: *//p')\.")" 0
}

# ---- main ----------------------------------------------------------------------------------------

general_checks
available=$("$DEMO" server -D "$T/probe" -c dynamic_shared_memory_type=? 2>&1 |
    sed -n 's/.*valid values: //p' | tr -d ',')
for b in posix sysv mmap; do
    case " $available " in
    *" $b "*) backend_checks "$b" ;;
    *) echo "skip - $b: not available in this build (valid values: $available)" ;;
    esac
done
case " $available " in
*" memfd "*) memfd_checks ;;
*) echo "skip - memfd: not available in this build (valid values: $available)" ;;
esac
none_checks
scale_check

echo "dsmctl-e2e: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
