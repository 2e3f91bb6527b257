# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Profiles the workloads whose figures miss their targets (evidence for
bench/suite/analysis.md; not run by bench/run). Uses bench.py's fixtures and drivers
and `perf record -e cpu-clock -g` (hardware counters are not available on this VM) on
the broker or GService while the workload runs, then prints the top of `perf report`.

  /usr/bin/python3 bench/suite/profile.py throughput   # cloud, app2dev 64 B
  /usr/bin/python3 bench/suite/profile.py throughput-bare
  /usr/bin/python3 bench/suite/profile.py login-cold   # cloud, first logins (PBKDF2 + SQLite)
  /usr/bin/python3 bench/suite/profile.py login-warm
  /usr/bin/python3 bench/suite/profile.py register     # GService register POST under wrk
  /usr/bin/python3 bench/suite/profile.py provision    # GService provision GET under wrk
Options: --build DIR (default build-bench), --out DIR (perf.data and reports; default /tmp).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402


def perf_start(pid, out, name):
    data = os.path.join(out, "perf-%s.data" % name)
    p = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1999", "-g", "-p", str(pid), "-o", data],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p, data


def perf_stop(p, data, out, name):
    p.send_signal(signal.SIGINT)
    p.wait(30)
    txt = os.path.join(out, "perf-%s.txt" % name)
    for mode, suffix in ((["--no-children", "--sort", "dso,sym"], ""), (["--sort", "comm,dso"], ".dso")):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--percent-limit", "1.5", "-g", "none"] + mode,
                           capture_output=True, text=True)
        with open(txt + suffix, "w") as f:
            f.write(r.stdout)
        print("---- perf report %s %s" % (name, " ".join(mode)))
        print("\n".join(l for l in r.stdout.splitlines() if l and not l.startswith("#"))[:4000])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what")
    ap.add_argument("--build", default=os.path.join(bench.ROOT, "build-bench"))
    ap.add_argument("--out", default="/tmp")
    a = ap.parse_args()
    a.fleet = 10000 if a.what.startswith("login") else 50
    b = bench.Bench(a)
    try:
        b.fixtures()
        if a.what in ("throughput", "throughput-bare"):
            mode = "cloud" if a.what == "throughput" else "bare"
            br = b.broker(mode, ["max_queued_messages 0"])
            f = os.path.join(b.dir, "p64.bin")
            with open(f, "wb") as fh:
                fh.write(bench.device_payload(64))
            app = b.app
            p, data = perf_start(br.pid, a.out, a.what)
            cpu = {}
            r = bench.throughput_once(br.port, ["-i", app["mqtt_client_id"], "-u", app["uid"], "-P", app["token"]],
                                      ["-i", b.did, "-u", b.did, "-P", b.pc],
                                      "app2dev/%s/%s" % (b.did, app["mqtt_client_id"]), "app2dev/%s/#" % b.did,
                                      f, 600000, br.pid, cpu)
            perf_stop(p, data, a.out, a.what)
            print("%s: %.0f msg/s, broker CPU us/msg %s" % (a.what, r or 0, cpu))
        elif a.what in ("login-cold", "login-warm"):
            br = b.broker("cloud")
            creds = b.fleet[:10000]
            if a.what == "login-warm":
                print("warm-up pass: %.0f/s" % bench.login_pass(br.port, creds, 4)[0])
            c0 = bench.thread_cpu(br.pid)
            p, data = perf_start(br.pid, a.out, a.what)
            r, ok = bench.login_pass(br.port, creds, 4)
            perf_stop(p, data, a.out, a.what)
            d = bench.cpu_delta(c0, bench.thread_cpu(br.pid))
            print("%s: %.0f/s (%d ok), broker CPU us/login %s" % (
                a.what, r, ok, {k: round(v * 1e6 / len(creds), 1) for k, v in d.items()}))
        elif a.what in ("register", "provision"):
            d = os.path.join(b.dir, "gs")
            os.makedirs(d)
            gs, port = b.start_gservice(data_dir=d)
            st, body = b.http("POST", "/admin/products", {"name": "wrk"}, admin=True, port=port)
            pk = json.loads(body)["product_key"]
            st, body = b.http("POST", "/dev/devices", form="passcode=BENCHPASS0&mac=00163E000000&product_key=" + pk,
                              port=port)
            env = dict(os.environ, GIZ_BENCH_PK=pk, GIZ_BENCH_DID=body.decode()[4:26])
            c0 = bench.thread_cpu(gs.pid)
            p, data = perf_start(gs.pid, a.out, a.what)
            r, bad = bench.wrk(port, a.what + ".lua", 5, env)
            perf_stop(p, data, a.out, a.what)
            dd = bench.cpu_delta(c0, bench.thread_cpu(gs.pid))
            print("%s: %s req/s (bad %s), GService CPU s by thread %s, us/request %.1f" % (
                a.what, r, bad, dd, sum(dd.values()) * 1e6 / (r * 5) if r else 0))
            sync = subprocess.run(["sqlite3", os.path.join(d, "gizcloud.db"), "PRAGMA journal_mode; PRAGMA synchronous;"],
                                  capture_output=True, text=True)
            print("db pragmas (new connection): %r" % sync.stdout)
        else:
            ap.error("unknown workload %s" % a.what)
    finally:
        b.stop_all()
        shutil.rmtree(b.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
