# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Deployment: the shipped deploy/ files are the tested path.

1. docker-compose.yml parses and has the shape the README promises (two services
   from one image, a shared volume for SQLite, healthchecks, ports), and the
   Dockerfile ships the very scripts and conf template the local launcher runs.
2. deploy/gizcloud-local starts the whole cloud on free ports, prints
   "gizcloud ready", serves HTTP and MQTT (and TLS with the generated CA), and
   stops cleanly with exit 0 on SIGINT.
"""
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

c = harness.Checker("deploy")
SRC = os.path.abspath(harness.SOURCE)
DEPLOY = os.path.join(SRC, "deploy")

# --- 1. compose file and Dockerfile ------------------------------------------
with open(os.path.join(DEPLOY, "docker-compose.yml")) as f:
    compose = yaml.safe_load(f)
services = compose.get("services", {})
c.eq(sorted(services), ["broker", "gservice"], "compose services")
for name, svc in services.items():
    c.ok("gizdata:/var/lib/gizcloud" in svc.get("volumes", []), "%s mounts the shared data volume" % name)
    c.ok("test" in svc.get("healthcheck", {}), "%s has a healthcheck" % name)
    c.eq(svc.get("build", {}).get("dockerfile"), "deploy/Dockerfile", "%s builds deploy/Dockerfile" % name)
    c.ok(svc.get("environment", {}).get("GIZ_DATA_DIR") == "/var/lib/gizcloud", "%s GIZ_DATA_DIR" % name)
c.ok("gizdata" in compose.get("volumes", {}), "named volume declared")
c.eq(services["broker"]["command"], ["broker"], "broker role")
c.eq(services["gservice"]["command"], ["gservice"], "gservice role")
ports = " ".join(services["broker"]["ports"] + services["gservice"]["ports"])
for p in (":1883", ":8883", ":8080", ":8443"):
    c.ok(p in ports, "compose publishes container port %s" % p)
with open(os.path.join(DEPLOY, "Dockerfile")) as f:
    dockerfile = f.read()
c.ok(dockerfile.startswith("#") and "FROM debian:12" in dockerfile, "Dockerfile builds on Debian 12")
for shipped in ("deploy/mosquitto.conf", "deploy/render-conf", "deploy/run-broker", "deploy/run-gservice"):
    c.ok(shipped in dockerfile, "image ships %s (same file as local mode)" % shipped)
with open(os.path.join(DEPLOY, "docker-entrypoint")) as f:
    entry = f.read()
c.ok("run-broker" in entry and "run-gservice" in entry, "entrypoint runs the shared run scripts")

# --- 2. the local launcher, for real ------------------------------------------
data = tempfile.mkdtemp(prefix="gizdeploy-")
os.chmod(data, 0o755)
http_port, mqtt_port, mqtts_port = harness.free_port(), harness.free_port(), harness.free_port()
https_port = harness.free_port()
env = dict(os.environ)
env.update({
    "GIZ_DATA_DIR": data, "GIZ_HTTP_PORT": str(http_port), "GIZ_MQTT_PORT": str(mqtt_port),
    "GIZ_MQTTS_PORT": str(mqtts_port), "GIZ_HTTPS_PORT": str(https_port),
    "GIZ_BUILD_DIR": os.path.abspath(harness.BUILD),
})
env.pop("GIZ_ADMIN_TOKEN", None)
if harness.ASAN:
    env["LD_PRELOAD"] = harness.asan_runtime()
    env["ASAN_OPTIONS"] = "detect_leaks=0"
proc = subprocess.Popen([os.path.join(DEPLOY, "gizcloud-local")], env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, start_new_session=True)
out_lines = []
ready = False
deadline = time.monotonic() + 240
os.set_blocking(proc.stdout.fileno(), False)
buf = b""
while time.monotonic() < deadline and proc.poll() is None:
    try:
        chunk = proc.stdout.read()
    except BlockingIOError:
        chunk = None
    if chunk:
        buf += chunk
        if b"gizcloud ready" in buf:
            ready = True
            time.sleep(0.5)
            try:
                buf += proc.stdout.read() or b""
            except BlockingIOError:
                pass
            break
    time.sleep(0.1)
if not ready:
    time.sleep(0.5)
    try:
        buf += proc.stdout.read() or b""  # whatever it said before dying
    except BlockingIOError:
        pass
text = buf.decode("utf-8", "replace")
if not c.ok(ready, "gizcloud-local printed 'gizcloud ready'"):
    print(text)

token_file = os.path.join(data, "admin-token")
if ready:
    token = open(token_file).read().strip()
    c.ok(len(token) >= 32, "admin token generated and kept in the data folder")
    c.ok(token in text, "admin token printed")
    c.eq(os.stat(token_file).st_mode & 0o777, 0o600, "admin-token file mode")
    c.ok(os.path.exists(os.path.join(data, "gizcloud.db")), "SQLite database in GIZ_DATA_DIR")
    # HTTP
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                          "http://127.0.0.1:%d/healthz" % http_port], capture_output=True, text=True)
    c.eq(out.stdout, "200", "GET /healthz through the launcher's GService")
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                          "Authorization: Bearer " + token, "http://127.0.0.1:%d/admin/products" % http_port],
                         capture_output=True, text=True)
    c.eq(out.stdout, "200", "admin API accepts the printed token")
    # MQTT: an anonymous CONNECT is refused with "not authorised" (5)
    with socket.create_connection(("127.0.0.1", mqtt_port), timeout=5) as s:
        s.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0]))
        ack = s.recv(4)
    c.eq(ack, bytes([0x20, 2, 0, 5]), "anonymous MQTT CONNECT refused (CONNACK 5)")
    # TLS on the MQTTS port with the generated CA
    ca = os.path.join(data, "tls", "ca.crt")
    c.ok(os.path.exists(ca), "CA generated")
    try:
        ctx = ssl.create_default_context(cafile=ca)
        with socket.create_connection(("127.0.0.1", mqtts_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0]))
                ack = s.recv(4)
        c.eq(ack, bytes([0x20, 2, 0, 5]), "MQTT over TLS verified against the generated CA")
    except OSError as e:
        c.ok(False, "TLS connection to %d: %s" % (mqtts_port, e))
    out = subprocess.run(["curl", "-sS", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                          "https://localhost:%d/healthz" % https_port], capture_output=True, text=True)
    c.eq(out.stdout, "200", "curl over HTTPS verified against the generated CA (%s)" % out.stderr.strip())
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "https://localhost:%d/healthz" % https_port],
                         capture_output=True, text=True)
    c.ok(out.returncode != 0, "curl without the CA refuses the certificate")
    out = subprocess.run(["mosquitto_sub", "-h", "localhost", "-p", str(mqtts_port), "--cafile", ca,
                          "-t", "x", "-C", "1", "-W", "3", "-i", "nobody"], capture_output=True, text=True)
    c.ok("not authori" in (out.stderr + out.stdout).lower(),
         "mosquitto_sub over TLS reaches the broker and is refused: %r" % (out.stderr + out.stdout))

# --- stop with SIGINT ---------------------------------------------------------
if proc.poll() is None:
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
    c.eq(rc, 0, "gizcloud-local exits 0 on SIGINT")
else:
    c.ok(False, "gizcloud-local died early with %s" % proc.returncode)
# nothing left listening
for p in (http_port, mqtt_port, mqtts_port, https_port):
    try:
        socket.create_connection(("127.0.0.1", p), timeout=1).close()
        c.ok(False, "port %d still open after stop" % p)
    except OSError:
        c.ok(True, "port %d closed after stop" % p)
subprocess.run(["rm", "-rf", data])
c.done()
