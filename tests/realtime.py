"""Socket.IO peers for live-server tests: a real client over a real WebSocket, events queued."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from .conftest import People
from .live import LiveServer, RemoteClient
from .sockets import LiveSocket


def people_at(url: str) -> People:
    """People registered through a live server's HTTP API."""
    return People(RemoteClient(url))  # type: ignore[arg-type]


# One client for every live-server test: the recording socket of tests/sockets.py.
Peer = LiveSocket


def wait_for_event(
    peer: Peer,
    name: str,
    timeout: float = 5,
    match: Callable[[Any], bool] = lambda _: True,
) -> Any:
    """The payload of the next `name` event that matches, skipping others; fail after timeout."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            event, data = peer.events.get(timeout=left)
        except queue.Empty:
            break
        if event == name and match(data):
            return data
    raise AssertionError(f"no {name} within {timeout}s")


def drain(peer: Peer, name: str, quiet: float = 0.5, limit: float = 10) -> list[Any]:
    """Every `name` payload received until none arrives for `quiet` seconds (at most `limit`)."""
    got: list[Any] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            event, data = peer.events.get(timeout=quiet)
        except queue.Empty:
            break
        if event == name:
            got.append(data)
    return got


def full_log(server: LiveServer) -> str:
    """Everything a server printed (LiveServer.log() keeps only the tail, for messages)."""
    assert server.log_path is not None
    return server.log_path.read_text(errors="replace")
