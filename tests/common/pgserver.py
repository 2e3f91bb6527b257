# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""A throwaway PostgreSQL server for tests (Debian's postgresql packages, stdlib only).

PgServer() creates a temporary folder, runs Debian's initdb in it (the binaries of
`pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin), starts `postgres` on a
free 127.0.0.1 port, creates a database and hands out its postgresql:// URI; stop()
(or leaving the `with` block, or the process getting SIGTERM/SIGINT in the CLI) shuts
the server down and removes the folder, also after a failure.

    with PgServer() as pg:
        uri = pg.uri                    # postgresql://gizpg:<pw>@127.0.0.1:<port>/giz
        other = pg.new_database("b")    # another empty database on the same server

CLI, for wrapping a C test binary in CTest:

    /usr/bin/python3 tests/common/pgserver.py run [--db NAME] -- CMD [ARG...]

starts a server, exports GIZ_TEST_PG_URI=<uri> to CMD and exits with CMD's status
(125 if the server could not start). `pgserver.py uri` starts one, prints the URI and
keeps it until stdin closes or a signal arrives (for trying things by hand).

Choices: initdb refuses to run as root, so as root the cluster belongs to the `postgres`
system user (postgresql-common creates it; `nobody` otherwise) and the server runs as
that user (subprocess's user=/group=, no extra tool). Authentication is scram-sha-256
with a random password rather than `trust`: the server listens on TCP loopback of a
shared machine, where trust would let any local user in, and the password in the URI
also exercises the store's never-log-the-password path. No unix socket (its directory
would have to be reachable by whichever user runs the client). Durability is off
(fsync, synchronous_commit, full_page_writes): the data is thrown away anyway.
"""
import argparse
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

USER = "gizpg"  # the database superuser of the throwaway cluster


def bindir():
    """The folder holding initdb and postgres: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/<major>/bin. Raises RuntimeError when neither has initdb."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if os.path.exists(os.path.join(out, "initdb")):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
            if os.path.exists(os.path.join(d, "initdb"))]

    def major(d):
        try:
            return int(d.split("/")[-2])
        except ValueError:
            return 0
    dirs.sort(key=major)
    if not dirs:
        raise RuntimeError("no PostgreSQL server binaries (install Debian's postgresql)")
    return dirs[-1]


def _free_port():
    # Below the ephemeral range (like harness.free_port): a port handed out here is
    # not taken by an outgoing connection's local port before postgres binds it.
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    for _ in range(200):
        port = random.randint(20000, max(21000, eph_lo - 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


class PgServer:
    """One temporary PostgreSQL cluster with one database. start() is called by the
    constructor (start=False to defer); stop() is idempotent."""

    def __init__(self, dbname="giz", start=True, quiet=True):
        self.dbname = dbname
        self.quiet = quiet
        self.dir = None
        self.proc = None
        self.port = None
        self.password = secrets.token_hex(16)
        self.bin = None
        self._owner = None  # (uid, gid) the server runs as when we are root
        if start:
            self.start()

    # -- life cycle -----------------------------------------------------------
    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        self.bin = bindir()
        self.dir = tempfile.mkdtemp(prefix="gizpg-")
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self._owner = (pw.pw_uid, pw.pw_gid)
                break
            if self._owner is None:
                raise RuntimeError("running as root and no unprivileged user to run postgres")
            os.chown(self.dir, *self._owner)
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        if self._owner:
            os.chown(pwfile, *self._owner)
        data = os.path.join(self.dir, "data")
        self._run_owned([os.path.join(self.bin, "initdb"), "-D", data, "-E", "UTF8",
                         "--locale=C", "-A", "scram-sha-256", "-U", USER, "--pwfile", pwfile,
                         "--no-sync", "--no-instructions"])
        os.unlink(pwfile)
        last = None
        for _ in range(5):  # a port may be taken between the probe and the bind
            self.port = _free_port()
            try:
                self._launch(data)
                break
            except _PortTaken as e:
                last = e
        else:
            raise RuntimeError("postgres could not bind a port: %s" % last)
        self.psql("CREATE DATABASE %s" % self.dbname, db="postgres")

    def _launch(self, data):
        log = open(os.path.join(self.dir, "postgres.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(self.bin, "postgres"), "-D", data, "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200",
                 "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir,
                start_new_session=True, **self._owner_kw())
        finally:
            log.close()
        pidfile = os.path.join(data, "postmaster.pid")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log_tail()
                self.proc = None
                if "could not bind" in text or "in use" in text:
                    raise _PortTaken(text)
                raise RuntimeError("postgres exited at start:\n" + text)
            try:
                with open(pidfile) as f:
                    lines = f.read().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("postgres not ready after 60 s:\n" + self.log_tail())

    def stop(self):
        """Stops the server (fast shutdown, SIGKILL of its process group after 15 s)
        and removes the folder."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)  # fast shutdown
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
        d, self.dir = self.dir, None
        if d:
            shutil.rmtree(d, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- use ------------------------------------------------------------------
    def uri_for(self, dbname):
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (USER, self.password, self.port, dbname)

    @property
    def uri(self):
        return self.uri_for(self.dbname)

    def new_database(self, name):
        """Creates another empty database on this server; returns its URI."""
        self.psql("CREATE DATABASE %s" % name, db="postgres")
        return self.uri_for(name)

    def psql(self, sql, db=None):
        """Runs sql with psql on database db (default: ours); returns its output
        (unaligned, tuples only). Raises RuntimeError with psql's message on error."""
        env = dict(os.environ, PGPASSWORD=self.password, PGCONNECT_TIMEOUT="10")
        r = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", USER, "-d", db or self.dbname, "-c", sql],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, r.stderr.strip()))
        return r.stdout

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, "postgres.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except (OSError, TypeError):
            return ""

    # -- helpers --------------------------------------------------------------
    def _owner_kw(self):
        if not self._owner:
            return {}
        return {"user": self._owner[0], "group": self._owner[1], "extra_groups": []}

    def _run_owned(self, argv):
        r = subprocess.run(argv, capture_output=True, text=True, cwd=self.dir,
                           **self._owner_kw())
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s" % (os.path.basename(argv[0]),
                               r.returncode, r.stdout, r.stderr))


class _PortTaken(RuntimeError):
    pass


def _main(argv):
    ap = argparse.ArgumentParser(prog="pgserver.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run CMD with GIZ_TEST_PG_URI set")
    run.add_argument("--db", default="giz")
    run.add_argument("command", nargs=argparse.REMAINDER)
    uri = sub.add_parser("uri", help="print a URI and keep the server until stdin closes")
    uri.add_argument("--db", default="giz")
    args = ap.parse_args(argv)

    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pg = None
    child = None
    try:
        try:
            pg = PgServer(dbname=args.db)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - report and fail like a broken test
            print("pgserver: %s" % e, file=sys.stderr)
            return 125
        if args.cmd == "uri":
            print(pg.uri, flush=True)
            sys.stdin.read()
            return 0
        cmd = args.command
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        if not cmd:
            print("pgserver: run needs -- CMD", file=sys.stderr)
            return 2
        env = dict(os.environ, GIZ_TEST_PG_URI=pg.uri)
        try:
            child = subprocess.Popen(cmd, env=env)
        except OSError as e:
            print("pgserver: cannot run %s: %s" % (cmd[0], e), file=sys.stderr)
            return 127
        rc = child.wait()
        child = None
        if rc < 0:  # died of a signal: report it like a shell would
            return 128 - rc
        return rc
    except KeyboardInterrupt:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        return 128 + (stopping[0] if stopping else signal.SIGINT)
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
