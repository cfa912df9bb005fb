"""Real server processes on loopback ports, for tests that need a real transport."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from config import TEST_DB_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-that-is-long-enough-for-hs256"
# /metrics answers only this bearer token (it is off without one).
METRICS_TOKEN = "token-de-metricas-para-las-pruebas"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The venv's console scripts, as the README runs them.
BIN = Path(sys.executable).parent


def server_command(how: str, port: int) -> list[str]:
    """The README's way to start the server: 'flask', 'socketio-run' or 'gunicorn-<worker>'.

    gunicorn reads gunicorn.conf.py (gevent, one worker, HOST:PORT from the environment):
    the production command is `gunicorn wsgi:app`, eventlet's `gunicorn -k eventlet wsgi:app`.
    """
    if how == "flask":
        return [str(BIN / "flask"), "--app", "wsgi", "run", "--port", str(port)]
    if how == "socketio-run":
        return [sys.executable, "wsgi.py"]
    if how == "gunicorn-gevent":
        return [str(BIN / "gunicorn"), "wsgi:app"]
    if how == "gunicorn-eventlet":
        return [str(BIN / "gunicorn"), "-k", "eventlet", "wsgi:app"]
    raise ValueError(how)


def process_env(
    database_url: str, async_mode: str, port: int, env: Mapping[str, str] | None
) -> dict[str, str]:
    """The environment a test's server (or worker) process runs with."""
    return {
        **os.environ,
        "MIAUBLOOM_ENV": "testing",
        "JWT_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "SOCKETIO_ASYNC_MODE": async_mode,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        # Suites register many users from one address; limit tests turn this back on.
        "RATELIMIT_ENABLED": "false",
        "METRICS_TOKEN": METRICS_TOKEN,
        # As in TestConfig: a busy CI box is no silent database; the partition test sets 2.
        "DB_TIMEOUT": str(TEST_DB_TIMEOUT),
        **(env or {}),
    }


class LiveServer:
    """One chat server process; stopped (or killed) by the test."""

    def __init__(
        self,
        database_url: str,
        how: str = "socketio-run",
        async_mode: str = "threading",
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        flags: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = process_env(database_url, async_mode, self.port, env)
        self._out = open(log_path, "ab") if log_path else None  # noqa: SIM115
        command = server_command(how, self.port)
        self.process = subprocess.Popen(
            command[:-1] + (flags or []) + command[-1:] if flags else command,
            cwd=ROOT,
            env=full_env,
            stdout=self._out or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        """Block until /api/health answers, or fail with the server's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()  # closes the log file
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                if requests.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become ready: {self.log()}")

    def log(self) -> str:
        """What the server printed (when a log file was given)."""
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-4000:]
        return "(no log)"

    def worker_pid(self) -> int:
        """The process that serves: gunicorn's worker (its only child), else the server itself."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return int(children.split()[0]) if children.split() else self.process.pid

    def rss(self) -> int:
        """The serving process's resident memory, in bytes (VmRSS from /proc)."""
        return rss_bytes(self.worker_pid())

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent)."""
        wanted = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        )
        bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        for line in requests.get(
            self.url + "/metrics", headers=bearer, timeout=5
        ).text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def kill(self) -> None:
        """SIGKILL: the process dies with no chance to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if self._out:
            self._out.close()
            self._out = None

    def terminate(self) -> None:
        """SIGTERM without waiting (stop() waits), so several servers stop at once."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._out:
            self._out.close()
            self._out = None


def rss_bytes(pid: int) -> int:
    """A process's resident memory in bytes, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (tests that hold many sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class LiveWorker(LiveServer):
    """`flask --app wsgi notify-worker`, the README's command, as a process of its own."""

    READY = "notification worker started"

    def __init__(
        self,
        database_url: str,
        env: Mapping[str, str],
        log_path: Path,
        async_mode: str = "threading",
        threads: int = 2,
    ) -> None:
        self.log_path = log_path
        self._out = open(log_path, "ab")  # noqa: SIM115
        command = [sys.executable, "-m", "flask", "--app", "wsgi", "notify-worker"]
        self.process = subprocess.Popen(
            [*command, "--threads", str(threads)],
            cwd=ROOT,
            env=process_env(database_url, async_mode, 0, env),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        """Block until the worker says it started, or fail with its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"worker exited with {self.process.returncode}: {self.log()}")
            if self.READY in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"worker did not start: {self.log()}")


class RemoteResponse:
    """A requests response shaped like Flask's test response (json as a property)."""

    def __init__(self, response: requests.Response) -> None:
        self.raw = response
        self.status_code = response.status_code
        self.headers = response.headers

    @property
    def json(self) -> object:
        """The decoded body."""
        return self.raw.json()


class RemoteClient:
    """HTTP against a live server, with the test client's interface (for People).

    Each call opens and closes its own connection (requests' one-shot sessions), so no
    idle keep-alive socket is left for the garbage collector to report.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str, **kw: object) -> RemoteResponse:
        """GET path."""
        return RemoteResponse(requests.get(self.base_url + path, timeout=10, **kw))

    def post(self, path: str, **kw: object) -> RemoteResponse:
        """POST path."""
        return RemoteResponse(requests.post(self.base_url + path, timeout=10, **kw))

    def delete_cookie(self, name: str) -> None:
        """Nothing to forget: no cookie outlives a call."""

    def close(self) -> None:
        """Nothing to release: each call closed its own connection."""
