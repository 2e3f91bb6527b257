# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The GService's answers as real firmware reads them (issue 10, GService side):
download URLs without ":80" when devices are told port 80 (v4.1 answer, v4.0
target_fid, the v4.0 push row, external URLs) and one start-up warning otherwise;
every download answer (200 and 206) carrying the headers and the first body bytes
in its first segment (one recv(600) right after the request, 20 times each); the
answers firmware reads with one recv(1024) complete in that one recv; the
Gizwits error_code in the access log; the newer firmware fields (register, safe
register, OTA check) kept and shown in the admin device detail with auth_key
never in clear; a firmware version uploaded twice refused with 409; OTA pushes
that match no firmware saying so.
"""
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FORM_CT = "application/x-www-form-urlencoded"
WARN_KEY = "GIZ_ADVERTISED_HTTP_PORT"


def aes_ecb(key_hex, data, decrypt=False):
    """AES-128-ECB with PKCS#7 via the openssl CLI (no Python AES on this box)."""
    argv = ["openssl", "enc", "-aes-128-ecb", "-K", key_hex, "-nosalt"]
    if decrypt:
        argv.append("-d")
    return subprocess.run(argv, input=data, capture_output=True, check=True).stdout


def post_bytes(path, body):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost:api.gizwits.com\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def get_bytes(path, extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: api.gizwits.com\r\n" + extra + b"\r\n"


def one_recv(port, request, size):
    """Sends `request` and returns what ONE recv(size) gives, taken at once (no sleep)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        return s.recv(size)


def split(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        status = 0
    return status, headers, body, bool(sep)


def fake_broker_alive(db_path):
    """This test runs no broker: write the broker's liveness row as a live broker
    would (a heartbeat in the future counts as fresh), so presence flags and pushes
    are trusted (without one the GService answers 503 broker_unavailable)."""
    now_ms = int(time.time() * 1000)
    db = sqlite3.connect(db_path)
    try:
        db.execute("INSERT OR REPLACE INTO brokers (name, pid, started_at, heartbeat_at, stopped_at) "
                   "VALUES ('broker', 1, ?, ?, NULL)", (now_ms, now_ms + 3600 * 1000))  # schema 012
        db.commit()
    finally:
        db.close()


def log_has(cloud, pattern, tries=50):
    """True once the GService log matches `pattern`: the access line is written
    when the answer is complete, a moment after the client has it."""
    for _ in range(tries):
        if re.search(pattern, cloud.log_text("gservice")):
            return True
        time.sleep(0.05)
    return False


def outbox_urls(db_path):
    db = sqlite3.connect(db_path)
    try:
        return [r[0] for r in db.execute("SELECT url FROM outbox WHERE kind = 1 ORDER BY id")]
    finally:
        db.close()


def check_urls_port80(c):
    """Devices told port 80 (a port-80 forward in front of a GService on a free port)."""
    env = {"GIZ_PUBLIC_URL": "", "GIZ_ADVERTISED_HTTP_PORT": "80"}
    with harness.Cloud(broker=False, gservice_env=env) as cloud:
        fake_broker_alive(cloud.db_path)
        pk = cloud.create_product()["product_key"]
        did = cloud.register_device(pk, "00163E00AA01", "pass80x001")
        fw = cloud.upload_firmware(pk, 1, "04020099", b"\x5a" * 3000)
        fid = fw.get("id")
        c.eq(fw.get("download_url"), "http://127.0.0.1/dev/ota/v4.1/download/%s" % fid,
             "admin answer: v4.1 URL without :80")
        c.eq(fw.get("download_url_v40"), "http://127.0.0.1/dev/ota/download/%s" % fid,
             "admin answer: v4.0 URL without :80")
        st, _, body = cloud.http("POST", "/dev/ota/v4.1/update_and_check/" + did,
                                 form="passcode=pass80x001&type=1&hard_version=H1&soft_version=04020001")
        c.eq((st, body.decode()),
             (200, "soft_ver=04020099&download_url=http://127.0.0.1/dev/ota/v4.1/download/%s?did=%s\r\n"
              % (fid, did)),
             "v4.1 check: URL host is 127.0.0.1, no port (the DID ties the download to the device)")
        st, _, body = cloud.http("GET", "/dev/ota/target_fid?did=%s&product_key=%s&type=1&hard_version=H1"
                                 "&soft_version=04020001&current_fid=1" % (did, pk))
        c.ok(st == 200 and ("&download_url=http://127.0.0.1/dev/ota/download/%s?did=%s&" % (fid, did))
             in body.decode(),
             "v4.0 target_fid: URL without :80 (%r)" % body)
        st, r = cloud.json("POST", "/admin/firmware", {"product_key": pk, "type": 2, "soft_version": "1",
                                                       "url": "http://cdn.example:80/m.bin"}, admin=True)
        c.eq((st, r.get("download_url")), (201, "http://cdn.example/m.bin"),
             "external URL with :80 handed out without it")
        st, r = cloud.json("POST", "/admin/ota/push", {"did": did, "type": 1, "ota_version": 40}, admin=True)
        c.eq(st, 202, "v4.0 push accepted")
        c.eq(outbox_urls(cloud.db_path), ["http://127.0.0.1/dev/ota/download/%s" % fid],
             "0x020E push row carries the URL without :80")
        log = cloud.log_text("gservice")
        c.ok(WARN_KEY not in log, "no port warning when devices are told port 80")
    # an explicit GIZ_PUBLIC_URL naming port 80 is normalised too
    with harness.Cloud(broker=False, gservice_env={"GIZ_PUBLIC_URL": "http://127.0.0.1:80/"}) as cloud:
        pk = cloud.create_product()["product_key"]
        fw = cloud.upload_firmware(pk, 1, "1", b"x" * 10)
        c.eq(fw.get("download_url"), "http://127.0.0.1/dev/ota/v4.1/download/%s" % fw.get("id"),
             "GIZ_PUBLIC_URL http://127.0.0.1:80/ gives URLs without :80")
    # the harness' default (GIZ_PUBLIC_URL on the test's free port): one warning naming the setting
    with harness.Cloud(broker=False) as cloud:
        cloud.create_product()
        log = cloud.log_text("gservice")
    lines = [l for l in log.splitlines() if WARN_KEY in l]
    c.eq(len(lines), 1, "one start-up warning when download URLs are not on port 80")
    c.ok(bool(lines) and "port 80" in lines[0] and "warn" in lines[0].lower(),
         "the warning says firmware downloads from port 80 (%r)" % lines[:1])


def check_download_segments(c, cloud, pk):
    big = bytes((i * 7 + 3) & 0xff for i in range(5000))
    small = bytes((i * 13 + 1) & 0xff for i in range(300))
    fw_big = cloud.upload_firmware(pk, 1, "02000001", big)
    fw_small = cloud.upload_firmware(pk, 2, "02000002", small)
    cases = [
        ("/dev/ota/v4.1/download/%d" % fw_big["id"], b"", big, 200),
        ("/dev/ota/download/%d" % fw_big["id"], b"", big, 200),
        ("/dev/ota/v4.1/download/%d" % fw_big["id"], b"Range: bytes=1000-\r\n", big[1000:], 206),
        ("/dev/ota/download/%d" % fw_big["id"], b"Range: bytes=0-2047\r\n", big[:2048], 206),
        ("/dev/ota/v4.1/download/%d" % fw_small["id"], b"", small, 200),
    ]
    for path, extra, want, want_status in cases:
        what = "%s %s" % (path, extra.decode().strip() or "(whole)")
        bad = []
        for i in range(20):
            raw = one_recv(cloud.http_port, get_bytes(path, extra), 600)
            st, hd, body, complete_head = split(raw)
            expect = min(600 - (len(raw) - len(body)), len(want))
            if not (st == want_status and complete_head and len(body) == expect and body == want[:expect]):
                bad.append((i, st, len(raw), len(body)))
        c.eq(bad, [], "%s: every one recv(600) holds the headers and the first %s body bytes"
             % (what, "600 - header" if len(want) > 600 else "(all)"))
        # and the first segment carries at least 1 KiB of body (or all of it)
        raw = one_recv(cloud.http_port, get_bytes(path, extra), 65536)
        st, hd, body, _ = split(raw)
        c.ok(len(body) >= min(1024, len(want)) and body == want[:len(body)],
             "%s: first segment has %d body bytes (>= 1 KiB or all)" % (what, len(body)))
        c.ok(len(raw) - len(body) < 400, "%s: headers stay small (%d bytes)" % (what, len(raw) - len(body)))
        c.eq(hd.get("content-length"), str(len(want)), "%s: Content-Length" % what)
        c.eq(hd.get("firmware-md5"), hashlib.md5(big if want_status == 206 or len(want) == len(big)
                                                 else small).hexdigest(), "%s: Firmware-MD5" % what)


def check_one_recv_1024(c, cloud, pk, secret):
    """Register, provision, OTA checks: the whole answer in ONE recv(1024)."""
    did = None

    def whole(req, what, want_status):
        raw = one_recv(cloud.http_port, req, 1024)
        st, hd, body, complete = split(raw)
        n = int(hd.get("content-length", "-1"))
        c.ok(st == want_status and complete and n == len(body) and len(raw) <= 1024,
             "%s: status %d and the whole answer (%d bytes) in one recv(1024)" % (what, st, len(raw)))
        return body

    body = whole(post_bytes("/dev/devices", b"passcode=onerecv001&mac=00163E00BB01&product_key=" + pk.encode()),
                 "register", 201)
    did = body.decode()[4:26]
    whole(get_bytes("/dev/devices/" + did), "provision", 200)
    whole(post_bytes("/dev/ota/v4.1/update_and_check/" + did,
                     b"passcode=onerecv001&type=1&hard_version=H1&soft_version=00000001"), "OTA check (update)", 200)
    whole(post_bytes("/dev/ota/v4.1/update_and_check/" + did,
                     b"passcode=onerecv001&type=1&hard_version=H1&soft_version=99999999"), "OTA check (9502)", 400)
    whole(get_bytes("/dev/ota/target_fid?did=%s&product_key=%s&type=2&hard_version=&soft_version=0&current_fid=1"
                    % (did, pk)), "v4.0 target_fid", 200)
    plain = b"mac=00163E00BB02&passcode=onerecv002&type=normal"
    data = aes_ecb(secret, plain).hex().encode()
    whole(post_bytes("/dev/%s/device" % pk, b"data=" + data), "safe register", 201)
    return did


def check_access_log_codes(c, cloud):
    pk = cloud.create_product("codes")["product_key"]
    did = cloud.register_device(pk, "00163E00CC01", "codes00001")
    cloud.http("POST", "/dev/ota/v4.1/update_and_check/" + did,
               form="passcode=codes00001&type=1&hard_version=H&soft_version=1")
    cloud.upload_firmware(pk, 1, "5", b"z" * 100)
    cloud.http("POST", "/dev/ota/v4.1/update_and_check/" + did,
               form="passcode=codes00001&type=1&hard_version=H&soft_version=9")
    cloud.http("GET", "/dev/devices/AAAAAAAAAAAAAAAAAAAAAA")
    cloud.http("POST", "/dev/devices", form="passcode=x1&mac=00163E00CC02&product_key=" + "c" * 32)
    st, _, _ = cloud.http("POST", "/admin/products", body={"name": ""}, admin=True)
    for pat, what in [(r"POST /dev/ota/v4\.1/update_and_check/%s 400 error_code=9500 " % did, "9500"),
                      (r"POST /dev/ota/v4\.1/update_and_check/%s 400 error_code=9502 " % did, "9502"),
                      (r"GET /dev/devices/AAAAAAAAAAAAAAAAAAAAAA 404 error_code=9014 ", "9014"),
                      (r"POST /dev/devices 400 error_code=9002 ", "9002")]:
        c.ok(log_has(cloud, pat), "access log line carries error_code=%s" % what)
    c.ok(log_has(cloud, r"POST /admin/products 400 \d+B"),
         "admin errors keep the plain access-log line")


def check_device_details(c, cloud, pk, secret):
    body = ("passcode=newfw00001&mac=00163E00DD01&product_key=%s&type=center_control&extra=0a0b0c0d"
            "&sdk_hard_version=SDKH0001&sdk_soft_version=04020020" % pk)
    st, _, b = cloud.http("POST", "/dev/devices", form=body)
    c.eq(st, 201, "register with the newer fields")
    did = b.decode()[4:26]
    st, d = cloud.json("GET", "/admin/devices/" + did, admin=True)
    det = d.get("details", {}) if isinstance(d, dict) else {}
    c.eq((det.get("type"), det.get("extra"), det.get("sdk_hard_version"), det.get("sdk_soft_version")),
         ("center_control", "0a0b0c0d", "SDKH0001", "04020020"), "admin detail shows the register fields")
    # OTA check with sdk versions: the firmware type (type=1) is not the register type
    st, _, _ = cloud.http("POST", "/dev/ota/v4.1/update_and_check/" + did,
                          form="passcode=newfw00001&type=1&hard_version=H&soft_version=1&sdk_soft_version=04020021"
                               "&extra=01020304")
    c.ok(st in (200, 400), "OTA check with the newer fields answered (%d)" % st)
    st, d = cloud.json("GET", "/admin/devices/" + did, admin=True)
    det = d.get("details", {})
    c.eq((det.get("type"), det.get("sdk_soft_version"), det.get("extra"), det.get("sdk_hard_version")),
         ("center_control", "04020021", "01020304", "SDKH0001"),
         "OTA check updates sdk_soft_version/extra, keeps the rest")
    st, _, _ = cloud.http("GET", "/dev/devices/%s?sdk_hard_version=SDKH0002&lan_proto_ver=5" % did)
    c.eq(st, 200, "provision with newer query fields")
    det = cloud.json("GET", "/admin/devices/" + did, admin=True)[1].get("details", {})
    c.eq((det.get("sdk_hard_version"), det.get("lan_proto_ver"), det.get("sdk_soft_version")),
         ("SDKH0002", "5", "04020021"), "provision query fields kept")
    # safe register plaintext with is_reset, auth_key, random_code, lan_proto_ver
    auth_key = "AuthKeyZ9q8w7e6r5t4y3u2i1"
    plain = ("mac=00163E00DD02&passcode=newfw00002&type=normal&is_reset=1&auth_key=%s"
             "&random_code=rc12345678&lan_proto_ver=4&sdk_soft_version=04020022" % auth_key).encode()
    data = aes_ecb(secret, plain).hex()
    st, _, b = cloud.http("POST", "/dev/%s/device" % pk, form="data=" + data)
    c.eq(st, 201, "safe register with the newer plaintext fields")
    did2 = aes_ecb(secret, bytes.fromhex(b.decode()), decrypt=True).decode()[4:] if st == 201 else ""
    st, d = cloud.json("GET", "/admin/devices/" + did2, admin=True)
    det = d.get("details", {}) if isinstance(d, dict) else {}
    c.eq((det.get("type"), det.get("is_reset"), det.get("random_code"), det.get("lan_proto_ver"),
          det.get("sdk_soft_version"), det.get("auth_key_set")),
         ("normal", "1", "rc12345678", "4", "04020022", True), "admin detail shows the safe-register fields")
    c.ok(auth_key not in json.dumps(d), "the admin API never shows auth_key")
    c.ok(auth_key not in cloud.log_text("gservice"), "auth_key is never logged")
    blob = b""
    for suffix in ("", "-wal"):
        try:
            with open(cloud.db_path + suffix, "rb") as f:
                blob += f.read()
        except OSError:
            pass
    c.ok(len(blob) > 0 and auth_key.encode() not in blob, "auth_key is not stored in clear (db + wal)")
    db = sqlite3.connect(cloud.db_path)
    try:
        row = db.execute("SELECT auth_key_digest FROM device_info WHERE did = ?", (did2,)).fetchone()
    finally:
        db.close()
    c.ok(row is not None and re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", row[0] or "") is not None,
         "auth_key kept as a keyed digest (%r)" % (row,))
    # junk in the optional fields never fails a registration
    st, _, b = cloud.http("POST", "/dev/devices",
                          form="passcode=newfw00003&mac=00163E00DD03&product_key=%s&extra=%s&sdk_soft_version=%%01x"
                               % (pk, "e" * 300))
    c.eq(st, 201, "oversize / unprintable optional fields are ignored, not refused")
    st, d = cloud.json("GET", "/admin/devices/" + b.decode()[4:26], admin=True)
    c.eq((d.get("details", {}).get("extra"), d.get("details", {}).get("sdk_soft_version")), ("", ""),
         "ignored fields are not stored")


def check_firmware_versions(c, cloud):
    pk = cloud.create_product("dups")["product_key"]
    fw = cloud.upload_firmware(pk, 1, "03000001", b"a" * 50)
    q = "product_key=%s&type=1&soft_version=03000001&hard_version=&filename=x.bin" % pk
    st, _, body = cloud.http("POST", "/admin/firmware?" + q, raw=b"b" * 60, admin=True,
                             headers={"Content-Type": "application/octet-stream"})
    r = json.loads(body.decode() or "{}")
    c.eq((st, r.get("error"), r.get("id")), (409, "firmware_exists", fw["id"]),
         "the same version uploaded twice is refused with 409 naming the existing id")
    c.ok("03000001" in r.get("message", ""), "the 409 message names the version")
    st, r = cloud.json("POST", "/admin/firmware", {"product_key": pk, "type": 1, "soft_version": "03000001",
                                                   "url": "http://cdn.example/a.bin"}, admin=True)
    c.eq(st, 409, "an external registration of an existing version is refused too")
    cloud.upload_firmware(pk, 1, "03000001", b"c" * 70, hard_version="HW2")
    cloud.upload_firmware(pk, 2, "03000001", b"d" * 80)
    st, lst = cloud.json("GET", "/admin/firmware?product_key=%s" % pk, admin=True)
    c.eq(sorted((f["type"], f["soft_version"], f["hard_version"]) for f in lst.get("firmware", [])),
         [(1, "03000001", ""), (1, "03000001", "HW2"), (2, "03000001", "")],
         "other hard version / type of the same soft version accepted; nothing duplicated")
    files = [f for f in os.listdir(os.path.join(cloud.dir, "firmware")) if pk in f]
    c.eq(len(files), 3, "the refused upload left no file")
    # OTA push: matched or not
    pk2 = cloud.create_product("nofw")["product_key"]
    did = cloud.register_device(pk2, "00163E00EE01", "nofw000001")
    st, r = cloud.json("POST", "/admin/ota/push", {"did": did}, admin=True)
    c.eq((st, r.get("firmware_matched"), r.get("firmware")), (202, False, []),
         "push with no firmware: firmware_matched false")
    c.ok("9500" in r.get("message", ""), "and a message saying devices will answer 9500")
    st, r = cloud.json("POST", "/admin/ota/push", {"product_key": pk2, "type": 1, "ota_version": 40}, admin=True)
    c.eq((st, r.get("error"), r.get("firmware_matched")), (409, "no_firmware", False), "v4.0 push without firmware")
    st, r = cloud.json("POST", "/admin/ota/push", {"product_key": pk, "type": 2}, admin=True)
    c.eq((st, r.get("firmware_matched"), [f.get("type") for f in r.get("firmware", [])]), (202, True, [2]),
         "push with firmware: firmware_matched true, the matched firmware listed")
    st, r = cloud.json("POST", "/admin/ota/push", {"product_key": pk2, "type": 2}, admin=True)
    c.eq(r.get("firmware_matched"), False, "product push, type without firmware: firmware_matched false")


def main():
    c = harness.Checker("gservice_firmware_wire")
    check_urls_port80(c)
    with harness.Cloud(broker=False) as cloud:
        fake_broker_alive(cloud.db_path)
        prod = cloud.create_product("wire")
        pk, secret = prod["product_key"], prod["product_secret"]
        check_download_segments(c, cloud, pk)
        check_one_recv_1024(c, cloud, pk, secret)
        check_access_log_codes(c, cloud)
        check_device_details(c, cloud, pk, secret)
        check_firmware_versions(c, cloud)
    c.eq(cloud.exit_codes.get("gservice"), 0, "gservice exits 0 on SIGTERM")
    c.done()


if __name__ == "__main__":
    main()
