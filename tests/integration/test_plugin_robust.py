# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The broker survives 1,000 malformed payloads on every topic the plugin reads
(cli2ser_req, ser2cli_req, dev2app/<DID> 0x0012 logs) and from apps: none is acted
on, business payloads pass through byte for byte, the plugin's log lines about them
are rate-limited, and the broker keeps answering and delivering afterwards. Also a
reconnect storm: 300 logins of the same device in a row, and 1,500 clients connecting
at once, are all answered."""
import os
import random
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import (APP_COUNT_REQ, RawClient, app_count_payload, app_paho, bind,  # noqa: E402
                         connect_packet, device_client, new_device, new_user)

ck = harness.Checker("plugin_robust")
rng = random.Random(20261126)


def malformed(i):
    """A deterministic mix of broken protocol payloads."""
    kind = i % 10
    hdr = b"\x00\x00\x00\x03"
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
    if kind == 1:
        return hdr[:rng.randrange(0, 4)]
    if kind == 2:
        return hdr + b"\xff\xff\xff\xff\x7f" + b"\x00\x00\x12"           # 5-byte varint
    if kind == 3:
        return hdr + bytes([rng.randrange(5, 120)]) + b"\x00\x00\x12\x01"  # Len lies
    if kind == 4:
        return hdr + b"\x05\x00\x00\x12\x04\x00"                           # truncated log
    if kind == 5:
        body = b"\x01" + struct.pack(">H", 300) + b"t"                     # tags length lies
        rest = b"\x00\x00\x12" + body
        return hdr + bytes([len(rest)]) + rest
    if kind == 6:
        body = b"\x03\x00\x00\x00\x00" + struct.pack(">H", 2) + b"\xc3\x28"  # invalid UTF-8
        rest = b"\x00\x00\x12" + body
        return hdr + bytes([len(rest)]) + rest
    if kind == 7:
        return hdr + b"\x02\x0f" + os.urandom(rng.randrange(1, 20))         # 0x020F + junk
    if kind == 8:
        return b"\x00\x00\x00\x02\x02\x0f"                                  # wrong header
    return hdr + b"\x03\x01\x00\x12"                                        # flags != 0


with harness.Cloud(broker=True) as cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)
    alice = new_user(cloud, "alice")
    bind(cloud, alice, did, pc)
    dev = device_client(cloud, did, pc)
    ck.eq(dev.subscribe("ser2cli_res/" + did), 0, "device subscribes")
    ck.eq(dev.subscribe("app2dev/%s/#" % did), 0, "device subscribes app2dev")
    app = app_paho(cloud, alice)
    ck.eq(list(app.subscribe("dev2app/" + did) or []), [0], "app subscribes")
    first = dev.read_publish(3)
    ck.eq(first and first[1], app_count_payload(1), "count 1 pushed when the app connects")

    sent = []
    topics = ["cli2ser_req", "ser2cli_req", "dev2app/" + did, "dev2app/%s/%s" % (did, alice["mqtt_client_id"])]
    for i in range(1000):
        p = malformed(i)
        t = topics[i % len(topics)]
        dev.publish(t, p)
        if t.startswith("dev2app/%s" % did) and t.count("/") == 1:
            sent.append(p)
    for i in range(200):
        app.publish("app2dev/%s/%s" % (did, alice["mqtt_client_id"]), malformed(i))
    dev.publish("dev2app/" + did, b"marker")

    got = []
    for _ in range(200):
        more = app.drain(0.1)
        got.extend(more)
        if any(p == b"marker" for _, p in got):
            break
    payloads = [p for t, p in got if t == "dev2app/" + did]
    ck.eq(payloads[:-1], sent, "all 250 malformed dev2app payloads delivered to the app untouched")

    # The device's messages are paced (plugin_opt_device_gap) through a bounded queue:
    # let it drain before the good request, so that its answer is not dropped.
    seen = []
    for _ in range(1000):
        p = dev.read_publish(1.0)
        if p is None:
            break
        seen.append(p)
    # Nothing was answered: the only thing on ser2cli_res is the answer to a good request.
    dev.publish("cli2ser_req", APP_COUNT_REQ)
    while True:
        p = dev.read_publish(3)
        if p is None:
            break
        seen.append(p)
        if p[0].startswith("ser2cli_res/"):
            break
    answers = [p for t, p in seen if t.startswith("ser2cli_res/")]
    ck.eq(answers, [app_count_payload(1)], "only the well-formed 0x020F was answered")
    app2dev = [p for t, p in seen if t.startswith("app2dev/")]
    ck.ok(len(app2dev) <= 200, "app business payloads delivered (%d so far)" % len(app2dev))

    log = cloud.log_text("mosquitto")
    lines = log.count("dropped malformed payload")
    ck.ok(1 <= lines <= 40, "malformed payloads logged, rate-limited (%d lines)" % lines)

    # Reconnect storm: 300 sequential logins of the same device (cached path).
    ok = 0
    for i in range(300):
        r = RawClient(cloud.mqtt_port)
        if r.connect(did, did, pc, keepalive=120) == 0:
            ok += 1
        r.close()
    ck.eq(ok, 300, "300 reconnects accepted")
    # Connection burst: 1,500 clients from one address connect at once: all answered
    # (the pre-CONNECT caps, 1,000 per address by default, count only connections that
    # have not sent their CONNECT yet).
    burst = []
    pkt = connect_packet(did, did, pc, keepalive=120)
    for i in range(1500):
        s = socket.create_connection(("127.0.0.1", cloud.mqtt_port), timeout=30)
        s.sendall(pkt)
        burst.append(s)
    acked = 0
    for s in burst:
        try:
            if s.recv(4)[:2] == b"\x20\x02":
                acked += 1
        except OSError:
            pass
        s.close()
    ck.eq(acked, 1500, "all 1,500 simultaneous CONNECTs answered")
    ck.ok("giz: refused" not in cloud.log_text("mosquitto"), "no connection refused by the pre-CONNECT caps")

    dev = device_client(cloud, did, pc)
    dev.publish("ser2cli_req", APP_COUNT_REQ)
    p = dev.read_publish(3)
    ck.eq(p and p[1], app_count_payload(1), "count still right after the storm")
    app.close()
    dev.close()

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly")
ck.done()
