# SPDX-License-Identifier: MIT
# scripts/oot.sh - sourced by sanitize.sh and fuzz.sh: out-of-tree builds
# under _build/<name>, each configured once with its own options.
#
# Automake refuses to configure a second build directory from a source tree
# that is itself configured (scripts/build.sh configures in place), so when
# the tree is configured the builds start from `make distdir`'s copy of it
# in _build/src -- which also proves the distributed files are enough.  A
# tree that is not configured is used as it is.
#
# After sourcing: $top is the source tree; oot_build NAME [CONFIGURE-ARGS]
# configures _build/NAME (again only when its arguments or configure
# changed) and prints its path; oot_fail prints a stage's logs and exits.

top=$(cd "$(dirname "$0")/.." && pwd)
build_root="$top/_build"

oot_source() {
    if [ ! -f "$top/config.status" ]; then
        [ -x "$top/configure" ] || (cd "$top" && ./autogen.sh >/dev/null 2>&1)
        echo "$top"
        return
    fi
    if [ -z "$oot_src_ready" ]; then
        mkdir -p "$build_root"
        rm -rf "$build_root/src"
        # distdir copies with cp -p: unchanged files keep their times, so a
        # build directory only recompiles what changed.
        make -s -C "$top" distdir distdir="$build_root/src" top_distdir="$build_root/src" \
            >"$build_root/distdir.log" 2>&1 || {
            cat "$build_root/distdir.log" >&2
            return 1
        }
        oot_src_ready=1
    fi
    echo "$build_root/src"
}

oot_build() {
    name=$1
    shift
    src=$(oot_source) || exit 1
    dir="$build_root/$name"
    want="$src $*"
    if [ ! -f "$dir/config.status" ] || [ "$src/configure" -nt "$dir/config.status" ] ||
        [ "$(cat "$dir/.oot-args" 2>/dev/null)" != "$want" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$dir" && "$src/configure" -q "$@") >"$dir/configure.log" 2>&1 || {
            tail -30 "$dir/configure.log" >&2
            echo "oot: configure of _build/$name failed" >&2
            exit 1
        }
        echo "$want" >"$dir/.oot-args"
    fi
    echo "$dir"
}

# oot_fail STAGE FILE...: show what went wrong (each file's head) and fail.
oot_fail() {
    stage=$1
    shift
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "---- $f" >&2
        head -120 "$f" >&2
    done
    echo "$stage: FAILED" >&2
    exit 1
}
