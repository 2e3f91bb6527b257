# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""A dead broker no longer looks alive (issue 12 item 6, GService side).

With the real broker and a device logged in, the admin API shows it online and
pushes are accepted. After kill -9 of mosquitto the presence flags in the store
stay as they were, but once the broker's heartbeat is older than
GIZ_BROKER_MAX_AGE the GService reports the device offline with presence
"unknown" (list, detail, online filter, app bindings, /metrics) and answers
OTA pushes 503 broker_unavailable. A restarted broker is trusted again.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import bind, device_client, new_device, new_user  # noqa: E402

MAX_AGE = 10  # s; the plugin beats every 5 s


def device(cloud, did):
    st, d = cloud.json("GET", "/admin/devices/" + did, admin=True)
    return d if st == 200 else {}


def poll(pred, tries=80, pause=0.5):
    """Bounded wait: True once pred() holds."""
    for _ in range(tries):
        if pred():
            return True
        time.sleep(pause)
    return False


def metric(cloud, name):
    st, _, body = cloud.http("GET", "/metrics")
    m = re.search(r"^%s (\S+)" % name, body.decode(), re.M) if st == 200 else None
    return float(m.group(1)) if m else None


def main():
    c = harness.Checker("gservice_broker_liveness")
    with harness.Cloud(broker=True, gservice_env={"GIZ_BROKER_MAX_AGE": str(MAX_AGE)}) as cloud:
        pk = cloud.create_product()["product_key"]
        did, pc = new_device(cloud, pk, "alive00001")
        user = new_user(cloud, "liveness")
        bind(cloud, user, did, pc)
        dev = device_client(cloud, did, pc)
        dev.subscribe("ser2cli_res/" + did)
        c.ok(poll(lambda: device(cloud, did).get("presence") == "online"), "device online while the broker runs")
        d = device(cloud, did)
        c.eq((d.get("online"), d.get("broker", {}).get("alive")), (True, True), "detail: online, broker alive")
        st, r = cloud.json("POST", "/admin/ota/push", {"did": did}, admin=True)
        c.eq((st, r.get("targets")), (202, 1), "push accepted while the broker runs")
        c.eq(metric(cloud, "gizcloud_broker_alive"), 1.0, "gizcloud_broker_alive 1")

        cloud.broker.kill()  # kill -9: no clean stop, the store keeps online = 1
        cloud.broker.wait()
        t0 = time.monotonic()
        c.ok(poll(lambda: device(cloud, did).get("presence") == "unknown"),
             "after kill -9 the device's presence becomes unknown")
        print("presence unknown %.1f s after kill -9 (GIZ_BROKER_MAX_AGE %d s, beat every 5 s)"
              % (time.monotonic() - t0, MAX_AGE), flush=True)
        d = device(cloud, did)
        c.eq((d.get("online"), d.get("broker", {}).get("alive")), (False, False),
             "detail: offline, broker not alive")
        c.ok((d.get("broker", {}).get("heartbeat_age_ms") or 0) > MAX_AGE * 1000, "the heartbeat's age is shown")
        st, lst = cloud.json("GET", "/admin/devices?product_key=" + pk, admin=True)
        c.eq([(x.get("did"), x.get("online"), x.get("presence")) for x in lst.get("devices", [])],
             [(did, False, "unknown")], "list: offline, presence unknown")
        st, lst = cloud.json("GET", "/admin/devices?online=1", admin=True)
        c.eq((lst.get("devices"), lst.get("total")), ([], 0), "online filter: nothing is known to be online")
        st, b = cloud.json("GET", "/app/bindings", headers={"X-Gizwits-User-token": user["token"]})
        c.eq([x.get("is_online") for x in b.get("devices", [])], [False], "app bindings: is_online false")
        st, r = cloud.json("POST", "/admin/ota/push", {"did": did}, admin=True)
        c.eq((st, r.get("error")), (503, "broker_unavailable"), "push to a DID: 503 broker_unavailable")
        st, r = cloud.json("POST", "/admin/ota/push", {"product_key": pk, "type": 1}, admin=True)
        c.eq((st, r.get("error")), (503, "broker_unavailable"), "push to a product: 503 broker_unavailable")
        c.eq((metric(cloud, "gizcloud_broker_alive"), metric(cloud, "gizcloud_devices_online")), (0.0, 0.0),
             "/metrics: broker not alive, no device online")
        dev.close()

        cloud.start_broker()  # a new broker: trusted again (it marks every device offline at start)
        c.ok(poll(lambda: device(cloud, did).get("broker", {}).get("alive") is True), "restarted broker trusted")
        c.eq(device(cloud, did).get("presence"), "offline", "device offline (not connected) after the restart")
        st, r = cloud.json("POST", "/admin/ota/push", {"did": did}, admin=True)
        c.eq((st, r.get("targets")), (202, 0), "push accepted again, 0 online targets")
    c.done()


if __name__ == "__main__":
    main()
