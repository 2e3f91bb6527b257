# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""gizctl and gizsim on the TLS ports the cloud offers (issue 12): gizctl reaches the
GService over HTTPS (libcurl) when given the CA with --cacert, and refuses an untrusted
certificate with exit 3 and a hint; gizctl --mqtts sends a 0x0093 and gets its ACK over
MQTTS (port_s of the bindings answer); gizsim apps (--app-tls) and devices
(--device-tls) log in over MQTTS with --cacert and exchange commands and ACKs, and a
wrong CA makes their logins fail instead of silently going plain."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import Ctl, Sim, read_state, run_sim  # noqa: E402

ck = harness.Checker("tools_tls")


def self_signed(folder, name):
    """A self-signed EC certificate for 127.0.0.1: (cert, key)."""
    cert = os.path.join(folder, name + ".crt")
    key = os.path.join(folder, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", key, "-out", cert, "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


tls_dir = tempfile.mkdtemp(prefix="gizctl-tls-")
cert, key = self_signed(tls_dir, "server")
with open(cert, "rb") as f, open(os.path.join(tls_dir, "ca.crt"), "wb") as out:
    out.write(f.read())
ca = os.path.join(tls_dir, "ca.crt")
other_ca, _ = self_signed(tls_dir, "other")
https_port = harness.free_port()

cloud = harness.Cloud(broker=True, tls_dir=tls_dir,
                      gservice_env={"GIZ_HTTPS_PORT": str(https_port), "GIZ_TLS_CERT": cert,
                                    "GIZ_TLS_KEY": key})
cloud.gservice_env["GIZ_M2M_TLS_PORT"] = str(cloud.mqtts_port)  # port_s in bindings answers
with cloud:
    https = "https://127.0.0.1:%d" % https_port
    harness.wait_port(https_port, cloud.gservice)
    ctl = Ctl(cloud, extra_env={"GIZ_HTTP_URL": https})

    # -- HTTPS -----------------------------------------------------------------------------
    rc, docs, err = ctl.json("--cacert", ca, "product", "create", "tls lamp")
    ck.eq(rc, 0, "gizctl over HTTPS with --cacert (%s)" % err.strip())
    pk = docs[0].get("product_key", "") if docs else ""
    ck.eq(len(pk), 32, "product created over HTTPS")
    rc, _, err = ctl.run("product", "list")
    ck.eq(rc, 3, "HTTPS without the CA: exit 3 (unreachable)")
    ck.ok("--cacert" in err and "TLS" in err, "the refusal says to pass --cacert (%s)" % err.strip())
    rc, _, err = ctl.run("--cacert", other_ca, "product", "list")
    ck.eq(rc, 3, "HTTPS with the wrong CA: exit 3")
    rc, out, err = ctl.run("--cacert", os.path.join(tls_dir, "missing.pem"), "product", "list")
    ck.eq(rc, 1, "an unreadable CA file is a usage error")
    rc, docs, err = ctl.json("--cacert", ca, "config")
    ck.ok(rc == 0 and docs and docs[0].get("cacert") == ca, "config shows the CA file")

    # -- MQTTS: gizctl as an app ---------------------------------------------------------------
    http = "http://127.0.0.1:%d" % cloud.http_port
    state = os.path.join(tls_dir, "state")
    sim = Sim(["--http", http, "-p", pk, "-n", 2, "-s", state, "--no-ota", "--duration", 300])
    ck.ok(sim.wait_line("all 2 devices connected", 60), "plain (firmware-like) devices connected")
    did, passcode = read_state(state)[0][:2]
    # The CA through the environment this time; no MQTT port set: --mqtts takes port_s.
    ctl = Ctl(cloud, extra_env={"GIZ_HTTP_URL": https, "GIZ_CACERT": ca})
    ctl.env.pop("GIZ_MQTT_PORT", None)
    rc, _, err = ctl.json("user", "create", "tlsuser", "--password-stdin", stdin="tls-pw-1\n")
    ck.eq(rc, 0, "user create over HTTPS (%s)" % err.strip())
    rc, _, err = ctl.json("login", "tlsuser", "--password-stdin", stdin="tls-pw-1\n")
    ck.eq(rc, 0, "login over HTTPS (%s)" % err.strip())
    rc, _, err = ctl.json("bind", did, passcode)
    ck.eq(rc, 0, "bind over HTTPS (%s)" % err.strip())
    rc, docs, err = ctl.json("--mqtts", "-v", "send", did, "0a0b", "--ack", "--count", 2)
    ck.eq(rc, 0, "gizctl --mqtts send --ack (%s)" % err.strip()[-300:])
    ck.eq(len([d for d in docs if "rtt_ms" in d]), 2, "two ACKs over MQTTS")
    ck.ok("MQTTS 127.0.0.1:%d" % cloud.mqtts_port in err, "the MQTTS port came from port_s (%s)" % err.strip()[:200])
    rc, _, err = ctl.run("--mqtts", "--cacert", other_ca, "send", did, "0a", "--ack")
    ck.eq(rc, 3, "MQTTS with the wrong CA: exit 3 (%s)" % err.strip())
    ck.ok("TLS" in err, "the failure names TLS")
    rc, rep = sim.stop()
    ck.eq(rc, 0, "device fleet exits 0")
    if rep:
        ck.eq(rep["counts"]["acks"], 2, "the plain devices answered the MQTTS app")

    # -- MQTTS: gizsim apps and devices ------------------------------------------------------------
    state2 = os.path.join(tls_dir, "state2")
    sim = Sim(["--http", http, "-p", pk, "-n", 2, "-s", state2, "--no-ota", "--device-tls",
               "--apps", 1, "--app-devices", 2, "--app-tls", "--app-interval", 0.1,
               "--mqtts-port", cloud.mqtts_port, "--cacert", ca, "--duration", 300])
    ck.ok(sim.wait_line("all 2 devices connected", 60), "devices logged in over MQTTS")
    ck.ok(sim.wait_line("all 1 apps ready", 60), "the app logged in over MQTTS")
    r = sim.wait_until(lambda r: r["counts"]["app_acks"] >= 10, 30)
    rc, rep = sim.stop()
    ck.eq(rc, 0, "gizsim exits 0")
    if ck.ok(rep is not None, "report"):
        ck.eq(rep["config"]["app_tls"], True, "report: apps on TLS")
        ck.eq(rep["config"]["device_tls"], True, "report: devices on TLS")
        ck.ok(rep["counts"]["app_acks"] >= 10, "ACKs over MQTTS both ways (%d)" % rep["counts"]["app_acks"])
        ck.eq(rep["errors"]["total"], 0, "no errors (%r)" % {k: v for k, v in rep["errors"].items() if v})
    rc, rep, err = run_sim(["--http", http, "-p", pk, "-n", 1, "--no-ota", "--device-tls",
                            "--mqtts-port", cloud.mqtts_port, "--cacert", other_ca,
                            "--backoff-scale", 0.01, "--duration", 3])
    if ck.ok(rep is not None, "wrong-CA report"):
        ck.eq(rep["counts"]["connected"], 0, "a device with the wrong CA never logs in")
        ck.ok(rep["counts"]["mqtt_attempts"] >= 1, "it tried")

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
