#!/bin/bash
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# Runs the plugin's integration tests against mosquitto 2.0.21 from
# bookworm-backports (built BIND_NOW / full RELRO, the other build the plugin's
# read interposition supports) without touching the system's mosquitto: the
# .deb (and libwebsockets17, which it links) are downloaded with apt-get
# download and unpacked with dpkg -x into a private folder, and the tests get
# GIZ_MOSQUITTO=<that binary> (tests/integration/harness.py).
#
#   scripts/test-backports.sh [build dir] [ctest -R regex]
#       build dir: a configured build tree with the plugin built [build]
#       regex:     which tests [it_plugin_]
# Environment: GIZ_BPO_DIR (where to unpack; default /tmp/giz-mosquitto-bpo).
# Needs root for the apt source file (/etc/apt/sources.list.d/gizcloud-
# bookworm-backports.list) and apt-get update; exits 0 if every test passed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
regex=${2:-it_plugin_}
dir=${GIZ_BPO_DIR:-/tmp/giz-mosquitto-bpo}
list=/etc/apt/sources.list.d/gizcloud-bookworm-backports.list
say() { printf 'test-backports: %s\n' "$*" >&2; }

if [ ! -x "$dir/root/usr/sbin/mosquitto" ]; then
    if [ ! -f "$list" ]; then
        say "adding $list"
        echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$list"
    fi
    # Refresh only that source (fast; the main lists stay as they are).
    apt-get update -qq -o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=- \
        -o APT::Get::List-Cleanup=0 >/dev/null
    ver=$(apt-cache policy mosquitto | awk '/bpo/ && $1 ~ /^2\.0\./ {print $1; exit}')
    [ -n "$ver" ] || { say "no mosquitto in bookworm-backports (apt-cache policy mosquitto)"; exit 1; }
    say "mosquitto $ver from bookworm-backports"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp/debs"
    (cd "$dir.tmp/debs" && apt-get download -qq "mosquitto=$ver" libwebsockets17 2>/dev/null)
    for d in "$dir.tmp"/debs/*.deb; do dpkg -x "$d" "$dir.tmp/root"; done
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
fi
bin=$dir/root/usr/sbin/mosquitto
export LD_LIBRARY_PATH="$dir/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$bin" -h 2>/dev/null | head -1 >&2 || true
readelf -d "$bin" | grep -q BIND_NOW && say "$bin is built BIND_NOW (GOT read-only after start-up)"
export GIZ_MOSQUITTO=$bin
cd "$build"
say "ctest -R $regex with GIZ_MOSQUITTO=$bin"
ctest -R "$regex" --output-on-failure
