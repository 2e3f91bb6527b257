# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""GService admin and app APIs end to end: bearer-token checks (401 on every
admin route), products, devices (filters, paging, 404), device logs, JSON
bad input (invalid JSON, wrong types, oversize, wrong methods, unknown paths),
app users, login (token, expiry, MQTT client id, appid), bindings with
passcodes, host/port per DID, unbinding, and the Gizwits app error codes
(9004 token invalid, 9006 token expired)."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def is_json_error(body):
    try:
        j = json.loads(body.decode())
    except ValueError:
        return False
    return isinstance(j, dict) and isinstance(j.get("error"), str) and isinstance(j.get("message"), str)


def fake_broker_alive(cloud):
    """This test runs no broker: write the broker's liveness row as a live broker
    would (a heartbeat in the future counts as fresh), so presence flags and pushes
    are trusted (without one the GService answers 503 broker_unavailable)."""
    now_ms = int(time.time() * 1000)
    cloud.db_exec("INSERT INTO brokers (name, pid, started_at, heartbeat_at, stopped_at) "  # schema 012
                  "VALUES ('broker', 1, ?, ?, NULL) ON CONFLICT(name) DO UPDATE SET pid = excluded.pid, "
                  "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
                  "stopped_at = NULL", (now_ms, now_ms + 3600 * 1000))


def main():
    c = harness.Checker("gservice_api")
    # 40 wrong admin tokens below from one address: lift the brute-force throttle
    # (test_gservice_hostile.py tests it)
    env = {"GIZ_M2M_TLS_PORT": "18883", "GIZ_M2M_HOST": "127.0.0.1", "GIZ_ADMIN_FAIL_LIMIT": "1000"}
    with harness.Cloud(broker=False, gservice_env=env) as cloud:
        # -- admin auth ---------------------------------------------------------------
        admin_routes = [("GET", "/admin/products"), ("POST", "/admin/products"), ("GET", "/admin/devices"),
                        ("GET", "/admin/devices/AAAAAAAAAAAAAAAAAAAAAA"),
                        ("GET", "/admin/devices/AAAAAAAAAAAAAAAAAAAAAA/logs"),
                        ("GET", "/admin/firmware"), ("POST", "/admin/firmware"), ("POST", "/admin/ota/push")]
        bad_auth = [None, "Bearer wrong-token", "Bearer " + cloud.admin_token + "x",
                    "Basic " + cloud.admin_token, "Bearer " + cloud.admin_token[:-1], "Bearer "]
        for method, path in admin_routes:
            for auth in bad_auth:
                h = {"Authorization": auth} if auth else {}
                status, _, body = cloud.http(method, path, body={"name": "x"}, headers=h)
                c.eq(status, 401, "%s %s with Authorization %r" % (method, path, auth and auth[:12]))
                c.ok(is_json_error(body), "%s %s 401 is a JSON error" % (method, path))

        # -- products ---------------------------------------------------------------------
        st, p = cloud.json("POST", "/admin/products", {"name": "Smart Lamp"}, admin=True)
        c.eq(st, 201, "create product")
        c.ok(re.fullmatch(r"[0-9a-f]{32}", p.get("product_key", "")) is not None, "product_key 32 hex")
        c.eq(p.get("name"), "Smart Lamp", "product name echoed")
        pk = p.get("product_key")
        st, p2 = cloud.json("POST", "/admin/products", {"name": "Fan"}, admin=True)
        st, lst = cloud.json("GET", "/admin/products", admin=True)
        c.eq(st, 200, "list products")
        c.eq(sorted(x["product_key"] for x in lst.get("products", [])), sorted([pk, p2["product_key"]]),
             "both products listed")
        # importing the product key existing firmware holds (from the public cloud)
        legacy = "0AEB9953F97C49D6BE32C46487E59400"
        st, imp = cloud.json("POST", "/admin/products", {"name": "legacy", "product_key": legacy}, admin=True)
        c.eq((st, imp.get("product_key")), (201, legacy.lower()), "import an existing product key")
        st, e = cloud.json("POST", "/admin/products", {"name": "dup", "product_key": legacy.lower()}, admin=True)
        c.eq((st, e.get("error")), (409, "exists"), "importing a taken key: 409")
        for bad in ({"name": "x", "product_key": "12"}, {"name": "x", "product_key": 5},
                    {"name": "x", "product_secret": "22222222222222222222222222222222"},
                    {"name": "x", "product_key": "1" * 32, "product_secret": "zz"}):
            st, e = cloud.json("POST", "/admin/products", bad, admin=True)
            c.eq((st, e.get("error")), (400, "bad_request"), "import refused: %r" % (bad,))
        st, got = cloud.json("GET", "/admin/products", admin=True)
        c.ok(legacy.lower() in [x["product_key"] for x in got.get("products", [])], "imported product listed")
        bad_bodies = [(b"{not json", "invalid JSON"), (b"[1,2]", "JSON array"), (b"", "empty body"),
                      (b'{"name": 5}', "name not a string"), (b'{"name": ""}', "empty name"),
                      (b'{"nome": "x"}', "missing name"),
                      (json.dumps({"name": "n" * 200}).encode(), "oversize name")]
        for raw, what in bad_bodies:
            status, _, body = cloud.http("POST", "/admin/products", raw=raw, admin=True,
                                         headers={"Content-Type": "application/json"})
            c.eq(status, 400, "create product with %s" % what)
            c.ok(is_json_error(body), "create product with %s: JSON error" % what)
        status, _, body = cloud.http("POST", "/admin/products", raw=b'{"name":"' + b"x" * 70000 + b'"}',
                                     admin=True, headers={"Content-Type": "application/json"})
        c.eq(status, 413, "70 KB JSON body")
        c.ok(is_json_error(body), "413 is a JSON error")
        status, h, body = cloud.http("DELETE", "/admin/products", admin=True)
        c.eq((status, h.get("Allow")), (405, "GET, HEAD, POST"), "DELETE /admin/products: 405 + Allow")
        c.ok(is_json_error(body), "405 is a JSON error")
        for path in ("/admin/nothing", "/admin/products/", "/app", "/dev"):
            status, _, body = cloud.http("GET", path, admin=True)
            c.eq(status, 404, "GET %s" % path)
        status, _, body = cloud.http("GET", "/admin/devices?product_key=%zz", admin=True)
        c.eq(status, 400, "bad %-encoding in a query")
        c.ok(is_json_error(body), "bad query answered as JSON")

        # -- devices ---------------------------------------------------------------------------
        dids = [cloud.register_device(pk, "00163E0000%02X" % i, "PASS%06d" % i) for i in range(5)]
        other = cloud.register_device(p2["product_key"], "00163E00FFFF", "OTHERPASS1")
        st, d = cloud.json("GET", "/admin/devices?product_key=%s" % pk, admin=True)
        c.eq(st, 200, "list devices of a product")
        got = [x["did"] for x in d.get("devices", [])]
        c.eq(sorted(got), sorted(dids), "only that product's devices")
        c.eq(d.get("total"), 5, "total")
        first = d["devices"][0] if d.get("devices") else {}
        for k in ("did", "product_key", "mac", "online", "last_seen"):
            c.ok(k in first, "device has %s" % k)
        c.eq(first.get("online"), False, "device offline before the broker sees it")
        st, d = cloud.json("GET", "/admin/devices?product_key=%s&limit=2&offset=1" % pk, admin=True)
        c.eq(len(d.get("devices", [])), 2, "limit/offset")
        st, d = cloud.json("GET", "/admin/devices", admin=True)
        c.eq(len(d.get("devices", [])), 6, "all devices")
        fake_broker_alive(cloud)
        cloud.db_exec("UPDATE devices SET online = 1, last_seen = 1700000000 WHERE did = ?", (dids[2],))
        cloud.db_exec("INSERT INTO device_logs (did, level, tags, source, content, ts) VALUES (?, 3, 't', 's', ?, 5)",
                      (dids[2], "hello 'log'"))
        st, d = cloud.json("GET", "/admin/devices?online=1", admin=True)
        c.eq([x["did"] for x in d.get("devices", [])], [dids[2]], "online filter")
        st, d = cloud.json("GET", "/admin/devices/%s" % dids[2], admin=True)
        c.eq((st, d.get("online"), d.get("last_seen")), (200, True, 1700000000), "one device with presence")
        st, d = cloud.json("GET", "/admin/devices/AAAAAAAAAAAAAAAAAAAAAA", admin=True)
        c.eq(st, 404, "unknown device")
        st, d = cloud.json("GET", "/admin/devices/bad!did", admin=True)
        c.eq(st, 404, "malformed DID")
        st, lg = cloud.json("GET", "/admin/devices/%s/logs" % dids[2], admin=True)
        c.eq(st, 200, "device logs")
        c.eq([x.get("content") for x in lg.get("logs", [])], ["hello 'log'"], "log content")
        st, lg = cloud.json("GET", "/admin/devices/AAAAAAAAAAAAAAAAAAAAAA/logs", admin=True)
        c.eq(st, 404, "logs of an unknown device")
        st, lg = cloud.json("GET", "/admin/devices/%s/logs?limit=abc" % dids[2], admin=True)
        c.eq(st, 400, "logs with limit=abc")
        st, d = cloud.json("GET", "/admin/devices?product_key=123", admin=True)
        c.eq(st, 400, "devices with a malformed product_key")

        # -- app users and login -------------------------------------------------------------------
        st, u = cloud.json("POST", "/app/users", {"username": "alice", "password": "s3cret-pw"})
        c.eq(st, 201, "create user")
        c.ok(re.fullmatch(r"[0-9a-f]{32}", u.get("uid", "")) is not None, "uid 32 hex")
        st, e = cloud.json("POST", "/app/users", {"username": "alice", "password": "other"})
        c.eq((st, e.get("error_code")), (409, 9019), "duplicate username")
        for body, what in [({"username": "bob"}, "no password"), ({"password": "x"}, "no username"),
                           ({"username": "", "password": "x"}, "empty username"),
                           ({"username": 5, "password": "x"}, "numeric username"),
                           ({"username": "a\nb", "password": "x"}, "control char"),
                           ({"username": "u" * 65, "password": "x"}, "oversize username")]:
            st, e = cloud.json("POST", "/app/users", body)
            c.eq(st, 400, "create user with %s" % what)
        st, e = cloud.json("POST", "/app/login", {"username": "alice", "password": "wrong"})
        c.eq((st, e.get("error_code")), (401, 9020), "login with a wrong password")
        st, e = cloud.json("POST", "/app/login", {"username": "nobody", "password": "wrong"})
        c.eq((st, e.get("error_code")), (401, 9020), "login of an unknown user (same error)")
        login = cloud.app_login("alice", "s3cret-pw", create=False, appid="0123456789abcdef0123456789abcdef")
        c.ok(re.fullmatch(r"[0-9a-f]{32}", login.get("token", "")) is not None, "token 32 hex")
        c.ok(re.fullmatch(r"usr[0-9A-Za-z]{20}", login.get("mqtt_client_id", "")) is not None,
             "mqtt_client_id usr + 20 base62")
        c.eq(login.get("uid"), u.get("uid"), "login uid")
        c.ok(0 < login.get("expire_at", 0) - time.time() <= 7 * 24 * 3600 + 5, "expire_at within the TTL")
        st, e = cloud.json("POST", "/app/login", {"username": "alice", "password": "s3cret-pw"},
                           headers={"X-Gizwits-Application-Id": "bad appid!"})
        c.eq((st, e.get("error_code")), (400, 9003), "login with a malformed appid")
        tok = {"X-Gizwits-User-token": login["token"]}

        # -- bindings ---------------------------------------------------------------------------------
        st, b = cloud.json("POST", "/app/bindings", {"devices": [
            {"did": dids[0], "passcode": "PASS000000", "remark": "kitchen"},
            {"did": dids[1], "passcode": "WRONGPASS"},
            {"did": "AAAAAAAAAAAAAAAAAAAAAA", "passcode": "x"},
            {"did": dids[2], "passcode": "PASS000002"}]}, headers=tok)
        c.eq(st, 201, "bind")
        c.eq(sorted(b.get("success", [])), sorted([dids[0], dids[2]]), "bind successes")
        c.eq(sorted(b.get("failed", [])), sorted([dids[1], "AAAAAAAAAAAAAAAAAAAAAA"]), "bind failures")
        st, b = cloud.json("POST", "/app/bindings", {"devices": [{"did": dids[0], "passcode": "PASS000000"}]},
                           headers=tok)
        c.eq((st, b.get("success")), (201, [dids[0]]), "binding again is idempotent")
        st, lst = cloud.json("GET", "/app/bindings", headers=tok)
        c.eq(st, 200, "list bindings")
        devs = {x["did"]: x for x in lst.get("devices", [])}
        c.eq(sorted(devs), sorted([dids[0], dids[2]]), "bound devices listed")
        if dids[2] in devs:
            x = devs[dids[2]]
            c.eq((x.get("host"), x.get("port"), x.get("port_s")), ("127.0.0.1", cloud.mqtt_port, 18883),
                 "binding carries host/port/port_s")
            c.eq((x.get("product_key"), x.get("is_online")), (pk, True), "binding product_key and is_online")
        st, lst = cloud.json("GET", "/app/bindings?limit=1&skip=1", headers=tok)
        c.eq(len(lst.get("devices", [])), 1, "bindings paging")
        st, b = cloud.json("DELETE", "/app/bindings", {"devices": [{"did": dids[0]}, {"did": dids[3]}]}, headers=tok)
        c.eq((st, b.get("success"), b.get("failed")), (200, [dids[0]], [dids[3]]), "unbind")
        st, lst = cloud.json("GET", "/app/bindings", headers=tok)
        c.eq([x["did"] for x in lst.get("devices", [])], [dids[2]], "after unbind")
        for body, what in [({}, "no devices"), ({"devices": []}, "empty list"), ({"devices": "x"}, "string"),
                           ({"devices": [{"did": "x"}] * 101}, "101 devices")]:
            st, e = cloud.json("POST", "/app/bindings", body, headers=tok)
            c.eq(st, 400, "bind with %s" % what)
        status, _, body = cloud.http("POST", "/app/bindings", raw=b"{{{", headers=dict(tok))
        c.eq(status, 400, "bind with invalid JSON")

        # -- tokens: missing, wrong, expired ------------------------------------------------------------
        for h, what in [({}, "no token"), ({"X-Gizwits-User-token": "0" * 32}, "unknown token"),
                        ({"X-Gizwits-User-token": "x" * 300}, "oversize token")]:
            st, e = cloud.json("GET", "/app/bindings", headers=h)
            c.eq((st, e.get("error_code"), e.get("error")), (401, 9004, "9004"), "bindings with %s" % what)
        cloud.db_exec("UPDATE sessions SET expire_at = 1")
        st, e = cloud.json("GET", "/app/bindings", headers=tok)
        c.eq((st, e.get("error_code")), (401, 9006), "expired token gives 9006")
        status, h, _ = cloud.http("PUT", "/app/login", body={})
        c.eq((status, h.get("Allow")), (405, "POST"), "PUT /app/login")

        log = cloud.log_text("gservice")
        c.ok(login["token"] not in log and "s3cret-pw" not in log and cloud.admin_token not in log
             and "PASS000000" not in log, "no token, password or passcode in the log")
        if cloud.pg is not None:
            c.ok(cloud.pg.password not in log, "no PostgreSQL password in the log")
            c.ok("postgresql://" in log, "the log names the PostgreSQL store")
    c.eq(cloud.exit_codes.get("gservice"), 0, "gservice exits 0 on SIGTERM")
    c.done()


if __name__ == "__main__":
    main()
