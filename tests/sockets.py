"""A python-socketio client for live-server tests: records every event, waits for one."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import socketio


class LiveSocket:
    """A real Socket.IO client over a real WebSocket, recording what it receives.

    Events are kept twice: `received`, the whole history (wait_for, messages), and
    `events`, a queue for consumers that take them one by one (realtime.wait_for_event).
    """

    def __init__(self, url: str | None, token: str | None = None, **connect: Any) -> None:
        self.client = socketio.Client(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.connect_error: Any = None
        self._cond = threading.Condition()
        self.client.on("*", self._record)
        self.client.on("connect_error", self._refused)
        if token is not None:
            connect.setdefault("auth", {"token": token})
        connect.setdefault("transports", ["websocket"])
        self._connect_options = connect
        if url:
            self.connect(url)

    def connect(self, url: str) -> None:
        """Connect (again) with this socket's token and options."""
        self.client.connect(url, wait_timeout=10, **self._connect_options)

    def _record(self, event: str, data: Any = None) -> None:
        self.events.put((event, data))
        with self._cond:
            self.received.append((event, data))
            self._cond.notify_all()

    def _refused(self, data: Any = None) -> None:
        self.connect_error = data

    def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        """Emit with an acknowledgement and return it."""
        return self.client.call(event, data, timeout=timeout)

    def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 10
    ) -> Any:
        """The first payload of event matching where, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name, data in self.received:
                    if name == event and where(data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {event} within {timeout}s; got {self.names()}")
                self._cond.wait(left)

    def names(self) -> list[str]:
        """The names of the events received so far."""
        with self._cond:
            return [name for name, _ in self.received]

    def messages(self) -> list[dict]:
        """Every chat:message-received payload's message, in arrival order."""
        with self._cond:
            return [d["mensaje"] for n, d in self.received if n == "chat:message-received"]

    def close(self) -> None:
        """Disconnect if connected; release the socket even if the server dropped it."""
        if self.client.connected:
            self.client.disconnect()
        ws = getattr(self.client.eio, "ws", None)
        if ws is not None:
            ws.shutdown()

    def __enter__(self) -> LiveSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
