# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Issue 10 item 4: bursts toward one device. Firmware reads one MQTT packet per
recv(); two PUBLISHes that reach its receive buffer together lose the second. An app
sends three 0x0093 back to back (`gizctl send --ack --count 3 --burst`) to a strict
gizsim device, ten times, and also the sequential `--count 3` form: every ACK must come
back, and the device must report no packet lost in a recv."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import Ctl, Sim, read_state  # noqa: E402

ck = harness.Checker("firmware_burst")
ROUNDS = 10

with harness.Cloud(broker=True) as cloud:
    http = "http://127.0.0.1:%d" % cloud.http_port
    ctl = Ctl(cloud)
    pk = cloud.create_product("burst")["product_key"]
    state = os.path.join(tempfile.mkdtemp(prefix="fw-burst-"), "state")
    sim = Sim(["--http", http, "-p", pk, "-n", 1, "-s", state, "--no-ota", "--duration", 300])
    ck.ok(sim.wait_line("all 1 devices connected", 60), "device connected")
    did, passcode = read_state(state)[0][:2]
    rc, _, err = ctl.json("user", "create", "burster", "--password-stdin", stdin="burst-pw-1\n")
    ck.eq(rc, 0, "user create (%s)" % err.strip())
    rc, _, err = ctl.json("login", "burster", "--password-stdin", stdin="burst-pw-1\n")
    ck.eq(rc, 0, "login (%s)" % err.strip())
    rc, _, err = ctl.json("bind", did, passcode)
    ck.eq(rc, 0, "bind (%s)" % err.strip())

    acked = 0
    failed_rounds = []
    for i in range(ROUNDS):
        rc, docs, err = ctl.json("--timeout", 5, "send", did, "0a0b0c", "--ack", "--count", 3, "--burst")
        n = len([d for d in docs if "rtt_ms" in d])
        acked += n
        if rc != 0 or n != 3:
            failed_rounds.append((i, rc, n, err.strip()[:200]))
    ck.eq(acked, 3 * ROUNDS, "every ACK of %d bursts of 3 came back (failed rounds: %r)" % (ROUNDS, failed_rounds))
    rc, docs, err = ctl.json("--timeout", 5, "send", did, "0a0b0c", "--ack", "--count", 3)
    ck.eq((rc, len([d for d in docs if "rtt_ms" in d])), (0, 3), "sequential --count 3: 3 round trips")
    rc, _, err = ctl.run("send", did, "0a", "--count", 2, "--burst")
    ck.eq(rc, 1, "--burst without --ack is a usage error")

    rc, rep = sim.stop()
    ck.eq(rc, 0, "gizsim exits 0")
    if ck.ok(rep is not None, "report"):
        ck.eq(rep["firmware"]["strict"], True, "strict device")
        ck.eq(rep["firmware"]["packets_lost"], 0, "the device lost no packet in a recv")
        ck.eq(rep["counts"]["biz_received"], 3 * ROUNDS + 3, "the device got every 0x0093")
        ck.eq(rep["counts"]["acks"], 3 * ROUNDS + 3, "and acknowledged each")

ck.eq({k: v for k, v in cloud.exit_codes.items() if v != 0}, {}, "cloud processes exited cleanly")
ck.done()
