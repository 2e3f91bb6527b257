# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Online-app counts: 0x020F on ser2cli_req and on cli2ser_req is answered with a bare
0x0210 on ser2cli_res/<DID>; 0x0210 is pushed when an app bound to the device comes
online or goes offline, when an online app is bound or unbound, and when the device
(re)connects while a bound app is online; a client-id takeover
(same app client id connecting again) and a second session of the same user keep the
count right. Malformed requests are dropped and logged, never answered.

A count the cloud pushes by itself waits until the device holds its subscriptions
(all three, or ser2cli_res plus plugin_opt_sub_wait): a firmware-like device (one recv()
per packet, PUBLISHes before its third SUBACK ignored) that subscribes late must get
exactly one count, after its last SUBACK (issue 10 item 3)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from firmware_mqtt import FirmwareDevice  # noqa: E402
from plugin_mqtt import (APP_COUNT_REQ, Paho, RawClient, app_count_payload, app_paho, bind,  # noqa: E402
                         device_client, new_device, new_user, unbind)

ck = harness.Checker("plugin_counts")


def next_count(dev, timeout=3.0):
    """The next 0x0210 count the device receives, or None."""
    p = dev.read_publish(timeout)
    if p is None:
        return None
    topic, payload = p
    if topic != "ser2cli_res/" + dev.did or len(payload) != 8 or payload[:6] != app_count_payload(0)[:6]:
        return ("unexpected", topic, payload)
    return int.from_bytes(payload[6:8], "big")


def subscribe_all(dev, did, pk):
    """The firmware's three subscriptions, in its order, each waiting for its SUBACK."""
    return [dev.subscribe(t, mid) for mid, t in
            enumerate(("ser2cli_noti/" + pk, "ser2cli_res/" + did, "app2dev/%s/#" % did), 1)]


def counts_of(pubs, did):
    return [int.from_bytes(p[8 - 2:8], "big") for _, t, p in pubs
            if t == "ser2cli_res/" + did and len(p) == 8 and p[:6] == app_count_payload(0)[:6]]


def ask(dev, topic):
    dev.publish(topic, APP_COUNT_REQ)
    return next_count(dev)


with harness.Cloud(broker=True) as cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)
    other, pco = new_device(cloud, pk, "otherpass1")
    alice = new_user(cloud, "alice")
    bob = new_user(cloud, "bob")
    carol = new_user(cloud, "carol")
    bind(cloud, alice, did, pc)
    bind(cloud, bob, did, pc)
    bind(cloud, carol, other, pco)

    dev = device_client(cloud, did, pc)
    dev.did = did
    ck.eq(subscribe_all(dev, did, pk), [0, 0, 0], "device subscribes its three topics")
    ck.eq(ask(dev, "ser2cli_req"), 0, "0x020F on ser2cli_req -> 0x0210 count 0")
    ck.eq(ask(dev, "cli2ser_req"), 0, "0x020F on cli2ser_req -> 0x0210 count 0")

    # Also when the device did not subscribe (firmware that subscribes late):
    dev2 = device_client(cloud, other, pco)
    dev2.did = other
    ck.eq(ask(dev2, "cli2ser_req"), 0, "the answer to 0x020F reaches a device without a subscription")
    ck.eq(subscribe_all(dev2, other, pk), [0, 0, 0], "other device subscribes")

    a1 = app_paho(cloud, alice)
    ck.eq(a1.rc, 0, "alice connects")
    ck.eq(next_count(dev), 1, "push 1 when alice connects")
    b1 = app_paho(cloud, bob)
    ck.eq(next_count(dev), 2, "push 2 when bob connects")
    c1 = app_paho(cloud, carol)  # bound to the other device only
    ck.eq(next_count(dev2), 1, "other device: push 1 when carol connects")
    ck.eq(next_count(dev, 0.5), None, "no push to the device carol is not bound to")

    # Takeover: alice's client id connects again; the old connection is closed by the broker.
    a1.c.loop_stop()  # the old paho client must not reconnect and fight for the id
    a2 = app_paho(cloud, alice)
    ck.eq(a2.rc, 0, "alice takeover connects")
    time.sleep(0.3)
    extra = next_count(dev, 0.5)
    ck.ok(extra in (None, 2), "takeover pushes nothing or the unchanged count (got %r)" % (extra,))
    ck.eq(ask(dev, "ser2cli_req"), 2, "count still 2 after takeover")
    ck.ok("Client %s already connected, closing old connection" % alice["mqtt_client_id"]
          in cloud.log_text("mosquitto"), "the broker did take the client id over")

    # A second session of the same user (another login, another client id) counts once more.
    status, login2 = cloud.json("POST", "/app/login", {"username": "alice", "password": "pw-alice"})
    ck.eq(status, 200, "alice logs in again")
    a3 = Paho(cloud.mqtt_port, login2["mqtt_client_id"], login2["uid"], login2["token"])
    ck.eq(next_count(dev), 3, "push 3 for alice's second session (distinct client id)")
    a3.close()
    ck.eq(next_count(dev), 2, "push 2 when that session disconnects")

    b1.close()
    ck.eq(next_count(dev), 1, "push 1 when bob disconnects")

    # Bind / unbind of an online app.
    bind(cloud, carol, did, pc)
    ck.eq(next_count(dev), 2, "push 2 when online carol binds the device")
    unbind(cloud, carol, did)
    ck.eq(next_count(dev), 1, "push 1 when carol unbinds")
    unbind(cloud, alice, did)
    ck.eq(next_count(dev), 0, "push 0 when alice unbinds")
    ck.eq(ask(dev, "cli2ser_req"), 0, "0x020F agrees: 0")
    # Binding an offline user changes nothing.
    bind(cloud, bob, did, pc)
    ck.eq(next_count(dev, 0.7), None, "no push when an offline user binds")

    # Malformed requests: no answer, a log line, broker fine.
    for bad in (b"", b"\x00\x00\x00\x03", b"\x00\x00\x00\x03\x02", b"\x00\x00\x00\x04\x02\x0f",
                b"\x00\x00\x00\x03\x02\x0f\x00", b"\x00\x00\x00\x03\x99\x99", b"\xff" * 100):
        dev.publish("cli2ser_req", bad)
        dev.publish("ser2cli_req", bad)
    ck.eq(next_count(dev, 0.7), None, "malformed 0x020F requests are not answered")
    ck.eq(ask(dev, "ser2cli_req"), 0, "still answering well-formed requests")
    ck.ok("dropped malformed payload from %s" % did in cloud.log_text("mosquitto"),
          "malformed request logged")

    # A device (re)connecting while a bound app is online gets the count pushed without
    # asking, once it has subscribed (not before); with no app online, nothing is pushed.
    dev2.close()
    time.sleep(0.3)
    dev2 = device_client(cloud, other, pco)
    dev2.did = other
    ck.eq(next_count(dev2, 0.7), None, "no count before the reconnected device subscribes")
    ck.eq(subscribe_all(dev2, other, pk), [0, 0, 0], "reconnected device subscribes late")
    ck.eq(next_count(dev2), 1, "device reconnecting with carol online gets 0x0210 count 1")
    ck.eq(next_count(dev2, 0.5), None, "once")
    dev2.close()
    time.sleep(0.3)
    dev2 = device_client(cloud, other, pco)  # firmware style: subscribes right after CONNACK
    dev2.did = other
    ck.eq(subscribe_all(dev2, other, pk), [0, 0, 0], "reconnected device subscribes")
    ck.eq(dev2.early, [], "nothing pushed before the last SUBACK")
    ck.eq(next_count(dev2), 1, "count 1 pushed after the SUBACKs")
    ck.eq(next_count(dev2, 0.5), None, "pushed once")
    dev.close()
    time.sleep(0.3)
    dev = device_client(cloud, did, pc)
    dev.did = did
    ck.eq(next_count(dev, 0.7), None, "device reconnecting with no app online gets no push")

    dev2.close()

    # Firmware-like device (issue 10 item 3): logs in while carol (bound) is online, waits
    # 300 ms, subscribes one topic at a time, one recv() per packet. Exactly one count,
    # after its last SUBACK; nothing before it, nothing lost to a coalesced recv().
    time.sleep(0.3)
    fw = FirmwareDevice(cloud.mqtt_port, other, pco, pk)
    ck.eq(fw.connect(), 0, "firmware-like device logs in (MQTT 3.1)")
    time.sleep(0.3)
    ck.eq(fw.subscribe_all(), [0, 0, 0], "its three SUBSCRIBEs are granted")
    pubs = fw.read_publishes(1.5)
    ck.eq([(t, p) for _, t, p in fw.ignored], [], "nothing was sent before its last SUBACK")
    ck.eq(fw.lost, [], "no packet shared a recv() with another")
    ck.eq(counts_of(pubs, other), [1], "exactly one 0x0210 count 1 after the last SUBACK")
    ck.ok(all(t >= fw.subscribed_at for t, _, _ in pubs), "and only after it")
    # The count changing while the device is still subscribing: still one count, the latest.
    fw.close()
    time.sleep(0.3)
    fw = FirmwareDevice(cloud.mqtt_port, other, pco, pk)
    ck.eq(fw.connect(), 0, "firmware-like device logs in again")
    c1.close()  # carol goes: count 0 while the device has not subscribed yet
    time.sleep(0.3)
    c1 = app_paho(cloud, carol)  # and comes back: count 1
    time.sleep(0.3)
    ck.eq(fw.subscribe_all(), [0, 0, 0], "subscribes after the count changed twice")
    pubs = fw.read_publishes(1.5)
    ck.eq(fw.ignored, [], "nothing before the last SUBACK")
    ck.eq(counts_of(pubs, other), [1], "one count, the current one")
    fw.close()

    # All three filters in one SUBSCRIBE: ready at its SUBACK, one count after it.
    time.sleep(0.3)
    fw = FirmwareDevice(cloud.mqtt_port, other, pco, pk)
    ck.eq(fw.connect(), 0, "device subscribing with one SUBSCRIBE logs in")
    body = b"\x00\x07" + b"".join(len(t).to_bytes(2, "big") + t.encode() + b"\x00" for t in fw.topics())
    fw.sock.sendall(bytes([0x82, len(body)]) + body)
    p = fw.recv_one(5.0)
    ck.ok(p is not None and p[0] == 9 and p[2][:2] == b"\x00\x07" and p[2][2:] == b"\x00\x00\x00",
          "one SUBACK grants all three (%r)" % (p,))
    pubs = fw.read_publishes(1.5)
    ck.eq(fw.lost, [], "the count did not share a recv() with the SUBACK")
    ck.eq(counts_of(pubs, other), [1], "exactly one count after that SUBACK")
    fw.close()

    # A device that subscribes only to ser2cli_res still gets its count, after
    # plugin_opt_sub_wait (1 s by default).
    time.sleep(0.3)
    fw = FirmwareDevice(cloud.mqtt_port, other, pco, pk)
    ck.eq(fw.connect(), 0, "device subscribing only ser2cli_res logs in")
    ck.eq(fw.subscribe_all(["ser2cli_res/" + other]), [0], "it subscribes ser2cli_res only")
    pubs = fw.read_publishes(3.0, stop_after=1)
    ck.eq(counts_of(pubs, other), [1], "count 1 after the fallback wait")
    ck.ok(pubs and pubs[0][0] - fw.subscribed_at >= 0.8,
          "not before the fallback wait (%.2f s)" % (pubs[0][0] - fw.subscribed_at if pubs else -1))
    fw.close()

    for c in (a2, c1):
        c.close()
    dev.close()

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly")
ck.done()
