#!/bin/sh
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# Installs everything gizcloud needs to build, run and test, from Debian 12
# packages only. Idempotent; skips apt when every package is already present.
# Needs root (or sudo) for apt-get.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-dev
  mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
  libmicrohttpd-dev libsqlite3-dev sqlite3 libssl-dev openssl libuv1-dev libcjson-dev
  python3 python3-paho-mqtt python3-yaml curl libcurl4-openssl-dev python3-seccomp wrk valgrind ca-certificates procps
  clang-format prometheus chromium chromium-driver python3-selenium python3-websocket
  postgresql libpq-dev"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing:$missing"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
# The Debian mosquitto package starts a system broker on 1883; gizcloud runs its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
    $SUDO systemctl disable --now mosquitto || true
fi
