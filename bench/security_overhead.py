"""What the per-event rate limit costs: EventLimiter.spend per second, memory and Redis.

python bench/security_overhead.py [N] [redis://127.0.0.1:6379/0]   Not part of the test run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from config import TestConfig
from miaubloom import create_app
from miaubloom.state import app_state


def checks_per_second(storage: str, n: int, folder: str) -> float:
    """EventLimiter.spend calls per second for one user, under a limit it never reaches."""
    config = TestConfig(f"sqlite:///{folder}/bench.sqlite3")
    config.RATELIMIT_ENABLED = True
    config.RATELIMIT_MESSAGES = "100000000 per minute"
    config.RATELIMIT_STORAGE_URI = storage
    config.RATELIMIT_KEY_PREFIX = f"bench-{uuid.uuid4().hex[:8]}"
    config.AUDIT_LOG = os.devnull
    events = app_state(create_app(config)).events
    start = time.perf_counter()
    for _ in range(n):
        events.spend("RATELIMIT_MESSAGES", "user-1")
    return n / (time.perf_counter() - start)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    storages = ["memory://", *sys.argv[2:]]
    with tempfile.TemporaryDirectory() as folder:
        for storage in storages:
            rate = checks_per_second(storage, count, folder)
            print(f"{storage:30} {rate:9.0f} checks/s  ({1e6 / rate:6.1f} µs each)")
