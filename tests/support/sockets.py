"""A python-socketio client for live-server tests: records every event, waits for one."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import socketio
import websocket


class LiveSocket:
    """A real Socket.IO client over a real WebSocket, recording what it receives.

    Events are kept twice: `received`, the whole history (wait_for, messages), and
    `events`, a queue for consumers that take them one by one (next_event, drain).
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

    def next_event(
        self, name: str, timeout: float = 5, match: Callable[[Any], bool] = lambda _: True
    ) -> Any:
        """The next queued `name` payload that matches, consuming others; fail after timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event == name and match(data):
                return data
        raise AssertionError(f"no {name} within {timeout}s")

    def drain(self, name: str, quiet: float = 0.5, limit: float = 10) -> list[Any]:
        """Every queued `name` payload until none arrives for `quiet` seconds (at most `limit`)."""
        got: list[Any] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                event, data = self.events.get(timeout=quiet)
            except queue.Empty:
                break
            if event == name:
                got.append(data)
        return got

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


class LiveSocketOpener:
    """Opens LiveSockets on a server for people (the `open_socket` fixture); close() closes them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[LiveSocket] = []

    def __call__(self, person: Any, **kw: Any) -> LiveSocket:
        """A socket with person's token (none for None), connected with kw's options."""
        s = LiveSocket(self.url, person.token if person else None, **kw)
        self.opened.append(s)
        return s

    def close(self) -> None:
        """Close every socket opened."""
        for s in self.opened:
            s.close()


def joined(peer: LiveSocket, cid: str) -> dict:
    """Join peer to the conversation; the join's ack."""
    ack = peer.call("chat:join-room", {"conversacionId": cid})
    assert ack["success"], ack
    return ack


class RawTransport:
    """An Engine.IO WebSocket driven frame by frame, as an attacker would (websocket-client).

    `frames` are Engine.IO text frames: "40{...}" is a Socket.IO CONNECT, "42[...]" an event.
    """

    def __init__(self, base_url: str, timeout: float = 5, **options: Any) -> None:
        url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(url, timeout=timeout, **options)
        opened = self.ws.recv()
        assert opened.startswith("0"), opened
        self.sid = json.loads(opened[1:])["sid"]

    def send(self, frame: str | bytes) -> None:
        """Send one frame (bytes as a binary frame)."""
        if isinstance(frame, bytes):
            self.ws.send_binary(frame)
        else:
            self.ws.send(frame)

    def recv(self, timeout: float = 5) -> str | None:
        """The next frame, answering pings; None once the server has closed the connection."""
        self.ws.settimeout(timeout)
        while True:
            try:
                frame = self.ws.recv()
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                return None
            if frame == "2":
                self.ws.send("3")
                continue
            return frame if frame else None

    def connect(self, token: str | None) -> str:
        """Send the Socket.IO CONNECT; the server's answer ("40{sid}" or "44{error}")."""
        self.send("40" + json.dumps({"token": token} if token else {}))
        answer = self.recv()
        assert answer is not None and answer[:2] in ("40", "44"), answer
        return answer

    def call(self, event: str, data: Any, ack: int = 1) -> Any:
        """Emit an event with an ack id and return the ack's payload (skipping other frames)."""
        self.send(f"42{ack}" + json.dumps([event, data]))
        while (frame := self.recv()) is not None:
            if frame.startswith(f"43{ack}"):
                return json.loads(frame[2 + len(str(ack)) :])[0]
        raise ConnectionError("closed before the ack")

    def closed_by_server(self, timeout: float = 5) -> bool:
        """Read until the server closes the connection (True) or timeout passes (False)."""
        return ended_by_server(self.ws, timeout)

    def close(self) -> None:
        """Close our end (the socket too, when the server already closed its side)."""
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.ws.close(timeout=0.2)
        self.ws.shutdown()


def ended_by_server(ws: websocket.WebSocket, timeout: float = 5) -> bool:
    """Whether the server ends a WebSocket (close frame or closed connection) within timeout."""
    ws.settimeout(timeout)
    try:
        while ws.recv():
            pass
    except websocket.WebSocketTimeoutException:
        return False
    except (OSError, websocket.WebSocketException):
        pass
    return True
