# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Plugin login: every refusal (CONNACK 5) and the accepted forms, against the real
mosquitto + plugin and the real GService (devices registered, users created and
logged in through its HTTP API). Also: the official GAgent's MQTT 3.1 CONNECT bytes
are accepted, the credential cache never accepts a wrong passcode, is dropped on
unregister and kept on SIGHUP (live clients re-authenticate without presence flapping), secrets never reach the log, and a broken plugin configuration stops
mosquitto (fail closed). The keyed passcode verifier: written for fresh devices and
legacy PBKDF2-only rows on their first login, then deciding alone (across a broker
restart); the global PBKDF2 budget; the wrong-passcode back-off keyed by source
address (127.0.0.2 attacks, 127.0.0.1 is the real device), not by DID; the key file
(created when missing, world-readable refused)."""
import hashlib
import hmac
import os
import signal
import socket
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
    # Like firmware: its three subscriptions (pushes wait for them, plugin/push.c).
    ck.eq([hdev.subscribe(t, mid) for mid, t in
           enumerate(("ser2cli_noti/" + pk, "ser2cli_res/" + hd, "app2dev/%s/#" % hd), 1)],
          [0, 0, 0], "device subscriptions granted")
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
    ck.ok("logged in from 127.0.0.1" in log, "log shows the real peer address")
    for secret in (pc, pc2, token, bob["token"], "wrongpass1"):
        ck.ok(secret not in log, "secret %s... not in the broker log" % secret[:3])

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto (with the plugin) exits cleanly on SIGTERM")

# -- the keyed passcode verifier (plugin/DESIGN.md "Passcode verification"): the key
# file is created beside the database (0600) when missing; a device's first login
# through PBKDF2 writes HMAC-SHA256(key, domain, DID, passcode) into passcode_mac;
# from then on that alone decides (shown by breaking the PBKDF2 hash and restarting
# the broker, so no cache can answer) ---------------------------------------------
def key_of(cloud):
    with open(os.path.join(cloud.dir, "passcode.key")) as f:
        return bytes.fromhex(f.read().strip())


def expected_mac(key, did, passcode):
    kid = hmac.new(key, b"gizcloud passcode key id", hashlib.sha256).hexdigest()[:16]
    mac = hmac.new(key, b"gizcloud passcode v1\0" + did.encode() + b"\0" + passcode.encode(),
                   hashlib.sha256).hexdigest()
    return "hmac-sha256$%s$%s" % (kid, mac)


def db_one(cloud, sql, args=()):
    db = sqlite3.connect(cloud.db_path, timeout=10)
    try:
        row = db.execute(sql, args).fetchone()
        db.commit()
        return row[0] if row else None
    finally:
        db.close()


def restart_broker(cloud):
    cloud.broker.send_signal(signal.SIGTERM)
    cloud.broker.wait(30)
    ck.eq(cloud.broker.returncode, 0, "mosquitto stops cleanly for a restart")
    cloud.start_broker()


with harness.Cloud(broker=True) as cloud:
    keyfile = os.path.join(cloud.dir, "passcode.key")
    ck.ok(os.path.exists(keyfile), "passcode key file created beside the database")
    ck.eq(os.stat(keyfile).st_mode & 0o777, 0o600, "passcode key file is 0600")
    key = key_of(cloud)
    ck.eq(len(key), 32, "passcode key: 32 bytes (64 hex)")
    pk = cloud.create_product()["product_key"]
    fresh, fpc = new_device(cloud, pk, "fresh00001")
    legacy, lpc = new_device(cloud, pk, "legacy0001")
    # A row as written before schema 4 (PBKDF2 only).
    db_one(cloud, "UPDATE devices SET passcode_mac = NULL WHERE did = ?", (legacy,))
    ck.eq(connack(cloud, fresh, fresh, fpc), 0, "fresh device logs in")
    ck.eq(db_one(cloud, "SELECT passcode_mac FROM devices WHERE did = ?", (fresh,)),
          expected_mac(key, fresh, fpc), "fresh device: keyed verifier stored (exact HMAC)")
    ck.eq(connack(cloud, legacy, legacy, "legacy0002"), 5, "legacy row: wrong passcode refused")
    ck.eq(db_one(cloud, "SELECT passcode_mac FROM devices WHERE did = ?", (legacy,)), None,
          "legacy row: a wrong passcode writes nothing")
    ck.eq(connack(cloud, legacy, legacy, lpc), 0, "legacy PBKDF2-only row logs in")
    ck.eq(db_one(cloud, "SELECT passcode_mac FROM devices WHERE did = ?", (legacy,)),
          expected_mac(key, legacy, lpc), "legacy row upgraded on its successful login")
    # Break PBKDF2: only the keyed verifier can accept now; a fresh broker has no cache.
    for d in (fresh, legacy):
        db_one(cloud, "UPDATE devices SET passcode_hash = 'pbkdf2-sha256$1000$00$00' WHERE did = ?", (d,))
    restart_broker(cloud)
    ck.eq(connack(cloud, fresh, fresh, fpc), 0, "after a restart: login through the keyed verifier")
    ck.eq(connack(cloud, legacy, legacy, lpc), 0, "after a restart: upgraded legacy row logs in (fast path)")
    ck.eq(connack(cloud, legacy, legacy, "legacy0003"), 5, "keyed verifier: wrong passcode refused")
    ck.eq(connack(cloud, fresh, fresh, lpc), 5, "keyed verifier: another device's passcode refused")
    ck.eq(key_of(cloud), key, "the key file is kept across restarts")
    log = cloud.log_text("mosquitto")
    for secret in (fpc, lpc, "legacy0002", "legacy0003", key.hex()):
        ck.ok(secret not in log, "secret %s... not in the broker log" % secret[:3])
ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (keyed verifier)")

# -- the global PBKDF2 budget: over auth_slow_rate checks per second, legacy rows are
# refused unchecked ("retry later", not counted as wrong passcodes) and log in once
# the budget refills -----------------------------------------------------------------
with harness.Cloud(broker=True, plugin_opts={"auth_slow_rate": "1"}) as cloud:
    pk = cloud.create_product()["product_key"]
    devs = [new_device(cloud, pk, "budget%04d" % i) for i in range(8)]
    for d, _ in devs:
        db_one(cloud, "UPDATE devices SET passcode_mac = NULL WHERE did = ?", (d,))
    first = [connack(cloud, d, d, p) for d, p in devs]
    ck.ok(first.count(5) >= 1 and first.count(0) >= 1,
          "PBKDF2 budget 1/s: some of 8 quick legacy logins refused, some accepted (%s)" % first)
    ck.ok("passcode check budget (auth_slow_rate 1/s) spent, retry later" in cloud.log_text("mosquitto"),
          "budget refusal logged as such")
    ck.ok("wrong passcode" not in cloud.log_text("mosquitto"), "budget refusals are not wrong passcodes")
    for (d, p), r in zip(devs, first):
        if r != 0:
            ck.ok(wait_for(lambda: connack(cloud, d, d, p) == 0, timeout=30, step=0.6),
                  "refused legacy device logs in once the budget refills")
    ck.eq(db_one(cloud, "SELECT count(*) FROM devices WHERE passcode_mac IS NULL"), 0,
          "every legacy row upgraded")
    for d, p in devs:
        ck.eq(connack(cloud, d, d, p + "x"), 5, "keyed row, wrong passcode: refused (no budget needed)")
ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (budget)")


# -- wrong passcodes back off the source address (and the DID from that address),
# never the DID alone: DIDs are not secret (issue 12 item 5). An attacker at
# 127.0.0.2 cannot keep the real device at 127.0.0.1 offline --------------------------
def connack_from(port, src, client_id, username, password):
    """A raw MQTT 3.1.1 CONNECT from source address src; the CONNACK code or None."""
    def s(b):
        b = b.encode()
        return struct.pack(">H", len(b)) + b
    body = b"\x00\x04MQTT\x04\xc2\x00\x3c" + s(client_id) + s(username) + s(password)
    n, rl = len(body), b""
    while True:
        d, n = n % 128, n // 128
        rl += bytes([d | (0x80 if n else 0)])
        if not n:
            break
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    try:
        sock.sendall(b"\x10" + rl + body)
        got = b""
        while len(got) < 4:
            chunk = sock.recv(4 - len(got))
            if not chunk:
                return None
            got += chunk
        return got[3] if got[0] == 0x20 else None
    finally:
        sock.close()


with harness.Cloud(broker=True, plugin_opts={"auth_fail_max": "3", "auth_fail_addr_max": "8",
                                             "auth_backoff": "3s"}) as cloud:
    port = cloud.mqtt_port
    pk = cloud.create_product()["product_key"]
    victim, vpc = new_device(cloud, pk, "victim0001")
    other, opc = new_device(cloud, pk, "other00001")
    roam = [new_device(cloud, pk, "roam%06d" % i) for i in range(4)]
    probe, ppc = new_device(cloud, pk, "probe00001")

    def log():
        return cloud.log_text("mosquitto")

    for i in range(10):
        ck.eq(connack_from(port, "127.0.0.2", victim, victim, "wrong%05d" % i), 5,
              "attacker's wrong passcode %d refused" % (i + 1))
    # At once (the back-off is 3 s): the real device is not locked out, the attacker is.
    ck.eq(connack_from(port, "127.0.0.1", victim, victim, vpc), 0,
          "the real device (127.0.0.1) still logs in with its passcode during the attack")
    ck.eq(connack_from(port, "127.0.0.2", victim, victim, vpc), 5,
          "the backed-off address is refused even with the right passcode (no check, cached or not)")
    ck.ok(wait_for(lambda: "device %s from 127.0.0.2: 3 wrong passcodes" % victim in log()),
          "back-off of the DID from the attacker's address logged")
    ck.eq(log().count("3 wrong passcodes"), 1, "back-off start logged once")
    ck.eq(log().count("login refused for device %s from 127.0.0.2: wrong passcode" % victim), 3,
          "only 3 passcode checks for the attacker; the other 7 refused unchecked")
    ck.eq(connack_from(port, "127.0.0.2", other, other, opc), 0,
          "another DID from that address logs in (the address itself is under its limit)")
    ck.ok(wait_for(lambda: "device %s from 127.0.0.2: 8 logins refused without a passcode check"
                   % victim in log(), timeout=20),
          "refusals during the back-off counted in one line per interval (8)")
    ck.eq(log().count("device %s from 127.0.0.2: " % victim) - log().count("login refused for device %s" % victim),
          2, "two lines about the attacker's key: back-off start and one count")
    # Address-wide: 8 wrong passcodes spread over 4 DIDs from 127.0.0.3 back the address off.
    for d, _ in roam:
        for i in range(2):
            ck.eq(connack_from(port, "127.0.0.3", d, d, "bad%07d" % i), 5, "roaming wrong passcode refused")
    ck.ok(wait_for(lambda: "address 127.0.0.3: 8 wrong passcodes" in log()), "address back-off logged")
    ck.eq(connack_from(port, "127.0.0.3", probe, probe, ppc), 5,
          "backed-off address: refused without a check, any DID")
    ck.eq(connack_from(port, "127.0.0.1", probe, probe, ppc), 0, "the same device from elsewhere logs in")
    for d, p in roam:
        ck.eq(connack_from(port, "127.0.0.1", d, d, p), 0, "roamed devices log in from their own address")
    ck.ok(wait_for(lambda: connack_from(port, "127.0.0.2", victim, victim, vpc) == 0, timeout=20, step=0.5),
          "after the back-off the right passcode from that address logs in")
    ck.eq(connack_from(port, "127.0.0.2", victim, victim, "wrongagain"), 5, "a later wrong passcode is refused")
    ck.eq(connack_from(port, "127.0.0.2", victim, victim, vpc), 0, "one miss after a success does not block")
    for secret in (vpc, opc, ppc, "wrong00001"):
        ck.ok(secret not in log(), "passcode %s... not logged" % secret[:3])
ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly (back-off)")

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

# The passcode key file: world-readable refuses the start with a clear message; a
# key file named by plugin_opt_passcode_key is created there when missing.
def run_broker_once(cloud):
    conf = os.path.join(cloud.dir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(cloud.broker_conf())
    env = dict(os.environ)
    if harness.ASAN:
        env["LD_PRELOAD"] = harness.asan_runtime()
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    return subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


cloud = harness.Cloud(gservice=False, broker=False)
try:
    kf = os.path.join(cloud.dir, "passcode.key")
    with open(kf, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(kf, 0o644)
    p = run_broker_once(cloud)
    out = p.communicate(timeout=30)[0].decode("utf-8", "replace")
    ck.ok(p.returncode != 0, "world-readable passcode key: mosquitto refuses to start (rc %s)" % p.returncode)
    ck.ok("passcode key file %s: mode 0644 gives the key to other users" % kf in out,
          "world-readable passcode key: clear message")
finally:
    cloud.stop()

cloud = harness.Cloud(gservice=False, broker=False)
try:
    kf = os.path.join(cloud.dir, "keys", "pc.key")
    os.mkdir(os.path.dirname(kf), 0o700)
    cloud.plugin_opts["passcode_key"] = kf
    p = run_broker_once(cloud)
    ok = wait_for(lambda: os.path.exists(kf) or p.poll() is not None, timeout=20)
    ck.ok(ok and os.path.exists(kf) and p.poll() is None, "plugin_opt_passcode_key: missing file created, broker runs")
    ck.ok(not os.path.exists(os.path.join(cloud.dir, "passcode.key")), "no key file at the default place then")
    if os.path.exists(kf):
        ck.eq(os.stat(kf).st_mode & 0o777, 0o600, "created key file is 0600")
    p.terminate()
    p.communicate(timeout=30)
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
