# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The app-side Gizwits Open API (issue 15, HTTP part; issue 14 "App-side
history") against the real GService + mosquitto with the built plugin and
raw-MQTT devices, in the request shapes of the public Gizwits Python SDK
(JSON bodies, X-Gizwits-Application-Id on every call, X-Gizwits-User-token,
{"phone_id"} for the anonymous login, {"raw": [bytes]} for control):

- POST /app/users answers uid + token + expire_at (usable at once) for
  username, email and phone_id (anonymous: again = a new token, same uid);
  phone registration and bad bodies are 4xx in the Open API shape;
- GET /app/bindings carries every field clients read (passcode, ws_port =
  the GService port, wss_port, remark, dev_alias, type, role, ...);
  PUT /app/bindings/<did>; POST /app/bind_mac with the timestamp window and
  the lower(md5(product_secret + timestamp)) signature;
- GET /app/devices/<did>; GET /app/devices/<did>/raw_data (type cmd|online)
  matches the device's timeline events from the admin API;
- POST /app/control/<did> raw (array, hex, base64): the framed 0x0090
  arrives at the device on app2dev/<did>/<the user's MQTT client id>, bytes
  asserted; attrs as a p0 write when the product has data points;
- a device the user has not bound is refused (401 9017) on every path and
  receives nothing; malformed JSON, unknown /app paths and wrong methods are
  4xx {error_code, error_message, detail} on a connection that stays open."""
import base64
import hashlib
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import device_client, new_mac, wait_for  # noqa: E402

APPID = "0123456789abcdef0123456789abcdef"


def framed_biz(body):
    """00000003 | Len (varint: flags + cmd + body) | 00 | 0090 | body."""
    n = 3 + len(body)
    var = b""
    while True:
        b = n & 0x7F
        n >>= 7
        var += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return b"\x00\x00\x00\x03" + var + b"\x00\x00\x90" + bytes(body)


class App:
    """The Python SDK's request shapes, written from its public source."""

    def __init__(self, cloud, token=None):
        self.cloud = cloud
        self.token = token

    def headers(self, extra=None):
        h = {"X-Gizwits-Application-Id": APPID, "Content-Type": "application/json"}
        if self.token:
            h["X-Gizwits-User-token"] = self.token
        h.update(extra or {})
        return h

    def call(self, method, path, body=None, extra=None):
        return self.cloud.json(method, "/app" + path, body, headers=self.headers(extra))


def is_app_error(body, code):
    return (isinstance(body, dict) and body.get("error_code") == code and
            isinstance(body.get("error_message"), str) and body["error_message"] != "" and
            isinstance(body.get("detail"), str))


def bind_mac_headers(secret, ts):
    return {"X-Gizwits-Timestamp": str(ts),
            "X-Gizwits-Signature": hashlib.md5((secret + str(ts)).encode()).hexdigest()}


def ready_device(cloud, did, pk, passcode):
    dev = device_client(cloud, did, passcode)
    for i, t in enumerate(["ser2cli_noti/" + pk, "ser2cli_res/" + did, "app2dev/%s/#" % did]):
        if dev.subscribe(t, mid=i + 1) != 0:
            raise harness.Failure("device subscribe %s refused" % t)
    return dev


def online(cloud, did):
    st, d = cloud.json("GET", "/admin/devices/" + did, admin=True)
    return st == 200 and d.get("online") is True


def main():
    c = harness.Checker("app_openapi")
    with harness.Cloud(broker=True) as cloud:
        prod = cloud.create_product("lamp")
        pk, secret = prod["product_key"], prod["product_secret"]
        mac1, mac2, mac3 = new_mac(), new_mac(), new_mac()
        d1 = cloud.register_device(pk, mac1, "pass000001")
        d2 = cloud.register_device(pk, mac2, "pass000002")
        d3 = cloud.register_device(pk, mac3, "pass000003")
        anon = App(cloud)

        # -- users: username, email, phone_id ----------------------------------------------------------
        st, u = anon.call("POST", "/users", {"username": "alice", "password": "alice-pw-1"})
        c.eq(st, 201, "create user (username)")
        c.ok(len(u.get("token", "")) == 32 and u.get("expire_at", 0) > time.time() and len(u.get("uid", "")) == 32,
             "creation answers uid, token, expire_at: %r" % {k: u.get(k) for k in ("uid", "expire_at")})
        alice = App(cloud, u.get("token"))
        st, b = alice.call("GET", "/bindings")
        c.eq((st, b.get("devices")), (200, []), "the creation token works at once")
        st, e = anon.call("POST", "/users", {"email": "bob@example.com", "password": "bob-pw-1"})
        c.eq(st, 201, "create user (email)")
        c.ok(len(e.get("token", "")) == 32, "email creation answers a token")
        st, lg = anon.call("POST", "/login", {"username": "bob@example.com", "password": "bob-pw-1"})
        c.eq((st, lg.get("uid")), (200, e.get("uid")), "login with the email as username")
        bob = App(cloud, lg.get("token"))
        st, x = anon.call("POST", "/users", {"email": "bob@example.com", "password": "other"})
        c.ok(st == 409 and is_app_error(x, 9022), "duplicate email 409 9022: %s %r" % (st, x))
        st, x = anon.call("POST", "/users", {"email": "not-an-email", "password": "pw"})
        c.ok(st == 400 and is_app_error(x, 9015), "malformed email 400 9015: %s %r" % (st, x))
        st, a1 = anon.call("POST", "/users", {"phone_id": "phone-0001"})
        c.eq(st, 201, "anonymous user created")
        st, a2 = anon.call("POST", "/users", {"phone_id": "phone-0001"})
        c.ok(st == 200 and a2.get("uid") == a1.get("uid") and a2.get("token") != a1.get("token"),
             "anonymous login again: same uid, new token (%s)" % st)
        st, x = anon.call("POST", "/login", {"username": "$phone-0001", "password": ""})
        c.ok(st in (400, 401), "the anonymous account has no password login (%s)" % st)
        st, x = anon.call("POST", "/users", {"username": "$phone-0002", "password": "pw"})
        c.ok(st == 400 and is_app_error(x, 9015), "usernames starting with $ are refused (%s)" % st)
        st, x = anon.call("POST", "/users", {"phone": "13800000000", "password": "pw", "code": "1234"})
        c.ok(st == 400 and is_app_error(x, 9015) and "SMS" in x.get("detail", ""),
             "phone registration refused, saying why: %r" % x)
        st, x = anon.call("POST", "/users", {"username": "alice", "password": "x"})
        c.ok(st == 409 and is_app_error(x, 9019), "duplicate username 409 9019")
        st, x = alice.call("GET", "/users")
        c.eq((st, x.get("uid"), x.get("username"), x.get("is_anonymous")), (200, u.get("uid"), "alice", False),
             "GET /app/users")
        st, x = alice.call("PUT", "/users", {"old_pwd": "wrong", "new_pwd": "alice-pw-2"})
        c.ok(st == 401 and is_app_error(x, 9020), "password change with a wrong old password: 401 9020")
        st, x = alice.call("PUT", "/users", {"old_pwd": "alice-pw-1", "new_pwd": "alice-pw-2"})
        c.ok(st == 200 and "updatedAt" in x, "password changed (%s %r)" % (st, x))
        st, _ = anon.call("POST", "/login", {"username": "alice", "password": "alice-pw-2"})
        c.eq(st, 200, "login with the new password")
        anon_user = App(cloud, a2.get("token"))
        st, x = anon_user.call("GET", "/users")
        c.eq((st, x.get("is_anonymous")), (200, True), "the phone_id user is anonymous")
        st, x = anon_user.call("PUT", "/users", {"username": "carol", "password": "carol-pw-1"})
        c.eq(st, 200, "an anonymous user takes a username")
        st, x = anon.call("POST", "/login", {"username": "carol", "password": "carol-pw-1"})
        c.eq((st, x.get("uid")), (200, a1.get("uid")), "and logs in with it, same uid")
        st, x = alice.call("PUT", "/users", {"username": "alice2", "password": "pw"})
        c.ok(st == 400 and is_app_error(x, 9015), "a password user cannot be renamed that way")
        st, x = alice.call("PUT", "/users", {"lang": "en"})
        c.ok(st == 400 and is_app_error(x, 9015), "profile fields are refused, saying why")

        # -- bindings with every field ---------------------------------------------------------------------
        st, b = alice.call("POST", "/bindings", {"devices": [{"did": d1, "passcode": "pass000001",
                                                               "remark": "kitchen"}]})
        c.eq((st, b.get("success")), (201, [d1]), "alice binds d1 with a remark")
        st, b = bob.call("POST", "/bindings", {"devices": [{"did": d1, "passcode": "pass000001"},
                                                             {"did": d3, "passcode": "pass000003"}]})
        c.eq((st, sorted(b.get("success", []))), (201, sorted([d1, d3])), "bob binds d1 and d3")
        dev1 = ready_device(cloud, d1, pk, "pass000001")
        dev3 = ready_device(cloud, d3, pk, "pass000003")
        c.ok(wait_for(lambda: online(cloud, d1) and online(cloud, d3)), "devices online")
        st, b = alice.call("GET", "/bindings")
        got = {x["did"]: x for x in b.get("devices", [])}
        c.eq(sorted(got), [d1], "alice sees d1 only")
        x = got.get(d1, {})
        want = {"did": d1, "product_key": pk, "mac": mac1, "host": "127.0.0.1", "port": cloud.mqtt_port,
                "ws_port": cloud.http_port, "wss_port": 0, "remark": "kitchen", "dev_alias": "",
                "type": "normal", "role": "special", "is_online": True, "is_disabled": False,
                "passcode": "", "dev_label": []}
        c.eq({k: x.get(k) for k in want}, want, "binding fields")
        st, b = bob.call("GET", "/bindings")
        roles = {x["did"]: x.get("role") for x in b.get("devices", [])}
        c.eq(roles, {d1: "normal", d3: "special"}, "roles: the first binder is special")
        st, b = bob.call("GET", "/bindings?limit=1&skip=1&show_disabled=1&show_proto_ver=1")
        c.eq((st, len(b.get("devices", []))), (200, 1), "bindings paging with the SDK's query")

        st, r = alice.call("PUT", "/bindings/" + d1, {"remark": "hall", "dev_alias": "lamp 1"})
        c.eq((st, r.get("remark"), r.get("dev_alias")), (200, "hall", "lamp 1"), "PUT binding answers the texts")
        st, b = alice.call("GET", "/bindings")
        x = (b.get("devices") or [{}])[0]
        c.eq((x.get("remark"), x.get("dev_alias")), ("hall", "lamp 1"), "PUT binding stored")
        st, b = bob.call("GET", "/bindings")
        x = [y for y in b.get("devices", []) if y["did"] == d1]
        c.eq((x[0].get("remark"), x[0].get("dev_alias")) if x else None, ("", ""),
             "another user's texts of the same device are their own")
        st, r = alice.call("PUT", "/bindings/" + d1, {})
        c.ok(st == 400 and is_app_error(r, 9015), "PUT binding with nothing to set: 400 9015")
        st, r = alice.call("PUT", "/bindings/" + d1, {"remark": 5})
        c.ok(st == 400 and is_app_error(r, 9015), "PUT binding with a numeric remark: 400 9015")

        # -- bind_mac ------------------------------------------------------------------------------------
        now = int(time.time())
        body = {"product_key": pk, "mac": mac2.lower(), "dev_alias": "by mac"}
        st, r = alice.call("POST", "/bind_mac", body, {"X-Gizwits-Timestamp": str(now),
                                                       "X-Gizwits-Signature": "0" * 32})
        c.ok(st == 400 and is_app_error(r, 9044), "bind_mac wrong signature: 400 9044 (%s %r)" % (st, r))
        st, r = alice.call("POST", "/bind_mac", body, bind_mac_headers(secret, now - 600))
        c.ok(st == 400 and is_app_error(r, 9043), "bind_mac timestamp 10 min old: 400 9043")
        st, r = alice.call("POST", "/bind_mac", body)
        c.ok(st == 400 and is_app_error(r, 9043), "bind_mac without a timestamp: 400 9043")
        st, r = alice.call("POST", "/bind_mac", dict(body, mac="00163EFFFFFF"), bind_mac_headers(secret, now))
        c.ok(st == 404 and is_app_error(r, 9014), "bind_mac of an unknown MAC: 404 9014")
        st, r = alice.call("POST", "/bind_mac", dict(body, product_key="f" * 32), bind_mac_headers(secret, now))
        c.ok(st == 400 and is_app_error(r, 9002), "bind_mac of an unknown product: 400 9002")
        st, r = alice.call("POST", "/bind_mac", body, bind_mac_headers(secret.upper(), now))
        c.ok(st == 400 and is_app_error(r, 9044), "the signature is of the secret as issued (lowercase)")
        st, r = alice.call("POST", "/bind_mac", body, bind_mac_headers(secret, now + 60))
        c.eq((st, r.get("did"), r.get("mac"), r.get("dev_alias"), r.get("is_online")),
             (201, d2, mac2, "by mac", False), "bind_mac binds the device of that MAC")
        st, b = alice.call("GET", "/bindings")
        c.eq(sorted(x["did"] for x in b.get("devices", [])), sorted([d1, d2]), "bind_mac binding listed")

        # -- device detail ----------------------------------------------------------------------------------
        st, dd = alice.call("GET", "/devices/" + d1)
        c.eq((st, dd.get("did"), dd.get("remark"), dd.get("role"), dd.get("ws_port"), dd.get("is_online")),
             (200, d1, "hall", "special", cloud.http_port, True), "device detail")

        # -- control: raw as array, hex, base64 -------------------------------------------------------------
        st, r = alice.call("POST", "/control/" + d1, {"raw": [1, 2, 3, 250]})
        c.eq((st, r), (200, {}), "control raw answers {}")
        msg = dev1.read_publish(timeout=5)
        c.eq(msg, ("app2dev/%s/%s" % (d1, u.get("mqtt_client_id")), framed_biz([1, 2, 3, 250])),
             "the device gets the framed 0x0090 on app2dev/<did>/<the user's client id>")
        st, r = alice.call("POST", "/control/" + d1, {"raw": "0a0b", "binary_coding": "hex"})
        msg = dev1.read_publish(timeout=5)
        c.eq((st, msg and msg[1]), (200, framed_biz([10, 11])), "control raw as hex")
        big = bytes(range(256)) * 2
        st, r = alice.call("POST", "/control/" + d1, {"raw": base64.b64encode(big).decode(),
                                                      "binary_coding": "base64"})
        msg = dev1.read_publish(timeout=5)
        c.eq((st, msg and msg[1]), (200, framed_biz(big)), "control raw as base64 (512 bytes, 2-byte Len)")
        for bad, what in [({"raw": [256]}, "byte 256"), ({"raw": [1.5]}, "fraction"), ({"raw": []}, "empty"),
                          ({"raw": "zz", "binary_coding": "hex"}, "bad hex"), ({"raw": "abc"}, "string without coding"),
                          ({"raw": "@@@@", "binary_coding": "base64"}, "bad base64"),
                          ({"raw": [0] * 1100}, "too long"), ({}, "neither raw nor attrs"),
                          ({"raw": [1], "attrs": {"a": 1}}, "both")]:
            st, r = alice.call("POST", "/control/" + d1, bad)
            c.ok(st == 400 and is_app_error(r, 9015), "control with %s: 400 9015 (%s %r)" % (what, st, r))
        c.eq(dev1.read_publish(timeout=0.5), None, "nothing reached the device for the refused controls")
        st, r = alice.call("POST", "/control/" + d2, {"raw": [1]})
        c.ok(st == 400 and is_app_error(r, 9042), "control of an offline device: 400 9042 (%s %r)" % (st, r))

        # -- attrs (a p0 write) when the product has data points ------------------------------------------
        st, r = alice.call("POST", "/control/" + d1, {"attrs": {"switch": True}})
        c.ok(st == 400 and is_app_error(r, 9029), "attrs without data points: 400 9029 (%s %r)" % (st, r))
        schema = {"name": "lamp", "packetVersion": "0x00000004", "protocolType": "standard",
                  "entities": [{"id": 0, "name": "entity0", "display_name": "lamp", "attrs": [
                      {"id": 0, "name": "switch", "display_name": "switch", "type": "status_writable",
                       "data_type": "bool", "position": {"byte_offset": 0, "bit_offset": 0, "len": 1,
                                                         "unit": "bit"}, "desc": ""},
                      {"id": 1, "name": "level", "display_name": "level", "type": "status_writable",
                       "data_type": "uint8", "position": {"byte_offset": 1, "bit_offset": 0, "len": 1,
                                                          "unit": "byte"},
                       "uint_spec": {"min": 0, "max": 100, "ratio": 1, "addition": 0}, "desc": ""}]}]}
        st, _ = cloud.json("PUT", "/admin/products/%s/datapoints" % pk, schema, admin=True)
        if st in (200, 201, 204):
            st, r = alice.call("POST", "/control/" + d1, {"attrs": {"switch": True, "level": 42}})
            msg = dev1.read_publish(timeout=5)
            # fixed-length write: action 01, attr_flags (2 writable points: bits 0 and 1), then
            # the writable area: byte 0 bit 0 = switch, byte 1 = level
            c.eq((st, msg and msg[1]), (200, framed_biz([0x01, 0x03, 0x01, 42])), "attrs -> p0 write 0x01")
            st, r = alice.call("POST", "/control/" + d1, {"attrs": {"level": 101}})
            c.ok(st == 400 and is_app_error(r, 9025), "attrs out of range: 400 9025 (%s %r)" % (st, r))
            st, r = alice.call("POST", "/control/" + d1, {"attrs": {"nope": 1}})
            c.ok(st == 400 and is_app_error(r, 9025), "unknown attr: 400 9025")
        else:
            print("PUT /admin/products/<pk>/datapoints answered %s: attrs encoding not exercised" % st,
                  flush=True)

        # -- raw_data: the timeline as history ------------------------------------------------------------
        dev1.publish("dev2app/" + d1, framed_biz([4, 9]).replace(b"\x00\x90", b"\x00\x91", 1))
        t0, t1 = int(time.time()) - 3600, int(time.time()) + 60

        def admin_events():
            st, ev = cloud.json("GET", "/admin/devices/%s/events?limit=1000" % d1, admin=True)
            return ev.get("events", []) if st == 200 else []

        def expected(kind):
            out, on = [], False
            for ev in admin_events():
                k, topic = ev.get("kind"), ev.get("topic")
                if kind == "online":
                    if k == "connect":
                        out.append("dev_re_online" if on else "dev_online")
                        on = True
                    elif k == "disconnect":
                        out.append("dev_offline")
                        on = False
                elif topic is not None:
                    if topic.startswith("app2dev/"):
                        out.append("app2dev")
                    elif topic.startswith("dev2app/"):
                        out.append("dev2app")
                elif k in ("publish_out", "publish_in"):
                    out.append("app2dev" if k == "publish_out" else "dev2app")
            return out

        wait_for(lambda: len(expected("cmd")) >= 5, timeout=3)
        for typ in ("cmd", "online"):
            q = "/devices/%s/raw_data?type=%s&start_time=%d&end_time=%d" % (d1, typ, t0, t1)
            st, rd = alice.call("GET", q + "&sort=asc&limit=1000")
            meta = rd.get("meta", {})
            c.eq((st, meta.get("type"), meta.get("did"), meta.get("start_time"), meta.get("end_time"),
                  meta.get("sort")), (200, typ, d1, t0, t1, "asc"), "raw_data %s meta" % typ)
            objs = rd.get("objects", [])
            exp = expected(typ)
            c.eq([o.get("type") for o in objs], exp, "raw_data %s matches the admin timeline" % typ)
            c.eq(meta.get("total"), len(exp), "raw_data %s total" % typ)
            print("raw_data %s: %d objects (timeline kinds: %s)" % (
                typ, len(objs), sorted({e.get("kind") for e in admin_events()})), flush=True)
            if exp:
                st, rd2 = alice.call("GET", q + "&skip=1&limit=1")
                c.eq([o.get("type") for o in rd2.get("objects", [])], list(reversed(exp))[1:2],
                     "raw_data %s default sort desc, skip 1, limit 1" % typ)
                c.ok(all(isinstance(o.get("timestamp"), (int, float)) and t0 <= o["timestamp"] <= t1
                         for o in objs), "raw_data %s timestamps in the window" % typ)
            if typ == "cmd":
                app2dev = [o for o in objs if o.get("type") == "app2dev"]
                if app2dev:
                    c.ok(any(framed_biz([1, 2, 3, 250]).hex().startswith(o.get("payload_bin", "-") or "-") or
                             o.get("payload_bin", "").startswith(framed_biz([1, 2, 3, 250]).hex())
                             for o in app2dev), "raw_data cmd carries the control's payload_bin")
        for q, what in [("type=cmd&start_time=10", "no end_time"), ("start_time=1&end_time=2", "no type"),
                        ("type=x&start_time=1&end_time=2", "unknown type"),
                        ("type=cmd&start_time=5&end_time=5", "empty window"),
                        ("type=cmd&start_time=1&end_time=2&limit=1001", "limit 1001"),
                        ("type=cmd&start_time=1&end_time=2&skip=4500&limit=600", "skip + limit 5100"),
                        ("type=cmd&start_time=1&end_time=2&sort=up", "bad sort")]:
            st, r = alice.call("GET", "/devices/%s/raw_data?%s" % (d1, q))
            c.ok(st == 400 and is_app_error(r, 9015), "raw_data with %s: 400 9015 (%s)" % (what, st))

        # -- unbound devices refused on every path, and they receive nothing -----------------------------
        t = (t0, t1)
        for method, path, body in [("GET", "/devices/" + d3, None),
                                   ("GET", "/devices/%s/raw_data?type=cmd&start_time=%d&end_time=%d" % ((d3,) + t), None),
                                   ("GET", "/devices/%s/raw_data?type=online&start_time=%d&end_time=%d" % ((d3,) + t), None),
                                   ("POST", "/control/" + d3, {"raw": [7, 7]}),
                                   ("POST", "/control/" + d3, {"attrs": {"switch": True}}),
                                   ("PUT", "/bindings/" + d3, {"remark": "mine now"}),
                                   ("GET", "/devices/AAAAAAAAAAAAAAAAAAAAAA", None),
                                   ("GET", "/devices/not-a-did", None),
                                   ("POST", "/control/AAAAAAAAAAAAAAAAAAAAAA", {"raw": [1]})]:
            st, r = alice.call(method, path, body)
            c.ok(st == 401 and is_app_error(r, 9017), "%s %s of a device alice has not bound: 401 9017 (%s %r)"
                 % (method, path.split("?")[0], st, r))
        c.eq(dev3.read_publish(timeout=1.0), None, "the unbound device received nothing")
        st, r = bob.call("POST", "/control/" + d3, {"raw": [7, 7]})
        msg = dev3.read_publish(timeout=5)
        c.eq((st, msg and msg[1]), (200, framed_biz([7, 7])), "its own user controls it")
        st, r = bob.call("GET", "/bindings")
        x = [y for y in r.get("devices", []) if y["did"] == d3]
        c.eq(x and x[0].get("remark"), "", "the refused PUT changed nothing")

        # -- tokens -------------------------------------------------------------------------------------------
        for path, method in [("/devices/" + d1, "GET"), ("/control/" + d1, "POST"), ("/bindings/" + d1, "PUT"),
                             ("/bind_mac", "POST"), ("/devices/%s/raw_data?type=cmd&start_time=1&end_time=2" % d1, "GET")]:
            st, r = App(cloud).call(method, path, {"raw": [1]})
            c.ok(st == 401 and is_app_error(r, 9004), "%s %s without a token: 401 9004" % (method, path.split("?")[0]))
            st, r = App(cloud, "0" * 32).call(method, path, {"raw": [1]})
            c.ok(st == 401 and is_app_error(r, 9004), "%s %s with an unknown token: 401 9004" % (method, path.split("?")[0]))

        # -- errors in the Open API shape on a connection that stays open ------------------------------
        conn = http.client.HTTPConnection("127.0.0.1", cloud.http_port, timeout=10)
        hdr = App(cloud, alice.token).headers()
        cases = [("POST", "/app/control/" + d1, b"{\"raw\": [1,", 400, 9015, "truncated JSON"),
                 ("POST", "/app/control/" + d1, b"\xff\xfe{}", 400, 9015, "not UTF-8"),
                 ("POST", "/app/control/" + d1, b"[1,2]", 400, 9015, "a JSON array"),
                 ("PUT", "/app/bindings/" + d1, b"", 400, 9015, "an empty body"),
                 ("POST", "/app/bind_mac", b"null", 400, 9015, "null"),
                 ("POST", "/app/users", b"{\"username\": ", 400, 9015, "truncated user"),
                 ("GET", "/app/nosuch", None, 404, 9999, "unknown /app path"),
                 ("POST", "/app/devices/%s/nosuch" % d1, b"{}", 404, 9999, "unknown /app path with a body"),
                 ("DELETE", "/app/control/" + d1, None, 405, 9015, "wrong method"),
                 ("GET", "/app/devices/%s/raw_data?type=cmd&start_time=%%zz" % d1, None, 400, 9015,
                  "bad %-encoding")]
        first_sock = None
        for method, path, data, want_st, want_code, what in cases:
            conn.request(method, path, body=data, headers=hdr)
            resp = conn.getresponse()
            raw = resp.read()
            if first_sock is None:
                first_sock = conn.sock
            try:
                j = json.loads(raw.decode())
            except ValueError:
                j = None
            c.ok(resp.status == want_st and is_app_error(j, want_code),
                 "%s: %d %d in the Open API shape (%s %r)" % (what, want_st, want_code, resp.status, raw[:160]))
            c.ok(not resp.will_close and conn.sock is first_sock, "%s: the connection stays open" % what)
        conn.request("GET", "/app/devices/" + d1, headers=hdr)
        resp = conn.getresponse()
        c.eq((resp.status, json.loads(resp.read().decode()).get("did"), conn.sock is first_sock),
             (200, d1, True), "the same connection still serves a good request")
        conn.close()

        log = cloud.log_text("gservice")
        c.ok(alice.token not in log and secret not in log and "pass000001" not in log,
             "no token, product secret or passcode in the GService log")
        dev1.close()
        dev3.close()
    c.eq(cloud.exit_codes.get("gservice"), 0, "gservice exits 0")
    c.done()


if __name__ == "__main__":
    main()
