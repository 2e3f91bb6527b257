# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Plugin ACL matrix: device A vs device B vs an app bound to A vs an app bound to
nothing, for publish and subscribe, observed as real deliveries with paho (and the
SUBACK codes MQTT 3.1.1 returns). Negative publishes are followed by an allowed
"marker" publish from the same client: once the marker has arrived, anything the
broker wrongly delivered before it would have arrived too (one connection, one
broker thread, order kept). Also: an unbind takes effect on an existing
subscription (MOSQ_ACL_READ is re-checked per delivery)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import Paho, RawClient, connect_packet, new_device, new_user, bind, unbind, wait_for, app_count_payload  # noqa: E402

ck = harness.Checker("plugin_acl")
DENIED = 128


def wait_marker(client, marker, timeout=5.0):
    """Collects deliveries until (topic, marker) arrives; returns (arrived, all collected)."""
    got = []
    arrived = wait_for(lambda: got.extend(client.drain(0.05)) or any(p == marker for _, p in got),
                       timeout=timeout)
    return arrived, got


with harness.Cloud(broker=True) as cloud:
    pk = cloud.create_product()["product_key"]
    pk2 = cloud.create_product("other")["product_key"]
    A, pcA = new_device(cloud, pk, "passcodeAA")
    B, pcB = new_device(cloud, pk, "passcodeBB")
    alice = new_user(cloud, "alice")  # bound to A
    eve = new_user(cloud, "eve")      # bound to nothing
    bind(cloud, alice, A, pcA)
    ca, ce = alice["mqtt_client_id"], eve["mqtt_client_id"]

    devA = Paho(cloud.mqtt_port, A, A, pcA)
    devB = Paho(cloud.mqtt_port, B, B, pcB)
    app = Paho(cloud.mqtt_port, ca, alice["uid"], alice["token"])
    bad = Paho(cloud.mqtt_port, ce, eve["uid"], eve["token"])
    for name, c in (("device A", devA), ("device B", devB), ("app alice", app), ("app eve", bad)):
        ck.eq(c.rc, 0, "%s connects" % name)

    # -- subscribe ------------------------------------------------------------
    SUBS = [
        (devA, "device A", "ser2cli_res/" + A, True),
        (devA, "device A", "ser2cli_noti/" + pk, True),
        (devA, "device A", "app2dev/%s/#" % A, True),
        (devA, "device A", "ser2cli_res/" + B, False),
        (devA, "device A", "ser2cli_noti/" + pk2, False),
        (devA, "device A", "app2dev/%s/#" % B, False),
        (devA, "device A", "app2dev/#", False),
        (devA, "device A", "app2dev/+/#", False),
        (devA, "device A", "dev2app/" + A, False),
        (devA, "device A", "#", False),
        (devA, "device A", "ser2cli_req", False),
        (devB, "device B", "ser2cli_res/" + B, True),
        (devB, "device B", "ser2cli_noti/" + pk, True),
        (devB, "device B", "app2dev/%s/#" % B, True),
        (app, "app alice", "dev2app/" + A, True),
        (app, "app alice", "dev2app/%s/%s" % (A, ca), True),
        (app, "app alice", "ser2cli_res/%s/#" % ca, True),
        (app, "app alice", "dev2app/" + B, False),
        (app, "app alice", "dev2app/%s/%s" % (A, ce), False),
        (app, "app alice", "dev2app/%s/#" % A, False),
        (app, "app alice", "dev2app/+", False),
        (app, "app alice", "dev2app/#", False),
        (app, "app alice", "app2dev/%s/#" % A, False),
        (app, "app alice", "ser2cli_res/" + A, False),
        (app, "app alice", "ser2cli_noti/" + pk, False),
        (bad, "app eve", "dev2app/" + A, False),
        (bad, "app eve", "dev2app/%s/%s" % (A, ce), False),
        (bad, "app eve", "#", False),
    ]
    for client, name, topic, allowed in SUBS:
        granted = client.subscribe(topic)
        want = [0] if allowed else [DENIED]
        ck.eq(granted and list(granted), want, "%s subscribe %s" % (name, topic))

    # -- publish: allowed ones are delivered --------------------------------------
    devA.publish("dev2app/" + A, b"A-to-all")
    devA.publish("dev2app/%s/%s" % (A, ca), b"A-to-alice")
    app.publish("app2dev/%s/%s" % (A, ca), b"alice-to-A")
    ok, got = wait_marker(app, b"A-to-alice")
    ck.ok(ok, "app alice receives dev2app/A/<its id>")
    ck.ok(("dev2app/" + A, b"A-to-all") in got, "app alice receives dev2app/A")
    ok, got = wait_marker(devA, b"alice-to-A")
    ck.ok(ok and ("app2dev/%s/%s" % (A, ca), b"alice-to-A") in got, "device A receives app2dev/A/<alice>")

    # -- publish: denied ones are not -------------------------------------------------
    # app alice: no client id, someone else's client id, a DID she is not bound to,
    # device-side topics.
    for topic in ("app2dev/" + A, "app2dev/%s/%s" % (A, ce), "app2dev/%s/%s" % (B, ca),
                  "app2dev/%s/%s/extra" % (A, ca), "dev2app/" + A, "ser2cli_res/" + A,
                  "ser2cli_noti/" + pk, "ser2cli_res/%s/x" % ca):
        app.publish(topic, b"forbidden-alice")
    app.publish("app2dev/%s/%s" % (A, ca), b"marker-alice")
    # app eve (unbound): even with her own client id.
    bad.publish("app2dev/%s/%s" % (A, ce), b"forbidden-eve")
    bad.publish("app2dev/%s/%s" % (B, ce), b"forbidden-eve")
    # device B: not its DID, device-only topics of A, cloud topics.
    for topic in ("dev2app/" + A, "dev2app/%s/%s" % (A, ca), "app2dev/%s/%s" % (A, ca),
                  "ser2cli_res/" + A, "ser2cli_noti/" + pk, "dev2app/%s/%s/x" % (B, ca)):
        devB.publish(topic, b"forbidden-B")
    devB.publish("dev2app/%s/%s" % (B, ce), b"marker-B")  # allowed, nobody may read it
    # device A: cloud topics and app topics.
    for topic in ("ser2cli_res/" + A, "ser2cli_noti/" + pk, "app2dev/%s/%s" % (A, ca),
                  "dev2app/" + B, "dev2app/%s/%s/deeper" % (A, ca)):
        devA.publish(topic, b"forbidden-A")
    devA.publish("dev2app/%s/%s" % (A, ca), b"marker-A")

    okA, gotA = wait_marker(devA, b"marker-alice")
    okApp, gotApp = wait_marker(app, b"marker-A")
    ck.ok(okA and okApp, "markers delivered")
    eve_got = bad.drain(0.3)
    devB_got = devB.drain(0.3)
    for name, got in (("device A", gotA), ("app alice", gotApp), ("app eve", eve_got), ("device B", devB_got)):
        leaked = [(t, p) for t, p in got if p.startswith(b"forbidden") or p == b"marker-B"]
        ck.eq(leaked, [], "%s received nothing forbidden" % name)
    ck.eq(eve_got, [], "unbound app eve received nothing at all")

    # -- unbind: the existing subscription stops delivering at once ---------------------
    unbind(cloud, alice, A)
    # Device A learns the new count (0) once the plugin has processed the outbox event.
    ok = wait_for(lambda: any(p == app_count_payload(0) for _, p in devA.drain(0.05)), timeout=5)
    ck.ok(ok, "device A gets 0x0210 count 0 after unbind")
    devA.publish("dev2app/" + A, b"after-unbind")
    devA.publish("dev2app/%s/%s" % (A, ca), b"after-unbind")
    app.publish("app2dev/%s/%s" % (A, ca), b"after-unbind-write")
    devA.publish("dev2app/%s/%s" % (A, ce), b"marker-A2")  # allowed for A; alice must not see it
    after_app = app.drain(0.8)
    after_dev = devA.drain(0.3)
    ck.eq([p for _, p in after_app], [], "unbound app receives nothing on its old subscriptions")
    ck.ok(b"after-unbind-write" not in [p for _, p in after_dev], "unbound app can no longer publish to A")

    for c in (devA, devB, app, bad):
        c.close()

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly")


def retained_case(cloud, label):
    """Retained messages are refused: an app's retained command is not replayed to the
    device when it (re)subscribes, nor a device's retained dev2app message to an app.
    With `retain_available false` mosquitto also disconnects the sender; without it
    the plugin's ACL denial drops the message (the sender stays connected)."""
    pk = cloud.create_product()["product_key"]
    A, pcA = new_device(cloud, pk, "passcodeRR")
    alice = new_user(cloud, "ret")
    bind(cloud, alice, A, pcA)
    ca = alice["mqtt_client_id"]
    dev = Paho(cloud.mqtt_port, A, A, pcA)
    ck.eq(dev.subscribe("app2dev/%s/#" % A), (0,), "%s: device subscribes" % label)
    app = Paho(cloud.mqtt_port, ca, alice["uid"], alice["token"])
    app.c.publish("app2dev/%s/%s" % (A, ca), b"retained-cmd", qos=0, retain=True)
    app.c.publish("app2dev/%s/%s" % (A, ca), b"plain-cmd", qos=0)
    arrived, got = wait_marker(dev, b"plain-cmd", timeout=1.5)
    if label == "plugin only":
        ck.ok(arrived, "%s: the sender stays connected, a plain command still arrives" % label)
    ck.ok(b"retained-cmd" not in [p for _, p in got], "%s: a retained command is not delivered" % label)
    dev.c.publish("dev2app/" + A, b"retained-up", qos=0, retain=True)
    time.sleep(0.3)
    for c in (dev, app):
        c.close()
    dev2 = Paho(cloud.mqtt_port, A, A, pcA)
    ck.eq(dev2.subscribe("app2dev/%s/#" % A), (0,), "%s: device re-subscribes" % label)
    app2 = Paho(cloud.mqtt_port, ca, alice["uid"], alice["token"])
    ck.eq(app2.subscribe("dev2app/" + A), (0,), "%s: app re-subscribes" % label)
    replay = dev2.drain(0.8) + app2.drain(0.2)
    replay = [p for _, p in replay if not p.startswith(b"\x00\x00\x00\x03\x02\x10")]  # 0x0210
    ck.eq(replay, [], "%s: nothing retained is replayed on (re)subscribe" % label)
    app2.publish("app2dev/%s/%s" % (A, ca), b"control")
    arrived, _ = wait_marker(dev2, b"control")
    ck.ok(arrived, "%s: the new subscription works (control message arrives)" % label)
    dev2.close()
    app2.close()


def will_case(cloud):
    """A device's will on its own dev2app topic reaches the bound app when the device
    drops (mosquitto 2.0.11 checks the will after the DISCONNECT event); a will on
    another device's topic, or a retained one, does not."""
    pk = cloud.create_product()["product_key"]
    A, pcA = new_device(cloud, pk, "passcodeWW")
    B, pcB = new_device(cloud, pk, "passcodeWB")
    bob = new_user(cloud, "will")
    bind(cloud, bob, A, pcA)
    bind(cloud, bob, B, pcB)
    app = Paho(cloud.mqtt_port, bob["mqtt_client_id"], bob["uid"], bob["token"])
    ck.eq(app.subscribe("dev2app/" + A), (0,), "will: app subscribes to A")
    ck.eq(app.subscribe("dev2app/" + B), (0,), "will: app subscribes to B")
    for topic, payload, extra in (("dev2app/" + B, b"spoofed-will", 0), ("dev2app/" + A, b"retained-will", 0x20),
                                  ("dev2app/" + A, b"device-will", 0)):
        d = RawClient(cloud.mqtt_port)
        d.send(connect_packet(A, A, pcA, will=(topic, payload), extra_flags=extra))
        p = d.read_packet(3)
        ck.eq(p and p[2], b"\x00\x00", "will: device A connects with a will on %s" % topic)
        d.sock.shutdown(socket.SHUT_RDWR)  # abrupt: no DISCONNECT packet, the will fires
        d.close()
    got = [p for _, p in app.drain(2.0)]
    ck.ok(b"device-will" in got, "will: A's will on dev2app/A is delivered (got %r)" % got)
    ck.ok(b"spoofed-will" not in got, "will: A's will on dev2app/B is not delivered")
    ck.ok(b"retained-will" not in got, "will: a retained will is not delivered")
    app.close()


# The plugin's own refusal: the shipped conf's `retain_available false` removed.
rcloud = harness.Cloud(broker=True)
shipped = rcloud.broker_conf
rcloud.broker_conf = lambda: "\n".join(l for l in shipped().splitlines()
                                        if not l.startswith("retain_available")) + "\n"
with rcloud:
    ck.ok("retain_available" not in open(os.path.join(rcloud.dir, "mosquitto.conf")).read(),
          "conf without retain_available")
    retained_case(rcloud, "plugin only")
    will_case(rcloud)
ck.eq(rcloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (plugin only)")
# And with the shipped conf (mosquitto refuses retained messages too).
with harness.Cloud(broker=True) as scloud:
    retained_case(scloud, "shipped conf")
ck.done()
