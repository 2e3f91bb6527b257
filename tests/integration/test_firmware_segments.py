# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Issue 10 defect 2: a download answer must carry its headers and the body start in
one segment. Firmware does one recv(600) and writes (600 - header length) bytes of
that buffer whatever recv returned; headers sent alone give an image that starts with
zero bytes and fails its Firmware-MD5. Strict gizsim devices download like that: every
one of a fleet must get an image whose MD5 matches, for a WiFi and an MCU firmware of
a few KiB (not a multiple of 600). The URLs are made port-less with GIZ_PUBLIC_URL, so
only the segment layout is tested here (the ":80" defect has its own test)."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import run_sim  # noqa: E402

ck = harness.Checker("firmware_segments")
N = 30

with harness.Cloud(broker=True, gservice_env={"GIZ_PUBLIC_URL": "http://127.0.0.1"}) as cloud:
    http = "http://127.0.0.1:%d" % cloud.http_port
    tmp = tempfile.mkdtemp(prefix="fw-seg-")
    for fw_type, size in ((1, 20 * 1024 + 77), (2, 6 * 1024 + 5)):
        pk = cloud.create_product("segments %d" % fw_type)["product_key"]
        cloud.upload_firmware(pk, fw_type, "04020030", os.urandom(size), filename="fw%d.bin" % fw_type)
        rc, rep, err = run_sim(["--http", http, "-p", pk, "-n", N, "--ota-type", fw_type,
                                "-s", os.path.join(tmp, str(fw_type)), "--until-ready",
                                "--duration", 120])
        what = "type %d, %d bytes" % (fw_type, size)
        ck.eq(rc, 0, "%s: gizsim exits 0" % what)
        if ck.ok(rep is not None, "%s: report" % what):
            f = rep["firmware"]
            ck.eq(f["downloads_started"], N, "%s: every device downloaded" % what)
            ck.eq(f["download_failures"]["md5_mismatch"], 0,
                  "%s: no image failed its MD5 (%r)" % (what, f["download_failures"]))
            ck.eq(f["downloads_ok"], N, "%s: every image good" % what)
            ck.eq(sorted({d["soft_version"] for d in rep["devices"]}), ["04020030"],
                  "%s: the new version is installed" % what)

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
