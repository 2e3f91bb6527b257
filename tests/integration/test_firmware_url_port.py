# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Issue 10 defect 1: download URLs must not carry ":80". Real firmware takes
everything between "http://" and the first "/" as the host name and always connects
to port 80, so "http://127.0.0.1:80/..." is an unknown host to it. The GService is
told it is reached on port 80 (GIZ_ADVERTISED_HTTP_PORT=80, as behind a port-80
forward) and keeps its default download base (the harness's explicit GIZ_PUBLIC_URL is
cleared); strict gizsim devices, which fail a download exactly as firmware does when
the URL's host part holds a ':' (they connect to the harness's HTTP port instead of 80),
must download the offered firmware through the v4.1 answer and the v4.0 target_fid
answer, and the URLs the admin API and the device API hand out must have no port."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import run_sim  # noqa: E402

ck = harness.Checker("firmware_url_port")


def url_host(url):
    """The host part as firmware cuts it: between http:// and the first '/'."""
    rest = url.split("http://", 1)[1] if "http://" in url else ""
    return rest.split("/", 1)[0]


with harness.Cloud(broker=True, gservice_env={"GIZ_PUBLIC_URL": "", "GIZ_ADVERTISED_HTTP_PORT": "80"}) as cloud:
    http = "http://127.0.0.1:%d" % cloud.http_port
    pk = cloud.create_product("url port")["product_key"]
    image = os.urandom(9000)
    fw = cloud.upload_firmware(pk, 1, "04020021", image, filename="wifi.bin")
    for key in ("download_url", "download_url_v40"):
        ck.eq(url_host(fw.get(key, "")), "127.0.0.1", "%s host has no port (%s)" % (key, fw.get(key)))

    tmp = tempfile.mkdtemp(prefix="fw-url-")
    for ota_version in ("41", "40"):
        rc, rep, err = run_sim(["--http", http, "-p", pk, "-n", 3, "-s", os.path.join(tmp, ota_version),
                                "--ota-version", ota_version, "--until-ready", "--duration", 120])
        ck.eq(rc, 0, "v%s: gizsim exits 0" % ota_version)
        if ck.ok(rep is not None, "v%s: report" % ota_version):
            f = rep["firmware"]
            ck.eq(f["strict"], True, "v%s: gizsim ran strict" % ota_version)
            ck.eq(f["download_failures"]["unknown_host"], 0,
                  "v%s: no download failed on the URL's host (%r)" % (ota_version, f))
            ck.eq(f["downloads_ok"], 3, "v%s: every device downloaded the firmware" % ota_version)
            ck.eq([d["soft_version"] for d in rep["devices"]], ["04020021"] * 3,
                  "v%s: every device runs the new version" % ota_version)
            if ota_version == "40":
                ck.eq([d["current_fid"] for d in rep["devices"]], [fw["id"]] * 3,
                      "v4.0: the installed fid is the firmware's id")

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
