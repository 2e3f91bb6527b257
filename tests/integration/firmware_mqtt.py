# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""A raw MQTT device that reads the way the official Gizwits firmware does, for the
push tests (test_plugin_counts.py, test_plugin_push.py): every recv() of at most 1024
bytes is taken as exactly one MQTT packet (bytes after the first packet of a recv are
lost, as the firmware loses them), PUBLISHes that arrive before its third SUBACK are
ignored, and an optional processing time after each recv makes it a slow reader.
Everything it lost or ignored is kept, so a test can show what real firmware misses."""
import socket
import struct
import time

from plugin_mqtt import connect_packet, subscribe_packet


def _parse(chunk):
    """(type, flags, body, used) of the first packet in chunk, or None if incomplete."""
    if len(chunk) < 2:
        return None
    mult, n, i = 1, 0, 1
    while True:
        if i >= len(chunk) or i > 4:
            return None
        b = chunk[i]
        n += (b & 0x7F) * mult
        mult *= 128
        i += 1
        if not b & 0x80:
            break
    if len(chunk) < i + n:
        return None
    return chunk[0] >> 4, chunk[0] & 0x0F, chunk[i:i + n], i + n


def publish_fields(flags, body):
    """(topic, payload) of a PUBLISH body."""
    tlen = struct.unpack(">H", body[:2])[0]
    off = 2 + tlen + (2 if (flags >> 1) & 3 else 0)
    return body[2:2 + tlen].decode(errors="replace"), body[off:]


class FirmwareDevice:
    RECV = 1024

    def __init__(self, port, did, passcode, product_key, process_s=0.0, host="127.0.0.1"):
        self.did, self.passcode, self.pk = did, passcode, product_key
        self.process_s = process_s
        self.sock = socket.create_connection((host, port), timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lost = []           # (time, bytes) after the first packet of one recv
        self.ignored = []        # (time, topic, payload): PUBLISHes before the last SUBACK
        self.subscribed_at = None  # monotonic time of the third SUBACK
        self.closed = False

    def recv_one(self, timeout):
        """One recv() taken as one packet: (type, flags, body, t) or None (timeout/closed)."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(self.RECV)
        except socket.timeout:
            return None
        except OSError:
            chunk = b""
        t = time.monotonic()
        if not chunk:
            self.closed = True
            return None
        p = _parse(chunk)
        if p is None:  # a partial packet: firmware would misparse it; keep it as lost
            self.lost.append((t, chunk))
            return None
        typ, flags, body, used = p
        if used < len(chunk):
            self.lost.append((t, chunk[used:]))
        if self.process_s > 0:
            time.sleep(self.process_s)
        return typ, flags, body, t

    def connect(self, keepalive=120):
        """MQTT 3.1 CONNECT like the official client; returns the CONNACK code or None."""
        self.sock.sendall(connect_packet(self.did, self.did, self.passcode, keepalive, level=3))
        p = self.recv_one(5.0)
        if p is None or p[0] != 2:
            return None
        return p[2][1]

    def topics(self):
        return ["ser2cli_noti/" + self.pk, "ser2cli_res/" + self.did, "app2dev/%s/#" % self.did]

    def subscribe_all(self, topics=None, timeout=5.0):
        """The firmware's SUBSCRIBEs (ids 1, 2, 3), each waiting for its SUBACK.
        Returns the granted codes; PUBLISHes read meanwhile are ignored (recorded)."""
        codes = []
        topics = self.topics() if topics is None else topics
        for mid, topic in enumerate(topics, 1):
            self.sock.sendall(subscribe_packet(mid, topic))
            deadline = time.monotonic() + timeout
            code = None
            while time.monotonic() < deadline:
                p = self.recv_one(max(0.01, deadline - time.monotonic()))
                if p is None:
                    if self.closed:
                        break
                    continue
                typ, flags, body, t = p
                if typ == 9 and struct.unpack(">H", body[:2])[0] == mid:
                    code = body[2]
                    break
                if typ == 3:
                    topic_, payload = publish_fields(flags, body)
                    self.ignored.append((t, topic_, payload))
            codes.append(code)
        self.subscribed_at = time.monotonic()
        return codes

    def read_publishes(self, duration, stop_after=None):
        """PUBLISHes read within duration seconds, as (t, topic, payload); stops early
        once stop_after of them arrived."""
        out = []
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.closed or (stop_after is not None and len(out) >= stop_after):
                return out
            p = self.recv_one(left)
            if p is None:
                continue
            typ, flags, body, t = p
            if typ == 3:
                topic, payload = publish_fields(flags, body)
                out.append((t, topic, payload))

    def publish(self, topic, payload):
        from plugin_mqtt import publish_packet
        self.sock.sendall(publish_packet(topic, payload))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
