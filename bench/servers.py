"""Benchmark servers: the chat (or the bare echo server) on free loopback ports, and their databases."""

from __future__ import annotations

import contextlib
import os
import resource
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
from config import SPARE_FILES  # noqa: E402  (the repository's, beside bench/)

BENCH = ROOT / "bench"
SECRET = "bench-secret-that-is-long-enough-for-hs256"
MARIADB_ADMIN = os.environ.get("BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1/")
# The venv's console scripts, as the README runs them.
BIN = Path(sys.executable).parent
# Connections per process (gunicorn.conf.py reads it, as `python wsgi.py` does): room for
# the 10,000-socket benchmark and the one past it that must be refused, within the files
# this machine lets a process open (the server refuses to start past that).
MAX_CONNECTIONS = min(20000, resource.getrlimit(resource.RLIMIT_NOFILE)[1] - SPARE_FILES)
# The generator opens every socket from 127.0.0.1: the per-address caps must not count.
ONE_ADDRESS = ("SOCKETIO_MAX_TRANSPORTS_PER_IP", "SOCKETIO_MAX_HANDSHAKES_PER_IP")
BENCH_LIMITS = ("HTTP", "LOGIN", "REGISTER", "CONNECT", "MESSAGES", "EVENTS", "EDITS", "SEARCH")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit() -> int:
    """Raise this process's (and its children's) open-file limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def server_command(kind: str, mode: str, port: int) -> list[str]:
    """Exactly the README's command (run from the repository, HOST and PORT in the environment).

    gevent: `gunicorn wsgi:app`, which reads gunicorn.conf.py; eventlet and threading:
    `python wsgi.py`. The echo server runs the same way, from bench/ under the same
    gunicorn.conf.py.
    """
    if kind == "chat":
        if mode == "gevent":
            return [str(BIN / "gunicorn"), "wsgi:app"]
        return [sys.executable, "wsgi.py"]
    if mode == "gevent":
        return [str(BIN / "gunicorn"), "--chdir", "bench", "echo_server:app"]
    return [sys.executable, str(BENCH / "echo_server.py")]


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
            "MIAUBLOOM_ENV": "testing",
            "JWT_SECRET": SECRET,
            "SOCKETIO_ASYNC_MODE": self.mode,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            **dict.fromkeys(ONE_ADDRESS, str(MAX_CONNECTIONS)),
            "PYTHONUNBUFFERED": "1",
            # The generator registers and connects everyone from one address and
            # sends far beyond a person's pace: the limits stay on (their cost is
            # part of a send) but high enough never to refuse.
            **{f"RATELIMIT_{k}": "1000000 per minute" for k in BENCH_LIMITS},
            **self.env,
        }
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
            started.append(Server(kind, mode, env, log).start())
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
    env = {**os.environ, "DATABASE_URL": db_url, "MIAUBLOOM_ENV": "testing", "JWT_SECRET": SECRET}
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
