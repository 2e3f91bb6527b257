# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The broker's half of the device timeline (issue 14) with the real mosquitto,
plugin and GService: a device driven through register -> provision -> OTA
check -> download -> MQTT login -> subscribe -> business messages -> an
ACL-denied publish -> a ping-limit close yields exactly those events in order
(HTTP and MQTT merged), with their fields; a keepalive timeout is recorded as
one; `gizctl device show` has the connection's peer, keepalive and protocol
level; the live stream delivers an MQTT event; the retention bounds hold under
a flood of device logs and publishes (rows counted in the SQLite file, every
event either kept or counted as dropped, queue drops included); one /metrics
scrape carries the broker's gizcloud_broker_* series with the scenario's
values and passes `promtool check metrics`."""
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import PINGREQ, RawClient, _varint, new_user  # noqa: E402
from test_gservice_events import download, gizctl, ota41, path_of, sse_read  # noqa: E402

PING_MAX = 5
PROMTOOL = "/usr/bin/promtool"


def frame(cmd, body=b""):
    """A Gizwits v4 frame: 00000003 | varint(len) | flag 00 | cmd | body."""
    inner = b"\x00" + struct.pack(">H", cmd) + body
    return b"\x00\x00\x00\x03" + _varint(len(inner)) + inner


def events(cloud, did, query=""):
    st, body = cloud.json("GET", "/admin/devices/%s/events%s" % (did, query), admin=True)
    return body.get("events", []) if st == 200 else []


def wait_events(cloud, did, pred, tries=100):
    """Bounded polling until pred(events) holds; returns the last list."""
    evs = []
    for _ in range(tries):
        evs = events(cloud, did, "?limit=1000")
        if pred(evs):
            return evs
        time.sleep(0.1)
    return evs


def poll(pred, tries=100, pause=0.1):
    for _ in range(tries):
        v = pred()
        if v:
            return v
        time.sleep(pause)
    return None


def scrape(cloud):
    st, _, body = cloud.http("GET", "/metrics")
    return body.decode() if st == 200 else ""


def value(text, series):
    # the broker's series carry broker="<name>" (schema 012's registry); one broker here
    text = re.sub(r'\{broker="[^"]*"\}', "", text)
    text = re.sub(r'\{broker="[^"]*",', "{", text)
    m = re.search(r"^%s (\S+)$" % re.escape(series), text, re.M)
    return float(m.group(1)) if m else None


def login(cloud, did, passcode, keepalive):
    c = RawClient(cloud.mqtt_port)
    rc = c.connect(did, did, passcode, keepalive=keepalive)
    return c, rc


def check_scenario(c, cloud):
    pk = cloud.create_product("timeline")["product_key"]
    image = bytes(range(256)) * 8
    cloud.upload_firmware(pk, 1, "04020099", image, hard_version="HW1")
    passcode = "pcTimeline"
    did = cloud.register_device(pk, "A1B2C3D4E5F6", passcode)
    s, _, _ = cloud.http("GET", "/dev/devices/%s" % did)
    c.eq(s, 200, "provision")
    st, _, body, _ = cloud.firmware_exchange(ota41(did, passcode, "04020001"))
    c.eq(st, 200, "ota check offers an update")
    m = re.search(rb"download_url=(\S+)\r\n", body)
    url = m.group(1).decode() if m else ""
    s, data = download(cloud, path_of(url))
    c.eq((s, len(data)), (200, len(image)), "download")
    # the HTTP events are written by the GService's writer: wait for the
    # download before the MQTT part, so the merged order is the real one
    http = wait_events(cloud, did, lambda e: any(x["kind"] == "download" for x in e))
    c.eq([e["kind"] for e in http], ["register", "provision", "ota_check", "download"],
         "the HTTP half first")

    # a wrong passcode: connack_refused
    bad, rc = login(cloud, did, "wrongpass1", 60)
    c.eq(rc, 5, "wrong passcode refused (CONNACK 5)")
    bad.close()

    dev, rc = login(cloud, did, passcode, 1200)  # asks more than keepalive_max (600)
    c.eq(rc, 0, "device logs in")
    for i, topic in enumerate(["ser2cli_res/" + did, "app2dev/%s/#" % did, "ser2cli_noti/" + pk]):
        c.eq(dev.subscribe(topic, mid=i + 1), 0, "subscribe %s granted" % topic)
    c.eq(dev.subscribe("dev2app/#", mid=9), 0x80, "a foreign filter is refused")
    biz = frame(0x0091, b"\x01\x02\x03" * 40)  # 120-byte body: payload recorded up to 64 bytes
    dev.publish("dev2app/" + did, biz)
    dev.publish("dev2app/" + did, frame(0x0093, struct.pack(">I", 0x01020304) + b"\x05"))
    dev.publish("ser2cli_req", frame(0x020F))
    got = dev.read_publish(timeout=5)
    c.ok(got is not None and got[1] == b"\x00\x00\x00\x03\x02\x10\x00\x00", "the 0x020F answer: %r" % (got,))
    dev.publish("dev2app/SOMEONEELSESDID0000000", frame(0x0091, b"\x09"))  # ACL-denied
    for _ in range(PING_MAX + 1):
        dev.send(PINGREQ)
    c.ok(dev.wait_closed(timeout=10), "the ping limit closes the connection")
    dev.close()

    want = ["register", "provision", "ota_check", "download", "connack_refused", "connect",
            "subscribe", "subscribe", "subscribe", "subscribe", "publish_in", "publish_in",
            "publish_in", "publish_out", "acl_denied", "ping_limit", "disconnect"]
    evs = wait_events(cloud, did, lambda e: any(x["kind"] == "disconnect" for x in e))
    c.eq([e["kind"] for e in evs], want, "exactly those events, in order")
    c.ok(all(evs[i]["id"] < evs[i + 1]["id"] for i in range(len(evs) - 1)), "ids grow")
    c.ok(all(e["source"] == ("http" if i < 4 else "mqtt") for i, e in enumerate(evs)),
         "sources: http then mqtt")
    if [e["kind"] for e in evs] != want:
        return did, pk
    by = evs[4:]
    refused, conn = by[0], by[1]
    c.eq(refused.get("reason"), "wrong passcode", "connack_refused reason")
    c.ok(refused.get("peer", "").startswith("127.0.0.1"), "connack_refused peer %r" % refused.get("peer"))
    c.eq((conn.get("protocol_level"), conn.get("keepalive_asked"), conn.get("keepalive"),
          conn.get("clean_session")), (4, 1200, 600, True), "connect: level, keepalive asked/granted, clean")
    c.ok(re.match(r"^127\.0\.0\.1:\d+$", conn.get("peer", "")) is not None, "connect peer %r" % conn.get("peer"))
    subs = by[2:6]
    c.eq([(s_.get("filter"), s_.get("granted")) for s_ in subs],
         [("ser2cli_res/" + did, True), ("app2dev/%s/#" % did, True), ("ser2cli_noti/" + pk, True),
          ("dev2app/#", False)], "subscribe filters, granted / denied")
    p1, p2, p3, out = by[6], by[7], by[8], by[9]
    c.eq((p1.get("topic"), p1.get("cmd"), p1.get("length"), p1.get("payload"), p1.get("payload_truncated")),
         ("dev2app/" + did, "0x0091", len(biz), biz[:64].hex(), True), "publish_in 0x0091: first 64 bytes as hex")
    c.eq((p2.get("cmd"), p2.get("sn")), ("0x0093", 0x01020304), "publish_in 0x0093 carries the SN")
    c.eq((p3.get("topic"), p3.get("cmd")), ("ser2cli_req", "0x020F"), "publish_in 0x020F")
    c.eq((out.get("topic"), out.get("cmd"), out.get("count"), out.get("from")),
         ("ser2cli_res/" + did, "0x0210", 0, "cloud"), "publish_out 0x0210 with the count")
    den = by[10]
    c.eq((den.get("access"), den.get("topic"), den.get("cmd"), den.get("client")),
         ("publish", "dev2app/SOMEONEELSESDID0000000", "0x0091", "device"), "acl_denied fields")
    pl, bye = by[11], by[12]
    c.eq(pl.get("ping_max"), PING_MAX, "ping_limit: the limit")
    c.eq(bye.get("reason"), "ping limit", "disconnect reason")
    c.ok(isinstance(bye.get("session_ms"), int) and bye["session_ms"] >= 0, "session length %r" % bye.get("session_ms"))
    log = cloud.log_text("mosquitto")
    c.ok(re.search(r"ACL denied publish by client %s on \"dev2app/SOMEONEELSESDID0000000\"" % did, log)
         is not None, "the ACL denial is logged with client and topic")
    # kind filter on the merged timeline
    c.eq([e["kind"] for e in events(cloud, did, "?kind=publish_in")], ["publish_in"] * 3, "kind=publish_in")

    # an app not bound to the device: its denied publish toward it is logged and
    # counted, but never lands on the device's timeline (nobody may push a
    # device's history out of its bound)
    user = new_user(cloud, "tlstranger")
    app = RawClient(cloud.mqtt_port)
    c.eq(app.connect(user["mqtt_client_id"], user["uid"], user["token"]), 0, "unbound app logs in")
    app.publish("app2dev/%s/%s" % (did, user["mqtt_client_id"]), frame(0x0090, b"\x01"))
    c.ok(poll(lambda: re.search(r"ACL denied publish by client %s on \"app2dev/%s/" % (
        user["mqtt_client_id"], did), cloud.log_text("mosquitto")), tries=50) is not None,
        "the app's denial is logged with client and topic")
    app.close()
    time.sleep(0.3)  # more than the writer's gather time
    c.eq(len(events(cloud, did, "?limit=1000")), len(want), "the app's denial is not on the device's timeline")
    return did, pk


def check_keepalive_and_show(c, cloud, pk):
    """A silent client is dropped by mosquitto after 1.5 x keepalive: the
    timeline says keepalive_timeout; device show has the connection."""
    did = cloud.register_device(pk, "A1B2C3D4E5F7", "pcTimeline2")
    dev, rc = login(cloud, did, "pcTimeline2", 1)
    c.eq(rc, 0, "second device logs in with keepalive 1")
    rc_, out, err = gizctl(cloud, "device", "show", did)
    fields = dict(l.split(None, 1) for l in out.splitlines() if len(l.split(None, 1)) == 2)
    show = poll(lambda: (lambda f: f if f.get("keepalive") == "1" else None)(
        dict(l.split(None, 1) for l in gizctl(cloud, "device", "show", did)[1].splitlines()
             if len(l.split(None, 1)) == 2)), tries=50) or fields
    c.eq(rc_, 0, "gizctl device show (%s)" % err.strip())
    c.eq((show.get("keepalive"), show.get("protocol_level")), ("1", "4"), "device show: keepalive, protocol level")
    c.ok(re.match(r"^127\.0\.0\.1:\d+$", show.get("peer", "")) is not None, "device show: peer %r" % show.get("peer"))
    c.ok(show.get("connected_since", "null") not in ("null", "-", ""), "device show: connected since %r"
         % show.get("connected_since"))
    c.ok(dev.wait_closed(timeout=10), "mosquitto drops the silent client")
    dev.close()
    evs = wait_events(cloud, did, lambda e: any(x["kind"] == "disconnect" for x in e))
    kinds = [e["kind"] for e in evs]
    c.eq(kinds[-3:], ["connect", "keepalive_timeout", "disconnect"], "keepalive timeout recorded")
    if len(evs) >= 2:
        c.eq(evs[-1].get("reason"), "keepalive timeout", "disconnect reason: keepalive timeout")
        c.ok(evs[-2].get("idle_ms", 0) >= 1000, "idle time %r" % evs[-2].get("idle_ms"))
    # a clean DISCONNECT
    dev, rc = login(cloud, did, "pcTimeline2", 60)
    dev.send(b"\xe0\x00")
    dev.wait_closed(timeout=5)
    dev.close()
    evs = wait_events(cloud, did, lambda e: [x["kind"] for x in e].count("disconnect") >= 2)
    c.eq(evs[-1].get("reason") if evs else None, "client DISCONNECT", "disconnect reason: DISCONNECT packet")


def check_stream(c, cloud, did_pk):
    did, pk = did_pk
    holder = {}

    def go():
        dev, rc = login(cloud, did, "pcTimeline", 60)
        holder["dev"] = dev
        dev.publish("dev2app/" + did, frame(0x0091, b"\x42"))

    s, evs = sse_read(cloud, "/admin/events/stream?did=%s" % did, want=2, after=go, timeout=15)
    c.eq(s, 200, "stream opens")
    c.eq([e.get("kind") for e in evs], ["connect", "publish_in"], "the stream delivers live MQTT events")
    c.ok(all(e.get("source") == "mqtt" for e in evs), "stream events are the broker's")
    if "dev" in holder:
        holder["dev"].close()


def check_metrics(c, cloud):
    def ready():
        t = scrape(cloud)
        ok = (value(t, 'gizcloud_broker_ping_limit_closes_total') or 0) >= 1 and \
             (value(t, 'gizcloud_broker_messages_in_total{cmd="0x0091"}') or 0) >= 3 and \
             (value(t, 'gizcloud_broker_acl_denials_total{access="publish"}') or 0) >= 2 and \
             (value(t, 'gizcloud_broker_disconnects_total{reason="keepalive"}') or 0) >= 1 and \
             value(t, "gizcloud_broker_apps_connected") == 0
        return t if ok else None
    text = poll(ready, tries=150) or scrape(cloud)
    c.ok(value(text, "gizcloud_broker_ping_limit_closes_total") == 1, "one ping-limit close")
    c.ok((value(text, 'gizcloud_broker_logins_total{result="ok"}') or 0) >= 3, "logins ok")
    c.ok((value(text, 'gizcloud_broker_logins_total{result="refused"}') or 0) >= 1, "logins refused")
    c.eq(value(text, 'gizcloud_broker_acl_denials_total{access="publish"}'), 2.0,
         "two ACL-denied publishes (the device's, the app's)")
    c.eq(value(text, 'gizcloud_broker_acl_denials_total{access="subscribe"}'), 1.0, "one ACL-denied subscribe")
    c.ok((value(text, 'gizcloud_broker_messages_in_total{cmd="0x0093"}') or 0) >= 1, "0x0093 in")
    c.ok((value(text, 'gizcloud_broker_messages_out_total{cmd="0x0210"}') or 0) >= 1, "0x0210 out")
    c.ok((value(text, "gizcloud_broker_events_written_total") or 0) >= 20, "events written")
    c.eq(value(text, "gizcloud_broker_events_dropped_total"), 0.0, "no events dropped here")
    c.ok(value(text, "gizcloud_broker_devices_connected") is not None, "devices connected gauge")
    c.ok(value(text, "gizcloud_broker_apps_connected") == 0, "apps connected gauge (the app left)")
    c.ok(value(text, 'gizcloud_broker_disconnects_total{reason="keepalive"}') == 1, "keepalive disconnects")
    c.ok(value(text, "gizcloud_http_requests_total") is None and "gizcloud_http_requests_total{" in text,
         "the GService's own series in the same scrape")
    # the broker's series alone pass promtool's parser and linter
    broker = "".join(l + "\n" for l in text.splitlines()
                     if l.startswith("gizcloud_broker_") or l.startswith("# HELP gizcloud_broker_")
                     or l.startswith("# TYPE gizcloud_broker_"))
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=broker.encode(), capture_output=True, timeout=30)
    c.eq(p.returncode, 0, "promtool check metrics, broker series: %s" % (p.stdout + p.stderr).decode()[-500:])
    # the whole scrape parses; any lint remark is about another component's series
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode()
    c.ok("error while linting" not in out and "parse" not in out.lower(), "the whole scrape parses: %s" % out[-300:])
    c.ok(not re.search(r"^gizcloud_broker_", out, re.M), "no lint remark on broker series: %s" % out[-300:])
    if p.returncode != 0:
        print("note: promtool remarks on the whole scrape (not broker series): %s" % out.strip()[-300:])


def db_counts(path):
    con = sqlite3.connect(path, timeout=30)
    try:
        per = dict(con.execute("SELECT did, count(*) FROM events WHERE source = 'mqtt' GROUP BY did"))
        total = con.execute("SELECT count(*) FROM events").fetchone()[0]
        drops = dict(((r, n) for r, n in con.execute(
            "SELECT reason, sum(n) FROM event_drops WHERE source = 'mqtt' GROUP BY reason")))
    finally:
        con.close()
    return per, total, drops


def flood(cloud, pk, n_devices, n_each, tag):
    """Devices publish n_each 0x0012 logs and n_each business messages each;
    returns the MQTT events that caused: connect + 2 n_each publish_in each
    + disconnect."""
    devs = []
    for i in range(n_devices):
        did = cloud.register_device(pk, "B%d%010d" % (tag, i), "pcFlood%d" % i)
        dev, rc = login(cloud, did, "pcFlood%d" % i, 60)
        if rc != 0:
            raise RuntimeError("flood login refused")
        devs.append((did, dev))
    for did, dev in devs:
        logrec = frame(0x0012, b"\x03" + b"\x00\x03tag" + b"\x00\x03src" + b"\x00\x05hello")
        burst = b"".join(__import__("plugin_mqtt").publish_packet("dev2app/" + did, logrec)
                         for _ in range(n_each))
        # numbered business messages: which ones the bound kept, and in what order
        burst += b"".join(__import__("plugin_mqtt").publish_packet(
            "dev2app/" + did, frame(0x0091, b"\x01" + struct.pack(">H", k))) for k in range(n_each))
        dev.send(burst)
    for did, dev in devs:
        dev.send(b"\xe0\x00")
        dev.wait_closed(timeout=10)
        dev.close()
    return n_devices * (2 * n_each + 2)


def check_retention(c):
    """Small bounds (the GService's and the plugin's the same), a flood: per
    device and total bounds hold in the SQLite file, and every MQTT event is
    either a row or counted in event_drops."""
    per_device, total = 47, 300  # (a bound that does not divide the flood)
    env = {"GIZ_EVENTS_PER_DEVICE": str(per_device), "GIZ_EVENTS_TOTAL": str(total)}
    opts = {"events_per_device": per_device, "events_total": total}
    with harness.Cloud(gservice_env=env, plugin_opts=opts) as cloud:
        pk = cloud.create_product("flood")["product_key"]
        made = flood(cloud, pk, 4, 500, 1)

        def settled():
            per, tot, drops = db_counts(cloud.db_path)
            kept = sum(per.values())
            pruned = drops.get("device", 0) + drops.get("total", 0)
            return (per, tot, drops) if kept + pruned + drops.get("queue", 0) == made and \
                tot <= total and all(v <= per_device for v in per.values()) else None
        got = poll(settled, tries=150)
        per, tot, drops = got or db_counts(cloud.db_path)
        c.ok(got is not None, "every flood event kept or counted: %d made, rows %r, drops %r" % (made, per, drops))
        c.ok(all(v <= per_device for v in per.values()), "per-device bound %d holds: %r" % (per_device, per))
        c.ok(tot <= total, "total bound %d holds: %d rows" % (total, tot))
        c.ok(drops.get("device", 0) > 0, "per-device prunes counted: %r" % drops)
        # the newest events are the ones kept, in the order they happened
        # (a flooding device's queued publishes are replaced in place: the
        # writer puts them back in order)
        newest = list(range(500 - (per_device - 1), 500))
        for did in sorted(per):
            con = sqlite3.connect(cloud.db_path, timeout=30)
            try:
                rows = con.execute("SELECT kind, ts, fields FROM events WHERE did = ? AND "
                                   "source = 'mqtt' ORDER BY id", (did,)).fetchall()
            finally:
                con.close()
            nums = [int(json.loads(f)["payload"][-4:], 16) for k, _, f in rows[:-1]
                    if k == "publish_in" and json.loads(f).get("cmd") == "0x0091"]
            c.ok(len(rows) == per_device and rows[-1][0] == "disconnect" and nums == newest and
                 all(rows[i][1] <= rows[i + 1][1] for i in range(len(rows) - 1)),
                 "%s keeps its newest %d events in order: %r ... %r" % (
                     did, per_device, [r[0] for r in rows[:2]], nums[-3:]))
        codes = cloud.stop()
        c.eq(codes.get("mosquitto"), 0, "broker stops cleanly (ASan/UBSan clean)")

    # a one-slot queue (the writer gathers 20 ms per batch): a burst overflows it;
    # the overflow is counted, nothing is lost silently
    opts = {"events_queue": 1}
    with harness.Cloud(plugin_opts=opts) as cloud:
        pk = cloud.create_product("queue")["product_key"]
        made = flood(cloud, pk, 1, 400, 2)

        def settled():
            per, tot, drops = db_counts(cloud.db_path)
            return (per, drops) if sum(per.values()) + sum(drops.values()) == made else None
        got = poll(settled, tries=200)
        per, drops = got if got else db_counts(cloud.db_path)[::2]
        c.ok(got is not None, "queue drops counted: %d made, rows %r, drops %r" % (made, per, drops))
        c.ok(drops.get("queue", 0) > 0, "the full queue dropped events and counted them: %r" % drops)
        c.ok(0 < sum(per.values()) < made, "some written, some dropped: %r of %d" % (per, made))


def check_off(c):
    """plugin_opt_events 0: no MQTT events, the broker still works."""
    with harness.Cloud(plugin_opts={"events": 0}) as cloud:
        pk = cloud.create_product("off")["product_key"]
        did = cloud.register_device(pk, "C1C2C3C4C5C6", "pcOff12345")
        dev, rc = login(cloud, did, "pcOff12345", 60)
        c.eq(rc, 0, "events off: login works")
        dev.publish("dev2app/" + did, frame(0x0091, b"\x01"))
        dev.send(b"\xe0\x00")
        dev.wait_closed(timeout=5)
        dev.close()
        evs = wait_events(cloud, did, lambda e: len(e) >= 1)
        time.sleep(0.5)
        evs = events(cloud, did)
        c.eq([e["source"] for e in evs], ["http"], "events off: only the GService's register")


def check_writer_killed(c):
    """The timeline writer is a child process of the broker ("giz-events"):
    killed, the broker keeps routing messages, says why in its log, turns
    MQTT events off (its metrics say so) and still stops cleanly."""
    import signal
    with harness.Cloud() as cloud:
        bpid = cloud.broker.pid
        with open("/proc/%d/task/%d/children" % (bpid, bpid)) as f:
            kids = [int(k) for k in f.read().split()]
        names = {}
        for k in kids:
            with open("/proc/%d/comm" % k) as f:
                names[k] = f.read().strip()
        writer = [k for k, n in names.items() if n == "giz-events"]
        c.eq(len(writer), 1, "the broker has one writer process: %r" % names)
        fds = os.listdir("/proc/%d/fd" % writer[0]) if writer else []
        c.ok(sorted(fds) == ["0", "1", "2", "3"],
             "the writer holds only stdio and its pipe (no client or listener socket): %r" % fds)
        if writer:
            os.kill(writer[0], signal.SIGKILL)
        pk = cloud.create_product("writerkill")["product_key"]
        did = cloud.register_device(pk, "C1C2C3C4C5C6", "pcWriterKill")
        dev, rc = login(cloud, did, "pcWriterKill", 60)
        c.eq(rc, 0, "a device logs in after the writer died")
        c.eq(dev.subscribe("app2dev/%s/#" % did), 0, "it subscribes")
        gone = poll(lambda: "timeline writer" in cloud.log_text("mosquitto") and
                    "is gone" in cloud.log_text("mosquitto") or None, tries=60)
        c.ok(gone, "the broker logs that the writer is gone")
        for _ in range(50):
            dev.publish("dev2app/" + did, frame(0x0091, b"\x01"))
        dev.send(PINGREQ)
        c.ok(dev.read_packet(3.0) is not None, "the broker still answers the device")
        dev.send(b"\xe0\x00")
        dev.wait_closed(timeout=5)
        dev.close()
        codes = cloud.stop()
        c.eq(codes.get("mosquitto"), 0, "broker stops cleanly without its writer (ASan/UBSan clean)")


def check_shutdown(c):
    """SIGTERM to the broker with devices connected: mosquitto closes them
    without a DISCONNECT event of its own; each session still gets its
    disconnect event (reason "broker shutdown", session length), written
    before the plugin's writer exits, read back through the GService."""
    import signal
    with harness.Cloud() as cloud:
        pk = cloud.create_product("shutdown")["product_key"]
        devs = []
        for i in range(3):
            did = cloud.register_device(pk, "D1D2D3D4D5%02d" % i, "pcShut%04d" % i)
            dev, rc = login(cloud, did, "pcShut%04d" % i, 60)
            c.eq(rc, 0, "device %d logs in" % i)
            devs.append((did, dev))
        devs[0][1].publish("dev2app/" + devs[0][0], frame(0x0091, b"\x01"))
        # the third device logs in again: its first session is taken over
        again, rc = login(cloud, devs[2][0], "pcShut0002", 60)
        c.eq(rc, 0, "device 2 logs in again")
        c.ok(devs[2][1].wait_closed(timeout=10), "the older session is closed")
        devs[2][1].close()
        devs[2] = (devs[2][0], again)
        held = time.monotonic()
        time.sleep(0.3)
        cloud.broker.send_signal(signal.SIGTERM)
        try:
            code = cloud.broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        held_ms = int((time.monotonic() - held) * 1000)
        c.eq(code, 0, "broker stops on SIGTERM (ASan/UBSan clean)")
        for did, dev in devs:
            c.ok(dev.wait_closed(timeout=5), "the broker closed %s" % did)
            dev.close()
        for i, (did, _) in enumerate(devs):
            evs = events(cloud, did, "?limit=1000")  # already written: the writer flushed at exit
            kinds = [e["kind"] for e in evs if e["source"] == "mqtt"]
            want = ["connect", "publish_in", "disconnect"] if i == 0 else ["connect", "disconnect"]
            if i == 2:
                want = ["connect", "connect", "disconnect", "disconnect"]
                c.eq([e.get("reason") for e in evs if e["kind"] == "disconnect"][:1],
                     ["taken over by a new login"], "%s: the first session was taken over" % did)
            c.eq(kinds, want, "%s: its session ends with a disconnect at shutdown" % did)
            bye = evs[-1] if evs else {}
            c.eq(bye.get("reason"), "broker shutdown", "%s: disconnect reason" % did)
            c.ok(isinstance(bye.get("session_ms"), int) and bye["session_ms"] >= 250,
                 "%s: session length %r ms (held >= %d ms)" % (did, bye.get("session_ms"), held_ms))
        st, _ = cloud.json("GET", "/admin/devices/%s/events" % devs[0][0], admin=True)
        c.eq(st, 200, "the GService answers after the broker stopped")


def main():
    c = harness.Checker("timeline_mqtt")
    with harness.Cloud(plugin_opts={"ping_max": PING_MAX, "ping_window": 600}) as cloud:
        did_pk = check_scenario(c, cloud)
        check_keepalive_and_show(c, cloud, did_pk[1])
        check_stream(c, cloud, did_pk)
        check_metrics(c, cloud)
        codes = cloud.stop()
        c.eq(codes.get("mosquitto"), 0, "broker stops cleanly (ASan/UBSan clean)")
        c.eq(codes.get("gservice"), 0, "gservice stops cleanly")
    check_shutdown(c)
    check_writer_killed(c)
    check_retention(c)
    check_off(c)
    c.done()


if __name__ == "__main__":
    main()
