"""The real server on a real port: two users chat over WebSocket with the python client."""

from __future__ import annotations

import pytest
import socketio

pytestmark = pytest.mark.server


def connect(url: str, token: str) -> socketio.SimpleClient:
    client = socketio.SimpleClient()
    client.connect(url, auth={"token": token}, transports=["websocket"])
    return client


def test_two_users_chat_over_websocket(live_server, live_people):
    psi, pac, cid = live_people.pair()
    a, b = connect(live_server.url, pac.token), connect(live_server.url, psi.token)
    try:
        assert a.call("chat:join-room", {"conversacionId": cid})["success"]
        assert b.call("chat:join-room", {"conversacionId": cid})["success"]
        ack = a.call("chat:send-message", {"conversacionId": cid, "contenido": "hola"})
        assert ack["success"] and ack["mensaje"]["seq"] == 1
        while True:
            name, payload = b.receive(timeout=5)
            if name == "chat:message-received":
                assert payload["mensaje"]["contenido"] == "hola"
                break
    finally:
        a.disconnect()
        b.disconnect()
