# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The WebSocket app API /ws/app/v1 (issue 15) against the real GService,
mosquitto with the built plugin and real MQTT devices (paho), driven by
Debian's python3-websocket client and by raw sockets for malformed frames:
the handshake (426 without an upgrade, 101 with Sec-WebSocket-Accept);
login_req (custom) -> login_res true, wrong tokens and another user's token
-> false; subscribe_req of a bound and an unbound device; s2c_online_status
as the device comes and goes; c2s_raw reaching the device on
app2dev/<did>/<client id> byte for byte, the device's dev2app publishes
coming back as s2c_raw; an unbound device refused (s2c_invalid_msg 9017,
nothing reaches it); s2c_binding_changed on bind/unbind over HTTP; c2s_ack
-> 0x0094 with the SN; JSON ping/pong and WebSocket ping/pong frames;
malformed JSON, unknown commands and bad raw -> s2c_invalid_msg; malformed
frames (unmasked, bad UTF-8, oversize, reserved bits) -> a close frame with
the RFC code; a session outlives the HTTP head and idle timeouts; a missed
heartbeat and five refused tokens close it (1008); a client that stops
reading is cut; attrs_v4 with the product's data points (c2s_write/c2s_read
-> p0, reports -> s2c_noti with res_sn/req_sn, s2c_ack), also against a
gizsim device speaking p0; the JS SDK's attrs_v4 + custom pair on one token
sharing one broker login; /metrics; GIZ_WS_MAX_SESSIONS; over HTTPS (wss)
too; the GService stays up and exits cleanly (ASan, leaks checked)."""
import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import plugin_mqtt as pm  # noqa: E402

RAW_0090 = [0, 0, 0, 3, 4, 0, 0, 0x90, 2]
REPORT_0091 = bytes([0, 0, 0, 3, 6, 0, 0, 0x91, 4, 0x11, 0x22])


class WS:
    """A python3-websocket client that keeps what it reads, so a test can
    wait for one command while others arrive."""

    def __init__(self, url, **kw):
        self.ws = websocket.create_connection(url, timeout=5, **kw)
        self.seen = []

    def send(self, obj):
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def _read(self, timeout):
        self.ws.settimeout(timeout)
        try:
            op, data = self.ws.recv_data(control_frame=True)
        except (websocket.WebSocketTimeoutException, socket.timeout):
            return None
        if op == websocket.ABNF.OPCODE_TEXT:
            m = json.loads(data.decode())
            self.seen.append(m)
            return m
        return ("frame", op, data)

    def wait(self, pred, timeout=8.0):
        """The first message (already seen or new) matching pred, removed from
        the backlog; None after `timeout` seconds (bounded)."""
        for i, m in enumerate(self.seen):
            if isinstance(m, dict) and pred(m):
                return self.seen.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self._read(max(0.05, deadline - time.monotonic()))
            if m is None:
                continue
            if isinstance(m, dict) and pred(m):
                self.seen.remove(m)
                return m
        return None

    def cmd(self, name, timeout=8.0, **match):
        def pred(m):
            if m.get("cmd") != name:
                return False
            d = m.get("data") if isinstance(m.get("data"), dict) else m
            return all(d.get(k) == v for k, v in match.items())
        return self.wait(pred, timeout)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def login(ws, user, p0_type="custom", auto=False, token=None, uid=None):
    ws.send({"cmd": "login_req", "data": {"appid": "", "uid": uid or user["uid"],
                                          "token": token or user["token"], "p0_type": p0_type,
                                          "heartbeat_interval": 60, "auto_subscribe": auto}})
    r = ws.cmd("login_res")
    return r["data"]["success"] if r else None


def device_paho(cloud, did, passcode):
    d = pm.Paho(cloud.mqtt_port, did, did, passcode)
    d.subscribe("app2dev/%s/#" % did)
    return d


# ---- raw-socket WebSocket client (for frames python3-websocket will not send) ----

def raw_handshake(port, path="/ws/app/v1", version="13", upgrade=True, host="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    head = "GET %s HTTP/1.1\r\nHost: x\r\n" % path
    if upgrade:
        head += ("Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n" % (key, version))
    s.sendall((head + "\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(4096)
        if not c:
            break
        buf += c
    head, _, rest = buf.partition(b"\r\n\r\n")
    return s, key, head.decode("latin-1"), rest


def masked(op, payload, fin=True, rsv=0, mask=b"\x11\x22\x33\x44", use_mask=True):
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    mbit = 0x80 if use_mask else 0
    if n < 126:
        h = bytes([b0, mbit | n])
    elif n < 65536:
        h = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if not use_mask:
        return h + payload
    return h + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def read_close(s, rest=b"", timeout=5.0):
    """Reads frames until a close frame; returns its code (None if the socket
    ended without one)."""
    s.settimeout(timeout)
    buf = rest
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            hl = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack(">H", buf[2:4])[0]
                hl = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack(">Q", buf[2:10])[0]
                hl = 10
            if len(buf) < hl + n:
                break
            op, payload = buf[0] & 0x0F, buf[hl:hl + n]
            buf = buf[hl + n:]
            if op == 8:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        try:
            c = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return None
        if not c:
            return None
        buf += c
    return None


def check_handshake(c, cloud):
    st, _, body = cloud.http("GET", "/ws/app/v1")
    c.eq(st, 426, "plain GET /ws/app/v1 is 426 Upgrade Required")
    c.ok(b"error_code" in body, "426 in the app API's error shape: %r" % body[:120])
    s, key, head, _ = raw_handshake(cloud.http_port, version="8")
    c.ok(head.startswith("HTTP/1.1 426"), "Sec-WebSocket-Version 8 is 426: %r" % head[:40])
    s.close()
    s, key, head, _ = raw_handshake(cloud.http_port)
    import hashlib
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                            .digest()).decode()
    c.ok(head.startswith("HTTP/1.1 101"), "handshake answered 101: %r" % head[:40])
    c.ok(("Sec-WebSocket-Accept: %s" % want) in head, "Sec-WebSocket-Accept is RFC 6455's")
    s.close()


def check_malformed_frames(c, cloud):
    cases = [
        ("unmasked client frame", masked(1, b'{"cmd":"ping"}', use_mask=False), 1002),
        ("text that is not UTF-8", masked(1, b'{"cmd":"\xc3\x28"}'), 1007),
        ("reserved bit", masked(1, b'{"cmd":"ping"}', rsv=0x40), 1002),
        ("unknown opcode", masked(3, b"x"), 1002),
        ("message over 64 KiB", masked(1, b"[" + b" " * 70000 + b"]"), 1009),
        ("continuation without a start", masked(0, b"x"), 1002),
        ("long ping", masked(9, b"p" * 126)[:2] + b"\x00\x7e" + b"\x11\x22\x33\x44" + b"p" * 126, 1002),
    ]
    for what, frame, code in cases:
        s, _, head, rest = raw_handshake(cloud.http_port)
        try:
            s.sendall(frame)
        except OSError:
            pass
        got = read_close(s, rest)
        c.eq(got, code, "%s: close code" % what)
        s.close()
    # a lying 64-bit length: closed at once, nothing buffered
    s, _, _, rest = raw_handshake(cloud.http_port)
    s.sendall(bytes([0x81, 0xFF]) + struct.pack(">Q", 1 << 40) + b"\x00\x00\x00\x00")
    c.eq(read_close(s, rest), 1009, "1 TiB frame length: 1009 before any payload")
    s.close()
    # fragmented JSON with a ping between the fragments works
    s, _, _, rest = raw_handshake(cloud.http_port)
    s.sendall(masked(1, b'{"cmd":', fin=False) + masked(9, b"hb") + masked(0, b'"ping"}'))
    s.settimeout(5)
    data = rest
    deadline = time.monotonic() + 5
    while b"pong" not in data and time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    c.ok(b"\x8a\x02hb" in data, "ping frame between fragments answered with a pong frame")
    c.ok(b'"pong"' in data, "fragmented {\"cmd\":\"ping\"} answered pong")
    s.close()
    st, _, _ = cloud.http("GET", "/healthz")
    c.eq(st, 200, "GService alive after malformed frames")


def check_session(c, cloud):
    pk = cloud.create_product("ws")["product_key"]
    d1, pc1 = pm.new_device(cloud, pk)
    d2, pc2 = pm.new_device(cloud, pk)
    d3, pc3 = pm.new_device(cloud, pk)
    alice = pm.new_user(cloud, "wsalice")
    bob = pm.new_user(cloud, "wsbob")
    pm.bind(cloud, alice, d1, pc1)
    pm.bind(cloud, bob, d2, pc2)
    dev1 = device_paho(cloud, d1, pc1)
    dev2 = device_paho(cloud, d2, pc2)
    c.eq(dev1.rc, 0, "device 1 logged in over MQTT")
    url = "ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port

    # logins that must fail
    ws = WS(url)
    c.eq(login(ws, alice, token="0" * 32), False, "unknown token: login_res false")
    c.eq(login(ws, alice, token=bob["token"]), False, "another user's token: login_res false")
    ws.send({"cmd": "subscribe_req", "data": [{"did": d1}]})
    r = ws.cmd("s2c_invalid_msg")
    c.ok(r is not None, "subscribe before login: s2c_invalid_msg")
    c.eq(login(ws, alice), True, "login_req custom: login_res true")
    ws.send({"cmd": "login_req", "data": {"uid": alice["uid"], "token": alice["token"]}})
    r = ws.cmd("s2c_invalid_msg")
    c.ok(r is not None and "already" in r["data"]["msg"], "second login_req: s2c_invalid_msg %r" % r)

    # subscribe: bound d1 ok, bob's d2 refused
    ws.send({"cmd": "subscribe_req", "data": [{"did": d1}, {"did": d2}, {"did": "nope"}]})
    r = ws.cmd("subscribe_res")
    c.ok(r is not None, "subscribe_res")
    if r:
        c.eq([x["did"] for x in r["data"]["success"]], [d1], "subscribe_res success = the bound device")
        failed = {x["did"]: x["error_code"] for x in r["data"]["failed"]}
        c.eq(failed.get(d2), 9017, "bob's device: failed with 9017 (not bound)")
        c.ok("nope" in failed, "a malformed did fails")
    r = ws.cmd("s2c_online_status", did=d1, online=True, timeout=10)
    c.ok(r is not None, "s2c_online_status online true for the connected device")
    if r:
        c.ok(len(r["data"].get("mac", "")) == 12, "s2c_online_status carries the mac")

    # c2s_raw -> the device, byte for byte, on app2dev/<did>/<client id>
    ws.send({"cmd": "c2s_raw", "data": {"did": d1, "raw": RAW_0090}})
    got = pm.wait_for(lambda: dev1.drain(0.2), timeout=5)
    c.ok(got and got[0] == ("app2dev/%s/%s" % (d1, alice["mqtt_client_id"]), bytes(RAW_0090)),
         "device got the exact 0x0090 on app2dev/<did>/<client id>: %r" % got)
    sn_msg = [0, 0, 0, 3, 10, 0, 0, 0x93, 0, 0, 0, 7, 1, 2, 3]
    ws.send({"cmd": "c2s_raw", "data": {"did": d1, "raw": sn_msg}})
    got = pm.wait_for(lambda: dev1.drain(0.2), timeout=5)
    c.ok(got and got[0][1] == bytes(sn_msg), "0x0093 with its SN passes as is")

    # device -> s2c_raw (both dev2app topics)
    dev1.publish("dev2app/%s" % d1, REPORT_0091)
    r = ws.cmd("s2c_raw", did=d1)
    c.ok(r is not None and bytes(r["data"]["raw"]) == REPORT_0091, "dev2app/<did> -> s2c_raw %r" % r)
    dev1.publish("dev2app/%s/%s" % (d1, alice["mqtt_client_id"]), REPORT_0091 + b"")
    r = ws.cmd("s2c_raw", did=d1)
    c.ok(r is not None and bytes(r["data"]["raw"]) == REPORT_0091, "dev2app/<did>/<cid> -> s2c_raw")

    # unbound device refused; nothing reaches it
    dev2.drain(0.3)
    ws.send({"cmd": "c2s_raw", "data": {"did": d2, "raw": RAW_0090}})
    r = ws.cmd("s2c_invalid_msg")
    c.ok(r is not None and r["data"]["error_code"] == 9017, "c2s_raw to an unbound device: 9017 %r" % r)
    c.eq(dev2.drain(1.0), [], "the unbound device received nothing")
    dev2.publish("dev2app/%s" % d2, REPORT_0091)
    c.eq(ws.cmd("s2c_raw", did=d2, timeout=1.5), None, "nothing from an unbound device")

    # c2s_ack -> 0x0094 with the SN (top-level did/res_sn as documented)
    ws.send({"cmd": "c2s_ack", "res_sn": 258, "did": d1})
    got = pm.wait_for(lambda: dev1.drain(0.2), timeout=5)
    c.ok(got and got[0][1] == bytes([0, 0, 0, 3, 7, 0, 0, 0x94, 0, 0, 1, 2]),
         "c2s_ack res_sn 258 -> 00000003 07 00 0094 00000102: %r" % got)

    # bad input: malformed JSON, unknown cmd, bad raw; never a crash
    for text, what in [("{not json", "malformed JSON"), ('["cmd"]', "not an object"),
                       ('{"cmd":"nope"}', "unknown cmd"),
                       ('{"cmd":"c2s_raw","data":{"did":"%s","raw":[1,2,3]}}' % d1, "raw not a 0x0090"),
                       ('{"cmd":"c2s_raw","data":{"did":"%s","raw":[0,0,0,3,4,0,0,144,256]}}' % d1,
                        "raw byte 256"),
                       ('{"cmd":"c2s_raw","data":{"did":"%s","raw":[0,0,0,3,9,0,0,144,2]}}' % d1,
                        "raw with a lying length"),
                       ('{"cmd":"c2s_write","data":{"did":"%s","attrs":{"a":1}}}' % d1,
                        "c2s_write in custom mode")]:
        ws.send(text)
        r = ws.cmd("s2c_invalid_msg")
        c.ok(r is not None and isinstance(r["data"].get("error_code"), int) and r["data"].get("msg"),
             "%s: s2c_invalid_msg with error_code and msg (%r)" % (what, r))
    c.eq(dev1.drain(0.5), [], "nothing malformed reached the device")

    # ping/pong: JSON and frames
    ws.send({"cmd": "ping"})
    c.ok(ws.cmd("pong") is not None, "JSON ping -> pong")
    ws.ws.ping("abc")
    got = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and got is None:
        m = ws._read(1)
        if isinstance(m, tuple) and m[1] == websocket.ABNF.OPCODE_PONG:
            got = m[2]
    c.eq(got, b"abc", "ping frame -> pong frame with the same payload")

    # binding changes over HTTP reach the session
    pm.bind(cloud, alice, d3, pc3)
    r = ws.cmd("s2c_binding_changed", did=d3, timeout=10)
    c.ok(r is not None and r["data"]["bind"] is True, "bind over HTTP -> s2c_binding_changed true")
    pm.unbind(cloud, alice, d1)
    r = ws.cmd("s2c_binding_changed", did=d1, timeout=10)
    c.ok(r is not None and r["data"]["bind"] is False, "unbind -> s2c_binding_changed false")
    ws.send({"cmd": "c2s_raw", "data": {"did": d1, "raw": RAW_0090}})
    r = ws.cmd("s2c_invalid_msg")
    c.ok(r is not None and r["data"]["error_code"] == 9017, "after unbinding, c2s_raw refused")
    dev1.drain(0.3)
    dev1.publish("dev2app/%s" % d1, REPORT_0091)
    c.eq(ws.cmd("s2c_raw", did=d1, timeout=1.5), None, "after unbinding, no s2c_raw")
    pm.bind(cloud, alice, d1, pc1)
    ws.cmd("s2c_binding_changed", did=d1, timeout=10)

    # online status follows the device
    ws.send({"cmd": "subscribe_req", "data": [{"did": d1}]})
    ws.cmd("subscribe_res")
    ws.cmd("s2c_online_status", did=d1, online=True, timeout=10)
    ws.seen.clear()  # an older "online false" (subscribed before the flag was written) must not count
    dev1.close()
    r = ws.cmd("s2c_online_status", did=d1, online=False, timeout=15)
    c.ok(r is not None, "device disconnects -> s2c_online_status online false")
    dev1 = device_paho(cloud, d1, pc1)
    r = ws.cmd("s2c_online_status", did=d1, online=True, timeout=15)
    c.ok(r is not None, "device back -> s2c_online_status online true")

    # auto_subscribe: a second session of alice (own HTTP login) gets d1 and d3
    alice2 = pm.new_user(cloud, "wsalice2")
    pm.bind(cloud, alice2, d1, pc1)
    ws2 = WS(url)
    c.eq(login(ws2, alice2, auto=True), True, "auto_subscribe login")
    r = ws2.cmd("s2c_online_status", did=d1, timeout=10)
    c.ok(r is not None, "auto_subscribe: online status of the bound device without subscribe_req")
    dev1.publish("dev2app/%s" % d1, REPORT_0091)
    r = ws2.cmd("s2c_raw", did=d1)
    c.ok(r is not None, "auto_subscribe: device message arrives")
    r = ws.cmd("s2c_raw", did=d1)
    c.ok(r is not None, "both sessions get the broadcast dev2app/<did>")

    # attrs_v4 without a data-point schema: refused with a message, never a crash
    ws3 = WS(url)
    c.eq(login(ws3, bob, p0_type="attrs_v4"), True, "attrs_v4 login")
    ws3.send({"cmd": "subscribe_req", "data": [{"did": d2}]})
    ws3.cmd("subscribe_res")
    ws3.send({"cmd": "c2s_write", "req_sn": 5, "data": {"did": d2, "attrs": {"power": True}}})
    r = ws3.cmd("s2c_invalid_msg")
    c.ok(r is not None, "c2s_write without a data-point schema: s2c_invalid_msg %r" % r)
    dev2.publish("dev2app/%s" % d2, REPORT_0091)
    r = ws3.cmd("s2c_raw", did=d2)
    c.ok(r is not None, "attrs_v4 without a schema: device data as s2c_raw")
    ws3.send({"cmd": "c2s_raw", "data": {"did": d2, "raw": RAW_0090}})
    got = pm.wait_for(lambda: dev2.drain(0.2), timeout=5)
    c.ok(got and got[0][1] == bytes(RAW_0090), "attrs_v4 session: c2s_raw still passes")

    # the JS SDK's way in: host + ws_port from GET /app/bindings
    st, b = cloud.json("GET", "/app/bindings", headers={"X-Gizwits-User-token": alice["token"]})
    dev_b = [x for x in b.get("devices", []) if x.get("did") == d1] if st == 200 else []
    c.ok(dev_b and dev_b[0].get("ws_port") == cloud.http_port, "bindings' ws_port is the HTTP port: %r" % dev_b)
    if dev_b:
        ws4 = WS("ws://%s:%d/ws/app/v1" % ("127.0.0.1", dev_b[0]["ws_port"]))
        c.eq(login(ws4, alice2), True, "login on the advertised ws_port")
        ws4.close()

    # a missed heartbeat ends the session: heartbeat_interval 1 -> silent for > 2 x 1 + 5 s
    ws5 = WS(url)
    ws5.send({"cmd": "login_req", "data": {"uid": alice2["uid"], "token": alice2["token"],
                                           "p0_type": "custom", "heartbeat_interval": 1,
                                           "auto_subscribe": False}})
    c.ok(ws5.cmd("login_res") is not None, "heartbeat 1 s login")
    closed = None
    deadline = time.monotonic() + 15
    while closed is None and time.monotonic() < deadline:
        try:
            ws5.ws.settimeout(1)
            op, data = ws5.ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                closed = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
        except (websocket.WebSocketTimeoutException, socket.timeout):
            continue
        except websocket.WebSocketConnectionClosedException:
            closed = 0
    c.eq(closed, 1008, "no message for 2 x heartbeat_interval + 5 s: close 1008")
    ws5.close()

    # five refused tokens on one connection: close 1008
    ws6 = WS(url)
    for _ in range(5):
        login(ws6, alice, token="1" * 32)
    closed = None
    try:
        ws6.ws.settimeout(5)
        op, data = ws6.ws.recv_data(control_frame=True)
        closed = struct.unpack(">H", data[:2])[0] if op == websocket.ABNF.OPCODE_CLOSE else op
    except websocket.WebSocketConnectionClosedException:
        closed = 0
    except (websocket.WebSocketTimeoutException, socket.timeout):
        pass
    c.eq(closed, 1008, "five refused tokens: close 1008")
    ws6.close()

    # the session outlives the HTTP head (2 s) and idle (3 s) timeouts
    time.sleep(5)
    ws.send({"cmd": "ping"})
    c.ok(ws.cmd("pong") is not None, "session alive after the HTTP head/idle timeouts")

    for x in (ws, ws2, ws3):
        x.close()
    dev1.close()
    dev2.close()
    return pk


SCHEMA = {"name": "lamp", "packetVersion": "0x00000004", "protocolType": "standard",
          "entities": [{"id": 0, "name": "entity0", "display_name": "lamp", "attrs": [
              {"id": 0, "name": "switch", "display_name": "switch", "type": "status_writable",
               "data_type": "bool", "position": {"byte_offset": 0, "bit_offset": 0, "len": 1,
                                                 "unit": "bit"}, "desc": ""},
              {"id": 1, "name": "level", "display_name": "level", "type": "status_writable",
               "data_type": "uint8", "position": {"byte_offset": 1, "bit_offset": 0, "len": 1,
                                                  "unit": "byte"},
               "uint_spec": {"min": 0, "max": 100, "ratio": 1, "addition": 0}, "desc": ""}]}]}


def framed(cmd, body, sn=None):
    rest = bytes([0, cmd >> 8, cmd & 0xFF]) + (struct.pack(">I", sn) if sn is not None else b"") + bytes(body)
    return bytes([0, 0, 0, 3]) + pm._varint(len(rest)) + rest


def check_attrs(c, cloud):
    """attrs_v4 with the product's data points: c2s_write/c2s_read encoded as
    p0 (0x0090, or 0x0093 with req_sn), device reports as s2c_noti (res_sn /
    req_sn from 0x0094 / 0x0093), a bare 0x0094 as s2c_ack, pass-through as
    s2c_raw, a report that does not match the schema as s2c_invalid_msg."""
    pk = cloud.create_product("wsp0")["product_key"]
    st, _ = cloud.json("PUT", "/admin/products/%s/datapoints" % pk, SCHEMA, admin=True)
    if not c.ok(st in (200, 201, 204), "data points stored (%s)" % st):
        return
    d, pcode = pm.new_device(cloud, pk)
    u = pm.new_user(cloud, "wsattrs")
    pm.bind(cloud, u, d, pcode)
    dev = device_paho(cloud, d, pcode)
    ws = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
    c.eq(login(ws, u, p0_type="attrs_v4", auto=True), True, "attrs_v4 login")
    ws.cmd("s2c_online_status", did=d, timeout=10)
    ws.send({"cmd": "c2s_write", "data": {"did": d, "attrs": {"switch": True, "level": 42}}})
    got = pm.wait_for(lambda: dev.drain(0.2), timeout=5)
    c.ok(got and got[0][1] == framed(0x0090, [0x01, 0x03, 0x01, 42]),
         "c2s_write -> 0x0090 p0 write 01 03 01 2a: %r" % got)
    ws.send({"cmd": "c2s_write", "req_sn": 9, "data": {"did": d, "attrs": {"level": 7}}})
    got = pm.wait_for(lambda: dev.drain(0.2), timeout=5)
    c.ok(got and got[0][1] == framed(0x0093, [0x01, 0x02, 0x00, 7], sn=9),
         "c2s_write with req_sn 9 -> 0x0093 SN 9: %r" % got)
    ws.send({"cmd": "c2s_read", "data": {"did": d}})
    got = pm.wait_for(lambda: dev.drain(0.2), timeout=5)
    c.ok(got and got[0][1] == framed(0x0090, [0x02]), "c2s_read -> 0x0090 02: %r" % got)
    dev.publish("dev2app/%s" % d, framed(0x0091, [0x04, 0x01, 42]))
    r = ws.cmd("s2c_noti", did=d)
    c.ok(r is not None and r["data"]["attrs"] == {"switch": True, "level": 42}
         and "res_sn" not in r and "req_sn" not in r, "report 0x0091 04 -> s2c_noti attrs %r" % r)
    dev.publish("dev2app/%s/%s" % (d, u["mqtt_client_id"]), framed(0x0094, [0x03, 0x00, 5], sn=9))
    r = ws.cmd("s2c_noti", did=d)
    c.ok(r is not None and r.get("res_sn") == 9 and r["data"]["attrs"] == {"switch": False, "level": 5},
         "0x0094 SN 9 with a read reply -> s2c_noti res_sn 9: %r" % r)
    dev.publish("dev2app/%s" % d, framed(0x0093, [0x04, 0x01, 1], sn=77))
    r = ws.cmd("s2c_noti", did=d)
    c.ok(r is not None and r.get("req_sn") == 77, "device 0x0093 SN 77 -> s2c_noti req_sn 77: %r" % r)
    dev.publish("dev2app/%s/%s" % (d, u["mqtt_client_id"]), framed(0x0094, [], sn=9))
    r = ws.cmd("s2c_ack")
    c.ok(r is not None and r.get("res_sn") == 9 and r.get("did") == d, "bare 0x0094 -> s2c_ack: %r" % r)
    dev.publish("dev2app/%s" % d, framed(0x0091, [0x06, 0xAA, 0xBB]))
    r = ws.cmd("s2c_raw", did=d)
    c.ok(r is not None and bytes(r["data"]["raw"]) == framed(0x0091, [0x06, 0xAA, 0xBB]),
         "pass-through 0x06 -> s2c_raw")
    dev.publish("dev2app/%s" % d, framed(0x0091, [0x04, 0x01]))
    r = ws.cmd("s2c_invalid_msg")
    c.ok(r is not None, "a truncated report -> s2c_invalid_msg %r" % r)
    for attrs, what in [({"level": 101}, "out of range"), ({"nope": 1}, "unknown name"),
                        ({"switch": "yes"}, "wrong type")]:
        ws.send({"cmd": "c2s_write", "data": {"did": d, "attrs": attrs}})
        r = ws.cmd("s2c_invalid_msg")
        c.ok(r is not None, "c2s_write %s -> s2c_invalid_msg" % what)
    ws.send({"cmd": "c2s_write", "req_sn": -1, "data": {"did": d, "attrs": {"level": 1}}})
    c.ok(ws.cmd("s2c_invalid_msg") is not None, "req_sn -1 -> s2c_invalid_msg")
    c.eq(dev.drain(0.5), [], "nothing invalid reached the device")
    # the JS SDK's pair: a custom session with the same token beside the attrs_v4 one (one
    # broker connection per client id, shared): both work, either may end alone
    wsc = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
    c.eq(login(wsc, u, p0_type="custom"), True, "a second session with the same token logs in")
    wsc.send({"cmd": "subscribe_req", "data": [{"did": d}]})
    r = wsc.cmd("subscribe_res")
    c.ok(r is not None and [x["did"] for x in r["data"]["success"]] == [d], "it subscribes too")
    dev.publish("dev2app/%s" % d, framed(0x0091, [0x04, 0x01, 9]))
    r1 = ws.cmd("s2c_noti", did=d)
    r2 = wsc.cmd("s2c_raw", did=d)
    c.ok(r1 is not None and r1["data"]["attrs"].get("level") == 9, "attrs_v4 session: s2c_noti %r" % r1)
    c.ok(r2 is not None and bytes(r2["data"]["raw"]) == framed(0x0091, [0x04, 0x01, 9]),
         "custom session, same token: s2c_raw of the same report")
    wsc.send({"cmd": "c2s_raw", "data": {"did": d, "raw": RAW_0090}})
    got = pm.wait_for(lambda: dev.drain(0.2), timeout=5)
    c.ok(got and got[0] == ("app2dev/%s/%s" % (d, u["mqtt_client_id"]), bytes(RAW_0090)),
         "custom session's c2s_raw reaches the device: %r" % got)
    logins = cloud.log_text("mosquitto").count("giz: app %s (uid" % u["mqtt_client_id"])
    c.eq(logins, 1, "the two sessions share one broker login")
    wsc.close()
    time.sleep(0.5)
    dev.publish("dev2app/%s" % d, framed(0x0091, [0x04, 0x00, 3]))
    r1 = ws.cmd("s2c_noti", did=d)
    c.ok(r1 is not None and r1["data"]["attrs"].get("level") == 3,
         "after the custom session closed, the attrs_v4 one still gets reports")
    ws.send({"cmd": "c2s_read", "data": {"did": d}})
    got = pm.wait_for(lambda: dev.drain(0.2), timeout=5)
    c.ok(got and got[0][1] == framed(0x0090, [0x02]), "and still reaches the device")
    ws.close()
    dev.close()


def check_gizsim(c, cloud):
    """A gizsim device speaking p0 (--datapoints) driven over the WebSocket:
    c2s_write -> the device applies it and reports -> s2c_noti with the new
    values; c2s_read with req_sn -> its read reply (0x0094) -> s2c_noti
    res_sn; c2s_write with req_sn -> its empty 0x0094 -> s2c_ack."""
    from test_tools_cli import Sim, read_state
    pk = cloud.create_product("wssim")["product_key"]
    st, _ = cloud.json("PUT", "/admin/products/%s/datapoints" % pk, SCHEMA, admin=True)
    tmp = tempfile.mkdtemp(prefix="gizws-sim-")
    schema_file = os.path.join(tmp, "dp.json")
    state = os.path.join(tmp, "state")
    with open(schema_file, "w") as f:
        json.dump(SCHEMA, f)
    sim = Sim(["--http", "http://127.0.0.1:%d" % cloud.http_port, "-p", pk, "-n", 1, "-s", state,
               "--datapoints", schema_file, "-d", 120, "--no-ota"])
    devs = pm.wait_for(lambda: os.path.exists(state) and read_state(state), timeout=30)
    if not c.ok(devs, "gizsim registered its device"):
        sim._kill()
        return
    did, pcode = devs[0][0], devs[0][1]
    online = pm.wait_for(lambda: cloud.json("GET", "/admin/devices/%s" % did, admin=True)[1].get("online"),
                         timeout=30)
    c.ok(online, "gizsim device online")
    u = pm.new_user(cloud, "wssim")
    pm.bind(cloud, u, did, pcode)
    ws = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
    c.eq(login(ws, u, p0_type="attrs_v4", auto=True), True, "attrs_v4 login (gizsim device)")
    ws.cmd("s2c_online_status", did=did, timeout=10)
    ws.send({"cmd": "c2s_write", "data": {"did": did, "attrs": {"switch": True, "level": 42}}})
    r = ws.wait(lambda m: m.get("cmd") == "s2c_noti" and m["data"].get("attrs", {}).get("level") == 42,
                timeout=10)
    c.ok(r is not None and r["data"]["attrs"].get("switch") is True,
         "c2s_write -> gizsim applies it and reports -> s2c_noti switch true, level 42: %r" % r)
    ws.send({"cmd": "c2s_read", "req_sn": 11, "data": {"did": did}})
    r = ws.wait(lambda m: m.get("cmd") == "s2c_noti" and m.get("res_sn") == 11, timeout=10)
    c.ok(r is not None and r["data"]["attrs"] == {"switch": True, "level": 42},
         "c2s_read req_sn 11 -> s2c_noti res_sn 11 with the state: %r" % r)
    ws.send({"cmd": "c2s_write", "req_sn": 12, "data": {"did": did, "attrs": {"level": 7}}})
    r = ws.wait(lambda m: m.get("cmd") == "s2c_ack" and m.get("res_sn") == 12, timeout=10)
    c.ok(r is not None, "c2s_write req_sn 12 -> gizsim's 0x0094 -> s2c_ack res_sn 12")
    r = ws.wait(lambda m: m.get("cmd") == "s2c_noti" and m["data"].get("attrs", {}).get("level") == 7,
                timeout=10)
    c.ok(r is not None, "then its report -> s2c_noti level 7")
    ws.close()
    sim.p.send_signal(2)
    try:
        sim.p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        sim._kill()


def check_slow_client(c, cloud, pk):
    """A client that stops reading is cut once its queue passes the cap; the
    device and the GService are unaffected."""
    d, pc = pm.new_device(cloud, pk)
    u = pm.new_user(cloud, "wsslow")
    pm.bind(cloud, u, d, pc)
    dev = device_paho(cloud, d, pc)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", cloud.http_port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws/app/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    time.sleep(0.3)
    s.recv(1024)
    msg = {"cmd": "login_req", "data": {"uid": u["uid"], "token": u["token"], "p0_type": "custom",
                                        "auto_subscribe": True}}
    s.sendall(masked(1, json.dumps(msg).encode()))
    time.sleep(1.5)
    body = bytes([0, 0, 0x91]) + bytes(4000)
    big = bytes([0, 0, 0, 3]) + pm._varint(len(body)) + body  # s2c_raw of ~8 KB each
    for _ in range(4000):
        dev.publish("dev2app/%s" % d, big)
    cut = pm.wait_for(lambda: "too slow" in cloud.log_text("gservice"), timeout=20)
    c.ok(cut, "a client that stops reading is cut (log says 'too slow')")
    s.close()
    dev.close()
    st, _, _ = cloud.http("GET", "/healthz")
    c.eq(st, 200, "GService fine after cutting a slow client")


def close_code_of(ws, timeout=15):
    """The close code the server sends on a python3-websocket connection (0:
    the socket ended without one, None: nothing within timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ws.settimeout(1)
            op, data = ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                return struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
        except (websocket.WebSocketTimeoutException, socket.timeout):
            continue
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return 0
    return None


def check_broker_loss(c):
    """The broker stops: every WebSocket of its links is closed with 1001 (the
    clients reconnect); with no broker, login_req gets login_res false (no
    hang) and the GService stays up."""
    with harness.Cloud() as cloud:
        pk = cloud.create_product("wsloss")["product_key"]
        d, pcode = pm.new_device(cloud, pk)
        u = pm.new_user(cloud, "wsloss")
        pm.bind(cloud, u, d, pcode)
        ws = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
        c.eq(login(ws, u, auto=True), True, "login with the broker up")
        cloud.broker.terminate()
        cloud.broker.wait(timeout=15)
        c.eq(close_code_of(ws.ws), 1001, "broker stopped: the session is closed with 1001")
        ws.close()
        ws = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
        ws.send({"cmd": "login_req", "data": {"uid": u["uid"], "token": u["token"], "p0_type": "custom"}})
        r = ws.cmd("login_res", timeout=15)
        c.ok(r is not None and r["data"]["success"] is False, "no broker: login_res false (%r)" % r)
        ws.close()
        st, _, _ = cloud.http("GET", "/healthz")
        c.ok(st in (200, 503), "GService answers /healthz without a broker (%s)" % st)
        codes = cloud.stop()
        c.eq(codes.get("gservice"), 0, "GService exits 0 after losing the broker")


def check_wss(c):
    tls = tempfile.mkdtemp(prefix="gizws-tls-")
    r = subprocess.run(["sh", os.path.join(harness.SOURCE, "deploy", "gen-certs"), tls, "localhost",
                        "127.0.0.1"], capture_output=True)
    if not c.ok(r.returncode == 0, "gen-certs: %r" % r.stderr[-200:]):
        return
    https_port = harness.free_port()
    env = {"GIZ_HTTPS_PORT": str(https_port), "GIZ_WS_MAX_SESSIONS": "2",
           "GIZ_TLS_CERT": os.path.join(tls, "server.crt"),
           "GIZ_TLS_KEY": os.path.join(tls, "server.key")}
    with harness.Cloud(gservice_env=env) as cloud:
        harness.wait_port(https_port, cloud.gservice)
        pk = cloud.create_product("wss")["product_key"]
        d, pc = pm.new_device(cloud, pk)
        u = pm.new_user(cloud, "wssuser")
        pm.bind(cloud, u, d, pc)
        dev = device_paho(cloud, d, pc)
        ws = WS("wss://localhost:%d/ws/app/v1" % https_port,
                sslopt={"ca_certs": os.path.join(tls, "ca.crt"), "cert_reqs": ssl.CERT_REQUIRED})
        c.eq(login(ws, u, auto=True), True, "wss: login_res true")
        ws.cmd("s2c_online_status", did=d, timeout=10)
        ws.send({"cmd": "c2s_raw", "data": {"did": d, "raw": RAW_0090}})
        got = pm.wait_for(lambda: dev.drain(0.2), timeout=5)
        c.ok(got and got[0][1] == bytes(RAW_0090), "wss: c2s_raw reaches the device")
        dev.publish("dev2app/%s" % d, REPORT_0091)
        r = ws.cmd("s2c_raw", did=d)
        c.ok(r is not None and bytes(r["data"]["raw"]) == REPORT_0091, "wss: s2c_raw")
        ws.close()
        dev.close()
        # GIZ_WS_MAX_SESSIONS=2: a third session is closed at once
        pm.wait_for(lambda: "\ngizcloud_ws_sessions 0\n" in cloud.http("GET", "/metrics")[2].decode(),
                    timeout=5)
        ws2 = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
        ws2b = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
        ws2b.send({"cmd": "ping"})
        c.ok(ws2b.cmd("pong") is not None, "a second session works")
        ws3 = websocket.create_connection("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port, timeout=5)
        ended = False
        try:
            ws3.send('{"cmd":"ping"}')
            op, _ = ws3.recv_data(control_frame=True)
            ended = op == websocket.ABNF.OPCODE_CLOSE
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            ended = True
        except websocket.WebSocketTimeoutException:
            ended = False
        c.ok(ended, "GIZ_WS_MAX_SESSIONS=2: the third session is closed")
        ws2.send({"cmd": "ping"})
        c.ok(ws2.cmd("pong") is not None, "the first session still works")
        ws2.close()
        ws2b.close()
        ws3.close()
        codes = cloud.stop()
        c.eq(codes.get("gservice"), 0, "GService (HTTPS) exits 0")


def main():
    c = harness.Checker("test_ws_app")
    env = {"GIZ_HTTP_HEAD_TIMEOUT": "2", "GIZ_HTTP_IDLE_TIMEOUT": "3"}
    with harness.Cloud(gservice_env=env) as cloud:
        check_handshake(c, cloud)
        check_malformed_frames(c, cloud)
        pk = check_session(c, cloud)
        check_attrs(c, cloud)
        check_gizsim(c, cloud)
        check_slow_client(c, cloud, pk)
        st, _, body = cloud.http("GET", "/metrics")
        text = body.decode()
        import re
        def metric(name):
            m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
            return int(m.group(1)) if m else None
        c.ok((metric("gizcloud_ws_sessions_total") or 0) >= 10, "metrics: gizcloud_ws_sessions_total")
        c.ok((metric('gizcloud_ws_messages_total{direction="in"}') or 0) > 20, "metrics: messages in")
        c.ok((metric("gizcloud_ws_slow_cut_total") or 0) >= 1, "metrics: the slow client is counted")
        c.ok(metric("gizcloud_ws_sessions") is not None, "metrics: gizcloud_ws_sessions gauge")
        # open sessions at shutdown: closed cleanly, exit 0 (ASan: no leaks)
        ws = WS("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port)
        codes = cloud.stop()
        c.eq(codes.get("gservice"), 0, "GService exits 0 with an open WebSocket")
        ws.close()
    check_broker_loss(c)
    check_wss(c)
    c.done()


if __name__ == "__main__":
    main()
