# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Data points (issue 15) end to end, against the real broker + plugin, the real
GService, gizctl and gizsim: a product's data-point JSON is imported with
`gizctl product datapoints PK import` (and exported back unchanged); refused
schemas get a 400 naming the problem; GET /app/datapoint serves it; a gizsim
device speaking p0 (--datapoints) reports its status after login; a real paho
app logged in per the contract sends a p0 write in 0x0093 and one in 0x0090 and
a read: the device ACKs, applies and reports, and GET /app/devdata/<did>/latest
shows the new attrs; an unbound user is refused; a raw device's malformed
report is recorded as malformed (attrs untouched, the broker alive) and a good
one after it is decoded; variable-length partial reports (0x14 in 0x0091 and
0x0093) are merged."""
import json
import os
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import Paho, bind, new_device, new_user  # noqa: E402
from test_tools_cli import Ctl, Sim, read_state, run_sim  # noqa: E402

ck = harness.Checker("datapoints")


def pt(name, typ, dt, unit, byte_off, bit_off, length, **extra):
    p = {"name": name, "display_name": name, "type": typ, "data_type": dt, "id": 0, "desc": "",
         "position": {"unit": unit, "byte_offset": byte_off, "bit_offset": bit_off, "len": length}}
    p.update(extra)
    return p


def schema(points, ptype="standard"):
    for i, p in enumerate(points):
        p["id"] = i
    return {"name": "lamp", "protocolType": ptype, "packetVersion": "0x00000004",
            "entities": [{"id": 0, "name": "entity0", "display_name": "kit", "attrs": points}],
            "ui": {"object": {"version": 4, "showEditButton": False}, "sections": []}}


# The GoKit pet house positions: status area bytes 0..9, writable bytes 0..4.
PET = schema([
    pt("LED_OnOff", "status_writable", "bool", "bit", 0, 0, 1),
    pt("LED_Color", "status_writable", "enum", "bit", 0, 1, 2,
       enum=["Customize", "Yellow", "Purple", "Pink"]),
    pt("LED_R", "status_writable", "uint8", "byte", 1, 0, 1,
       uint_spec={"min": 0, "max": 254, "ratio": 1, "addition": 0}),
    pt("LED_G", "status_writable", "uint8", "byte", 2, 0, 1),
    pt("LED_B", "status_writable", "uint8", "byte", 3, 0, 1),
    pt("Motor_Speed", "status_writable", "uint8", "byte", 4, 0, 1,
       uint_spec={"min": 0, "max": 10, "ratio": 1, "addition": -5}),
    pt("Infrared", "status_readonly", "bool", "bit", 5, 0, 1),
    pt("Temperature", "status_readonly", "uint8", "byte", 6, 0, 1,
       uint_spec={"min": 0, "max": 200, "ratio": 1, "addition": -13}),
    pt("Humidity", "status_readonly", "uint8", "byte", 7, 0, 1),
    pt("Alert_1", "alert", "bool", "bit", 8, 0, 1),
    pt("Fault_LED", "fault", "bool", "bit", 9, 0, 1),
])

VAR = schema([
    pt("on", "status_writable", "bool", "bit", 0, 0, 1),
    pt("level", "status_writable", "uint16", "byte", 0, 0, 2),
    pt("temp", "status_readonly", "uint8", "byte", 0, 0, 1,
       uint_spec={"min": 0, "max": 255, "ratio": 0.5, "addition": -20}),
], ptype="var_len")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def frame(cmd, body, sn=None):
    """00000003 | len | flags 00 | cmd | [sn] | body (spec v4.0.5 4.8/4.9)."""
    rest = b"\x00" + struct.pack(">H", cmd) + (struct.pack(">I", sn) if sn is not None else b"") + body
    return b"\x00\x00\x00\x03" + varint(len(rest)) + rest


def unframe(payload):
    """(cmd, sn or None, body) of a framed payload."""
    assert payload[:4] == b"\x00\x00\x00\x03"
    i, n, mult = 4, 0, 1
    while True:
        b = payload[i]
        n += (b & 0x7F) * mult
        mult *= 128
        i += 1
        if not b & 0x80:
            break
    cmd = struct.unpack(">H", payload[i + 1:i + 3])[0]
    body = payload[i + 3:]
    if cmd in (0x0093, 0x0094):
        return cmd, struct.unpack(">I", body[:4])[0], body[4:]
    return cmd, None, body


def latest(cloud, user, did):
    return cloud.json("GET", "/app/devdata/%s/latest" % did,
                      headers={"X-Gizwits-User-token": user["token"]})


def wait_latest(cloud, user, did, pred, timeout=15.0):
    """Polls (bounded) until pred(answer) holds; returns the last answer."""
    body = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = latest(cloud, user, did)
        if status == 200 and pred(body):
            return body
        time.sleep(0.1)
    return body


SEEN = {}


def granted(g):
    """True if a SUBACK granted the subscription (not None, not 0x80)."""
    return g is not None and len(g) == 1 and g[0] in (0, 1, 2)


def wait_msg(client, pred, timeout=10.0):
    """The first delivery (topic, payload) with pred true, or None (bounded).
    Deliveries are kept per client, so one wait does not lose what another wants."""
    seen = SEEN.setdefault(id(client), [])
    deadline = time.monotonic() + timeout
    while True:
        for i, (topic, payload) in enumerate(seen):
            try:
                hit = pred(topic, payload)
            except (AssertionError, IndexError, struct.error):
                hit = False
            if hit:
                del seen[i]
                return topic, payload
        if time.monotonic() >= deadline:
            return None
        seen.extend(client.drain(0.1))


with harness.Cloud(broker=True) as cloud:
    tmp = tempfile.mkdtemp(prefix="gizdp-")
    ctl = Ctl(cloud)
    pk = cloud.create_product("pet house")["product_key"]
    pet_file = os.path.join(tmp, "pet.json")
    with open(pet_file, "w") as f:
        json.dump(PET, f)

    # -- import / export / refusals ---------------------------------------------------
    rc, out, err = ctl.run("product", "datapoints", pk, "import", pet_file)
    ck.eq(rc, 0, "gizctl import exits 0 (%s)" % err.strip())
    ck.ok("imported 11 data points (6 writable, fixed)" in out, "import says what it understood: %r" % out)
    rc, out, err = ctl.run("product", "datapoints", pk, "export")
    ck.eq(rc, 0, "gizctl export exits 0")
    try:
        ck.eq(json.loads(out), PET, "export gives back the imported JSON")
    except ValueError:
        ck.ok(False, "export prints JSON: %r" % out[:200])

    bad = schema([pt("a", "status_writable", "bool", "bit", 0, 0, 1),
                  pt("a", "status_writable", "bool", "bit", 0, 1, 1)])
    bad_file = os.path.join(tmp, "bad.json")
    with open(bad_file, "w") as f:
        json.dump(bad, f)
    rc, out, err = ctl.run("product", "datapoints", pk, "import", bad_file)
    ck.eq(rc, 2, "gizctl import of a schema with a repeated name exits 2 (refused)")
    ck.ok("repeat" in err, "the refusal names the problem: %r" % err.strip())
    for what, raw in (("not JSON", b"{\"entities\": ["),
                      ("no entities", b"{\"name\": \"x\"}"),
                      ("overlapping bits", json.dumps(schema([
                          pt("a", "status_writable", "bool", "bit", 0, 0, 1),
                          pt("b", "status_writable", "enum", "bit", 0, 0, 2, enum=["x", "y"])])).encode()),
                      ("unknown data_type", json.dumps(schema([
                          pt("a", "status_writable", "float", "byte", 0, 0, 4)])).encode()),
                      ("empty body", b"")):
        status, _, body = cloud.http("PUT", "/admin/products/%s/datapoints" % pk, raw=raw, admin=True,
                                     headers={"Content-Type": "application/json"})
        ck.eq(status, 400, "PUT with %s is 400" % what)
        try:
            ck.eq(json.loads(body).get("error") in ("invalid_datapoints", "bad_request"), True,
                  "%s: JSON error %r" % (what, body[:120]))
        except ValueError:
            ck.ok(False, "%s: JSON error body" % what)
    status, _, _ = cloud.http("PUT", "/admin/products/%s/datapoints" % ("0" * 32), raw=json.dumps(PET).encode(),
                              admin=True)
    ck.eq(status, 404, "PUT for an unknown product is 404")
    status, _, _ = cloud.http("PUT", "/admin/products/%s/datapoints" % pk, raw=json.dumps(PET).encode())
    ck.eq(status, 401, "PUT without the admin token is 401")
    rc, out, _ = ctl.run("product", "datapoints", pk, "export")
    ck.eq(json.loads(out) if rc == 0 else None, PET, "refused imports left the stored schema alone")

    status, dp = cloud.json("GET", "/app/datapoint?product_key=" + pk)
    ck.eq(status, 200, "GET /app/datapoint is 200")
    ck.eq(dp.get("product_key"), pk, "it names the product key")
    ck.eq([a["name"] for a in dp.get("entities", [{}])[0].get("attrs", [])],
          [a["name"] for a in PET["entities"][0]["attrs"]], "it lists the data points")
    status, e = cloud.json("GET", "/app/datapoint")
    ck.eq((status, e.get("error_code")), (400, 9015), "no product_key: 400 9015")
    status, e = cloud.json("GET", "/app/datapoint?product_key=" + "f" * 32)
    ck.eq((status, e.get("error_code")), (404, 9029), "a product without data points: 404 9029")

    # -- a gizsim device that speaks p0 -------------------------------------------------
    http = "http://127.0.0.1:%d" % cloud.http_port
    state = os.path.join(tmp, "state")
    rc, rep, err = run_sim(["--http", http, "-p", pk, "-n", 1, "-s", state, "--until-ready",
                            "--datapoints", pet_file, "--no-ota"])
    ck.eq(rc, 0, "gizsim registers its device (%s)" % err[-300:])
    devs = read_state(state)
    ck.eq(len(devs), 1, "state file has the device")
    did, passcode = devs[0][0], devs[0][1]
    alice = new_user(cloud, "alice")
    eve = new_user(cloud, "eve")
    bind(cloud, alice, did, passcode)

    sim = Sim(["--http", http, "-p", pk, "-n", 1, "-s", state, "-d", 300, "--datapoints", pet_file,
               "--no-ota"])
    ck.ok(sim.wait_line("all 1 devices connected", 60), "gizsim device connects")
    first = wait_latest(cloud, alice, did, lambda b: b.get("updated_at", 0) > 0)
    ck.eq(first.get("attr", {}).get("LED_Color"), "Customize", "status after login: enum from the zero area")
    ck.eq(first.get("attr", {}).get("Motor_Speed"), -5, "status after login: addition applied")
    ck.eq(first.get("attr", {}).get("Temperature"), -13, "status after login: read-only point decoded")
    ck.eq(first.get("did"), did, "latest names the DID")

    # -- a real app: p0 write in 0x0093 -------------------------------------------------
    app = Paho(cloud.mqtt_port, alice["mqtt_client_id"], alice["uid"], alice["token"])
    ck.eq(app.rc, 0, "the app logs in over MQTT (client id, uid, token)")
    ck.ok(granted(app.subscribe("dev2app/%s" % did)), "app subscribes dev2app/<did>")
    ck.ok(granted(app.subscribe("dev2app/%s/%s" % (did, alice["mqtt_client_id"]))),
          "app subscribes dev2app/<did>/<cid>")
    to_dev = "app2dev/%s/%s" % (did, alice["mqtt_client_id"])
    # LED_OnOff on, LED_Color Pink (3), Motor_Speed 5 (wire 10): flags 0b100011
    write = bytes([0x01, 0x23, 0x07, 0x00, 0x00, 0x00, 0x0A])
    app.publish(to_dev, frame(0x0093, write, sn=4242))
    ack = wait_msg(app, lambda t, p: unframe(p)[0] == 0x0094 and unframe(p)[1] == 4242)
    ck.ok(ack is not None, "the device ACKs the 0x0093 write (0x0094, same SN)")
    rep = wait_msg(app, lambda t, p: unframe(p)[0] == 0x0091 and unframe(p)[2][:1] == b"\x04")
    ck.ok(rep is not None, "the device reports its status (0x0091, action 0x04) after the write")
    if rep:
        ck.eq(unframe(rep[1])[2][1:2], b"\x07", "the report carries the written bits")
    now = wait_latest(cloud, alice, did, lambda b: b.get("attr", {}).get("LED_OnOff") is True)
    ck.eq(now.get("attr", {}).get("LED_OnOff"), True, "latest: LED_OnOff written")
    ck.eq(now.get("attr", {}).get("LED_Color"), "Pink", "latest: LED_Color written")
    ck.eq(now.get("attr", {}).get("Motor_Speed"), 5, "latest: Motor_Speed written")
    ck.ok(now.get("updated_at", 0) >= int(time.time()) - 60, "latest: updated_at is recent")

    # -- p0 write in 0x0090, then a read ------------------------------------------------
    app.publish(to_dev, frame(0x0090, bytes([0x01, 0x04, 0x00, 0xC8, 0x00, 0x00, 0x00])))  # LED_R 200
    now = wait_latest(cloud, alice, did, lambda b: b.get("attr", {}).get("LED_R") == 200)
    ck.eq(now.get("attr", {}).get("LED_R"), 200, "latest: LED_R from a 0x0090 write")
    ck.eq(now.get("attr", {}).get("LED_OnOff"), True, "latest: the earlier write stays applied")
    app.publish(to_dev, frame(0x0090, b"\x02"))
    rd = wait_msg(app, lambda t, p: t.endswith("/" + alice["mqtt_client_id"]) and unframe(p)[0] == 0x0091
                  and unframe(p)[2][:1] == b"\x03")
    ck.ok(rd is not None, "a read (0x02) is answered with a read reply (0x03) to the asking app")
    if rd:
        ck.eq(len(unframe(rd[1])[2]), 11, "the read reply has the whole status area")

    # -- unbound user, unknown device, no token --------------------------------------
    status, e = latest(cloud, eve, did)
    ck.eq((status, e.get("error_code")), (401, 9017), "an unbound user is refused (401 9017)")
    ck.ok("attr" not in e, "and sees no attrs")
    status, e = latest(cloud, eve, "A" * 22)
    ck.eq((status, e.get("error_code")), (401, 9017), "an unknown DID looks the same")
    status, e = cloud.json("GET", "/app/devdata/%s/latest" % did)
    ck.eq(status, 401, "no token: 401")

    # -- a raw device: malformed and good reports ---------------------------------------
    did2, pc2 = new_device(cloud, pk, "passcode22")
    bind(cloud, alice, did2, pc2)
    dev2 = Paho(cloud.mqtt_port, did2, did2, pc2)
    ck.eq(dev2.rc, 0, "raw device logs in")
    dev2.publish("dev2app/" + did2, frame(0x0091, b"\x04\x01\x02"))  # status area is 10 bytes
    bad = wait_latest(cloud, alice, did2, lambda b: b.get("malformed_count", 0) >= 1)
    ck.eq(bad.get("malformed_count"), 1, "a truncated report is recorded as malformed")
    ck.ok("TRUNCATED" in bad.get("last_malformed", {}).get("error", ""),
          "with the decoder's reason: %r" % bad.get("last_malformed"))
    ck.eq(bad.get("last_malformed", {}).get("p0_hex"), "040102", "and its bytes")
    ck.eq(bad.get("attr"), {}, "attrs stay untouched")
    dev2.publish("dev2app/" + did2, frame(0x0091, b"\x04" + bytes(11)))  # one byte too many
    dev2.publish("dev2app/" + did2, frame(0x0091, b"\x09\x00"))  # unknown action
    bad = wait_latest(cloud, alice, did2, lambda b: b.get("malformed_count", 0) >= 3)
    ck.eq(bad.get("malformed_count"), 3, "trailing bytes and an unknown action are malformed too")
    good = bytes([0x04, 0x01, 0x10, 0x20, 0x30, 0x05, 0x01, 0x26, 0x3C, 0x01, 0x00])
    dev2.publish("dev2app/%s/%s" % (did2, alice["mqtt_client_id"]), frame(0x0091, good))
    ok = wait_latest(cloud, alice, did2, lambda b: b.get("updated_at", 0) > 0)
    ck.eq(ok.get("attr", {}).get("Temperature"), 25, "a good report after them is decoded (broker alive)")
    ck.eq(ok.get("attr", {}).get("Alert_1"), True, "alert bit decoded")
    ck.eq(ok.get("attr", {}).get("Motor_Speed"), 0, "wire 5 with addition -5 is 0")
    dev2.publish("dev2app/" + did2, frame(0x0091, b"\x06raw bytes"))  # pass-through is no state
    dev2.publish("dev2app/" + did2, frame(0x0091, bytes([0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                           0x00, 0x00, 0x00, 0x00])))
    z = wait_latest(cloud, alice, did2, lambda b: b.get("attr", {}).get("Temperature") == -13)
    ck.eq(z.get("malformed_count"), 3, "pass-through 0x06 is not counted as malformed")
    ck.eq(z.get("reports"), 2, "two reports decoded")
    reply = bytes([0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27, 0x00, 0x00, 0x00])  # Temperature 26
    dev2.publish("dev2app/%s/%s" % (did2, alice["mqtt_client_id"]), frame(0x0094, reply, sn=99))
    z = wait_latest(cloud, alice, did2, lambda b: b.get("attr", {}).get("Temperature") == 26)
    ck.eq(z.get("attr", {}).get("Temperature"), 26, "a read reply in a 0x0094 updates the state")
    dev2.publish("dev2app/%s/%s" % (did2, alice["mqtt_client_id"]), frame(0x0094, b"", sn=100))

    # -- variable length: partial reports merge -----------------------------------------
    pk2 = cloud.create_product("var lamp")["product_key"]
    status, ans = cloud.json("PUT", "/admin/products/%s/datapoints" % pk2, VAR, admin=True)
    ck.eq((status, ans.get("protocol")), (200, "var_len"), "a var_len schema is imported")
    did3, pc3 = new_device(cloud, pk2, "passcode33")
    bind(cloud, alice, did3, pc3)
    dev3 = Paho(cloud.mqtt_port, did3, did3, pc3)
    ck.eq(dev3.rc, 0, "var_len device logs in")
    dev3.publish("dev2app/" + did3, frame(0x0091, bytes([0x14, 0x01, 0x01])))  # on
    wait_latest(cloud, alice, did3, lambda b: b.get("attr", {}).get("on") is True)
    dev3.publish("dev2app/" + did3, frame(0x0093, bytes([0x14, 0x06, 0x01, 0x2C, 0x50]), sn=7))
    v = wait_latest(cloud, alice, did3, lambda b: "temp" in b.get("attr", {}))
    ck.eq(v.get("attr"), {"on": True, "level": 300, "temp": 20}, "partial reports (0x0091, 0x0093) merged")
    dev3.publish("dev2app/" + did3, frame(0x0091, bytes([0x14, 0x02, 0x00])))  # level: 1 of 2 bytes
    v = wait_latest(cloud, alice, did3, lambda b: b.get("malformed_count", 0) >= 1)
    ck.eq(v.get("attr", {}).get("level"), 300, "a short var report changes nothing")

    # -- gizsim with a var_len product: 0x11 write -> 0x14 report, 0x12 read -> 0x13 --------
    var_file = os.path.join(tmp, "var.json")
    with open(var_file, "w") as f:
        json.dump(VAR, f)
    state2 = os.path.join(tmp, "state2")
    rc, _, err = run_sim(["--http", http, "-p", pk2, "-n", 1, "-s", state2, "--until-ready",
                          "--datapoints", var_file, "--no-ota"])
    ck.eq(rc, 0, "gizsim registers a var_len device (%s)" % err[-300:])
    did4, pc4 = read_state(state2)[0][0], read_state(state2)[0][1]
    bind(cloud, alice, did4, pc4)
    sim2 = Sim(["--http", http, "-p", pk2, "-n", 1, "-s", state2, "-d", 300, "--datapoints", var_file,
                "--no-ota"])
    ck.ok(sim2.wait_line("all 1 devices connected", 60), "var_len gizsim device connects")
    app.close()
    app = Paho(cloud.mqtt_port, alice["mqtt_client_id"], alice["uid"], alice["token"])
    ck.eq(app.rc, 0, "the app logs in again (new binding)")
    ck.ok(granted(app.subscribe("dev2app/%s/%s" % (did4, alice["mqtt_client_id"]))),
          "app subscribes dev2app/<did4>/<cid>")
    ck.ok(granted(app.subscribe("dev2app/%s" % did4)), "app subscribes dev2app/<did4>")
    to4 = "app2dev/%s/%s" % (did4, alice["mqtt_client_id"])
    # writable points on (bit 0), level (bit 1): bit segment on = 1, then level 0x0007
    app.publish(to4, frame(0x0090, bytes([0x11, 0x03, 0x01, 0x00, 0x07])))
    r4 = wait_msg(app, lambda t, p: t == "dev2app/" + did4 and unframe(p)[2][:1] == b"\x14")
    ck.eq(unframe(r4[1])[2] if r4 else None, bytes([0x14, 0x03, 0x01, 0x00, 0x07]),
          "the var_len device reports what changed (0x14)")
    v4 = wait_latest(cloud, alice, did4, lambda b: b.get("attr", {}).get("level") == 7)
    ck.eq(v4.get("attr"), {"on": True, "level": 7}, "latest of the var_len gizsim device")
    app.publish(to4, frame(0x0090, bytes([0x12, 0x01])))  # read: on
    r5 = wait_msg(app, lambda t, p: t.endswith("/" + alice["mqtt_client_id"]) and t.startswith("dev2app/" + did4)
                  and unframe(p)[2][:1] == b"\x13")
    ck.eq(unframe(r5[1])[2] if r5 else None, bytes([0x13, 0x01, 0x01]), "a 0x12 read is answered with 0x13")
    rc2, rep2 = sim2.stop()
    ck.eq(rc2, 0, "var_len gizsim stops cleanly")

    rc, rep = sim.stop()
    ck.eq(rc, 0, "gizsim stops cleanly")
    if rc != 0:
        sys.stderr.write(sim.stderr_text()[-3000:] + "\n")
    if rep:
        c = rep.get("counts", {})
        ck.ok(c.get("p0_writes", 0) >= 2, "gizsim counted the writes it applied: %r" % c.get("p0_writes"))
        ck.ok(c.get("p0_reads", 0) >= 1, "and the read it answered")
    for c in (app, dev2, dev3):
        c.close()
    ck.ok(cloud.broker.poll() is None, "the broker is still running")

ck.done()
