# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The limits the plugin enforces inside mosquitto's own socket reads (read
interposition, plugin/intercept.c; mosquitto listens on the public port itself):
180 PINGREQs within the window keep the connection, the 181st closes it (with a log
line naming the real peer address and the DID, through mosquitto's normal disconnect
path: the will is published), also when the 200 PINGREQs come in one write; the
window slides and is exact (pings spread evenly at the limit are never closed);
the CONNECT keepalive is clamped to plugin_opt_keepalive_max (700 and 0 become the
maximum, MQTT 3.1 and 3.1.1; shown by what mosquitto logs it saw, and by the idle
disconnect after 1.5 x a shortened maximum), also for a CONNECT sent byte by byte;
oversize and malformed packets close only the offending connection; connections
without CONNECT are closed after connect_timeout; the broker logs real client
addresses; a mosquitto build the plugin does not know, or one missing a relocation,
is refused at start-up."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import (APP_COUNT_REQ, PINGREQ, Paho, RawClient, app_count_payload, bind,  # noqa: E402
                         connect_packet, device_client, new_device, new_user, publish_packet,
                         wait_for)

ck = harness.Checker("plugin_limits")


def pings(c, n, split=False):
    """Sends n PINGREQs (one write, or byte by byte) and returns how many PINGRESPs came back."""
    if split:
        for _ in range(n):
            c.send(PINGREQ[:1])
            c.send(PINGREQ[1:])
    else:
        c.send(PINGREQ * n)
    got = 0
    while got < n:
        p = c.read_packet(3)
        if p is None:
            break
        if p[0] == 13:
            got += 1
    return got


def alive(c):
    """True if the connection still answers a 0x020F with a 0x0210."""
    try:
        c.publish("cli2ser_req", APP_COUNT_REQ)
    except OSError:
        return False
    p = c.read_publish(3)
    return p is not None and p[1][:6] == app_count_payload(0)[:6]


# ---------------------------------------------------------------------------
# PINGREQ limit (window shortened to 4 s so the sliding part runs quickly; the
# 180 / 181 boundary is the production one).
extra_port = harness.free_port()
cloud = harness.Cloud(broker=True, plugin_opts={"ping_window": "4s"},
                      broker_lines=["listener %d 127.0.0.1" % extra_port])
with cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)

    # A second mosquitto listener is covered too (every accepted socket is).
    x = RawClient(extra_port)
    ck.eq(x.connect(did, did, pc, keepalive=60), 0, "login on a second listener")
    ck.ok(alive(x), "second listener serves")
    ck.eq(pings(x, 180), 180, "180 PINGREQs answered on the second listener")
    x.send(PINGREQ)
    ck.ok(x.wait_closed(5), "the 181st PINGREQ closes on the second listener too")
    x.close()

    c = device_client(cloud, did, pc)
    port = c.sock.getsockname()[1]
    ck.eq(pings(c, 180), 180, "180 PINGREQs answered")
    ck.ok(alive(c), "connection alive after 180 PINGREQs in the window")
    c.send(PINGREQ)
    ck.ok(c.wait_closed(5), "the 181st PINGREQ closes the connection")
    ck.ok(wait_for(lambda: re.search(r"closing 127\.0\.0\.1:%d \(client %s\): more than 180 PINGREQ"
                                     % (port, did), cloud.log_text("mosquitto"))),
          "log line names the real peer address and the DID")

    # Split writes (one byte at a time) are framed the same way.
    c = device_client(cloud, did, pc)
    ck.eq(pings(c, 180, split=True), 180, "180 byte-by-byte PINGREQs answered")
    ck.ok(alive(c), "alive after 180 split PINGREQs")
    c.send(PINGREQ[:1])
    c.send(PINGREQ[1:])
    ck.ok(c.wait_closed(5), "181st split PINGREQ closes the connection")

    # The window slides: 180, wait out the window, 180 more are fine; then one more is not.
    c = device_client(cloud, did, pc)
    ck.eq(pings(c, 180), 180, "first 180 answered")
    time.sleep(4.6)
    ck.eq(pings(c, 180), 180, "180 more after the window passed answered")
    ck.ok(alive(c), "alive: old PINGREQs left the window")
    c.send(PINGREQ)
    ck.ok(c.wait_closed(5), "181st within the new window closes")

    # 200 PINGREQs in one write (one TCP segment): exactly 180 answered, then closed.
    c = device_client(cloud, did, pc)
    c.send(PINGREQ * 200)
    got = 0
    while True:
        p = c.read_packet(3)
        if p is None:
            break
        if p[0] == 13:
            got += 1
    ck.eq(got, 180, "200 coalesced PINGREQs: 180 PINGRESPs")
    ck.ok(c.closed, "200 coalesced PINGREQs: connection closed")

    # The offender leaves through mosquitto's normal path: its will is published.
    alice = new_user(cloud, "alice")
    bind(cloud, alice, did, pc)
    app = Paho(cloud.mqtt_port, alice["mqtt_client_id"], alice["uid"], alice["token"])
    ck.eq(list(app.subscribe("dev2app/" + did) or []), [0], "app subscribes dev2app")
    w = RawClient(cloud.mqtt_port)
    w.send(connect_packet(did, did, pc, keepalive=60, will=("dev2app/" + did, b"\x00\x00\x00\x03\x02\x00\x00\x91")))
    p = w.read_packet(3)
    ck.eq(p and p[0], 2, "device with a will connected")
    w.send(PINGREQ * 181)
    ck.ok(w.wait_closed(5), "181 PINGREQs close the device with a will")
    msgs = app.drain(2.0)
    ck.ok(("dev2app/" + did, b"\x00\x00\x00\x03\x02\x00\x00\x91") in msgs,
          "the will of the closed device reaches the app (%d messages)" % len(msgs))
    app.close()

    # Other connections are unaffected.
    c2 = device_client(cloud, did, pc)
    ck.ok(alive(c2), "a new connection works")
    c2.close()

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (ping cloud)")

# The limit is exact: 18 PINGREQs per 3,600 ms, sent evenly ~207 ms apart for ~2.5
# windows, so that no 3,600 ms window holds more than 18 (19 consecutive span 3.7 s),
# must not close. A coarse 19-bucket count (window + up to one 200 ms bucket) closed
# such a client depending on the bucket phase. Then 19 at once do close.
with harness.Cloud(broker=True, plugin_opts={"ping_max": "18", "ping_window": "3600ms"}) as cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)
    c = device_client(cloud, did, pc)
    ts = []
    for i in range(45):
        if ts:
            while time.monotonic() < ts[-1] + 0.207:
                time.sleep(0.002)
        try:
            c.send(PINGREQ)
        except OSError:
            break
        ts.append(time.monotonic())
        if c.read_packet(1.0) is None:
            break
    most = max(sum(1 for t in ts if a <= t < a + 3.6) for a in ts)
    print("sent %d evenly spaced PINGREQs, at most %d in any 3.6 s window" % (len(ts), most), flush=True)
    ck.eq(len(ts), 45, "45 evenly spaced PINGREQs (18 per window) all answered")
    ck.ok(alive(c), "connection alive after pinging at the limit for 2.5 windows")
    ck.ok("PINGREQ within" not in cloud.log_text("mosquitto"), "no PINGREQ-limit close logged")
    c.send(PINGREQ * 19)
    ck.ok(c.wait_closed(5), "19 PINGREQs at once then close it")
    c.close()
ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (exact ping cloud)")

# ---------------------------------------------------------------------------
# Keepalive clamp (max shortened to 2 s), oversize and malformed packets.
with harness.Cloud(broker=True, plugin_opts={"keepalive_max": "2", "max_packet": "4096",
                                             "connect_timeout": "2s"}) as cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)

    def saw_keepalive(cid, k):
        return re.search(r"as %s \(p\d, c\d, k%d," % (cid, k), cloud.log_text("mosquitto")) is not None

    for level in (4, 3):
        c = RawClient(cloud.mqtt_port)
        ck.eq(c.connect(did, did, pc, keepalive=700, level=level), 0, "keepalive 700 accepted (level %d)" % level)
        ck.ok(wait_for(lambda: saw_keepalive(did, 2)), "broker saw keepalive 2 for 700 (level %d)" % level)
        t0 = time.monotonic()
        closed = c.wait_closed(15)
        idle = time.monotonic() - t0
        ck.ok(closed, "idle client with keepalive 700 disconnected by the broker (level %d)" % level)
        print("idle disconnect after %.1f s (keepalive clamped to 2 s; 1.5 x 2 = 3 s)" % idle, flush=True)
        c.close()

    c = RawClient(cloud.mqtt_port)
    ck.eq(c.connect(did, did, pc, keepalive=0), 0, "keepalive 0 accepted")
    ck.ok(wait_for(lambda: len(re.findall(r"as %s \(p\d, c\d, k2," % did, cloud.log_text("mosquitto"))) >= 3),
          "keepalive 0 (never) clamped to the maximum too")
    c.close()
    # A CONNECT sent one byte per write (TCP_NODELAY: one segment each), keepalive 700.
    for level in (4, 3):
        c = RawClient(cloud.mqtt_port)
        pkt = connect_packet(did, did, pc, keepalive=700, level=level)
        for i in range(len(pkt)):
            c.send(pkt[i:i + 1])
            time.sleep(0.003)
        p = c.read_packet(3)
        ck.eq(p and (p[0], p[2][1:2]), (2, b"\x00"), "byte-by-byte CONNECT accepted (level %d)" % level)
        ck.ok(alive(c), "byte-by-byte CONNECT: connection works (level %d)" % level)
        c.close()
    ck.ok(not re.search(r"as %s \(p\d, c\d, k700," % did, cloud.log_text("mosquitto")),
          "byte-by-byte CONNECT keepalive 700 clamped")
    c = RawClient(cloud.mqtt_port)
    ck.eq(c.connect(did, did, pc, keepalive=1), 0, "keepalive 1 accepted")
    ck.ok(wait_for(lambda: saw_keepalive(did, 1)), "keepalive below the maximum left alone")
    c.close()

    # CONNECT flag oddities mosquitto 2.0.11 tolerates but our parser refuses must not
    # skip the clamp: such a CONNECT closes the connection (no CONNACK, never seen by
    # mosquitto); real CONNECTs with a will (QoS 1) still pass and are clamped.
    ODD = [("3.1 reserved flag bit", 3, 0x01, 700), ("3.1 reserved flag bit, keepalive 0", 3, 0x01, 0),
           ("3.1.1 will QoS without will flag", 4, 0x08, 700),
           ("3.1.1 will retain without will flag", 4, 0x20, 0)]
    for what, level, extra, ka in ODD:
        o = RawClient(cloud.mqtt_port)
        o.send(connect_packet(did, did, pc, keepalive=ka, level=level, extra_flags=extra))
        ck.eq(o.read_packet(3), None, "%s: no CONNACK" % what)
        ck.ok(o.wait_closed(5), "%s: connection closed" % what)
        o.close()
    ck.ok(wait_for(lambda: "malformed MQTT 3.1/3.1.1 CONNECT" in cloud.log_text("mosquitto")),
          "odd CONNECT flags logged")
    ck.ok(not re.search(r"as %s \(p\d, c\d, k(700|0)," % did, cloud.log_text("mosquitto")),
          "mosquitto never saw keepalive 700 or 0")
    for level in (4, 3):
        w = RawClient(cloud.mqtt_port)
        w.send(connect_packet(did, did, pc, keepalive=650 + level, level=level,
                              will=("dev2app/" + did, b"bye"), extra_flags=0x08))
        p = w.read_packet(3)
        ck.eq(p and (p[0], p[2][1:2]), (2, b"\x00"), "CONNECT with a QoS 1 will accepted (level %d)" % level)
        ck.ok(not re.search(r"as %s \(p\d, c\d, k%d," % (did, 650 + level), cloud.log_text("mosquitto")),
              "will CONNECT keepalive clamped (level %d)" % level)
        w.close()

    # Oversize: a 5000-byte PUBLISH with max_packet 4096 closes that connection.
    c = device_client(cloud, did, pc)
    c.send(publish_packet("dev2app/" + did, b"x" * 5000))
    ck.ok(c.wait_closed(5), "oversize packet closes the connection")
    ck.ok(wait_for(lambda: "packet larger than plugin_opt_max_packet" in cloud.log_text("mosquitto")),
          "oversize logged")

    MALFORMED = [
        ("5-byte remaining length", b"\x30\xff\xff\xff\xff\x01"),
        ("CONNACK from a client", b"\x20\x02\x00\x00"),
        ("PUBLISH before CONNECT", publish_packet("dev2app/x", b"hi")),
        ("CONNECT with a bad protocol name", b"\x10\x0c\x00\x04MQTX\x04\x02\x00\x3c\x00\x00"),
        ("CONNECT with protocol level 9", b"\x10\x0c\x00\x04MQTT\x09\x02\x00\x3c\x00\x00"),
        ("CONNECT with a lying string length", b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x40"),
        ("CONNECT with reserved flag set", b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00"),
        ("truncated CONNECT then EOF", connect_packet(did, did, pc)[:9]),
        ("garbage", bytes(range(256))),
    ]
    for what, data in MALFORMED:
        m = RawClient(cloud.mqtt_port)
        try:
            m.send(data)
            if what.startswith("truncated"):
                m.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        closed = m.wait_closed(5)
        ck.ok(closed, "%s: connection closed" % what)
        m.close()

    # After a connected client sends a second CONNECT, or a PUBLISH whose topic length lies.
    for what, data in (("second CONNECT", connect_packet(did, did, pc)),
                       ("PUBLISH with a lying topic length", b"\x30\x05\x00\x40abc")):
        c = device_client(cloud, did, pc)
        c.send(data)
        ck.ok(c.wait_closed(5), "%s closes the connection" % what)

    # A connection that never sends CONNECT (or only part of one) is closed after connect_timeout.
    silent = RawClient(cloud.mqtt_port)
    partial = RawClient(cloud.mqtt_port)
    partial.send(connect_packet(did, did, pc)[:5])
    ck.ok(silent.wait_closed(10), "silent connection closed after connect_timeout")
    ck.ok(partial.wait_closed(10), "half a CONNECT closed after connect_timeout")
    ck.ok(wait_for(lambda: "no CONNECT within 2000 ms" in cloud.log_text("mosquitto")), "connect timeout logged")
    silent.close()
    partial.close()

    # 200 connections of random bytes at once (some look like the start of a long
    # packet and are closed by connect_timeout).
    rnd = []
    for i in range(200):
        try:
            r = RawClient(cloud.mqtt_port)
            r.send(os.urandom(64 + i))
            rnd.append(r)
        except OSError:
            pass
    ck.eq(len(rnd), 200, "200 garbage connections opened")
    ck.eq(sum(1 for r in rnd if r.wait_closed(10)), 200, "all garbage connections closed")
    for r in rnd:
        r.close()

    c = device_client(cloud, did, pc)
    ck.ok(alive(c), "broker fine after malformed traffic")
    port = c.sock.getsockname()[1]
    ck.ok("logged in from 127.0.0.1" in cloud.log_text("mosquitto"),
          "plugin's login line shows the client's real address")
    ck.ok("New client connected from 127.0.0.1:%d as %s" % (port, did) in cloud.log_text("mosquitto"),
          "mosquitto itself sees the real address and port")
    c.close()

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (keepalive cloud)")

# ---------------------------------------------------------------------------
# Fail closed at start-up. plugin_opt_test_require_symbol / test_require_version
# exist for this test only: they make the start-up check also require a relocation
# (or version string) that mosquitto does not have, i.e. simulate a build without
# one of the GOT entries the plugin needs, or an unknown mosquitto version.
for what, opts, expect in (
        ("missing relocation", {"test_require_symbol": "giz_no_such_function"},
         "has no relocation for giz_no_such_function()"),
        ("unknown mosquitto build", {"test_require_version": "9.9.9-giz-test"},
         "is not one the plugin's read interposition was verified against"),
        ("removed option", {"listen": "127.0.0.1:1883"}, "the option was removed in this version")):
    c2 = harness.Cloud(gservice=False, broker=False, plugin_opts=opts)
    try:
        rc, out = harness.run_broker_once(c2.broker_conf(), c2.dir)
        ck.ok(rc != 0 and expect in out, "%s: mosquitto refuses to start with %r (rc %s)" % (what, expect, rc))
    finally:
        c2.stop()
ck.done()
