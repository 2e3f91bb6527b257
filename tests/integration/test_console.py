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
        payload = "0102abcd%02x" % int(time.time() % 256)
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
        # event -> row delay of the live rows (browser clock vs the event's ts; same host)
        delays = d.execute_script(
            "return [...document.querySelectorAll('#tl-body tr.new')]"
            ".map(t => Number(t.dataset.shown) - Number(t.dataset.ts))")
        if delays:
            delays.sort()
            print("device event -> timeline row: %d live rows, min %d ms, median %d ms, max %d ms"
                  % (len(delays), delays[0], delays[len(delays) // 2], delays[-1]), flush=True)
        ck.ok(len(delays) >= 2, "live rows were measured")

        # filter by kind
        Select(d.find_element(By.ID, "tl-kind")).select_by_value("publish_in")
        vis = [t.get_attribute("data-kind") for t in d.find_elements(By.CSS_SELECTOR, "#tl-body tr")
               if t.is_displayed()]
        ck.ok(vis and all(k == "publish_in" for k in vis), "kind filter: %r" % sorted(set(vis)))
        Select(d.find_element(By.ID, "tl-kind")).select_by_value("")

        # log levels: the device acknowledges (0x0011) and starts sending 0x0012 logs
        Select(d.find_element(By.ID, "log-level")).select_by_value("7")
        d.find_element(By.CSS_SELECTOR, "#device-actions form:nth-of-type(2) button").click()
        ck.ok(wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#tl-body tr[data-cmd='0x0011']"), tries=100),
              "log level ACK in the timeline")
        ck.ok(wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#logs-table tr"), tries=250),
              "stored logs appear")
        shot(d, "06-logs")

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
    with harness.Cloud(broker=True) as cloud:
        check_http(cloud)
        pk = cloud.create_product("console")["product_key"]
        tmp = os.path.join(cloud.dir, "sim")
        os.makedirs(tmp)
        sim = subprocess.Popen(
            [os.path.join(harness.BUILD, "tools", "gizsim"), "--http", "http://127.0.0.1:%d" % cloud.http_port,
             "-p", pk, "-n", "1", "-s", os.path.join(tmp, "state"), "--duration", "240",
             "--backoff-scale", "0.1", "--log-interval", "1"],
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
