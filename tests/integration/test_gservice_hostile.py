# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The GService against hostile clients (issue 12, items 2, 3 and 7):

- slowloris: 500 connections from 127.0.0.2 sending one byte a second never
  complete a request head; the per-address cap refuses most of them at once,
  the head deadline closes the rest, and 20 legitimate requests from 127.0.0.1
  made during the attack are all served;
- HTTPS offers TLS 1.2/1.3 with ECDHE + AEAD suites only (openssl s_client:
  TLS 1.1, CBC and static-RSA suites refused; ECDHE-RSA-AES128-GCM accepted);
- invalid UTF-8 in JSON bodies -> 400; a NUL byte in the request target ->
  400; a multipart filename "../../x.bin" stored as "x.bin"; wrong admin tokens
  throttled per address (429 + Retry-After) while other addresses keep working.
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ATTACK_ADDR = "127.0.0.2"  # loopback /8: the attacker's own source address
ATTACKERS = 500
PER_IP = 100
HEAD_TIMEOUT = 3


def request_from(port, src, method, path, headers=None, body=None, timeout=5):
    """One HTTP request from source address `src`; (status, headers, body) or (0, {}, b"") on failure."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(src, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except (OSError, http.client.HTTPException):
        return 0, {}, b""
    finally:
        conn.close()


def alive(s):
    """True while the server has not closed socket s."""
    try:
        return s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def metric(cloud, name):
    st, _, body = cloud.http("GET", "/metrics")
    m = re.search(r"^%s (\d+)" % name, body.decode(), re.M) if st == 200 else None
    return int(m.group(1)) if m else -1


def check_slowloris(c):
    env = {"GIZ_HTTP_HEAD_TIMEOUT": str(HEAD_TIMEOUT), "GIZ_HTTP_PER_IP_LIMIT": str(PER_IP),
           "GIZ_HTTP_MAX_CONNECTIONS": "400"}
    with harness.Cloud(broker=False, gservice_env=env) as cloud:
        socks = []
        for i in range(ATTACKERS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ATTACK_ADDR, 0))
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", cloud.http_port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass
            s.setblocking(False)
            socks.append(s)
        served = []

        def legit():
            for _ in range(20):
                st, _, _ = request_from(cloud.http_port, "127.0.0.1", "GET", "/healthz")
                served.append(st == 200)
                time.sleep(0.1)

        t = threading.Thread(target=legit)
        t.start()
        t0 = time.monotonic()
        counts = []
        closed_at = None
        for tick in range(int(HEAD_TIMEOUT + 6)):  # a byte a second, bounded
            time.sleep(1)
            for s in socks:
                try:
                    s.send(b"X")
                except OSError:
                    pass
            n = sum(1 for s in socks if alive(s))
            counts.append(n)
            if n == 0 and closed_at is None:
                closed_at = time.monotonic() - t0
                break
        t.join(30)
        for s in socks:
            s.close()
        print("slowloris: attack connections alive per second %r; legitimate served %d/20"
              % (counts, sum(served)), flush=True)
        # (the first two seconds, before the head deadline: the refused ones may still
        # wait in the listen backlog for a moment on a loaded machine)
        c.ok(counts and min(counts[:2]) <= PER_IP,
             "per-address cap: at most %d of %d attack connections held (%s)" % (PER_IP, ATTACKERS, counts[:2]))
        c.ok(closed_at is not None, "every slow connection closed by the head deadline (alive: %r)" % counts)
        c.eq(sum(served), 20, "legitimate requests from another address served during the attack")
        c.ok(metric(cloud, "gizcloud_http_head_timeouts_total") >= 1, "head timeouts counted in /metrics")
        # the per-address cap is per address: a burst of normal requests from 127.0.0.1 is fine
        ok = sum(1 for _ in range(30) if request_from(cloud.http_port, "127.0.0.1", "GET", "/healthz")[0] == 200)
        c.eq(ok, 30, "normal traffic after the attack")
        log = cloud.log_text("gservice")
    c.ok("without a complete request head" in log, "the log says connections were cut for a late head")
    n_mhd = sum(1 for l in log.splitlines() if "libmicrohttpd:" in l)
    c.ok(n_mhd <= 10, "libmicrohttpd's refusals are logged a few times, not once each (%d lines)" % n_mhd)


def s_client(port, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost"]
                       + list(args), input=b"", capture_output=True, timeout=20)
    out = r.stdout.decode("latin-1")
    m = re.search(r"Cipher is (\S+)", out)
    cipher = m.group(1) if m and m.group(1) != "(NONE)" else None
    return cipher


def check_tls(c):
    d = os.path.join(harness.tempfile.mkdtemp(prefix="gizit-tls-"))
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    port = harness.free_port()
    env = {"GIZ_HTTPS_PORT": str(port), "GIZ_TLS_CERT": crt, "GIZ_TLS_KEY": key}
    with harness.Cloud(broker=False, gservice_env=env) as cloud:
        harness.wait_port(port, cloud.gservice)
        low = "DEFAULT:@SECLEVEL=0"
        cases = [
            ("TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
             "ECDHE-RSA-AES128-GCM-SHA256"),
            ("TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305", ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"],
             "ECDHE-RSA-CHACHA20-POLY1305"),
            ("TLS 1.3", ["-tls1_3"], "TLS_"),
            ("TLS 1.1", ["-tls1_1", "-cipher", low], None),
            ("TLS 1.0", ["-tls1", "-cipher", low], None),
            ("TLS 1.2 static RSA AES128-GCM-SHA256", ["-tls1_2", "-cipher", "AES128-GCM-SHA256:" + "@SECLEVEL=0"], None),
            ("TLS 1.2 static RSA AES128-SHA (CBC)", ["-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0"], None),
            ("TLS 1.2 ECDHE-RSA-AES128-SHA (CBC)", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"], None),
            ("TLS 1.2 ECDHE-RSA-AES256-SHA384 (CBC)", ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA384:@SECLEVEL=0"],
             None),
            ("TLS 1.2 DHE-RSA-AES128-GCM-SHA256", ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0"],
             None),
        ]
        for what, args, want in cases:
            got = s_client(port, *args)
            if want is None:
                c.eq(got, None, "HTTPS refuses %s" % what)
            else:
                c.ok(got is not None and got.startswith(want), "HTTPS accepts %s (got %r)" % (what, got))
        r = subprocess.run(["curl", "-sk", "--tlsv1.2", "https://127.0.0.1:%d/healthz" % port],
                           capture_output=True, timeout=20)
        c.ok(b'"status":"ok"' in r.stdout, "a request over HTTPS is answered")


def raw(port, data, src="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        try:
            head, _, body = out.partition(b"\r\n\r\n")
            n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < n:
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
        except (AttributeError, OSError):
            pass
        return out


def status_of(answer):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(m.group(1)) if m else 0


def check_small(c):
    with harness.Cloud(broker=False) as cloud:
        port = cloud.http_port
        # -- invalid UTF-8 in JSON strings ---------------------------------------------------
        for bad, what in [(b"\xff\xfe", "0xFF 0xFE"), (b"\xc0\xaf", "overlong '/'"), (b"\xed\xa0\x80", "a surrogate"),
                          (b"\xe2\x82", "a truncated sequence"), (b"\xf4\x90\x80\x80", "above U+10FFFF")]:
            st, _, body = cloud.http("POST", "/admin/products", raw=b'{"name": "lamp' + bad + b'"}', admin=True,
                                     headers={"Content-Type": "application/json"})
            c.eq(st, 400, "product name with %s refused" % what)
            st, _, _ = cloud.http("POST", "/app/users", raw=b'{"username": "u' + bad + b'", "password": "pw123456"}',
                                  headers={"Content-Type": "application/json"})
            c.eq(st, 400, "username with %s refused" % what)
        name = "Lämpchen 灯 \U0001F4A1"
        st, p = cloud.json("POST", "/admin/products", {"name": name}, admin=True)
        c.eq(st, 201, "valid UTF-8 (escaped) accepted")
        st, _, body = cloud.http("POST", "/admin/products", raw=json.dumps({"name": name}, ensure_ascii=False).encode(),
                                 admin=True, headers={"Content-Type": "application/json"})
        c.eq((st, json.loads(body.decode()).get("name") if st == 201 else None), (201, name),
             "valid UTF-8 (raw) accepted and kept")
        pk = p.get("product_key")
        # -- NUL byte in the request target ---------------------------------------------------
        did = cloud.register_device(pk, "00163E00AB01", "nulpass001")
        a = raw(port, b"GET /healthz\x00/../metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(status_of(a), 400, "NUL in the path: 400 (%r)" % a[:40])
        a = raw(port, b"GET /dev/devices/" + did.encode() + b"\x00x HTTP/1.1\r\nHost: x\r\n\r\n")
        c.ok(status_of(a) == 400 and b"error_code=9015" in a, "NUL in a device path: 400 9015 form error")
        a = raw(port, b"GET /dev/devices/" + did.encode() + b"?x=\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(status_of(a), 400, "NUL in the query: 400")
        a = raw(port, b"GET /dev/devices/" + did.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(status_of(a), 200, "the same path without the NUL: 200")
        a = raw(port, b"GET /healthz?x=%41&y=%2F HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(status_of(a), 200, "%-escapes (shortened by unescaping) are not mistaken for a NUL")
        a = raw(port, b"GET http://api.gizwits.com/dev/devices/" + did.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(status_of(a), 200, "an absolute-form target is not mistaken for a NUL")
        a = raw(port, b"GET /healthz  HTTP/1.1\r\nHost: x\r\n\r\n")
        c.ok(status_of(a) in (200, 404), "a double space before the version is not mistaken for a NUL (%d)"
             % status_of(a))
        # -- multipart filename with a path ----------------------------------------------------
        boundary = "gizbnd42"
        parts = []
        for k, v in (("product_key", pk), ("type", "1"), ("soft_version", "7")):
            parts.append("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (boundary, k, v))
        body = "".join(parts).encode() + (
            "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../x.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode() + b"\x01" * 64 + (
            "\r\n--%s--\r\n" % boundary).encode()
        st, _, b = cloud.http("POST", "/admin/firmware", raw=body, admin=True,
                              headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
        fw = json.loads(b.decode()) if st == 201 else {}
        c.eq((st, fw.get("filename")), (201, "x.bin"), "multipart filename ../../x.bin stored as x.bin")
        up = os.path.dirname(os.path.dirname(cloud.dir))
        c.ok(not os.path.exists(os.path.join(up, "x.bin")) and not os.path.exists(os.path.join(cloud.dir, "x.bin")),
             "nothing written outside the firmware folder")
        if st == 201:
            st, h, _ = cloud.http("GET", "/dev/ota/v4.1/download/%d" % fw["id"])
            c.eq(h.get("Content-Disposition"), 'attachment; filename="x.bin"', "download names the safe base name")
        # -- admin-token brute force ---------------------------------------------------------------
        codes = [request_from(port, ATTACK_ADDR, "GET", "/admin/products",
                              {"Authorization": "Bearer guess-%02d" % i})[0] for i in range(12)]
        c.eq(codes, [401] * 10 + [429, 429], "10 wrong tokens per minute, then 429")
        st, h, b = request_from(port, ATTACK_ADDR, "GET", "/admin/products", {"Authorization": "Bearer guess-x"})
        ra = h.get("retry-after", "")
        c.ok(st == 429 and ra.isdigit() and 1 <= int(ra) <= 60, "429 carries Retry-After (%r)" % ra)
        c.ok(st == 429 and json.loads(b.decode()).get("error") == "too_many_requests", "429 is a JSON error")
        st, _, _ = request_from(port, ATTACK_ADDR, "GET", "/admin/products",
                                {"Authorization": "Bearer " + cloud.admin_token})
        c.eq(st, 429, "the throttled address is not told whether even the right token is right")
        st, _, _ = request_from(port, "127.0.0.1", "GET", "/admin/products",
                                {"Authorization": "Bearer " + cloud.admin_token})
        c.eq(st, 200, "the right token from another address still works")
        st, _, _ = request_from(port, "127.0.0.3", "GET", "/admin/products", {"Authorization": "Bearer nope"})
        c.eq(st, 401, "a third address has its own count")
        st, _, _ = request_from(port, ATTACK_ADDR, "GET", "/healthz")
        c.eq(st, 200, "the throttle covers the admin API only")
        c.ok(metric(cloud, "gizcloud_admin_throttled_total") >= 4, "throttled calls counted in /metrics")
        log = cloud.log_text("gservice")
    c.eq(log.count("wrong admin tokens from 127.0.0.2"), 1, "the throttle is logged once, naming the address")


def main():
    c = harness.Checker("gservice_hostile")
    check_small(c)
    check_tls(c)
    check_slowloris(c)
    c.eq(True, True, "done")
    c.done()


if __name__ == "__main__":
    main()
