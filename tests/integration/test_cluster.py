# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Several brokers and GServices on one store (issue 18).

Two nodes, each a real GService and a real mosquitto loading the plugin
(broker_name b1 / b2, advertising its own loopback port), share one store:
PostgreSQL when GIZ_TEST_PG_URI names a fresh database (pgserver.py run --
...), else one SQLite file (WAL) in a temporary folder. Checked:
- both brokers register and are alive (GET /admin/brokers, gizctl broker list);
- provision spreads devices over both brokers and every GService answers the
  same broker for a device; bindings answer each device's broker;
- an app that connects where bindings say receives from devices on both
  brokers, and each device gets its 0x0210 count;
- an OTA push for the product reaches devices on both brokers; a kick through
  either GService closes the device wherever it is; /metrics shows both
  brokers' series labelled broker="b1"/"b2" and passes promtool;
- SIGKILL of broker b1: its devices are reported offline within seconds (a
  'disconnect' event, reason 'broker lost'), re-provisioning sends them to b2,
  where they log in and are online again;
- SIGKILL of GService 1: GService 2 serves provision, bindings and pushes and
  has everything GService 1 wrote before it died.
Waits are bounded polling loops; nothing is asserted about speed beyond
"within N seconds" with generous N.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import RawClient, Paho, app_count_payload, bind, new_device, new_user, wait_for  # noqa: E402

PG_URI = os.environ.get("GIZ_TEST_PG_URI", "")
PROMTOOL = shutil.which("promtool")
GIZCTL = os.path.join(harness.BUILD, "tools", "gizctl")
OFFLINE_BOUND = 40.0  # s: b1's devices offline after SIGKILL (liveness timeout 8 s + sweep 2 s)
N_DEV = 6


def ota41(ftype, did):
    return b"\x00\x00\x00\x03\x02\x11" + bytes([ftype]) + len(did).to_bytes(2, "big") + did.encode()


class Node(harness.Cloud):
    """A GService + a broker of the cluster: its own folder, ports and logs, the shared store."""

    def __init__(self, name, store, keyfile):
        super().__init__(gservice=True, broker=True)
        self.name = name
        self.db_path = store
        self.plugin_opts.update({"db_path": store, "broker_name": name,
                                 "advertise_host": "127.0.0.1", "advertise_port": str(self.mqtt_port),
                                 "passcode_key": keyfile, "stats_interval": "0"})
        self.gservice_env.update({"GIZ_PASSCODE_KEY": keyfile})


def poll(pred, timeout):
    """Bounded wait (plugin_mqtt.wait_for, polling every 0.25 s): the first truthy
    pred() value, or the last one after timeout."""
    return wait_for(pred, timeout, step=0.25)


def provision(node, did):
    st, _, body = node.http("GET", "/dev/devices/" + did)
    if st != 200:
        return None
    f = dict(kv.split("=", 1) for kv in body.decode().split("&") if "=" in kv)
    return f.get("host"), int(f.get("port", "0"))


def device_state(node, did):
    st, d = node.json("GET", "/admin/devices/" + did, admin=True)
    return d if st == 200 else {}


def login_device(port, did, pc, pk):
    c = RawClient(port)
    rc = c.connect(did, did, pc, keepalive=120)
    if rc != 0:
        raise RuntimeError("device %s refused on port %d: %r" % (did, port, rc))
    for t in ("ser2cli_noti/" + pk, "ser2cli_res/" + did, "app2dev/%s/#" % did):
        c.subscribe(t)
    return c


def publishes(dev, want, timeout):
    """Reads dev's PUBLISHes for up to timeout s; True once `want` (topic, payload) arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = dev.read_publish(max(0.05, deadline - time.monotonic()))
        if p is None:
            continue
        if p == want:
            return True
    return False


def metric_brokers(text, series):
    return set(re.findall(r'^%s\{broker="([^"]+)"' % re.escape(series), text, re.M))


def main():
    if "--pg" in sys.argv and not PG_URI:
        print("--pg: GIZ_TEST_PG_URI is not set (run under tests/common/pgserver.py run --)", flush=True)
        sys.exit(2)
    ck = harness.Checker("cluster")
    tmp = tempfile.mkdtemp(prefix="gizcluster-")
    os.chmod(tmp, 0o755)
    store = PG_URI or os.path.join(tmp, "gizcloud.db")
    keyfile = os.path.join(tmp, "passcode.key")
    print("store: %s" % ("PostgreSQL" if PG_URI else "SQLite " + store), flush=True)
    n1 = Node("b1", store, keyfile)
    n2 = Node("b2", store, keyfile)
    devs = {}
    app_clients = []
    t_begin = time.monotonic()
    try:
        n1.__enter__()
        n2.__enter__()
        port = {"b1": n1.mqtt_port, "b2": n2.mqtt_port}
        by_port = {n1.mqtt_port: "b1", n2.mqtt_port: "b2"}

        # -- registry -------------------------------------------------------
        def alive_names(node):
            st, j = node.json("GET", "/admin/brokers", admin=True)
            return sorted(b["name"] for b in j.get("brokers", []) if b.get("alive")) if st == 200 else []
        ck.eq(poll(lambda: alive_names(n1) == ["b1", "b2"] and alive_names(n1), 30), ["b1", "b2"],
              "GET /admin/brokers: b1 and b2 alive")
        st, j = n2.json("GET", "/admin/brokers", admin=True)
        ck.eq(sorted((b["name"], b["host"], b["port"]) for b in j.get("brokers", [])),
              [("b1", "127.0.0.1", n1.mqtt_port), ("b2", "127.0.0.1", n2.mqtt_port)],
              "each broker's advertised address, seen by the other GService")
        env = dict(os.environ, GIZ_ADMIN_TOKEN=n1.admin_token, GIZ_HTTP_PORT=str(n1.http_port))
        if harness.ASAN:
            env = harness.sanitizer_env(env)
        p = subprocess.run([GIZCTL, "broker", "list"], capture_output=True, text=True, env=env, timeout=30)
        ck.ok(p.returncode == 0 and re.search(r"^b1 .* yes ", p.stdout, re.M)
              and re.search(r"^b2 .* yes ", p.stdout, re.M) and "2 broker(s), 2 alive" in p.stdout,
              "gizctl broker list: %s" % (p.stdout + p.stderr)[-400:])

        # -- provision spreads, every GService answers the same ----------------
        pk = n1.create_product("cluster")["product_key"]
        assigned = {}
        for i in range(N_DEV):
            did, pc = new_device(n1 if i % 2 else n2, pk)
            a = provision(n1 if i % 2 == 0 else n2, did)
            b = provision(n2 if i % 2 == 0 else n1, did)
            ck.eq(b, a, "device %d: both GServices answer the same broker" % i)
            assigned[did] = (pc, by_port.get(a[1]) if a else None)
        counts = {"b1": 0, "b2": 0}
        for _, (_, b) in assigned.items():
            if b in counts:
                counts[b] += 1
        ck.eq(counts, {"b1": N_DEV // 2, "b2": N_DEV // 2}, "provision spreads %d devices 3/3" % N_DEV)
        for did, (pc, b) in assigned.items():
            devs[did] = login_device(port[b], did, pc, pk)
        ck.ok(poll(lambda: all(device_state(n2, d).get("online") for d in devs), 20),
              "every device online (seen by GService 2)")
        ck.eq(sorted(device_state(n1, d).get("broker", {}).get("name") for d in devs),
              ["b1"] * 3 + ["b2"] * 3, "device detail names its broker")

        # -- an app bound to devices on both brokers ---------------------------
        user = new_user(n1, "cluster_app")
        for i, (did, (pc, _)) in enumerate(assigned.items()):
            bind(n2 if i % 2 else n1, user, did, pc)
        st, bl = n2.json("GET", "/app/bindings", headers={"X-Gizwits-User-token": user["token"]})
        got = {d["did"]: (d["host"], d["port"]) for d in bl.get("devices", [])}
        ck.eq(got, {did: ("127.0.0.1", port[b]) for did, (_, b) in assigned.items()},
              "bindings answer each device's broker")
        apps = {}
        for b in ("b1", "b2"):  # the app follows bindings: one connection per broker
            apps[b] = Paho(port[b], user["mqtt_client_id"], user["uid"], user["token"])
            app_clients.append(apps[b])
            ck.eq(apps[b].rc, 0, "app logs in on %s" % b)
        for did, (_, b) in assigned.items():
            apps[b].subscribe("dev2app/" + did)
        # each device's count: one app online where it is
        for did, (_, b) in assigned.items():
            ck.ok(publishes(devs[did], ("ser2cli_res/" + did, app_count_payload(1)), 10),
                  "device on %s gets 0x0210 count 1" % b)
        for did in devs:
            devs[did].publish("dev2app/" + did, b"\x00\x00\x00\x03\x04\x00\x00\x91\x01")
        seen = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(seen) < N_DEV:
            for b in apps:
                for topic, _ in apps[b].drain(0.2):
                    seen.add(topic.split("/")[1])
        ck.eq(seen, set(devs), "the app received from every device on both brokers")

        # -- OTA push, kick, metrics across brokers ----------------------------
        n1.upload_firmware(pk, 1, "04020099", b"\xAB" * 4096)
        st, r = n2.json("POST", "/admin/ota/push", {"product_key": pk, "type": 1}, admin=True)
        ck.eq((st, r.get("targets")), (202, N_DEV), "OTA push for the product: 6 targets")
        ck.ok(all(publishes(devs[d], ("ser2cli_res/" + d, ota41(1, d)), 10) for d in devs),
              "every device on both brokers gets 0x0211")
        b2_dids = [d for d, (_, b) in assigned.items() if b == "b2"]
        kicked = b2_dids[0]
        st, _ = n1.json("POST", "/admin/devices/%s/kick" % kicked, admin=True)
        ck.ok(st in (200, 202) and devs[kicked].wait_closed(10),
              "a kick through GService 1 closes a device on broker b2 (%s)" % st)
        devs[kicked] = login_device(n2.mqtt_port, kicked, assigned[kicked][0], pk)

        def scrape():
            st, _, body = n2.http("GET", "/metrics")
            return body.decode() if st == 200 else ""
        text = poll(lambda: (lambda t: t if metric_brokers(t, "gizcloud_broker_devices_connected")
                             == {"b1", "b2"} else "")(scrape()), 15)
        ck.eq(metric_brokers(text, "gizcloud_broker_devices_connected"), {"b1", "b2"},
              "/metrics: gizcloud_broker_devices_connected for broker b1 and b2")
        ck.eq(metric_brokers(text, "gizcloud_broker_up"), {"b1", "b2"}, "/metrics: gizcloud_broker_up per broker")
        ck.eq(len(re.findall(r"^# TYPE gizcloud_broker_logins_total ", text, re.M)), 1,
              "one TYPE line per family, the brokers' samples under it")
        if PROMTOOL:
            broker = "".join(l + "\n" for l in text.splitlines() if "gizcloud_broker_" in l)
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=broker.encode(), capture_output=True,
                               timeout=30)
            ck.eq(p.returncode, 0, "promtool check metrics, both brokers' series: %s"
                  % (p.stdout + p.stderr).decode()[-400:])

        # -- broker b1 dies -----------------------------------------------------
        b1_dids = [d for d, (_, b) in assigned.items() if b == "b1"]
        n1.broker.send_signal(signal.SIGKILL)
        n1.broker.wait()
        t0 = time.monotonic()
        ok = poll(lambda: not any(device_state(n2, d).get("online") for d in b1_dids), OFFLINE_BOUND)
        print("b1's devices offline %.1f s after SIGKILL (timeout 8 s, beat 2 s)" % (time.monotonic() - t0),
              flush=True)
        ck.ok(ok, "b1's devices offline within %d s of its SIGKILL" % OFFLINE_BOUND)
        ck.ok(all(device_state(n2, d).get("online") for d in b2_dids), "b2's devices still online")
        st, ev = n2.json("GET", "/admin/devices/%s/events?kind=disconnect" % b1_dids[0], admin=True)
        ck.ok(any(e.get("reason") == "broker lost" and e.get("broker") == "b1" for e in ev.get("events", [])),
              "timeline: disconnect, reason 'broker lost', broker b1")
        st, j = n2.json("GET", "/admin/brokers", admin=True)
        ck.eq(sorted((b["name"], b["alive"]) for b in j.get("brokers", [])), [("b1", False), ("b2", True)],
              "registry: b1 dead, b2 alive")
        for d in b1_dids:  # firmware re-provisions after failed logins
            devs[d].close()
            ck.eq(provision(n1, d), ("127.0.0.1", n2.mqtt_port), "re-provision sends %s to b2" % d)
            devs[d] = login_device(n2.mqtt_port, d, assigned[d][0], pk)
        ck.ok(poll(lambda: all(device_state(n1, d).get("online") for d in devs), 20),
              "every device online again, all on b2")
        ck.eq(sorted(set(device_state(n1, d).get("broker", {}).get("name") for d in devs)), ["b2"],
              "every device's broker is b2")

        # -- GService 1 dies --------------------------------------------------------
        before = n1.create_product("written by gservice 1")["product_key"]
        n1.gservice.send_signal(signal.SIGKILL)
        n1.gservice.wait()
        st, pl = n2.json("GET", "/admin/products", admin=True)
        ck.ok(before in [p["product_key"] for p in pl.get("products", [])],
              "GService 2 has the product GService 1 wrote before it died")
        st, lst = n2.json("GET", "/admin/devices?product_key=" + pk, admin=True)
        ck.eq((len(lst.get("devices", [])), sum(1 for d in lst.get("devices", []) if d.get("online"))),
              (N_DEV, N_DEV), "GService 2 lists all devices, all online")
        st, bl = n2.json("GET", "/app/bindings", headers={"X-Gizwits-User-token": user["token"]})
        ck.eq(len(bl.get("devices", [])), N_DEV, "the user's bindings are all there")
        new_did, _ = new_device(n2, pk)
        ck.eq(provision(n2, new_did), ("127.0.0.1", n2.mqtt_port), "a new device provisions on the live broker")
        st, r = n2.json("POST", "/admin/ota/push", {"did": b1_dids[0]}, admin=True)
        ck.eq((st, r.get("targets")), (202, 1), "push through GService 2")
        ck.ok(publishes(devs[b1_dids[0]], ("ser2cli_res/" + b1_dids[0], ota41(1, b1_dids[0])), 10),
              "the moved device gets it from b2")
        print("cluster scenario took %.1f s" % (time.monotonic() - t_begin), flush=True)
    finally:
        for c in app_clients:
            c.close()
        for d in devs.values():
            d.close()
        c2 = n2.stop()
        c1 = n1.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ck.eq((c1.get("gservice"), c1.get("mosquitto")), (-9, -9), "node 1's processes were the ones killed")
    ck.eq((c2.get("gservice"), c2.get("mosquitto")), (0, 0), "node 2 stops cleanly")
    ck.done()


if __name__ == "__main__":
    main()
