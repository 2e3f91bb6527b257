# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""GService OTA end to end: firmware upload (raw body, multipart, external URL),
the v4.1 check with firmware bytes (9500 / 9502 / update, CRLF, versions
recorded), the MCU latest query, v4.0 target_fid, downloads with the headers
firmware reads and Range requests (206, suffix, open-ended, 416, multi-range
ignored, HEAD), upload caps and bad metadata, and OTA pushes landing in the
store's outbox for the broker plugin."""
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MAX_UPLOAD = 300000


def check_bytes(did, passcode, fw_type, soft, hard="CubeEV001"):
    body = ("passcode=%s&type=%d&hard_version=%s&soft_version=%s" % (passcode, fw_type, hard, soft)).encode()
    return (("POST /dev/ota/v4.1/update_and_check/%s HTTP/1.1\r\nHost:x\r\n" % did).encode() +
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n\r\n" + body)


def get(cloud, path, headers=None, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (cloud.http_port, path),
                                 headers=headers or {}, method=method)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


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


def main():
    c = harness.Checker("gservice_ota")
    with harness.Cloud(broker=False, gservice_args=["--max-upload", str(MAX_UPLOAD)]) as cloud:
        pk = cloud.create_product("ota")["product_key"]
        did = cloud.register_device(pk, "00163E00A001", "OTAPASS001")
        did2 = cloud.register_device(pk, "00163E00A002", "OTAPASS002")

        # -- no firmware yet: 9500 -------------------------------------------------
        status, hdr, body, raw = cloud.firmware_exchange(check_bytes(did, "OTAPASS001", 1, "04020020"))
        c.eq(status, 400, "check without firmware: status")
        c.ok(b"Don't have a push rule id on device" in body and body.startswith(b"error_code=9500"),
             "check without firmware: 9500 text %r" % body)
        st, dev = cloud.json("GET", "/admin/devices/%s" % did, admin=True)
        c.eq((dev.get("wifi_soft_version"), dev.get("wifi_hard_version")), ("04020020", "CubeEV001"),
             "reported WiFi versions recorded")

        # -- upload: raw body ------------------------------------------------------------
        wifi_image = os.urandom(200000)
        fw = cloud.upload_firmware(pk, 1, "04020021", wifi_image, filename="gagent_04020021.bin")
        c.eq(fw.get("md5"), hashlib.md5(wifi_image).hexdigest(), "upload md5")
        c.eq(fw.get("size"), len(wifi_image), "upload size")
        c.ok(fw.get("download_url") == "http://127.0.0.1:%d/dev/ota/v4.1/download/%d" % (cloud.http_port, fw["id"]),
             "download_url under GIZ_PUBLIC_URL: %r" % fw.get("download_url"))
        files = os.listdir(os.path.join(cloud.dir, "firmware"))
        c.ok(len([f for f in files if not f.startswith(".upload-")]) == 1 and
             not any(f.startswith(".upload-") for f in files), "one firmware file, no temp file left")

        # -- upload: multipart (curl -F) --------------------------------------------------
        mcu_image = os.urandom(5000)
        mcu_path = os.path.join(cloud.dir, "mcu.hex")
        with open(mcu_path, "wb") as f:
            f.write(mcu_image)
        r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-H", "Authorization: Bearer " + cloud.admin_token,
                            "-F", "product_key=" + pk, "-F", "type=2", "-F", "soft_version=00000005",
                            "-F", "file=@" + mcu_path,
                            "http://127.0.0.1:%d/admin/firmware" % cloud.http_port],
                           capture_output=True, text=True)
        out, _, code = r.stdout.rpartition("\n")
        c.eq(code, "201", "multipart upload status")
        try:
            mfw = json.loads(out)
        except ValueError:
            mfw = {}
        c.eq(mfw.get("md5"), hashlib.md5(mcu_image).hexdigest(), "multipart upload md5")
        c.eq(mfw.get("filename"), "mcu.hex", "multipart filename kept")

        # -- v4.1 check: update available -------------------------------------------------
        status, hdr, body, raw = cloud.firmware_exchange(check_bytes(did, "OTAPASS001", 1, "04020020"))
        c.eq(status, 200, "check with newer firmware: status")
        c.eq(body, ("soft_ver=04020021&download_url=%s?did=%s\r\n" % (fw["download_url"], did)).encode(),
             "check answer: soft_ver + URL, CRLF-terminated")
        c.eq(len(body), int(hdr.get("content-length", "-1")), "check answer in one recv")
        # already on the latest / newer: 9502
        for cur in ("04020021", "04020099"):
            status, _, body, _ = cloud.firmware_exchange(check_bytes(did, "OTAPASS001", 1, cur))
            c.eq(status, 400, "check on %s: status" % cur)
            c.ok(body.startswith(b"error_code=9502") and
                 b"push rule not in effect or device already upgrade" in body, "check on %s: 9502 %r" % (cur, body))
        # MCU type
        status, _, body, _ = cloud.firmware_exchange(check_bytes(did, "OTAPASS001", 2, "00000004", hard="M1"))
        c.ok(status == 200 and body.startswith(b"soft_ver=00000005&download_url="), "MCU check: %r" % body)
        st, dev = cloud.json("GET", "/admin/devices/%s" % did, admin=True)
        c.eq((dev.get("mcu_soft_version"), dev.get("mcu_hard_version")), ("00000004", "M1"),
             "reported MCU versions recorded")
        # auth and bad input on the check
        status, _, body, _ = cloud.firmware_exchange(check_bytes(did, "WRONGPASS1", 1, "04020020"))
        c.eq(status, 403, "check with a wrong passcode")
        status, _, _, _ = cloud.firmware_exchange(check_bytes("AAAAAAAAAAAAAAAAAAAAAA", "x", 1, "1"))
        c.eq(status, 404, "check for an unknown DID")
        status, _, body = cloud.http("POST", "/dev/ota/v4.1/update_and_check/%s" % did,
                                     form="passcode=OTAPASS001&type=3&soft_version=1")
        c.eq(status, 400, "check with type 3")
        status, _, body = cloud.http("POST", "/dev/ota/v4.1/update_and_check/%s" % did,
                                     form="passcode=OTAPASS001&type=1")
        c.eq(status, 400, "check without soft_version")
        status, _, body = cloud.http("POST", "/dev/ota/v4.1/update_and_check/%s" % did,
                                     form="passcode=OTAPASS001&type=1&soft_version=a%26b")
        c.eq(status, 400, "check with '&' inside soft_version")
        status, h, _ = cloud.http("GET", "/dev/ota/v4.1/update_and_check/%s" % did)
        c.eq((status, h.get("Allow")), (405, "POST"), "GET on the check: 405 Allow: POST")

        # -- MCU latest query -------------------------------------------------------------
        q = "/dev/ota/v4.1/latest?hard_version=M1&soft_version=00000001&product_key=%s&type=2" % pk
        status, _, body = cloud.http("GET", q, headers={"Content-Type": "application/x-www-form-urlencoded"})
        c.ok(status == 200 and body.startswith(b"soft_ver=00000005&download_url=") and body.endswith(b"\r\n"),
             "latest query: %s %r" % (status, body))
        status, _, body = cloud.http("GET", q.replace("00000001", "00000005"))
        c.ok(status == 400 and body.startswith(b"error_code=9502"), "latest when current: %r" % body)
        status, _, _ = cloud.http("GET", "/dev/ota/v4.1/latest?soft_version=1&product_key=%s&type=2&x=%%G1" % pk)
        c.eq(status, 400, "latest with a bad %-escape in the query")

        # -- v4.0 target fid ----------------------------------------------------------------
        req = ("GET /dev/ota/target_fid?did=%s&product_key=%s&type=1&hard_version=CubeEV001&soft_version=04020020"
               "&current_fid=1 HTTP/1.1\r\nHost:x\r\nContent-Type: application/text\r\n\r\n" % (did, pk)).encode()
        status, _, body, _ = cloud.firmware_exchange(req)
        c.eq(status, 200, "target_fid status")
        m = re.match(rb"target_fid=(\d+)&download_url=([^&]+)&", body)
        c.ok(m is not None and int(m.group(1)) == fw["id"], "target_fid body %r" % body)
        if m:
            c.ok(b"/dev/ota/download/" in m.group(2), "v4.0 URL contains /dev/ota/download")
            st, _, data = get(cloud, m.group(2).decode()[len("http://127.0.0.1:%d" % cloud.http_port):])
            c.ok(st == 200 and data == wifi_image, "v4.0 download URL serves the image")
        req2 = req.replace(b"current_fid=1", ("current_fid=%d" % fw["id"]).encode()).replace(b"04020020", b"04020021")
        status, _, body, _ = cloud.firmware_exchange(req2)
        c.ok(status == 400 and body.startswith(b"error_code=9502"), "target_fid when current: %r" % body)
        status, _, _ = cloud.http("GET", "/dev/ota/target_fid?did=%s&product_key=%s&type=1" % (did, "0" * 32))
        c.eq(status, 404, "target_fid with the wrong product")

        # -- download: headers, Range -------------------------------------------------------
        path = "/dev/ota/v4.1/download/%d" % fw["id"]
        st, h, data = get(cloud, path)
        c.eq(st, 200, "download status")
        c.ok(data == wifi_image, "download body equals the upload")
        c.eq(h.get("content-length"), str(len(wifi_image)), "download Content-Length")
        c.eq(h.get("firmware-md5"), hashlib.md5(wifi_image).hexdigest(), "Firmware-MD5 header")
        c.eq((h.get("soft-version"), h.get("firmware-version")), ("04020021", "04020021"), "version headers")
        c.ok('filename="gagent_04020021.bin"' in h.get("content-disposition", ""), "Content-Disposition filename")
        c.eq(h.get("accept-ranges"), "bytes", "Accept-Ranges")
        ranges = [
            ("bytes=0-99", 206, wifi_image[0:100], "bytes 0-99/%d" % len(wifi_image)),
            ("bytes=1000-", 206, wifi_image[1000:], "bytes 1000-%d/%d" % (len(wifi_image) - 1, len(wifi_image))),
            ("bytes=-500", 206, wifi_image[-500:], "bytes %d-%d/%d" % (len(wifi_image) - 500, len(wifi_image) - 1, len(wifi_image))),
            ("bytes=199990-300000", 206, wifi_image[199990:], "bytes 199990-199999/200000"),
            ("bytes=0-9,20-29", 200, wifi_image, None),
            ("items=0-9", 200, wifi_image, None),
            ("bytes=9-0", 200, wifi_image, None),
        ]
        for rng, want_status, want_body, want_cr in ranges:
            st, h, data = get(cloud, path, {"Range": rng})
            c.eq(st, want_status, "Range %s: status" % rng)
            c.ok(data == want_body, "Range %s: body (%d bytes)" % (rng, len(data)))
            c.eq(h.get("content-range"), want_cr, "Range %s: Content-Range" % rng)
        for rng in ("bytes=200000-", "bytes=500000-600000", "bytes=-0"):
            st, h, _ = get(cloud, path, {"Range": rng})
            c.eq((st, h.get("content-range")), (416, "bytes */200000"), "Range %s: 416" % rng)
        # resume on a flaky link: fetch in pieces with raw sockets and reassemble
        parts = []
        for start in range(0, len(wifi_image), 65536):
            st, h, data = get(cloud, path, {"Range": "bytes=%d-%d" % (start, start + 65535)})
            parts.append(data)
        c.ok(b"".join(parts) == wifi_image, "image reassembled from ranges")
        st, h, data = get(cloud, path, method="HEAD")
        c.eq((st, h.get("content-length"), data), (200, str(len(wifi_image)), b""), "HEAD download")
        for bad in ("999999", "abc", "-1"):
            st, _, _ = get(cloud, "/dev/ota/download/%s" % bad)
            c.eq(st, 404, "download of firmware id %s" % bad)

        # -- external firmware URL ----------------------------------------------------------
        st, ext = cloud.json("POST", "/admin/firmware", {"product_key": pk, "type": 1, "soft_version": "04020030",
                                                          "url": "http://cdn.example.com/fw/gagent.bin"}, admin=True)
        c.eq(st, 201, "register an external firmware URL")
        st, h, _ = get(cloud, "/dev/ota/v4.1/download/%d" % ext.get("id", 0))
        c.eq((st, h.get("location")), (302, "http://cdn.example.com/fw/gagent.bin"), "external firmware redirects")
        status, _, body, _ = cloud.firmware_exchange(check_bytes(did, "OTAPASS001", 1, "04020021"))
        c.eq(body, b"soft_ver=04020030&download_url=http://cdn.example.com/fw/gagent.bin\r\n",
             "check points at the newest (external) firmware")
        st, lst = cloud.json("GET", "/admin/firmware?product_key=%s" % pk, admin=True)
        c.eq(len(lst.get("firmware", [])), 3, "firmware list")

        # -- upload bad input -----------------------------------------------------------------
        bad_meta = [
            ("product_key=%s&type=3&soft_version=1" % pk, 400, "type 3"),
            ("product_key=%s&type=1" % pk, 400, "no soft_version"),
            ("product_key=%s&type=1&soft_version=a%%20b" % pk, 400, "space in soft_version"),
            ("product_key=nothex&type=1&soft_version=1", 400, "bad product_key"),
            ("product_key=%s&type=1&soft_version=1" % ("a" * 32), 404, "unknown product"),
            ("product_key=%s&type=1&soft_version=1&x=%%zz" % pk, 400, "bad %-escape"),
        ]
        for q, want, what in bad_meta:
            status, _, body = cloud.http("POST", "/admin/firmware?" + q, raw=b"abc", admin=True,
                                         headers={"Content-Type": "application/octet-stream"})
            c.eq(status, want, "upload with %s" % what)
            try:
                c.ok("error" in json.loads(body.decode()), "upload with %s: JSON error" % what)
            except ValueError:
                c.ok(False, "upload with %s: JSON error, got %r" % (what, body[:80]))
        status, _, _ = cloud.http("POST", "/admin/firmware?product_key=%s&type=1&soft_version=1" % pk, raw=b"",
                                  admin=True, headers={"Content-Type": "application/octet-stream"})
        c.eq(status, 400, "empty upload")
        status, _, _ = cloud.http("POST", "/admin/firmware?product_key=%s&type=1&soft_version=9" % pk,
                                  raw=os.urandom(MAX_UPLOAD + 1), admin=True,
                                  headers={"Content-Type": "application/octet-stream"})
        c.eq(status, 413, "upload over --max-upload")
        status, _, _ = cloud.http("POST", "/admin/firmware?product_key=%s&type=1&soft_version=9" % pk,
                                  raw=b"abc", headers={"Content-Type": "application/octet-stream"})
        c.eq(status, 401, "upload without the admin token")
        st, bad = cloud.json("POST", "/admin/firmware", {"product_key": pk, "type": 1, "soft_version": "1",
                                                          "url": "ftp://x/y"}, admin=True)
        c.eq(st, 400, "external URL that is not http(s)")
        for size in (1e300, -5, 1.5, "12", float("nan")):
            raw = json.dumps({"product_key": pk, "type": 2, "soft_version": "1", "url": "http://cdn.example/x.bin",
                              "size": size}).encode()
            st, _, body = cloud.http("POST", "/admin/firmware", raw=raw, admin=True,
                                     headers={"Content-Type": "application/json"})
            c.eq(st, 400, "external firmware with size %r refused" % (size,))
        files = os.listdir(os.path.join(cloud.dir, "firmware"))
        c.eq(len(files), 2, "failed uploads left no files (%r)" % files)
        st, lst = cloud.json("GET", "/admin/firmware?product_key=%s" % pk, admin=True)
        c.eq(len(lst.get("firmware", [])), 3, "failed uploads recorded nothing")

        # -- OTA push -> outbox -------------------------------------------------------------------
        fw_types = sorted({f["type"] for f in lst.get("firmware", [])})
        st, r = cloud.json("POST", "/admin/ota/push", {"did": did}, admin=True)
        c.eq((st, r.get("error")), (503, "broker_unavailable"), "push without a live broker: 503")
        fake_broker_alive(cloud.db_path)
        st, r = cloud.json("POST", "/admin/ota/push", {"did": did}, admin=True)
        c.eq((st, r.get("targets")), (202, 0), "push to one offline device: 0 targets")
        c.eq(r.get("types"), fw_types, "a DID push without type goes out for each firmware type the product has")
        st, r = cloud.json("POST", "/admin/ota/push", {"product_key": pk, "type": 1, "ota_version": 40}, admin=True)
        c.eq(st, 202, "v4.0 push to a product")
        db = sqlite3.connect(cloud.db_path)
        try:
            db.execute("UPDATE devices SET online = 1 WHERE did = ?", (did2,))
            db.commit()
        finally:
            db.close()
        st, r = cloud.json("POST", "/admin/ota/push", {"product_key": pk, "type": 2}, admin=True)
        c.eq((st, r.get("targets")), (202, 1), "push counts the online devices of the product")
        db = sqlite3.connect(cloud.db_path)
        try:
            rows = db.execute("SELECT kind, did, product_key, fw_type, ota_version, fid, url FROM outbox "
                              "WHERE kind = 1 ORDER BY id").fetchall()
        finally:
            db.close()
        n = len(fw_types)
        c.eq(len(rows), n + 2, "one OTA row per firmware type for the DID push, then one per product push")
        if len(rows) == n + 2:
            c.eq([r_[:5] for r_ in rows[:n]], [(1, did, "", t, 41) for t in fw_types],
                 "outbox rows for the DID push")
            c.eq(rows[n][2:5], (pk, 1, 40), "outbox row for the v4.0 product push")
            c.ok(rows[n][5] > 0 and "/dev/ota/download/" in rows[n][6] or rows[n][6].startswith("http://cdn"),
                 "v4.0 row carries fid and URL: %r" % (rows[n],))
            c.eq(rows[n + 1][2:5], (pk, 2, 41), "outbox row for the MCU product push")
        for body, want, what in [({}, 400, "empty"), ({"did": did, "product_key": pk}, 400, "both"),
                                 ({"product_key": pk}, 400, "product without type"),
                                 ({"did": "AAAAAAAAAAAAAAAAAAAAAA"}, 404, "unknown DID"),
                                 ({"did": did, "ota_version": 39}, 400, "ota_version 39"),
                                 ({"product_key": "b" * 32, "type": 1}, 404, "unknown product")]:
            st, r = cloud.json("POST", "/admin/ota/push", body, admin=True)
            c.eq(st, want, "push %s" % what)
            c.ok(isinstance(r, dict) and "error" in r, "push %s: JSON error" % what)
        st, ok = cloud.json("POST", "/admin/firmware", {"product_key": pk, "type": 2, "soft_version": "0",
                                                        "url": "http://cdn.example/s.bin", "size": 123456},
                            admin=True)
        c.eq((st, ok.get("size")), (201, 123456), "external firmware with a whole size")
    c.eq(cloud.exit_codes.get("gservice"), 0, "gservice exits 0 on SIGTERM")
    c.done()


if __name__ == "__main__":
    main()
