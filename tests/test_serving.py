"""Each async mode, started the README's way, carries a chat round trip over a real WebSocket."""

from __future__ import annotations

import pytest
import requests

from .conftest import on_mysql
from .realtime import Peer, people_at, wait_for_event

pytestmark = pytest.mark.server

# The async mode does not depend on the database: on MariaDB, only production's way runs.
_SQLITE_ONLY = pytest.mark.skipif(on_mysql(), reason="run on SQLite; the mode is database-blind")
MODES = [
    pytest.param("gunicorn-gevent", "gevent", id="gunicorn-gevent"),
    pytest.param("gunicorn-eventlet", "eventlet", id="gunicorn-eventlet", marks=_SQLITE_ONLY),
    pytest.param("socketio-run", "eventlet", id="socketio-run:eventlet", marks=_SQLITE_ONLY),
    pytest.param("socketio-run", "gevent", id="socketio-run:gevent", marks=_SQLITE_ONLY),
    pytest.param("socketio-run", "threading", id="socketio-run:threading", marks=_SQLITE_ONLY),
    pytest.param("flask", "threading", id="flask", marks=_SQLITE_ONLY),
]


@pytest.mark.parametrize(("how", "async_mode"), MODES)
def test_round_trip_over_websocket(start_server, how, async_mode):
    server = start_server(how=how, async_mode=async_mode)
    people = people_at(server.url)
    psi, pac, cid = people.pair()
    with Peer(server.url, pac.token) as a, Peer(server.url, psi.token) as b:
        assert a.client.transport() == "websocket"
        assert a.call("chat:join-room", {"conversacionId": cid})["success"]
        assert b.call("chat:join-room", {"conversacionId": cid})["success"]
        ack = a.call("chat:send-message", {"conversacionId": cid, "contenido": "hola"})
        assert ack["success"], ack
        got = wait_for_event(b, "chat:message-received", timeout=5)
        assert got["mensaje"]["id"] == ack["mensaje"]["id"]
    # HTTP on the same port, same process.
    r = requests.get(server.url + "/api/chat/no-leidos", headers=psi.headers, timeout=5)
    assert r.status_code == 200 and r.json()["totalMensajesNoLeidos"] == 1


@_SQLITE_ONLY
def test_an_async_worker_with_threading_mode_refuses_to_start(start_server):
    with pytest.raises(RuntimeError) as failed:
        start_server(how="gunicorn-gevent", async_mode="threading")
    assert "SOCKETIO_ASYNC_MODE=threading under an async worker" in str(failed.value)
