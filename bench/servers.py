"""Benchmark servers: the chat, the bare echo server or the Node reference server on free
loopback ports, and their databases.

The chat starts exactly as README.md and docs/deploy.md say (`gunicorn wsgi:app`, reading
gunicorn.conf.py; `gunicorn -k eventlet wsgi:app`; `python wsgi.py`), with the settings
of docs/deploy.md's "Benchmarking from one address" in the environment and nothing added.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.live import BIN, METRICS_TOKEN, free_port, raise_fd_limit  # noqa: E402, F401

BENCH = ROOT / "bench"
NODE = BENCH / "node"
SECRET = "bench-secret-that-is-long-enough-for-hs256"
MARIADB_ADMIN = os.environ.get("BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1/")
# docs/deploy.md, "Benchmarking from one address": the generator opens every socket
# from 127.0.0.1, so the per-address caps are raised to the process's capacity, which
# is the documented default (SOCKETIO_MAX_SOCKETS = MAX_CONNECTIONS - 1000 = 10,000),
# spelled out; and it sends far beyond a person's pace, so the rate limits are raised
# (they stay on: their cost is part of a send).
CAPACITY = 10_000
LIMITS = ("HTTP", "LOGIN", "REGISTER", "CONNECT", "MESSAGES", "EVENTS", "EDITS", "SEARCH")
ONE_ADDRESS = {
    "SOCKETIO_MAX_SOCKETS": str(CAPACITY),
    "SOCKETIO_MAX_TRANSPORTS_PER_IP": str(CAPACITY),
    "SOCKETIO_MAX_HANDSHAKES_PER_IP": str(CAPACITY),
    **{f"RATELIMIT_{k}": "1000000 per minute" for k in LIMITS},
}


def server_command(kind: str, mode: str, port: int) -> list[str]:
    """Exactly the README's command (run from the repository, HOST and PORT in the environment).

    gevent: `gunicorn wsgi:app`, which reads gunicorn.conf.py; eventlet: `gunicorn -k
    eventlet wsgi:app`; threading: `python wsgi.py`. The echo server runs the same way,
    from bench/ under the same gunicorn.conf.py; the Node server as `node server.js`.
    """
    if kind == "node":
        return ["node", str(NODE / "server.js")]
    if kind == "chat":
        if mode == "gevent":
            return [str(BIN / "gunicorn"), "wsgi:app"]
        if mode == "eventlet":
            return [str(BIN / "gunicorn"), "-k", "eventlet", "wsgi:app"]
        return [sys.executable, "wsgi.py"]
    if mode == "gevent":
        return [str(BIN / "gunicorn"), "--chdir", "bench", "echo_server:app"]
    return [sys.executable, str(BENCH / "echo_server.py")]


def node_modules() -> None:
    """Install the Node server's packages from the npm registry (package-lock.json), once."""
    if not (NODE / "node_modules" / "socket.io").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE, check=True, timeout=300)


@dataclass
class Server:
    """One server process on a free port; stop() kills its whole process group."""

    kind: str
    mode: str
    env: Mapping[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        """The exact command line."""
        return server_command(self.kind, self.mode, self.port)

    def start(self, timeout: float = 60) -> Server:
        """Start it and wait for /api/health."""
        env = {
            **os.environ,
            "JWT_SECRET": SECRET,
            "SOCKETIO_ASYNC_MODE": self.mode,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "METRICS_TOKEN": METRICS_TOKEN,
            "PYTHONUNBUFFERED": "1",
            **ONE_ADDRESS,
            **self.env,
        }
        if self.kind == "node":
            node_modules()
        log = open(self.log_path, "ab")  # noqa: SIM115  (closed with the process)
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/api/health", timeout=2) as r,
            ):
                if r.status == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.kind} server not ready: {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the server's log."""
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL if it lingers."""
        if self.process is not None:
            stop_process(self.process)


@contextlib.contextmanager
def servers(
    kind: str,
    mode: str,
    procs: int,
    db_url: str | None,
    log_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    start_timeout: float = 60,
) -> Iterator[list[Server]]:
    """procs servers of one kind; with two or more, joined by a Redis of their own."""
    env = dict(extra_env or {})
    if db_url:
        env["DATABASE_URL"] = db_url
    started: list[Server] = []
    redis = None
    try:
        if procs > 1:
            # Our own redis-server: the chat's channel name is fixed, and the shared
            # Redis carries other people's test traffic.
            redis = start_redis(log_dir)
            env["SOCKETIO_MESSAGE_QUEUE"] = f"redis://127.0.0.1:{redis[1]}/0"
        for n in range(procs):
            log = log_dir / f"{kind}-{mode}-{n}-{uuid.uuid4().hex[:6]}.log"
            started.append(Server(kind, mode, env, log).start(start_timeout))
        yield started
    finally:
        for s in started:
            s.stop()
        if redis is not None:
            stop_process(redis[0])


def start_redis(log_dir: Path) -> tuple[subprocess.Popen, int]:
    """A private redis-server on a free loopback port, no persistence."""
    port = free_port()
    p = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--logfile", str(log_dir / f"redis-{port}.log")],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return p, port
        time.sleep(0.1)
    stop_process(p)
    raise RuntimeError("redis-server did not start")


def stop_process(p: subprocess.Popen) -> None:
    """SIGTERM a process group we started, SIGKILL if it lingers."""
    if p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


def migrate(db_url: str) -> None:
    """`flask --app wsgi db upgrade` on a database."""
    env = {**os.environ, "DATABASE_URL": db_url, "JWT_SECRET": SECRET}
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    """A fresh, migrated database: a new SQLite file, or a new MariaDB database (dropped after)."""
    if kind == "sqlite":
        url = f"sqlite:///{work / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
        migrate(url)
        yield url
        return
    import sqlalchemy as sa

    name = f"miaubloom_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(MARIADB_ADMIN)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        # BENCH_MARIADB_QUERY adds driver options, e.g. ssl_disabled=1 (see RESULTS.md).
        extra = os.environ.get("BENCH_MARIADB_QUERY", "")
        url = (
            MARIADB_ADMIN.rstrip("/")
            + "/"
            + name
            + "?charset=utf8mb4"
            + (f"&{extra}" if extra else "")
        )
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def run_loadgen(args: list[str], timeout: float) -> dict:
    """One run of bench/loadgen: its JSON result, with the command line, exit code and time."""
    cmd = [sys.executable, str(BENCH / "loadgen"), *args]
    started = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"error": p.stderr[-1500:]}
        rc = p.returncode
    except subprocess.TimeoutExpired:
        result, rc = {"error": f"timed out after {timeout}s"}, -1
    shown = " ".join(shlex.quote(a) for a in cmd).replace(sys.executable, "python")
    return {"cmd": shown, "rc": rc, "seconds": round(time.time() - started, 1), **result}
