"""The real server on a real port with the python-socketio client over WebSocket."""

from __future__ import annotations

import time

import pytest
import socketio

from tests.support.sockets import LiveSocket, LiveSocketOpener

pytestmark = pytest.mark.server


@pytest.fixture
def open_socket(live_server):
    opener = LiveSocketOpener(live_server.url)
    yield opener
    opener.close()


def test_refused_without_a_valid_token(live_server):
    for auth in ({}, {"token": "no-vale"}):
        client = socketio.Client(reconnection=False)
        refused: list = []
        client.on("connect_error", refused.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(live_server.url, auth=auth, transports=["websocket"], wait_timeout=5)
        # The JavaScript client exposes "data" as err.data.
        assert refused == [
            {
                "message": "No autenticado",
                "data": {"message": "No autenticado", "code": "unauthenticated"},
            }
        ]
        assert not client.connected


def test_two_users_chat_reconnect_and_catch_up(live_server, live_people, open_socket):
    psi, pac, cid = live_people.pair()
    a, b = open_socket(pac), open_socket(psi)
    for s in (a, b):
        assert s.call("chat:join-room", {"conversacionId": cid})["success"]
    for i in range(3):
        ack = a.call(
            "chat:send-message", {"conversacionId": cid, "contenido": f"m{i}", "clientId": f"k{i}"}
        )
        assert ack["mensaje"]["seq"] == i + 1
    b.wait_for("chat:message-received", lambda d: d["mensaje"]["seq"] == 3)
    last_seen = max(m["seq"] for m in b.messages())
    b.close()
    # While b is away: socket and HTTP sends.
    for i in range(3, 6):
        a.call(
            "chat:send-message", {"conversacionId": cid, "contenido": f"m{i}", "clientId": f"k{i}"}
        )
    live_people.send(pac, cid, "m6", clientId="k6")
    b2 = open_socket(psi)
    assert b2.call("chat:join-room", {"conversacionId": cid})["lastSeq"] == 7
    caught = b2.call("chat:sync", {"conversacionId": cid, "afterSeq": last_seen})
    seqs = [m["seq"] for m in b.messages()] + [m["seq"] for m in caught["mensajes"]]
    assert seqs == list(range(1, 8))
    assert [m["contenido"] for m in caught["mensajes"]] == ["m3", "m4", "m5", "m6"]


def test_http_sent_messages_arrive_on_sockets(live_server, live_people, open_socket):
    psi, pac, cid = live_people.pair()
    b = open_socket(psi)
    b.call("chat:join-room", {"conversacionId": cid})
    m = live_people.send(pac, cid, "por http")
    got = b.wait_for("chat:message-received")
    assert got["mensaje"] == m
    update = b.wait_for("chat:conversation-updated")
    assert update["mensajesNoLeidos"] == 1


def test_presence_with_two_tabs(live_server, live_people, open_socket):
    psi, pac, cid = live_people.pair()
    watcher = open_socket(psi)
    watcher.call("chat:join-room", {"conversacionId": cid})
    tab1 = open_socket(pac)
    assert watcher.wait_for("chat:presence")["online"] is True
    tab2 = open_socket(pac)
    tab1.close()
    time.sleep(0.5)
    assert [d["online"] for n, d in watcher.received if n == "chat:presence"] == [True]
    tab2.close()
    watcher.wait_for("chat:presence", lambda d: d["online"] is False)


@pytest.fixture
def quick_typing(start_server):
    return start_server(env={"TYPING_TIMEOUT": "1"})


def test_typing_expires_on_the_server(quick_typing, app):
    from tests.conftest import People
    from tests.support.live import RemoteClient

    remote = RemoteClient(quick_typing.url)
    psi, pac, cid = People(remote).pair()
    remote.close()
    a, b = LiveSocket(quick_typing.url, pac.token), LiveSocket(quick_typing.url, psi.token)
    try:
        for s in (a, b):
            s.call("chat:join-room", {"conversacionId": cid})
        started = time.monotonic()
        a.call("chat:typing", {"conversacionId": cid})
        b.wait_for("chat:user-typing")
        stop = b.wait_for("chat:user-stop-typing", timeout=5)
        assert stop == {"userId": pac.id, "conversacionId": cid}
        assert 0.9 <= time.monotonic() - started < 4
        assert "chat:user-typing" not in a.names()
    finally:
        a.close()
        b.close()


def test_oversized_frame_never_disturbs_others(live_server, live_people, open_socket):
    psi, pac, cid = live_people.pair()
    a, b = open_socket(pac), open_socket(psi)
    for s in (a, b):
        s.call("chat:join-room", {"conversacionId": cid})
    attacker = open_socket(pac)
    # Past MAX_MESSAGE_LENGTH but within a frame: an error for that socket only.
    ack = attacker.call("chat:send-message", {"conversacionId": cid, "contenido": "x" * 70_000})
    assert (ack["success"], ack["code"]) == (False, "too_large")
    # Past the frame limit (SOCKETIO_MAX_BUFFER): engine.io drops that connection alone.
    attacker.client.emit("chat:send-message", {"conversacionId": cid, "contenido": "x" * 500_000})
    deadline = time.monotonic() + 10
    while attacker.client.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not attacker.client.connected
    ack = a.call("chat:send-message", {"conversacionId": cid, "contenido": "sigo aquí"})
    assert ack["success"]
    assert b.wait_for("chat:message-received")["mensaje"]["contenido"] == "sigo aquí"
    assert len(b.messages()) == 1
