#!/bin/sh
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for
# SECONDS (default 300) on its committed corpus; findings land in
# tests/fuzz/findings/<target>/ and make the script fail.
# Usage: scripts/fuzz.sh [SECONDS] [target...]   (targets: proto mqtt form ws p0 campaign events)
set -eu
cd "$(dirname "$0")/.."
secs=${1:-300}
[ $# -gt 0 ] && shift
targets=${*:-proto mqtt form ws p0 campaign events}
BUILD=${GIZ_FUZZ_BUILD_DIR:-build-fuzz}
CC=clang cmake -S . -B "$BUILD" -DGIZ_FUZZ=ON -DGIZ_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
for t in $targets; do
    cmake --build "$BUILD" --target "fuzz_$t" -j"$(nproc)" >/dev/null
done
rc=0
for t in $targets; do
    work=$(mktemp -d)
    mkdir -p "tests/fuzz/findings/$t"
    cp -r "tests/fuzz/corpus/$t/." "$work/"
    echo "fuzz: $t for ${secs}s"
    if ! "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="tests/fuzz/findings/$t/" "$work" 2>"$work.log"; then
        tail -n 30 "$work.log"
        echo "fuzz: $t FOUND A CRASH (see tests/fuzz/findings/$t/)"
        rc=1
    else
        grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$work.log" | tail -n 2
    fi
    rm -rf "$work" "$work.log"
done
exit $rc
