# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Broker benchmark (not a test): what the plugin and its front listener cost.

In one run, on this machine, each against a fresh broker:
  messages/s  QoS 0, 16-byte payloads, mosquitto_pub --repeat -> mosquitto_sub -C:
     bare      stock mosquitto, anonymous, TCP listener
     plugin    mosquitto + giz_plugin, clients straight to mosquitto's TCP listener
               (login, ACL WRITE/READ and MESSAGE callbacks, no front listener)
     front     mosquitto + giz_plugin + front listener (production layout)
     tls       the same through the front listener's TLS port (both clients TLS)
  logins/s    sequential CONNECT -> CONNACK -> DISCONNECT from one client:
     bare      anonymous
     dynsec    mosquitto's stock dynamic-security plugin (one client with a password)
     plugin    device login, credential cache on (the reconnect-storm path)
     nocache   device login, cache off (PBKDF2 + SQLite every time)
     front     device login through the front listener, cache on
     tls       the same over TLS (full handshake per login, ECDSA P-256)
  memory      broker RSS per idle logged-in connection, bare vs front
and prints the ratios. Uses the integration harness (real GService for fixtures).

Run:  /usr/bin/python3 bench/broker/bench_broker.py [--messages N] [--logins N] [--idle N]
                                                   [--rounds R] [--only msg,login,plogin,rss]
(--rounds repeats the message and memory scenarios R times, alternating bare/plugin/front, and
prints medians: single runs on a shared 2-core machine vary by +-30 %.)
with GIZ_BUILD_DIR pointing at a (preferably non-sanitized) build.
"""
import argparse
import os
import socket
import ssl
import subprocess
import sys
import time
from statistics import median

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import harness  # noqa: E402
from plugin_mqtt import RawClient, bind, connect_packet, new_device, new_user  # noqa: E402

DYNSEC = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
BEFORE_PLUGIN = None  # --before: an older giz_plugin.so to compare against in the same run
PAYLOAD = "0123456789abcdef"


def conf_lines(cloud, mode, extra_opts=None):
    """mosquitto.conf text for one scenario; "<mode>@before" uses the plugin given with --before."""
    plugin = harness.PLUGIN
    if mode.endswith("@before"):
        mode, plugin = mode[:-len("@before")], BEFORE_PLUGIN
    lines = []
    if os.geteuid() == 0:
        lines.append("user root")
    lines += ["per_listener_settings false", "persistence false", "log_dest stderr", "log_type error",
              "log_type warning", "max_queued_messages 0"]
    if mode == "bare":
        lines += ["allow_anonymous true", "listener %d 127.0.0.1" % cloud.mqtt_port]
    elif mode == "dynsec":
        lines += ["allow_anonymous false", "listener %d 127.0.0.1" % cloud.mqtt_port,
                  "plugin " + DYNSEC, "plugin_opt_config_file " + os.path.join(cloud.dir, "dynsec.json")]
    elif mode == "plugin":
        lines += ["allow_anonymous false", "listener %d 127.0.0.1" % cloud.mqtt_port,
                  "plugin " + plugin, "plugin_opt_db_path " + cloud.db_path,
                  "plugin_opt_log_level warn"]
    elif mode == "front":
        sock = os.path.join(cloud.dir, "mosquitto.sock")
        lines += ["allow_anonymous false", "listener 0 " + sock, "plugin " + plugin,
                  "plugin_opt_db_path " + cloud.db_path, "plugin_opt_listen 127.0.0.1:%d" % cloud.mqtt_port,
                  "plugin_opt_broker_socket " + sock, "plugin_opt_log_level warn"]
    if mode == "front" and getattr(cloud, "tls_port", None):
        lines += ["plugin_opt_tls_listen 127.0.0.1:%d" % cloud.tls_port,
                  "plugin_opt_tls_cert " + cloud.tls_cert, "plugin_opt_tls_key " + cloud.tls_key]
    for k, v in (extra_opts or {}).items():
        lines.append("plugin_opt_%s %s" % (k, v))
    return "\n".join(lines) + "\n"


def restart_broker(cloud, mode, extra_opts=None):
    if cloud.broker is not None and cloud.broker.poll() is None:
        cloud.broker.terminate()
        cloud.broker.wait(15)
        cloud.procs = [(n, p) for n, p in cloud.procs if p is not cloud.broker]
    cloud.mqtt_port = harness.free_port()
    return cloud.start_broker(conf_lines(cloud, mode, extra_opts))


def rss_kib(pid, field="VmRSS"):
    """VmRSS (all resident pages) or RssAnon (anonymous only: heap and arenas, without the
    shared library code pages a first login touches) of a process, KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_ns(pid):
    """CPU time used so far by all threads of a process, ns (from /proc/<pid>/task/*/schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


LAST_CPU_US_PER_MSG = [0.0]


def throughput(cloud, n, pub_auth, sub_auth, topic, port=None):
    """Messages/s from one mosquitto_pub --repeat to one mosquitto_sub -C n. Also leaves the
    broker's CPU time per message (all its threads, µs) in LAST_CPU_US_PER_MSG[0]: unlike the
    rate, that hardly depends on how busy the rest of the machine is."""
    port = port or cloud.mqtt_port
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                            "-C", str(n), "-W", "120", "-q", "0"] + sub_auth,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.7)
    c0 = cpu_ns(cloud.broker.pid)
    t0 = time.monotonic()
    pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                          "-m", PAYLOAD, "--repeat", str(n), "-q", "0"] + pub_auth,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sub.wait(130)
    dt = time.monotonic() - t0
    LAST_CPU_US_PER_MSG[0] = (cpu_ns(cloud.broker.pid) - c0) / 1000.0 / n
    if pub.returncode != 0 or sub.returncode != 0:
        print("  (pub rc %s %r, sub rc %s %r)" % (pub.returncode, pub.stderr[-200:], sub.returncode,
                                              sub.stderr.read()[-200:]), flush=True)
        return 0.0
    return n / dt


def logins(cloud, n, client_id, username, password, port=None, ctx=None):
    """Sequential CONNECT/CONNACK/DISCONNECT per second; counts only accepted ones."""
    pkt = connect_packet(client_id, username, password, keepalive=60)
    port = port or cloud.mqtt_port
    ok = 0
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(pkt)
        ack = b""
        while len(ack) < 4:
            chunk = s.recv(4 - len(ack))
            if not chunk:
                break
            ack += chunk
        if ack[:2] == b"\x20\x02" and ack[3:4] == b"\x00":
            ok += 1
        s.sendall(b"\xe0\x00")
        s.close()
    dt = time.monotonic() - t0
    return ok / dt, ok


def _login_worker(args):
    port, n, cid, user, pw = args
    pkt = connect_packet(cid, user, pw, keepalive=60)
    ok = 0
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(pkt)
        ack = s.recv(4)
        if ack[:2] == b"\x20\x02" and ack[3:4] == b"\x00":
            ok += 1
        s.sendall(b"\xe0\x00")
        s.close()
    return ok


def logins_parallel(cloud, n, procs, ids, user_of, pw_of):
    """Logins/s with `procs` client processes at once, each using its own client id."""
    import multiprocessing
    jobs = [(cloud.mqtt_port, n // procs, ids[i], user_of(ids[i]), pw_of(ids[i])) for i in range(procs)]
    t0 = time.monotonic()
    with multiprocessing.Pool(procs) as pool:
        ok = sum(pool.map(_login_worker, jobs))
    return ok / (time.monotonic() - t0)


def idle_rss(cloud, clients):
    """Broker RSS growth per idle logged-in connection (KiB), connections, and the same for
    anonymous memory only."""
    time.sleep(0.5)
    base = rss_kib(cloud.broker.pid)
    base_anon = rss_kib(cloud.broker.pid, "RssAnon")
    conns = []
    for cid, user, pw in clients:
        c = RawClient(cloud.mqtt_port)
        if c.connect(cid, user, pw, keepalive=600) == 0:
            conns.append(c)
    time.sleep(1.0)
    grown = rss_kib(cloud.broker.pid) - base
    grown_anon = rss_kib(cloud.broker.pid, "RssAnon") - base_anon
    n = len(conns)
    for c in conns:
        c.close()
    return (grown / n if n else 0.0), n, (grown_anon / n if n else 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--logins", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the message and memory scenarios this many times, alternating, and report medians")
    ap.add_argument("--only", default="msg,login,plogin,rss",
                    help="comma-separated subset of: msg, login, plogin, rss")
    ap.add_argument("--before", help="an older giz_plugin.so: its plugin/front scenarios are added to the "
                                     "message and memory rounds (\"@before\") for a same-run comparison")
    args = ap.parse_args()
    only = set(args.only.split(","))
    global BEFORE_PLUGIN
    BEFORE_PLUGIN = args.before
    msg_modes = ["bare", "plugin", "front", "tls"] + (["plugin@before", "front@before"] if args.before else [])
    res = {}
    samples = {}
    with harness.Cloud(broker=False) as cloud:
        pk = cloud.create_product()["product_key"]
        did, pc = new_device(cloud, pk)
        alice = new_user(cloud, "alice")
        bind(cloud, alice, did, pc)
        topic = "dev2app/" + did
        dev_auth = ["-i", did, "-u", did, "-P", pc]
        app_auth = ["-i", alice["mqtt_client_id"], "-u", alice["uid"], "-P", alice["token"]]
        print("fixtures: DID %s, app %s" % (did, alice["mqtt_client_id"]), flush=True)

        # dynamic-security config with one password client
        dynsec_json = os.path.join(cloud.dir, "dynsec.json")
        have_dynsec = os.path.exists(DYNSEC)
        if have_dynsec:
            subprocess.run(["mosquitto_ctrl", "dynsec", "init", dynsec_json, "benchuser", "benchpass123"],
                           check=True, capture_output=True)

        # TLS material for the front listener's TLS port
        cloud.tls_port = harness.free_port()
        cloud.tls_cert = os.path.join(cloud.dir, "cert.pem")
        cloud.tls_key = os.path.join(cloud.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-keyout", cloud.tls_key, "-out", cloud.tls_cert, "-days", "2", "-nodes",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        ctx = ssl.create_default_context(cafile=cloud.tls_cert)
        tls_args = ["--cafile", cloud.tls_cert]

        # -- messages/s -------------------------------------------------------------
        for rnd in range(args.rounds if "msg" in only else 0):
            for mode in msg_modes:
                restart_broker(cloud, "front" if mode == "tls" else mode)
                if mode == "bare":
                    r = throughput(cloud, args.messages, [], [], topic)
                elif mode == "tls":
                    r = throughput(cloud, args.messages, dev_auth + tls_args, app_auth + tls_args, topic,
                                   port=cloud.tls_port)
                else:
                    r = throughput(cloud, args.messages, dev_auth, app_auth, topic)
                samples.setdefault("msg_" + mode, []).append(r)
                samples.setdefault("cpu_" + mode, []).append(LAST_CPU_US_PER_MSG[0])
                print("messages/s %-13s %9.0f   broker CPU %.2f us/msg   (round %d)"
                      % (mode, r, LAST_CPU_US_PER_MSG[0], rnd + 1), flush=True)
        for k, v in samples.items():
            res[k] = median(v)
        if "msg" in only:
            print("broker CPU per message, medians (us): " + "  ".join(
                "%s %.2f (x%.2f of bare)" % (m, res["cpu_" + m], res["cpu_" + m] / res["cpu_bare"])
                for m in msg_modes), flush=True)
        if args.rounds > 1 and "msg" in only:
            print("messages/s medians: " + "  ".join("%s %.0f" % (m, res["msg_" + m]) for m in msg_modes))
            for rnd in range(args.rounds):
                print("  round %d: " % (rnd + 1) + "  ".join(
                    "%s/bare %.2f" % (m, samples["msg_" + m][rnd] / samples["msg_bare"][rnd])
                    for m in msg_modes[1:]))
            print("  median of per-round ratios: " + "  ".join(
                "%s/bare %.2f" % (m, median([samples["msg_" + m][i] / samples["msg_bare"][i]
                                             for i in range(args.rounds)])) for m in msg_modes[1:]))

        # -- logins/s ----------------------------------------------------------------
        if "login" in only:
            restart_broker(cloud, "bare")
            res["login_bare"], _ = logins(cloud, args.logins, "benchclient", None, None)
            if have_dynsec:
                restart_broker(cloud, "dynsec")
                res["login_dynsec"], _ = logins(cloud, args.logins, "benchclient", "benchuser", "benchpass123")
            restart_broker(cloud, "plugin")
            res["login_plugin"], _ = logins(cloud, args.logins, did, did, pc)
            restart_broker(cloud, "plugin", {"auth_cache_ttl": "0"})
            res["login_nocache"], _ = logins(cloud, args.logins, did, did, pc)
            restart_broker(cloud, "front")
            res["login_front"], _ = logins(cloud, args.logins, did, did, pc)
            res["login_tls"], _ = logins(cloud, max(args.logins // 4, 1), did, did, pc, port=cloud.tls_port,
                                         ctx=ctx)
            for k in ("bare", "dynsec", "plugin", "nocache", "front", "tls"):
                if "login_" + k in res:
                    print("logins/s   %-7s %9.0f" % (k, res["login_" + k]), flush=True)

        # -- logins/s, 4 client processes with distinct ids --------------------------------
        P = 4
        if "plogin" in only:
            devs = [new_device(cloud, pk, "parpass%03d" % i) for i in range(P)]
            pw = dict(devs)
            ids = [d for d, _ in devs]
            if have_dynsec:
                restart_broker(cloud, "dynsec")
                res["plogin_dynsec"] = logins_parallel(cloud, args.logins, P, ["bench%d" % i for i in range(P)],
                                                       lambda c: "benchuser", lambda c: "benchpass123")
            restart_broker(cloud, "plugin")
            res["plogin_plugin"] = logins_parallel(cloud, args.logins, P, ids, lambda c: c, lambda c: pw[c])
            restart_broker(cloud, "front")
            res["plogin_front"] = logins_parallel(cloud, args.logins, P, ids, lambda c: c, lambda c: pw[c])
            for k in ("dynsec", "plugin", "front"):
                if "plogin_" + k in res:
                    print("logins/s x%d %-7s %9.0f" % (P, k, res["plogin_" + k]), flush=True)

        # -- memory per idle connection -------------------------------------------------
        if args.idle > 0 and "rss" in only:
            devices = []
            for i in range(args.idle):
                d, p = new_device(cloud, pk, "idlepass%02d" % (i % 100))
                devices.append((d, d, p))
            for rnd in range(args.rounds):
                restart_broker(cloud, "bare")
                r1, n1, a1 = idle_rss(cloud, [("idle%05d" % i, None, None) for i in range(args.idle)])
                restart_broker(cloud, "front")
                r2, n2, a2 = idle_rss(cloud, devices)
                samples.setdefault("rss_bare", []).append(r1)
                samples.setdefault("rss_front", []).append(r2)
                samples.setdefault("anon_bare", []).append(a1)
                samples.setdefault("anon_front", []).append(a2)
                print("RSS KiB/conn bare %.2f (%d conns), front+plugin %.2f (%d conns); anonymous only %.2f / %.2f"
                      "   (round %d)" % (r1, n1, r2, n2, a1, a2, rnd + 1), flush=True)
                if args.before:
                    restart_broker(cloud, "front@before")
                    r3, n3, a3 = idle_rss(cloud, devices)
                    samples.setdefault("rss_front@before", []).append(r3)
                    samples.setdefault("anon_front@before", []).append(a3)
                    print("RSS KiB/conn front+plugin before %.2f (%d conns); anonymous only %.2f   (round %d)"
                          % (r3, n3, a3, rnd + 1), flush=True)
            res["rss_bare"] = median(samples["rss_bare"])
            res["rss_front"] = median(samples["rss_front"])
            if args.rounds > 1:
                ab, af = median(samples["anon_bare"]), median(samples["anon_front"])
                print("RSS KiB/conn medians: bare %.2f, front+plugin %.2f, extra %.2f; anonymous only: "
                      "bare %.2f, front+plugin %.2f, extra %.2f"
                      % (res["rss_bare"], res["rss_front"], res["rss_front"] - res["rss_bare"], ab, af, af - ab),
                      flush=True)
                if args.before:
                    b, a = median(samples["rss_front@before"]), median(samples["anon_front@before"])
                    print("RSS KiB/conn median before: front+plugin %.2f, extra %.2f; anonymous only %.2f, extra %.2f"
                          % (b, b - res["rss_bare"], a, a - ab), flush=True)

    print("\nratios:")
    if res.get("msg_bare"):
        print("  messages/s  plugin/bare %.2f   front/bare %.2f   front/plugin %.2f" % (
            res["msg_plugin"] / res["msg_bare"], res["msg_front"] / res["msg_bare"],
            res["msg_front"] / res["msg_plugin"] if res["msg_plugin"] else 0))
        print("  messages/s  tls/front %.2f" % (res["msg_tls"] / res["msg_front"] if res["msg_front"] else 0))
    if res.get("login_dynsec"):
        print("  logins/s    plugin/dynsec %.2f   front/dynsec %.2f   nocache/dynsec %.2f   dynsec/bare %.2f" % (
            res["login_plugin"] / res["login_dynsec"], res["login_front"] / res["login_dynsec"],
            res["login_nocache"] / res["login_dynsec"], res["login_dynsec"] / res["login_bare"]))
    if res.get("login_bare"):
        print("  logins/s    front/bare %.2f" % (res["login_front"] / res["login_bare"]))
    if res.get("plogin_dynsec"):
        print("  logins/s x4 plugin/dynsec %.2f   front/dynsec %.2f" % (
            res["plogin_plugin"] / res["plogin_dynsec"], res["plogin_front"] / res["plogin_dynsec"]))


if __name__ == "__main__":
    main()
