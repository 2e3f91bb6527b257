# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Turns the raw figures of bench/suite/bench.py into bench/results.json (everything:
settings, machine, every sample, medians and spreads) and bench/RESULTS.md (one table of
ratios with absolute medians, the machine, the date and load, then the hand-written
analysis kept in bench/suite/analysis.md). Informational only: nothing here fails."""
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))


def stat(values):
    v = [x for x in (values or []) if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def fmt(x, nd=0):
    if x is None:
        return "—"
    if nd == 0:
        return "{:,.0f}".format(x)
    return "{:,.{}f}".format(x, nd)


def spread(s, nd=2):
    if s is None:
        return "—"
    return "%s (%s–%s, n=%d)" % (fmt(s["median"], nd), fmt(s["min"], nd), fmt(s["max"], nd), s["n"])


def rows(res):
    """Yields dicts: figure, cloud, base, ratio (stat), ratio_text, target, met."""
    f = res.get("figures", {})
    out = []
    tp = f.get("throughput")
    if tp:
        for k, label in (("app2dev_64", "QoS 0 msg/s app2dev, 64 B"), ("dev2app_64", "QoS 0 msg/s dev2app, 64 B"),
                         ("app2dev_1024", "QoS 0 msg/s app2dev, 1 KiB"),
                         ("dev2app_1024", "QoS 0 msg/s dev2app, 1 KiB")):
            r = tp.get(k, {})
            rs = stat(r.get("ratio"))
            out.append({"key": "throughput_" + k, "figure": label, "baseline": "bare mosquitto",
                        "cloud": stat(r.get("cloud")), "base": stat(r.get("bare")), "ratio": rs,
                        "nd": 0, "ratio_text": spread(rs, 3), "target": "ratio ≥ 0.95",
                        "met": rs and rs["median"] >= 0.95})
            ds = stat(r.get("direct_ratio"))
            if ds:
                out.append({"key": "throughput_direct_" + k, "figure": label + " — diagnostic: clients straight "
                            "to the plugin's listener", "baseline": "bare mosquitto", "cloud": stat(r.get("direct")),
                            "base": stat(r.get("bare")), "ratio": ds, "nd": 0, "ratio_text": spread(ds, 3),
                            "target": "(not a target)", "met": None})
    ev = f.get("events")
    if ev:
        for k in ("app2dev", "dev2app"):
            r = ev.get(k, {})
            rs = stat(r.get("ratio"))
            cpu = r.get("cpu_us_per_msg", {})

            def med(side, allthreads):
                v = [(sum(x.values()) if allthreads else x.get("main")) for x in cpu.get(side, [])
                     if isinstance(x, dict)]
                return stat([x for x in v if x is not None])
            con, coff, aon, aoff = med("on", False), med("off", False), med("on", True), med("off", True)
            cost = ("; event cost %.2f us/msg on the broker thread, %.2f us/msg all threads" % (
                con["median"] - coff["median"], aon["median"] - aoff["median"]) if con and coff and aon and aoff
                else "")
            out.append({"key": "events_" + k, "figure": "QoS 0 msg/s %s, 64 B, MQTT events on%s" % (k, cost),
                        "baseline": "same build, plugin_opt_events 0", "cloud": stat(r.get("on")),
                        "base": stat(r.get("off")), "ratio": rs, "nd": 0, "ratio_text": spread(rs, 3),
                        "target": "ratio ≥ 0.9", "met": rs and rs["median"] >= 0.9})
    lg = f.get("logins")
    if lg:
        for k, label in (("warm", "device logins/s, warm (credential cache)"),
                         ("cold", "device logins/s, cold (first login after a broker start)")):
            r = lg.get(k, {})
            rs = stat(r.get("ratio"))
            want = 2.0 if k == "warm" else 1.0
            out.append({"key": "logins_" + k, "figure": label, "baseline": "mosquitto + dynamic-security",
                        "cloud": stat(r.get("cloud")), "base": stat(r.get("base")), "ratio": rs, "nd": 0,
                        "ratio_text": spread(rs, 3), "target": "ratio ≥ %.1f" % want,
                        "met": rs and rs["median"] >= want})
        ce = lg.get("ceiling") or {}
        if ce.get("bare"):
            rs = stat(ce.get("dynsec_over_bare"))
            out.append({"key": "logins_ceiling", "figure": "device logins/s, no authentication at all "
                        "(the ceiling: dynamic-security ÷ this; a 2 × target needs this ≥ 2)",
                        "baseline": "bare mosquitto, anonymous", "cloud": stat(lg.get("warm", {}).get("base")),
                        "base": stat(ce.get("bare")), "ratio": rs, "nd": 0, "ratio_text": spread(rs, 3),
                        "target": "informational", "met": None})
    idle = f.get("idle")
    if idle:
        r = idle.get("cloud")
        if r:
            ex = stat(r.get("extra_kib"))
            out.append({"key": "idle_rss", "figure": "broker RSS KiB per idle device, N=%s" % fmt(r.get("n")),
                        "baseline": "bare mosquitto, same N",
                        "cloud": stat(r.get("cloud")), "base": stat(r.get("bare")), "ratio": stat(r.get("ratio")),
                        "nd": 2, "ratio_text": "extra %s KiB/conn; ratio %s" % (spread(ex), spread(stat(r.get("ratio")), 3)),
                        "target": "≤ 0.5 KiB extra per connection", "met": ex and ex["median"] <= 0.5})
            fc = stat((r.get("fds_per_conn") or {}).get("cloud"))
            fb = stat((r.get("fds_per_conn") or {}).get("bare"))
            out.append({"key": "idle_fds", "figure": "broker file descriptors per idle device, N=%s" % fmt(r.get("n")),
                        "baseline": "bare mosquitto, same N", "cloud": fc, "base": fb, "ratio": None, "nd": 3,
                        "ratio_text": "—", "target": "≤ 1.05", "met": fc and fc["median"] <= 1.05})
    pr = f.get("parser")
    if pr:
        for k, label in (("publish80_stream_ns", "guard: ns per 81 B PUBLISH, coalesced 64 KiB reads"),
                         ("publish80_read_ns", "guard: ns per 81 B PUBLISH, mosquitto's 3 reads per packet"),
                         ("pingreq_ns", "guard: ns per PINGREQ (window check)"),
                         ("connect_ns", "guard: ns per CONNECT (gather, parse, clamp)")):
            c = stat(pr.get(k))
            base = stat(pr.get("publish80_read_baseline_ns")) if k == "publish80_read_ns" else None
            out.append({"key": "parser_" + k, "figure": label,
                        "baseline": "the same reads from memory without the guard" if base else "—",
                        "cloud": c, "base": base, "ratio": None, "nd": 1, "ratio_text": "—",
                        "target": "(cost; no target)", "met": None})
    lat = f.get("latency")
    if lat:
        for k in ("p50", "p99"):
            r = lat.get(k, {})
            rs = stat(r.get("ratio"))
            c = stat(r.get("cloud"))
            out.append({"key": "latency_" + k, "figure": "0x020F → 0x0210 round trip %s, ms" % k,
                        "baseline": "echo round trip via bare mosquitto",
                        "cloud": c, "base": stat(r.get("bare")), "ratio": rs, "nd": 3,
                        "ratio_text": spread(rs, 3), "target": "p99 < 2 ms" if k == "p99" else "(p99 is the target)",
                        "met": (c and c["median"] < 2.0) if k == "p99" else None})
    otas = f.get("ota") or {}
    for okey in ("main",):
        ota = otas.get(okey)
        if not ota:
            continue
        rs = stat(ota.get("ratio"))
        c = stat(ota.get("cloud"))
        out.append({"key": "ota_fanout_" + okey, "figure": "OTA push fan-out to %s online devices, s" % (
            fmt(ota.get("n"))),
            "baseline": "N targeted publishes by one client, bare mosquitto",
            "cloud": c, "base": stat(ota.get("bare")), "ratio": rs, "nd": 3, "ratio_text": spread(rs, 3),
            "target": "< 1 s", "met": c and c["median"] < 1.0})
    gs = f.get("gservice")
    if gs:
        for k, label in (("provision", "GService provision GET req/s"), ("register", "GService register POST req/s")):
            r = gs.get(k, {})
            rs = stat(r.get("ratio"))
            c = stat(r.get("cloud"))
            met = rs and rs["median"] >= 0.5
            target = "ratio ≥ 0.5"
            if k == "register":
                target += " and ≥ 2,000/s"
                met = "ratio %s; absolute %s" % ("met" if met else "**missed**",
                                                 "met" if c and c["median"] >= 2000 else "**missed**")
            out.append({"key": "gservice_" + k, "figure": label, "baseline": "libmicrohttpd hello-world",
                        "cloud": c, "base": stat(r.get("base")), "ratio": rs, "nd": 0, "ratio_text": spread(rs, 3),
                        "target": target, "met": met})
    sp = f.get("store_pg")
    if sp:
        for k, label in (("provision", "GService provision GET req/s, store on PostgreSQL"),
                         ("register", "GService register POST req/s, store on PostgreSQL")):
            r = sp.get(k, {})
            rs = stat(r.get("ratio"))
            out.append({"key": "store_pg_" + k, "figure": label,
                        "baseline": "the same GService with the store on SQLite",
                        "cloud": stat(r.get("cloud")), "base": stat(r.get("base")), "ratio": rs, "nd": 0,
                        "ratio_text": spread(rs, 3), "target": "informational", "met": "-"})
    cl = f.get("cluster")
    if cl:
        def held(mode, key):
            return [h.get(key) for h in cl.get("held", {}).get(mode, []) if h]
        one, two = stat(cl.get("msgs", {}).get("one")), stat(cl.get("msgs", {}).get("two"))
        rs = stat(cl.get("ratio_msgs"))
        out.append({"key": "cluster_qos0", "figure": "QoS 0 msg/s, two dev2app streams, 64 B: two brokers "
                    "(one stream each) vs one broker (both)", "baseline": "one broker", "cloud": two,
                    "base": one, "ratio": rs, "nd": 0, "ratio_text": spread(rs, 3), "target": "(model: "
                    "bench/RESULTS.md)", "met": None})
        lo, lt = stat(held("one", "logins_per_s")), stat(held("two", "logins_per_s"))
        lr = stat([t / o for t, o in zip(held("two", "logins_per_s"), held("one", "logins_per_s"))
                   if t and o])
        out.append({"key": "cluster_held", "figure": "%s devices held: logins/s to reach them, two brokers vs one"
                    % fmt(cl.get("n")), "baseline": "one broker", "cloud": lt, "base": lo, "ratio": lr,
                    "nd": 0, "ratio_text": spread(lr, 3) if lr else "—", "target": "(all held in both)",
                    "met": None})
    return out


def finish(res, json_path, md_path):
    table = rows(res)
    res["table"] = [{k: v for k, v in r.items() if k not in ("nd",)} for r in table]
    for path in (json_path, md_path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
        f.write("\n")
    m = res.get("machine", {})
    s = res.get("settings", {})
    L = []
    L.append("# gizcloud benchmark results")
    L.append("")
    L.append("Generated by `bench/run%s` on %s UTC (%d repetition%s%s, gizcloud and baseline alternating; "
             "took %s s). Every ratio is gizcloud ÷ baseline measured in the same run: median "
             "(min–max over the repetitions). Informational, never pass/fail; \"at median\" only says "
             "whether the median meets the issue's target." % (
                 " --quick" if res.get("quick") else "", res.get("date_utc"), res.get("reps", 0),
                 "" if res.get("reps") == 1 else "s",
                 "; throughput %d" % res["throughput_reps"] if res.get("throughput_reps", res.get("reps")) !=
                 res.get("reps") else "", res.get("duration_s")))
    L.append("")
    L.append("| figure | baseline | gizcloud median | baseline median | ratio median (min–max) | target | at median |")
    L.append("|---|---|---:|---:|---|---|---|")
    for r in table:
        nd = r["nd"]
        met = r["met"] if isinstance(r["met"], str) else (
            "—" if r["met"] is None else ("met" if r["met"] else "**missed**"))
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["figure"], r["baseline"], fmt(r["cloud"]["median"], nd) if r["cloud"] else "—",
            fmt(r["base"]["median"], nd) if r["base"] else "—", r["ratio_text"], r["target"], met))
    L.append("")
    if res.get("errors"):
        L.append("Errors in this run: " + "; ".join("%s: %s" % kv for kv in sorted(res["errors"].items())))
        L.append("")
    tp = res.get("figures", {}).get("throughput")
    if tp:
        L.append("Broker CPU per message during the throughput runs (µs, median over repetitions; "
                 "user + system time of the broker's threads from `/proc/<pid>/task/*/stat`, 10 ms ticks):")
        L.append("")
        L.append("| workload | bare | cloud |")
        L.append("|---|---:|---:|")
        for k in ("app2dev_64", "dev2app_64", "app2dev_1024", "dev2app_1024"):
            cpu = tp.get(k, {}).get("cpu_us_per_msg", {})

            def med(mode, thread=None):
                vals = [sum(d.values()) if thread is None else
                        d.get(thread, 0.0)
                        for d in cpu.get(mode, []) if d]
                return statistics.median(vals) if vals else None
            L.append("| %s | %s | %s |" % (k.replace("_", " ") + " B", fmt(med("bare"), 2),
                                            fmt(med("cloud"), 2)))
        L.append("")
    lg = res.get("figures", {}).get("logins")
    if lg and lg.get("cpu_us_per_login"):
        L.append("Broker CPU per login (µs, median over repetitions):")
        L.append("")
        L.append("| | mosquitto (all threads) |")
        L.append("|---|---:|")
        for k, label in (("bare_cold", "bare mosquitto, anonymous (no authentication)"),
                         ("dynsec_cold", "dynamic-security, pass 1"), ("dynsec_warm", "dynamic-security, pass 2"),
                         ("cloud_cold", "plugin, cold (first login after start)"),
                         ("cloud_warm", "plugin, warm (cache)")):
            v = lg["cpu_us_per_login"].get(k) or []
            if not v:
                continue
            mm = statistics.median([sum(d.values()) for d in v])
            L.append("| %s | %s |" % (label, fmt(mm, 0)))
        L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, label in (("cpu", "CPU"), ("cores", "cores"), ("ram", "RAM"), ("kernel", "kernel"), ("os", "OS"),
                     ("mosquitto", "mosquitto"), ("wrk", "wrk"), ("python", "python (drivers)")):
        L.append("| %s | %s |" % (label, m.get(k, "?")))
    L.append("| fd limit (soft/hard) | %s |" % "/".join(str(x) for x in res.get("nofile", [])))
    L.append("| load average (1/5/15 min) at start / end | %s / %s |" % (res.get("loadavg_start"),
                                                                          res.get("loadavg_end")))
    per = res.get("loadavg", {})
    if per:
        order = ["throughput", "logins", "idle", "parser", "latency", "ota", "gservice", "store_pg"]
        L.append("| load average before each figure | %s |" % ", ".join(
            "%s %s" % (k, per[k]) for k in sorted(per, key=lambda k: order.index(k) if k in order else 99)))
    L.append("")
    L.append("## How each figure is measured")
    L.append("")
    L.append("- **Throughput**: `mosquitto_pub -q 0 --repeat %s` (64 B) / `%s` (1 KiB) of a framed 0x0091 payload → "
             "`mosquitto_sub -C` the same count; msg/s = count ÷ (publisher start → subscriber done). "
             "app2dev: app (uid/token) publishes `app2dev/<DID>/<cid>`, the device subscribes "
             "`app2dev/<DID>/#`; dev2app: device publishes `dev2app/<DID>`, the app subscribes it. "
             "Cloud: mosquitto + giz_plugin.so on mosquitto's own listener (production layout: the plugin "
             "reads the client sockets through its read interposition); bare: mosquitto 2.0.11, no plugin, "
             "anonymous TCP listener, same clients and topics. Both with `max_queued_messages 0` so QoS 0 "
             "messages are queued rather than dropped when the subscriber lags." % (
                 fmt(s.get("messages_64")), fmt(s.get("messages_1k"))))
    drv = (res.get("figures", {}).get("logins") or {}).get("driver", "python/%d" % s.get("login_procs", 4))
    drv_text = ("`bench/suite/loginstorm.c` (one epoll loop in C, %s logins in flight)" % drv.split("/")[1]
                if drv.startswith("loginstorm") else "%s Python client processes (blocking sockets)" %
                drv.split("/")[1])
    L.append("- **Logins**: %s, each of %s fleet devices once per pass: TCP connect, CONNECT (3.1.1, username = client id = DID, password = passcode), "
             "CONNACK 0, DISCONNECT. Baseline: mosquitto + `mosquitto_dynamic_security.so` holding the whole "
             "fleet, %s clients, as the plugin's database holds %s devices (generated JSON config, "
             "PBKDF2-SHA512 ×101 as `mosquitto_ctrl` writes, one role with the device topics). Pass 1 after "
             "broker start is cold for the plugin (PBKDF2 + SQLite), pass 2 warm (credential cache); "
             "dynamic-security has no cache, both passes do the same work." % (
                 drv_text, fmt(s.get("login_clients")), fmt(s.get("fleet")), fmt(s.get("fleet"))))
    L.append("- **Idle devices**: broker VmRSS (`/proc/<pid>/status`) and open descriptors "
             "(`/proc/<pid>/fd`) before and 3 s after a gizsim fleet (`--no-http`, MQTT 3.1, 3 "
             "subscriptions, 0x020F after login) is all connected; growth ÷ N, N = %s (fd limit %s)." % (
                 fmt(s.get("idle_n", s.get("idle_direct_n"))), "/".join(str(x) for x in res.get("nofile", []))))
    L.append("- **Parser**: `bench/suite/guardbench.c` drives lib/mqtt_guard.c from memory (no syscalls), "
             "median of several runs: the plugin's own CPU per message on mosquitto's thread.")
    L.append("- **Latency**: one device publishes bare 0x020F on `cli2ser_req` "
             "and waits for the 0x0210 the plugin sends to `ser2cli_res/<DID>`, %s times. Baseline: on bare "
             "mosquitto, a client publishes to `bench/echo/in`, a second client (Python) republishes it to "
             "`bench/echo/out`, the first receives it — two broker hops plus an echo process, against the "
             "plugin's one hop with an in-broker answer." % fmt(s.get("latency_samples")))
    L.append("- **OTA fan-out**: %s gizsim devices online; `POST /admin/ota/push {product_key, type 1}` → "
             "every device has seen 0x0211 (gizsim polled with SIGUSR1 every ~10 ms, so ±15 ms). Includes the "
             "plugin's outbox poll (`poll_ms` 50 at most, once per broker loop). Baseline: one client "
             "sends the same N targeted 0x0211 publishes (`ser2cli_res/<DID>`, one write of all packets) "
             "through bare mosquitto to the same fleet — the equal broker work without the HTTP/outbox hop." % fmt(
                 s.get("ota_n")))
    L.append("- **GService**: `wrk -t2 -c32 -d%ss` with `bench/gservice/provision.lua` and `register.lua` "
             "(unique MAC per request) against giz-gservice (2 threads, info access log to a file, fresh "
             "SQLite) and `giz-bench-hello` (libmicrohttpd, same thread pool), same run, alternating." %
             s.get("wrk_secs"))
    L.append("- **Store on PostgreSQL**: the same wrk client and scripts against the same giz-gservice "
             "build twice per repetition, store on a fresh SQLite file and on a throwaway PostgreSQL 15 "
             "server on the same machine (tests/common/pgserver.py: loopback TCP, fsync off), "
             "alternating which goes first; ratio = PostgreSQL ÷ SQLite.")
    L.append("")
    analysis = os.path.join(HERE, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            L.append(f.read().rstrip())
        L.append("")
    with open(md_path, "w") as f:
        f.write("\n".join(L) + "\n")
