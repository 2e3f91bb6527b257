# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Profiling aid (not a test): holds N idle logged-in device connections on a
broker in one of bench_broker.py's layouts, so a heap profiler wrapped around
mosquitto (put a `mosquitto` wrapper script first on PATH, e.g. one running
`valgrind --tool=massif /usr/sbin/mosquitto "$@"`) sees the per-connection
allocations at its peak; export LD_PRELOAD=<build>/plugin/giz_plugin.so in that wrapper
so the plugin stays mapped after mosquitto's dlclose and massif can name its functions.
Prints RSS growth per connection and which mappings grew (the front thread's allocations
live in their own glibc arena, an [anon] mapping; the rest in [heap]).

Run:  GIZ_BUILD_DIR=build-x /usr/bin/python3 bench/broker/idle_profile.py [--idle N] [--mode front|plugin|bare]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import harness  # noqa: E402
from bench_broker import restart_broker, rss_kib  # noqa: E402
from plugin_mqtt import RawClient, new_device  # noqa: E402


def smaps(pid):
    """{mapping: Rss KiB} of a process (anonymous mappings keyed by address range)."""
    out, key = {}, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                key = parts[0].split("-")[0] + " " + (parts[5] if len(parts) > 5 else "[anon]")
            elif parts[0] == "Rss:":
                out[key] = int(parts[1])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--mode", default="front")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds to hold the connections")
    args = ap.parse_args()
    with harness.Cloud(broker=False) as cloud:
        pk = cloud.create_product()["product_key"]
        clients = []
        for i in range(args.idle):
            if args.mode == "bare":
                clients.append(("idle%05d" % i, None, None))
            else:
                d, p = new_device(cloud, pk, "idlepass%02d" % (i % 100))
                clients.append((d, d, p))
        restart_broker(cloud, args.mode)
        time.sleep(1.0)
        base = rss_kib(cloud.broker.pid)
        maps0 = smaps(cloud.broker.pid)
        conns = []
        for cid, user, pw in clients:
            c = RawClient(cloud.mqtt_port, timeout=60)
            if c.connect(cid, user, pw, keepalive=600) == 0:
                conns.append(c)
        time.sleep(args.hold)
        grown = rss_kib(cloud.broker.pid) - base
        maps1 = smaps(cloud.broker.pid)
        growth = sorted(((maps1.get(k, 0) - maps0.get(k, 0), k) for k in set(maps0) | set(maps1)), reverse=True)
        for kib, k in growth[:8]:
            if kib:
                print("  %+6d KiB  %s" % (kib, k))
        print("mode %s: %d connections, RSS +%d KiB, %.2f KiB/conn"
              % (args.mode, len(conns), grown, grown / max(len(conns), 1)), flush=True)
        for c in conns:
            c.close()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
