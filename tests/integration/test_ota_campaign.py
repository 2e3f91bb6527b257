# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""OTA campaigns (issue 16) against the real cloud (mosquitto + plugin, the
GService and its campaign engine) with gizsim fleets downloading for real:

- a canary campaign over a fleet where 4 devices behave, 2 refuse the update
  (--ota-refuse-ratio), 1 corrupts its download (--ota-corrupt-ratio: MD5
  failure reported with 0x022C) and 2 are offline at the start (they log in
  later without an OTA check of their own, so only the campaign's notice can
  reach them): only the canary is told first, the rest after it updated; the
  campaign completes with exactly 6 updated and 3 failed, each with the reason
  its behaviour dictates; the API, gizctl, the metrics and each device's
  timeline say so;
- a failure threshold stops a campaign, and a device that logs in afterwards
  is not told;
- pause holds notices back (over several engine passes), resume sends them,
  cancel ends a campaign, and the state rules answer 409;
- a restart of the GService and of mosquitto in the middle of a campaign
  loses and repeats nothing: every device ends updated with one transition
  event per state;
- bad requests are 400/404/409 and leave nothing behind."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tools_cli import GIZCTL, Sim, read_state, run_sim, tool_env  # noqa: E402

ck = harness.Checker("ota_campaign")
OLD, NEW = "04020020", "04020021"
TIMEOUT_S = 8  # campaign timeout: refusing devices fail after this long without progress


def campaign(cloud, cid, query=""):
    status, c = cloud.json("GET", "/admin/ota/campaigns/%d%s" % (cid, query), admin=True)
    return c if status == 200 else {}


def wait_campaign(cloud, cid, pred, tries=600):
    """Polls (bounded, 0.1 s apart) until pred(campaign) holds; returns the last."""
    c = {}
    for _ in range(tries):
        c = campaign(cloud, cid)
        if c and pred(c):
            return c
        time.sleep(0.1)
    return c


def wait_online(cloud, pk, dids, online=True, tries=300):
    for _ in range(tries):
        status, listing = cloud.json("GET", "/admin/devices?product_key=" + pk, admin=True)
        got = {d["did"] for d in listing.get("devices", []) if d.get("online")} if status == 200 else set()
        if (set(dids) <= got) if online else not (set(dids) & got):
            return True
        time.sleep(0.1)
    return False


def metric(cloud, name, labels=""):
    status, _, body = cloud.http("GET", "/metrics")
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), body.decode(), re.M)
    return float(m.group(1)) if status == 200 and m else None


def wait_ticks(cloud, n):
    """Waits until the engine made n more passes (bounded)."""
    start = metric(cloud, "gizcloud_campaign_ticks_total")
    for _ in range(200):
        now = metric(cloud, "gizcloud_campaign_ticks_total")
        if start is not None and now is not None and now >= start + n:
            return True
        time.sleep(0.1)
    return False


def timeline(cloud, did, kind="ota_campaign"):
    status, body = cloud.json("GET", "/admin/devices/%s/events?kind=%s&limit=1000" % (did, kind),
                              admin=True)
    return body.get("events", []) if status == 200 else []


def ctl(cloud, *args):
    env = tool_env({"GIZ_HTTP_URL": "http://127.0.0.1:%d" % cloud.http_port,
                    "GIZ_ADMIN_TOKEN": cloud.admin_token})
    r = subprocess.run([GIZCTL] + [str(a) for a in args], capture_output=True, text=True,
                       env=env, timeout=120)
    return r.returncode, r.stdout, r.stderr


def fleet(cloud, pk, tmp, name, n, extra=()):
    """Registers n gizsim devices (boot OTA check while there is no firmware:
    nothing to download) and leaves them running; returns (Sim, DIDs)."""
    state = os.path.join(tmp, name)
    sim = Sim(["--http", "http://127.0.0.1:%d" % cloud.http_port, "-p", pk, "-n", n, "-s", state,
               "--soft-version", OLD, "--heartbeat", 5, "--backoff-scale", 0.05, "--duration", 500,
               "--quiet"] + list(extra))
    ck.ok(sim.wait_line("all %d devices connected" % n, 90), "fleet %s connected" % name)
    return sim, [d[0] for d in read_state(state)]


def register_offline(cloud, pk, tmp, name, n):
    """Registers n devices that then go offline; returns (state path, DIDs)."""
    state = os.path.join(tmp, name)
    rc, _, err = run_sim(["--http", "http://127.0.0.1:%d" % cloud.http_port, "-p", pk, "-n", n,
                          "-s", state, "--soft-version", OLD, "--until-ready", "--duration", 60,
                          "--quiet"])
    ck.eq(rc, 0, "offline fleet %s registered (%s)" % (name, err[-200:]))
    dids = [d[0] for d in read_state(state)]
    # they logged in before gizsim exited: until the broker's offline mark
    # lands, a campaign created now would (rightly) notify them
    ck.ok(wait_online(cloud, pk, dids, online=False), "offline fleet %s is offline" % name)
    # ... and until their MQTT events are stored (the broker's timeline writer
    # lags by up to ~0.5 s): a campaign created before that would read this
    # session's messages as its own evidence
    ck.ok(wait_disconnects(cloud, dids), "offline fleet %s: its disconnects are on the timelines" % name)
    return state, dids


def wait_disconnects(cloud, dids, tries=300):
    for _ in range(tries):
        done = 0
        for did in dids:
            status, body = cloud.json("GET", "/admin/devices/%s/events?kind=disconnect" % did, admin=True)
            done += status == 200 and bool(body.get("events"))
        if done == len(dids):
            return True
        time.sleep(0.1)
    return False


def later(cloud, state, n, extra=()):
    """Starts a registered fleet again without its boot OTA check: only a
    notice can make these devices check."""
    return Sim(["--http", "http://127.0.0.1:%d" % cloud.http_port, "-n", n, "-s", state,
                "--soft-version", OLD, "--no-ota", "--heartbeat", 5, "--backoff-scale", 0.05,
                "--duration", 500, "--quiet"] + list(extra))


def create(cloud, body):
    return cloud.json("POST", "/admin/ota/campaigns", body, admin=True)


def settled(c):
    return c.get("state") in ("completed", "stopped", "cancelled")


# port-less download URLs: gizsim parses them as firmware does (a ":port" in the host is
# no host name) and connects to the GService port it was given
with harness.Cloud(broker=True, gservice_env={"GIZ_PUBLIC_URL": "http://127.0.0.1"}) as cloud:
    tmp = tempfile.mkdtemp(prefix="campaign-it-")
    pk = cloud.create_product("campaign lamp")["product_key"]
    sims = []

    # ---- the fleet: 4 good, 2 refusing, 1 corrupting, 2 offline ------------------------------
    good, good_dids = fleet(cloud, pk, tmp, "good", 4)
    refuse, refuse_dids = fleet(cloud, pk, tmp, "refuse", 2, ["--ota-refuse-ratio", 1])
    corrupt, corrupt_dids = fleet(cloud, pk, tmp, "corrupt", 1, ["--ota-corrupt-ratio", 1])
    off_state, off_dids = register_offline(cloud, pk, tmp, "offline", 2)
    sims += [good, refuse, corrupt]
    all_dids = good_dids + refuse_dids + corrupt_dids + off_dids
    ck.eq(len(set(all_dids)), 9, "9 distinct devices")
    ck.ok(wait_online(cloud, pk, good_dids + refuse_dids + corrupt_dids), "7 devices online")
    ck.ok(wait_online(cloud, pk, off_dids, online=False), "2 devices offline")

    # ---- bad requests ------------------------------------------------------------------------
    status, e = create(cloud, {"product_key": pk})
    ck.eq((status, e.get("error")), (404, "no_firmware"), "no firmware yet: 404 (%r)" % e)
    image = os.urandom(20 * 1024 + 5)
    fw = cloud.upload_firmware(pk, 1, NEW, image)
    for body, want in (({"product_key": "zz"}, 400), ({"product_key": pk, "type": 3}, 400),
                       ({"product_key": pk, "dids": ["nope"]}, 400),
                       ({"product_key": pk, "dids": [], "macs": []}, 400),
                       ({"product_key": pk, "window": "25:00-26:00"}, 400),
                       ({"product_key": pk, "percent": 0}, 400),
                       ({"product_key": pk, "timeout_s": "x"}, 400),
                       ({"product_key": pk, "dids": ["z" * 22]}, 409)):
        status, e = create(cloud, body)
        ck.eq(status, want, "bad campaign %r -> %d (%r)" % (body, want, e))
    status, _, _ = cloud.http("POST", "/admin/ota/campaigns", raw=b"{not json",
                              headers={"Content-Type": "application/json"}, admin=True)
    ck.eq(status, 400, "malformed JSON -> 400")
    status, _, _ = cloud.http("POST", "/admin/ota/campaigns", {"product_key": pk})
    ck.eq(status, 401, "no admin token -> 401")
    status, listing = cloud.json("GET", "/admin/ota/campaigns", admin=True)
    ck.eq((status, listing.get("total")), (200, 0), "nothing was created by the bad requests")
    for path in ("/admin/ota/campaigns/99", "/admin/ota/campaigns/x", "/admin/ota/campaigns/99/pause"):
        status, _ = cloud.json("GET" if path.count("/") == 4 else "POST", path, admin=True)
        ck.eq(status, 404, "%s -> 404" % path)

    # ---- the canary campaign -------------------------------------------------------------------
    status, c = create(cloud, {"product_key": pk, "type": 1, "name": "canary rollout",
                               "canary_dids": [good_dids[0]], "timeout_s": TIMEOUT_S})
    ck.eq(status, 201, "campaign created (%r)" % c)
    cid = c.get("id", 0)
    ck.eq((c.get("state"), c.get("devices"), c.get("canary"), c.get("firmware_id"),
           c.get("soft_version")), ("running", 9, 1, fw["id"], NEW), "the campaign's answer")
    # the canary goes first: nobody else is told before it updated
    c = wait_campaign(cloud, cid, lambda c: c["counts"]["updated"] >= 1 or settled(c))
    devs = {d["did"]: d for d in c.get("devices", [])}
    ck.eq(devs.get(good_dids[0], {}).get("state"), "updated", "the canary updated first")
    first_notices = sorted(d.get("notified_at", 0) for did, d in devs.items() if did != good_dids[0])
    canary_done = devs.get(good_dids[0], {}).get("done_at", 0)
    ck.ok(all(t == 0 or t >= canary_done for t in first_notices),
          "no other device was notified before the canary updated")
    # the offline devices log in now (no OTA check of their own)
    offline = later(cloud, off_state, 2)
    sims.append(offline)
    ck.ok(offline.wait_line("all 2 devices connected", 90), "offline devices logged in")
    c = wait_campaign(cloud, cid, settled, tries=1200)
    ck.eq(c.get("state"), "completed", "the campaign completed (%s)" % c.get("reason"))
    # the two processes' events are committed in their own batches: a device's
    # download event may be read after its version report; it still counts
    c = wait_campaign(cloud, cid, lambda c: all(
        d.get("bytes", 0) >= len(image) for d in c["devices"] if d["did"] in good_dids + off_dids))
    counts = c.get("counts", {})
    ck.eq(counts, {"pending": 0, "notified": 0, "checked": 0, "offered": 0, "downloading": 0,
                   "downloaded": 0, "updated": 6, "failed": 3}, "counts as the fleet behaves")
    devs = {d["did"]: d for d in c.get("devices", [])}
    for did in good_dids + off_dids:
        d = devs.get(did, {})
        ck.eq((d.get("state"), d.get("version")), ("updated", NEW), "%s updated" % did)
        ck.ok(d.get("notices", 0) >= 1 and d.get("bytes", 0) >= len(image) and d.get("checks", 0) >= 1,
              "%s was told, checked and downloaded the image (%r)" % (did, d))
    for did in off_dids:
        ck.ok(devs.get(did, {}).get("notified_at", 0) > 0, "offline device %s told after its login" % did)
    for did in refuse_dids:
        d = devs.get(did, {})
        ck.eq(d.get("state"), "failed", "refusing %s failed" % did)
        ck.ok("no progress" in d.get("reason", "") and "offered" in d.get("reason", ""),
              "refusing %s: timed out after the offer (%r)" % (did, d.get("reason")))
        ck.eq(d.get("downloads"), 0, "refusing %s downloaded nothing" % did)
    d = devs.get(corrupt_dids[0], {})
    ck.eq(d.get("state"), "failed", "corrupting device failed")
    ck.ok("md5" in d.get("reason", ""), "its reason is the MD5 failure it reported (%r)" % d.get("reason"))
    # its timeline
    ev = timeline(cloud, good_dids[1])
    order = ["notified", "checked", "offered", "downloading", "downloaded", "updated"]
    states = [e.get("state") for e in ev]
    ck.ok(states[:1] == ["notified"] and states[-1:] == ["updated"] and
          [o for o in order if o in states] == states,
          "a device's campaign timeline: notified ... updated, in order, each once (%r)" % states)
    d = devs.get(good_dids[1], {})
    ck.ok(0 < d.get("notified_at", 0) <= d.get("checked_at", 0) <= d.get("downloaded_at", 0),
          "its row has the times of notice, check and download (%r)" % d)
    ck.ok(all(e.get("campaign") == cid for e in ev), "the events name the campaign")
    # paging and filters
    c2 = campaign(cloud, cid, "?state=failed&limit=2")
    ck.eq((len(c2.get("devices", [])), c2.get("total")), (2, 3), "device list paged and filtered by state")
    ck.ok(all(x["state"] == "failed" for x in c2.get("devices", [])), "only failed devices listed")
    status, _ = cloud.json("GET", "/admin/ota/campaigns/%d?state=bogus" % cid, admin=True)
    ck.eq(status, 400, "unknown state filter -> 400")
    # metrics and gizctl
    ck.ok(metric(cloud, "gizcloud_campaigns") == 1, "metrics count the campaign")
    rc, out, err = ctl(cloud, "ota", "campaign", "show", cid)
    ck.ok(rc == 0 and "completed" in out and "updated 6" in out and "failed 3" in out,
          "gizctl ota campaign show (%s%s)" % (out[-400:], err[-200:]))
    rc, out, err = ctl(cloud, "ota", "campaign", "list")
    ck.ok(rc == 0 and "canary rollout" in out, "gizctl ota campaign list (%s%s)" % (out, err))
    rc, out, err = ctl(cloud, "--json", "ota", "campaign", "show", cid)
    ck.ok(rc == 0 and json.loads(out or "{}").get("counts", {}).get("updated") == 6,
          "gizctl --json ota campaign show (%s)" % err[-200:])
    rc, out, err = ctl(cloud, "ota", "campaign", "follow", cid)
    ck.ok(rc == 0 and "completed" in out, "gizctl follow ends with the campaign (%s%s)" % (out[-300:], err))
    status, e = cloud.json("POST", "/admin/ota/campaigns/%d/pause" % cid, admin=True)
    ck.eq(status, 409, "a completed campaign cannot be paused")

    # ---- a failure threshold stops a campaign --------------------------------------------------
    pk2 = cloud.create_product("threshold lamp")["product_key"]
    bad2, bad2_dids = fleet(cloud, pk2, tmp, "bad2", 3, ["--ota-refuse-ratio", 1])
    sims.append(bad2)
    late_state, late_dids = register_offline(cloud, pk2, tmp, "late2", 1)
    cloud.upload_firmware(pk2, 1, NEW, image)
    ck.ok(wait_online(cloud, pk2, bad2_dids), "threshold fleet online")
    status, c = create(cloud, {"product_key": pk2, "failure_threshold": 2, "timeout_s": TIMEOUT_S})
    cid2 = c.get("id", 0)
    ck.eq((status, c.get("devices")), (201, 4), "threshold campaign created (%r)" % c)
    c = wait_campaign(cloud, cid2, settled, tries=1200)
    ck.eq(c.get("state"), "stopped", "the failure threshold stopped the campaign")
    ck.ok("failure threshold" in c.get("reason", ""), "its reason says so (%r)" % c.get("reason"))
    ck.ok(c.get("counts", {}).get("failed", 0) >= 2, "at least 2 failed (%r)" % c.get("counts"))
    late = later(cloud, late_state, 1)
    sims.append(late)
    ck.ok(late.wait_line("all 1 devices connected", 90), "a device of the stopped campaign logs in")
    ck.ok(wait_online(cloud, pk2, late_dids) and wait_ticks(cloud, 4), "engine passes after its login")
    d = {x["did"]: x for x in campaign(cloud, cid2).get("devices", [])}.get(late_dids[0], {})
    ck.eq((d.get("state"), d.get("notices")), ("pending", 0), "a stopped campaign tells no one")
    status, _ = cloud.json("POST", "/admin/ota/campaigns/%d/resume" % cid2, admin=True)
    ck.eq(status, 409, "a stopped campaign cannot be resumed")
    status, c = cloud.json("POST", "/admin/ota/campaigns/%d/cancel" % cid2, admin=True)
    ck.eq((status, c.get("state")), (200, "cancelled"), "a stopped campaign can be cancelled")

    # ---- pause / resume / cancel -----------------------------------------------------------------
    pk3 = cloud.create_product("pause lamp")["product_key"]
    p_state, p_dids = register_offline(cloud, pk3, tmp, "pause3", 3)
    cloud.upload_firmware(pk3, 1, NEW, image)
    status, c = create(cloud, {"product_key": pk3, "timeout_s": 60})
    cid3 = c.get("id", 0)
    ck.eq(status, 201, "pause campaign created")
    status, c = cloud.json("POST", "/admin/ota/campaigns/%d/pause" % cid3, admin=True)
    ck.eq((status, c.get("state")), (200, "paused"), "paused")
    status, _ = cloud.json("POST", "/admin/ota/campaigns/%d/pause" % cid3, admin=True)
    ck.eq(status, 409, "pausing twice -> 409")
    psim = later(cloud, p_state, 3)
    sims.append(psim)
    ck.ok(psim.wait_line("all 3 devices connected", 90), "paused campaign's devices log in")
    ck.ok(wait_online(cloud, pk3, p_dids) and wait_ticks(cloud, 4), "engine passes while paused")
    c = campaign(cloud, cid3)
    told = sorted((x.get("did"), x.get("state"), x.get("notices")) for x in c.get("devices", [])
                  if x.get("state") != "pending" or x.get("notices"))
    ck.eq((c.get("state"), c.get("counts", {}).get("pending"), told), ("paused", 3, []),
          "paused: nobody told")
    rc, out, err = ctl(cloud, "ota", "campaign", "resume", cid3)
    ck.ok(rc == 0 and "running" in out, "gizctl ota campaign resume (%s%s)" % (out, err))
    c = wait_campaign(cloud, cid3, settled, tries=1200)
    ck.eq((c.get("state"), c.get("counts", {}).get("updated")), ("completed", 3), "resumed campaign completes")
    pk4 = cloud.create_product("cancel lamp")["product_key"]
    _, c_dids = register_offline(cloud, pk4, tmp, "cancel4", 1)
    cloud.upload_firmware(pk4, 1, NEW, image)
    rc, out, err = ctl(cloud, "ota", "campaign", "create", "-p", pk4, "--timeout", 60)
    m = re.search(r"campaign (\d+)", out)
    ck.ok(rc == 0 and m is not None, "gizctl ota campaign create (%s%s)" % (out, err))
    cid4 = int(m.group(1)) if m else 0
    rc, out, err = ctl(cloud, "ota", "campaign", "cancel", cid4)
    ck.ok(rc == 0 and "cancelled" in out, "gizctl ota campaign cancel (%s%s)" % (out, err))
    rc, out, err = ctl(cloud, "ota", "campaign", "resume", cid4)
    ck.ok(rc != 0 and "409" in err + out, "resuming a cancelled campaign fails (%s%s)" % (out, err))

    # ---- restarts in the middle of a campaign ----------------------------------------------------
    pk5 = cloud.create_product("restart lamp")["product_key"]
    r5, r5_dids = fleet(cloud, pk5, tmp, "restart5", 6)
    sims.append(r5)
    cloud.upload_firmware(pk5, 1, NEW, image)
    ck.ok(wait_online(cloud, pk5, r5_dids), "restart fleet online")
    status, c = create(cloud, {"product_key": pk5, "canary": 1, "timeout_s": 30})
    cid5 = c.get("id", 0)
    ck.eq(status, 201, "restart campaign created")
    # the GService goes down at once (before or while the canary updates) ...
    cloud.gservice.send_signal(signal.SIGTERM)
    ck.eq(cloud.gservice.wait(timeout=30), 0, "the GService stops cleanly mid-campaign")
    cloud.start_gservice()
    # ... and the broker too, once the canary's notice is out
    wait_campaign(cloud, cid5, lambda c: c["counts"]["pending"] < 6 or settled(c))
    cloud.broker.send_signal(signal.SIGTERM)
    ck.eq(cloud.broker.wait(timeout=30), 0, "mosquitto stops cleanly mid-campaign")
    cloud.start_broker()
    c = wait_campaign(cloud, cid5, settled, tries=1500)
    ck.eq((c.get("state"), c.get("counts", {}).get("updated")), ("completed", 6),
          "after both restarts the campaign completes with every device updated (%r)" % c.get("counts"))
    for did in r5_dids:
        states = [e.get("state") for e in timeline(cloud, did) if e.get("campaign") == cid5]
        ck.eq(states.count("updated"), 1, "%s: one 'updated' event (%r)" % (did, states))
        ck.eq(len(states), len(set(states)), "%s: no transition repeated (%r)" % (did, states))

    for s in sims:
        rc, _ = s.stop()
        ck.eq(rc, 0, "gizsim exits 0")
codes = cloud.exit_codes
ck.eq(codes.get("gservice"), 0, "GService exited cleanly (%r)" % codes)
ck.eq(codes.get("mosquitto"), 0, "mosquitto exited cleanly (%r)" % codes)
ck.done()
