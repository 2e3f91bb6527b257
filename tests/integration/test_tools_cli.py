# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""gizctl and gizsim without the gizcloud: every command's --help, usage errors and
the documented exit codes (1 usage, 3 unreachable), and gizsim's device behaviour
against a bare mosquitto (anonymous, --no-http): MQTT 3.1 login, the three
subscriptions, 0x0093 -> 0x0094 with the SN echoed to dev2app/<DID>/<app>,
0x0090 -> 0x0091, 0x0010 -> 0x0011 followed by 0x0012 logs at the enabled levels
only, 0x0210 / 0x0211 counted, and the JSON report.

Also the helpers the other test_tools_*.py files import (a gizsim process with
its stderr collected, gizctl runs, SIGUSR1 report snapshots)."""
import atexit
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

GIZCTL = os.path.join(harness.BUILD, "tools", "gizctl")
GIZSIM = os.path.join(harness.BUILD, "tools", "gizsim")

GIZCTL_COMMANDS = [
    ["product", "create"], ["product", "list"], ["device", "list"], ["device", "show"],
    ["firmware", "register"], ["firmware", "upload"], ["firmware", "list"], ["ota", "push"], ["logs", "tail"],
    ["user", "create"], ["login"], ["logout"], ["bind"], ["unbind"], ["bindings"], ["send"],
    ["log-level"], ["watch"], ["config"],
]


def tool_env(extra=None):
    """Environment for the tools: no settings leak in from the caller's shell."""
    env = dict(os.environ)
    for k in ("GIZ_HTTP_URL", "GIZ_HTTP_PORT", "GIZ_HOST", "GIZ_MQTT_PORT", "GIZ_MQTT_HOST",
              "GIZ_ADMIN_TOKEN", "GIZCTL_CONFIG", "GIZCTL_PASSWORD", "GIZ_PRODUCT_KEY"):
        env.pop(k, None)
    if harness.ASAN:
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:exitcode=23")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=24")
    env.update(extra or {})
    return env


class Ctl:
    """Runs gizctl against one cloud with its own config file."""

    def __init__(self, cloud=None, config=None, extra_env=None):
        self.config = config or os.path.join(tempfile.mkdtemp(prefix="gizctl-"), "config")
        env = {"GIZCTL_CONFIG": self.config}
        if cloud is not None:
            env.update({"GIZ_HTTP_URL": "http://127.0.0.1:%d" % cloud.http_port,
                        "GIZ_ADMIN_TOKEN": cloud.admin_token,
                        "GIZ_MQTT_PORT": str(cloud.mqtt_port)})
        env.update(extra_env or {})
        self.env = tool_env(env)

    def run(self, *args, stdin=None, timeout=60):
        """Returns (exit code, stdout, stderr)."""
        p = subprocess.run([GIZCTL] + [str(a) for a in args], input=stdin, capture_output=True,
                           text=True, env=self.env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def json(self, *args, stdin=None, timeout=60):
        """Runs with --json; returns (exit code, [parsed JSON lines], stderr)."""
        rc, out, err = self.run("--json", *args, stdin=stdin, timeout=timeout)
        docs = []
        for line in out.splitlines():
            line = line.strip()
            if line:
                try:
                    docs.append(json.loads(line))
                except ValueError:
                    docs.append({"_unparsed": line})
        return rc, docs, err


class Sim:
    """A gizsim process; stderr lines are collected by a thread."""

    def __init__(self, args, report=None):
        self.report = report or os.path.join(tempfile.mkdtemp(prefix="gizsim-"), "report.json")
        self.lines = queue.Queue()
        self.all_lines = []
        self.p = subprocess.Popen([GIZSIM, "--json", self.report, "--progress", "0"] +
                                  [str(a) for a in args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=tool_env())
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        atexit.register(self._kill)  # a failing test must not leave a simulator behind

    def _kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def _read(self):
        for line in self.p.stderr:
            self.all_lines.append(line.rstrip("\n"))
            self.lines.put(line)

    def wait_line(self, text, timeout=60.0):
        """Waits (bounded) for a stderr line containing `text`; True if seen."""
        for line in list(self.all_lines):
            if text in line:
                return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.p.poll() is not None and self.lines.empty():
                    return False
                continue
            if text in line:
                return True
        return False

    def snapshot(self, timeout=10.0):
        """Asks for a report with SIGUSR1 and returns it (None if none came)."""
        try:
            before = os.stat(self.report).st_mtime_ns
        except OSError:
            before = None
        self.p.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.stat(self.report).st_mtime_ns != before:
                    with open(self.report) as f:
                        return json.load(f)
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        return None

    def wait_until(self, pred, timeout=60.0):
        """Polls snapshots until pred(report) holds; returns the last report."""
        deadline = time.monotonic() + timeout
        r = None
        while time.monotonic() < deadline:
            r = self.snapshot() or r
            if r is not None and pred(r):
                return r
            time.sleep(0.2)
        return r

    def stop(self, timeout=60.0):
        """SIGINT, wait, and return (exit code, final report or None)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout=120.0):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.t.join(timeout=5)
        try:
            with open(self.report) as f:
                return self.p.returncode, json.load(f)
        except (OSError, ValueError):
            return self.p.returncode, None

    def stderr_text(self):
        return "\n".join(self.all_lines)


def run_sim(args, timeout=180.0):
    """Runs gizsim to completion; returns (exit code, report, stderr text)."""
    s = Sim(args)
    rc, rep = s.finish(timeout)
    return rc, rep, s.stderr_text()


def read_state(path):
    """[(did, passcode, mac, product_key)] of a gizsim state file."""
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            out.append(tuple(line.split()))
    return out


# -- a bare mosquitto for the MQTT-only checks -----------------------------------------
def bare_mosquitto(tmpdir):
    port = harness.free_port()
    conf = os.path.join(tmpdir, "bare.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "log_dest none\n" % port)
    p = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    harness.wait_port(port, p)
    return p, port


def framed(cmd, body=b""):
    inner = b"\x00" + struct.pack(">H", cmd) + body
    n = len(inner)
    var = bytearray()
    while True:
        b = n % 128
        n //= 128
        var.append(b | (0x80 if n else 0))
        if not n:
            break
    return b"\x00\x00\x00\x03" + bytes(var) + inner


def main():
    ck = harness.Checker("tools_cli")
    ctl = Ctl()

    # -- gizctl: help, usage errors, exit codes ----------------------------------------
    rc, out, _ = ctl.run("--help")
    ck.eq(rc, 0, "gizctl --help exits 0")
    ck.ok("Exit codes" in out and "send" in out and "product create" in out, "main help lists commands and exit codes")
    for cmd in GIZCTL_COMMANDS:
        rc, out, _ = ctl.run(*(cmd + ["--help"]))
        ck.eq(rc, 0, "gizctl %s --help exits 0" % " ".join(cmd))
        ck.ok(("gizctl " + " ".join(cmd)) in out, "gizctl %s --help shows its usage" % " ".join(cmd))
    rc, _, err = ctl.run("frobnicate")
    ck.eq(rc, 1, "unknown command is a usage error")
    ck.ok("gizctl --help" in err, "unknown command says where to look")
    rc, _, _ = ctl.run("product")
    ck.eq(rc, 1, "group without a verb is a usage error")
    rc, _, err = ctl.run("send", "ONLYDID")
    ck.eq(rc, 1, "missing argument is a usage error")
    rc, _, err = ctl.run("device", "list", "--bogus")
    ck.eq(rc, 1, "unknown option is a usage error")
    rc, _, err = ctl.run("bindings")
    ck.eq(rc, 1, "app command without login is a usage error")
    ck.ok("gizctl login" in err, "not-logged-in error says to log in")
    rc, _, err = ctl.run("ota", "push")
    ck.eq(rc, 1, "ota push without a target is a usage error")
    rc, _, err = ctl.run("product", "list", "--http", "not a url")
    ck.eq(rc, 1, "bad --http is a usage error")
    dead = harness.free_port()
    rc, _, err = ctl.run("product", "list", "--http", "http://127.0.0.1:%d" % dead,
                         "--admin-token", "x")
    ck.eq(rc, 3, "closed GService port gives exit 3 (unreachable)")
    ck.ok("--http" in err, "unreachable error says how to point gizctl elsewhere")
    rc, _, err = ctl.run("product", "list", "--http", "http://127.0.0.1:%d" % dead)
    ck.eq(rc, 1, "admin command without a token is a usage error")
    ck.ok("GIZ_ADMIN_TOKEN" in err, "missing token error names the variable")
    # A server that accepts and never answers: exit 4 (timeout).
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(4)
        rc, _, err = ctl.run("product", "list", "--http", "http://127.0.0.1:%d" % mute.getsockname()[1],
                             "--admin-token", "x", "--timeout", "0.5")
        ck.eq(rc, 4, "silent GService gives exit 4 (timeout)")

    # -- gizctl's HTTP client: chunked and close-delimited answers -----------------------
    body = b'{"products":[{"product_key":"00112233445566778899aabbccddeeff","name":"chunky"}]}'
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
               + b"0\r\nX-Trailer: 1\r\n\r\n")
    close_delimited = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body
    truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + body
    for name, answer, want_rc in (("chunked", chunked, 0), ("close-delimited", close_delimited, 0),
                                  ("truncated", truncated, 3)):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)

        def serve(sock=srv, data=answer):
            conn, _ = sock.accept()
            with conn:
                req = b""
                while b"\r\n\r\n" not in req:
                    part = conn.recv(4096)
                    if not part:
                        break
                    req += part
                for i in range(0, len(data), 5):  # dribble the answer in small pieces
                    conn.sendall(data[i:i + 5])
            sock.close()

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        rc, out, err = ctl.run("product", "list", "--http", "http://127.0.0.1:%d" % srv.getsockname()[1],
                               "--admin-token", "x", "--timeout", "10")
        th.join(timeout=10)
        ck.eq(rc, want_rc, "%s answer: exit code" % name)
        if want_rc == 0:
            ck.ok("chunky" in out and "00112233445566778899aabbccddeeff" in out, "%s answer parsed" % name)

    # -- gizsim: help and argument errors ------------------------------------------------
    p = subprocess.run([GIZSIM, "--help"], capture_output=True, text=True, env=tool_env())
    ck.eq(p.returncode, 0, "gizsim --help exits 0")
    ck.ok("--backoff-scale" in p.stdout and "--ping-flood" in p.stdout, "gizsim help lists its options")
    ck.ok("--lenient" in p.stdout and "--ota-version" in p.stdout, "gizsim help: --lenient, --ota-version")
    for bad in (["--devices", "0"], ["--devices", "x"], ["--rate", "-1"], ["--no-http"],
                ["--mqtt-version", "5"], ["--ota-version", "42"], ["stray"]):
        p = subprocess.run([GIZSIM] + bad, capture_output=True, text=True, env=tool_env())
        ck.eq(p.returncode, 1, "gizsim %s is a usage error" % " ".join(bad))
    p = subprocess.run([GIZSIM, "--no-http", "--mqtt-port", "1"], capture_output=True, text=True,
                       env=tool_env())
    ck.eq(p.returncode, 1, "gizsim without a product key is a usage error")
    ck.ok("--product-key" in p.stderr, "missing product key error says what to pass")

    # -- gizsim devices against a bare mosquitto ----------------------------------------
    import paho.mqtt.client as mqtt

    tmp = tempfile.mkdtemp(prefix="gizsim-bare-")
    broker, port = bare_mosquitto(tmp)
    try:
        pk = "0123456789abcdef0123456789abcdef"
        state = os.path.join(tmp, "state")
        n = 20
        sim = Sim(["--no-http", "--mqtt-port", port, "-p", pk, "-n", n, "-s", state,
                   "--heartbeat", "0.2", "--log-interval", "0.2", "--rate", "1000"])
        ck.ok(sim.wait_line("all %d devices connected" % n), "all %d simulated devices connect" % n)
        devs = read_state(state)
        ck.eq(len(devs), n, "state file lists every device")
        ck.eq(oct(os.stat(state).st_mode & 0o777), "0o600", "state file is private (0600)")
        did = devs[0][0]
        did_quiet = devs[1][0]

        got = queue.Queue()
        app = mqtt.Client(client_id="usrTESTAPP0000000000000", protocol=mqtt.MQTTv311)
        app.on_message = lambda c, u, m: got.put((m.topic, bytes(m.payload)))
        app.connect("127.0.0.1", port)
        app.loop_start()
        app.subscribe("dev2app/#")
        time.sleep(0.3)
        # A strict (firmware-like) device reads one packet per recv(): a bare mosquitto
        # does not pace what it forwards, so the test does (0.1 s apart).
        for topic, payload in (
                ("app2dev/%s/usrTESTAPP0000000000000" % did,
                 framed(0x0093, struct.pack(">I", 0xDEADBEEF) + b"\x01\x02\x03")),
                ("app2dev/%s/usrTESTAPP0000000000000" % did, framed(0x0090, b"\x42")),
                ("app2dev/%s/usrTESTAPP0000000000000" % did, framed(0x0010, b"\x00\x05")),
                ("ser2cli_res/%s" % did, b"\x00\x00\x00\x03\x02\x10\x00\x07"),
                ("ser2cli_res/%s" % did, b"\x00\x00\x00\x03\x02\x11\x01\x00\x16" + did.encode())):
            app.publish(topic, payload)
            time.sleep(0.1)
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                seen.append(got.get(timeout=0.2))
            except queue.Empty:
                pass
            levels = {m[1][8] for m in seen if len(m[1]) > 8 and m[1][5:8] == b"\x00\x00\x12"}
            if len(levels) >= 2 and sum(1 for m in seen if m[1][6:8] == b"\x00\x12") >= 6:
                break
        to_app = "dev2app/%s/usrTESTAPP0000000000000" % did
        acks = [m for m in seen if m[0] == to_app and m[1][6:8] == b"\x00\x94"]
        ck.eq(len(acks), 1, "one 0x0094 to dev2app/<DID>/<app client id>")
        ck.ok(acks and acks[0][1][8:12] == struct.pack(">I", 0xDEADBEEF), "0x0094 echoes the SN")
        replies = [m for m in seen if m[0] == to_app and m[1][6:8] == b"\x00\x91"]
        ck.ok(replies and replies[0][1][8:] == b"\x42", "0x0090 answered by 0x0091 with the data")
        ll = [m for m in seen if m[0] == to_app and m[1][6:8] == b"\x00\x11"]
        ck.eq(len(ll), 1, "0x0010 answered by 0x0011")
        logs = [m for m in seen if m[0] == "dev2app/%s" % did and m[1][6:8] == b"\x00\x12"]
        ck.ok(len(logs) >= 2, "0x0012 logs follow (%d seen)" % len(logs))
        ck.eq(sorted({m[1][8] for m in logs}), [1, 3], "logs only at the enabled levels (error, info)")
        ck.ok(not any(m[0].startswith("dev2app/%s" % did_quiet) and m[1][6:8] == b"\x00\x12" for m in seen),
              "devices without log bits send no logs")
        app.loop_stop()
        app.disconnect()

        rc, rep = sim.stop()
        ck.eq(rc, 0, "gizsim exits 0 on SIGINT")
        ck.ok(rep is not None and rep.get("final") is True, "final JSON report written")
        if rep:
            c = rep["counts"]
            ck.eq(c["connected"], n, "report: connected")
            ck.eq(c["connected_now"], n, "report: still connected at the end")
            ck.eq(c["mqtt_attempts"], n, "report: one login per device")
            ck.eq(c["app_count_requests"], n, "report: one 0x020F per device")
            ck.eq(c["acks"], 1, "report: acks")
            ck.eq(c["biz_replies"], 1, "report: biz replies")
            ck.eq(c["log_level_sets"], 1, "report: log level sets")
            ck.eq(c["app_count_msgs"], 1, "report: 0x0210 counted")
            ck.eq(c["ota_pushes_seen"], 1, "report: 0x0211 counted")
            ck.ok(c["logs_sent"] >= len(logs), "report: logs_sent covers what was seen")
            ck.ok(c["pongs"] > 0 and c["pongs"] <= c["pings_sent"], "report: heartbeats answered")
            ck.eq(rep["errors"]["total"], 0, "report: no errors")
            ck.eq(rep["firmware"]["strict"], True, "report: strict (firmware) devices by default")
            ck.eq(rep["firmware"]["packets_lost"], 0, "report: no packet lost in a recv")
            ck.eq(len(rep["devices"]), n, "report: per-device detail for a small fleet")
            d0 = [d for d in rep["devices"] if d["did"] == did]
            ck.ok(d0 and d0[0]["log_bits"] == 5 and d0[0]["app_count"] == 7, "report: device detail (log bits, app count)")
            for key in ("p50", "p90", "p99"):
                ck.ok(key in rep["latency_ms"]["connect"], "report: connect latency %s" % key)

        # --lenient: several packets in one read are all handled (the old reader).
        sim = Sim(["--no-http", "--mqtt-port", port, "-p", pk, "-n", 1, "--lenient"])
        ck.ok(sim.wait_line("all 1 devices connected"), "lenient device connects")
        lenient_did = None
        r = sim.snapshot()
        if r and r["devices"]:
            lenient_did = r["devices"][0]["did"]
        burst = mqtt.Client(client_id="usrTESTAPP0000000000001", protocol=mqtt.MQTTv311)
        burst.connect("127.0.0.1", port)
        burst.loop_start()
        for _ in range(20):
            burst.publish("app2dev/%s/usrTESTAPP0000000000001" % lenient_did, framed(0x0090, b"\x01"))
        r = sim.wait_until(lambda r: r["counts"]["biz_received"] >= 20, 20)
        burst.loop_stop()
        burst.disconnect()
        rc, rep = sim.stop()
        if ck.ok(rep is not None, "lenient report"):
            ck.eq(rep["firmware"]["strict"], False, "--lenient: not strict")
            ck.eq(rep["counts"]["biz_received"], 20, "--lenient: a burst of 20 is handled whole")
            ck.eq(rep["firmware"]["packets_lost"], 0, "--lenient: nothing lost")

        # Reusing the state file: same DIDs, nothing new.
        rc, rep, err = run_sim(["--no-http", "--mqtt-port", port, "-s", state, "-n", n, "--until-ready"])
        if not ck.eq(rc, 0, "second run exits 0"):
            print(err)
        ck.ok(rep is not None and rep["counts"]["reused"] == n, "second run reuses the saved DIDs")
        ck.ok(rep is not None and sorted(d["did"] for d in rep["devices"]) == sorted(d[0] for d in devs),
              "second run uses the same DIDs")

        # Reconnect with back-off: the broker goes away and comes back on the same port.
        sim = Sim(["--no-http", "--mqtt-port", port, "-p", pk, "-n", 5, "--backoff-scale", "0.01",
                   "--heartbeat", "0.2"])
        ck.ok(sim.wait_line("all 5 devices connected"), "5 devices connect")
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=10)
        r = sim.wait_until(lambda r: r["counts"]["disconnects"] >= 5 and r["counts"]["connected_now"] == 0, 30)
        ck.ok(r is not None and r["counts"]["connected_now"] == 0, "devices notice the broker is gone")
        time.sleep(0.3)
        broker = subprocess.Popen(["mosquitto", "-c", os.path.join(tmp, "bare.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        harness.wait_port(port, broker)
        r = sim.wait_until(lambda r: r["counts"]["connected_now"] == 5, 60)
        ck.ok(r is not None and r["counts"]["connected_now"] == 5, "all devices reconnect")
        rc, rep = sim.stop()
        ck.eq(rc, 0, "gizsim exits 0")
        if rep:
            ck.ok(rep["counts"]["reconnects"] >= 5, "report: reconnects counted (%d)" % rep["counts"]["reconnects"])
            ck.ok(rep["errors"]["mqtt_connect"] + rep["errors"]["peer_closed"] + rep["errors"]["io_error"] >= 5,
                  "report: the lost connections are errors by kind")
    finally:
        if broker.poll() is None:
            broker.send_signal(signal.SIGTERM)
            broker.wait(timeout=10)
    ck.done()


if __name__ == "__main__":
    main()
