#!/usr/bin/python3
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Benchmark of OTA campaigns (issue 16); not a test (never fails on a figure).

1. A campaign over N online gizsim devices (strict firmware emulation: they
   really download the image, check its MD5 and report 0x022C / 0x021C):
   time from POST /admin/ota/campaigns to the last device notified and to the
   last device updated (server timestamps of the device rows).
2. Firmware download throughput: wrk on GET /dev/ota/v4.1/download/<id>
   (the GService: mapped file, Range support, one timeline event per
   download) against the same file served by libmicrohttpd itself from its
   file descriptor (bench/gservice/hello.c with FILE), same thread count,
   alternating order.

Usage: bench/campaign.py [--n 10000] [--size KIB] [--build DIR] [--wrk-seconds S]
Needs a Release build with giz-gservice, giz_plugin, gizsim and giz-bench-hello
(default build-bench-campaign: cmake -DCMAKE_BUILD_TYPE=Release -DGIZ_TESTS=OFF).
"""
import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=10000)
ap.add_argument("--size", type=int, default=64, help="firmware KiB")
ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "build-bench-campaign"))
ap.add_argument("--wrk-seconds", type=int, default=8)
ap.add_argument("--reps", type=int, default=2)
args = ap.parse_args()
os.environ["GIZ_BUILD_DIR"] = os.path.abspath(args.build)
os.environ["GIZ_ASAN"] = "0"
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness  # noqa: E402

GIZSIM = os.path.join(args.build, "tools", "gizsim")
HELLO = os.path.join(args.build, "gservice", "giz-bench-hello")


def wrk(url, seconds):
    r = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % seconds, url], capture_output=True, text=True)
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", r.stdout)
    q = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if not m:
        return None, None
    mult = {"B": 1 / 1e6, "KB": 1 / 1024, "MB": 1, "GB": 1024}[m.group(2)]
    return float(m.group(1)) * mult, float(q.group(1)) if q else None


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


print("machine: %d cores, load %s, N=%d, image %d KiB" % (os.cpu_count(), load(), args.n, args.size),
      flush=True)
with harness.Cloud(broker=True, broker_nofile=hard,
                   gservice_env={"GIZ_PUBLIC_URL": "http://127.0.0.1",
                                 "GIZ_HTTP_MAX_CONNECTIONS": "4000",
                                 "GIZ_HTTP_PER_IP_LIMIT": "0"}) as cloud:
    tmp = tempfile.mkdtemp(prefix="bench-campaign-")
    pk = cloud.create_product("bench")["product_key"]
    state = os.path.join(tmp, "fleet")
    sim = subprocess.Popen([GIZSIM, "--http", "http://127.0.0.1:%d" % cloud.http_port, "-p", pk,
                            "-n", str(args.n), "-s", state, "--rate", "2000", "--soft-version",
                            "04020020", "--heartbeat", "50", "--duration", "3000", "--quiet",
                            "--progress", "0"], stderr=subprocess.PIPE, text=True)
    t = time.monotonic()
    for line in sim.stderr:
        if "devices connected" in line:
            break
    print("fleet of %d connected in %.1f s" % (args.n, time.monotonic() - t), flush=True)
    for _ in range(600):  # presence is written in batches
        _, _, body = cloud.http("GET", "/metrics")
        m = re.search(r"^gizcloud_devices_online (\d+)$", body.decode(), re.M)
        if m and int(m.group(1)) >= args.n:
            break
        time.sleep(0.2)
    image = os.urandom(args.size * 1024)
    fw = cloud.upload_firmware(pk, 1, "04020021", image)
    t0 = time.time()
    status, c = cloud.json("POST", "/admin/ota/campaigns", {"product_key": pk, "timeout_s": 1800},
                           admin=True)
    cid = c.get("id")
    print("campaign %s: %s devices" % (cid, c.get("devices")), flush=True)
    while True:
        status, c = cloud.json("GET", "/admin/ota/campaigns/%s?limit=1" % cid, admin=True)
        if c.get("state") != "running" or time.time() - t0 > 1800:
            break
        time.sleep(0.5)
    devs = []
    for off in range(0, args.n, 10000):
        status, page = cloud.json("GET", "/admin/ota/campaigns/%s?limit=10000&offset=%d" % (cid, off),
                                  admin=True)
        devs += page.get("devices", [])
    notified = max(d.get("notified_at", 0) for d in devs) / 1000.0 - t0
    updated = max(d.get("done_at", 0) for d in devs) / 1000.0 - t0
    print("campaign %s: %s, counts %s" % (cid, c.get("state"), c.get("counts")))
    print("time to all notified: %.3f s; to all updated: %.3f s (%d devices, %d KiB each, "
          "%.1f MB downloaded)" % (notified, updated, args.n, args.size,
                                   sum(d.get("bytes", 0) for d in devs) / 1e6), flush=True)
    sim.send_signal(signal.SIGINT)
    sim.wait(timeout=60)

    # -- download throughput: GService vs libmicrohttpd's static file path ----------------------
    path = os.path.join(tmp, "fw.bin")
    with open(path, "wb") as f:
        f.write(image)
    hport = harness.free_port()
    threads = os.cpu_count() or 2
    hello = subprocess.Popen([HELLO, str(hport), str(threads), path])
    harness.wait_port(hport, hello)
    gs_url = "http://127.0.0.1:%d/dev/ota/v4.1/download/%d" % (cloud.http_port, fw["id"])
    hello_url = "http://127.0.0.1:%d/fw.bin" % hport
    rows = []
    for rep in range(args.reps):
        order = [("gservice", gs_url), ("hello", hello_url)]
        if rep % 2:
            order.reverse()
        got = {}
        for name, url in order:
            got[name] = wrk(url, args.wrk_seconds)
        rows.append(got)
        print("rep %d: gservice %.1f MB/s (%.0f req/s), libmicrohttpd static file %.1f MB/s "
              "(%.0f req/s), ratio %.2f" % (rep, got["gservice"][0], got["gservice"][1],
                                           got["hello"][0], got["hello"][1],
                                           got["gservice"][0] / got["hello"][0]), flush=True)
    hello.send_signal(signal.SIGTERM)
    hello.wait(timeout=10)
print("load after: %s" % load())
