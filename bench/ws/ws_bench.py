#!/usr/bin/python3
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""WebSocket app API vs the MQTT app path, same run: messages/s of the round
trip app -> device -> app (c2s_raw 0x0090 -> device echoes 0x0091 on
dev2app/<did>/<client id> -> s2c_raw) with W messages in flight, and the
round-trip latency (one at a time, p50/p99), against the same app user
speaking MQTT directly (publish app2dev/<did>/<client id>, receive
dev2app/<did>/<client id>) through the same broker, plugin and echo device.
Both app clients are Python (python3-websocket, paho) on the same machine;
the echo device is one paho client. Informational: prints a table, exits 0.

  /usr/bin/python3 bench/ws/ws_bench.py [--build DIR] [--seconds 5] [--reps 3] [--window 32]

DIR defaults to build-bench (bench/run's optimized, unsanitized tree), built
here if its binaries are missing."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
ap.add_argument("--seconds", type=float, default=5.0)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--window", type=int, default=32)
ap.add_argument("--latency-n", type=int, default=2000)
args = ap.parse_args()

if not os.path.exists(os.path.join(args.build, "gservice", "giz-gservice")):
    if not os.path.exists(os.path.join(args.build, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", args.build, "-DCMAKE_BUILD_TYPE=Release",
                        "-DGIZ_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", args.build, "--target", "giz_plugin", "giz-gservice", "-j2"],
                   check=True, stdout=subprocess.DEVNULL)
os.environ["GIZ_BUILD_DIR"] = args.build
os.environ["GIZ_SOURCE_DIR"] = ROOT
os.environ["GIZ_ASAN"] = "0"
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402
import plugin_mqtt as pm  # noqa: E402
import websocket  # noqa: E402

REQ = bytes([0, 0, 0, 3, 4, 0, 0, 0x90, 2])
RAW = list(REQ)


class EchoDevice:
    """Answers every 0x0090 on app2dev/<did>/<cid> with 0x0091 on dev2app/<did>/<cid>."""

    def __init__(self, cloud, did, passcode):
        self.c = paho.Client(client_id=did, protocol=paho.MQTTv311)
        self.c.username_pw_set(did, passcode)
        self.did = did
        self.ready = threading.Event()
        self.c.on_connect = lambda c, u, f, rc: (c.subscribe("app2dev/%s/#" % did), self.ready.set())
        self.c.on_message = self._msg
        self.c.connect("127.0.0.1", cloud.mqtt_port, 60)
        self.c.loop_start()
        self.ready.wait(5)

    def _msg(self, c, u, m):
        cid = m.topic.rsplit("/", 1)[-1]
        p = bytes(m.payload)
        c.publish("dev2app/%s/%s" % (self.did, cid), p[:7] + b"\x91" + p[8:], qos=0)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class MqttApp:
    def __init__(self, cloud, user, did):
        self.got = 0
        self.cv = threading.Condition()
        self.c = paho.Client(client_id=user["mqtt_client_id"], protocol=paho.MQTTv311)
        self.c.username_pw_set(user["uid"], user["token"])
        ready = threading.Event()
        self.c.on_connect = lambda c, u, f, rc: (c.subscribe("dev2app/%s/%s" % (did, user["mqtt_client_id"])),
                                                 ready.set())
        self.c.on_subscribe = lambda c, u, mid, g: ready.set()
        self.c.on_message = self._msg
        self.topic = "app2dev/%s/%s" % (did, user["mqtt_client_id"])
        self.c.connect("127.0.0.1", cloud.mqtt_port, 60)
        self.c.loop_start()
        ready.wait(5)
        time.sleep(0.3)

    def _msg(self, c, u, m):
        with self.cv:
            self.got += 1
            self.cv.notify()

    def send(self):
        self.c.publish(self.topic, REQ, qos=0)

    def wait_got(self, n, timeout=5):
        with self.cv:
            end = time.monotonic() + timeout
            while self.got < n and time.monotonic() < end:
                self.cv.wait(end - time.monotonic())
            return self.got >= n

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class WsApp:
    def __init__(self, cloud, user, did):
        self.ws = websocket.create_connection("ws://127.0.0.1:%d/ws/app/v1" % cloud.http_port, timeout=5)
        self.ws.send(json.dumps({"cmd": "login_req", "data": {"uid": user["uid"], "token": user["token"],
                                                              "p0_type": "custom", "heartbeat_interval": 180,
                                                              "auto_subscribe": False}}))
        assert json.loads(self.ws.recv())["data"]["success"]
        self.ws.send(json.dumps({"cmd": "subscribe_req", "data": [{"did": did}]}))
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if json.loads(self.ws.recv())["cmd"] == "subscribe_res":
                break
        self.msg = json.dumps({"cmd": "c2s_raw", "data": {"did": did, "raw": RAW}})
        self.got = 0

    def send(self):
        self.ws.send(self.msg)

    def recv_one(self):
        while True:
            m = json.loads(self.ws.recv())
            if m["cmd"] == "s2c_raw":
                self.got += 1
                return

    def close(self):
        self.ws.close()


def throughput_ws(app, secs, window):
    sent = 0
    for _ in range(window):
        app.send()
        sent += 1
    t0 = time.monotonic()
    done0 = app.got
    while time.monotonic() - t0 < secs:
        app.recv_one()
        app.send()
        sent += 1
    n = app.got - done0
    dt = time.monotonic() - t0
    for _ in range(window):  # drain
        app.recv_one()
    return n / dt


def throughput_mqtt(app, secs, window):
    base = app.got
    sent = 0
    for _ in range(window):
        app.send()
        sent += 1
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        if app.wait_got(base + sent - window + 1, timeout=5):
            app.send()
            sent += 1
        else:
            break
    n = app.got - base
    dt = time.monotonic() - t0
    app.wait_got(base + sent)
    return n / dt


def latency(send, wait_one, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        send()
        wait_one()
        out.append((time.perf_counter() - t) * 1e6)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99)]


def main():
    with harness.Cloud(gservice_env={"GIZ_LOG_LEVEL": "warn"}) as cloud:
        pk = cloud.create_product("wsbench")["product_key"]
        did, pc = pm.new_device(cloud, pk)
        wsu = pm.new_user(cloud, "benchws")
        mqu = pm.new_user(cloud, "benchmqtt")
        pm.bind(cloud, wsu, did, pc)
        pm.bind(cloud, mqu, did, pc)
        dev = EchoDevice(cloud, did, pc)
        wsa = WsApp(cloud, wsu, did)
        mqa = MqttApp(cloud, mqu, did)
        ws_rates, mq_rates = [], []
        for rep in range(args.reps):
            order = [("ws", wsa), ("mqtt", mqa)] if rep % 2 == 0 else [("mqtt", mqa), ("ws", wsa)]
            for name, app in order:
                if name == "ws":
                    ws_rates.append(throughput_ws(app, args.seconds, args.window))
                else:
                    mq_rates.append(throughput_mqtt(app, args.seconds, args.window))
        ws_lat = latency(wsa.send, wsa.recv_one, args.latency_n)

        def mq_wait():
            mqa.wait_got(mqa.got_target)

        def mq_send():
            mqa.got_target = mqa.got + 1
            mqa.send()
        mq_lat = latency(mq_send, mq_wait, args.latency_n)
        gs_cpu = None
        try:
            with open("/proc/%d/stat" % cloud.gservice.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
                gs_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
        wsa.close()
        mqa.close()
        dev.close()
    wm, mm = statistics.median(ws_rates), statistics.median(mq_rates)
    print("WebSocket app API vs MQTT app path (round trip app -> device -> app, window %d, %d x %.0f s)"
          % (args.window, args.reps, args.seconds))
    print("| path | msg/s median (min-max) | RTT p50 / p99 (one in flight) |")
    print("|---|---|---|")
    print("| WebSocket /ws/app/v1 | %.0f (%.0f-%.0f) | %.0f / %.0f us |" % (wm, min(ws_rates), max(ws_rates),
                                                                          ws_lat[0], ws_lat[1]))
    print("| MQTT app | %.0f (%.0f-%.0f) | %.0f / %.0f us |" % (mm, min(mq_rates), max(mq_rates),
                                                              mq_lat[0], mq_lat[1]))
    print("ratio WebSocket / MQTT: %.2f (throughput), %.2f (p50 latency)" % (wm / mm, ws_lat[0] / mq_lat[0]))
    if gs_cpu is not None:
        print("GService CPU over the whole run: %.2f s" % gs_cpu)
    with open("/proc/loadavg") as f:
        print("load average at the end: %s" % f.read().strip())


main()
