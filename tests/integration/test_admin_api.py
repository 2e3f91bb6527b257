# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Admin API completeness (issue 15) against the real GService and the real
mosquitto + plugin: an operator-disabled device's live MQTT session is
kicked, its logins and provision are refused (403/9023), it keeps its DID and
stays disabled when it registers again; enable lets it back in; kick closes
the session and nothing else; delete removes the device, its bindings and
logs (provision 404/9014, MQTT login refused, the app's bindings without it),
keeps its timeline, and a new registration gets a new DID; without a broker a
kick is 503 while a disable still takes effect; firmware show and
delete (the hosted file goes, downloads 404, OTA checks stop offering it);
limit/offset/total on the products, devices, firmware and device-log lists,
bad paging values 400; every new route needs the admin token; and the
gizctl commands for all of it (device disable/enable/kick/delete, firmware
show/delete, --limit/--offset with the total)."""
import os
import sqlite3
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import RawClient, bind, device_client, new_mac, new_user  # noqa: E402
from test_tools_cli import Ctl  # noqa: E402

ck = harness.Checker("admin_api")


def wait_for(fn, tries=100, sleep=0.1):
    for _ in range(tries):
        if fn():
            return True
        time.sleep(sleep)
    return False


def device(cloud, did):
    return cloud.json("GET", "/admin/devices/" + did, admin=True)


def online(cloud, did):
    s, d = device(cloud, did)
    return s == 200 and d.get("online") is True


def provision(cloud, did):
    s, _, body = cloud.http("GET", "/dev/devices/" + did)
    return s, body.decode(errors="replace")


def mqtt_login(cloud, did, passcode):
    """CONNACK return code of a fresh device login (None: no CONNACK)."""
    c = RawClient(cloud.mqtt_port)
    try:
        return c.connect(did, did, passcode, keepalive=60)
    finally:
        c.close()


def log_record(n):
    content = ("record %d" % n).encode()
    body = (bytes([3]) + struct.pack(">H", 3) + b"net" + struct.pack(">H", 6) + b"gagent"
            + struct.pack(">H", len(content)) + content)
    rest = b"\x00\x00\x12" + body
    return b"\x00\x00\x00\x03" + bytes([len(rest)]) + rest


def check_page(c, cloud, path, key, n_expected, label):
    """Pages through a list two at a time and compares with the whole list."""
    sep = "&" if "?" in path else "?"
    s, whole = cloud.json("GET", path + sep + "limit=1000", admin=True)
    c.eq(s, 200, "%s: whole list" % label)
    items = whole.get(key, [])
    c.eq(len(items), n_expected, "%s: %d entries" % (label, n_expected))
    c.eq(whole.get("total"), n_expected, "%s: total %d" % (label, n_expected))
    seen = []
    for off in range(0, n_expected + 2, 2):
        s, page = cloud.json("GET", "%s%slimit=2&offset=%d" % (path, sep, off), admin=True)
        c.eq(s, 200, "%s: page at offset %d" % (label, off))
        c.eq(page.get("total"), n_expected, "%s: total on the page at offset %d" % (label, off))
        c.eq((page.get("limit"), page.get("offset")), (2, off), "%s: limit/offset echoed" % label)
        seen += page.get(key, [])
    c.eq(seen, items, "%s: the pages put together are the whole list, in order" % label)
    for bad in ("limit=0", "limit=x", "limit=99999", "offset=-1", "offset=abc"):
        s, e = cloud.json("GET", path + sep + bad, admin=True)
        c.ok(s == 400 and e.get("error") == "bad_request", "%s: %s -> 400 (%s)" % (label, bad, s))


with harness.Cloud(broker=True) as cloud:
    ctl = Ctl(cloud)
    pk = cloud.create_product("admin")["product_key"]
    mac_a, pc_a = new_mac(), "pcAdminA1"
    did_a = cloud.register_device(pk, mac_a, pc_a)

    # -- the new routes need the admin token ------------------------------------------------
    for method, path in (("POST", "/admin/devices/%s/disable" % did_a),
                         ("POST", "/admin/devices/%s/enable" % did_a),
                         ("POST", "/admin/devices/%s/kick" % did_a),
                         ("DELETE", "/admin/devices/" + did_a),
                         ("GET", "/admin/firmware/1"), ("DELETE", "/admin/firmware/1")):
        s, _, _ = cloud.http(method, path)
        ck.eq(s, 401, "%s %s without the token -> 401" % (method, path))
    ck.ok(online(cloud, did_a) is False and device(cloud, did_a)[0] == 200, "device A still there")

    # -- disable: the live session is kicked, logins and provision refused ------------------
    dev = device_client(cloud, did_a, pc_a)
    ck.ok(wait_for(lambda: online(cloud, did_a)), "device A online over MQTT")
    s, d = cloud.json("POST", "/admin/devices/%s/disable" % did_a, admin=True)
    ck.eq(s, 200, "disable -> 200")
    ck.eq((d.get("status"), d.get("disabled_by"), d.get("changed")), ("disabled", "admin", True),
          "disable answer: status disabled, by the admin, changed")
    ck.ok(isinstance(d.get("disabled_at"), (int, float)) and d["disabled_at"] > 0, "disabled_at set")
    ck.ok(dev.wait_closed(10), "the disabled device's live MQTT session is closed")
    dev.close()
    ck.ok(wait_for(lambda: "device %s disabled, live session closed" % did_a
                   in cloud.log_text("mosquitto")), "the broker logged the kick")
    rc = mqtt_login(cloud, did_a, pc_a)
    ck.ok(rc is not None and rc != 0, "a disabled device's MQTT login is refused (CONNACK %r)" % rc)
    s, body = provision(cloud, did_a)
    ck.ok(s == 403 and "error_code=9023" in body, "provision of a disabled device: 403/9023 (%s %r)"
          % (s, body))
    again = cloud.register_device(pk, mac_a, pc_a)
    ck.eq(again, did_a, "registering again (same MAC + passcode) keeps the DID")
    ck.eq(provision(cloud, did_a)[0], 403, "... and it stays disabled")
    s, d = device(cloud, did_a)
    ck.eq((d.get("status"), d.get("disabled_by")), ("disabled", "admin"), "device show: disabled by admin")
    s, d = cloud.json("POST", "/admin/devices/%s/disable" % did_a, admin=True)
    ck.ok(s == 200 and d.get("changed") is False, "disable again: 200, changed false")

    # -- enable lets it back ------------------------------------------------------------------
    s, d = cloud.json("POST", "/admin/devices/%s/enable" % did_a, admin=True)
    ck.ok(s == 200 and d.get("status") == "active" and d.get("changed") is True
          and d.get("disabled_by") is None, "enable -> 200 active, changed (%s %r)" % (s, d))
    ck.eq(provision(cloud, did_a)[0], 200, "provision after enable: 200")
    dev = device_client(cloud, did_a, pc_a)  # raises if refused
    ck.ok(wait_for(lambda: online(cloud, did_a)), "enabled device logs in again")
    s, d = cloud.json("POST", "/admin/devices/%s/enable" % did_a, admin=True)
    ck.ok(s == 200 and d.get("changed") is False, "enable again: changed false")

    # -- kick drops the connection and nothing else ------------------------------------------
    s, d = cloud.json("POST", "/admin/devices/%s/kick" % did_a, admin=True)
    ck.ok(s == 202 and d.get("changed") is True and d.get("status") == "active",
          "kick -> 202, it was online, still active (%s %r)" % (s, d))
    ck.ok(dev.wait_closed(10), "kick closes the live session")
    dev.close()
    ck.ok(wait_for(lambda: not online(cloud, did_a)), "kicked device offline")
    dev = device_client(cloud, did_a, pc_a)
    ck.ok(wait_for(lambda: online(cloud, did_a)), "a kicked device may log in again")
    for verb in ("disable", "enable", "kick"):
        s, e = cloud.json("POST", "/admin/devices/%s/%s" % ("A" * 22, verb), admin=True)
        ck.ok(s == 404 and e.get("error") == "not_found", "%s of an unknown DID -> 404" % verb)
        s, e = cloud.json("POST", "/admin/devices/%s/%s" % ("bad!did", verb), admin=True)
        ck.eq(s, 404, "%s of a malformed DID -> 404" % verb)
    s, _, _ = cloud.http("GET", "/admin/devices/%s/kick" % did_a, admin=True)
    ck.eq(s, 405, "GET on kick -> 405")

    # -- delete: bindings, logs go; timeline stays; provision 404/9014 ----------------------
    alice = new_user(cloud, "alice")
    bind(cloud, alice, did_a, pc_a)
    for i in range(5):
        dev.publish("dev2app/" + did_a, log_record(i))

    def n_logs():
        s, b = cloud.json("GET", "/admin/devices/%s/logs" % did_a, admin=True)
        return len(b.get("logs", [])) if s == 200 else -1
    ck.ok(wait_for(lambda: n_logs() == 5), "five log records stored")
    check_page(ck, cloud, "/admin/devices/%s/logs" % did_a, "logs", 5, "device logs")
    s, b = cloud.json("GET", "/admin/devices/%s/logs?limit=2" % did_a, admin=True)
    newest = b.get("logs", [{}])[0].get("id", 0)
    s, b = cloud.json("GET", "/admin/devices/%s/logs?before=%d" % (did_a, newest), admin=True)
    ck.eq((len(b.get("logs", [])), b.get("total")), (4, 4), "logs before the newest: 4, total 4")
    s, ev = cloud.json("GET", "/admin/devices/%s/events" % did_a, admin=True)
    n_events = len(ev.get("events", []))
    ck.ok(n_events >= 3, "the device has timeline events (%d)" % n_events)

    s, d = cloud.json("DELETE", "/admin/devices/" + did_a, admin=True)
    ck.ok(s == 200 and d.get("deleted") is True and d.get("bindings_removed") == 1,
          "delete -> 200, one binding removed (%s %r)" % (s, d))
    ck.ok(dev.wait_closed(10), "delete closes the live session")
    dev.close()
    s, e = device(cloud, did_a)
    ck.ok(s == 404 and e.get("error") == "not_found", "the deleted device is gone (404)")
    s, body = provision(cloud, did_a)
    ck.ok(s == 404 and "error_code=9014" in body, "provision of a deleted DID: 404/9014 (%s %r)"
          % (s, body))
    rc = mqtt_login(cloud, did_a, pc_a)
    ck.ok(rc is not None and rc != 0, "a deleted device's MQTT login is refused (CONNACK %r)" % rc)
    s, b = cloud.json("GET", "/app/bindings", headers={"X-Gizwits-User-token": alice["token"]})
    ck.ok(s == 200 and did_a not in [x.get("did") for x in b.get("devices", [])],
          "the app's bindings no longer list it")
    s, b = cloud.json("GET", "/admin/devices/%s/logs" % did_a, admin=True)
    ck.eq(s, 404, "its logs are gone with it (404)")
    s, ev = cloud.json("GET", "/admin/devices/%s/events" % did_a, admin=True)
    ck.ok(s == 200 and len(ev.get("events", [])) >= n_events, "its timeline stays (%s)" % s)
    db = sqlite3.connect("file:%s?mode=ro" % cloud.db_path, uri=True, timeout=10)
    for table in ("devices", "bindings", "device_logs", "device_info"):
        n = db.execute("SELECT count(*) FROM %s WHERE did = ?" % table, (did_a,)).fetchone()[0]
        ck.eq(n, 0, "no %s rows of the deleted device left in the database" % table)
    n = db.execute("SELECT count(*) FROM events WHERE did = ?", (did_a,)).fetchone()[0]
    ck.ok(n >= n_events, "its events stay in the database (%d)" % n)
    db.close()
    s, _ = cloud.json("DELETE", "/admin/devices/" + did_a, admin=True)
    ck.eq(s, 404, "deleting it again -> 404")
    did_new = cloud.register_device(pk, mac_a, pc_a)
    ck.ok(did_new != did_a, "the firmware registering again gets a new DID")
    ck.eq(provision(cloud, did_new)[0], 200, "... which provisions")

    # -- firmware show and delete ---------------------------------------------------------------
    fw1 = cloud.upload_firmware(pk, 1, "04020001", b"\x01" * 3000, filename="one.bin")
    fw2 = cloud.upload_firmware(pk, 1, "04020002", b"\x02" * 3000, filename="two.bin")
    s, ext = cloud.json("POST", "/admin/firmware", {"product_key": pk, "type": 2,
                                                     "soft_version": "0300", "url": "http://fw.example/m.bin"},
                        admin=True)
    ck.eq(s, 201, "external firmware registered")
    s, one = cloud.json("GET", "/admin/firmware/%d" % fw2["id"], admin=True)
    ck.ok(s == 200 and one == fw2, "GET /admin/firmware/<id> answers the upload's object")
    files = os.listdir(os.path.join(cloud.dir, "firmware"))
    ck.eq(len([f for f in files if f.endswith(".bin")]), 2, "two hosted files on disk")

    def ota_offer(soft):
        body = ("passcode=%s&type=1&hard_version=HW&soft_version=%s" % (pc_a, soft)).encode()
        req = (("POST /dev/ota/v4.1/update_and_check/%s HTTP/1.1\r\nHost: x\r\n" % did_new).encode()
               + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
        return cloud.firmware_exchange(req)
    st, _, body, _ = ota_offer("04020000")
    ck.ok(st == 200 and b"soft_ver=04020002" in body, "OTA check offers 04020002 first")
    s, d = cloud.json("DELETE", "/admin/firmware/%d" % fw2["id"], admin=True)
    ck.ok(s == 200 and d.get("deleted") is True and d.get("file_removed") is True
          and d.get("id") == fw2["id"], "firmware delete -> 200, hosted file removed (%s %r)" % (s, d))
    files = os.listdir(os.path.join(cloud.dir, "firmware"))
    ck.eq(len([f for f in files if f.endswith(".bin")]), 1, "one hosted file left on disk")
    s, _ = cloud.json("GET", "/admin/firmware/%d" % fw2["id"], admin=True)
    ck.eq(s, 404, "the deleted firmware: GET 404")
    s, _, _ = cloud.http("GET", "/dev/ota/v4.1/download/%d" % fw2["id"])
    ck.eq(s, 404, "its download: 404")
    st, _, body, _ = ota_offer("04020000")
    ck.ok(st == 200 and b"soft_ver=04020001" in body, "OTA check now offers 04020001 (%r)" % body[:80])
    s, d = cloud.json("DELETE", "/admin/firmware/%d" % ext["id"], admin=True)
    ck.ok(s == 200 and d.get("file_removed") is False, "external firmware delete: no file to remove")
    for bad in ("0", "abc", "-1", "99999999", "1x"):
        s, e = cloud.json("DELETE", "/admin/firmware/" + bad, admin=True)
        ck.ok(s == 404 and e.get("error") == "not_found", "DELETE /admin/firmware/%s -> 404" % bad)

    # -- paging with total on every list -------------------------------------------------------
    pk2 = cloud.create_product("paging")["product_key"]
    for i in range(3):
        cloud.create_product("extra %d" % i)
    s, b = cloud.json("GET", "/admin/products", admin=True)
    n_products = len(b.get("products", []))
    ck.eq(n_products, 5, "five products")
    check_page(ck, cloud, "/admin/products", "products", 5, "products")
    dids = [cloud.register_device(pk2, new_mac(), "pcPage%02d" % i) for i in range(5)]
    check_page(ck, cloud, "/admin/devices?product_key=" + pk2, "devices", 5, "devices of a product")
    s, b = cloud.json("GET", "/admin/devices?product_key=%s&limit=2&offset=1" % pk2, admin=True)
    ck.eq([x["did"] for x in b.get("devices", [])], dids[1:3], "devices page = registration order")
    check_page(ck, cloud, "/admin/devices", "devices", 6, "all devices")
    for i in range(3):
        cloud.upload_firmware(pk2, 2, "0500%02d" % i, b"\x05" * 100)
    check_page(ck, cloud, "/admin/firmware?product_key=" + pk2, "firmware", 3, "firmware of a product")
    check_page(ck, cloud, "/admin/firmware", "firmware", 4, "all firmware")

    # -- gizctl ---------------------------------------------------------------------------------
    dev_b, pc_b = dids[0], "pcPage00"
    conn = device_client(cloud, dev_b, pc_b)
    ck.ok(wait_for(lambda: online(cloud, dev_b)), "device B online")
    rc, docs, err = ctl.json("device", "disable", dev_b)
    ck.ok(rc == 0 and docs and docs[0].get("status") == "disabled", "gizctl device disable (%s)" % err)
    ck.ok(conn.wait_closed(10), "gizctl device disable kicks the session")
    conn.close()
    rc, out, _ = ctl.run("device", "disable", dev_b)
    ck.ok(rc == 0 and "already" in out, "gizctl device disable again says so: %r" % out)
    rc, out, _ = ctl.run("device", "show", dev_b)
    ck.ok(rc == 0 and "disabled_by" in out and "admin" in out, "gizctl device show: disabled_by admin")
    rc, out, _ = ctl.run("device", "enable", dev_b)
    ck.ok(rc == 0 and "enabled" in out, "gizctl device enable: %r" % out)
    conn = device_client(cloud, dev_b, pc_b)
    ck.ok(wait_for(lambda: online(cloud, dev_b)), "device B back online")
    rc, out, _ = ctl.run("device", "kick", dev_b)
    ck.ok(rc == 0 and "kicked" in out, "gizctl device kick: %r" % out)
    ck.ok(conn.wait_closed(10), "gizctl device kick closes the session")
    conn.close()
    rc, _, err = ctl.run("device", "kick", "B" * 22)
    ck.eq(rc, 2, "gizctl device kick of an unknown DID: exit 2 (refused)")
    rc, docs, _ = ctl.json("device", "delete", dev_b)
    ck.ok(rc == 0 and docs and docs[0].get("deleted") is True, "gizctl device delete")
    ck.eq(device(cloud, dev_b)[0], 404, "... the device is gone")
    rc, docs, _ = ctl.json("device", "list", "--product", pk2, "--limit", "2", "--offset", "1")
    ck.ok(rc == 0 and docs and docs[0].get("total") == 4
          and [x["did"] for x in docs[0].get("devices", [])] == dids[2:4],
          "gizctl device list --limit 2 --offset 1: the page and total 4")
    rc, out, _ = ctl.run("device", "list", "--product", pk2, "--limit", "2")
    ck.ok(rc == 0 and "2 of 4 device(s)" in out, "gizctl device list (text) prints 'N of TOTAL': %r"
          % out[-80:])
    rc, docs, _ = ctl.json("product", "list", "--limit", "2", "--offset", "4")
    ck.ok(rc == 0 and docs and docs[0].get("total") == 5 and len(docs[0].get("products", [])) == 1,
          "gizctl product list --limit 2 --offset 4: 1 of 5")
    rc, docs, _ = ctl.json("firmware", "list", "--limit", "1")
    ck.ok(rc == 0 and docs and docs[0].get("total") == 4 and len(docs[0].get("firmware", [])) == 1,
          "gizctl firmware list --limit 1: 1 of 4")
    rc, _, err = ctl.run("device", "list", "--limit", "0")
    ck.eq(rc, 1, "gizctl device list --limit 0: usage error")
    rc, docs, _ = ctl.json("firmware", "show", str(fw1["id"]))
    ck.ok(rc == 0 and docs and docs[0].get("soft_version") == "04020001", "gizctl firmware show")
    rc, out, _ = ctl.run("firmware", "delete", str(fw1["id"]))
    ck.ok(rc == 0 and "deleted" in out and "hosted file removed" in out, "gizctl firmware delete: %r" % out)
    rc, _, _ = ctl.run("firmware", "show", str(fw1["id"]))
    ck.eq(rc, 2, "gizctl firmware show of the deleted one: exit 2 (404)")
    rc, _, _ = ctl.run("firmware", "delete", "x1")
    ck.eq(rc, 1, "gizctl firmware delete x1: usage error")

    codes = cloud.stop()
    ck.eq(codes.get("gservice"), 0, "GService exits 0 (no sanitizer report)")
    ck.eq(codes.get("mosquitto"), 0, "mosquitto exits 0")

# -- without a broker: disable still takes effect in the store, a kick is refused -------------
with harness.Cloud(broker=False) as cloud:
    pk = cloud.create_product("nobroker")["product_key"]
    did = cloud.register_device(pk, new_mac(), "pcNoBroker1")
    s, e = cloud.json("POST", "/admin/devices/%s/kick" % did, admin=True)
    ck.ok(s == 503 and e.get("error") == "broker_unavailable", "kick without a broker -> 503 (%s)" % s)
    s, d = cloud.json("POST", "/admin/devices/%s/disable" % did, admin=True)
    ck.ok(s == 200 and d.get("status") == "disabled" and d.get("broker", {}).get("alive") is False,
          "disable without a broker: 200, disabled, broker alive false")
    ck.eq(provision(cloud, did)[0], 403, "... and provision is refused at once")
    codes = cloud.stop()
    ck.eq(codes.get("gservice"), 0, "GService exits 0 (no broker run)")

ck.done()
