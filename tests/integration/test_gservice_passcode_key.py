# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The GService uses the broker's passcode key (GIZ_PASSCODE_KEY, default
passcode.key beside the database): a device it registers gets the keyed
verifier (passcode_mac, the exact HMAC the plugin checks) at once, so its first
MQTT login needs neither PBKDF2 nor an upgrade write — shown by breaking the
PBKDF2 hash right after registration. A key file open to other users, or a
malformed one, refuses the start with a clear message; GIZ_PASSCODE_KEY names
another place, where a missing key file is created 0600."""
import hashlib
import hmac
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import RawClient, new_device, wait_for  # noqa: E402

ck = harness.Checker("gservice_passcode_key")


def expected_mac(key, did, passcode):
    """The verifier plugin/auth.c checks (as tests/integration/test_plugin_login.py computes it)."""
    kid = hmac.new(key, b"gizcloud passcode key id", hashlib.sha256).hexdigest()[:16]
    mac = hmac.new(key, b"gizcloud passcode v1\0" + did.encode() + b"\0" + passcode.encode(),
                   hashlib.sha256).hexdigest()
    return "hmac-sha256$%s$%s" % (kid, mac)


def read_key(path):
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def db_row(cloud, sql, args=()):
    db = sqlite3.connect(cloud.db_path, timeout=10)
    try:
        row = db.execute(sql, args).fetchone()
        db.commit()
        return row
    finally:
        db.close()


def connack(cloud, did, passcode):
    c = RawClient(cloud.mqtt_port)
    try:
        return c.connect(did, did, passcode, keepalive=60)
    finally:
        c.close()


def run_gservice_once(cloud, extra_env=None):
    """Starts giz-gservice on the cloud's folder; returns (exit code or None if it runs, output)."""
    env = dict(os.environ)
    env.update({"GIZ_HTTP_PORT": str(cloud.http_port), "GIZ_DATA_DIR": cloud.dir,
                "GIZ_DB_PATH": cloud.db_path, "GIZ_ADMIN_TOKEN": cloud.admin_token})
    env.update(extra_env or {})
    if harness.ASAN:
        env = harness.sanitizer_env(env)
    log = os.path.join(cloud.dir, "gservice-once.log")
    with open(log, "wb") as out:
        p = subprocess.Popen([harness.GSERVICE], stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = None
            p.terminate()
            p.wait(timeout=20)
    with open(log, "rb") as f:
        return rc, f.read().decode("utf-8", "replace")


# -- registration writes the keyed verifier; MQTT login then needs no PBKDF2 --------
with harness.Cloud(broker=True) as cloud:
    keyfile = os.path.join(cloud.dir, "passcode.key")
    ck.ok(os.path.exists(keyfile), "key file exists beside the database")
    ck.eq(os.stat(keyfile).st_mode & 0o777, 0o600, "key file is 0600")
    key = read_key(keyfile)
    ck.eq(len(key), 32, "key: 32 bytes")
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk, "0aeb9953f9")
    mac_row = db_row(cloud, "SELECT passcode_mac FROM devices WHERE did = ?", (did,))
    mac0 = mac_row[0] if mac_row else None
    ck.ok(bool(mac0), "registered through the GService: passcode_mac is not empty (%r)" % (mac0,))
    ck.eq(mac0, expected_mac(key, did, pc), "passcode_mac is the HMAC the plugin expects")
    # Only the keyed verifier can accept from here on.
    broken = "pbkdf2-sha256$1000$00$00"
    db_row(cloud, "UPDATE devices SET passcode_hash = ? WHERE did = ?", (broken, did))
    ck.eq(connack(cloud, did, pc), 0, "PBKDF2 hash broken after registration: MQTT login accepted")
    ck.eq(connack(cloud, did, "0aeb9953f8"), 5, "a wrong passcode is still refused")
    row = db_row(cloud, "SELECT passcode_mac, passcode_hash FROM devices WHERE did = ?", (did,))
    ck.eq(row, (mac0, broken), "login wrote nothing: passcode_mac and passcode_hash unchanged")
    # A re-registration through the GService (same MAC and passcode) keeps the verifier.
    did2, pc2 = new_device(cloud, pk, "ABCDEF1234")
    ck.eq(db_row(cloud, "SELECT passcode_mac FROM devices WHERE did = ?", (did2,))[0],
          expected_mac(key, did2, pc2), "second device: its own keyed verifier")
    ck.eq(read_key(keyfile), key, "the key file is not rewritten")
    log = cloud.log_text("gservice")
    for secret in (pc, pc2, key.hex()):
        ck.ok(secret not in log, "secret %s... not in the GService log" % secret[:3])
ck.eq(cloud.exit_codes.get("gservice"), 0, "gservice exits cleanly")

# -- fail closed -------------------------------------------------------------------
cloud = harness.Cloud(gservice=False, broker=False)
try:
    kf = os.path.join(cloud.dir, "passcode.key")
    with open(kf, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(kf, 0o644)
    rc, out = run_gservice_once(cloud)
    ck.ok(rc is not None and rc != 0, "world-readable key file: the GService refuses to start (rc %s)" % rc)
    ck.ok("passcode key file %s: mode 0644 gives the key to other users" % kf in out,
          "world-readable key file: clear message (%r)" % out[-300:])
    ck.ok("GIZ_PASSCODE_KEY" in out, "the message names the setting")
    os.chmod(kf, 0o600)
    with open(kf, "w") as f:
        f.write("not a key\n")
    rc, out = run_gservice_once(cloud)
    ck.ok(rc is not None and rc != 0, "malformed key file: the GService refuses to start (rc %s)" % rc)
    ck.ok("passcode key" in out and "not starting" in out, "malformed key file: clear message (%r)" % out[-300:])
    ck.ok("not a key" not in out, "the message does not echo the file's contents")
finally:
    cloud.stop()

# -- GIZ_PASSCODE_KEY names another file: created there, used for registrations -----
kdir = None
cloud = harness.Cloud(gservice=False, broker=False)
try:
    kdir = os.path.join(cloud.dir, "keys")
    os.mkdir(kdir, 0o700)
    kf = os.path.join(kdir, "pc.key")
    cloud.gservice_env["GIZ_PASSCODE_KEY"] = kf
    cloud.start_gservice()
    ck.ok(wait_for(lambda: os.path.exists(kf), timeout=10), "GIZ_PASSCODE_KEY: missing file created")
    ck.ok(not os.path.exists(os.path.join(cloud.dir, "passcode.key")), "no key file at the default place")
    if os.path.exists(kf):
        ck.eq(os.stat(kf).st_mode & 0o777, 0o600, "created key file is 0600")
        pk = cloud.create_product()["product_key"]
        did, pc = new_device(cloud, pk, "1234567890")
        ck.eq(db_row(cloud, "SELECT passcode_mac FROM devices WHERE did = ?", (did,))[0],
              expected_mac(read_key(kf), did, pc), "verifier made with the named key")
finally:
    cloud.stop()

ck.done()
