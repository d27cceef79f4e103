#!/bin/sh
# SPDX-License-Identifier: MIT
# test/check-man.sh - keeps the reference manual honest; run by `make check`.
#
# Fails when
#   (a) mandoc -Tlint -W style reports anything on a page under doc/man*/,
#       or a page breaks the house rules checked below (opening comment,
#       .Dt matching the file name, required sections, references to our own
#       pages that resolve, every man3 page listed in dynshm(7), every
#       built-in setting of src/settings/builtin.c described in dynshm(7)
#       and dsm_settings_new(3));
#   (b) a symbol listed in src/libdynshm.sym has no doc/man3/<symbol>.3, or
#       that page (after following a .so link) does not name the function in
#       NAME and SYNOPSIS, or a man3 page names a function that is not listed;
#   (c) the built .libs/libdynshm.so exports a symbol that is not listed in
#       src/libdynshm.sym, or lacks one that is.
# Pages must also be listed in doc/local.mk, or `make install` would skip them.
#
# Link pages (only comments and one `.so man3/<page>.3` line) are not given
# to mandoc, which calls every .so fragile; their target must exist instead.
#
# Works from a VPATH build: sources are found through $srcdir (set by the
# automake test harness), the built library through the current directory.
# Exit status: 0 pass, 1 fail, 77 skip (mandoc missing and nothing else wrong).

LC_ALL=C
export LC_ALL

srcdir=${srcdir:-.}
top=$(cd "$srcdir" && pwd) || exit 99
MANDOC=${MANDOC:-mandoc}
NM=${NM:-nm}

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Target of a link page (relative to doc/), or nothing for a real page.
link_target() {
    # A page documenting a function together with another is a symbolic link
    # to it (renders with man -l, lints clean); answer "manN/target.N".
    if [ -L "$1" ]; then
        t=$(readlink "$1")
        case $t in
        */*) echo "link to another directory: $t" ;;
        *) d=${1%/*}; echo "${d##*/}/$t" ;;
        esac
        return
    fi
    # The release tarball stores links as copies (tar -h): a page whose .Dt
    # names another page of its directory, with the very same bytes, is one.
    dt=$(awk '/^\.Dt[ \t]/ { print tolower($2); exit }' "$1")
    d=${1%/*}
    f=${1##*/}
    if [ -n "$dt" ] && [ "$dt.${f##*.}" != "$f" ] && [ -f "$d/$dt.${f##*.}" ] &&
        cmp -s "$1" "$d/$dt.${f##*.}"; then
        echo "${d##*/}/$dt.${f##*.}"
        return
    fi
    awk '/^\.\\"/ { next }
         /^[ \t]*$/ { next }
         { n++; line = $0 }
         END { if (n == 1 && line ~ /^\.so[ \t]/) { sub(/^\.so[ \t]+/, "", line); print "so:" line } }' "$1"
}

# Names a page documents: the .Nm arguments of its NAME section (mdoc), or
# the words of its NAME section before "\-" (man).
page_names() {
    awk '/^\.S[hH][ \t]/ { insec = ($2 == "NAME"); next }
         !insec { next }
         /^\.Nm[ \t]/ { print $2; next }
         /^\.\\"/ { next }
         /^[^.]/ { s = $0; sub(/\\-.*/, "", s); gsub(/\\f[BIRP]/, "", s); gsub(/,/, " ", s)
                   n = split(s, w, /[ \t]+/); for (i = 1; i <= n; i++) if (w[i] != "") print w[i] }' "$1"
}

# Functions declared in a page's SYNOPSIS (.Fn and .Fo).
page_functions() {
    awk '/^\.Sh[ \t]/ { insec = ($2 == "SYNOPSIS"); next }
         insec && /^\.F[no][ \t]/ { print $2 }' "$1"
}

# The symbols listed in src/libdynshm.sym, one a line.
symfile="$top/src/libdynshm.sym"
if [ ! -r "$symfile" ]; then
    echo "FAIL: cannot read $symfile"
    exit 1
fi
symbols=$(awk '{ sub(/#.*/, "") } NF && $1 !~ /^@/ { print $1 }' "$symfile")
nsyms=$(printf '%s\n' "$symbols" | awk 'NF' | wc -l | tr -d ' ')

# ---- (a) every page: lint, house rules, links, installation ------------
have_mandoc=yes
if ! command -v "$MANDOC" >/dev/null 2>&1; then
    have_mandoc=no
    echo "SKIP: $MANDOC not found; pages are not linted (other checks still run)"
fi

npages=0
nreal=0
nlinks=0
for page in "$top"/doc/man*/*.[1-9]; do
    [ -f "$page" ] || continue
    rel=${page#"$top"/}
    dir=${rel%/*}
    sec=${dir#doc/man}
    base=${rel##*/}
    name=${base%.*}
    npages=$((npages + 1))

    if [ "${base##*.}" != "$sec" ]; then
        fail "$rel: a section $sec page must end in .$sec"
    fi
    if ! head -n 1 "$page" | grep -q '^\.\\"'; then
        fail "$rel: must begin with a .\\\" comment saying what it is for"
    fi
    if ! grep -qF "$rel" "$top/doc/local.mk"; then
        fail "$rel: not listed in doc/local.mk, so it would be neither installed nor shipped"
    fi

    target=$(link_target "$page")
    if [ -n "$target" ]; then
        nlinks=$((nlinks + 1))
        if [ "${target#so:}" != "$target" ]; then
            fail "$rel: a .so request (man -l cannot follow it); make the page a symbolic link to ${target#so:}"
        elif [ ! -f "$top/doc/$target" ]; then
            fail "$rel: links to $target, which does not exist"
        elif [ -n "$(link_target "$top/doc/$target")" ]; then
            fail "$rel: links to $target, which is itself a link"
        elif ! page_names "$top/doc/$target" | grep -qxF "$name"; then
            fail "$rel: links to $target, whose NAME section does not list $name"
        fi
        continue
    fi

    nreal=$((nreal + 1))
    if [ "$have_mandoc" = yes ]; then
        # Run from doc/ so that .so requests resolve as they do when installed.
        # Style level too; only the two messages about the machine's own
        # manual database (pages not installed yet) are not the page's fault.
        out=$(cd "$top/doc" && "$MANDOC" -Tlint -W style "${rel#doc/}" 2>&1 |
              grep -v -e 'referenced manual not found' -e 'mandoc\.db')
        if [ -n "$out" ]; then
            fail "$rel: mandoc -Tlint -W style:"
            printf '%s\n' "$out" | sed 's/^/    /'
        fi
    fi
    if ! page_names "$page" | grep -qxF "$name"; then
        fail "$rel: NAME section does not list $name"
    fi
    if grep -q '^\.Dd' "$page"; then
        # mdoc: title matches the file, required sections are present.
        want_dt=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
        if ! grep -qx "\.Dt $want_dt $sec" "$page"; then
            fail "$rel: expected \".Dt $want_dt $sec\""
        fi
        required="NAME SYNOPSIS DESCRIPTION"
        [ "$sec" = 3 ] && required="NAME LIBRARY SYNOPSIS DESCRIPTION RETURN_VALUES SEE_ALSO"
        [ "$sec" = 7 ] && required="NAME DESCRIPTION SEE_ALSO"
        for s in $required; do
            if ! grep -qx "\.Sh $(printf '%s' "$s" | tr _ ' ')" "$page"; then
                fail "$rel: no $(printf '%s' "$s" | tr _ ' ') section"
            fi
        done
    fi
    # Every reference to one of our own pages must resolve.
    for xr in $(awk '/^\.Xr[ \t]/ && ($2 ~ /^dsm_/ || $2 ~ /^dynshm/) { print $2 "." $3 }' "$page"); do
        if [ ! -f "$top/doc/man${xr##*.}/$xr" ]; then
            fail "$rel: refers to ${xr%.*}(${xr##*.}), but doc/man${xr##*.}/$xr does not exist"
        fi
    done
    # A man3 page documents exported functions only.
    if [ "$sec" = 3 ]; then
        for fn in $(page_names "$page"); do
            if ! printf '%s\n' "$symbols" | grep -qxF "$fn"; then
                fail "$rel: documents $fn, which src/libdynshm.sym does not export"
            fi
        done
    fi
done
# The overview page is the index: it must refer to every function page.
overview="$top/doc/man7/dynshm.7"
if [ -f "$overview" ]; then
    for page in "$top"/doc/man3/*.3; do
        [ -f "$page" ] || continue
        name=${page##*/}
        name=${name%.3}
        if ! grep -qx "\.Xr $name 3 *,\{0,1\}" "$overview"; then
            fail "doc/man7/dynshm.7: SEE ALSO does not list $name(3)"
        fi
    done
else
    fail "doc/man7/dynshm.7 (the overview page) does not exist"
fi
# Every built-in setting is described where users look for it.
builtin="$top/src/settings/builtin.c"
if [ -f "$builtin" ]; then
    nset=0
    for setting in $(sed -n 's/^[[:space:]]*BUILTIN_[A-Z_]*("\([A-Za-z_][A-Za-z0-9_.]*\)".*/\1/p' "$builtin"); do
        nset=$((nset + 1))
        for page in man7/dynshm.7 man3/dsm_settings_new.3; do
            if ! grep -q "^\.It Va $setting\( \|\$\)" "$top/doc/$page"; then
                fail "doc/$page: does not describe the built-in setting $setting (.It Va $setting)"
            fi
        done
    done
    echo "check-man: $nset built-in settings in src/settings/builtin.c, each described in dynshm(7) and dsm_settings_new(3)"
fi
if [ "$npages" -eq 0 ]; then
    fail "no pages found under $top/doc/man*/"
fi
if [ "$have_mandoc" = yes ]; then
    echo "check-man: linted $nreal pages with $MANDOC -Tlint -W style; checked $nlinks link pages resolve"
else
    echo "check-man: found $nreal pages and $nlinks link pages (lint skipped)"
fi

# ---- (b) every exported symbol has its page -----------------------------
for sym in $symbols; do
    page="$top/doc/man3/$sym.3"
    if [ ! -f "$page" ]; then
        fail "$sym is listed in src/libdynshm.sym but doc/man3/$sym.3 does not exist"
        continue
    fi
    target=$(link_target "$page")
    [ -n "$target" ] && page="$top/doc/$target"
    [ -f "$page" ] || continue # reported above
    if ! page_functions "$page" | grep -qxF "$sym"; then
        fail "doc/${page#"$top"/doc/}: SYNOPSIS does not declare $sym (no .Fn/.Fo $sym)"
    fi
done
echo "check-man: $nsyms symbols in src/libdynshm.sym, each checked for doc/man3/<symbol>.3 and its SYNOPSIS"

# ---- (c) the shared library exports exactly the listed symbols ----------
lib=.libs/libdynshm.so
if [ ! -f "$lib" ]; then
    echo "check-man: $lib not built here; export check skipped"
elif ! command -v "$NM" >/dev/null 2>&1; then
    echo "check-man: $NM not found; export check skipped"
elif ! exported=$("$NM" -D --defined-only "$lib" 2>&1); then
    fail "$NM -D --defined-only $lib: $exported"
else
    problems=$(printf '%s\n' "$exported" | awk -v symfile="$symfile" '
        BEGIN {
            while ((getline line < symfile) > 0) {
                sub(/#.*/, "", line)
                if (split(line, w) > 0 && w[1] !~ /^@/) listed[w[1]] = 1
            }
        }
        NF >= 3 && $2 != "A" { # "A" entries name the version nodes themselves
            sym = $3
            if (sym !~ /@@?DYNSHM_[0-9.]+$/) print "exported without a DYNSHM_ version: " sym
            sub(/@.*/, "", sym) # drop the symbol version
            seen[sym] = 1
            if (!(sym in listed)) print "exported but not listed in src/libdynshm.sym: " sym
        }
        END { for (s in listed) if (!(s in seen)) print "listed in src/libdynshm.sym but not exported: " s }')
    if [ -n "$problems" ]; then
        printf '%s\n' "$problems" | while IFS= read -r line; do echo "FAIL: $lib: $line"; done
        failures=$((failures + $(printf '%s\n' "$problems" | wc -l)))
    fi
    # Loadable by dlopen() (Python's ctypes, plugin hosts): no static TLS model.
    if command -v readelf >/dev/null 2>&1 && readelf -d "$lib" | grep -q STATIC_TLS; then
        fail "$lib: uses the static TLS model (initial-exec), so dlopen() can fail"
    fi
    nexp=$(printf '%s\n' "$exported" | awk 'NF >= 3 && $2 != "A"' | wc -l | tr -d ' ')
    echo "check-man: $lib exports $nexp symbols; compared with src/libdynshm.sym"
fi

if [ "$failures" -ne 0 ]; then
    echo "check-man: $failures problem(s)"
    exit 1
fi
if [ "$have_mandoc" = no ]; then
    exit 77
fi
echo "check-man: all good"
exit 0
