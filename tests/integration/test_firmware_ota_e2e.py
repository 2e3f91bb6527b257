# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Issue 10 end to end: firmware upload -> OTA push -> download -> MD5 -> new version,
with strict gizsim devices (firmware limits) and gizctl as the operator. The GService
is told it is reached on port 80 (GIZ_ADVERTISED_HTTP_PORT=80), so its download URLs
are what real firmware can use. Steps: a fleet runs 04020020; `gizctl firmware upload`
04020021, `gizctl firmware list` shows it; `gizctl ota push --product` (0x0211, v4.1)
makes every device re-check, download, verify the MD5 and run 04020021; the next check
reports 04020021 and is told there is nothing newer (no second download); then 04020022
and `gizctl ota push --ota-version 40` (0x020E, v4.0 target_fid): every device downloads
it and holds its fid. `gizctl ota push` for a product without firmware says so."""
import hashlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import Ctl, Sim, read_state  # noqa: E402

ck = harness.Checker("firmware_ota_e2e")
N = 5

with harness.Cloud(broker=True, gservice_env={"GIZ_PUBLIC_URL": "", "GIZ_ADVERTISED_HTTP_PORT": "80"}) as cloud:
    http = "http://127.0.0.1:%d" % cloud.http_port
    ctl = Ctl(cloud)
    tmp = tempfile.mkdtemp(prefix="fw-e2e-")
    rc, docs, err = ctl.json("product", "create", "e2e lamp")
    pk = docs[0].get("product_key", "") if docs else ""
    ck.eq(len(pk), 32, "product created (%s)" % err.strip())

    state = os.path.join(tmp, "state")
    sim = Sim(["--http", http, "-p", pk, "-n", N, "-s", state, "--soft-version", "04020020",
               "--heartbeat", 5, "--duration", 400])
    ck.ok(sim.wait_line("all %d devices connected" % N, 60), "fleet connected")
    r = sim.wait_until(lambda r: r["counts"]["ota_checks"] >= N, 20)
    ck.eq(r["firmware"]["downloads_started"] if r else None, 0, "nothing to download at boot")

    # -- upload + list -------------------------------------------------------------------
    img1 = os.urandom(48 * 1024 + 123)
    f1 = os.path.join(tmp, "wifi-04020021.bin")
    with open(f1, "wb") as f:
        f.write(img1)
    rc, docs, err = ctl.json("firmware", "upload", f1, "-p", pk, "-t", 1, "-s", "04020021")
    ck.eq(rc, 0, "firmware upload exits 0 (%s)" % err.strip())
    fw1 = docs[0] if docs else {}
    ck.eq(fw1.get("md5"), hashlib.md5(img1).hexdigest(), "the cloud's MD5 is the file's")
    rc, docs, err = ctl.json("firmware", "list", "-p", pk)
    listed = docs[0].get("firmware", []) if rc == 0 and docs else []
    ck.ok(any(f.get("id") == fw1.get("id") and f.get("soft_version") == "04020021" for f in listed),
          "firmware list shows the upload (%s)" % err.strip())
    rc, out, _ = ctl.run("firmware", "list")
    ck.ok(rc == 0 and "04020021" in out and fw1.get("md5", "?") in out, "firmware list (text)")

    # -- v4.1: push -> re-check -> download -> MD5 -> new version --------------------------
    for _ in range(150):  # presence is written in batches: bounded poll until all are online
        status, listing = cloud.json("GET", "/admin/devices?product_key=" + pk, admin=True)
        if status == 200 and sum(1 for d in listing.get("devices", []) if d.get("online")) == N:
            break
        time.sleep(0.1)
    rc, out, err = ctl.run("ota", "push", "--product", pk)
    ck.eq(rc, 0, "ota push exits 0 (%s)" % err.strip())
    ck.ok("pushed" in out and "%d online" % N in out, "ota push reports the targets (%s)" % out.strip())
    def settled(r, pushes_key, pushes):
        """Every device saw the push, re-checked, and any download it started ended."""
        f = r["firmware"]
        return (r["counts"][pushes_key] >= pushes and
                f["downloads_ok"] + f["downloads_failed"] == f["downloads_started"])

    r = sim.wait_until(lambda r: settled(r, "ota_push_v41", N) and r["firmware"]["downloads_started"] >= N, 60)
    if ck.ok(r is not None, "report after the v4.1 push"):
        ck.eq(r["counts"]["ota_push_v41"], N, "every device saw 0x0211")
        ck.eq(r["firmware"]["downloads_started"], N, "every device started a download")
        ck.eq(r["firmware"]["downloads_ok"], N, "every device downloaded a good image (%r)" % r["firmware"])
        ck.eq([d["soft_version"] for d in r["devices"]], ["04020021"] * N, "every device runs 04020021")
    checks_before = r["counts"]["ota_checks"] if r else 0

    rc, out, err = ctl.run("ota", "push", "--product", pk)
    ck.eq(rc, 0, "second push exits 0")
    r = sim.wait_until(lambda r: settled(r, "ota_push_v41", 2 * N) and r["counts"]["ota_checks"] >= checks_before + N, 30)
    if ck.ok(r is not None, "report after the second push"):
        ck.eq(r["counts"]["ota_checks"], checks_before + N, "every device re-checked once more")
        ck.eq(r["firmware"]["downloads_started"], N, "nothing newer: no second download")
        ck.eq(r["errors"]["ota_check_failed"], 0, "the 'no update' answers parsed as firmware does")
    dids = [d[0] for d in read_state(state)]
    for _ in range(100):  # the check stores the reported version: bounded poll
        versions = []
        for did in dids:
            status, dev = cloud.json("GET", "/admin/devices/" + did, admin=True)
            versions.append(dev.get("wifi_soft_version") if status == 200 else None)
        if versions == ["04020021"] * N:
            break
        time.sleep(0.1)
    ck.eq(versions, ["04020021"] * N, "the cloud records the new version the devices report")

    # -- v4.0: 0x020E -> target_fid -> download ---------------------------------------------
    img2 = os.urandom(30 * 1024 + 7)
    f2 = os.path.join(tmp, "wifi-04020022.bin")
    with open(f2, "wb") as f:
        f.write(img2)
    rc, docs, err = ctl.json("firmware", "upload", f2, "-p", pk, "-t", 1, "-s", "04020022")
    fw2 = docs[0] if rc == 0 and docs else {}
    ck.eq(rc, 0, "second upload (%s)" % err.strip())
    rc, out, err = ctl.run("ota", "push", "--product", pk, "--ota-version", 40)
    ck.eq(rc, 0, "ota push --ota-version 40 exits 0 (%s)" % err.strip())
    ck.ok("4.0" in out, "the push says v4.0 (%s)" % out.strip())
    r = sim.wait_until(lambda r: settled(r, "ota_push_v40", N) and r["firmware"]["downloads_started"] >= 2 * N, 60)
    if ck.ok(r is not None, "report after the v4.0 push"):
        ck.eq(r["counts"]["ota_push_v40"], N, "every device saw 0x020E")
        ck.eq(r["firmware"]["downloads_ok"], 2 * N, "every device downloaded the v4.0 image (%r)" % r["firmware"])
        ck.eq([d["soft_version"] for d in r["devices"]], ["04020022"] * N, "every device runs 04020022")
        ck.eq([d["current_fid"] for d in r["devices"]], [fw2.get("id")] * N, "every device holds the new fid")

    # -- a push with nothing to install says so -----------------------------------------------
    pk2 = cloud.create_product("no firmware")["product_key"]
    sim2 = Sim(["--http", http, "-p", pk2, "-n", 1, "--duration", 120])
    ck.ok(sim2.wait_line("all 1 devices connected", 60), "a device of a product without firmware")
    rc, out, err = ctl.run("ota", "push", "--product", pk2)
    ck.eq(rc, 0, "ota push without firmware exits 0 (the push is still sent)")
    ck.ok("no firmware" in out and "9500" in out and "pushed (" not in out,
          "ota push says no firmware matches (%s)" % out.strip())
    rc, docs, _ = ctl.json("ota", "push", "--product", pk2)
    ck.eq(docs[0].get("firmware_matched") if docs else None, False, "--json: firmware_matched false")
    rc, docs, _ = ctl.json("ota", "push", "--did", dids[0])
    ck.eq(docs[0].get("firmware_matched") if docs else None, True, "--json: a device push with firmware")
    sim2.stop()

    rc, rep = sim.stop()
    ck.eq(rc, 0, "gizsim exits 0")
    if ck.ok(rep is not None, "final report"):
        ck.eq(rep["firmware"]["packets_lost"], 0, "no packet lost in a recv")
        ck.eq(rep["firmware"]["publishes_before_suback"], 0, "nothing before the third SUBACK")
        ck.eq(rep["errors"]["total"], 0, "no errors (%r)" % {k: v for k, v in rep["errors"].items() if v})

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
