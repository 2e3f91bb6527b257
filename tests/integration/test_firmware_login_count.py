# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Issue 10 defect 3: the 0x0210 a device gets at login while a bound app is online
must reach firmware that ignores PUBLISHes until its third SUBACK and never sends
0x020F. An app is bound and online before the device logs in; a strict gizsim device
(--no-app-count: no 0x020F, like the gateway client of the report) logs in, subscribes
like firmware and must learn the count 1 from the cloud's own push, at every one of
several logins; nothing may have been dropped before its last SUBACK. A second app
coming online while the device is up must raise the count to 2."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import app_paho, bind, new_device, new_mac, new_user  # noqa: E402
from test_tools_cli import Sim  # noqa: E402

ck = harness.Checker("firmware_login_count")
LOGINS = 3

with harness.Cloud(broker=True) as cloud:
    http = "http://127.0.0.1:%d" % cloud.http_port
    pk = cloud.create_product("login count")["product_key"]
    mac = new_mac()
    pc = "0aeb9953f9"
    did = cloud.register_device(pk, mac, pc)
    tmp = tempfile.mkdtemp(prefix="fw-count-")
    state = os.path.join(tmp, "state")
    with open(state, "w") as f:
        f.write("%s %s %s %s\n" % (did, pc, mac, pk))
    os.chmod(state, 0o600)

    alice = new_user(cloud, "fwcount-alice")
    bind(cloud, alice, did, pc)
    app = app_paho(cloud, alice)
    ck.eq(app.rc, 0, "the app is online before the device logs in")

    for i in range(LOGINS):
        sim = Sim(["--http", http, "-n", 1, "-s", state, "--no-app-count", "--no-ota",
                   "--duration", 120])
        ck.ok(sim.wait_line("all 1 devices connected", 60), "login %d: device connected" % i)
        r = sim.wait_until(lambda r: r["devices"][0]["app_count_msgs"] >= 1, 8)
        if i == LOGINS - 1 and r is not None and r["devices"][0]["app_count"] == 1:
            bob = new_user(cloud, "fwcount-bob")
            bind(cloud, bob, did, pc)
            app2 = app_paho(cloud, bob)
            r = sim.wait_until(lambda r: r["devices"][0]["app_count"] == 2, 8)
            ck.eq(r["devices"][0]["app_count"] if r else None, 2,
                  "a second app coming online is counted (2)")
            app2.close()
        rc, rep = sim.stop()
        ck.eq(rc, 0, "login %d: gizsim exits 0" % i)
        if ck.ok(rep is not None, "login %d: report" % i):
            dev = rep["devices"][0]
            ck.eq(rep["firmware"]["strict"], True, "login %d: strict device" % i)
            ck.eq(rep["counts"]["app_count_requests"], 0, "login %d: the device never asked (no 0x020F)" % i)
            ck.ok(dev["app_count_msgs"] >= 1, "login %d: the device got a 0x0210 (%d)" % (i, dev["app_count_msgs"]))
            ck.ok(dev["app_count"] >= 1, "login %d: it knows an app is online (count %d)" % (i, dev["app_count"]))
            ck.eq(rep["firmware"]["publishes_before_suback"], 0,
                  "login %d: nothing reached it before its third SUBACK" % i)
            ck.eq(rep["firmware"]["packets_lost"], 0, "login %d: no packet lost in a recv" % i)
        time.sleep(0.2)
    app.close()

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
