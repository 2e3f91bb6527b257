# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The GService's half of the device timeline (issue 14) against the real
binary: a device driven through register -> provision -> OTA check v4.1 and
v4.0 -> download (whole file and a Range, tied to the device by the ?did= the
OTA answers put in the URL) -> unregister yields exactly those events, in
order, with status, error_code, versions, byte counts and peer; a download
without ?did= is recorded with did "" and its peer; the live stream
(Server-Sent Events) delivers a new event and resumes after Last-Event-ID;
the per-device bound holds under a flood (small GIZ_EVENTS_PER_DEVICE) with
the drops counted; bad since/limit/kind are 400; the metrics carry the
error_code label and the events counters and parse strictly."""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PER_DEVICE = 20


def events(cloud, did, query=""):
    status, body = cloud.json("GET", "/admin/devices/%s/events%s" % (did, query), admin=True)
    return status, body


def wait_events(cloud, did, n, query="", tries=100):
    """The device's events once at least n are written (bounded polling: the
    writer thread flushes in batches)."""
    body = {}
    for _ in range(tries):
        status, body = events(cloud, did, query)
        if status == 200 and len(body.get("events", [])) >= n:
            return body
        time.sleep(0.1)
    return body


def ota41(did, passcode, soft, fw_type=1):
    body = ("passcode=%s&type=%d&hard_version=HW1&soft_version=%s" % (passcode, fw_type, soft)).encode()
    return (("POST /dev/ota/v4.1/update_and_check/%s HTTP/1.1\r\nHost: x\r\n" % did).encode() +
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n\r\n" + body)


def path_of(url):
    m = re.match(r"^http://[^/]+(/.*)$", url)
    return m.group(1) if m else url


def download(cloud, path, rng=None):
    """GET with Connection: close, reading the whole answer; (status, body)."""
    extra = "Range: %s\r\n" % rng if rng else ""
    raw = cloud.raw_http(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (path, extra)).encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ")[1])
    except (IndexError, ValueError):
        status = 0
    return status, body


def check_timeline(c, cloud):
    pk = cloud.create_product("events")["product_key"]
    image = bytes(range(256)) * 20  # 5120 bytes
    fw = cloud.upload_firmware(pk, 1, "04020099", image, hard_version="HW1")
    did = cloud.register_device(pk, "A0B1C2D3E4F5", "pcEvents1")
    s, _, _ = cloud.http("GET", "/dev/devices/%s" % did)
    c.eq(s, 200, "provision")
    st, _, body, _ = cloud.firmware_exchange(ota41(did, "pcEvents1", "04020001"))
    c.eq(st, 200, "ota v4.1 offers an update")
    m = re.search(rb"download_url=(\S+)\r\n", body)
    url41 = m.group(1).decode() if m else ""
    c.ok(url41.endswith("?did=" + did), "v4.1 download URL carries the DID: %r" % url41)
    c.ok(len(url41) < 200, "download URL stays short (%d bytes)" % len(url41))
    # no update (already latest): 400 / 9502 recorded with the error_code
    st, _, body, _ = cloud.firmware_exchange(ota41(did, "pcEvents1", "04020099"))
    c.eq(st, 400, "ota v4.1 already latest")
    s, _, b40 = cloud.http("GET", "/dev/ota/target_fid?did=%s&product_key=%s&type=1&hard_version=HW1"
                           "&soft_version=04020001&current_fid=1" % (did, pk))
    c.eq(s, 200, "ota v4.0 target_fid")
    m = re.search(r"download_url=([^&]+)&", b40.decode())
    url40 = m.group(1) if m else ""
    c.ok(url40.endswith("?did=" + did), "v4.0 download URL carries the DID: %r" % url40)
    s, data = download(cloud, path_of(url41))
    c.eq((s, data == image), (200, True), "full download")
    # a download is recorded when its transfer ends (the completion callback),
    # which may come after the client already has every byte: wait for it
    # before the next request so the order below is the order of the requests
    wait_events(cloud, did, 6)
    s, data = download(cloud, path_of(url40), rng="bytes=100-199")
    c.eq((s, data == image[100:200]), (206, True), "range download")
    # a download without ?did= (e.g. a URL pasted by hand): did "" with the peer
    s, _ = download(cloud, "/dev/ota/v4.1/download/%d" % fw["id"], rng="bytes=0-9")
    c.eq(s, 206, "anonymous download")

    want = ["register", "provision", "ota_check", "ota_check", "ota_check", "download", "download"]
    body = wait_events(cloud, did, len(want))
    evs = body.get("events", [])
    c.eq([e.get("kind") for e in evs], want, "the device's events, in order")
    c.eq(body.get("did"), did, "answer names the device")
    c.eq(body.get("next"), None, "no further page")
    c.eq(body.get("dropped"), 0, "nothing dropped")
    ids = [e.get("id", 0) for e in evs]
    c.ok(ids == sorted(ids) and len(set(ids)) == len(ids), "ids ascending: %r" % ids)
    ts = [e.get("ts", 0) for e in evs]
    c.ok(all(t > 1.5e12 for t in ts) and ts == sorted(ts), "ts are unix ms, ascending: %r" % ts)
    if len(evs) == len(want):
        reg, prov, o41, o41b, o40, dl, dlr = evs
        c.eq((reg["status"], reg.get("mac"), reg.get("product_key"), reg["source"]),
             (201, "A0B1C2D3E4F5", pk, "http"), "register fields")
        c.ok(reg.get("peer", "").startswith("127.0.0.1:"), "register peer: %r" % reg.get("peer"))
        c.ok("passcode" not in json.dumps(reg) and "pcEvents1" not in json.dumps(evs), "no passcode stored")
        c.eq((prov["status"], prov.get("error_code")), (200, None), "provision fields")
        c.eq((o41["status"], o41["ota"], o41["soft_version"], o41["hard_version"], o41["type"], o41["offered"]),
             (200, "4.1", "04020001", "HW1", 1, "04020099"), "ota v4.1 fields")
        c.eq((o41b["status"], o41b.get("error_code"), o41b["soft_version"]), (400, 9502, "04020099"),
             "ota v4.1 no-update fields")
        c.eq((o40["status"], o40["ota"], o40["soft_version"], o40["fid"]), (200, "4.0", "04020001", fw["id"]),
             "ota v4.0 fields")
        c.eq((dl["status"], dl["bytes"], dl["completed"], dl["bytes_sent"], dl.get("range")),
             (200, len(image), True, len(image), None), "full download fields")
        c.eq((dlr["status"], dlr["bytes"], dlr["completed"], dlr["range"], dlr["range_start"], dlr["range_len"],
              dlr["size"]),
             (206, 100, True, "bytes=100-199", 100, 100, len(image)), "range download fields")
    # kind filter, since, limit + next
    _, k = events(cloud, did, "?kind=download")
    c.eq([e["kind"] for e in k.get("events", [])], ["download", "download"], "kind filter")
    _, p = events(cloud, did, "?limit=2")
    c.eq((len(p.get("events", [])), p.get("next")), (2, ids[1] if len(ids) > 1 else None), "limit and next")
    _, p2 = events(cloud, did, "?limit=2&since=%s" % p.get("next"))
    c.eq([e["id"] for e in p2.get("events", [])], ids[2:4], "next page after since")
    _, t = events(cloud, did, "?since_ts=%d" % (ts[-1] if ts else 0))
    c.ok(len(t.get("events", [])) >= 1 and all(e["ts"] >= ts[-1] for e in t["events"]), "since_ts filter")
    # the anonymous download: did "" in the stream of all events (read from after register)
    return pk, did, ids[0] if ids else 0


def check_anonymous(c, cloud, first_id):
    s, body = sse_read(cloud, "/admin/events/stream?since=%d" % (first_id - 1), want=9)
    anon = [e for e in body if e.get("kind") == "download" and e.get("did") == ""]
    c.eq(len(anon), 1, "anonymous download recorded with did \"\"")
    if anon:
        c.ok(anon[0].get("peer", "").startswith("127.0.0.1:"), "anonymous download has the peer")


def sse_read(cloud, path, want, headers=None, after=None, timeout=15):
    """Opens the stream, optionally runs after() once it is open, and reads
    until `want` events arrived or the timeout; returns (status, events).
    Also checks each id: line matches its event's id."""
    conn = http.client.HTTPConnection("127.0.0.1", cloud.http_port, timeout=timeout)
    h = {"Authorization": "Bearer " + cloud.admin_token}
    h.update(headers or {})
    conn.request("GET", path, headers=h)
    r = conn.getresponse()
    out = []
    if r.status != 200:
        r.read()
        conn.close()
        return r.status, out
    if after:
        after()
    deadline = time.monotonic() + timeout
    cur_id = None
    try:
        while len(out) < want and time.monotonic() < deadline:
            line = r.fp.readline() if False else r.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith("id: "):
                cur_id = int(line[4:])
            elif line.startswith("data: "):
                ev = json.loads(line[6:])
                ev["_sse_id"] = cur_id
                out.append(ev)
    except socket.timeout:
        pass
    conn.close()
    return r.status, out


def check_stream(c, cloud, pk, did):
    fired = []

    def provision():
        fired.append(cloud.http("GET", "/dev/devices/%s" % did)[0])

    s, evs = sse_read(cloud, "/admin/events/stream?did=%s" % did, want=1, after=provision)
    c.eq(s, 200, "stream opens")
    c.eq(fired, [200], "provision during the stream")
    c.eq([e.get("kind") for e in evs], ["provision"], "stream delivers the live event")
    if evs:
        c.eq(evs[0]["_sse_id"], evs[0]["id"], "id: line is the event id")
        # Last-Event-ID resumes after it: the next event only
        cloud.http("DELETE", "/dev/devices", form="did=%s&passcode=pcEvents1" % did)
        s, evs2 = sse_read(cloud, "/admin/events/stream?did=%s" % did, want=1,
                           headers={"Last-Event-ID": str(evs[0]["id"])})
        c.eq([e.get("kind") for e in evs2], ["unregister"], "Last-Event-ID resumes after it")
    s, _, _ = cloud.http("GET", "/admin/events/stream?did=nope")
    c.eq(s, 401, "stream needs the admin token")
    s, _, _ = cloud.http("GET", "/admin/events/stream?did=nope", admin=True)
    c.eq(s, 400, "stream: bad did")


def check_bad_queries(c, cloud, did):
    for q in ("?since=-1", "?since=abc", "?limit=0", "?limit=1001", "?limit=x", "?kind=", "?kind=Bad-Kind",
              "?kind=" + "a" * 30, "?since_ts=soon"):
        s, body = events(cloud, did, q)
        c.eq(s, 400, "bad query %s" % q)
    s, _ = events(cloud, "short", "")
    c.eq(s, 404, "malformed DID")
    s, _, _ = cloud.http("GET", "/admin/devices/%s/events" % did)
    c.eq(s, 401, "events need the admin token")


def check_flood(c, cloud, pk):
    did = cloud.register_device(pk, "0A0B0C0D0E0F", "pcFlood1")
    n = 3 * PER_DEVICE
    for _ in range(n):
        cloud.http("GET", "/dev/devices/%s" % did)
    body = {}
    # wait until all were written and a prune ran: the drop count says so
    for _ in range(100):
        _, body = events(cloud, did, "?limit=1000")
        if body.get("dropped", 0) >= n + 1 - PER_DEVICE and len(body.get("events", [])) <= PER_DEVICE:
            break
        time.sleep(0.1)
    evs = body.get("events", [])
    c.eq(len(evs), PER_DEVICE, "per-device bound holds under a flood")
    c.eq(body.get("dropped"), n + 1 - PER_DEVICE, "what the bound removed is counted")
    c.ok(all(e["kind"] == "provision" for e in evs), "the newest events are kept")


def parse_metrics_strict(c, text):
    """A strict reader of the Prometheus text format 0.0.4 (promtool is not
    installed here): every sample line is name{labels} value with a declared
    TYPE, label values quoted and escaped, no duplicate series."""
    types, seen = {}, set()
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                        r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (\S+)$')
    bad = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped") \
                    or parts[2] in types:
                bad.append(line)
            types[parts[2]] = parts[3] if len(parts) == 4 else ""
            continue
        if line.startswith("#") or line == "":
            continue
        m = sample.match(line)
        if not m:
            bad.append(line)
            continue
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and base not in types:
            bad.append(line)
        try:
            float(m.group(3))
        except ValueError:
            bad.append(line)
        key = (name, m.group(2) or "")
        if key in seen:
            bad.append(line)
        seen.add(key)
    c.eq(bad, [], "metrics lines parse strictly")


def check_metrics(c, cloud):
    s, _, body = cloud.http("GET", "/metrics")
    text = body.decode()
    c.eq(s, 200, "metrics")
    parse_metrics_strict(c, text)
    c.ok(re.search(r'^gizcloud_http_requests_total\{route="ota_check",status="400",error_code="9502"\} 1$',
                   text, re.M) is not None, "error_code label on a 9502 answer")
    c.ok(re.search(r'^gizcloud_http_requests_total\{route="dev_provision",status="200"\} \d+$', text, re.M)
         is not None, "no error_code label where none was answered")
    m = re.search(r"^gizcloud_events_written_total (\d+)$", text, re.M)
    c.ok(m is not None and int(m.group(1)) >= 10, "events written counter")
    c.ok(re.search(r"^gizcloud_events_dropped_total 0$", text, re.M) is not None, "events dropped counter")


GIZCTL = os.path.join(harness.BUILD, "tools", "gizctl")


def gizctl(cloud, *args, timeout=30):
    env = dict(os.environ)
    env["GIZCTL_CONFIG"] = os.path.join(cloud.dir, "gizctl.conf")
    if harness.ASAN:
        env = harness.sanitizer_env(env)
    p = subprocess.run([GIZCTL, "--http", "http://127.0.0.1:%d" % cloud.http_port,
                        "--admin-token", cloud.admin_token] + list(args),
                       capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def check_gizctl(c, cloud, did, n_events):
    """gizctl device events: one readable line per stored event, --json one
    object per line, -f prints a live event (--count bounds it)."""
    rc, out, err = gizctl(cloud, "device", "events", did)
    lines = out.splitlines()
    c.eq((rc, len(lines)), (0, n_events), "gizctl device events: one line per event (%s)" % err.strip())
    line_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [a-z_]+ +.*status=\d{3}")
    c.ok(all(line_re.match(l) for l in lines), "lines: ISO 8601 UTC time, kind, fields: %r" % lines[:2])
    c.ok(lines and lines[0].split()[1] == "register" and "mac=A0B1C2D3E4F5" in lines[0],
         "first line is the register with its mac")
    rc, out, _ = gizctl(cloud, "--json", "device", "events", did, "--kind", "download")
    docs = [json.loads(l) for l in out.splitlines()]
    c.eq((rc, [d.get("kind") for d in docs]), (0, ["download", "download"]), "gizctl --json --kind")
    rc, _, _ = gizctl(cloud, "device", "events", "not-a-did")
    c.eq(rc, 1, "gizctl: malformed DID is a usage error")
    # -f: start it, then make a new event; it prints the stored ones, then the live one
    env = dict(os.environ)
    env["GIZCTL_CONFIG"] = os.path.join(cloud.dir, "gizctl.conf")
    if harness.ASAN:
        env = harness.sanitizer_env(env)
    p = subprocess.Popen([GIZCTL, "--http", "http://127.0.0.1:%d" % cloud.http_port,
                          "--admin-token", cloud.admin_token, "--json", "device", "events", did,
                          "-f", "--count", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        first = p.stdout.readline()  # the stored events come first
        c.ok(first.startswith("{"), "gizctl -f prints the stored events first")
        time.sleep(0.5)  # let it reach the stream (an event before that is still stored: found anyway)
        cloud.http("GET", "/dev/devices/%s" % did)
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    docs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    c.eq((p.returncode, docs[-1].get("kind") if docs else None), (0, "provision"),
         "gizctl -f prints the live event and exits after --count (%s)" % err.strip())


def check_total_and_streams(c):
    """The total cap (small GIZ_EVENTS_TOTAL) with every drop counted, the
    bound on concurrent streams, and a clean stop with a stream still open."""
    env = {"GIZ_EVENTS_TOTAL": "25", "GIZ_EVENT_STREAMS": "1"}
    with harness.Cloud(broker=False, gservice_env=env) as cloud:
        held = http.client.HTTPConnection("127.0.0.1", cloud.http_port, timeout=10)
        held.request("GET", "/admin/events/stream", headers={"Authorization": "Bearer " + cloud.admin_token})
        r = held.getresponse()
        c.eq(r.status, 200, "first stream opens")
        s, _, _ = cloud.http("GET", "/admin/events/stream", admin=True)
        c.eq(s, 503, "a stream beyond GIZ_EVENT_STREAMS is refused")
        pk = cloud.create_product("total")["product_key"]
        written = 0
        for i in range(10):
            did = cloud.register_device(pk, "00000000%04X" % i, "pcTotal%d" % i)
            written += 1
            for _ in range(3):
                cloud.http("GET", "/dev/devices/%s" % did)
                written += 1
        kept = dropped = -1
        for _ in range(100):
            kept = int(cloud.db_exec("SELECT count(*) FROM events")[0][0])
            dropped = int(cloud.db_exec("SELECT coalesce(sum(n), 0) FROM event_drops")[0][0])
            if kept + dropped == written and kept <= 25:
                break
            time.sleep(0.1)
        c.eq((kept, dropped), (25, written - 25), "total cap holds; every pruned event is counted")
        line = r.readline()
        c.ok(line.startswith(b"retry:") or line.startswith(b"id:"), "the held stream is live: %r" % line)
        codes = cloud.stop()
        c.eq(codes.get("gservice"), 0, "gservice stops cleanly with a stream open (ASan/UBSan clean)")
        held.close()


def check_off(c):
    with harness.Cloud(broker=False, gservice_env={"GIZ_EVENTS": "0"}) as cloud:
        pk = cloud.create_product("off")["product_key"]
        did = cloud.register_device(pk, "AABBCCDDEEFF", "pcOff1")
        s, body = events(cloud, did)
        c.eq((s, body.get("events")), (200, []), "events off: nothing recorded")


def main():
    c = harness.Checker("test_gservice_events")
    with harness.Cloud(broker=False, gservice_env={"GIZ_EVENTS_PER_DEVICE": str(PER_DEVICE)}) as cloud:
        pk, did, first = check_timeline(c, cloud)
        check_gizctl(c, cloud, did, 7)
        check_anonymous(c, cloud, first)
        check_stream(c, cloud, pk, did)
        check_bad_queries(c, cloud, did)
        check_flood(c, cloud, pk)
        check_metrics(c, cloud)
        codes = cloud.stop()
        c.eq(codes.get("gservice"), 0, "gservice exit code (ASan/UBSan clean)")
    check_total_and_streams(c)
    check_off(c)
    c.done()


if __name__ == "__main__":
    main()
