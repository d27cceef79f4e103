#!/bin/sh
# SPDX-License-Identifier: MIT
# test/dsmctl-ops-e2e.sh - the operator features of dsmctl (issue 18)
# against real dsm_demo servers; run by `make check` after dsmctl-e2e.sh.
#
# One posix instance with a session that holds segments through a FIFO,
# and pinned segments made by one-shot clients:
#   - every command's --json parses (python3 -m json.tool) and carries
#     format_version 1; status --json has the counters and the limits;
#   - list filters (--pinned, --pid, --older-than, --min-size, --namespace)
#     and --sort size|refs; -h prints KiB; procs shows the supervisor and
#     the forked session worker with its references and bytes mapped;
#   - status -w with --count prints rates (JSON Lines);
#   - unpin of a leaked pin destroys the segment through the instance;
#     unpin of a pin whose segment is still mapped leaves it to its holder;
#     a typo, an unpinned segment, a stopped instance are refused (exit
#     codes 2, 1, 3);
#   - exit codes of status: 0 running, 5 after kill -9 (leftovers), 3 after
#     gc; gc --json lists what it removed;
#   - scan finds the running instance by the data directory its control
#     segment records, calls a kill -9'd one's objects leftovers with the gc
#     command (exit 5), a planted /dev/shm object of an unknown instance an
#     orphan with its rm command, and an mmap instance's objects when told
#     of its directory with -D;
#   - usage errors for options given to the wrong command (exit 2).
# Needs python3 (skips, exit 77, without it).  A watchdog bounds the run
# (150 s: under ASan on a busy machine it takes over a minute).
# Exit status: 0 all passed, 1 a check failed, 77 skipped, 99 could not run.

LC_ALL=C
export LC_ALL
unset DSM_DEMO_DIR

abs() {
    case $1 in /*) echo "$1" ;; *) echo "$(pwd)/$1" ;; esac
}
DEMO=$(abs "${DSM_DEMO:-./contrib/dsm_demo/dsm_demo}")
DSMCTL=$(abs "${DSMCTL:-./tools/dsmctl/dsmctl}")
for p in "$DEMO" "$DSMCTL"; do
    [ -x "$p" ] || { echo "ERROR: $p is not built"; exit 99; }
done
command -v python3 >/dev/null 2>&1 || { echo "skip - dsmctl-ops-e2e needs python3"; exit 77; }
"$DEMO" server -D /nonexistent -c dynamic_shared_memory_type=? 2>&1 | grep -q posix ||
    { echo "skip - the posix backend is not built"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/dsmctl-ops.XXXXXX") || exit 99
. "${srcdir:-.}/test/testlib.sh"
: >"$T/pids"
orphan=""

expect_match() {
    if printf '%s\n' "$2" | tr '\n' ' ' | sed 's/ $//' | grep -Eq -- "$3"; then
        ok "$1"
    else
        not_ok "$1: expected /$3/ in:"
        printf '%s\n' "$2" | sed 's/^/    /'
    fi
}
is_ours() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q dsm_demo
}
cleanup() {
    set +e
    exec 3>&- 2>/dev/null
    for p in $(cat "$T/pids"); do
        if proc_alive "$p" && is_ours "$p"; then
            kill -9 $(children_of "$p") "$p" 2>/dev/null
        fi
    done
    [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null
    for p in $(cat "$T/pids"); do
        wait_for 5 proc_gone "$p"
    done
    for d in "$T"/*/; do
        [ -f "$d/dynshm.state" ] && timeout 20 "$DSMCTL" -D "$d" gc >/dev/null 2>&1
    done
    [ -n "$orphan" ] && rm -f "$orphan"
    [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "FAIL - interrupted or timed out"; exit 1' INT TERM HUP
(sleep 150 && kill -TERM $$) >/dev/null 2>&1 &
watchdog=$!

start_server() { # DIR [OPTIONS]
    _d=$1
    shift
    timeout 20 "$DEMO" server -D "$_d" "$@" --daemon >"$T/start.out" 2>&1 3>&- ||
        { sed 's/^/    /' "$T/start.out"; return 1; }
    sup=$(cat "$_d/dsm_demo.pid")
    echo "$sup" >>"$T/pids"
}
kill_all() { # SUPERVISOR
    _w=$(children_of "$1")
    kill -STOP "$1" $_w 2>/dev/null
    kill -9 "$1" $_w 2>/dev/null
    for _p in "$1" $_w; do
        wait_for 10 proc_gone "$_p" || return 1
    done
}
ctl() {
    out=$(timeout 20 "$DSMCTL" "$@" 2>&1)
    rc=$?
}
# json FILE EXPR [ARGS]: evaluate EXPR with d = the document (sys.argv[3:] available)
json() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}
# jctl FILE ARGS...: dsmctl ... --json into FILE; rc in $rc; checks it parses
jctl() {
    _f=$1
    shift
    timeout 20 "$DSMCTL" "$@" --json >"$_f" 2>"$_f.err"
    rc=$?
    if python3 -m json.tool "$_f" >/dev/null 2>&1 &&
        [ "$(json "$_f" 'd["format_version"]')" = 1 ]; then
        ok "$* --json: well-formed, format_version 1 (exit $rc)"
    else
        not_ok "$* --json: not a JSON document with format_version 1:"
        sed 's/^/    /' "$_f" "$_f.err" | head -20
    fi
}

# ---- a running posix instance --------------------------------------------------------

D=$T/live
mkdir "$D"
start_server "$D" -c dynamic_shared_memory_type=posix || { not_ok "server starts"; exit 1; }
ok "server started (pid $sup)"

# A session holding two segments: a small one and a 3000-byte one.
mkfifo "$T/s.in"
timeout 50 "$DEMO" session -D "$D" <"$T/s.in" >"$T/s.out" 2>"$T/s.err" 3>&- &
spid=$!
exec 3>"$T/s.in"
before=$(children_of "$sup")
echo "create small" >&3
big=$(head -c 3000 /dev/zero | tr '\0' x)
echo "create $big" >&3
wait_for 15 sh -c "[ \$(wc -l <'$T/s.out') -ge 2 ]" || not_ok "session answers"
hS=$(sed -n 1p "$T/s.out")
hB=$(sed -n 2p "$T/s.out")
worker=$(children_of "$sup" | grep -vxF "$before" | head -1)
echo "pin $hB" >&3
wait_for 15 sh -c "[ \$(wc -l <'$T/s.out') -ge 3 ]"
# A leaked pin: created pinned by a client that is gone.
hL=$(timeout 10 "$DEMO" create -D "$D" --pin leaked 2>/dev/null)
expect_match "segments made (session worker $worker)" "$hS $hB $hL $worker" \
    '^[0-9a-f]{16} [0-9a-f]{16} [0-9a-f]{16} [0-9]+$'

jctl "$T/status.json" -D "$D" status
expect "status --json: exit 0, running, posix" \
    "$rc $(json "$T/status.json" 'd["running"], d["backend"], d["exit_code"]')" "0 (True, 'posix', 0)"
expect "status --json: counters (3 creates, bytes created, peaks)" \
    "$(json "$T/status.json" 'd["metrics"]["creates"], d["metrics"]["bytes_created"] == 16 + 5 + 16 + 3000 + 16 + 6, d["metrics"]["peak_segments"] >= 3, d["metrics"]["segments"]')" \
    "(3, True, True, 3)"
expect "status --json: limits (shm space, System V, map count)" \
    "$(json "$T/status.json" 'd["limits"]["shm_space"]["free_bytes"] > 0, d["limits"]["sysv"]["shmmni"] > 0, d["limits"]["map_count"]["max_map_count"] > 0')" \
    "(True, True, True)"
expect "status --json: the recorded data directory" \
    "$(json "$T/status.json" 'd["control_segment"]["recorded_data_directory"]')" "$(cd "$D" && pwd -P)"
ctl -D "$D" status
expect_match "status: limits and counters in the text" "$rc: $out" \
    '^0: .*references: .*failed creates: .*high water: .*shm space: .*System V \(host\): .*map count: '

# ---- list: filters, sort, human units ---------------------------------------------------
jctl "$T/l.json" -D "$D" list
expect "list --json: three segments, each in namespace default" \
    "$(json "$T/l.json" 'len(d["segments"]), set(s["namespace"] for s in d["segments"])')" "(3, {'default'})"
jctl "$T/l.json" -D "$D" list --pinned
expect "list --pinned: the two pinned" \
    "$(json "$T/l.json" 'sorted(s["handle"] for s in d["segments"])')" \
    "$(python3 -c 'import sys; print(sorted(sys.argv[1:]))' "$hB" "$hL")"
jctl "$T/l.json" -D "$D" list --pid "$worker"
expect "list --pid WORKER: what the session holds" \
    "$(json "$T/l.json" 'sorted(s["handle"] for s in d["segments"]), d["totals"]["shown"], d["totals"]["segments"]')" \
    "($(python3 -c 'import sys; print(sorted(sys.argv[1:]))' "$hS" "$hB"), 2, 3)"
jctl "$T/l.json" -D "$D" list --min-size 1k
expect "list --min-size 1k: the big one" "$(json "$T/l.json" '[s["handle"] for s in d["segments"]]')" "['$hB']"
jctl "$T/l.json" -D "$D" list --older-than 1h
expect "list --older-than 1h: none" "$(json "$T/l.json" 'len(d["segments"])')" 0
jctl "$T/l.json" -D "$D" list --namespace default
expect "list --namespace default: all" "$(json "$T/l.json" 'len(d["segments"])')" 3
jctl "$T/l.json" -D "$D" list --namespace tenant1
expect "list --namespace tenant1: none (no namespaces yet)" "$(json "$T/l.json" 'len(d["segments"])')" 0
jctl "$T/l.json" -D "$D" list --sort size
expect "list --sort size: largest first" "$(json "$T/l.json" 'd["segments"][0]["handle"]')" "$hB"
jctl "$T/l.json" -D "$D" list --sort refs
expect "list --sort refs: the mapped and pinned one first" "$(json "$T/l.json" 'd["segments"][0]["handle"]')" "$hB"
ctl -D "$D" list -h --min-size 1k
expect_match "list -h: sizes in KiB" "$rc: $out" "^0: .*$hB +live +2\\.9KiB "

# ---- procs ------------------------------------------------------------------------------
jctl "$T/p.json" -D "$D" procs --sort size
expect "procs --sort size: the worker first, forked, 2 references, its bytes mapped" \
    "$(json "$T/p.json" '[(p["pid"], p["kind"], p["references"], p["bytes_mapped"]) for p in d["processes"]][0]')" \
    "($worker, 'forked', 2, $((16 + 5 + 16 + 3000)))"
expect "procs: the supervisor is listed, alive, with a start time" \
    "$(json "$T/p.json" '[(p["kind"], p["alive"], p["started"] is not None) for p in d["processes"] if p["pid"] == int(sys.argv[3])]' "$sup")" \
    "[('supervisor', True, True)]"
ctl -D "$D" procs --pid "$worker"
expect_match "procs --pid: one row" "$rc: $out" "^0: PID .* $worker +forked +yes .*1 process,"

# ---- watch ------------------------------------------------------------------------------
timeout 20 "$DSMCTL" -D "$D" status -w 0.2 --count 3 --json >"$T/w.jsonl" 2>&1
rc=$?
expect "status -w 0.2 --count 3 --json: 3 JSON lines, rates from the second on" \
    "$rc $(python3 -c '
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
print(len(ls), all(l["format_version"] == 1 for l in ls), "creates_per_second" in ls[0],
      all("creates_per_second" in l and "bytes_created_per_second" in l for l in ls[1:]))' "$T/w.jsonl" 2>&1)" \
    "0 3 True False True"
ctl -D "$D" status -w 0.1 --count 2
expect_match "status -w: text lines with creates/s" "$rc: $out" '^0: .* creates/s .* destroys/s'

# ---- unpin ------------------------------------------------------------------------------
ctl -D "$D" unpin nothex
expect_match "unpin of a typo: usage error, nothing registered (exit 2)" "$rc: $out" '^2: dsmctl: "nothex" is not a segment handle'
ctl -D "$D" unpin "$hS"
expect "unpin of a segment that is not pinned (exit 1)" "$rc: $out" "1: dsmctl: segment $hS is not pinned"
jctl "$T/u.json" -D "$D" unpin "$hL"
expect "unpin of the leaked pin: destroyed through the instance" \
    "$rc $(json "$T/u.json" 'd["unpinned"], d["destroyed"]')" "0 (True, True)"
[ ! -e "/dev/shm/dynshm.$(json "$T/status.json" 'd["instance"]').$hL" ]
expect "... its object is gone from /dev/shm" "$?" 0
ctl -D "$D" unpin "$hB"
expect_match "unpin of a pin whose segment is mapped: left to its holder" "$rc: $out" \
    "^0: unpinned segment $hB; it is destroyed when the last of its 1 mapping is detached"
jctl "$T/l.json" -D "$D" list
expect "after the unpins: two segments, none pinned, the big one still held" \
    "$(json "$T/l.json" 'len(d["segments"]), sum(s["pinned"] for s in d["segments"]), [s["holders"] for s in d["segments"] if s["handle"] == sys.argv[3]]' "$hB")" \
    "(2, 0, [[$worker]])"
jctl "$T/status.json" -D "$D" status
expect "unpin left the instance healthy: counters say 1 destroy, no reset, dsmctl gone" \
    "$(json "$T/status.json" 'd["metrics"]["destroys"], d["metrics"]["resets"], d["usage"]["processes"]')" "(1, 0, 2)"

# ---- scan of a running instance, and an orphan -------------------------------------------
inst=$(json "$T/status.json" 'd["instance"]')
orphan=/dev/shm/dynshm.00000000$(printf '%08x' $$).00000001$(printf '%08x' $$)
printf 'stray' >"$orphan"
jctl "$T/scan.json" scan
expect "scan: the running instance's control segment, found by its recorded data directory" \
    "$(json "$T/scan.json" '[(o["status"], o["data_directory"]) for o in d["objects"] if o["instance"] == sys.argv[3] and o["control"]]' "$inst")" \
    "[('live', '$(cd "$D" && pwd -P)')]"
expect "scan: ... and its segments, all live" \
    "$(json "$T/scan.json" 'sorted(set(o["status"] for o in d["objects"] if o["instance"] == sys.argv[3])), len([o for o in d["objects"] if o["instance"] == sys.argv[3]])' "$inst")" \
    "(['live'], 3)"
expect "scan: the planted object is an orphan, with the rm that removes it" \
    "$(json "$T/scan.json" '[(o["status"], o["hint"]) for o in d["objects"] if o["name"] == sys.argv[3]]' "${orphan#/dev/shm}")" \
    "[('orphan', \"rm '$orphan'\")]"
expect "scan --json: exit 5 (an orphan was found)" "$rc" 5
rm -f "$orphan"

# ---- kill -9: status 5, scan leftovers, gc --json, status 3 -------------------------------
exec 3>&-
kill_all "$sup" || not_ok "kill -9"
wait_for 10 proc_gone "$spid"
ctl -D "$D" status
expect_match "status after kill -9: exit 5 (leftovers of a dead instance)" "$rc: $out" '^5: .*not running.*left behind'
jctl "$T/status.json" -D "$D" status
expect "status --json after kill -9: dead, exit_code 5" "$rc $(json "$T/status.json" 'd["state"], d["exit_code"]')" "5 ('dead', 5)"
jctl "$T/scan.json" scan
expect "scan after kill -9: the instance's objects are leftovers, with the gc command" \
    "$rc $(json "$T/scan.json" 'sorted(set((o["status"], o["hint"]) for o in d["objects"] if o["instance"] == sys.argv[3]))' "$inst")" \
    "5 [('leftover', \"dsmctl -D '$(cd "$D" && pwd -P)' gc\")]"
ctl -D "$D" unpin "$hB"
expect_match "unpin on a dead instance: refused, exit 3" "$rc: $out" '^3: dsmctl: no supervisor is running'
jctl "$T/gc.json" -D "$D" gc
expect "gc --json: what was left (the control segment at least) and the state file removed" \
    "$rc $(json "$T/gc.json" 'd["removed"] == sum(o["kind"] != "state file" for o in d["objects"]), sorted(set(o["action"] for o in d["objects"])), sorted(set(o["kind"] for o in d["objects"]) & {"control segment", "state file"})')" \
    "0 (True, ['removed'], ['control segment', 'state file'])"
ctl -D "$D" status
expect "status after gc: exit 3 (not running, nothing left)" "$rc" 3

# ---- an mmap instance, found with -D ---------------------------------------------------------
M=$T/mm
mkdir "$M"
if start_server "$M" -c dynamic_shared_memory_type=mmap; then
    timeout 10 "$DEMO" create -D "$M" --pin in mmap >/dev/null 2>&1
    jctl "$T/scan.json" -D "$M" scan
    expect "scan -D: the mmap instance's two files, live, control recognised" \
        "$(json "$T/scan.json" 'sorted((o["status"], o["control"]) for o in d["objects"] if o["backend"] == "mmap")')" \
        "[('live', False), ('live', True)]"
    jctl "$T/m.json" -D "$M" status
    expect "mmap status: free space is the mmap directory's" \
        "$(json "$T/m.json" 'd["limits"]["shm_space"]["directory"]')" "$M/dynshm_mmap"
    out=$(timeout 30 "$DEMO" stop -D "$M" 2>&1)
    expect "mmap instance stops" "$?: $out" "0: server stopped"
else
    not_ok "mmap server starts"
fi

# ---- usage ------------------------------------------------------------------------------------
ctl -D "$D" status --pinned
expect_match "a filter given to status: usage error" "$rc: $out" '^2: dsmctl: --pinned, --older-than, --min-size and --namespace do not apply to status'
ctl -D "$D" list --sort colour
expect_match "--sort with an unknown key: usage error" "$rc: $out" '^2: dsmctl: --sort takes size, age or refs'
ctl -D "$D" list -w 1
expect_match "-w given to list: usage error" "$rc: $out" '^2: dsmctl: -w \(--watch\) and --count do not apply to list'
ctl -D "$D" unpin
expect_match "unpin without a handle: usage error" "$rc: $out" '^2: dsmctl: unpin needs a segment handle'
ctl -D "$D" -D "$M" list
expect_match "two -D outside scan: usage error" "$rc: $out" '^2: dsmctl: list takes one data directory'
ctl -D "$D" list --min-size 12q
expect_match "a size that is not one: usage error" "$rc: $out" '^2: dsmctl: --min-size takes a size'

echo "dsmctl-ops-e2e: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
