# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Counts what holds the broker's heap per idle device, by call site (evidence for
bench/suite/analysis.md and plugin/DESIGN.md; not run by bench/run).

Starts mosquitto (cloud: with the plugin; bare: anonymous) with glibc's
libc_malloc_debug.so preloaded, switches glibc's allocation trace on through gdb
(mtrace()) once the broker is up, connects N gizsim devices, waits, switches it off
(muntrace()) and replays the trace: every allocation still live is counted (as the
malloc chunk it occupies) under the address that asked for it, resolved with
addr2line for the plugin's own code.

  /usr/bin/python3 bench/suite/heapacct.py 19000 cloud
  /usr/bin/python3 bench/suite/heapacct.py 19000 bare
Options: --build DIR (default build-bench, Release), --top K (default 20).
Needs gdb and ptrace rights over the broker (root here); the fd limit must exceed N.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"


def gdb_call(pid, expr):
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void)%s" % expr],
                   capture_output=True, timeout=120)


def chunk(size):
    """The glibc chunk an allocation of size bytes takes (x86-64)."""
    return max(32, (size + 8 + 15) // 16 * 16)


def live_by_caller(trace):
    live = {}
    with open(trace) as f:
        for line in f:
            p = line.split()
            if len(p) < 4 or p[0] != "@":
                continue
            if p[2] in ("+", ">") and len(p) >= 5:
                live[p[3]] = (p[1], int(p[4], 16))
            elif p[2] in ("-", "<"):
                live.pop(p[3], None)
    agg = collections.defaultdict(lambda: [0, 0])
    for caller, size in live.values():
        agg[caller][0] += 1
        agg[caller][1] += chunk(size)
    return agg


def symbol(caller):
    m = re.match(r"(.*\.so[.0-9]*):\[(0x[0-9a-f]+)\]", caller)
    if not m:
        return ""
    out = subprocess.run(["addr2line", "-f", "-e", m.group(1), m.group(2)], capture_output=True, text=True)
    return out.stdout.split("\n")[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int)
    ap.add_argument("mode", choices=("cloud", "bare"))
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build-bench"))
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    if not os.path.exists(MALLOC_DEBUG):
        sys.exit("heapacct: %s is missing (glibc's libc6)" % MALLOC_DEBUG)
    args = argparse.Namespace(build=os.path.abspath(a.build), idle_n=a.n, fleet=a.n, logins=0, ota_n=0,
                              quick=True)
    b = bench.Bench(args)
    b.idle_max = a.n
    trace = os.path.join(b.dir, "mtrace.log")
    try:
        b.fixtures()
        os.environ["LD_PRELOAD"] = MALLOC_DEBUG
        os.environ["MALLOC_TRACE"] = trace
        try:
            br = b.broker(a.mode)
        finally:
            del os.environ["LD_PRELOAD"]
            del os.environ["MALLOC_TRACE"]
        time.sleep(1.0)
        gdb_call(br.pid, "mtrace()")
        g, _, secs = b.gizsim_fleet(br.port, a.n, rate=1500)
        time.sleep(6.0)  # past the plugin's post-storm trim (2 s without a login)
        rss = bench.rss_kib(br.pid)
        gdb_call(br.pid, "muntrace()")
        b.stop(g)
        b.stop(br)
        agg = live_by_caller(trace)
        total = sum(v[1] for v in agg.values())
        print("%s, N = %d (connected in %.1f s): broker RSS %d KiB; heap allocated since the trace "
              "began and still live: %d B = %.1f B per device" % (a.mode, a.n, secs, rss, total, total / a.n))
        for caller, (cnt, size) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:a.top]:
            print("%9d allocs %11d B %8.1f B/device  %s %s" % (cnt, size, size / a.n, caller[-72:], symbol(caller)))
    finally:
        b.stop_all()


if __name__ == "__main__":
    main()
