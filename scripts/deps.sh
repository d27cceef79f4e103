#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/deps.sh - install the Debian packages dynshm builds and tests with,
# but only those that are missing (so it is quick and quiet when all are there).
# Run as root, or as a user with sudo.
set -e
# clang and its runtimes (libclang-rt-dev: libclang-rt-14-dev on Debian 12,
# which clang does not pull in) build the libFuzzer targets; gcc's sanitizer
# runtimes come with build-essential.
pkgs="build-essential autoconf automake libtool pkg-config check mandoc valgrind"
pkgs="$pkgs clang libclang-rt-dev"
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
