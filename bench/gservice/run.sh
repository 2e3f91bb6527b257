#!/bin/bash
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# Benchmark (not a test) of giz-gservice with wrk: provision GETs and device
# registers per second, each beside a libmicrohttpd hello-world baseline
# (bench/gservice/hello.c, same thread pool size) measured in the same run,
# and their ratio. Builds an optimized, unsanitized tree first.
#
# Environment: GIZ_BENCH_BUILD [<repo>/build-bench], GIZ_BENCH_SECS [10],
# GIZ_BENCH_CONNS [32], GIZ_BENCH_THREADS (wrk threads) [2],
# GIZ_HTTP_THREADS (server threads, both servers) [2],
# GIZ_BENCH_LOG_LEVEL (GService log level; info = access log on) [info].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${GIZ_BENCH_BUILD:-$root/build-bench}
secs=${GIZ_BENCH_SECS:-10}
conns=${GIZ_BENCH_CONNS:-32}
wthreads=${GIZ_BENCH_THREADS:-2}
sthreads=${GIZ_HTTP_THREADS:-2}
loglevel=${GIZ_BENCH_LOG_LEVEL:-info}

command -v wrk >/dev/null || { echo "run.sh: wrk not installed (apt-get install wrk)" >&2; exit 1; }
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGIZ_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target giz-gservice giz-bench-hello -j2 >/dev/null

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "run.sh: nothing on port $1" >&2; return 1
}
rps() { awk '/^Requests\/sec:/ {print $2}'; }

tmp=$(mktemp -d /tmp/gizbench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

hport=$(free_port)
"$build/gservice/giz-bench-hello" "$hport" "$sthreads" 2>"$tmp/hello.log" &
pids+=($!)
gport=$(free_port)
token=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
GIZ_ADMIN_TOKEN=$token GIZ_HTTP_PORT=$gport GIZ_DATA_DIR=$tmp/data GIZ_HTTP_THREADS=$sthreads \
GIZ_LOG_LEVEL=$loglevel GIZ_M2M_PORT=1883 "$build/gservice/giz-gservice" 2>"$tmp/gservice.log" &
pids+=($!)
wait_port "$hport"
wait_port "$gport"

pk=$(curl -sf -H "Authorization: Bearer $token" -d '{"name":"bench"}' "http://127.0.0.1:$gport/admin/products" |
     /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["product_key"])')
did=$(curl -sf -d "passcode=BENCHPASS0&mac=00163E000000&product_key=$pk" "http://127.0.0.1:$gport/dev/devices" | cut -c5-26)
[ ${#did} -eq 22 ] || { echo "run.sh: could not register the bench device" >&2; exit 1; }

run_wrk() { # port script -> wrk output
    GIZ_BENCH_PK=$pk GIZ_BENCH_DID=$did wrk -t"$wthreads" -c"$conns" -d"${secs}s" --latency -s "$here/$2" \
        "http://127.0.0.1:$1" 2>&1
}
echo "gservice bench: $(nproc) CPUs, wrk -t$wthreads -c$conns -d${secs}s, server threads $sthreads," \
     "GService log level $loglevel, build $build"
prov_hello=$(run_wrk "$hport" provision.lua)
prov_gs=$(run_wrk "$gport" provision.lua)
reg_hello=$(run_wrk "$hport" register.lua)
reg_gs=$(run_wrk "$gport" register.lua)
for name in prov_hello prov_gs reg_hello reg_gs; do
    echo "---- $name"; printf '%s\n' "${!name}" | grep -E "Latency|Requests/sec|non-20|Socket errors|50%|99%" || true
done
ph=$(printf '%s\n' "$prov_hello" | rps); pg=$(printf '%s\n' "$prov_gs" | rps)
rh=$(printf '%s\n' "$reg_hello" | rps); rg=$(printf '%s\n' "$reg_gs" | rps)
devices=$(curl -sf "http://127.0.0.1:$gport/metrics" | awk '/^gizcloud_devices_registered/ {print $2}')
echo
printf '%-22s %14s %14s %8s\n' "workload" "hello req/s" "gservice req/s" "ratio"
printf '%-22s %14s %14s %8s\n' "provision GET" "$ph" "$pg" "$(awk -v a="$pg" -v b="$ph" 'BEGIN{printf "%.2f", a/b}')"
printf '%-22s %14s %14s %8s\n' "register POST" "$rh" "$rg" "$(awk -v a="$rg" -v b="$rh" 'BEGIN{printf "%.2f", a/b}')"
echo "devices registered during the run: $devices"
