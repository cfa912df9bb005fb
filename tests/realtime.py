"""Socket.IO peers for live-server tests: a real client over a real WebSocket, events queued."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

import socketio

from .conftest import People
from .live import LiveServer, RemoteClient


def people_at(url: str) -> People:
    """People registered through a live server's HTTP API."""
    return People(RemoteClient(url))  # type: ignore[arg-type]


class Peer:
    """One python-socketio client over WebSocket only, every event it receives kept in order."""

    def __init__(self, url: str | None, token: str) -> None:
        self.token = token
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record)
        if url:
            self.connect(url)

    def _record(self, event: str, data: Any = None) -> None:
        self.events.put((event, data))

    def connect(self, url: str) -> None:
        """Connect (WebSocket only) with this peer's token."""
        self.client.connect(
            url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10
        )

    def call(self, event: str, data: object, timeout: float = 5) -> Any:
        """Emit an event and wait for its ack."""
        return self.client.call(event, data, timeout=timeout)

    def close(self) -> None:
        """Disconnect, if connected; release the socket even if the server died under it."""
        if self.client.connected:
            self.client.disconnect()
        ws = getattr(self.client.eio, "ws", None)
        if ws is not None:
            ws.shutdown()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


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
