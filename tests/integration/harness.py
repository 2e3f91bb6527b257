# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""Integration-test harness: starts the real GService and the real mosquitto
loading the built plugin on free loopback ports with a temporary data folder,
and stops them (checking they exited cleanly) at the end.

Used by every tests/integration/test_*.py. Environment (set by CTest):
GIZ_BUILD_DIR, GIZ_SOURCE_DIR, GIZ_ASAN=1 when the build is sanitized.
GIZ_VALGRIND=1 runs the GService under valgrind (slow; for leak hunting);
GIZ_VALGRIND_BROKER=1 runs mosquitto + plugin under valgrind (non-sanitized builds).
GIZ_MOSQUITTO chooses the mosquitto binary (default: `mosquitto` on PATH, Debian's
2.0.11); scripts/test-backports.sh points it at bookworm-backports' 2.0.21.
GIZ_TEST_STORE=pg puts the store on PostgreSQL: each Cloud starts a throwaway server
(tests/common/pgserver.py) and hands its postgresql:// URI to the GService (GIZ_DB_PATH)
and the plugin (plugin_opt_db_path), with a named passcode key file (required there);
tests reach the database through Cloud.db_exec / Cloud.db_dump, which speak to either.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD = os.environ.get("GIZ_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("GIZ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
ASAN = os.environ.get("GIZ_ASAN", "0") in ("1", "ON", "TRUE", "true")
GSERVICE = os.path.join(BUILD, "gservice", "giz-gservice")
PLUGIN = os.path.join(BUILD, "plugin", "giz_plugin.so")
MOSQUITTO = os.environ.get("GIZ_MOSQUITTO", "mosquitto")
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
STORE = os.environ.get("GIZ_TEST_STORE", "sqlite")
if STORE == "pg":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
    import pgserver  # noqa: E402


_used_ports = set()


def free_port():
    """Returns a TCP port on 127.0.0.1 that was free a moment ago. Ports are
    drawn below the kernel's ephemeral range (where clients' local ports come
    from, so a port handed out here is not taken by some outgoing connection
    before the server binds it) and never twice in one test process."""
    import random
    lo = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    hi = max(lo + 1000, eph_lo - 1)
    for _ in range(200):
        port = random.randint(lo, hi)
        if port in _used_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port found below %d" % hi)


def wait_port(port, proc=None, timeout=20.0):
    """Waits until 127.0.0.1:port accepts a TCP connection; fails if `proc` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on port %d after %.0fs" % (port, timeout))


def sanitizer_env(env):
    """Environment for processes of a sanitized build. mosquitto itself is not
    instrumented: the ASan runtime is preloaded so the plugin can load."""
    env = dict(env)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:exitcode=23")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=24")
    return env


def asan_runtime():
    out = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    return out.stdout.strip()


def broker_env():
    """Environment for mosquitto: with a sanitized plugin, the ASan runtime is
    preloaded into the (uninstrumented) broker so that the plugin can load."""
    env = dict(os.environ)
    if ASAN:
        env = sanitizer_env(env)
        env["LD_PRELOAD"] = asan_runtime()
        stub = os.path.join(BUILD, "tests", "integration", "giz_asan_swift_stub.so")
        if (STORE == "pg" or os.environ.get("GIZ_TEST_PG_URI")) and os.path.exists(stub):
            # see tests/integration/asan_swift_stub.c: libpq's first connect would hang
            env["LD_PRELOAD"] += " " + stub
        # mosquitto itself is not ours; its exit-time allocations are not our leaks.
        env["ASAN_OPTIONS"] = "detect_leaks=0:exitcode=23"
    return env


def run_broker_once(conf_text, folder, timeout=30):
    """Runs mosquitto with conf_text until it exits (start-up refusal tests);
    returns (returncode, output text)."""
    conf = os.path.join(folder, "mosquitto.once.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    p = subprocess.run([MOSQUITTO, "-c", conf], capture_output=True, timeout=timeout,
                       env=broker_env())
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


class Failure(Exception):
    pass


class Checker:
    """Counts checks; every test ends with checker.done() which exits 1 on any failure
    or when nothing was checked."""

    def __init__(self, name):
        self.name = name
        self.checks = 0
        self.failures = 0

    def ok(self, cond, what):
        self.checks += 1
        if not cond:
            self.failures += 1
            print("FAIL: %s" % what, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, "%s: got %r, want %r" % (what, got, want))

    def done(self):
        print("%s: %d checks, %d failures" % (self.name, self.checks, self.failures), flush=True)
        sys.exit(1 if self.failures or self.checks == 0 else 0)


class Cloud:
    """The cloud under test. Use as a context manager:

        with Cloud(broker=True) as cloud:
            cloud.http("POST", "/admin/products", {"name": "x"}, admin=True)
    """

    def __init__(self, gservice=True, broker=True, plugin_opts=None, gservice_args=None,
                 gservice_env=None, broker_lines=None, tls_dir=None, broker_nofile=None):
        """broker_lines: extra mosquitto.conf lines (e.g. another `listener`);
        tls_dir: a folder with ca.crt, server.crt, server.key: mosquitto then also
        listens with TLS on self.mqtts_port (the shipped TLS settings);
        broker_nofile: RLIMIT_NOFILE (soft and hard) for mosquitto."""
        self.want_gservice = gservice
        self.want_broker = broker
        self.plugin_opts = dict(plugin_opts or {})
        self.broker_lines = list(broker_lines or [])
        self.tls_dir = tls_dir
        self.broker_nofile = broker_nofile
        self.gservice_args = list(gservice_args or [])
        self.gservice_env = dict(gservice_env or {})
        self.dir = tempfile.mkdtemp(prefix="gizit-")
        os.chmod(self.dir, 0o755)
        self.db_path = os.path.join(self.dir, "gizcloud.db")
        self.pg = None
        if STORE == "pg":
            try:
                self.pg = pgserver.PgServer()
            except BaseException:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise
            self.db_path = self.pg.uri
            key = os.path.join(self.dir, "passcode.key")  # one key for every process
            self.gservice_env.setdefault("GIZ_PASSCODE_KEY", key)
            self.plugin_opts.setdefault("passcode_key", key)
            self.plugin_opts.setdefault("db_path", self.db_path)
        self.http_port = free_port()
        self.mqtt_port = free_port()
        self.mqtts_port = free_port() if tls_dir else None
        self.admin_token = ADMIN_TOKEN
        self.procs = []
        self.gservice = None
        self.broker = None
        self.logs = {}

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self):
        try:
            if self.want_gservice:
                self.start_gservice()
            if self.want_broker:
                self.start_broker()
        except Exception:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _spawn(self, name, argv, env, nofile=None):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        self.logs[name] = log.name
        pre = None
        if nofile is not None:
            import resource

            def pre():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True, preexec_fn=pre)
        self.procs.append((name, p))
        return p

    def start_gservice(self):
        env = dict(os.environ)
        env.update({
            "GIZ_HTTP_PORT": str(self.http_port),
            "GIZ_DATA_DIR": self.dir,
            "GIZ_DB_PATH": self.db_path,
            "GIZ_ADMIN_TOKEN": self.admin_token,
            "GIZ_M2M_HOST": "127.0.0.1",
            "GIZ_M2M_PORT": str(self.mqtt_port),
            "GIZ_PUBLIC_URL": "http://127.0.0.1:%d" % self.http_port,
        })
        env.update(self.gservice_env)
        if ASAN:
            env = sanitizer_env(env)
        argv = [GSERVICE] + self.gservice_args
        if os.environ.get("GIZ_VALGRIND") == "1":
            argv = ["valgrind", "--leak-check=full", "--error-exitcode=25"] + argv
        self.gservice = self._spawn("gservice", argv, env)
        wait_port(self.http_port, self.gservice, timeout=60 if os.environ.get("GIZ_VALGRIND") else 20)

    def broker_conf(self):
        """The mosquitto.conf used by the test: the shipped template
        (deploy/mosquitto.conf rendered by deploy/render-conf, so the tests run the
        configuration users run) with self.plugin_opts overriding or adding
        plugin_opt_* lines (values may be lists for repeatable options) and
        self.broker_lines appended. Falls back to an equivalent built-in configuration
        if the template is missing. mosquitto listens on the public MQTT port itself
        (and on self.mqtts_port with TLS when tls_dir is given)."""
        text = self._rendered_conf()
        if text is None:
            text = self._builtin_conf()
        lines = [l for l in text.splitlines()
                 if not any(l.startswith("plugin_opt_%s " % k) for k in self.plugin_opts)]
        for k, v in self.plugin_opts.items():
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                lines.append("plugin_opt_%s %s" % (k, one))
        lines += self.broker_lines
        return "\n".join(lines) + "\n"

    def _rendered_conf(self):
        script = os.path.join(SOURCE, "deploy", "render-conf")
        if not os.path.exists(script):
            return None
        out = os.path.join(self.dir, "mosquitto.rendered.conf")
        env = dict(os.environ)
        env.update({"GIZ_DATA_DIR": self.dir, "GIZ_PLUGIN": PLUGIN, "GIZ_MQTT_BIND": "127.0.0.1",
                    "GIZ_MQTT_PORT": str(self.mqtt_port),
                    "GIZ_MQTTS_PORT": str(self.mqtts_port) if self.tls_dir else "0"})
        if self.tls_dir:
            env["GIZ_TLS_DIR"] = self.tls_dir
        r = subprocess.run(["sh", script, out], env=env, capture_output=True)
        if r.returncode != 0 or not os.path.exists(out):
            print("render-conf failed (%s): %s; using the built-in broker conf"
                  % (r.returncode, r.stderr.decode(errors="replace")[-300:]), flush=True)
            return None
        with open(out) as f:
            return f.read()

    def _builtin_conf(self):
        # As root, mosquitto would drop to user `mosquitto` before loading the plugin
        # and could then not write the database the GService created: `user root`
        # keeps it as is.
        lines = []
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")
        lines += [
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "listener %d 127.0.0.1" % self.mqtt_port,
            "set_tcp_nodelay true",
            "plugin %s" % PLUGIN,
            "plugin_opt_db_path %s" % self.db_path,
        ]
        if self.tls_dir:
            lines += ["listener %d 127.0.0.1" % self.mqtts_port,
                      "cafile %s/ca.crt" % self.tls_dir,
                      "certfile %s/server.crt" % self.tls_dir,
                      "keyfile %s/server.key" % self.tls_dir,
                      "tls_version tlsv1.2"]
        return "\n".join(lines) + "\n"

    def start_broker(self, conf_text=None):
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(conf_text if conf_text is not None else self.broker_conf())
        env = broker_env()
        argv = [MOSQUITTO, "-c", conf]
        if os.environ.get("GIZ_VALGRIND_BROKER") == "1" and not ASAN:
            # Leak hunting in the plugin: definite leaks and memory errors fail the run.
            argv = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
                    "--errors-for-leak-kinds=definite", "--error-exitcode=25"] + argv
        self.broker = self._spawn("mosquitto", argv, env, nofile=self.broker_nofile)
        wait_port(self.mqtt_port, self.broker, timeout=60 if argv[0] == "valgrind" else 20)
        return self.broker

    def stop(self):
        """SIGTERM everything; returns {name: returncode}. A process killed by a
        signal or an ASan/UBSan exit code is reported on stdout."""
        codes = {}
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    print("%s did not stop on SIGTERM" % name, flush=True)
            codes[name] = p.returncode
        self.procs = []
        self.exit_codes = codes
        if self.pg is not None:
            self.pg.stop()
        if os.environ.get("GIZ_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        return codes

    # -- the database, on either backend -----------------------------------
    def db_exec(self, sql, params=()):
        """Runs one statement with ?-parameters on the store's database (SQLite file
        or PostgreSQL) and returns its rows as lists of text (PostgreSQL) or values
        (SQLite). Write portable SQL (e.g. INSERT ... ON CONFLICT ... DO UPDATE)."""
        if self.pg is None:
            import sqlite3
            db = sqlite3.connect(self.db_path, timeout=10)
            try:
                rows = db.execute(sql, tuple(params)).fetchall()
                db.commit()
                return rows
            finally:
                db.close()
        out, it, quote = [], iter(params), None
        for ch in sql:
            if quote:
                quote = None if ch == quote else quote
                out.append(ch)
            elif ch in "'\"":
                quote = ch
                out.append(ch)
            elif ch == "?":
                v = next(it)
                out.append("NULL" if v is None else str(int(v)) if isinstance(v, (bool, int))
                           else "'%s'" % str(v).replace("'", "''"))
            else:
                out.append(ch)
        text = self.pg.psql("".join(out))
        return [line.split("|") for line in text.splitlines() if line]

    def db_dump(self):
        """The whole database as text (SQLite's iterdump, or every table's rows)."""
        if self.pg is None:
            import sqlite3
            db = sqlite3.connect(self.db_path, timeout=10)
            try:
                return "\n".join(db.iterdump())
            finally:
                db.close()
        tables = self.pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                              "ORDER BY tablename").split()
        return "\n".join("%s\n%s" % (t, self.pg.psql("SELECT * FROM %s" % t)) for t in tables)

    def log_text(self, name):
        try:
            with open(self.logs[name], "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (KeyError, OSError):
            return ""

    # -- HTTP --------------------------------------------------------------
    def http(self, method, path, body=None, admin=False, headers=None, form=None, raw=None,
             timeout=10):
        """One HTTP request to the GService. `body` (dict/list) is sent as JSON,
        `form` (str) as application/x-www-form-urlencoded, `raw` (bytes) as is.
        Returns (status, headers dict, body bytes)."""
        url = "http://127.0.0.1:%d%s" % (self.http_port, path)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif form is not None:
            data = form.encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif raw is not None:
            data = raw
        if admin:
            h["Authorization"] = "Bearer " + self.admin_token
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method, path, body=None, admin=False, headers=None):
        status, _, data = self.http(method, path, body=body, admin=admin, headers=headers)
        try:
            return status, json.loads(data.decode() or "null")
        except ValueError:
            return status, {"_raw": data.decode("utf-8", "replace")}

    def raw_http(self, request_bytes, timeout=5):
        """Sends exact request bytes (as firmware would) and returns the whole answer."""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout) as s:
            s.sendall(request_bytes)
            chunks = []
            while True:
                try:
                    c = s.recv(65536)
                except socket.timeout:
                    break
                if not c:
                    break
                chunks.append(c)
            return b"".join(chunks)

    # -- convenience -------------------------------------------------------
    def create_product(self, name="test product"):
        status, p = self.json("POST", "/admin/products", {"name": name}, admin=True)
        if status != 201:
            raise Failure("create product: %s %r" % (status, p))
        return p

    def register_device(self, product_key, mac, passcode):
        status, _, body = self.http("POST", "/dev/devices",
                                    form="passcode=%s&mac=%s&product_key=%s" % (passcode, mac, product_key))
        text = body.decode()
        if status != 201 or not text.startswith("did="):
            raise Failure("register: %s %r" % (status, text))
        return text[4:26]

    def firmware_exchange(self, request_bytes, timeout=10):
        """Sends exact request bytes as Gizwits firmware does and reads the answer
        the way firmware does: ONE recv() of at most 1024 bytes. Returns
        (status, headers dict with lowercase names, body bytes, raw bytes)."""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout) as s:
            s.sendall(request_bytes)
            raw = s.recv(1024)
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ")[1])
        except (IndexError, ValueError):
            status = 0
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, body, raw

    def upload_firmware(self, product_key, fw_type, soft_version, data, hard_version="",
                        filename="fw.bin"):
        """Uploads a firmware file as a raw body (metadata in the query string);
        returns the JSON answer. Raises Failure unless 201."""
        q = "product_key=%s&type=%d&soft_version=%s&hard_version=%s&filename=%s" % (
            product_key, fw_type, soft_version, hard_version, filename)
        status, _, body = self.http("POST", "/admin/firmware?" + q, raw=data, admin=True,
                                    headers={"Content-Type": "application/octet-stream"})
        if status != 201:
            raise Failure("upload firmware: %s %r" % (status, body[:200]))
        return json.loads(body.decode())

    def app_login(self, username, password, create=True, appid=None):
        """Creates (optionally) and logs in an app user; returns the login JSON."""
        if create:
            status, r = self.json("POST", "/app/users", {"username": username, "password": password})
            if status != 201:
                raise Failure("create user: %s %r" % (status, r))
        h = {"X-Gizwits-Application-Id": appid} if appid else None
        status, r = self.json("POST", "/app/login", {"username": username, "password": password},
                              headers=h)
        if status != 200:
            raise Failure("login: %s %r" % (status, r))
        return r
