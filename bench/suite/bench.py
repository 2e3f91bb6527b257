# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""gizcloud benchmark suite (run by bench/run; not a test, never pass/fail).

Every figure is a ratio of gizcloud to a baseline measured in the same run, the
two alternating (baseline first on even repetitions, gizcloud first on odd ones),
over several repetitions; the median ratio and its min-max spread are reported,
with the absolute medians beside them. Figures:

  throughput  QoS 0 messages/s, app2dev and dev2app, 64 B and 1 KiB payloads:
              mosquitto_pub --repeat -> mosquitto_sub -C through the cloud (mosquitto +
              plugin, which reads the client sockets through its interposition) vs bare
              mosquitto (anonymous, plain TCP listener).
  events      the same QoS 0 64 B workloads through the plugin with its MQTT timeline
              events on (plugin_opt_events 1) vs the same build with them off; the
              broker main thread's CPU per message on both sides gives the event cost.
  logins      new TCP + CONNECT + CONNACK + DISCONNECT per second (loginstorm.c, 32 in
              flight; Python fallback), each fleet device once per pass: cloud (pass 1 cold =
              PBKDF2 + SQLite, pass 2 warm = credential cache) vs mosquitto's stock
              dynamic-security plugin holding the same clients (generated JSON config).
  idle        broker VmRSS and open descriptors per idle connected gizsim device: cloud
              vs bare at the same N (19,000 in a full run: fd limit 20,000).
  parser      ns per message of the plugin's framing/limit module (lib/mqtt_guard.c),
              bench/suite/guardbench.c (no syscalls: the guard's own share).
  latency     0x020F -> 0x0210 round trip (device -> plugin -> device) vs an echo
              round trip through bare mosquitto (client -> broker -> echo client ->
              broker -> client).
  ota         POST /admin/ota/push for a product -> every online gizsim device has seen
              0x0211, vs one client publishing the same N targeted 0x0211 messages
              (ser2cli_res/<DID>, one write) through bare mosquitto to the same fleet.
  gservice    wrk requests/s, provision GET and register POST, GService vs the
              libmicrohttpd hello-world (bench/gservice/hello.c, giz-bench-hello).

Writes results JSON (--json) and RESULTS.md (--md). Usage: see bench/README.md.
"""
import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import platform
import re
import shutil
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DYNSEC = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
ADMIN_TOKEN = "bench-admin-token-%s" % os.urandom(8).hex()


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------------------
# small helpers

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited (%s) before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on port %d" % port)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def summary(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "values": v}


# ---------------------------------------------------------------------------
# raw MQTT 3.1.1 packets (enough for the latency and login drivers)

def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">H", len(s)) + s


def connect_packet(cid, user=None, pw=None, keepalive=120):
    flags = 0x02
    payload = _str(cid)
    if user is not None:
        flags |= 0x80
        payload += _str(user)
    if pw is not None:
        flags |= 0x40
        payload += _str(pw)
    body = _str("MQTT") + bytes([4, flags]) + struct.pack(">H", keepalive) + payload
    return b"\x10" + _varint(len(body)) + body


def subscribe_packet(mid, topic):
    body = struct.pack(">H", mid) + _str(topic) + b"\x00"
    return b"\x82" + _varint(len(body)) + body


def publish_packet(topic, payload):
    body = _str(topic) + payload
    return b"\x30" + _varint(len(body)) + body


class Raw:
    """One blocking MQTT connection reading whole packets."""

    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _need(self, n):
        while len(self.buf) < n:
            c = self.s.recv(65536)
            if not c:
                raise EOFError("peer closed")
            self.buf += c

    def packet(self):
        """Returns (type byte, body bytes)."""
        self._need(2)
        mult, length, i = 1, 0, 1
        while True:
            self._need(i + 1)
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        self._need(i + length)
        t, body = self.buf[0], self.buf[i:i + length]
        self.buf = self.buf[i + length:]
        return t, body

    def publish_in(self):
        """Waits for the next PUBLISH; returns (topic, payload)."""
        while True:
            t, body = self.packet()
            if t >> 4 == 3:
                n = struct.unpack(">H", body[:2])[0]
                topic = body[2:2 + n].decode()
                off = 2 + n + (2 if (t >> 1) & 3 else 0)
                return topic, body[off:]

    def connect(self, cid, user=None, pw=None):
        self.s.sendall(connect_packet(cid, user, pw))
        t, body = self.packet()
        return body[1] if t == 0x20 else -1

    def subscribe(self, topic, mid=1):
        self.s.sendall(subscribe_packet(mid, topic))
        while True:
            t, body = self.packet()
            if t == 0x90:
                return body[2]

    def close(self):
        try:
            self.s.sendall(b"\xe0\x00")
        except OSError:
            pass
        self.s.close()


# ---------------------------------------------------------------------------
# processes: brokers, GService

class Bench:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.plugin = os.path.join(self.build, "plugin", "giz_plugin.so")
        self.gservice_bin = os.path.join(self.build, "gservice", "giz-gservice")
        self.hello_bin = os.path.join(self.build, "gservice", "giz-bench-hello")
        self.gizsim = os.path.join(self.build, "tools", "gizsim")
        self.dir = tempfile.mkdtemp(prefix="gizbench-")
        os.chmod(self.dir, 0o755)
        self.db = os.path.join(self.dir, "gizcloud.db")
        self.procs = []
        self.gs = None
        self.gs_port = None
        self.results = {}
        self.errors = {}
        self.nofile = None
        try:
            import resource
            self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
        except Exception:
            pass

    def spawn(self, name, argv, env=None, stdout=None):
        logf = open(os.path.join(self.dir, "%s.%d.log" % (name, len(self.procs))), "wb")
        p = subprocess.Popen(argv, stdout=stdout if stdout is not None else logf, stderr=logf,
                             env=env or dict(os.environ), start_new_session=True)
        p.logpath = logf.name
        self.procs.append(p)
        return p

    def stop(self, p, timeout=20):
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)

    # -- GService (fixtures, OTA push) -------------------------------------
    def start_gservice(self, data_dir=None, port=None, m2m_port=1883, db=None):
        port = port or free_port()
        data_dir = data_dir or self.dir
        env = dict(os.environ)
        env.update({"GIZ_HTTP_PORT": str(port), "GIZ_DATA_DIR": data_dir,
                    "GIZ_DB_PATH": db or os.path.join(data_dir, "gizcloud.db"),
                    "GIZ_ADMIN_TOKEN": ADMIN_TOKEN, "GIZ_M2M_HOST": "127.0.0.1",
                    "GIZ_M2M_PORT": str(m2m_port), "GIZ_HTTP_THREADS": "2",
                    "GIZ_PUBLIC_URL": "http://127.0.0.1:%d" % port})
        p = self.spawn("gservice", [self.gservice_bin], env)
        wait_port(port, p)
        return p, port

    def http(self, method, path, body=None, admin=False, headers=None, form=None, port=None):
        url = "http://127.0.0.1:%d%s" % (port or self.gs_port, path)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif form is not None:
            data = form.encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        if admin:
            h["Authorization"] = "Bearer " + ADMIN_TOKEN
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    # -- brokers -------------------------------------------------------------
    def broker(self, mode, extra=(), plugin_extra=()):
        """Starts mosquitto: mode 'bare' (anonymous TCP listener), 'dynsec' (stock
        dynamic-security plugin, TCP listener) or 'cloud' (giz_plugin, mosquitto's TCP
        listener on .port: the production layout). Same common settings for all (the
        production deploy/mosquitto.conf ones: persistence off, info logging,
        max_packet_size, max_keepalive, set_tcp_nodelay)."""
        port = free_port()
        lines = ["user root"] if os.geteuid() == 0 else []
        lines += ["per_listener_settings false", "persistence false", "log_dest stderr",
                  "log_type error", "log_type warning", "log_type notice", "log_type information",
                  "max_packet_size 300000", "max_keepalive 600", "set_tcp_nodelay true"]
        lines += list(extra)
        direct = None
        if mode == "bare":
            lines += ["allow_anonymous true", "listener %d 127.0.0.1" % port]
        elif mode == "dynsec":
            lines += ["allow_anonymous false", "listener %d 127.0.0.1" % port,
                      "plugin " + DYNSEC, "plugin_opt_config_file " + self.dynsec_json]
        elif mode == "cloud":
            direct = port  # one listener; kept as an attribute for the callers
            lines += ["allow_anonymous false", "listener %d 127.0.0.1" % port,
                      "plugin " + self.plugin, "plugin_opt_db_path " + self.db,
                      "plugin_opt_ping_max 180", "plugin_opt_ping_window 180",
                      "plugin_opt_keepalive_max 600"]
            lines += list(plugin_extra)  # more plugin_opt_* lines (after the plugin line)
        else:
            raise ValueError(mode)
        conf = os.path.join(self.dir, "mosquitto-%s.conf" % mode)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = self.spawn("mosquitto-" + mode, ["mosquitto", "-c", conf])
        p.port = port
        p.direct_port = direct
        p.mode = mode
        wait_port(port, p)
        time.sleep(0.3)
        return p

    # -- fixtures --------------------------------------------------------------
    def fixtures(self):
        a = self.args
        self.gs, self.gs_port = self.start_gservice()
        st, body = self.http("POST", "/admin/products", {"name": "bench"}, admin=True)
        if st != 201:
            raise RuntimeError("create product: %s %r" % (st, body))
        self.pk = json.loads(body)["product_key"]
        self.state = os.path.join(self.dir, "fleet.state")
        b = self.broker("cloud")
        try:
            log("registering and connecting a fleet of %d devices with gizsim" % a.fleet)
            t0 = time.monotonic()
            rc, rep = self.gizsim_run(["-n", str(a.fleet), "-p", self.pk, "-s", self.state,
                                       "--http", "http://127.0.0.1:%d" % self.gs_port,
                                       "--mqtt-port", str(b.direct_port), "--no-ota", "--until-ready",
                                       "--rate", "2000", "--http-concurrency", "32",
                                       "--connect-timeout", "10", "--backoff-scale", "0.2",
                                       "-d", "600"], timeout=900)
            log("fleet ready in %.1f s (gizsim rc %s, connected %s)" % (
                time.monotonic() - t0, rc, rep.get("counts", {}).get("connected") if rep else None))
        finally:
            self.stop(b)
        self.fleet = []
        with open(self.state) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                p = line.split()
                if len(p) == 4:
                    self.fleet.append((p[0], p[1]))
        if len(self.fleet) < a.fleet:
            raise RuntimeError("only %d of %d devices registered" % (len(self.fleet), a.fleet))
        self.did, self.pc = self.fleet[0]
        # an app user bound to the first device (throughput app2dev / dev2app)
        st, body = self.http("POST", "/app/users", {"username": "benchapp", "password": "benchpass123"})
        if st != 201:
            raise RuntimeError("create user: %s %r" % (st, body))
        st, body = self.http("POST", "/app/login", {"username": "benchapp", "password": "benchpass123"})
        self.app = json.loads(body)
        st, body = self.http("POST", "/app/bindings", {"devices": [{"did": self.did, "passcode": self.pc}]},
                             headers={"X-Gizwits-User-token": self.app["token"]})
        if st != 201 or not json.loads(body).get("success"):
            raise RuntimeError("bind: %s %r" % (st, body))
        # dynamic-security config holding the same clients (username DID, password passcode)
        self.dynsec_json = os.path.join(self.dir, "dynsec.json")
        write_dynsec(self.dynsec_json, self.fleet)

    def gizsim_run(self, argv, timeout):
        """Runs gizsim to completion; returns (rc, report dict)."""
        rep = os.path.join(self.dir, "gizsim-%d.json" % time.monotonic_ns())
        p = self.spawn("gizsim", [self.gizsim, "-q", "--progress", "0", "--json", rep] + argv)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(p)
        if p in self.procs:
            self.procs.remove(p)
        try:
            with open(rep) as f:
                return p.returncode, json.load(f)
        except (OSError, ValueError):
            return p.returncode, {}

    def gizsim_fleet(self, port, n, extra=(), timeout=300, rate=3000):
        """Starts gizsim with the first n fleet devices (MQTT only) and waits until all are
        connected. Returns (process, report path, seconds to connect) or raises."""
        rep = os.path.join(self.dir, "gizsim-%d.json" % time.monotonic_ns())
        state = os.path.join(self.dir, "fleet-%d.state" % n)
        if not os.path.exists(state):
            shutil.copy(self.state, state)
        p = self.spawn("gizsim", [self.gizsim, "--no-http", "--no-ota", "-p", self.pk, "-s", state,
                                  "-n", str(n), "--mqtt-port", str(port), "--rate", str(rate),
                                  "--progress", "0", "-q", "--json", rep, "-d", "3600",
                                  "--connect-timeout", "10", "--backoff-scale", "0.2"] + list(extra))
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            with open(p.logpath, "rb") as f:
                txt = f.read()
            if b"devices connected after" in txt:
                return p, rep, time.monotonic() - t0
            if p.poll() is not None:
                break
            time.sleep(0.1)
        self.stop(p)
        raise RuntimeError("gizsim: %d devices not all connected within %ds" % (n, timeout))

    def gizsim_counts(self, p, rep):
        """Asks gizsim for its report now (SIGUSR1) and returns its counts."""
        try:
            os.unlink(rep)
        except OSError:
            pass
        p.send_signal(signal.SIGUSR1)
        for _ in range(200):
            try:
                with open(rep) as f:
                    return json.load(f)["counts"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.005)
        return {}


def write_dynsec(path, fleet):
    """dynamic-security JSON with one client per device (username = DID, password =
    passcode, PBKDF2-SHA512 with 101 iterations and a 12-byte salt, as mosquitto_ctrl
    writes it) and one role allowing the device topics."""
    clients = []
    for did, pc in fleet:
        salt = os.urandom(12)
        h = hashlib.pbkdf2_hmac("sha512", pc.encode(), salt, 101, 64)
        clients.append({"username": did, "password": base64.b64encode(h).decode(),
                        "salt": base64.b64encode(salt).decode(), "iterations": 101,
                        "roles": [{"rolename": "device"}]})
    roles = [{"rolename": "device", "acls": [
        {"acltype": "publishClientSend", "topic": "dev2app/%u/#", "allow": True},
        {"acltype": "publishClientSend", "topic": "cli2ser_req", "allow": True},
        {"acltype": "subscribePattern", "topic": "app2dev/%u/#", "allow": True},
        {"acltype": "subscribePattern", "topic": "ser2cli_res/%u", "allow": True},
        {"acltype": "subscribePattern", "topic": "ser2cli_noti/+", "allow": True}]}]
    doc = {"clients": clients, "roles": roles,
           "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                                "subscribe": False, "unsubscribe": True}}
    with open(path, "w") as f:
        json.dump(doc, f)


# ---------------------------------------------------------------------------
# benchmarks

def device_payload(size):
    """A framed 0x0091 report of exactly `size` bytes (what devices send)."""
    body_len = size - 4 - 1 - 3
    while True:
        vl = len(_varint(3 + body_len))
        if 4 + vl + 3 + body_len == size:
            break
        body_len -= 1
    return (b"\x00\x00\x00\x03" + _varint(3 + body_len) + b"\x00\x00\x91" +
            bytes((0x41 + i % 26) for i in range(body_len)))


def thread_cpu(pid):
    """{thread name: CPU seconds (user + system)} of every thread of pid, summed by name,
    and of its child processes (the plugin's timeline writer, "giz-events")."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(k) for k in f.read().split()]
    except (OSError, ValueError):
        kids = []
    for kid in kids:
        for name, v in thread_cpu(kid).items():
            key = "main" if name == "main" else name
            key = "child " + (_comm(kid) if key == "main" else key)
            out[key] = out.get(key, 0.0) + v
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        name = "main" if tid == str(pid) else comm
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tck
    return out


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return str(pid)


def cpu_delta(before, after):
    return {k: after[k] - before.get(k, 0.0) for k in after}


def throughput_once(port, pub_auth, sub_auth, pub_topic, sub_topic, payload_file, n, pid=None, cpu=None):
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", sub_topic,
                            "-C", str(n), "-W", "90", "-q", "0"] + sub_auth,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.7)
    c0 = thread_cpu(pid) if pid else {}
    t0 = time.monotonic()
    pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", pub_topic,
                          "-f", payload_file, "--repeat", str(n), "-q", "0"] + pub_auth,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sub.wait(100)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub.wait()
    dt = time.monotonic() - t0
    if pid and cpu is not None:
        cpu.update({k: v * 1e6 / n for k, v in cpu_delta(c0, thread_cpu(pid)).items()})
    if pub.returncode != 0 or sub.returncode != 0:
        log("  throughput failed: pub rc %s %r, sub rc %s %r" % (
            pub.returncode, pub.stderr[-200:], sub.returncode, sub.stderr.read()[-200:]))
        return None
    return n / dt


def bench_throughput(b, reps):
    a = b.args
    did, pc = b.did, b.pc
    app = b.app
    dev_auth = ["-i", did, "-u", did, "-P", pc]
    app_auth = ["-i", app["mqtt_client_id"], "-u", app["uid"], "-P", app["token"]]
    files = {}
    for size in (64, 1024):
        files[size] = os.path.join(b.dir, "payload-%d.bin" % size)
        with open(files[size], "wb") as f:
            f.write(device_payload(size))
    work = [("app2dev", 64), ("dev2app", 64), ("app2dev", 1024), ("dev2app", 1024)]
    raw = {"%s_%d" % w: {"cloud": [], "bare": [], "ratio": [],
                         "cpu_us_per_msg": {"cloud": [], "bare": []}} for w in work}
    for rep in range(reps):
        order = ("bare", "cloud") if rep % 2 == 0 else ("cloud", "bare")
        got = {}
        for mode in order:
            # GIZ_BENCH_TP_OPTS: extra plugin_opt_* lines for the cloud side ("a;b"), e.g.
            # "plugin_opt_device_gap 0;plugin_opt_events 0" to see what pacing and the timeline cost
            tp_extra = [l for l in os.environ.get("GIZ_BENCH_TP_OPTS", "").split(";") if l.strip()]
            br = b.broker(mode, ["max_queued_messages 0"], tp_extra if mode == "cloud" else ())
            port = br.port
            try:
                for direction, size in work:
                    n = a.messages if size == 64 else a.messages_1k
                    cpu = {}
                    if direction == "app2dev":
                        r = throughput_once(port, app_auth, dev_auth, "app2dev/%s/%s" % (
                            did, app["mqtt_client_id"]), "app2dev/%s/#" % did, files[size], n, br.pid, cpu)
                    else:
                        r = throughput_once(port, dev_auth, app_auth, "dev2app/" + did,
                                            "dev2app/" + did, files[size], n, br.pid, cpu)
                    got[(mode, direction, size)] = r
                    raw["%s_%d" % (direction, size)]["cpu_us_per_msg"][mode].append(cpu)
                    log("  throughput rep %d %-5s %s %4d B: %s msg/s; broker CPU us/msg %s" % (
                        rep, mode, direction, size, "%.0f" % r if r else "failed",
                        " ".join("%s %.2f" % kv for kv in sorted(cpu.items()))))
            finally:
                b.stop(br)
        for direction, size in work:
            k = "%s_%d" % (direction, size)
            c, bb = got.get(("cloud", direction, size)), got.get(("bare", direction, size))
            raw[k]["cloud"].append(c)
            raw[k]["bare"].append(bb)
            raw[k]["ratio"].append(c / bb if c and bb else None)
    return raw


def bench_events(b, reps):
    """QoS 0 throughput of the plugin with its MQTT timeline events on
    (plugin_opt_events 1, the default: a publish_in per dev2app message, a
    publish_out per app2dev delivery, written by the DB batch) against the
    same build with them off (plugin_opt_events 0), and the broker's CPU per
    message on both sides (main thread, and all threads: the writer thread
    included): the differences are the event cost per message."""
    a = b.args
    did, pc = b.did, b.pc
    app = b.app
    dev_auth = ["-i", did, "-u", did, "-P", pc]
    app_auth = ["-i", app["mqtt_client_id"], "-u", app["uid"], "-P", app["token"]]
    path = os.path.join(b.dir, "payload-64.bin")
    with open(path, "wb") as f:
        f.write(device_payload(64))
    work = ("app2dev", "dev2app")
    raw = {w: {"on": [], "off": [], "ratio": [], "cpu_us_per_msg": {"on": [], "off": []}} for w in work}
    for rep in range(reps):
        order = ("off", "on") if rep % 2 == 0 else ("on", "off")
        got = {}
        for side in order:
            br = b.broker("cloud", ["max_queued_messages 0"],
                          ["plugin_opt_events %d" % (1 if side == "on" else 0)])
            try:
                for direction in work:
                    cpu = {}
                    if direction == "app2dev":
                        r = throughput_once(br.port, app_auth, dev_auth, "app2dev/%s/%s" % (
                            did, app["mqtt_client_id"]), "app2dev/%s/#" % did, path, a.messages, br.pid, cpu)
                    else:
                        r = throughput_once(br.port, dev_auth, app_auth, "dev2app/" + did,
                                            "dev2app/" + did, path, a.messages, br.pid, cpu)
                    got[(side, direction)] = r
                    raw[direction]["cpu_us_per_msg"][side].append(cpu)
                    log("  events rep %d %-3s %s 64 B: %s msg/s; broker CPU us/msg: main %.2f, all threads %.2f" % (
                        rep, side, direction, "%.0f" % r if r else "failed", cpu.get("main") or 0.0,
                        sum(cpu.values())))
            finally:
                b.stop(br)
        for direction in work:
            on, off = got.get(("on", direction)), got.get(("off", direction))
            raw[direction]["on"].append(on)
            raw[direction]["off"].append(off)
            raw[direction]["ratio"].append(on / off if on and off else None)
    return raw


def _login_worker(job):
    port, creds = job
    ok = 0
    for did, pc in creds:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(connect_packet(did, did, pc))
            ack = b""
            while len(ack) < 4:
                c = s.recv(4 - len(ack))
                if not c:
                    break
                ack += c
            if ack[:2] == b"\x20\x02" and ack[3:4] == b"\x00":
                ok += 1
            s.sendall(b"\xe0\x00")
            s.close()
        except OSError:
            pass
    return ok


def login_pass(port, creds, procs):
    jobs = [(port, creds[i::procs]) for i in range(procs)]
    with multiprocessing.Pool(procs) as pool:
        t0 = time.monotonic()
        ok = sum(pool.map(_login_worker, jobs, chunksize=1))
        dt = time.monotonic() - t0
    return ok / dt, ok


def login_storm(exe, port, cred_file, n, inflight):
    """Runs the C driver (bench/suite/loginstorm.c); returns (logins/s, accepted)."""
    out = subprocess.run([exe, str(port), cred_file, str(inflight)], capture_output=True, text=True, timeout=600)
    kv = dict(x.split("=", 1) for x in out.stdout.split() if "=" in x)
    if out.returncode != 0 or "ok" not in kv:
        raise RuntimeError("loginstorm failed: %r %r" % (out.stdout[-200:], out.stderr[-200:]))
    ok = int(kv["ok"])
    return ok / float(kv["seconds"]), ok


def bench_logins(b, reps):
    a = b.args
    creds = b.fleet[:a.logins]
    exe = a.loginstorm if a.loginstorm and os.access(a.loginstorm, os.X_OK) else None
    cred_file = os.path.join(b.dir, "login-creds")
    with open(cred_file, "w") as f:
        f.write("".join("%s %s\n" % c for c in creds))
    os.chmod(cred_file, 0o600)
    log("  login driver: %s" % ("loginstorm (C, epoll, %d in flight)" % a.login_inflight if exe
                                else "Python, %d processes" % a.login_procs))
    raw = {"cold": {"cloud": [], "base": [], "ratio": []}, "warm": {"cloud": [], "base": [], "ratio": []},
           "ceiling": {"bare": [], "dynsec_over_bare": []}, "accepted": {}, "driver": "loginstorm/%d" % a.login_inflight if exe else "python/%d" % a.login_procs,
           "cpu_us_per_login": {}}
    for rep in range(reps):
        # bare: mosquitto with no authentication at all (anonymous, no plugin): the
        # ceiling any authenticating broker on this machine can reach (one pass)
        order = ("dynsec", "cloud", "bare") if rep % 2 == 0 else ("bare", "cloud", "dynsec")
        got = {}
        for mode in order:
            br = b.broker(mode)
            try:
                for pas in (("cold", "warm") if mode != "bare" else ("cold",)):
                    c0 = thread_cpu(br.pid)
                    if exe:
                        r, ok = login_storm(exe, br.port, cred_file, len(creds), a.login_inflight)
                    else:
                        r, ok = login_pass(br.port, creds, a.login_procs)
                    cpu = {k: v * 1e6 / len(creds) for k, v in cpu_delta(c0, thread_cpu(br.pid)).items()}
                    raw["cpu_us_per_login"].setdefault("%s_%s" % (mode, pas), []).append(cpu)
                    got[(mode, pas)] = r if ok == len(creds) else None
                    raw["accepted"]["%s_%s_%d" % (mode, pas, rep)] = ok
                    log("  logins rep %d %-6s %s: %.0f/s (%d/%d accepted); broker CPU us/login %s" % (
                        rep, mode, pas, r, ok, len(creds), " ".join("%s %.0f" % kv for kv in sorted(cpu.items()))))
            finally:
                b.stop(br)
        bare, dw = got.get(("bare", "cold")), got.get(("dynsec", "warm"))
        raw["ceiling"]["bare"].append(bare)
        raw["ceiling"]["dynsec_over_bare"].append(dw / bare if bare and dw else None)
        for pas in ("cold", "warm"):
            c, d = got.get(("cloud", pas)), got.get(("dynsec", pas))
            raw[pas]["cloud"].append(c)
            raw[pas]["base"].append(d)
            raw[pas]["ratio"].append(c / d if c and d else None)
    return raw


def idle_once(b, mode, n):
    # GIZ_BENCH_IDLE_OPTS: extra plugin_opt_* lines for the cloud side (e.g.
    # "plugin_opt_events 0" to see what the timeline's state costs per device)
    extra = [l for l in os.environ.get("GIZ_BENCH_IDLE_OPTS", "").split(";") if l.strip()]
    br = b.broker(mode, plugin_extra=extra if mode == "cloud" else ())
    try:
        time.sleep(0.5)
        base = rss_kib(br.pid)
        fds0 = nfds(br.pid)
        # cold logins (PBKDF2) on mosquitto's listener (backlog 100): a gentle ramp so
        # the accept queue does not overflow into SYN retries and login timeouts
        g, rep, secs = b.gizsim_fleet(br.port, n, rate=1500)
        try:
            time.sleep(3.0)
            after = rss_kib(br.pid)
            fds = nfds(br.pid)
            counts = b.gizsim_counts(g, rep)
        finally:
            b.stop(g)
        return {"rss0_kib": base, "rss_kib": after, "per_conn_kib": (after - base) / n, "fds": fds,
                "fds0": fds0, "fds_per_conn": (fds - fds0) / n,
                "connected_now": counts.get("connected_now"), "connect_s": secs}
    finally:
        b.stop(br)


def bench_idle(b, reps, n):
    """Broker RSS and descriptors per idle device: cloud vs bare, same N."""
    raw = {"n": n, "cloud": [], "bare": [], "extra_kib": [], "ratio": [], "fds_per_conn": {"cloud": [], "bare": []},
           "detail": []}
    for rep in range(reps):
        order = ("bare", "cloud") if rep % 2 == 0 else ("cloud", "bare")
        got = {}
        for mode in order:
            try:
                got[mode] = idle_once(b, mode, n)
                log("  idle rep %d %-6s N=%d: RSS %d -> %d KiB, %.2f KiB/conn, fds %d -> %d (%.3f/conn), "
                    "%s connected" % (rep, mode, n, got[mode]["rss0_kib"], got[mode]["rss_kib"],
                                      got[mode]["per_conn_kib"], got[mode]["fds0"], got[mode]["fds"],
                                      got[mode]["fds_per_conn"], got[mode].get("connected_now")))
            except Exception as e:  # noqa: BLE001 - one failed sample must not end the suite
                log("  idle rep %d %s failed: %s" % (rep, mode, e))
        c, bb = got.get("cloud"), got.get("bare")
        raw["cloud"].append(c["per_conn_kib"] if c else None)
        raw["bare"].append(bb["per_conn_kib"] if bb else None)
        raw["extra_kib"].append(c["per_conn_kib"] - bb["per_conn_kib"] if c and bb else None)
        raw["ratio"].append(c["per_conn_kib"] / bb["per_conn_kib"] if c and bb and bb["per_conn_kib"] else None)
        raw["fds_per_conn"]["cloud"].append(c["fds_per_conn"] if c else None)
        raw["fds_per_conn"]["bare"].append(bb["fds_per_conn"] if bb else None)
        raw["detail"].append(got)
    return raw


def bench_parser(b, reps):
    """Runs bench/suite/guardbench.c (compiled by bench/run) reps x 3 times; medians."""
    exe = b.args.guardbench
    raw = {}
    if not exe or not os.access(exe, os.X_OK):
        raise RuntimeError("guardbench not built (bench/run compiles bench/suite/guardbench.c)")
    for _ in range(max(3, reps * 3)):
        out = subprocess.run([exe], capture_output=True, text=True, timeout=120)
        for line in out.stdout.split():
            k, _, v = line.partition("=")
            if k.endswith("_ns"):
                raw.setdefault(k, []).append(float(v))
    log("  parser ns/message (medians): %s" % " ".join(
        "%s %.1f" % (k, statistics.median(v)) for k, v in sorted(raw.items())))
    return raw


def percentile(sorted_v, p):
    if not sorted_v:
        return None
    k = (len(sorted_v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_v) - 1)
    return sorted_v[lo] + (sorted_v[hi] - sorted_v[lo]) * (k - lo)


def _echo_main(port, ready):
    c = Raw(port, timeout=60)
    c.connect("bench-echo")
    c.subscribe("bench/echo/in")
    ready.set()
    try:
        while True:
            _, payload = c.publish_in()
            c.s.sendall(publish_packet("bench/echo/out", payload))
    except (EOFError, OSError):
        pass


def latency_cloud(b, port, n):
    """Returns (samples ms, unsolicited 0x0210 seen). 0x020F carries no sequence number,
    so a 0x0210 the plugin pushes by itself (count change) would shift every later
    sample by one: after each answer, anything already pending is read and that sample
    dropped."""
    c = Raw(port)
    if c.connect(b.did, b.did, b.pc) != 0:
        raise RuntimeError("device login refused")
    c.subscribe("ser2cli_res/" + b.did)
    c.s.settimeout(1.0)
    try:
        while True:
            c.packet()
    except (socket.timeout, BlockingIOError):
        c.buf = b""
    c.s.settimeout(10)
    req = publish_packet("cli2ser_req", b"\x00\x00\x00\x03\x02\x0f")
    out = []
    extra = 0
    for _ in range(n):
        t0 = time.perf_counter()
        c.s.sendall(req)
        while True:
            topic, payload = c.publish_in()
            if payload[4:6] == b"\x02\x10":
                break
        dt = (time.perf_counter() - t0) * 1000.0
        r, _, _ = select.select([c.s], [], [], 0)
        if r or c.buf:
            c.s.settimeout(0.05)
            try:
                while True:
                    c.packet()
                    extra += 1
            except (socket.timeout, BlockingIOError):
                c.buf = b""
            c.s.settimeout(10)
            continue
        out.append(dt)
    # every answer should have been consumed: a late one means the pairing slipped
    c.s.settimeout(0.3)
    try:
        while True:
            c.packet()
            extra += 1
    except (socket.timeout, BlockingIOError):
        pass
    c.close()
    return out, extra


def latency_bare(port, n):
    ready = multiprocessing.Event()
    echo = multiprocessing.Process(target=_echo_main, args=(port, ready), daemon=True)
    echo.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("echo client did not start")
        c = Raw(port)
        c.connect("bench-lat")
        c.subscribe("bench/echo/out")
        msg = publish_packet("bench/echo/in", b"\x00\x00\x00\x03\x02\x0f")
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            c.s.sendall(msg)
            c.publish_in()
            out.append((time.perf_counter() - t0) * 1000.0)
        c.close()
        return out
    finally:
        echo.terminate()
        echo.join(5)


def bench_latency(b, reps):
    n = b.args.latency_n
    raw = {k: {"cloud": [], "bare": [], "ratio": []} for k in ("p50", "p99")}
    for rep in range(reps):
        order = ("bare", "cloud") if rep % 2 == 0 else ("cloud", "bare")
        got = {}
        for mode in order:
            br = b.broker(mode)
            try:
                if mode == "cloud":
                    s, extra = latency_cloud(b, br.port, n)
                    raw.setdefault("unsolicited", []).append(extra)
                else:
                    s = latency_bare(br.port, n)
                s.sort()
                got[mode] = {"p50": percentile(s, 50), "p99": percentile(s, 99)}
                log("  latency rep %d %-5s: p50 %.3f ms p99 %.3f ms max %.3f ms (%d samples%s)" % (
                    rep, mode, got[mode]["p50"], got[mode]["p99"], s[-1], len(s),
                    ", %d unpaired 0x0210" % extra if mode == "cloud" else ""))
            except Exception as e:  # noqa: BLE001
                log("  latency rep %d %s failed: %s" % (rep, mode, e))
            finally:
                b.stop(br)
        for k in ("p50", "p99"):
            c = got.get("cloud", {}).get(k)
            bb = got.get("bare", {}).get(k)
            raw[k]["cloud"].append(c)
            raw[k]["bare"].append(bb)
            raw[k]["ratio"].append(c / bb if c and bb else None)
    return raw


def wait_seen(b, g, rep, start, want, t0, timeout=30.0):
    """Polls gizsim (SIGUSR1 -> JSON report) until ota_pushes_seen >= start + want.
    Returns seconds since t0, or None."""
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        counts = b.gizsim_counts(g, rep)
        if counts.get("ota_pushes_seen", 0) >= start + want:
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


def ota_once(b, mode, n):
    br = b.broker(mode)
    try:
        port = br.port
        g, rep, secs = b.gizsim_fleet(port, n, rate=1500 if mode == "cloud" else 3000)
        try:
            time.sleep(1.0)
            start = b.gizsim_counts(g, rep).get("ota_pushes_seen", 0)
            if mode == "bare":
                c = Raw(br.port)
                c.connect("bench-ota")
                data = b"".join(publish_packet("ser2cli_res/" + did, b"\x00\x00\x00\x03\x02\x11\x01\x00\x16" +
                                               did.encode()) for did, _ in b.fleet[:n])
                t0 = time.monotonic()
                c.s.sendall(data)
                dt = wait_seen(b, g, rep, start, n, t0)
                c.close()
            else:
                t0 = time.monotonic()
                st, body = b.http("POST", "/admin/ota/push", {"product_key": b.pk, "type": 1}, admin=True)
                if st != 202:
                    raise RuntimeError("ota push: %s %r" % (st, body))
                targets = json.loads(body).get("targets")
                if targets != n:
                    log("  ota: push reported %s targets, %d devices online" % (targets, n))
                dt = wait_seen(b, g, rep, start, n, t0)
            return dt, False
        finally:
            b.stop(g)
    finally:
        b.stop(br)


def bench_ota(b, reps, n):
    raw = {"n": n, "cloud": [], "bare": [], "ratio": [], "direct": None}
    for rep in range(reps):
        order = ("bare", "cloud") if rep % 2 == 0 else ("cloud", "bare")
        got = {}
        for mode in order:
            try:
                got[mode], direct = ota_once(b, mode, n)
                if mode == "cloud":
                    raw["direct"] = direct
                log("  ota rep %d %-5s N=%d%s: %s" % (rep, mode, n, " (direct listener)" if mode == "cloud" and direct
                                                      else "", "%.3f s" % got[mode] if got[mode] else "timeout"))
            except Exception as e:  # noqa: BLE001
                log("  ota rep %d %s failed: %s" % (rep, mode, e))
        c, bb = got.get("cloud"), got.get("bare")
        raw["cloud"].append(c)
        raw["bare"].append(bb)
        raw["ratio"].append(c / bb if c and bb else None)
    return raw


def wrk(port, script, secs, env):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % secs, "--latency", "-s",
                          os.path.join(ROOT, "bench", "gservice", script), "http://127.0.0.1:%d" % port],
                         capture_output=True, text=True, env=env)
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out.stdout, re.M)
    bad = re.search(r"non-20[01] answers: (\d+)", out.stdout)
    if not m:
        log("  wrk failed: %s %s" % (out.stdout[-300:], out.stderr[-300:]))
        return None, None
    return float(m.group(1)), int(bad.group(1)) if bad else None


def bench_gservice(b, reps):
    secs = b.args.wrk_secs
    raw = {k: {"cloud": [], "base": [], "ratio": [], "bad": []} for k in ("provision", "register")}
    for rep in range(reps):
        d = tempfile.mkdtemp(prefix="gizbench-gs-", dir=b.dir)
        gs, gport = b.start_gservice(data_dir=d)
        hport = free_port()
        hello = b.spawn("hello", [b.hello_bin, str(hport), "2"])
        try:
            wait_port(hport, hello)
            st, body = b.http("POST", "/admin/products", {"name": "wrk"}, admin=True, port=gport)
            pk = json.loads(body)["product_key"]
            st, body = b.http("POST", "/dev/devices", form="passcode=BENCHPASS0&mac=00163E000000&product_key=" + pk,
                              port=gport)
            did = body.decode()[4:26]
            env = dict(os.environ, GIZ_BENCH_PK=pk, GIZ_BENCH_DID=did)
            order = ("base", "cloud") if rep % 2 == 0 else ("cloud", "base")
            for k, script in (("provision", "provision.lua"), ("register", "register.lua")):
                got = {}
                for mode in order:
                    got[mode], bad = wrk(hport if mode == "base" else gport, script, secs, env)
                    if mode == "cloud":
                        raw[k]["bad"].append(bad)
                    log("  gservice rep %d %-9s %-5s: %s req/s (non-2xx %s)" % (
                        rep, k, "hello" if mode == "base" else "gs", got[mode], bad))
                raw[k]["cloud"].append(got["cloud"])
                raw[k]["base"].append(got["base"])
                raw[k]["ratio"].append(got["cloud"] / got["base"] if got["cloud"] and got["base"] else None)
        finally:
            b.stop(hello)
            b.stop(gs)
    return raw


def bench_store_pg(b, reps):
    """Register and provision req/s of the same GService build with the store on
    PostgreSQL (a throwaway server, tests/common/pgserver.py) vs SQLite (a fresh
    file), same wrk client and scripts, alternating which goes first; ratio =
    PostgreSQL / SQLite."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "common"))
    import pgserver
    secs = b.args.wrk_secs
    raw = {k: {"cloud": [], "base": [], "ratio": [], "bad": []} for k in ("provision", "register")}
    for rep in range(reps):
        got = {k: {} for k in raw}
        order = ("sqlite", "pg") if rep % 2 == 0 else ("pg", "sqlite")
        for store in order:
            d = tempfile.mkdtemp(prefix="gizbench-pg-", dir=b.dir)
            pg = pgserver.PgServer() if store == "pg" else None
            gs = None
            try:
                if pg:  # the key file must be named on PostgreSQL
                    os.environ["GIZ_PASSCODE_KEY"] = os.path.join(d, "passcode.key")
                gs, gport = b.start_gservice(data_dir=d, db=pg.uri if pg else None)
                st, body = b.http("POST", "/admin/products", {"name": "wrk"}, admin=True, port=gport)
                pk = json.loads(body)["product_key"]
                st, body = b.http("POST", "/dev/devices",
                                  form="passcode=BENCHPASS0&mac=00163E000000&product_key=" + pk, port=gport)
                did = body.decode()[4:26]
                env = dict(os.environ, GIZ_BENCH_PK=pk, GIZ_BENCH_DID=did)
                for k, script in (("provision", "provision.lua"), ("register", "register.lua")):
                    got[k][store], bad = wrk(gport, script, secs, env)
                    if store == "pg":
                        raw[k]["bad"].append(bad)
                    log("  store rep %d %-9s %-6s: %s req/s (non-2xx %s)" % (rep, k, store, got[k][store], bad))
            finally:
                os.environ.pop("GIZ_PASSCODE_KEY", None)
                if gs is not None:
                    b.stop(gs)
                if pg:
                    pg.stop()
        for k in raw:
            c, bb = got[k].get("pg"), got[k].get("sqlite")
            raw[k]["cloud"].append(c)
            raw[k]["base"].append(bb)
            raw[k]["ratio"].append(c / bb if c and bb else None)
    return raw


# ---------------------------------------------------------------------------
# report

def bench_cluster(b, reps, n):
    """Issue 18: one broker vs two on the same store, same run. Devices held: n fleet
    devices logged in (gizsim, MQTT only) to one broker, then n/2 to each of two
    (connect time, broker RSS, devices connected). QoS 0: two device->app streams of
    a.messages 64 B messages each (dev2app/<DID>, two devices bound to the app) on one
    broker at once, then one stream per broker at once; aggregate msg/s = 2 x count /
    (first publisher start -> last subscriber done)."""
    a = b.args
    raw = {"n": n, "held": {"one": [], "two": []}, "msgs": {"one": [], "two": []}, "ratio_msgs": [],
           "messages_per_stream": a.messages}
    (d0, p0), (d1, p1) = b.fleet[0], b.fleet[1]
    app = b.app
    st, body = b.http("POST", "/app/bindings", {"devices": [{"did": d1, "passcode": p1}]},
                      headers={"X-Gizwits-User-token": app["token"]})
    payload = os.path.join(b.dir, "payload-cluster.bin")
    with open(payload, "wb") as f:
        f.write(device_payload(64))
    app_auth = ["-i", app["mqtt_client_id"], "-u", app["uid"], "-P", app["token"]]
    # fleet subsets for gizsim: the first n/2 and the next n/2 devices
    with open(b.state) as f:
        lines = f.readlines()
    head = [l for l in lines if l.startswith("#")]
    devs = [l for l in lines if not l.startswith("#") and len(l.split()) == 4][:n]
    halves = []
    for i, part in enumerate((devs[:n // 2], devs[n // 2:])):
        path = os.path.join(b.dir, "cluster-half-%d.state" % i)
        with open(path, "w") as f:
            f.writelines(head + part)
        halves.append(path)
    whole = os.path.join(b.dir, "cluster-all.state")
    with open(whole, "w") as f:
        f.writelines(head + devs)

    def start(name):
        return b.broker("cloud", ["max_queued_messages 0"],
                        ["plugin_opt_broker_name " + name, "plugin_opt_advertise_host 127.0.0.1",
                         "plugin_opt_stats_interval 0"])

    def fleet(port, state, count):
        rep = os.path.join(b.dir, "gizsim-c-%d.json" % time.monotonic_ns())
        p = b.spawn("gizsim", [b.gizsim, "--no-http", "--no-ota", "-p", b.pk, "-s", state, "-n", str(count),
                               "--mqtt-port", str(port), "--rate", "3000", "--progress", "0", "-q", "--json", rep,
                               "-d", "3600", "--connect-timeout", "10", "--backoff-scale", "0.2"])
        return p, rep

    def wait_all(ps, timeout=300):
        t0 = time.monotonic()
        left = list(ps)
        while left and time.monotonic() - t0 < timeout:
            for p in list(left):
                with open(p.logpath, "rb") as f:
                    if b"devices connected after" in f.read():
                        left.remove(p)
                if p.poll() is not None and p in left:
                    raise RuntimeError("gizsim exited early")
            time.sleep(0.1)
        if left:
            raise RuntimeError("not all devices connected within %d s" % timeout)
        return time.monotonic() - t0

    def streams(pairs):
        """pairs: [(port, [(did, pc)...])]: one app subscriber per broker for its DIDs,
        one publisher per DID, all at once."""
        subs, pubs = [], []
        for port, dl in pairs:
            topics = sum((["-t", "dev2app/" + d] for d, _ in dl), [])
            subs.append(subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-C",
                                          str(a.messages * len(dl)), "-W", "120", "-q", "0"] + topics + app_auth,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        time.sleep(0.8)
        t0 = time.monotonic()
        for port, dl in pairs:
            for d, pc in dl:
                pubs.append(subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t",
                                              "dev2app/" + d, "-f", payload, "--repeat", str(a.messages),
                                              "-q", "0", "-i", d, "-u", d, "-P", pc],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        ok = True
        for p in pubs + subs:
            try:
                p.wait(130)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            ok = ok and p.returncode == 0
        dt = time.monotonic() - t0
        return 2 * a.messages / dt if ok else None

    for rep in range(reps):
        for mode in (("one", "two") if rep % 2 == 0 else ("two", "one")):
            brs = [start("bench-a")] + ([start("bench-b")] if mode == "two" else [])
            try:
                rss0 = sum(rss_kib(x.pid) for x in brs)
                if mode == "one":
                    gs = [fleet(brs[0].port, whole, n)]
                else:
                    gs = [fleet(brs[0].port, halves[0], n // 2), fleet(brs[1].port, halves[1], n - n // 2)]
                secs = wait_all([g for g, _ in gs])
                time.sleep(2.0)
                rss = sum(rss_kib(x.pid) for x in brs)
                held = {"devices": n, "connect_s": secs, "logins_per_s": n / secs if secs else None,
                        "rss_kib": rss, "rss_per_device_kib": (rss - rss0) / n}
                for g, _ in gs:
                    b.stop(g)
                if mode == "one":
                    r = streams([(brs[0].port, [(d0, p0), (d1, p1)])])
                else:
                    r = streams([(brs[0].port, [(d0, p0)]), (brs[1].port, [(d1, p1)])])
                raw["held"][mode].append(held)
                raw["msgs"][mode].append(r)
                log("  cluster rep %d %s broker(s): %d devices in %.1f s (%.0f logins/s), RSS +%.2f KiB/device; "
                    "QoS 0 two streams %s msg/s" % (rep, mode, n, secs, held["logins_per_s"] or 0,
                                                    held["rss_per_device_kib"], "%.0f" % r if r else "failed"))
            finally:
                for x in brs:
                    b.stop(x)
        one, two = raw["msgs"]["one"][-1], raw["msgs"]["two"][-1]
        raw["ratio_msgs"].append(two / one if one and two else None)
    return raw


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    mv = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.splitlines()
    wv = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {"cpu": cpu, "cores": os.cpu_count(), "ram": mem, "kernel": platform.release(),
            "os": _os_release(), "mosquitto": mv[0] if mv else "?",
            "wrk": (wv.stdout or wv.stderr).splitlines()[0] if (wv.stdout or wv.stderr) else "?",
            "python": platform.python_version()}


def _os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--only", default="throughput,events,logins,idle,parser,latency,ota,gservice,store_pg,cluster")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "out", "results.json"))
    ap.add_argument("--md", default=os.path.join(ROOT, "bench", "out", "RESULTS.md"))
    ap.add_argument("--loginstorm", help="the compiled bench/suite/loginstorm.c (else a Python driver)")
    ap.add_argument("--guardbench", help="the compiled bench/suite/guardbench.c")
    ap.add_argument("--idle-n", type=int, help="idle devices (default 19,000; --quick 1,000)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite RESULTS.md from the existing results JSON (after editing analysis.md)")
    a = ap.parse_args()
    if a.report_only:
        import report
        with open(a.json) as f:
            res = json.load(f)
        report.finish(res, a.json, a.md)
        return
    q = a.quick
    a.tp_reps = a.reps or (1 if q else 5)  # the noisiest figure: a few seconds per sample
    a.reps = a.reps or (1 if q else 3)
    a.messages = 50000 if q else 400000
    a.messages_1k = 20000 if q else 150000
    a.login_procs = 4
    a.login_inflight = 32
    a.latency_n = 500 if q else 3000
    a.wrk_secs = 2 if q else 5
    a.idle_n = a.idle_n or (1000 if q else 19000)
    a.ota_n = 1000 if q else 10000
    a.logins = 2000 if q else 10000

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # the broker holds 1 fd per connection (cloud and bare alike), gizsim 1 + spare
    a.idle_max = min(a.idle_n, soft - 1000)
    a.fleet = max(a.idle_max, a.ota_n, a.logins) if not q else max(a.idle_n, a.ota_n, a.logins)
    a.fleet = min(a.fleet, soft - 300)

    b = Bench(a)
    b.idle_max = a.idle_max
    only = set(a.only.split(","))
    started = time.time()
    res = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)), "quick": q,
           "reps": a.reps, "throughput_reps": a.tp_reps, "machine": machine(), "nofile": [soft, hard],
           "loadavg_start": loadavg(), "settings": {
               "messages_64": a.messages, "messages_1k": a.messages_1k, "login_clients": a.logins,
               "login_procs": a.login_procs, "latency_samples": a.latency_n, "wrk_secs": a.wrk_secs,
               "idle_n": a.idle_max, "ota_n": a.ota_n,
               "fleet": a.fleet}, "figures": {}, "errors": {}, "loadavg": {}}
    log("gizcloud bench: %s reps, fleet %d, fd limit %d/%d, load %s" % (a.reps, a.fleet, soft, hard, loadavg()))

    def step(name, fn):
        if name not in only:
            return
        log("== %s (load %s)" % (name, loadavg()))
        res["loadavg"][name] = loadavg()
        t0 = time.monotonic()
        try:
            res["figures"][name] = fn()
        except Exception as e:  # noqa: BLE001 - the other figures still get measured
            traceback.print_exc()
            res["errors"][name] = "%s: %s" % (type(e).__name__, e)
        log("== %s done in %.0f s" % (name, time.monotonic() - t0))

    try:
        b.fixtures()
        step("throughput", lambda: bench_throughput(b, a.tp_reps))
        step("events", lambda: bench_events(b, a.tp_reps))
        step("logins", lambda: bench_logins(b, a.reps))
        step("idle", lambda: {"cloud": bench_idle(b, a.reps, a.idle_max)})
        step("parser", lambda: bench_parser(b, a.reps))
        step("latency", lambda: bench_latency(b, a.reps))
        step("ota", lambda: {"main": bench_ota(b, a.reps, a.ota_n)})
        step("gservice", lambda: bench_gservice(b, a.reps))
        step("store_pg", lambda: bench_store_pg(b, a.reps))
        step("cluster", lambda: bench_cluster(b, a.reps, min(a.fleet, 2000 if q else 10000)))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res["errors"]["fixtures"] = "%s: %s" % (type(e).__name__, e)
    finally:
        b.stop_all()
        if os.environ.get("GIZ_BENCH_KEEP") != "1":
            shutil.rmtree(b.dir, ignore_errors=True)
        else:
            log("kept %s" % b.dir)
    res["loadavg_end"] = loadavg()
    res["duration_s"] = round(time.time() - started, 1)
    import report
    report.finish(res, a.json, a.md)
    log("wrote %s and %s in %.0f s" % (a.json, a.md, res["duration_s"]))


if __name__ == "__main__":
    main()
