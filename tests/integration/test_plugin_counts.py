# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Online-app counts: 0x020F on ser2cli_req and on cli2ser_req is answered with a bare
0x0210 on ser2cli_res/<DID>; 0x0210 is pushed when an app bound to the device comes
online or goes offline, when an online app is bound or unbound, and when the device
(re)connects while a bound app is online; a client-id takeover
(same app client id connecting again) and a second session of the same user keep the
count right. Malformed requests are dropped and logged, never answered."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
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
    ck.eq(dev.subscribe("ser2cli_res/" + did), 0, "device subscribes ser2cli_res/<DID>")
    ck.eq(ask(dev, "ser2cli_req"), 0, "0x020F on ser2cli_req -> 0x0210 count 0")
    ck.eq(ask(dev, "cli2ser_req"), 0, "0x020F on cli2ser_req -> 0x0210 count 0")

    # Also when the device did not subscribe (firmware that subscribes late):
    dev2 = device_client(cloud, other, pco)
    dev2.did = other
    ck.eq(ask(dev2, "cli2ser_req"), 0, "0x0210 reaches a device without a subscription")

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

    # A device (re)connecting while a bound app is online gets the count pushed at once,
    # without asking and without a subscription; with no app online, nothing is pushed.
    dev2.close()
    time.sleep(0.3)
    dev2 = device_client(cloud, other, pco)
    dev2.did = other
    ck.eq(next_count(dev2), 1, "device reconnecting with carol online gets 0x0210 count 1")
    dev2.close()
    time.sleep(0.3)
    dev2 = device_client(cloud, other, pco)  # firmware style: subscribes right after CONNACK
    dev2.did = other
    ck.eq(dev2.subscribe("ser2cli_res/" + other), 0, "reconnected device subscribes")
    ck.eq(next_count(dev2), 1, "count 1 pushed (before or after the SUBACK)")
    ck.eq(next_count(dev2, 0.5), None, "pushed once")
    dev.close()
    time.sleep(0.3)
    dev = device_client(cloud, did, pc)
    dev.did = did
    ck.eq(next_count(dev, 0.7), None, "device reconnecting with no app online gets no push")

    for c in (a2, c1):
        c.close()
    dev.close()
    dev2.close()

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly")
ck.done()
