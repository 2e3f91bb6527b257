# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Plugin login: every refusal (CONNACK 5) and the accepted forms, against the real
mosquitto + plugin and the real GService (devices registered, users created and
logged in through its HTTP API). Also: the official GAgent's MQTT 3.1 CONNECT bytes
are accepted, the credential cache never accepts a wrong passcode, is dropped on
unregister and kept on SIGHUP (live clients re-authenticate without presence flapping), secrets never reach the log, and a broken plugin configuration stops
mosquitto (fail closed)."""
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import APP_COUNT_REQ, RawClient, app_count_payload, new_device, new_user, bind, wait_for  # noqa: E402

ck = harness.Checker("plugin_login")


def connack(cloud, client_id, username, password, level=4):
    c = RawClient(cloud.mqtt_port)
    try:
        return c.connect(client_id, username, password, keepalive=60, level=level)
    finally:
        c.close()


def gagent_connect(did, passcode):
    """The CONNECT captured from the official Linux GAgent: MQTT 3.1, flags C2, keepalive 120."""
    body = (b"\x00\x06MQIsdp\x03\xc2\x00\x78" + struct.pack(">H", len(did)) + did.encode()
            + struct.pack(">H", len(did)) + did.encode() + struct.pack(">H", len(passcode)) + passcode.encode())
    return bytes([0x10, len(body)]) + body


with harness.Cloud(broker=True) as cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk, "0aeb9953f9")
    did2, pc2 = new_device(cloud, pk, "ABCDEF1234")
    alice = new_user(cloud, "alice")
    bob = new_user(cloud, "bob")
    bind(cloud, alice, did, pc)

    # -- devices ----------------------------------------------------------
    ck.eq(connack(cloud, did, did, pc), 0, "device login (3.1.1)")
    ck.eq(connack(cloud, did, did, pc, level=3), 0, "device login (MQTT 3.1)")
    ck.eq(connack(cloud, did, did, pc), 0, "device login again (cached)")
    ck.eq(connack(cloud, did, did, "wrongpass1"), 5, "wrong passcode refused even with a cached login")
    ck.eq(connack(cloud, did, did, pc2), 5, "another device's passcode refused")
    ck.eq(connack(cloud, "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA", pc), 5, "unknown DID refused")
    ck.eq(connack(cloud, did2, did, pc), 5, "client id != username refused")
    ck.eq(connack(cloud, did, None, None), 5, "no username refused")
    ck.eq(connack(cloud, did, did, None), 5, "username without password refused")
    ck.eq(connack(cloud, did, did, ""), 5, "empty passcode refused")
    ck.eq(connack(cloud, did, did, "x" * 40), 5, "over-long passcode refused")

    # The GAgent's exact bytes: 10 48 | 00 06 MQIsdp 03 | C2 | 00 78 | DID | DID | passcode.
    g = RawClient(cloud.mqtt_port)
    pkt = gagent_connect(did2, pc2)
    ck.eq(pkt[:2], b"\x10\x48", "GAgent CONNECT header as captured")
    g.send(pkt)
    p = g.read_packet()
    ck.eq(p and (p[0], p[2]), (2, b"\x00\x00"), "GAgent MQTT 3.1 CONNECT accepted")
    g.close()

    # -- apps ---------------------------------------------------------------
    cid, uid, token = alice["mqtt_client_id"], alice["uid"], alice["token"]
    ck.eq(connack(cloud, cid, uid, token), 0, "app login with uid")
    ck.eq(connack(cloud, cid, "2$someappid$" + uid, token), 0, "app login with 2$<appid>$<uid>")
    ck.eq(connack(cloud, cid, uid, "0" * 32), 5, "unknown token refused")
    ck.eq(connack(cloud, cid, bob["uid"], token), 5, "token of another user refused")
    ck.eq(connack(cloud, bob["mqtt_client_id"], uid, token), 5, "client id of another session refused")
    ck.eq(connack(cloud, "usrAAAAAAAAAAAAAAAAAAAA", uid, token), 5, "client id != session's refused")
    ck.eq(connack(cloud, cid, "not-a-user", token), 5, "username neither DID nor uid refused")
    ck.eq(connack(cloud, cid, "2$x", token), 5, "malformed 2$ username refused")

    # Expired session: age bob's session in the shared database.
    db = sqlite3.connect(cloud.db_path, timeout=10)
    db.execute("UPDATE sessions SET expire_at = 1 WHERE mqtt_client_id = ?", (bob["mqtt_client_id"],))
    db.commit()
    db.close()
    ck.eq(connack(cloud, bob["mqtt_client_id"], bob["uid"], bob["token"]), 5, "expired token refused")

    # A session that expires while connected is disconnected.
    dave = new_user(cloud, "dave")
    db = sqlite3.connect(cloud.db_path, timeout=10)
    db.execute("UPDATE sessions SET expire_at = ? WHERE mqtt_client_id = ?",
               (int(time.time()) + 2, dave["mqtt_client_id"]))
    db.commit()
    db.close()
    live = RawClient(cloud.mqtt_port)
    ck.eq(live.connect(dave["mqtt_client_id"], dave["uid"], dave["token"], keepalive=60), 0,
          "app login shortly before its session expires")
    ck.ok(live.wait_closed(10), "app disconnected once its session expired")
    live.close()
    ck.ok(wait_for(lambda: "app %s: session expired" % dave["mqtt_client_id"] in cloud.log_text("mosquitto")),
          "session expiry logged")

    # -- unregister disables the DID (cached credentials dropped) --------------
    status, _, body = cloud.http("DELETE", "/dev/devices", form="did=%s&passcode=%s" % (did2, pc2))
    ck.eq(status, 200, "unregister answer")
    ck.ok(wait_for(lambda: connack(cloud, did2, did2, pc2) == 5, timeout=5),
          "unregistered (disabled) DID refused although it was cached")

    # -- SIGHUP: mosquitto re-authenticates every client; the cache is kept and live
    # clients' presence does not flap (no spurious 0x0210 0 then 1) --------------------
    hd, hpc = new_device(cloud, pk, "hupcode001")
    hup = new_user(cloud, "hup")
    bind(cloud, hup, hd, hpc)
    hdev = RawClient(cloud.mqtt_port)
    ck.eq(hdev.connect(hd, hd, hpc), 0, "device online before reload")
    happ = RawClient(cloud.mqtt_port)
    ck.eq(happ.connect(hup["mqtt_client_id"], hup["uid"], hup["token"]), 0, "app online before reload")
    ck.eq(hdev.read_publish(3), ("ser2cli_res/" + hd, app_count_payload(1)), "device told 1 app online")
    logins = cloud.log_text("mosquitto").count("device %s (product" % hd)
    cloud.broker.send_signal(signal.SIGHUP)
    ck.ok(wait_for(lambda: "cached device credentials kept" in cloud.log_text("mosquitto")),
          "reload keeps the credential cache")
    ck.eq(hdev.read_publish(1.5), None, "no 0x0210 pushed to the device by the reload")
    hdev.publish("cli2ser_req", APP_COUNT_REQ)
    ck.eq(hdev.read_publish(3), ("ser2cli_res/" + hd, app_count_payload(1)), "count still 1 after reload")
    ck.eq(cloud.log_text("mosquitto").count("device %s (product" % hd), logins,
          "re-authentication is not logged as a new login")
    ck.ok(not happ.wait_closed(0.3), "app still connected after reload")
    hdev.close()
    happ.close()
    ck.eq(connack(cloud, did, did, pc), 0, "device login after reload")

    # -- the log: reasons, real addresses, no secrets ----------------------------
    log = cloud.log_text("mosquitto")
    for why in ("wrong passcode", "unknown DID", "client id != username", "no username or password",
                "unknown token", "token of another user", "client id is not the session's mqtt_client_id",
                "token expired", "device disabled"):
        ck.ok(why in log, "log names refusal reason %r" % why)
    ck.ok("logged in from 127.0.0.1:" in log, "log shows the real peer address")
    for secret in (pc, pc2, token, bob["token"], "wrongpass1"):
        ck.ok(secret not in log, "secret %s... not in the broker log" % secret[:3])

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto (with the plugin) exits cleanly on SIGTERM")

# -- wrong-passcode floods: after auth_fail_max misses within auth_backoff the DID is
# refused without PBKDF2/SQLite for auth_backoff; the right passcode works afterwards,
# and a passcode already cached keeps working throughout -------------------------------
with harness.Cloud(broker=True, plugin_opts={"auth_fail_max": "3", "auth_backoff": "5s"}) as cloud:
    pk = cloud.create_product()["product_key"]
    fd, fpc = new_device(cloud, pk, "floodcode1")
    cd_, cpc = new_device(cloud, pk, "cachedcod1")
    ck.eq(connack(cloud, cd_, cd_, cpc), 0, "cached device logs in")

    def misses():
        return cloud.log_text("mosquitto").count("login refused for device %s" % fd)
    for i in range(3):
        ck.eq(connack(cloud, fd, fd, "wrongpass%d" % i), 5, "wrong passcode %d refused" % (i + 1))
        ck.eq(connack(cloud, cd_, cd_, "wrongpass%d" % i), 5, "cached device: wrong passcode %d refused" % (i + 1))
    ck.ok(wait_for(lambda: "device %s: 3 wrong passcodes" % fd in cloud.log_text("mosquitto")),
          "back-off start logged")
    wrong_lines = cloud.log_text("mosquitto").count("login refused for device %s from 127.0.0.1:" % fd)
    for i in range(10):
        ck.eq(connack(cloud, fd, fd, "wrongagain%d" % i), 5, "wrong passcode during back-off refused")
    ck.eq(connack(cloud, fd, fd, fpc), 5, "even the right passcode is refused during the back-off")
    ck.eq(connack(cloud, cd_, cd_, cpc), 0, "a cached correct passcode still logs in during its back-off")
    log = cloud.log_text("mosquitto")
    ck.ok("too many wrong passcodes, retry later" in log, "throttled refusal logged")
    ck.eq(log.count("%s from 127.0.0.1:" % fd) - log.count("too many wrong passcodes"), wrong_lines,
          "no passcode check (no 'wrong passcode' refusal) during the back-off")
    ck.ok(wait_for(lambda: connack(cloud, fd, fd, fpc) == 0, timeout=15, step=0.5),
          "the right passcode logs in after the back-off")
    ck.eq(connack(cloud, fd, fd, "wrongpass9"), 5, "a later wrong passcode is refused normally")
    ck.eq(connack(cloud, fd, fd, fpc), 0, "one miss after a success does not block")
    for secret in (fpc, cpc):
        ck.ok(secret not in cloud.log_text("mosquitto"), "passcode not logged")
ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (throttling)")

# -- fail closed: broken configurations stop mosquitto ---------------------------
BAD = [
    ("unknown option", {"no_such_option": "1"}, "unknown option plugin_opt_no_such_option"),
    ("malformed value", {"ping_max": "lots"}, "bad value for plugin_opt_ping_max"),
    ("malformed listen", {"listen": "nowhere"}, "bad value for plugin_opt_listen"),
    ("keepalive_max out of range", {"keepalive_max": "70000"}, "bad value for plugin_opt_keepalive_max"),
    ("option given twice", {"ping_max": ["10", "20"]}, "plugin_opt_ping_max given twice"),
]
for what, opts, expect in BAD:
    cloud = harness.Cloud(gservice=False, broker=False, plugin_opts=opts)
    try:
        conf = os.path.join(cloud.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(cloud.broker_conf())
        env = dict(os.environ)
        if harness.ASAN:
            env["LD_PRELOAD"] = harness.asan_runtime()
            env["ASAN_OPTIONS"] = "detect_leaks=0"
        p = subprocess.run(["mosquitto", "-c", conf], capture_output=True, timeout=30, env=env)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        ck.ok(p.returncode != 0, "%s: mosquitto refuses to start (rc %s)" % (what, p.returncode))
        ck.ok(expect in out, "%s: clear message %r" % (what, expect))
    finally:
        cloud.stop()

# Missing database path: a conf without plugin_opt_db_path.
cloud = harness.Cloud(gservice=False, broker=False)
try:
    conf = os.path.join(cloud.dir, "mosquitto.conf")
    text = "\n".join(l for l in cloud.broker_conf().splitlines() if "db_path" not in l) + "\n"
    with open(conf, "w") as f:
        f.write(text)
    env = dict(os.environ)
    if harness.ASAN:
        env["LD_PRELOAD"] = harness.asan_runtime()
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    p = subprocess.run(["mosquitto", "-c", conf], capture_output=True, timeout=30, env=env)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    ck.ok(p.returncode != 0 and "plugin_opt_db_path is required" in out, "missing db_path: refuses to start")
finally:
    cloud.stop()

ck.done()
