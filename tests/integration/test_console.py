# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The web console (GET /console/) in a real browser (Debian's headless
chromium driven by chromedriver through python3-selenium) against the real
stack: mosquitto + plugin, the GService, a gizsim device.

HTTP level first: redirects of / and /console, content types, ETag / 304,
the Content-Security-Policy and friends, 404 for unknown files; stream
tickets (admin token needed to mint one, single use, bound to one DID, never
the token in a URL); POST /admin/devices/<DID>/send refusals; the device
search. Then the browser: a wrong token is refused, the right one logs in
(kept in sessionStorage only); the fleet shows the gizsim device come online
with its counts, finds it by a part of its MAC; its page opens the live
timeline; a command sent from the page (0x0090) reaches the device, whose
0x0091 reply shows up in the open timeline with the bytes sent; log levels,
kick and disable work from the page and the campaign page follows a small
campaign when the API is there. Screenshots go to
<build>/console-screenshots/. Printed, not asserted: page load time
(navigation timing) and the delay from a device event (its ts) to its row in
the open timeline.

Exits 77 (CTest: skipped) when chromium, chromedriver or selenium are
missing."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SKIP = 77

missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:
    missing.append("python3-selenium")
if missing:
    print("SKIP: the console test needs a real browser: missing %s "
          "(apt-get install chromium chromium-driver python3-selenium)" % ", ".join(missing))
    sys.exit(SKIP)

SHOTS = os.path.join(harness.BUILD, "console-screenshots")


def point(name, typ, dt, byte_off, bit_off, length, unit="byte"):
    return {"name": name, "display_name": name, "type": typ, "data_type": dt, "desc": "",
            "position": {"unit": unit, "byte_offset": byte_off, "bit_offset": bit_off, "len": length}}


# a small lamp: status area bytes 0..2, writable bytes 0..1
SCHEMA = {"name": "lamp", "protocolType": "standard", "packetVersion": "0x00000004",
          "entities": [{"id": 0, "name": "entity0", "display_name": "lamp", "attrs": [
              point("LED_OnOff", "status_writable", "bool", 0, 0, 1, "bit"),
              point("LED_R", "status_writable", "uint8", 1, 0, 1),
              point("Temperature", "status_readonly", "uint8", 2, 0, 1)]}],
          "ui": {"object": {"version": 4, "showEditButton": False}, "sections": []}}
for i, a in enumerate(SCHEMA["entities"][0]["attrs"]):
    a["id"] = i
ck = harness.Checker("console")


def raw_get(cloud, path, extra=""):
    raw = cloud.raw_http(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" %
                          (path, extra)).encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        status = 0
    hdr = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdr[k.strip().lower()] = v.strip()
    return status, hdr, body


def wait_for(fn, tries=100, delay=0.1):
    """fn() until it returns something true (bounded); its last value."""
    v = None
    for _ in range(tries):
        try:
            v = fn()
        except Exception:  # the page is being redrawn
            v = None
        if v:
            return v
        time.sleep(delay)
    return v


def check_http(cloud):
    s, h, _ = raw_get(cloud, "/")
    ck.eq((s, h.get("location")), (302, "/console/"), "GET / redirects to the console")
    s, h, _ = raw_get(cloud, "/console")
    ck.eq((s, h.get("location")), (301, "/console/"), "GET /console redirects to /console/")
    s, h, body = raw_get(cloud, "/console/")
    ck.eq(s, 200, "GET /console/")
    ck.eq(h.get("content-type"), "text/html; charset=utf-8", "index content type")
    ck.ok(b'<script src="console.js"' in body and b"<script>" not in body, "no inline script")
    csp = h.get("content-security-policy", "")
    ck.ok("default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp and
          "frame-ancestors 'none'" in csp, "strict CSP: %r" % csp)
    ck.eq(h.get("x-content-type-options"), "nosniff", "nosniff")
    ck.eq(h.get("cache-control"), "no-cache", "revalidated each load")
    etag = h.get("etag", "")
    ck.ok(re.match(r'^"[0-9a-f]{16}"$', etag) is not None, "ETag %r" % etag)
    s, h, body = raw_get(cloud, "/console/", "If-None-Match: %s\r\n" % etag)
    ck.eq((s, body), (304, b""), "If-None-Match -> 304 without a body")
    for name, ctype in (("console.js", "text/javascript; charset=utf-8"),
                        ("console.css", "text/css; charset=utf-8")):
        s, h, body = raw_get(cloud, "/console/" + name)
        ck.eq((s, h.get("content-type")), (200, ctype), name)
        ck.ok(len(body) > 1000 and all(b < 128 for b in body), "%s served whole, ASCII" % name)
    s, _, _ = raw_get(cloud, "/console/../gizcloud.db")
    ck.ok(s in (400, 404), "no path escape (%d)" % s)
    s, _, _ = raw_get(cloud, "/console/nope.js")
    ck.eq(s, 404, "unknown console file")

    # tickets: minted with the token only, single use, bound to their stream
    s, _ = cloud.json("POST", "/admin/events/ticket", {})
    ck.eq(s, 401, "ticket without the admin token")
    s, t = cloud.json("POST", "/admin/events/ticket", {}, admin=True)
    ck.ok(s == 201 and re.match(r"^[0-9a-f]{32}$", t.get("ticket", "")) is not None, "ticket minted: %r" % t)
    s, h, body = raw_get(cloud, "/console/stream?ticket=%s&did=%s" % (t["ticket"], "A" * 22))
    ck.eq(s, 401, "a ticket for all devices does not open one device's stream")
    s, h, body = raw_get(cloud, "/console/stream?ticket=%s" % t["ticket"])
    ck.eq(s, 401, "a refused ticket is gone")
    s, t = cloud.json("POST", "/admin/events/ticket", {"did": "bad"}, admin=True)
    ck.eq(s, 400, "ticket for a malformed DID")
    s, _ = cloud.json("POST", "/admin/devices/%s/send" % ("A" * 22), {"raw": "00"}, admin=True)
    ck.eq(s, 404, "send to an unknown device")
    s, _ = cloud.json("GET", "/admin/device_search?q=a%25b", admin=True)
    ck.eq(s, 400, "search text with a wildcard")


def stream_once(cloud, ticket, did):
    """Opens /console/stream and returns (status, first bytes)."""
    import socket
    with socket.create_connection(("127.0.0.1", cloud.http_port), timeout=5) as so:
        so.sendall(("GET /console/stream?ticket=%s&did=%s HTTP/1.1\r\nHost: x\r\n\r\n" %
                    (ticket, did)).encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 4096:
            c = so.recv(4096)
            if not c:
                break
            data += c
    try:
        return int(data.split(b" ")[1]), data
    except (IndexError, ValueError):
        return 0, data


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--no-first-run", "--no-proxy-server",
              "--user-data-dir=" + os.path.join(harness.BUILD, "console-chrome-profile")):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(30)
    return d


def shot(d, name):
    path = os.path.join(SHOTS, name + ".png")
    d.save_screenshot(path)
    print("screenshot %s" % path, flush=True)


def text_of(d, css):
    try:
        return d.find_element(By.CSS_SELECTOR, css).text
    except Exception:
        return ""


def console_errors(d):
    """Severe browser console messages (CSP violations, script errors)."""
    try:
        return [e["message"] for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    except Exception:
        return []


def dump_device(cloud, did):
    """After a failed check: what the store, the broker and the GService saw
    of the device (CI keeps only this output)."""
    s, j = cloud.json("GET", "/admin/devices/%s/events?limit=500" % did, admin=True)
    print("events of %s (%d):" % (did, s), flush=True)
    for e in (j or {}).get("events", [])[-40:]:
        print("  %s" % json.dumps(e, sort_keys=True)[:300], flush=True)
    s, j = cloud.json("GET", "/admin/devices/%s/logs?limit=5" % did, admin=True)
    print("stored logs (%d): %s" % (s, json.dumps(j)[:600]), flush=True)
    for name in ("mosquitto", "gservice"):
        lines = cloud.log_text(name).splitlines()
        print("%s log, last %d of %d lines:" % (name, min(40, len(lines)), len(lines)), flush=True)
        for line in lines[-40:]:
            print("  " + line[:300], flush=True)


def check_datapoints(d, cloud, did):
    """The latest data points, and a write of one from the page: the device
    applies it and reports, the value on the page changes."""
    # after the enable, gizsim logs in again (back-off): a send before that is 409
    ck.ok(wait_for(lambda: cloud.json("GET", "/admin/devices/" + did, admin=True)[1].get("online"),
                   tries=200), "the device is back online")
    ck.ok(wait_for(lambda: text_of(d, "#latest-table [data-attr='LED_R']") == "0", tries=150),
          "latest data points: LED_R 0 (%r)" % text_of(d, "#device-latest"))
    ck.ok(wait_for(lambda: d.find_element(By.ID, "dp-form").is_displayed()), "data point write form")
    Select(d.find_element(By.ID, "dp-name")).select_by_value("LED_R")
    d.find_element(By.ID, "dp-value").send_keys("77")
    d.find_element(By.ID, "dp-btn").click()
    ck.ok(wait_for(lambda: "Write of LED_R queued" in text_of(d, "#flash")), "write queued: %r" % text_of(d, "#flash"))
    ck.ok(wait_for(lambda: text_of(d, "#latest-table [data-attr='LED_R']") == "77", tries=150),
          "the reported LED_R changed to 77 (%r)" % text_of(d, "#device-latest"))
    shot(d, "08-datapoints")


def check_campaign(d, cloud, pk, did):
    """A one-device campaign created from the page runs to completion with its
    counts updating on the page; pause, resume and cancel of a second one
    (held back by its daily window) from its page."""
    status, _ = cloud.json("GET", "/admin/ota/campaigns", admin=True)
    if status == 404:
        print("campaign API absent: campaign part not run", flush=True)
        return
    cloud.upload_firmware(pk, 1, "04020021", os.urandom(8 * 1024 + 3))
    d.get(d.current_url.split("#")[0] + "#/campaigns")
    name = wait_for(lambda: d.find_element(By.ID, "camp-name"))
    name.send_keys("console rollout")
    d.find_element(By.ID, "camp-create").click()
    ck.ok(wait_for(lambda: re.search(r"#/campaign/\d+$", d.current_url)), "campaign created from the page")
    shot(d, "09-campaign-running")
    done = wait_for(lambda: text_of(d, "#camp-state") == "completed", tries=600, delay=0.2)
    ck.ok(done, "the campaign completed on the page (state %r)" % text_of(d, "#camp-state"))
    ck.eq(text_of(d, "#camp-counts [data-state='updated']"), "1", "one device updated")
    ck.eq(text_of(d, "#camp-devices [data-did='%s']" % did), "updated", "the device's row")
    shot(d, "10-campaign-completed")
    # a second campaign, outside its daily window: stays pending while paused/resumed
    cloud.upload_firmware(pk, 1, "04020022", os.urandom(4 * 1024))
    h = (time.gmtime().tm_hour + 3) % 24
    status, c = cloud.json("POST", "/admin/ota/campaigns",
                           {"product_key": pk, "type": 1, "name": "later",
                            "window": "%02d:00-%02d:00" % (h, (h + 1) % 24)}, admin=True)
    if not ck.eq(status, 201, "second campaign (%r)" % c):
        return
    d.get(d.current_url.split("#")[0] + "#/campaign/%d" % c["id"])
    for action, state in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        b = wait_for(lambda: d.find_element(By.ID, "camp-" + action))
        if b:
            b.click()
        ck.ok(wait_for(lambda: text_of(d, "#camp-state") == state, tries=100),
              "%s from the page -> %s (%r)" % (action, state, text_of(d, "#camp-state")))
    shot(d, "11-campaign-cancelled")


def check_browser(cloud, pk, did, mac):
    d = browser()
    base = "http://127.0.0.1:%d" % cloud.http_port
    try:
        d.get(base + "/")
        wait_for(lambda: d.find_element(By.ID, "login-form"))
        ck.ok(d.current_url.endswith("/console/#/login"), "/ lands on the login page: %s" % d.current_url)
        nav = d.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                               "return {load: n.loadEventEnd - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime,"
                               " ttfb: n.responseStart - n.startTime};")
        print("page load (navigation timing, first load, incl. the / redirect): load %.1f ms, "
              "DOMContentLoaded %.1f ms, first byte %.1f ms" % (nav["load"], nav["dcl"], nav["ttfb"]), flush=True)
        shot(d, "01-login")
        d.find_element(By.ID, "token").send_keys("wrong-token")
        d.find_element(By.ID, "login-submit").click()
        ck.ok(wait_for(lambda: "Wrong token" in text_of(d, "#login-error")), "a wrong token is refused")
        tok = d.find_element(By.ID, "token")
        tok.clear()
        tok.send_keys(cloud.admin_token)
        d.find_element(By.ID, "login-submit").click()
        ck.ok(wait_for(lambda: d.find_element(By.ID, "fleet-table")), "the fleet after login")
        ck.eq(d.execute_script("return sessionStorage.getItem('gizcloud.admin_token')"), cloud.admin_token,
              "token kept in sessionStorage")
        ck.eq(d.execute_script("return localStorage.length"), 0, "nothing in localStorage")

        # the device comes online: the fleet redraws every 5 s
        row = "tr[data-did='%s']" % did
        online = wait_for(lambda: "online" in text_of(d, row), tries=150)
        ck.ok(online, "the fleet shows %s online" % did)
        ck.eq(text_of(d, "#count-total"), "1", "device count")
        ck.eq(text_of(d, "#count-online"), "1", "online count")
        ck.ok(mac in text_of(d, row), "MAC in the row")
        ck.ok("04020020" in text_of(d, row), "reported WiFi soft version in the row")
        shot(d, "02-fleet")
        q = d.find_element(By.ID, "fleet-q")
        q.send_keys(mac[4:10].lower())
        q.submit()
        ck.ok(wait_for(lambda: text_of(d, "#count-matches") == "1"), "search by part of the MAC: 1 match")
        ck.ok(wait_for(lambda: did in text_of(d, "#fleet-table")), "the match is the device")
        shot(d, "03-fleet-search")

        # one device: the live timeline
        d.find_element(By.CSS_SELECTOR, row + " a").click()
        ck.ok(wait_for(lambda: text_of(d, "#tl-state") == "live", tries=100), "live timeline open")
        ck.ok(wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#tl-body tr[data-kind='connect']")),
              "history: the device's connect event")
        shot(d, "04-device")
        resources = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        ck.ok(resources and not any(cloud.admin_token in r for r in resources + [d.current_url]),
              "the admin token is in no URL the page fetched")
        _, _, metrics = cloud.http("GET", "/metrics")
        ck.ok(re.search(rb'gizcloud_http_requests_total\{route="console_stream",status="200"\} [1-9]', metrics),
              "the page's stream opened with a ticket")

        # send a command; the device's reply appears in the open timeline
        payload = "05abcd01%02x" % int(time.time() % 256)  # p0 pass-through (0x05): echoed
        before = time.time() * 1000
        d.find_element(By.ID, "send-hex").send_keys(payload)
        d.find_element(By.ID, "send-btn").click()
        ck.ok(wait_for(lambda: "Queued 0x0090" in text_of(d, "#flash")), "send queued: %r" % text_of(d, "#flash"))

        def reply_row():
            for tr in d.find_elements(By.CSS_SELECTOR, "#tl-body tr[data-cmd='0x0091']"):
                if float(tr.get_attribute("data-ts")) >= before - 1000:
                    return tr
            return None
        tr = wait_for(reply_row, tries=150)
        if ck.ok(tr is not None, "the device's 0x0091 reply in the timeline"):
            ck.ok("business reply" in tr.text, "decoded command name: %r" % tr.text[:120])
            d.find_element(By.ID, "tl-hex").click()
            ck.ok(wait_for(lambda: payload[:8] in reply_row().text.replace(" ", "")),
                  "raw hex shows the bytes sent: %r" % tr.text[-80:])
        ck.ok(wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#tl-body tr[data-cmd='0x0090']")),
              "the 0x0090 toward the device in the timeline")
        shot(d, "05-command-reply")

        # filter by kind
        Select(d.find_element(By.ID, "tl-kind")).select_by_value("publish_in")
        vis = [t.get_attribute("data-kind") for t in d.find_elements(By.CSS_SELECTOR, "#tl-body tr")
               if t.is_displayed()]
        ck.ok(vis and all(k == "publish_in" for k in vis), "kind filter: %r" % sorted(set(vis)))
        Select(d.find_element(By.ID, "tl-kind")).select_by_value("")

        # log levels: the device acknowledges (0x0011) and starts sending 0x0012 logs
        Select(d.find_element(By.ID, "log-level")).select_by_value("7")
        d.find_element(By.CSS_SELECTOR, "#log-form button").click()
        ck.ok(wait_for(lambda: "Log levels sent" in text_of(d, "#flash")),
              "log levels queued: %r" % text_of(d, "#flash"))
        acked = ck.ok(wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#tl-body tr[data-cmd='0x0011']"),
                               tries=100), "log level ACK in the timeline")
        if not acked:  # the page's own view: its stream state and the rows it shows
            print("timeline state %r, %d rows, flash %r" % (
                text_of(d, "#tl-state"), len(d.find_elements(By.CSS_SELECTOR, "#tl-body tr")),
                text_of(d, "#flash")), flush=True)
        logged = ck.ok(wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#logs-table tr"), tries=250),
                       "stored logs appear")
        if not (acked and logged):
            dump_device(cloud, did)
        shot(d, "06-logs")
        # event -> row delay of the live rows (browser clock vs the event's ts; same host)
        delays = d.execute_script(
            "return [...document.querySelectorAll('#tl-body tr.new')]"
            ".map(t => Number(t.dataset.shown) - Number(t.dataset.ts))")
        if delays:
            delays.sort()
            print("device event -> timeline row: %d live rows, min %d ms, median %d ms, p90 %d ms, max %d ms"
                  % (len(delays), delays[0], delays[len(delays) // 2], delays[len(delays) * 9 // 10],
                     delays[-1]), flush=True)
        ck.ok(len(delays) >= 5, "live rows were measured")

        # kick: a disconnect, then the device reconnects (gizsim back-off)
        d.find_element(By.ID, "kick-btn").click()
        ck.ok(wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#tl-body tr[data-kind='disconnect']"),
                       tries=100), "kick: disconnect in the timeline")
        # disable (confirm dialog)
        d.find_element(By.ID, "disable-btn").click()
        d.switch_to.alert.accept()
        ck.ok(wait_for(lambda: text_of(d, "#dev-status") == "disabled", tries=100), "disabled from the page")
        shot(d, "07-disabled")
        d.find_element(By.ID, "disable-btn").click()  # now labelled Enable
        ck.ok(wait_for(lambda: text_of(d, "#dev-status") == "active", tries=100), "enabled again")

        # the one expected failure: the wrong token's 401 at login
        check_datapoints(d, cloud, did)
        check_campaign(d, cloud, pk, did)

        errs = [e for e in console_errors(d) if "favicon" not in e and
                not ("/admin/devices?limit=1" in e and "401" in e)]
        ck.eq(errs, [], "no script errors or CSP violations in the browser console")

        # a reload revalidates: 304s, and is timed again
        d.refresh()
        wait_for(lambda: text_of(d, "#tl-state") == "live")
        nav = d.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                               "return {load: n.loadEventEnd - n.startTime};")
        print("page load (reload of the device page, cached files revalidated): %.1f ms" % nav["load"], flush=True)

        # logging out forgets the token
        d.find_element(By.ID, "logout").click()
        ck.ok(wait_for(lambda: d.find_element(By.ID, "login-form")), "logged out")
        ck.eq(d.execute_script("return sessionStorage.getItem('gizcloud.admin_token')"), None, "token forgotten")
    finally:
        try:
            shot(d, "99-last")
        except Exception:
            pass
        d.quit()
    log = cloud.log_text("gservice")
    ck.ok(cloud.admin_token not in log, "the admin token is not in the GService log")
    ck.ok("ticket=" not in log, "tickets are not logged")


def main():
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS, exist_ok=True)
    # port-less download URLs: gizsim reads them as firmware does (a ":port" is no host
    # name) and downloads from the GService port it was given
    with harness.Cloud(broker=True, gservice_env={"GIZ_PUBLIC_URL": "http://127.0.0.1"}) as cloud:
        check_http(cloud)
        pk = cloud.create_product("console")["product_key"]
        status, _, _ = cloud.http("PUT", "/admin/products/%s/datapoints" % pk, raw=json.dumps(SCHEMA).encode(),
                                  admin=True, headers={"Content-Type": "application/json"})
        ck.eq(status, 200, "data points imported")
        tmp = os.path.join(cloud.dir, "sim")
        os.makedirs(tmp)
        with open(os.path.join(tmp, "datapoints.json"), "w") as f:
            json.dump(SCHEMA, f)
        sim = subprocess.Popen(
            [os.path.join(harness.BUILD, "tools", "gizsim"), "--http", "http://127.0.0.1:%d" % cloud.http_port,
             "-p", pk, "-n", "1", "-s", os.path.join(tmp, "state"), "--duration", "240",
             "--backoff-scale", "0.1", "--log-interval", "1", "--heartbeat", "5",
             "--datapoints", os.path.join(tmp, "datapoints.json")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gizsim.log"), "wb"))
        try:
            dev = wait_for(lambda: [x for x in cloud.json("GET", "/admin/devices", admin=True)[1]
                                    .get("devices", []) if x.get("online")], tries=200)
            if not ck.ok(dev, "gizsim device online"):
                return
            did, mac = dev[0]["did"], dev[0]["mac"]
            # stream tickets against a real DID
            s, t = cloud.json("POST", "/admin/events/ticket", {"did": did}, admin=True)
            st1, head = stream_once(cloud, t["ticket"], did)
            ck.ok(st1 == 200 and b"text/event-stream" in head, "ticket opens the device's stream")
            st2, _ = stream_once(cloud, t["ticket"], did)
            ck.eq(st2, 401, "a ticket opens one stream only")
            s, j = cloud.json("GET", "/admin/device_search?q=%s" % did[:6], admin=True)
            ck.ok(s == 200 and j.get("total") == 1 and j["devices"][0]["did"] == did, "search by DID prefix")
            s, j = cloud.json("POST", "/admin/devices/%s/send" % did, {"raw": "0g"}, admin=True)
            ck.eq(s, 400, "send: bad hex")
            s, j = cloud.json("POST", "/admin/devices/%s/send" % did, {"raw": "00", "log_level": 1}, admin=True)
            ck.eq(s, 400, "send: raw and log_level together")
            check_browser(cloud, pk, did, mac)
        finally:
            sim.terminate()
            try:
                sim.wait(timeout=15)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()
    codes = getattr(cloud, "exit_codes", {})
    ck.ok(all(c == 0 for c in codes.values()), "clean exits: %r" % codes)
    ck.done()


main()
