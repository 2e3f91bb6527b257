# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""GService operation: --help lists every setting, refusal to start without
GIZ_ADMIN_TOKEN or with bad values, /healthz, /metrics in Prometheus text
(requests by route and status, latency histogram, device gauges) counting
what really happened, readable access-log lines without secrets, concurrent
registrations from several threads (store pool), HTTPS with the deploy/
certificates, and graceful shutdown on SIGTERM and SIGINT (exit 0)."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def metric(text, name, labels=None):
    """Value of one sample, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if labels is None or all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def run_gservice(env_extra, args, timeout=20):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("GIZ_") and k not in ("GIZ_BUILD_DIR", "GIZ_SOURCE_DIR", "GIZ_ASAN"):
            del env[k]
    env.update(env_extra)
    if harness.ASAN:
        env = harness.sanitizer_env(env)
    return subprocess.run([harness.GSERVICE] + args, env=env, capture_output=True, text=True, timeout=timeout)


def main():
    c = harness.Checker("gservice_ops")
    tmp = tempfile.mkdtemp(prefix="gizops-")

    # -- configuration --------------------------------------------------------------------
    r = run_gservice({}, ["--help"])
    c.eq(r.returncode, 0, "--help exits 0")
    for var in ("GIZ_HTTP_PORT", "GIZ_DATA_DIR", "GIZ_DB_PATH", "GIZ_ADMIN_TOKEN", "GIZ_M2M_HOST", "GIZ_M2M_PORT",
                "GIZ_M2M_TLS_PORT", "GIZ_PUBLIC_URL", "GIZ_BIND_ADDR", "GIZ_HTTPS_PORT", "GIZ_TLS_CERT",
                "GIZ_TLS_KEY", "GIZ_LOG_LEVEL", "GIZ_MAX_UPLOAD"):
        c.ok(var in r.stdout, "--help mentions %s" % var)
    r = run_gservice({"GIZ_DATA_DIR": tmp, "GIZ_HTTP_PORT": str(harness.free_port())}, [])
    c.ok(r.returncode != 0, "no GIZ_ADMIN_TOKEN: refuses to start (exit %d)" % r.returncode)
    c.ok("GIZ_ADMIN_TOKEN" in r.stderr, "no GIZ_ADMIN_TOKEN: says why: %r" % r.stderr[:200])
    for env, args, what in [({"GIZ_HTTP_PORT": "99999"}, [], "port 99999"),
                            ({}, ["--port", "abc"], "--port abc"),
                            ({}, ["--bogus"], "unknown flag"),
                            ({"GIZ_LOG_LEVEL": "loud"}, [], "bad log level"),
                            ({"GIZ_PUBLIC_URL": "ftp://x"}, [], "non-http public URL"),
                            ({"GIZ_HTTPS_PORT": "8443"}, [], "HTTPS without certificate")]:
        e = {"GIZ_DATA_DIR": tmp, "GIZ_ADMIN_TOKEN": "tok-0123456789abcdef"}
        e.update(env)
        r = run_gservice(e, args)
        c.ok(r.returncode != 0 and r.stderr.strip() != "", "%s: refused with a message (%d)" % (what, r.returncode))

    # -- metrics, health, access log, concurrency ------------------------------------------------
    with harness.Cloud(broker=False) as cloud:
        status, h, body = cloud.http("GET", "/healthz")
        c.eq(status, 200, "healthz")
        pk = cloud.create_product("ops")["product_key"]
        did = cloud.register_device(pk, "00163E00C001", "OPSPASS001")
        for _ in range(3):
            cloud.http("GET", "/dev/devices/%s" % did)
        cloud.http("GET", "/dev/devices/AAAAAAAAAAAAAAAAAAAAAA")
        cloud.http("GET", "/no/such/path")
        cloud.http("POST", "/dev/devices", form="passcode=x&mac=bad&product_key=%s" % pk)

        # concurrent registrations exercise the per-request store pool
        errors = []
        dids = []
        lock = threading.Lock()

        def worker(n):
            for i in range(10):
                try:
                    d = cloud.register_device(pk, "00163E%02X%04X" % (n, i), "CONC%06d" % (n * 100 + i))
                    with lock:
                        dids.append(d)
                except Exception as e:  # noqa: BLE001 - recorded as a failure below
                    with lock:
                        errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c.eq(errors, [], "60 concurrent registrations succeed")
        c.eq(len(set(dids)), 60, "60 distinct DIDs")

        status, h, body = cloud.http("GET", "/metrics")
        text = body.decode()
        c.eq(status, 200, "metrics status")
        c.ok(h.get("Content-Type", "").startswith("text/plain"), "metrics content type")
        c.eq(metric(text, "gizcloud_http_requests_total", {"route": "dev_provision", "status": "200"}), 3.0,
             "3 provisions counted")
        c.eq(metric(text, "gizcloud_http_requests_total", {"route": "dev_provision", "status": "404"}), 1.0,
             "1 provision 404 counted")
        c.eq(metric(text, "gizcloud_http_requests_total", {"route": "unmatched", "status": "404"}), 1.0,
             "unknown path counted")
        c.eq(metric(text, "gizcloud_http_requests_total", {"route": "dev_devices", "status": "201"}), 61.0,
             "61 registrations counted")
        c.eq(metric(text, "gizcloud_http_requests_total", {"route": "dev_devices", "status": "400"}), 1.0,
             "bad register counted")
        c.eq(metric(text, "gizcloud_devices_registered"), 61.0, "registered devices gauge")
        c.eq(metric(text, "gizcloud_http_request_duration_seconds_count", {"route": "dev_provision"}), 4.0,
             "latency histogram count")
        c.eq(metric(text, "gizcloud_http_request_duration_seconds_bucket", {"route": "dev_provision", "le": "+Inf"}),
             4.0, "latency histogram +Inf bucket")
        c.ok("# TYPE gizcloud_http_request_duration_seconds histogram" in text, "histogram TYPE line")
        buckets = [float(v) for v in re.findall(
            r'gizcloud_http_request_duration_seconds_bucket\{route="dev_devices",le="[^"]+"\} (\S+)', text)]
        c.ok(len(buckets) > 3 and buckets == sorted(buckets), "buckets are cumulative")
        status, _, _ = cloud.http("POST", "/metrics")
        c.eq(status, 405, "POST /metrics")

        log = cloud.log_text("gservice")
        c.ok(re.search(r"GET /dev/devices/%s 200 \d+B \d+us 127\.0\.0\.1:\d+" % did, log) is not None,
             "access log line: method path status bytes duration peer")
        c.ok(re.search(r"GET /no/such/path 404 ", log) is not None, "access log for a 404")
        c.ok("OPSPASS001" not in log and "CONC000001" not in log and cloud.admin_token not in log,
             "no passcodes or admin token in the log")
        cloud.gservice.send_signal(signal.SIGINT)
        try:
            cloud.gservice.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        c.eq(cloud.gservice.returncode, 0, "SIGINT: exit 0")

    # -- HTTPS with deploy/gen-certs ---------------------------------------------------------
    certs = os.path.join(tmp, "tls")
    gen = subprocess.run([os.path.join(harness.SOURCE, "deploy", "gen-certs"), certs, "localhost", "127.0.0.1"],
                         capture_output=True, text=True)
    if gen.returncode != 0 or not os.path.exists(os.path.join(certs, "server.crt")):
        c.ok(False, "deploy/gen-certs made a certificate: %s" % gen.stderr[:200])
    else:
        https_port = harness.free_port()
        env = {"GIZ_HTTPS_PORT": str(https_port), "GIZ_TLS_CERT": os.path.join(certs, "server.crt"),
               "GIZ_TLS_KEY": os.path.join(certs, "server.key")}
        with harness.Cloud(broker=False, gservice_env=env) as cloud:
            harness.wait_port(https_port, cloud.gservice)
            r = subprocess.run(["curl", "-s", "--cacert", os.path.join(certs, "ca.crt"),
                                "https://127.0.0.1:%d/healthz" % https_port], capture_output=True, text=True)
            c.ok('"status":"ok"' in r.stdout, "HTTPS /healthz with the deploy CA: %r" % r.stdout[:100])
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                                os.path.join(certs, "ca.crt"), "-H", "Authorization: Bearer " + cloud.admin_token,
                                "https://127.0.0.1:%d/admin/products" % https_port], capture_output=True, text=True)
            c.eq(r.stdout, "200", "HTTPS admin call")
            status, _, _ = cloud.http("GET", "/healthz")
            c.eq(status, 200, "plain HTTP still served next to HTTPS")
        c.eq(cloud.exit_codes.get("gservice"), 0, "HTTPS instance exits 0 on SIGTERM")
    subprocess.run(["rm", "-rf", tmp])
    c.done()


if __name__ == "__main__":
    main()
