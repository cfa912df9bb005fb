"""Several live servers sharing one database and one Redis, each test on its own channel."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from tests.support.live import LiveServer, free_port

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_up() -> bool:
    """Whether the tests' Redis answers."""
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def queue_settings(redis_url: str = REDIS_URL, **extra: str) -> dict[str, str]:
    """Settings for servers that share a Redis queue on a channel and prefix of their own."""
    tag = uuid.uuid4().hex[:10]
    return {
        "SOCKETIO_MESSAGE_QUEUE": redis_url,
        "SOCKETIO_CHANNEL": f"miaubloom-test-{tag}",
        "REDIS_KEY_PREFIX": f"miaubloom-test-{tag}",
        "PRESENCE_TTL": "3",
        **extra,
    }


def forget(env: dict[str, str]) -> None:
    """Delete the keys a test's processes left under its prefix (the Redis is shared)."""
    client = redis.Redis.from_url(env["SOCKETIO_MESSAGE_QUEUE"], socket_connect_timeout=1)
    try:
        keys = list(client.scan_iter(match=env["REDIS_KEY_PREFIX"] + ":*", count=500))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # a test-owned Redis that is already gone
    finally:
        client.close()


def start_cluster(  # type: ignore[no-untyped-def]
    start_server,
    env: dict[str, str],
    n: int = 2,
    how: str = "gunicorn-gevent",
    async_mode: str = "gevent",
) -> list[LiveServer]:
    """n processes on one queue, booted at once: gevent under gunicorn, as production runs."""
    with ThreadPoolExecutor(n) as pool:
        starting = [
            pool.submit(start_server, how=how, async_mode=async_mode, env=env) for _ in range(n)
        ]
        return [future.result() for future in starting]


class OwnRedis:
    """A redis-server of this test's own on a free port, which the test may restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start (again) on the same port, with no persistence."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        """Kill it (as a crash would)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
