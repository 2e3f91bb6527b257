# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""gizctl against the real cloud (mosquitto + plugin, GService) with gizsim devices:
operator commands (product create/list, device list/show with online and last seen,
firmware upload/register, ota push, logs tail) and app commands (user create, login
saving a private config file, bind, bindings, send, send --ack with the SN round
trip, send --wait, log-level with its 0x0011, watch --json showing 0x0012 logs at
the enabled levels only, unbind), checked through gizctl's JSON output, its exit
codes and gizsim's report."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import Ctl, Sim, read_state  # noqa: E402

ck = harness.Checker("tools_gizctl")

with harness.Cloud(broker=True) as cloud:
    ctl = Ctl(cloud)
    tmp = tempfile.mkdtemp(prefix="gizctl-it-")

    # -- operator: products -------------------------------------------------------------
    rc, docs, err = ctl.json("product", "create", "lamp")
    ck.eq(rc, 0, "product create exits 0 (%s)" % err.strip())
    pk = docs[0].get("product_key", "") if docs else ""
    ck.eq(len(pk), 32, "product create prints a 32-char product key")
    rc, docs, _ = ctl.json("product", "list")
    ck.ok(rc == 0 and any(p.get("product_key") == pk for p in docs[0].get("products", [])),
          "product list shows it")
    rc, out, _ = ctl.run("product", "list")
    ck.ok(rc == 0 and pk in out and "lamp" in out, "product list (text) shows it")
    rc, _, err = ctl.run("product", "list", "--admin-token", "wrong")
    ck.eq(rc, 2, "wrong admin token: exit 2 (refused)")
    ck.ok("--admin-token" in err, "the refusal says which setting to check")

    # -- devices from gizsim -----------------------------------------------------------------
    state = os.path.join(tmp, "state")
    sim = Sim(["--http", "http://127.0.0.1:%d" % cloud.http_port, "-p", pk, "-n", 3, "-s", state,
               "--log-interval", 0.2, "--duration", 300])
    ck.ok(sim.wait_line("all 3 devices connected", 60), "gizsim devices connected")
    devs = read_state(state)
    did, passcode = devs[0][0], devs[0][1]
    other_did = devs[1][0]

    online = []
    for _ in range(150):  # presence is written in batches: bounded poll
        rc, docs, _ = ctl.json("device", "list", "--product", pk)
        online = [d for d in (docs[0].get("devices", []) if docs else []) if d.get("online")]
        if len(online) == 3 and all(d.get("last_seen") for d in online):
            break
        time.sleep(0.1)
    ck.eq(rc, 0, "device list exits 0")
    ck.eq(sorted(d["did"] for d in online), sorted(d[0] for d in devs), "device list: all 3 online")
    ck.ok(all(d.get("last_seen") for d in online), "device list: last_seen set")
    rc, out, _ = ctl.run("device", "list", "--online")
    ck.ok(rc == 0 and did in out and "yes" in out and "3 online" in out, "device list (text) with --online")
    rc, docs, _ = ctl.json("device", "show", did)
    ck.ok(rc == 0 and docs and docs[0].get("did") == did, "device show")
    rc, _, err = ctl.run("device", "show", "AAAAAAAAAAAAAAAAAAAAAA")
    ck.eq(rc, 2, "device show of an unknown DID: exit 2")

    # -- app side: user, login, bind -----------------------------------------------------------
    rc, docs, err = ctl.json("user", "create", "alice", "--password-stdin", stdin="s3cret-pw\n")
    ck.eq(rc, 0, "user create exits 0 (%s)" % err.strip())
    rc, _, err = ctl.run("login", "alice", "--password-stdin", stdin="wrong-pw\n")
    ck.eq(rc, 2, "login with a wrong password: exit 2")
    rc, docs, err = ctl.json("login", "alice", "--password-stdin", stdin="s3cret-pw\n")
    ck.eq(rc, 0, "login exits 0 (%s)" % err.strip())
    cid = docs[0].get("mqtt_client_id", "") if docs else ""
    ck.ok(cid.startswith("usr") and len(cid) == 23, "login prints the MQTT client id")
    ck.ok(docs and "token" not in docs[0], "login output never shows the token")
    ck.eq(oct(os.stat(ctl.config).st_mode & 0o777), "0o600", "config file is private")
    with open(ctl.config) as f:
        conf = f.read()
    ck.ok("s3cret-pw" not in conf, "the password is not stored")
    ck.ok("mqtt_client_id=" + cid in conf, "the client id is stored")

    rc, _, err = ctl.run("bind", did, "WRONGPASS1")
    ck.eq(rc, 2, "bind with a wrong passcode: exit 2")
    rc, docs, err = ctl.json("bind", did, passcode)
    ck.eq(rc, 0, "bind exits 0 (%s)" % err.strip())
    rc, docs, _ = ctl.json("bindings")
    ck.ok(rc == 0 and [d.get("did") for d in docs[0].get("devices", [])] == [did], "bindings lists the device")

    # -- send / ack / wait -------------------------------------------------------------------
    rc, docs, err = ctl.json("send", did, "01 02 ff", "--ack", "--sn", 4242)
    ck.eq(rc, 0, "send --ack exits 0 (%s)" % err.strip())
    ck.ok(docs and docs[0].get("sn") == 4242 and docs[0].get("did") == did, "ack carries the SN")
    ck.ok(docs and isinstance(docs[0].get("rtt_ms"), (int, float)) and docs[0]["rtt_ms"] > 0,
          "round trip time printed")
    rc, docs, err = ctl.json("send", did, "00aa", "--ack", "--count", 5)
    ck.ok(rc == 0 and len(docs) == 5, "send --ack --count 5: five round trips")
    sns = [d.get("sn") for d in docs]
    ck.ok(len(docs) == 5 and sns == list(range(sns[0], sns[0] + 5)), "consecutive SNs acked")
    rc, out, _ = ctl.run("send", did, "00aa", "--ack", "--count", 3)
    ck.ok(rc == 0 and "3 round trips" in out and "p50" in out, "text summary of several round trips")
    payload = os.path.join(tmp, "payload.bin")
    with open(payload, "wb") as f:
        f.write(bytes(range(40)))
    rc, docs, err = ctl.json("send", did, "@" + payload, "--wait")
    ck.eq(rc, 0, "send @file --wait exits 0 (%s)" % err.strip())
    ck.ok(docs and docs[0].get("cmd") == "0x0091" and docs[0].get("data") == bytes(range(40)).hex(),
          "the device's 0x0091 echoes the file's bytes")
    rc, docs, _ = ctl.json("send", did, "0102")
    ck.ok(rc == 0 and docs and docs[0].get("sent") == 1, "plain send exits 0")
    rc, _, err = ctl.run("send", did, "xyz")
    ck.eq(rc, 1, "bad hex payload: exit 1")

    # A device that is not bound: the cloud must not carry the message; exit 2 or 4.
    rc, _, err = ctl.run("send", other_did, "01", "--ack", "--timeout", 2)
    ck.ok(rc in (2, 4), "send --ack to a device not bound: refused or timed out (exit %d)" % rc)

    # -- log level, watch, stored logs --------------------------------------------------------
    rc, docs, err = ctl.json("log-level", did, "error,info")
    ck.eq(rc, 0, "log-level exits 0 (%s)" % err.strip())
    ck.ok(docs and docs[0].get("acked") is True and docs[0].get("bits") == 5, "0x0011 received for bits 0x0005")
    rc, docs, err = ctl.json("watch", did, "--count", 6, timeout=120)
    ck.eq(rc, 0, "watch --count exits 0 (%s)" % err.strip())
    logs = [d for d in docs if d.get("name") == "log"]
    ck.eq(len(logs), 6, "watch --json printed 6 log records")
    ck.ok({d.get("level") for d in logs} <= {"error", "info"} and len({d.get("level") for d in logs}) == 2,
          "logs only at the enabled levels")
    ck.ok(all(d.get("did") == did and d.get("content", "").startswith("gizsim device") for d in logs),
          "log records decoded (did, content)")
    rc, out, _ = ctl.run("watch", "--count", 2, timeout=120)
    ck.ok(rc == 0 and out.count(" 0x0012 log") == 2, "watch (text, all bound devices) prints decoded logs")
    rc, docs, _ = ctl.json("watch", did, "--for", 0.5)
    ck.eq(rc, 0, "watch --for ends with exit 0")
    stored = []
    for _ in range(150):  # stored by the plugin in batches
        rc, docs, _ = ctl.json("logs", "tail", did, "-n", 5)
        stored = docs[0].get("logs", []) if docs else []
        if len(stored) == 5:
            break
        time.sleep(0.1)
    ck.eq(len(stored), 5, "logs tail -n 5 returns 5 stored records")
    ck.ok([r.get("id") for r in stored] == sorted(r.get("id") for r in stored), "oldest first")
    rc, out, _ = ctl.run("logs", "tail", did, "-n", 2)
    ck.ok(rc == 0 and out.count("gizsim device") == 2, "logs tail (text)")
    rc, _, _ = ctl.json("log-level", did, "none")
    ck.eq(rc, 0, "log-level none")
    rc, _, err = ctl.run("log-level", did, "loud")
    ck.eq(rc, 1, "unknown level name: exit 1")

    # -- firmware and OTA push -------------------------------------------------------------------
    fw = os.path.join(tmp, "wifi.bin")
    with open(fw, "wb") as f:
        f.write(os.urandom(5000))
    rc, docs, err = ctl.json("firmware", "upload", fw, "-p", pk, "-t", 1, "-s", "04020099")
    ck.eq(rc, 0, "firmware upload exits 0 (%s)" % err.strip())
    ck.ok(docs and len(docs[0].get("md5", "")) == 32 and "/dev/ota/" in docs[0].get("download_url", ""),
          "upload answers md5 and a download URL")
    rc, docs, err = ctl.json("firmware", "register", "-p", pk, "-t", 2, "-s", "04020099",
                             "--url", "http://127.0.0.1:1/mcu.bin")
    ck.eq(rc, 0, "firmware register exits 0 (%s)" % err.strip())
    rc, _, _ = ctl.run("firmware", "register", "-p", pk, "-t", 3, "-s", "1", "--url", "http://x/y")
    ck.eq(rc, 1, "firmware type 3: exit 1")
    rc, docs, err = ctl.json("ota", "push", "--did", did)
    ck.ok(rc == 0 and docs and docs[0].get("targets") == 1, "ota push --did reaches 1 device")
    rc, docs, err = ctl.json("ota", "push", "--product", pk)
    ck.ok(rc == 0 and docs and docs[0].get("targets") == 3, "ota push --product reaches 3 devices")
    # The DID push names no type and the product has WiFi and MCU firmware: two pushes to that
    # device; the product push (WiFi) one to each of the 3 devices. Two pushes landing together
    # may share one OTA re-check, so at least 3 + 4 checks.
    r = sim.wait_until(lambda r: r["counts"]["ota_pushes_seen"] >= 5 and r["counts"]["ota_checks"] >= 7, 30)
    ck.ok(r is not None and r["counts"]["ota_pushes_seen"] == 5, "gizsim saw the 5 pushes")

    # -- unbind, logout ------------------------------------------------------------------------------
    rc, _, err = ctl.run("unbind", did)
    ck.eq(rc, 0, "unbind exits 0 (%s)" % err.strip())
    rc, docs, _ = ctl.json("bindings")
    ck.ok(rc == 0 and docs and docs[0].get("devices") == [], "no bindings left")
    rc, _, _ = ctl.run("logout")
    ck.eq(rc, 0, "logout")
    rc, _, err = ctl.run("bindings")
    ck.eq(rc, 1, "after logout app commands say to log in")

    rc, rep = sim.stop()
    ck.eq(rc, 0, "gizsim exits 0")
    if ck.ok(rep is not None, "gizsim report"):
        c = rep["counts"]
        ck.eq(c["acks"], 9, "the device acked gizctl's nine 0x0093s")
        ck.eq(c["biz_replies"], 2, "both 0x0090s arrived (send --wait and a plain send)")
        ck.eq(c["log_level_sets"], 2, "two log-level changes reached the device")
        ck.ok(c["logs_sent"] >= 8, "logs were sent (%d)" % c["logs_sent"])
        ck.eq(c["ota_pushes_seen"], 5, "OTA pushes seen")
        ck.eq(rep["errors"]["total"], 0, "no device errors (%r)" % {k: v for k, v in rep["errors"].items() if v})

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
