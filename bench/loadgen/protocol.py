"""What each server speaks: event names and payloads, and the Socket.IO client that speaks it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import socketio

CONNECT_TIMEOUT = 20.0


@dataclass(frozen=True)
class Protocol:
    """Event names and payload shapes of one server."""

    join: str
    send: str
    received: str

    def join_payload(self, room: str) -> dict:
        """The join event's payload."""
        return {"room": room} if self.join == "join" else {"conversacionId": room}

    def send_payload(self, room: str, i: int) -> dict:
        """Message i (0-based) of a sender."""
        text = f"mensaje de prueba número {i}"
        if self.send == "send":
            return {"room": room, "clientId": f"b{i}", "seq": i + 1, "contenido": text}
        return {"conversacionId": room, "contenido": text, "clientId": f"b{i}"}

    def message_of(self, data: Any) -> tuple[str | None, int | None]:
        """(clientId, seq) of a received message event."""
        m = data.get("mensaje", data) if isinstance(data, dict) else {}
        return m.get("clientId"), m.get("seq")

    def ack_seq(self, ack: Any, i: int) -> int | None:
        """The seq an ack reports (the echo server has none: the sender's counter)."""
        if not isinstance(ack, dict) or not ack.get("success"):
            return None
        if self.send == "send":
            return i + 1
        return ack["mensaje"]["seq"]


CHAT = Protocol("chat:join-room", "chat:send-message", "chat:message-received")
# The Node reference server (bench/node) speaks the chat's protocol.
PROTOCOLS = {"chat": CHAT, "node": CHAT, "echo": Protocol("join", "send", "message")}


def client(session: aiohttp.ClientSession) -> socketio.AsyncClient:
    """A Socket.IO client that never reconnects, on a shared HTTP session."""
    return socketio.AsyncClient(reconnection=False, http_session=session)


async def connect(c: socketio.AsyncClient, url: str, token: str | None) -> None:
    """Connect over WebSocket with the token in the auth object."""
    await c.connect(
        url,
        auth={"token": token} if token else None,
        transports=["websocket"],
        wait_timeout=CONNECT_TIMEOUT,
    )


async def join(c: socketio.AsyncClient, proto: Protocol, room: str) -> None:
    """Join a room, or raise with the refusal."""
    ack = await c.call(proto.join, proto.join_payload(room), timeout=20)
    if not (isinstance(ack, dict) and ack.get("success")):
        raise RuntimeError(f"join failed: {ack}")
