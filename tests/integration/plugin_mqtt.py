# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""MQTT helpers for the plugin's integration tests (tests/integration/test_plugin_*.py):
a raw-socket MQTT 3.1/3.1.1 client that shows exactly what goes over the wire
(CONNACK codes, PINGRESP counts, the server closing the socket), a thin paho
wrapper that collects deliveries, and the fixtures every plugin test needs
(a product, devices, app users with sessions and bindings), created through
the real GService's HTTP API."""
import queue
import socket
import ssl
import struct
import time

import paho.mqtt.client as paho

# ---------------------------------------------------------------------------
# raw packets


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">H", len(s)) + s


def connect_packet(client_id, username=None, password=None, keepalive=60, level=4, clean=True,
                   will=None, extra_flags=0):
    """CONNECT bytes; level 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1. will = (topic, payload).
    extra_flags is OR-ed into the connect flags as is (will QoS/retain, reserved bit)."""
    name = b"MQIsdp" if level == 3 else b"MQTT"
    flags = (0x02 if clean else 0) | extra_flags
    payload = _str(client_id)
    if will is not None:
        flags |= 0x04
        payload += _str(will[0]) + _str(will[1])
    if username is not None:
        flags |= 0x80
        payload += _str(username)
    if password is not None:
        flags |= 0x40
        payload += _str(password)
    var = _str(name) + bytes([level, flags]) + struct.pack(">H", keepalive)
    body = var + payload
    return bytes([0x10]) + _varint(len(body)) + body


def subscribe_packet(mid, topic, qos=0):
    body = struct.pack(">H", mid) + _str(topic) + bytes([qos])
    return bytes([0x82]) + _varint(len(body)) + body


def publish_packet(topic, payload, qos=0, mid=1):
    if isinstance(payload, str):
        payload = payload.encode()
    body = _str(topic) + (struct.pack(">H", mid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


class RawClient:
    """One TCP connection speaking raw MQTT bytes (over TLS if ssl_context is given)."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, ssl_context=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host)
        self.buf = b""
        self.closed = False
        self.early = []  # PUBLISHes that arrived while waiting for a SUBACK

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def _take(self):
        """Returns one complete packet (type, flags, body) from the buffer, or None."""
        if len(self.buf) < 2:
            return None
        mult, n, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        first = self.buf[0]
        body = self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return (first >> 4, first & 0x0F, body)

    def read_packet(self, timeout=3.0):
        """Next packet as (type, flags, body); None on timeout or when the server closed."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._take()
            if p is not None:
                return p
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            if not self._fill(left):
                if self.closed:
                    return None

    def wait_closed(self, timeout=3.0):
        """True if the server closes the connection within timeout (packets are discarded)."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._fill(left)
            self.buf = b""
        return True

    def connect(self, client_id, username=None, password=None, keepalive=60, level=4):
        """Sends CONNECT and returns the CONNACK return code (None if closed/timeout)."""
        self.send(connect_packet(client_id, username, password, keepalive, level))
        p = self.read_packet()
        if p is None or p[0] != 2:
            return None
        return p[2][1]

    def subscribe(self, topic, mid=1):
        """Returns the SUBACK's granted code (0x80 = refused in 3.1.1). PUBLISHes that
        arrive before the SUBACK are kept for read_publish."""
        self.send(subscribe_packet(mid, topic))
        while True:
            p = self.read_packet()
            if p is None:
                return None
            if p[0] == 9:
                return p[2][2]
            if p[0] == 3:
                self.early.append(p)

    def publish(self, topic, payload):
        self.send(publish_packet(topic, payload))

    def read_publish(self, timeout=3.0):
        """Next PUBLISH as (topic, payload); None if none arrives in time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.early:
                p = self.early.pop(0)
            elif left <= 0:
                return None
            else:
                p = self.read_packet(left)
            if p is None:
                return None
            if p[0] == 3:
                body = p[2]
                tlen = struct.unpack(">H", body[:2])[0]
                topic = body[2:2 + tlen].decode()
                off = 2 + tlen + (2 if (p[1] >> 1) & 3 else 0)
                return topic, body[off:]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# paho


class Paho:
    """A paho client (MQTT 3.1.1) that records every delivery in a queue."""

    def __init__(self, port, client_id, username=None, password=None, keepalive=60, ca_file=None):
        self.msgs = queue.Queue()
        self.rc = None
        self.subacks = queue.Queue()
        self.c = paho.Client(client_id=client_id, protocol=paho.MQTTv311, clean_session=True)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, bytes(m.payload)))
        self.c.on_subscribe = lambda c, u, mid, granted: self.subacks.put(granted)
        self.c.on_disconnect = self._on_disconnect
        self.disconnected = False
        self.connected = queue.Queue()
        if ca_file is not None:
            self.c.tls_set(ca_certs=ca_file)
        self.c.connect("127.0.0.1", port, keepalive)
        self.c.loop_start()
        try:
            self.rc = self.connected.get(timeout=5)
        except queue.Empty:
            self.rc = None

    def _on_connect(self, c, u, flags, rc):
        self.connected.put(rc)

    def _on_disconnect(self, c, u, rc):
        self.disconnected = True

    def subscribe(self, topic):
        self.c.subscribe(topic, 0)
        try:
            return self.subacks.get(timeout=5)
        except queue.Empty:
            return None

    def publish(self, topic, payload):
        self.c.publish(topic, payload, qos=0)

    def drain(self, wait=0.5):
        """All deliveries received within `wait` seconds from now."""
        out = []
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.msgs.get(timeout=left))
            except queue.Empty:
                return out

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


# ---------------------------------------------------------------------------
# fixtures through the GService API

_mac_counter = [0x2CAC]


def new_mac():
    _mac_counter[0] += 1
    return "00163E%06X" % _mac_counter[0]


def new_device(cloud, product_key, passcode="0aeb9953f9"):
    """Registers a device like firmware does; returns (did, passcode)."""
    return cloud.register_device(product_key, new_mac(), passcode), passcode


def new_user(cloud, name):
    """Creates an app user and logs in; returns the login answer
    {uid, token, expire_at, mqtt_client_id} plus 'username'."""
    status, body = cloud.json("POST", "/app/users", {"username": name, "password": "pw-" + name})
    if status != 201:
        raise RuntimeError("create user %s: %s %r" % (name, status, body))
    status, login = cloud.json("POST", "/app/login", {"username": name, "password": "pw-" + name})
    if status != 200:
        raise RuntimeError("login %s: %s %r" % (name, status, login))
    login["username"] = name
    return login


def bind(cloud, user, did, passcode):
    status, body = cloud.json("POST", "/app/bindings", {"devices": [{"did": did, "passcode": passcode}]},
                              headers={"X-Gizwits-User-token": user["token"]})
    if status != 201 or did not in body.get("success", []):
        raise RuntimeError("bind %s: %s %r" % (did, status, body))


def unbind(cloud, user, did):
    status, body = cloud.json("DELETE", "/app/bindings", {"devices": [{"did": did}]},
                              headers={"X-Gizwits-User-token": user["token"]})
    if status != 200 or did not in body.get("success", []):
        raise RuntimeError("unbind %s: %s %r" % (did, status, body))


def app_count_payload(n):
    """The bare 0x0210 the cloud sends: 00000003 0210 <count BE16>."""
    return b"\x00\x00\x00\x03\x02\x10" + struct.pack(">H", n)


APP_COUNT_REQ = b"\x00\x00\x00\x03\x02\x0f"


def device_client(cloud, did, passcode, level=4):
    """A raw device connection, logged in; raises if refused."""
    c = RawClient(cloud.mqtt_port)
    rc = c.connect(did, did, passcode, keepalive=120, level=level)
    if rc != 0:
        raise RuntimeError("device %s login refused: %r" % (did, rc))
    return c


def app_paho(cloud, user):
    return Paho(cloud.mqtt_port, user["mqtt_client_id"], user["uid"], user["token"])


def wait_for(pred, timeout=5.0, step=0.05):
    """Polls pred() until true or timeout; returns the last value (bounded loop)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)
