# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""GService device API end to end: register, re-register, unregister, provision
and the AES "safe" variants, with the exact request bytes real firmware sends
(Host:x without a space, Content-Type on GET) read the way firmware reads them
(one recv() of 1024 bytes), plus every bad-input class on device endpoints.
The real giz-gservice binary runs on a free port with a temporary SQLite file."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DID_RE = re.compile(r"^[0-9A-Za-z]{22}$")
FORM_CT = "application/x-www-form-urlencoded"


def aes_ecb(key_hex, data, decrypt=False):
    """AES-128-ECB with PKCS#7 via the openssl CLI (no Python AES on this box)."""
    argv = ["openssl", "enc", "-aes-128-ecb", "-K", key_hex, "-nosalt"]
    if decrypt:
        argv.append("-d")
    r = subprocess.run(argv, input=data, capture_output=True, check=True)
    return r.stdout


def register_bytes(body, host=b"Host:x"):
    return (b"POST /dev/devices HTTP/1.1\r\n" + host + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def main():
    c = harness.Checker("gservice_device")
    with harness.Cloud(broker=False) as cloud:
        prod = cloud.create_product("lamp")
        pk, secret = prod["product_key"], prod["product_secret"]
        c.ok(re.fullmatch(r"[0-9a-f]{32}", pk) is not None, "product key is 32 lowercase hex")
        c.ok(re.fullmatch(r"[0-9a-f]{32}", secret) is not None, "product secret is 32 hex")

        # -- register, as firmware sends it (Host:x, &type=normal), one recv() --
        body = ("passcode=0aeb9953f9&mac=00163E002CAC&product_key=%s&type=normal" % pk).encode()
        status, hdr, rbody, raw = cloud.firmware_exchange(register_bytes(body))
        c.eq(status, 201, "register status")
        text = rbody.decode()
        c.ok(text.startswith("did=") and DID_RE.match(text[4:]) is not None,
             "register body is did=<22 base62>: %r" % text)
        c.eq(len(rbody), int(hdr.get("content-length", "-1")), "whole register answer in one recv")
        c.ok("transfer-encoding" not in hdr, "register answer not chunked")
        did = text[4:26]

        # same product + MAC + passcode -> same DID (the store's rule)
        status, _, rbody2, _ = cloud.firmware_exchange(register_bytes(body, b"Host: api.gizwits.com"))
        c.eq((status, rbody2.decode()), (201, text), "re-register with same passcode keeps DID")
        # lowercase MAC is the same device
        body_lc = ("passcode=0aeb9953f9&mac=00163e002cac&product_key=%s" % pk).encode()
        status, _, rbody3, _ = cloud.firmware_exchange(register_bytes(body_lc))
        c.eq((status, rbody3.decode()), (201, text), "lowercase MAC is the same device")
        # a reset device generates a new passcode -> new DID, old one stays until unregistered
        new_did = cloud.register_device(pk, "00163E002CAC", "NEWPASS123")
        c.ok(new_did != did and DID_RE.match(new_did) is not None, "new passcode gives a new DID")

        # -- provision, firmware bytes (Content-Type on GET), one recv() ------------
        req = ("GET /dev/devices/%s HTTP/1.1\r\nHost:x\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\n\r\n" % did).encode()
        status, hdr, pbody, raw = cloud.firmware_exchange(req)
        c.eq(status, 200, "provision status")
        c.ok(len(raw) <= 1024, "provision answer fits in 1024 bytes (%d)" % len(raw))
        c.eq(len(pbody), int(hdr.get("content-length", "-1")), "whole provision answer in one recv")
        m = re.fullmatch(r"host=([^&]+)&port=(\d+)&server_ts=(\d+)&log_host=([^&]+)&log_port=(\d+)"
                         r"&biz_log=0&sys_log=0", pbody.decode())
        c.ok(m is not None, "provision body format: %r" % pbody)
        if m:
            c.eq(m.group(1), "127.0.0.1", "provision host = GIZ_M2M_HOST")
            c.eq(int(m.group(2)), cloud.mqtt_port, "provision port = GIZ_M2M_PORT")
            import time
            c.ok(abs(int(m.group(3)) - time.time()) < 3600, "server_ts is unix seconds")

        status, _, body404 = cloud.http("GET", "/dev/devices/AAAAAAAAAAAAAAAAAAAAAA")
        c.eq(status, 404, "provision of an unknown DID")
        c.ok(body404.startswith(b"error_code=9014&error_message="), "404 body is a form error")
        status, _, _ = cloud.http("GET", "/dev/devices/short")
        c.eq(status, 404, "provision of a malformed DID")
        status, _, _ = cloud.http("GET", "/dev/devices/%s%%41" % did[:20])
        c.eq(status, 404, "provision of a %-encoded DID is not decoded into a match")

        # -- unregister ------------------------------------------------------------
        status, _, b = cloud.http("DELETE", "/dev/devices", form="did=%s&passcode=wrongpass1" % did)
        c.eq(status, 403, "unregister with a wrong passcode")
        c.ok(b.startswith(b"error_code=9016"), "wrong passcode code 9016: %r" % b)
        status, _, b = cloud.http("DELETE", "/dev/devices",
                                  form="did=AAAAAAAAAAAAAAAAAAAAAA&passcode=0aeb9953f9")
        c.eq(status, 404, "unregister of an unknown DID")
        ubody = ("did=%s&passcode=0aeb9953f9" % did).encode()
        req = (b"DELETE /dev/devices HTTP/1.1\r\nHost:x\r\nContent-Type: " + FORM_CT.encode() +
               b"\r\nContent-Length: " + str(len(ubody)).encode() + b"\r\n\r\n" + ubody)
        status, _, _, _ = cloud.firmware_exchange(req)
        c.eq(status, 200, "unregister with the right passcode (firmware bytes)")
        status, _, _ = cloud.http("DELETE", "/dev/devices", form="did=%s&passcode=0aeb9953f9" % did)
        c.eq(status, 200, "unregister again is idempotent")
        status, _, b = cloud.http("GET", "/dev/devices/%s" % did)
        c.eq(status, 403, "provision of a disabled DID")
        c.ok(b.startswith(b"error_code=9023"), "disabled code 9023: %r" % b)
        st, dev = cloud.json("GET", "/admin/devices/%s" % did, admin=True)
        c.eq((st, dev.get("status")), (200, "disabled"), "admin sees the device disabled")
        # after unregistering, the same MAC + old passcode registers a new DID
        again = cloud.register_device(pk, "00163E002CAC", "0aeb9953f9")
        c.ok(again != did, "a disabled DID is not handed out again")

        # -- safe variants (AES-128-ECB with the product secret) --------------------
        plain = b"mac=A0B1C2D3E4F5&passcode=SAFEPASS01&type=normal"
        data_hex = aes_ecb(secret, plain).hex()
        sbody = ("data=%s" % data_hex).encode()
        req = (("POST /dev/%s/device HTTP/1.1\r\nHost:x\r\n" % pk).encode() +
               b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
               str(len(sbody)).encode() + b"\r\n\r\n" + sbody)
        status, hdr, sresp, _ = cloud.firmware_exchange(req)
        c.eq(status, 201, "safe register status")
        c.ok(re.fullmatch(rb"[0-9a-f]{64}", sresp) is not None, "safe register answer is 64 hex: %r" % sresp)
        safe_did = None
        try:
            dec = aes_ecb(secret, bytes.fromhex(sresp.decode()), decrypt=True).decode()
            c.ok(dec.startswith("did=") and DID_RE.match(dec[4:]) is not None,
                 "safe register decrypts to did=<DID>: %r" % dec)
            safe_did = dec[4:]
        except (ValueError, subprocess.CalledProcessError) as e:
            c.ok(False, "safe register answer decrypts: %s" % e)
        if safe_did:
            st, dev = cloud.json("GET", "/admin/devices/%s" % safe_did, admin=True)
            c.eq((st, dev.get("mac")), (200, "A0B1C2D3E4F5"), "safe-registered device is stored")
            enc_did = aes_ecb(secret, safe_did.encode()).hex()
            req = ("GET /dev/%s/device?did=%s HTTP/1.1\r\nHost:x\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n\r\n" % (pk, enc_did)).encode()
            status, _, presp, _ = cloud.firmware_exchange(req)
            c.eq(status, 200, "safe provision status")
            try:
                dec = aes_ecb(secret, bytes.fromhex(presp.decode()), decrypt=True).decode()
                c.ok(dec.startswith("host=127.0.0.1&port=%d&server_ts=" % cloud.mqtt_port),
                     "safe provision decrypts to the provision body: %r" % dec)
            except (ValueError, subprocess.CalledProcessError) as e:
                c.ok(False, "safe provision answer decrypts: %s" % e)
            # a DID of another product is not provisioned through this product
            other = cloud.create_product("other")
            enc2 = aes_ecb(other["product_secret"], safe_did.encode()).hex()
            status, _, _ = cloud.http("GET", "/dev/%s/device?did=%s" % (other["product_key"], enc2))
            c.eq(status, 404, "safe provision under another product")
        wrong_key = "00" * 16
        status, _, b = cloud.http("POST", "/dev/%s/device" % pk,
                                  form="data=%s" % aes_ecb(wrong_key, plain).hex())
        c.eq(status, 400, "safe register encrypted with the wrong key")
        status, _, _ = cloud.http("POST", "/dev/%s/device" % pk, form="data=zz")
        c.eq(status, 400, "safe register with non-hex data")
        status, _, b = cloud.http("POST", "/dev/%s/device" % ("0" * 32), form="data=%s" % data_hex)
        c.eq(status, 400, "safe register for an unknown product")
        c.ok(b.startswith(b"error_code=9002"), "unknown product code 9002: %r" % b)
        status, _, _ = cloud.http("GET", "/dev/%s/device" % pk)
        c.eq(status, 400, "safe provision without did")

        # -- bad input on register ---------------------------------------------------
        cases = [
            ("missing passcode", "mac=00163E002CAC&product_key=%s" % pk, 400, b"error_code=9015"),
            ("missing mac", "passcode=abc&product_key=%s" % pk, 400, b"error_code=9015"),
            ("missing product_key", "passcode=abc&mac=00163E002CAC", 400, b"error_code=9015"),
            ("bad MAC (short)", "passcode=abc&mac=00163E&product_key=%s" % pk, 400, b"error_code=9015"),
            ("bad MAC (non-hex)", "passcode=abc&mac=00163E00ZZZZ&product_key=%s" % pk, 400,
             b"error_code=9015"),
            ("MAC with separators", "passcode=abc&mac=00:16:3E:00:2C:AC&product_key=%s" % pk, 400,
             b"error_code=9015"),
            ("unknown product key", "passcode=abc&mac=00163E002CAC&product_key=%s" % ("f" * 32), 400,
             b"error_code=9002"),
            ("malformed product key", "passcode=abc&mac=00163E002CAC&product_key=xyz", 400,
             b"error_code=9002"),
            ("bad %-escape", "passcode=ab%%zz&mac=00163E002CAC&product_key=%s" % pk, 400,
             b"error_code=9015"),
            ("truncated %-escape", "passcode=ab%%4&mac=00163E002CAC&product_key=%s" % pk, 400,
             b"error_code=9015"),
            ("encoded NUL", "passcode=ab%%00c&mac=00163E002CAC&product_key=%s" % pk, 400,
             b"error_code=9015"),
            ("oversize passcode", "passcode=%s&mac=00163E002CAC&product_key=%s" % ("p" * 33, pk), 400,
             b"error_code=9015"),
            ("empty body", "", 400, b"error_code=9015"),
        ]
        for what, form, want_status, want_prefix in cases:
            status, h, b = cloud.http("POST", "/dev/devices", form=form)
            c.eq(status, want_status, "register, %s: status" % what)
            c.ok(b.startswith(want_prefix) and b"&error_message=" in b,
                 "register, %s: form error body %r" % (what, b[:80]))
            c.ok(h.get("Content-Type", "").startswith(FORM_CT), "register, %s: form content type" % what)
        status, _, b = cloud.http("POST", "/dev/devices", raw=b"x" * (70 * 1024),
                                  headers={"Content-Type": FORM_CT})
        c.eq(status, 413, "register with a 70 KiB body")
        c.ok(b.startswith(b"error_code="), "oversize body answered as a form error")
        big = b"a" * (70 * 1024)
        chunked = (b"POST /dev/devices HTTP/1.1\r\nHost:x\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n" +
                   b"%x\r\n" % len(big) + big + b"\r\n0\r\n\r\n")
        ans = cloud.raw_http(chunked)
        c.ok(ans.startswith(b"HTTP/1.1 413 ") and b"error_code=" in ans,
             "chunked 70 KiB body: 413 form error (%r)" % ans[:60])
        status, h, b = cloud.http("PUT", "/dev/devices", form="a=b")
        c.eq(status, 405, "PUT /dev/devices")
        c.eq(h.get("Allow"), "POST, DELETE", "405 Allow header")
        status, _, b = cloud.http("GET", "/dev/nothing/here/at/all")
        c.eq(status, 404, "unknown device path")
        c.ok(b.startswith(b"error_code="), "unknown device path answered as a form error")

        # -- SQL metacharacters are data, not SQL ----------------------------------------
        evil = "x'\");DROP TABLE devices;--"
        evil_pc = "x'\");DROP/**/TABLE/**/devices;--"[:32]
        from urllib.parse import quote
        status, _, b = cloud.http("POST", "/dev/devices",
                                  form="passcode=%s&mac=00163E00BEEF&product_key=%s" % (quote(evil_pc), pk))
        c.eq(status, 201, "register with SQL metacharacters in the passcode")
        evil_did = b.decode()[4:26]
        status, _, _ = cloud.http("DELETE", "/dev/devices",
                                  form="did=%s&passcode=%s" % (evil_did, quote(evil_pc)))
        c.eq(status, 200, "the same passcode (with SQL metacharacters) unregisters it")
        st, prod2 = cloud.json("POST", "/admin/products", {"name": evil}, admin=True)
        c.eq(st, 201, "product name with SQL metacharacters")
        st, plist = cloud.json("GET", "/admin/products", admin=True)
        names = [p.get("name") for p in plist.get("products", [])]
        c.ok(evil in names, "product name stored literally")

        # passcodes never stored or logged in clear
        dump = cloud.db_dump()
        c.ok("0aeb9953f9" not in dump and "SAFEPASS01" not in dump, "no passcode in clear in the database")
        c.ok("devices" in dump, "devices table still there")
        log = cloud.log_text("gservice")
        c.ok("0aeb9953f9" not in log and "SAFEPASS01" not in log and "NEWPASS123" not in log,
             "no passcode in the log")
        c.ok(("POST /dev/devices 201" in log) and ("GET /dev/devices/%s 200" % did in log),
             "access log lines for register and provision")
    c.eq(cloud.exit_codes.get("gservice"), 0, "gservice exits 0 on SIGTERM")
    c.done()


if __name__ == "__main__":
    main()
