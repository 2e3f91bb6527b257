# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""gizsim against the real cloud (mosquitto + plugin, GService), asserting on its
JSON report and on what the cloud says: the full flow of 50 devices (registered,
provisioned, OTA-checked, connected, 0x0210 received), a second run reusing the
state file, an OTA push (POST /admin/ota/push) seen by every simulated device and
answered by a new OTA check, simulated apps binding devices and getting every
0x0093 acknowledged, and misbehaving devices that do not disturb the others."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import Sim, read_state, run_sim  # noqa: E402

ck = harness.Checker("tools_gizsim")

with harness.Cloud(broker=True) as cloud:
    http = "http://127.0.0.1:%d" % cloud.http_port
    pk = cloud.create_product("gizsim fleet")["product_key"]
    tmp = tempfile.mkdtemp(prefix="gizsim-it-")
    state = os.path.join(tmp, "state")

    # -- full flow, 50 devices ---------------------------------------------------------
    n = 50
    rc, rep, err = run_sim(["--http", http, "-p", pk, "-n", n, "-s", state, "--rate", 100,
                            "--until-ready", "--duration", 120])
    ck.eq(rc, 0, "gizsim exits 0")
    ck.ok("all %d devices connected" % n in err, "ready line printed")
    if ck.ok(rep is not None, "JSON report written"):
        c = rep["counts"]
        ck.eq(c["registered"], n, "all registered")
        ck.eq(c["provisioned"], n, "all provisioned")
        ck.eq(c["ota_checks"], n, "all OTA-checked")
        ck.eq(c["connected"], n, "all connected")
        ck.eq(c["mqtt_attempts"], n, "one MQTT login each")
        ck.eq(c["app_count_requests"], n, "0x020F sent by each")
        ck.eq(rep["errors"]["total"], 0, "no errors (%r)" % {k: v for k, v in rep["errors"].items() if v})
        ck.eq(rep["config"]["mqtt"], "127.0.0.1:%d" % cloud.mqtt_port, "M2M address taken from provision")
        for k in ("p50", "p90", "p99"):
            ck.ok(rep["latency_ms"]["connect"][k] > 0, "connect latency %s measured" % k)
            ck.ok(rep["latency_ms"]["http"][k] > 0, "HTTP latency %s measured" % k)
    devs = read_state(state)
    ck.eq(len(devs), n, "state file holds every device")
    ck.eq(len({d[0] for d in devs}), n, "distinct DIDs")
    # The plugin writes presence in batches: poll (bounded) until every last_seen is in.
    for _ in range(150):
        status, listing = cloud.json("GET", "/admin/devices?product_key=" + pk, admin=True)
        if status == 200 and all(d.get("last_seen") for d in listing.get("devices", [])):
            break
        time.sleep(0.1)
    ck.eq(status, 200, "admin device list")
    cloud_dids = {d["did"] for d in listing.get("devices", [])}
    ck.eq(cloud_dids, {d[0] for d in devs}, "the cloud knows exactly the simulated DIDs")
    ck.ok(all(d.get("last_seen") for d in listing.get("devices", [])), "every device has a last_seen")

    # -- state reuse, OTA push, apps ------------------------------------------------------
    status, fw = cloud.json("POST", "/admin/firmware",
                            {"product_key": pk, "type": 1, "soft_version": "04020099",
                             "url": "http://127.0.0.1:1/fw.bin"}, admin=True)
    ck.eq(status, 201, "firmware registered for the push")
    sim = Sim(["--http", http, "-n", n, "-s", state, "--rate", 200, "--apps", 3,
               "--app-devices", 2, "--app-interval", 0.05, "--heartbeat", 1,
               "--duration", 300])
    ck.ok(sim.wait_line("all %d devices connected" % n, 90), "reused fleet connects")
    ck.ok(sim.wait_line("all 3 apps ready", 90), "apps ready")
    r = sim.wait_until(lambda r: r["counts"]["ota_checks"] >= n, 30)
    ck.ok(r is not None and r["counts"]["ota_checks"] == n, "one boot OTA check each")
    status, pushed = cloud.json("POST", "/admin/ota/push", {"product_key": pk, "type": 1}, admin=True)
    ck.eq(status, 202, "OTA push accepted")
    ck.eq(pushed.get("targets"), n, "pushed to every online device")
    r = sim.wait_until(lambda r: r["counts"]["ota_pushes_seen"] >= n and r["counts"]["ota_checks"] >= 2 * n
                       and r["counts"]["app_acks"] >= 60, 60)
    rc, rep = sim.stop()
    ck.eq(rc, 0, "gizsim exits 0 on SIGINT")
    if ck.ok(rep is not None, "final report"):
        c = rep["counts"]
        ck.eq(c["reused"], n, "state reused")
        ck.eq(c["registered"], 0, "nothing registered again")
        ck.eq(c["ota_pushes_seen"], n, "every device saw the push")
        ck.eq(c["ota_push_v41"], n, "pushes are 0x0211")
        ck.eq(c["ota_checks"], 2 * n, "each push answered by an OTA check")
        ck.ok(c["ota_offered"] >= n, "the re-check offers the new firmware (%d)" % c["ota_offered"])
        ck.ok(all(d["ota_pushes"] == 1 for d in rep["devices"]), "one push per device")
        ck.eq(c["app_users_created"], 3, "apps created their users")
        ck.eq(c["app_logins"], 3, "apps logged in")
        ck.eq(c["app_bound"], 6, "apps bound 2 devices each")
        ck.ok(c["app_commands"] >= 60, "apps sent commands (%d)" % c["app_commands"])
        ck.ok(c["app_acks"] >= 60, "acks came back (%d)" % c["app_acks"])
        ck.eq(c["app_commands"], c["app_acks"] + c["app_in_flight"],
              "every command acknowledged or still in flight at the stop")
        ck.eq(rep["errors"]["app_ack_lost"], 0, "no command lost")
        ck.eq(c["acks"], c["biz_received"], "devices acked every 0x0093 they got")
        ck.ok(c["app_count_msgs"] >= n, "0x0210 app counts received")
        bound = [d for d in rep["devices"] if d["app_count"] >= 1]
        ck.eq(len(bound), 6, "the 6 bound devices were told an app is online")
        lat = rep["latency_ms"]["ack_rtt"]
        ck.eq(lat["count"], c["app_acks"], "one RTT sample per ack")
        ck.ok(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], "RTT percentiles ordered")
        ck.eq(rep["errors"]["total"], 0, "no errors (%r)" % {k: v for k, v in rep["errors"].items() if v})
        ck.eq(c["disconnects"], 0, "no device lost its connection")

    # -- misbehaving devices ----------------------------------------------------------------
    pk2 = cloud.create_product("misbehaving")["product_key"]
    sim = Sim(["--http", http, "-p", pk2, "-n", 8, "--ping-flood", 1, "--malformed", 2,
               "--wrong-topic", 3, "--backoff-scale", 0.01, "--heartbeat", 0.5, "--duration", 300])
    ck.ok(sim.wait_line("all 8 devices connected", 60), "misbehaving fleet connects")
    r = sim.wait_until(lambda r: r["counts"]["flood_pings"] >= 300 and r["counts"]["malformed_sent"] >= 20
                       and r["counts"]["wrong_topic_sent"] >= 20 and r["devices"][0]["mqtt_attempts"] > 1, 60)
    rc, rep = sim.stop()
    ck.eq(rc, 0, "gizsim exits 0")
    ck.ok(cloud.broker.poll() is None, "broker still running")
    ck.ok(cloud.gservice.poll() is None, "GService still running")
    if ck.ok(rep is not None, "report"):
        c = rep["counts"]
        ck.ok(c["flood_pings"] >= 300, "ping flood sent (%d)" % c["flood_pings"])
        ck.ok(c["malformed_sent"] >= 20, "malformed payloads sent (%d)" % c["malformed_sent"])
        ck.ok(c["wrong_topic_sent"] >= 20, "wrong-topic publishes sent (%d)" % c["wrong_topic_sent"])
        good = [d for d in rep["devices"][3:]]
        ck.ok(all(d["mqtt_attempts"] == 1 for d in good), "well-behaved devices never lost their connection")
        flooder = rep["devices"][0]
        ck.ok(flooder["mqtt_attempts"] > 1, "the ping flooder was disconnected and came back (%d logins)"
              % flooder["mqtt_attempts"])
    status, _ = cloud.json("GET", "/admin/products", admin=True)
    ck.eq(status, 200, "GService answers after the abuse")

    # -- --create-product, and a refused admin token -----------------------------------------
    rc, rep, err = run_sim(["--http", http, "--create-product", "made by gizsim", "--admin-token",
                            cloud.admin_token, "-n", 2, "--until-ready", "--no-ota"])
    ck.eq(rc, 0, "gizsim --create-product exits 0")
    made = rep["config"]["product_key"] if rep else ""
    ck.eq(len(made), 32, "the created product key is used")
    ck.ok(rep is not None and rep["counts"]["connected"] == 2 and rep["counts"]["ota_checks"] == 0,
          "devices of the new product connect, no OTA check with --no-ota")
    status, products = cloud.json("GET", "/admin/products", admin=True)
    ck.ok(any(p.get("product_key") == made and p.get("name") == "made by gizsim"
              for p in products.get("products", [])), "the cloud lists the created product")
    rc, rep, err = run_sim(["--http", http, "--create-product", "x", "--admin-token", "wrong", "-n", 1])
    ck.eq(rc, 2, "gizsim with a refused admin token exits 2")

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
