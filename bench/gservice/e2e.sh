#!/bin/bash
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# Benchmark (not a test) of the full device flow against the full cloud: the
# GService and mosquitto + the gizcloud plugin on one SQLite file, driven by
# gizsim (register -> provision -> OTA v4.1 check -> MQTT login). Prints the
# devices per second that finished the HTTP part and the whole flow.
#
# Environment: GIZ_BENCH_BUILD [<repo>/build-bench], GIZ_E2E_DEVICES [2000],
# GIZ_E2E_RATE (gizsim --rate, device starts per second) [100000],
# GIZ_E2E_CONC (gizsim --http-concurrency) [64], GIZ_HTTP_THREADS [2],
# GIZ_BENCH_LOG_LEVEL [info].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${GIZ_BENCH_BUILD:-$root/build-bench}
n=${GIZ_E2E_DEVICES:-2000}
rate=${GIZ_E2E_RATE:-100000}
conc=${GIZ_E2E_CONC:-64}
sthreads=${GIZ_HTTP_THREADS:-2}
loglevel=${GIZ_BENCH_LOG_LEVEL:-info}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGIZ_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target giz-gservice giz_plugin gizsim -j2 >/dev/null

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "e2e.sh: nothing on port $1" >&2; return 1
}

tmp=$(mktemp -d /tmp/gize2e.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

export GIZ_DATA_DIR=$tmp/data GIZ_PLUGIN=$build/plugin/giz_plugin.so
mkdir -p "$GIZ_DATA_DIR"
export GIZ_HTTP_PORT=$(free_port) GIZ_MQTT_PORT=$(free_port) GIZ_MQTTS_PORT=0
export GIZ_ADMIN_TOKEN=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
GIZ_HTTP_THREADS=$sthreads GIZ_LOG_LEVEL=$loglevel GIZ_GSERVICE=$build/gservice/giz-gservice \
    "$root/deploy/run-gservice" 2>"$tmp/gservice.log" &
pids+=($!)
wait_port "$GIZ_HTTP_PORT"
"$root/deploy/run-broker" >"$tmp/broker.log" 2>&1 &
pids+=($!)
wait_port "$GIZ_MQTT_PORT"

pk=$(curl -sf -H "Authorization: Bearer $GIZ_ADMIN_TOKEN" -d '{"name":"e2e"}' \
     "http://127.0.0.1:$GIZ_HTTP_PORT/admin/products" |
     /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["product_key"])')
echo "e2e bench: $(nproc) CPUs, $n devices, gizsim --rate $rate --http-concurrency $conc," \
     "server threads $sthreads, GService log level $loglevel, build $build"
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; } # utime + stime, s
gs_cpu0=$(cpu "${pids[0]}"); mq_cpu0=$(cpu "${pids[1]}")
if [ -n "${GIZ_E2E_PERF:-}" ]; then # perf profiles of both servers into $GIZ_E2E_PERF/
    mkdir -p "$GIZ_E2E_PERF"
    perf record -q -e cpu-clock -g -o "$GIZ_E2E_PERF/gservice.data" -p "${pids[0]}" 2>/dev/null &
    pids+=($!)
    perf record -q -e cpu-clock -g -o "$GIZ_E2E_PERF/broker.data" -p "${pids[1]}" 2>/dev/null &
    pids+=($!)
    sleep 0.5
fi
start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$tmp/gizsim.time" "$build/tools/gizsim" --http "http://127.0.0.1:$GIZ_HTTP_PORT" -p "$pk" -n "$n" \
    --rate "$rate" --http-concurrency "$conc" --until-ready --duration 300 --progress 0 \
    --json "$tmp/report.json" 2>"$tmp/gizsim.log" || { cat "$tmp/gizsim.log" >&2; exit 1; }
end=$(date +%s.%N)
echo "CPU seconds during the run: gservice $(awk -v a="$(cpu "${pids[0]}")" -v b="$gs_cpu0" 'BEGIN{print a-b}')," \
     "mosquitto+plugin $(awk -v a="$(cpu "${pids[1]}")" -v b="$mq_cpu0" 'BEGIN{print a-b}')," \
     "gizsim $(awk '{print $1+$2}' "$tmp/gizsim.time"), wall $(awk -v a="$end" -v b="$start" 'BEGIN{printf "%.2f", a-b}')"
grep -E "all .* connected" "$tmp/gizsim.log" || true
/usr/bin/python3 - "$tmp/report.json" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c, e = r["counts"], r["errors"]
after = r.get("all_connected_after_s")
print("registered %d provisioned %d ota_checks %d connected %d errors %d" %
      (c["registered"], c["provisioned"], c["ota_checks"], c["connected"], e["total"]))
print("http latency ms:", r["latency_ms"].get("http"))
if after:
    print("whole flow: %.0f devices/s (all %d connected after %.2f s)" % (c["connected"] / after, c["connected"], after))
PY
