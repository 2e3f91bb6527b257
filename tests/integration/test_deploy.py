# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Deployment: the shipped deploy/ files are the tested path.

1. docker-compose.yml parses and has the shape the README promises (an `init`
   service, then two services from one image sharing a volume for SQLite,
   healthchecks, ports); GIZ_M2M_HOST and GIZ_ADMIN_TOKEN are required; only
   `init` writes TLS files. The Dockerfile ships the very scripts and conf
   template the local launcher runs, EXPOSEs the ports and has a HEALTHCHECK;
   .dockerignore keeps data, keys, build folders and .git out of the context.
   The entrypoint's `init` (run for real when this runs as root) makes the
   folder 0750 and the keys 0600; a server role with GIZ_GEN_CERTS=0 writes
   nothing and refuses to start without them.
2. The systemd units: Wants=/After= (never Requires=) between them, the TLS
   files from a oneshot before the first start, the hardening keys, mode
   0644 in the tree and after `cmake --install`, and (where systemd-analyze
   exists) `systemd-analyze security --offline=true` exposure <= 5.0.
3. deploy/gizcloud-local starts the whole cloud on free ports, prints
   "gizcloud ready", serves HTTP and MQTT (and TLS with the generated CA), and
   stops cleanly with exit 0 on SIGINT. The data folder (created 0755 by
   this test) ends up 0750 or 0700; the database, its -wal and -shm, the
   admin token and the TLS keys are 0600 (or 0640); the image's health check
   passes against the running servers without a connection in the broker log.
   Where python3-seccomp and PR_SET_MDWE exist, the whole launch runs under the
   units' system-call filter and MemoryDenyWriteExecute.
"""
import os
import pwd
import re
import shutil
import signal
import stat
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

# --- 1. compose file, Dockerfile, .dockerignore, entrypoint ------------------
with open(os.path.join(DEPLOY, "docker-compose.yml")) as f:
    compose_text = f.read()
compose = yaml.safe_load(compose_text)
all_services = compose.get("services", {})
# profile `cluster` (issue 18): PostgreSQL, a second GService and broker; the rest is the default
cluster = {n: s for n, s in all_services.items() if "cluster" in s.get("profiles", [])}
services = {n: s for n, s in all_services.items() if not s.get("profiles")}
c.eq(sorted(services), ["broker", "gservice", "init"], "compose services")
c.eq(sorted(cluster), ["broker2", "gservice2", "postgres"], "compose profile cluster")
c.eq(cluster.get("postgres", {}).get("build", {}).get("target"), "postgres",
     "the cluster's PostgreSQL: the Dockerfile's postgres stage (Debian's package)")
for name in ("broker2", "gservice2"):
    svc = cluster.get(name, {})
    envs = svc.get("environment", {})
    c.ok("gizdata:/var/lib/gizcloud" in svc.get("volumes", []) and str(envs.get("GIZ_GEN_CERTS")) == "0"
         and str(envs.get("GIZ_M2M_HOST", "")).startswith("${GIZ_M2M_HOST:?"),
         "%s: the shared volume, no TLS writes, GIZ_M2M_HOST required" % name)
c.ok(all_services.get("broker", {}).get("environment", {}).get("GIZ_BROKER_NAME")
     != cluster.get("broker2", {}).get("environment", {}).get("GIZ_BROKER_NAME")
     and cluster.get("broker2", {}).get("environment", {}).get("GIZ_BROKER_CONF"),
     "the two brokers have their own registry names and rendered confs")
servers = ("broker", "gservice")
for name, svc in services.items():
    c.ok("gizdata:/var/lib/gizcloud" in svc.get("volumes", []), "%s mounts the shared data volume" % name)
    c.eq(svc.get("build", {}).get("dockerfile"), "deploy/Dockerfile", "%s builds deploy/Dockerfile" % name)
    envs = svc.get("environment", {})
    c.ok(envs.get("GIZ_DATA_DIR") == "/var/lib/gizcloud", "%s GIZ_DATA_DIR" % name)
    c.ok(re.fullmatch(r"\$\{GIZ_M2M_HOST:\?[^}]+\}", str(envs.get("GIZ_M2M_HOST", ""))) is not None,
         "%s requires GIZ_M2M_HOST (${GIZ_M2M_HOST:?...}, no 127.0.0.1 default): %r"
         % (name, envs.get("GIZ_M2M_HOST")))
    c.ok(str(envs.get("GIZ_ADMIN_TOKEN", "")).startswith("${GIZ_ADMIN_TOKEN:?"), "%s requires GIZ_ADMIN_TOKEN" % name)
c.ok("GIZ_M2M_HOST:-" not in compose_text, "no silent default for GIZ_M2M_HOST anywhere in compose")
for name in servers:
    svc = services[name]
    hc = svc.get("healthcheck", {})
    c.ok("test" in hc and not hc.get("disable"), "%s has a healthcheck" % name)
    c.eq(str(svc.get("environment", {}).get("GIZ_GEN_CERTS")), "0", "%s never writes TLS files" % name)
    dep = svc.get("depends_on", {})
    c.eq((dep.get("init") or {}).get("condition"), "service_completed_successfully",
         "%s starts after init completed" % name)
c.eq(services["init"]["command"], ["init"], "init role")
c.eq(services["init"].get("restart"), "no", "init runs once")
c.ok(services["init"].get("environment", {}).get("GIZ_GEN_CERTS") != "1"
     and not services["init"].get("ports"), "init publishes nothing")
writers = [n for n, svc in services.items()
           if svc.get("command") == ["init"] or str(svc.get("environment", {}).get("GIZ_GEN_CERTS", "1")) != "0"]
c.eq(writers, ["init"], "exactly one service writes the TLS files")
c.ok(not (services["broker"].get("depends_on", {}).get("gservice") or {}).get("restart"),
     "a GService restart does not restart the broker")
c.ok("gizdata" in compose.get("volumes", {}), "named volume declared")
c.eq(services["broker"]["command"], ["broker"], "broker role")
c.eq(services["gservice"]["command"], ["gservice"], "gservice role")
ports = " ".join(services["broker"]["ports"] + services["gservice"]["ports"])
for p in (":1883", ":8883", ":8080", ":8443"):
    c.ok(p in ports, "compose publishes container port %s" % p)
with open(os.path.join(DEPLOY, "Dockerfile")) as f:
    dockerfile = f.read()
c.ok(dockerfile.startswith("#") and "FROM debian:12" in dockerfile, "Dockerfile builds on Debian 12")
for shipped in ("deploy/mosquitto.conf", "deploy/render-conf", "deploy/run-broker", "deploy/run-gservice",
                "deploy/gen-certs"):
    c.ok(shipped in dockerfile, "image ships %s (same file as local mode)" % shipped)
exposed = set()
for m in re.finditer(r"(?m)^EXPOSE\s+(.+)$", dockerfile):
    exposed.update(m.group(1).split())
c.ok({"1883", "8883", "8080", "8443"} <= exposed, "Dockerfile EXPOSEs 1883 8883 8080 8443: %s" % sorted(exposed))
c.ok(re.search(r"(?m)^HEALTHCHECK .*\\\n\s+CMD \[\"/usr/bin/docker-entrypoint\", \"health\"\]", dockerfile)
     is not None, "image HEALTHCHECK runs the entrypoint's health check")
with open(os.path.join(DEPLOY, "docker-entrypoint")) as f:
    entry = f.read()
c.ok("run-broker" in entry and "run-gservice" in entry, "entrypoint runs the shared run scripts")


def dockerignore_regex(pattern):
    """Docker's .dockerignore pattern (filepath.Match plus **) as a regex."""
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


with open(os.path.join(SRC, ".dockerignore")) as f:
    ignore = [dockerignore_regex(line.strip()) for line in f
              if line.strip() and not line.startswith("#") and not line.startswith("!")]


def ignored(path):
    parts = path.split("/")
    return any(rx.match("/".join(parts[:n])) for n in range(1, len(parts) + 1) for rx in ignore)


for path in ("var/gizcloud.db", "var/gizcloud.db-wal", "var/admin-token", "var/tls/server.key",
             "build/gservice/giz-gservice", "build-deploy/CMakeCache.txt", ".git/HEAD",
             "data/gizcloud.db", "x/tls/server.key", "deploy/ca.key", "some/admin-token", ".notes/x"):
    c.ok(ignored(path), ".dockerignore keeps %s out of the build context" % path)
copied = []
for m in re.finditer(r"(?m)^COPY (?!--from)(.+)$", dockerfile):
    copied += m.group(1).split()[:-1]
for path in copied + ["lib/store.c", "plugin/plugin.c", "schema/001_init.sql", "cmake/Warnings.cmake"]:
    c.ok(not ignored(path), ".dockerignore keeps %s (the Dockerfile needs it)" % path)

# gen-certs from four processes at once (compose, systemd units, the launcher
# may all reach it): one writes, the others wait and keep its files; key 0600.
certs = tempfile.mkdtemp(prefix="gizcerts-")
os.chmod(certs, 0o755)
runs = [subprocess.Popen([os.path.join(DEPLOY, "gen-certs"), os.path.join(certs, "tls"), "localhost", "127.0.0.1"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
said = [r.communicate(timeout=120)[0] for r in runs]
c.eq([r.returncode for r in runs], [0, 0, 0, 0], "gen-certs x4 at once: all exit 0")
c.eq(sum("gen-certs: wrote" in t for t in said), 1, "gen-certs x4 at once: exactly one writes (%r)" % said)
tls_dir = os.path.join(certs, "tls")
c.eq(sorted(n for n in os.listdir(tls_dir) if not n.startswith(".")), ["ca.crt", "ca.key", "server.crt", "server.key"],
     "gen-certs leaves the four files and no temporary folder")
c.eq([n for n in os.listdir(tls_dir) if n.startswith(".new")], [], "no .new.* left behind")
c.eq(stat.S_IMODE(os.stat(os.path.join(tls_dir, "server.key")).st_mode), 0o600, "gen-certs: server.key 0600")
c.eq(stat.S_IMODE(os.stat(tls_dir).st_mode) & 0o077 & ~0o050, 0, "gen-certs: folder not writable/readable by others")
pub_crt = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", os.path.join(tls_dir, "server.crt")],
                         capture_output=True, text=True).stdout
pub_key = subprocess.run(["openssl", "pkey", "-pubout", "-in", os.path.join(tls_dir, "server.key")],
                         capture_output=True, text=True).stdout
c.ok(pub_crt and pub_crt == pub_key, "gen-certs: server.crt matches server.key")
subprocess.run(["rm", "-rf", certs])

# The entrypoint for real (chown/setpriv need root and the mosquitto user).
try:
    have_mosquitto_user = pwd.getpwnam("mosquitto") is not None
except KeyError:
    have_mosquitto_user = False
if os.geteuid() == 0 and have_mosquitto_user and shutil.which("setpriv"):
    vol = tempfile.mkdtemp(prefix="gizvol-")
    os.chmod(vol, 0o755)
    ep_env = dict(os.environ, GIZ_DATA_DIR=os.path.join(vol, "data"), GIZ_SHARE_DIR=DEPLOY,
                  GIZ_M2M_HOST="192.0.2.7", GIZ_MQTTS_PORT="8883")
    out = subprocess.run([os.path.join(DEPLOY, "docker-entrypoint"), "init"], env=ep_env,
                         capture_output=True, text=True)
    c.eq(out.returncode, 0, "entrypoint init exits 0 (%s)" % out.stderr.strip())
    st = os.stat(ep_env["GIZ_DATA_DIR"])
    c.eq(stat.S_IMODE(st.st_mode), 0o750, "init: data folder 0750")
    c.eq(pwd.getpwuid(st.st_uid).pw_name, "mosquitto", "init: data folder owned by mosquitto")
    for name, want in (("server.key", 0o600), ("ca.key", 0o600), ("server.crt", 0o644)):
        f = os.path.join(ep_env["GIZ_DATA_DIR"], "tls", name)
        c.eq(stat.S_IMODE(os.stat(f).st_mode) if os.path.exists(f) else None, want, "init: tls/%s mode" % name)
    crt = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                          os.path.join(ep_env["GIZ_DATA_DIR"], "tls", "server.crt")], capture_output=True, text=True)
    c.ok("192.0.2.7" in crt.stdout, "init: the certificate names GIZ_M2M_HOST: %r" % crt.stdout.strip())
    ep_env2 = dict(ep_env, GIZ_DATA_DIR=os.path.join(vol, "empty"), GIZ_GEN_CERTS="0")
    out = subprocess.run([os.path.join(DEPLOY, "docker-entrypoint"), "gservice"], env=ep_env2,
                         capture_output=True, text=True)
    c.ok(out.returncode != 0 and "init" in out.stderr, "GIZ_GEN_CERTS=0 without TLS files refuses to start: %r"
         % out.stderr.strip())
    c.ok(not os.path.exists(os.path.join(ep_env2["GIZ_DATA_DIR"], "tls")), "GIZ_GEN_CERTS=0 writes no TLS files")
    # The compose path without Docker: after `init`, the `gservice` and `broker`
    # roles on the initialised folder, as the containers run them (as root
    # dropping to mosquitto, GIZ_GEN_CERTS=0, the build's binaries).
    if os.access(os.path.join(harness.BUILD, "plugin", "giz_plugin.so"), os.R_OK):
        c_http, c_mqtt, c_mqtts = harness.free_port(), harness.free_port(), harness.free_port()
        role_env = dict(ep_env, GIZ_GEN_CERTS="0", GIZ_ADMIN_TOKEN="t" * 48, GIZ_BIND="127.0.0.1",
                        GIZ_HTTP_PORT=str(c_http), GIZ_MQTT_PORT=str(c_mqtt), GIZ_MQTTS_PORT=str(c_mqtts),
                        GIZ_HTTPS_PORT="0", GIZ_RUN_USER="mosquitto",
                        GIZ_GSERVICE=os.path.abspath(os.path.join(harness.BUILD, "gservice", "giz-gservice")),
                        GIZ_PLUGIN=os.path.abspath(os.path.join(harness.BUILD, "plugin", "giz_plugin.so")))
        if harness.ASAN:
            role_env["LD_PRELOAD"] = harness.asan_runtime()
            role_env["ASAN_OPTIONS"] = "detect_leaks=0"
        health_env = {k: v for k, v in role_env.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}  # curl hangs under it
        roles = {}
        for role in ("gservice", "broker"):
            roles[role] = subprocess.Popen([os.path.join(DEPLOY, "docker-entrypoint"), role], env=role_env,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            healthy = False
            for _ in range(150):
                if roles[role].poll() is not None:
                    break
                if subprocess.run([os.path.join(DEPLOY, "docker-entrypoint"), "health", role], env=health_env,
                                  capture_output=True, timeout=20).returncode == 0:
                    healthy = True
                    break
                time.sleep(0.1)
            c.ok(healthy, "compose path: %s role healthy" % role)
        if all(r.poll() is None for r in roles.values()):
            with socket.create_connection(("127.0.0.1", c_mqtt), timeout=5) as s:
                s.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0]))
                c.eq(s.recv(4), bytes([0x20, 2, 0, 5]), "compose path: broker answers (anonymous refused)")
            d = ep_env["GIZ_DATA_DIR"]
            for name in ("gizcloud.db", "gizcloud.db-wal", "gizcloud.db-shm", "mosquitto.conf"):
                f = os.path.join(d, name)
                st = os.stat(f) if os.path.exists(f) else None
                c.ok(st is not None and stat.S_IMODE(st.st_mode) in (0o600, 0o640)
                     and pwd.getpwuid(st.st_uid).pw_name == "mosquitto",
                     "compose path: %s is mosquitto's, 0600/0640 (%s)"
                     % (name, "%o %s" % (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name) if st else "missing"))
            root_owned = [os.path.relpath(os.path.join(dp, n), d) for dp, dn, fn in os.walk(d) for n in dn + fn
                          if os.lstat(os.path.join(dp, n)).st_uid != pwd.getpwnam("mosquitto").pw_uid]
            c.eq(root_owned, [], "compose path: every file in the volume belongs to mosquitto")
            procs = {}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if os.getsid(int(pid)) in (roles["gservice"].pid, roles["broker"].pid):
                        procs[open("/proc/%s/comm" % pid).read().strip()] = os.stat("/proc/" + pid).st_uid
                except OSError:
                    pass
            mosq_uid = pwd.getpwnam("mosquitto").pw_uid
            c.eq({k: v == mosq_uid for k, v in procs.items() if k in ("mosquitto", "giz-gservice")},
                 {"mosquitto": True, "giz-gservice": True}, "compose path: both servers run as mosquitto")
        for role, r in roles.items():
            if r.poll() is None:
                r.send_signal(signal.SIGTERM)
            try:
                r.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(r.pid, signal.SIGKILL)
                r.wait()
            text = r.stdout.read().decode("utf-8", "replace")
            c.ok("should not be run as root" not in text, "compose path: %s log has no root warning" % role)
            if c.failures:
                print("--- %s role output ---\n%s" % (role, text[-3000:]))
    else:
        print("SKIP (not a pass): compose path roles not run: no built plugin in %s" % harness.BUILD, flush=True)
    subprocess.run(["rm", "-rf", vol])
else:
    print("SKIP (not a pass): entrypoint init not run: needs root, a mosquitto user and setpriv", flush=True)

# --- 2. systemd units ---------------------------------------------------------
UNITS = os.path.join(DEPLOY, "systemd")


def parse_unit(path):
    """{section: {key: [values...]}} (keys may repeat)."""
    sections, cur = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            cur.setdefault(key.strip(), []).append(value.strip())
    return sections


def words(unit, section, key):
    return " ".join(unit.get(section, {}).get(key, [])).split()


unit_names = ("gizcloud-gservice.service", "gizcloud-broker.service", "gizcloud-certs.service")
units = {n: parse_unit(os.path.join(UNITS, n)) for n in unit_names}
for n in unit_names:
    c.eq(stat.S_IMODE(os.stat(os.path.join(UNITS, n)).st_mode), 0o644, "%s is 0644 in the tree" % n)
    u = units[n]
    c.ok(not any(k in u.get("Unit", {}) for k in ("Requires", "BindsTo", "PartOf", "Requisite")),
         "%s: no Requires=/BindsTo=/PartOf= (a restart of one never restarts the other)" % n)
    svc = u.get("Service", {})
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                      ("PrivateDevices", "yes"), ("PrivateTmp", "yes"), ("ProtectKernelTunables", "yes"),
                      ("ProtectKernelModules", "yes"), ("ProtectKernelLogs", "yes"),
                      ("ProtectControlGroups", "yes"), ("LockPersonality", "yes"),
                      ("MemoryDenyWriteExecute", "yes"), ("RestrictNamespaces", "yes"),
                      ("RestrictSUIDSGID", "yes"), ("SystemCallArchitectures", "native"),
                      ("StateDirectoryMode", "0750")):
        c.eq(svc.get(key), [want], "%s: %s=%s" % (n, key, want))
    c.ok("@system-service" in words(u, "Service", "SystemCallFilter"), "%s: SystemCallFilter=@system-service" % n)
    c.ok(words(u, "Service", "ReadWritePaths") == ["/var/lib/gizcloud"], "%s: writes only /var/lib/gizcloud" % n)
    c.ok(svc.get("UMask", [""])[0] in ("0027", "0077"), "%s: UMask 0027/0077" % n)
    caps = words(u, "Service", "CapabilityBoundingSet")
    c.ok("CapabilityBoundingSet" in svc and set(caps) <= {"CAP_NET_BIND_SERVICE"},
         "%s: capability bounding set at most CAP_NET_BIND_SERVICE: %s" % (n, caps))
    fams = set(words(u, "Service", "RestrictAddressFamilies"))
    c.ok(fams and fams <= {"AF_INET", "AF_INET6", "AF_UNIX"}, "%s: RestrictAddressFamilies %s" % (n, sorted(fams)))
for n in ("gizcloud-gservice.service", "gizcloud-broker.service"):
    c.ok("gizcloud-certs.service" in words(units[n], "Unit", "Wants")
         and "gizcloud-certs.service" in words(units[n], "Unit", "After"),
         "%s: Wants=/After= gizcloud-certs.service (TLS files before the first start)" % n)
c.ok("gizcloud-gservice.service" in words(units["gizcloud-broker.service"], "Unit", "Wants"),
     "broker Wants= (not Requires=) the GService")
c.eq(units["gizcloud-certs.service"].get("Service", {}).get("Type"), ["oneshot"], "certs unit is a oneshot")
c.ok(any("gen-certs" in v for v in units["gizcloud-certs.service"]["Service"].get("ExecStart", [])),
     "certs unit runs gen-certs")
if shutil.which("systemd-analyze"):
    for n in unit_names:
        out = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                              os.path.join(UNITS, n)], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout + out.stderr)
        score = float(m.group(1)) if m else None
        print("systemd-analyze security %s: exposure %s" % (n, score), flush=True)
        c.ok(score is not None and score <= 5.0, "%s: systemd-analyze exposure %s <= 5.0" % (n, score))
else:
    print("SKIP (not a pass): systemd-analyze not installed; exposure scores not measured", flush=True)
# cmake --install: units 0644, scripts executable, paths rewritten for the prefix
if os.path.exists(os.path.join(harness.BUILD, "cmake_install.cmake")):
    dest = tempfile.mkdtemp(prefix="gizinst-")
    out = subprocess.run(["cmake", "--install", os.path.abspath(harness.BUILD), "--prefix", "/opt/giztest"],
                         env=dict(os.environ, DESTDIR=dest), capture_output=True, text=True)
    c.eq(out.returncode, 0, "cmake --install works (%s)" % out.stderr.strip()[-300:])
    root = os.path.join(dest, "opt/giztest")
    for n in unit_names:
        f = os.path.join(root, "lib/systemd/system", n)
        c.eq(stat.S_IMODE(os.stat(f).st_mode) if os.path.exists(f) else None, 0o644, "installed %s is 0644" % n)
        if os.path.exists(f):
            text = open(f).read()
            c.ok("/usr/local/" not in text and "/opt/giztest/share/gizcloud/" in text,
                 "installed %s points at the install prefix" % n)
    for rel, want in (("bin/giz-gservice", 0o755), ("bin/gizctl", 0o755), ("bin/gizsim", 0o755),
                      ("lib/gizcloud/giz_plugin.so", None), ("share/gizcloud/run-broker", 0o755),
                      ("share/gizcloud/run-gservice", 0o755), ("share/gizcloud/render-conf", 0o755),
                      ("share/gizcloud/gen-certs", 0o755), ("share/gizcloud/mosquitto.conf", 0o644)):
        f = os.path.join(root, rel)
        got = stat.S_IMODE(os.stat(f).st_mode) if os.path.exists(f) else None
        c.ok(got is not None and (want is None or got == want), "installed %s (mode %s)" % (rel, oct(got or 0)))
    subprocess.run(["rm", "-rf", dest])
else:
    print("SKIP (not a pass): no cmake_install.cmake in %s" % harness.BUILD, flush=True)

# --- 3. the local launcher, for real ------------------------------------------
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


def unit_policy():
    """The units' system-call policy as a function for preexec_fn, or None.

    SystemCallFilter=@system-service minus ~@privileged (but @setuid), SystemCallErrorNumber=EPERM
    (groups expanded by systemd-analyze) with libseccomp (Debian python3-seccomp),
    and MemoryDenyWriteExecute as the kernel's PR_SET_MDWE (Linux >= 6.3): the
    launcher, mosquitto with the plugin (its GOT patching included) and the
    GService then run as systemd would confine them.
    """
    try:
        import ctypes
        import errno
        import seccomp
    except ImportError:
        return None, "python3-seccomp not installed"
    if not shutil.which("systemd-analyze"):
        return None, "systemd-analyze not installed"
    text = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True,
                          text=True).stdout
    groups, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.split()[0], [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())

    def expand(name, seen):
        if not name.startswith("@"):
            return {name}
        if name in seen:
            return set()
        seen.add(name)
        return set().union(*[expand(m, seen) for m in groups.get(name, [])])

    # @setuid stays allowed here: GNU make (the launcher's no-op cmake --build)
    # calls setresuid(-1, 0, -1) as root. The servers run as an unprivileged
    # user under the units, where a set*id to another id fails anyway.
    allowed = (expand("@system-service", set()) - expand("@privileged", set())) | expand("@setuid", set())
    filt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    count = 0
    for name in sorted(allowed):
        try:
            filt.add_rule(seccomp.ALLOW, name)
            count += 1
        except (RuntimeError, ValueError):
            pass  # not a system call on this architecture
    libc = ctypes.CDLL(None, use_errno=True)
    probe = subprocess.run([sys.executable, "-c", "import ctypes,sys; sys.exit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0))"])
    if probe.returncode != 0 or count < 200:
        return None, "no PR_SET_MDWE in this kernel or too few system calls (%d)" % count

    def apply():
        libc.prctl(65, 1, 0, 0, 0)  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        filt.load()

    return apply, "%d system calls allowed, the rest EPERM, W^X enforced" % count


policy, why = unit_policy()
if policy:
    print("launching under the systemd units' policy: %s" % why, flush=True)
else:
    print("SKIP (not a pass): launch not confined like the systemd units: %s" % why, flush=True)
proc = subprocess.Popen([os.path.join(DEPLOY, "gizcloud-local")], env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=policy)
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
    # No start-up noise: the launcher checks the ports without connecting.
    before = text.split("gizcloud ready")[0]
    c.ok("New connection from" not in before and "closed its connection" not in before,
         "no probe connection in mosquitto's start-up log")
    c.eq(os.stat(token_file).st_mode & 0o777, 0o600, "admin-token file mode")
    c.ok(os.path.exists(os.path.join(data, "gizcloud.db")), "SQLite database in GIZ_DATA_DIR")
    # Issue #12 item 4: nothing secret is readable by others.
    mode = stat.S_IMODE(os.stat(data).st_mode)
    c.ok(mode in (0o750, 0o700), "data folder (created 0755) is now %s, want 0750 or 0700" % oct(mode))
    for name in ("gizcloud.db", "gizcloud.db-wal", "gizcloud.db-shm", "tls/server.key", "tls/ca.key"):
        f = os.path.join(data, name)
        mode = stat.S_IMODE(os.stat(f).st_mode) if os.path.exists(f) else None
        c.ok(mode in (0o600, 0o640), "%s mode %s, want 0600 or 0640" % (name, oct(mode) if mode else "missing"))
    readable = []
    for dirpath, dirnames, filenames in os.walk(data):
        for name in dirnames + filenames:
            f = os.path.join(dirpath, name)
            if not name.endswith(".crt") and stat.S_IMODE(os.lstat(f).st_mode) & 0o004:
                readable.append("%s %s" % (oct(stat.S_IMODE(os.lstat(f).st_mode)), os.path.relpath(f, data)))
    c.eq(readable, [], "nothing but the certificates in the data folder is world-readable")
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
    if policy:  # the servers really run confined
        confined = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.getsid(int(pid)) != proc.pid:
                    continue
                with open("/proc/%s/status" % pid) as f:
                    st_text = f.read()
            except OSError:
                continue
            name = re.search(r"(?m)^Name:\s*(\S+)", st_text).group(1)
            if name in ("mosquitto", "giz-gservice"):
                confined[name] = re.search(r"(?m)^Seccomp:\s*(\d)", st_text).group(1) == "2"
        c.eq(confined, {"mosquitto": True, "giz-gservice": True}, "mosquitto and the GService run under the filter")
    # The image's health check, against the running servers.
    hc_env = dict(os.environ, GIZ_HTTP_PORT=str(http_port), GIZ_MQTT_PORT=str(mqtt_port))
    for role in ("gservice", "broker"):
        out = subprocess.run([os.path.join(DEPLOY, "docker-entrypoint"), "health", role], env=hc_env,
                             capture_output=True, text=True)
        c.eq(out.returncode, 0, "health check %s passes while it runs (%s)" % (role, out.stderr.strip()))
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
# the health check notices a stopped server
hc_env = dict(os.environ, GIZ_HTTP_PORT=str(http_port), GIZ_MQTT_PORT=str(mqtt_port))
for role in ("gservice", "broker"):
    out = subprocess.run([os.path.join(DEPLOY, "docker-entrypoint"), "health", role], env=hc_env,
                         capture_output=True, text=True)
    c.ok(out.returncode != 0, "health check %s fails once it stopped" % role)
# nothing left listening
for p in (http_port, mqtt_port, mqtts_port, https_port):
    try:
        socket.create_connection(("127.0.0.1", p), timeout=1).close()
        c.ok(False, "port %d still open after stop" % p)
    except OSError:
        c.ok(True, "port %d closed after stop" % p)
subprocess.run(["rm", "-rf", data])
c.done()
