# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""A TCP flood of idle sockets that never send CONNECT (issue 12 item 1) against the
plugin's accept interposition (plugin/intercept.c):

1. Caps: with plugin_opt_pre_connect_per_addr 40 / pre_connect_max 70, a flood of 300
   sockets from 127.0.0.2 keeps at most 40 open (the rest are accepted and closed at
   once), a second flood from 127.0.0.3 fills the global cap; a logged-in device keeps
   pinging and publishing; a new login is refused while the global cap is full and
   works as soon as connect_timeout has swept the idle sockets; the refusals are
   logged as a bounded number of summary lines with counts.
2. Past the process fd limit: mosquitto runs with RLIMIT_NOFILE 160 and default caps;
   400 idle sockets from 127.0.0.2 exhaust its descriptors; the spare-descriptor trick
   (and a headroom of descriptors left to mosquitto itself) keep accepting and closing instead of making mosquitto's accept loop spin (its own
   "Unable to accept new connection" line never appears, the broker's CPU time during
   the flood is printed), the logged-in device is served throughout, and a new device
   logs in once the idle sockets are gone."""
import os
import re
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import (APP_COUNT_REQ, PINGREQ, RawClient, app_count_payload, device_client,  # noqa: E402
                         new_device, wait_for)

ck = harness.Checker("plugin_flood")


def flood(port, source, n):
    """Opens n TCP connections from source (127.0.0.x) that send nothing."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def still_open(socks, settle=1.0):
    """How many of socks the server has not closed (no EOF/reset within settle s)."""
    time.sleep(settle)
    n = 0
    for s in socks:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            n += 1
            continue
        try:
            if s.recv(1, socket.MSG_DONTWAIT):
                n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def served(c):
    """The logged-in device still gets PINGRESP and a 0x0210 answer."""
    try:
        c.send(PINGREQ)
        p = c.read_packet(3)
        if p is None or p[0] != 13:
            return False
        c.publish("cli2ser_req", APP_COUNT_REQ)
        p = c.read_publish(3)
        return p is not None and p[1][:6] == app_count_payload(0)[:6]
    except OSError:
        return False


def broker_cpu(pid):
    """utime + stime of the broker in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def close_all(socks):
    for s in socks:
        s.close()


# ---------------------------------------------------------------------------
# 1. Caps per address and global.
with harness.Cloud(broker=True, plugin_opts={"pre_connect_per_addr": "40", "pre_connect_max": "70",
                                             "connect_timeout": "6s"}) as cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)
    did2, pc2 = new_device(cloud, pk)
    dev = device_client(cloud, did, pc)
    ck.ok(served(dev), "device served before the flood")

    f2 = flood(cloud.mqtt_port, "127.0.0.2", 300)
    ck.eq(len(f2), 300, "300 flood connections from 127.0.0.2 connected (TCP)")
    open2 = still_open(f2)
    print("flood from 127.0.0.2: %d of 300 still open" % open2, flush=True)
    ck.ok(1 <= open2 <= 40, "at most plugin_opt_pre_connect_per_addr (40) kept (%d)" % open2)
    ck.ok(served(dev), "device served during the flood")

    f3 = flood(cloud.mqtt_port, "127.0.0.3", 100)
    open3 = still_open(f3)
    print("flood from 127.0.0.3: %d of 100 still open" % open3, flush=True)
    ck.ok(open2 + open3 <= 70, "at most plugin_opt_pre_connect_max (70) kept in all (%d)" % (open2 + open3))
    ck.ok(served(dev), "device served with the global cap full")

    # A new login while the global cap is full is refused at accept; once the idle
    # sockets have been swept (connect_timeout 6 s) there is room again.
    refused_now = False
    try:
        n = RawClient(cloud.mqtt_port, timeout=3)
        refused_now = n.connect(did2, did2, pc2) != 0
    except OSError:
        refused_now = True
    ck.ok(refused_now, "new connection refused while the global pre-CONNECT cap is full")
    ok = wait_for(lambda: still_open(f2 + f3, settle=0.2) == 0, timeout=15, step=0.5)
    ck.ok(ok, "idle flood sockets closed after connect_timeout")
    d2 = RawClient(cloud.mqtt_port)
    ck.eq(d2.connect(did2, did2, pc2), 0, "a new login works once room exists")
    ck.ok(served(d2), "the new connection is served")
    ck.ok(served(dev), "the first device is still served")
    d2.close()
    close_all(f2 + f3)

    ck.ok(wait_for(lambda: "giz: refused" in cloud.log_text("mosquitto"), timeout=15, step=0.5),
          "refusals summarized in the log")
    log = cloud.log_text("mosquitto")
    summaries = re.findall(r"giz: refused (\d+) connections in the last \d+ s: (\d+) over "
                           r"plugin_opt_pre_connect_max 70, (\d+) over plugin_opt_pre_connect_per_addr 40",
                           log)
    print("summary lines: %r" % summaries, flush=True)
    ck.ok(1 <= len(summaries) <= 3, "a bounded number of summary lines (%d)" % len(summaries))
    total = sum(int(s[0]) for s in summaries)
    ck.ok(total >= 300 - 40 + 100 - (70 - open2), "summaries count the refused connections (%d)" % total)
    ck.ok(sum(int(s[2]) for s in summaries) >= 300 - 40, "per-address refusals counted")
    ck.ok(sum(int(s[1]) for s in summaries) >= 1, "global-cap refusals counted")
    timeouts = log.count("no CONNECT within 6000 ms")
    ck.ok(1 <= timeouts <= 20, "connect-timeout lines rate-limited (%d)" % timeouts)
    ck.ok(log.count("\n") < 400, "log stays small (%d lines)" % log.count("\n"))
    dev.close()
ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (caps)")

# ---------------------------------------------------------------------------
# 2. Past the process fd limit (1 fd per connection in the broker).
with harness.Cloud(broker=True, broker_nofile=160, plugin_opts={"connect_timeout": "10s"}) as cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)
    did2, pc2 = new_device(cloud, pk)
    dev = device_client(cloud, did, pc)
    ck.ok(served(dev), "device served before the fd flood")
    pid = cloud.broker.pid
    cpu0 = broker_cpu(pid)
    t0 = time.monotonic()
    f = flood(cloud.mqtt_port, "127.0.0.2", 400)
    kept = still_open(f)
    print("fd flood: %d of %d kept open by a broker limited to 160 fds" % (kept, len(f)), flush=True)
    ck.ok(kept < 160, "the broker holds fewer flood sockets than its fd limit (%d)" % kept)
    ck.ok(kept >= 100, "the flood did reach the fd limit (%d kept)" % kept)
    ck.ok(served(dev), "device served while the broker is out of descriptors")
    # A new login while out of descriptors is refused; it works once there is room.
    try:
        x = RawClient(cloud.mqtt_port, timeout=3)
        rc = x.connect(did2, did2, pc2)
        x.close()
    except OSError:
        rc = -1
    print("login while out of descriptors: rc %s" % rc, flush=True)
    more = flood(cloud.mqtt_port, "127.0.0.2", 200)  # keep pressing while holding
    cpu1 = broker_cpu(pid)
    secs = time.monotonic() - t0
    print("broker CPU during the flood: %.2f s in %.1f s" % (cpu1 - cpu0, secs), flush=True)
    ok = wait_for(lambda: still_open(f + more, settle=0.2) == 0, timeout=40, step=0.5)
    ck.ok(ok, "idle sockets closed after connect_timeout")
    d2 = RawClient(cloud.mqtt_port)
    ck.eq(d2.connect(did2, did2, pc2), 0, "a new device logs in once descriptors are free")
    ck.ok(served(d2), "the new device is served")
    ck.ok(served(dev), "the first device was served throughout")
    d2.close()
    close_all(f + more)
    log = cloud.log_text("mosquitto")
    ck.ok("Unable to accept new connection" not in log, "mosquitto's own accept-failure line never appears")
    ck.ok(wait_for(lambda: "at the fd limit" in cloud.log_text("mosquitto"), timeout=15, step=0.5),
          "fd-limit refusals summarized")
    m = re.findall(r"giz: refused \d+ connections in the last \d+ s: .* (\d+) at the fd limit \(160,",
                   cloud.log_text("mosquitto"))
    print("fd-limit refusals per summary line: %r" % m, flush=True)
    ck.ok(len(m) >= 1 and sum(int(x) for x in m) >= 100, "fd-limit refusals counted")
    log = cloud.log_text("mosquitto")
    ck.ok("denied access by tcpd" not in log, "mosquitto never runs out of descriptors itself (no tcpd denials)")
    # mosquitto logs each connection it accepted (connection_messages: "New connection",
    # "closed its connection"); the refused ones never reach it, and the plugin's own
    # lines are summaries.
    giz_lines = sum(1 for l in log.splitlines() if "giz: " in l)
    print("log: %d lines, %d of them the plugin's, for %d + %d flood sockets"
          % (log.count("\n"), giz_lines, len(f), len(more)), flush=True)
    ck.ok(log.count("\n") < 2 * (kept + len(more)) + 100, "log lines bounded by the connections admitted")
    ck.ok(giz_lines < 60, "the plugin's own lines are bounded (%d)" % giz_lines)
    dev.close()
ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (fd limit)")
ck.done()
