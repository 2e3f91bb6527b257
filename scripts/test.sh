#!/bin/sh
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# The one command that installs, builds and runs every test (README, .ci/run):
# dependencies from Debian, a build with -Werror + AddressSanitizer + UBSan in
# build-test/, the source checks, then all CTest entries (unit, decoder-corpus
# replays, integration against real mosquitto + plugin + GService), and a
# short libFuzzer run of every decoder with clang (GIZ_FUZZ_SECONDS, default 15
# per target; scripts/fuzz.sh 300 for a real session).
# GIZ_TEST_BUILD_DIR overrides the build folder; extra args go to ctest.
# Then the plugin tests again against mosquitto 2.0.21 (scripts/test-backports.sh).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
BUILD="${GIZ_TEST_BUILD_DIR:-build-test}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DGIZ_WERROR=ON -DGIZ_ASAN=ON -DGIZ_UBSAN=ON
cmake --build "$BUILD" -j"$(nproc)"
./scripts/checksrc.sh
(cd "$BUILD" && ctest --output-on-failure -j2 "$@")
./scripts/fuzz.sh "${GIZ_FUZZ_SECONDS:-15}"
# The plugin's read interposition also supports bookworm-backports' mosquitto
# 2.0.21 (BIND_NOW): run the interposition-heavy plugin tests against it too
# (~2 min; its .deb is unpacked into /tmp, the system's 2.0.11 stays installed).
# GIZ_TEST_BACKPORTS=0 skips this (e.g. without root or Debian's mirror).
if [ "${GIZ_TEST_BACKPORTS:-1}" != 0 ]; then
    ./scripts/test-backports.sh "$BUILD" 'it_plugin_(limits|tls|flood|acl|counts|exports)'
fi
