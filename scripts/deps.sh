#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/deps.sh - install the Debian packages dynshm builds and tests with,
# but only those that are missing (so it is quick and quiet when all are there).
# Run as root, or as a user with sudo.
set -e
#
#   sh scripts/deps.sh          what building and running the demo need
#   sh scripts/deps.sh --test   and what the test stages need on top: Check,
#                               mandoc (man page lint), valgrind, cppcheck and
#                               clang-tidy (scripts/lint.sh), clang and its
#                               runtimes for the libFuzzer targets
#                               (libclang-rt-dev: clang does not pull it in)
pkgs="build-essential autoconf automake libtool pkg-config"
if [ "${1:-}" = --test ]; then
    pkgs="$pkgs check mandoc valgrind cppcheck clang-tidy clang libclang-rt-dev"
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install$missing" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
