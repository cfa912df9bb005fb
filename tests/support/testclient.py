"""Socket.IO test clients in the test's own process: open them, join a room."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_socketio import SocketIOTestClient

from miaubloom.extensions import socketio


def open_client(app: Flask, token: str | None = None, **kw: Any) -> SocketIOTestClient:
    """A test client on app: with token's auth, unless other connect options are given."""
    if token is not None and not kw:
        kw = {"auth": {"token": token}}
    return socketio.test_client(app, **kw)


def socket(app: Flask, token: str) -> SocketIOTestClient:
    """A connected Socket.IO test client for a token."""
    client = open_client(app, token)
    assert client.is_connected()
    return client


class SocketOpener:
    """Opens test clients for people (the `sockets` fixture); close() disconnects them all."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.opened: list[SocketIOTestClient] = []

    def __call__(self, person: Any = None, **kw: Any) -> SocketIOTestClient:
        """A test client with person's token (or kw's connect options)."""
        s = open_client(self.app, person.token if person is not None else None, **kw)
        self.opened.append(s)
        return s

    def close(self) -> None:
        """Disconnect every client still connected."""
        for s in self.opened:
            if s.is_connected():
                s.disconnect()


def joined(sockets: SocketOpener, person: Any, cid: str) -> SocketIOTestClient:
    """A socket of person joined to the conversation, its events so far forgotten."""
    s = sockets(person)
    ack = s.emit("chat:join-room", {"conversacionId": cid}, callback=True)
    assert ack["success"], ack
    s.get_received()
    return s
