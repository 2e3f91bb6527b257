# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""TLS on mosquitto's own listener with the shipped settings (deploy/render-conf:
cafile/certfile/keyfile, tls_version tlsv1.2, ECDHE AEAD ciphers), with a throw-away
certificate made by the openssl tool: devices and apps log in over TLS and exchange
messages with plain-TCP clients; the plugin sees the decrypted stream (SSL_read is
interposed), so the PINGREQ limit (also a flood of PINGREQs in one TLS write) and the
keepalive clamp apply to TLS connections too; TLS 1.0/1.1 and CBC or static-RSA
suites are refused; plain MQTT on the TLS port and junk handshakes are closed
without harm; a missing certificate stops mosquitto at start-up."""
import os
import re
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from plugin_mqtt import (APP_COUNT_REQ, PINGREQ, Paho, RawClient, app_count_payload, bind,  # noqa: E402
                         connect_packet, device_client, new_device, new_user, wait_for)

ck = harness.Checker("plugin_tls")


def make_cert(folder):
    """A self-signed certificate as tls_dir/server.crt + server.key, and the same
    certificate as the CA file (ca.crt)."""
    cert = os.path.join(folder, "server.crt")
    key = os.path.join(folder, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", key, "-out", cert, "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    with open(cert, "rb") as f, open(os.path.join(folder, "ca.crt"), "wb") as out:
        out.write(f.read())
    return cert, key


def tls_ctx(cert):
    ctx = ssl.create_default_context(cafile=cert)
    return ctx


import tempfile  # noqa: E402
tls_dir = tempfile.mkdtemp(prefix="giztls-")
cert, key = make_cert(tls_dir)
cloud = harness.Cloud(broker=True, tls_dir=tls_dir, plugin_opts={"keepalive_max": "300"})
tls_port = cloud.mqtts_port
with cloud:
    pk = cloud.create_product()["product_key"]
    did, pc = new_device(cloud, pk)
    alice = new_user(cloud, "alice")
    bind(cloud, alice, did, pc)
    ctx = tls_ctx(cert)

    dev = RawClient(tls_port, ssl_context=ctx)
    ck.eq(dev.sock.version() in ("TLSv1.2", "TLSv1.3"), True, "TLS 1.2+ negotiated (%s)" % dev.sock.version())
    ck.eq(dev.connect(did, did, pc, keepalive=700), 0, "device login over TLS")
    ck.ok(wait_for(lambda: re.search(r"as %s \(p\d, c\d, k300," % did, cloud.log_text("mosquitto"))),
          "keepalive 700 clamped to 300 over TLS")
    ck.eq(dev.subscribe("ser2cli_res/" + did), 0, "subscribe over TLS")
    dev.publish("cli2ser_req", APP_COUNT_REQ)
    ck.eq(dev.read_publish(3), ("ser2cli_res/" + did, app_count_payload(0)), "0x020F -> 0x0210 over TLS")
    ck.eq(dev.subscribe("app2dev/%s/#" % did), 0, "device subscribes app2dev over TLS")

    # An app over TLS (paho) and the device over TLS exchange messages.
    app = Paho(tls_port, alice["mqtt_client_id"], alice["uid"], alice["token"], ca_file=cert)
    ck.eq(app.rc, 0, "paho app login over TLS")
    got = dev.read_publish(3)
    ck.eq(got and got[1], app_count_payload(1), "push 0x0210 count 1 over TLS")
    ck.eq(list(app.subscribe("dev2app/" + did) or []), [0], "app subscribes over TLS")
    big = bytes(range(256)) * 200  # 51 KiB: several TLS records
    dev.publish("dev2app/" + did, big)
    msgs = app.drain(2.0)
    ck.ok(("dev2app/" + did, big) in msgs, "51 KiB message device -> app over TLS intact")
    app.publish("app2dev/%s/%s" % (did, alice["mqtt_client_id"]), b"\x00\x00\x00\x03\x04\x00\x00\x90\x02")
    got = dev.read_publish(3)
    ck.eq(got and got[1], b"\x00\x00\x00\x03\x04\x00\x00\x90\x02", "app -> device over TLS")

    # Plain client on the plain port sees the TLS device's messages too.
    plain = Paho(cloud.mqtt_port, alice["mqtt_client_id"], alice["uid"], alice["token"])
    app.c.loop_stop()
    ck.eq(plain.rc, 0, "same app client id over plain TCP (takeover)")
    plain.subscribe("dev2app/" + did)
    dev.publish("dev2app/" + did, b"tls-to-plain")
    ck.ok(("dev2app/" + did, b"tls-to-plain") in plain.drain(1.5), "TLS device -> plain app")
    plain.close()

    # PINGREQ limit over TLS.
    port = dev.sock.getsockname()[1]
    dev.send(PINGREQ * 180)
    n = 0
    while n < 180:
        p = dev.read_packet(3)
        if p is None:
            break
        if p[0] == 13:
            n += 1
    ck.eq(n, 180, "180 PINGREQ answered over TLS")
    dev.send(PINGREQ)
    ck.ok(dev.wait_closed(5), "181st PINGREQ closes the TLS connection")
    ck.ok(wait_for(lambda: "closing 127.0.0.1:%d (client %s): more than 180 PINGREQ" % (port, did)
                   in cloud.log_text("mosquitto")), "ping-limit log line with the real TLS peer")

    # A PINGREQ flood over TLS: 1,000 in one write (a few TLS records): 180 answered, closed.
    fl = RawClient(tls_port, ssl_context=ctx)
    ck.eq(fl.connect(did, did, pc, keepalive=60), 0, "device login over TLS (flood)")
    fl.send(PINGREQ * 1000)
    n = 0
    while True:
        p = fl.read_packet(3)
        if p is None:
            break
        if p[0] == 13:
            n += 1
    ck.eq(n, 180, "PINGREQ flood over TLS: 180 answered")
    ck.ok(fl.closed, "PINGREQ flood over TLS: connection closed")
    fl.close()

    # A CONNECT split across TLS records (one byte per record), keepalive 0 -> 300.
    sp = RawClient(tls_port, ssl_context=ctx)
    pkt = connect_packet(did, did, pc, keepalive=0)
    for i in range(len(pkt)):
        sp.send(pkt[i:i + 1])
    p = sp.read_packet(3)
    ck.eq(p and (p[0], p[2][1:2]), (2, b"\x00"), "CONNECT in one-byte TLS records accepted")
    ck.ok(not re.search(r"as %s \(p\d, c\d, k0," % did, cloud.log_text("mosquitto")),
          "keepalive 0 over TLS clamped")
    sp.close()

    # Old protocol versions and weak suites are refused by the shipped settings.
    for what, opts in (("TLS 1.1", {"maximum_version": ssl.TLSVersion.TLSv1_1}),
                       ("TLS 1.2 with CBC-SHA1 / static RSA suites",
                        {"maximum_version": ssl.TLSVersion.TLSv1_2,
                         "ciphers": "AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:AES128-GCM-SHA256"})):
        weak = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        weak.load_verify_locations(cert)
        try:
            weak.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            weak.maximum_version = opts["maximum_version"]
            if "ciphers" in opts:
                weak.set_ciphers(opts["ciphers"])
            else:
                weak.set_ciphers("ALL:@SECLEVEL=0")
        except (ssl.SSLError, ValueError):
            ck.ok(True, "%s: the client library cannot even offer it" % what)
            continue
        try:
            RawClient(tls_port, ssl_context=weak, timeout=3)
            ck.ok(False, "%s must be refused" % what)
        except (ssl.SSLError, OSError):
            ck.ok(True, "%s refused" % what)

    # Plain MQTT on the TLS port, junk handshakes, TLS on the plain port.
    m = RawClient(tls_port)
    m.send(connect_packet(did, did, pc))
    ck.ok(m.wait_closed(5), "plain MQTT on the TLS port closed")
    m.close()
    m = RawClient(tls_port)
    m.send(b"\x16\x03\x01\x00\x05hello" + os.urandom(300))
    ck.ok(m.wait_closed(5), "junk handshake closed")
    m.close()
    try:
        RawClient(cloud.mqtt_port, ssl_context=ctx, timeout=3)
        ck.ok(False, "TLS handshake against the plain port must fail")
    except (ssl.SSLError, OSError):
        ck.ok(True, "TLS against the plain port fails")
    wrong = ssl.create_default_context()  # system CAs: our self-signed cert is not trusted
    try:
        RawClient(tls_port, ssl_context=wrong, timeout=3)
        ck.ok(False, "untrusted certificate must be refused by the client")
    except ssl.SSLCertVerificationError:
        ck.ok(True, "client verification works (cert not in system store)")

    d2 = device_client(cloud, did, pc)
    d2.publish("cli2ser_req", APP_COUNT_REQ)
    ck.ok(d2.read_publish(3) is not None, "plain port fine after TLS junk")
    d2.close()
    app.close()

ck.eq(cloud.exit_codes.get("mosquitto"), 0, "mosquitto exits cleanly")

# Fail closed: a listener whose certificate file is missing stops mosquitto.
c2 = harness.Cloud(gservice=False, broker=False, tls_dir=os.path.join(tls_dir, "missing"))
try:
    rc, out = harness.run_broker_once(c2.broker_conf(), c2.dir)
    ck.ok(rc != 0, "missing certificate: mosquitto refuses to start (rc %s)" % rc)
finally:
    c2.stop()
import shutil  # noqa: E402
shutil.rmtree(tls_dir, ignore_errors=True)

ck.done()
