"""Against real servers on real ports: origins, expiry, connection limits, logout across processes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests
import socketio

from tests.conftest import People
from tests.support.cluster import REDIS_URL, redis_up
from tests.support.live import SECRET, RemoteClient

pytestmark = pytest.mark.server

EVIL = "http://evil.example"


@pytest.fixture
def remote_people():  # type: ignore[no-untyped-def]
    """remote_people(server): People over HTTP on a live server, their sessions closed after."""
    clients: list[RemoteClient] = []

    def make(server) -> People:  # type: ignore[no-untyped-def]
        clients.append(RemoteClient(server.url))
        return People(clients[-1])  # type: ignore[arg-type]

    yield make
    for client in clients:
        client.close()


def _connect(url: str, token: str, **kw: object) -> socketio.SimpleClient:
    client = socketio.SimpleClient(reconnection=False)
    client.connect(url, auth={"token": token}, transports=["websocket"], **kw)
    return client


def _close(*clients: socketio.SimpleClient) -> None:
    """Disconnect, and close the transport even when the server already dropped it."""
    for client in clients:
        client.disconnect()
        eio = client.client.eio if client.client else None
        if eio is not None and eio.ws is not None:
            eio.ws.shutdown()  # close() leaves the socket open when the server dropped it
        if eio is not None and eio.http is not None:
            eio.http.close()


def _refusal(url: str, token: str) -> dict:
    """Try to connect; the connect_error data the server answered with."""
    refused: list[object] = []
    client = socketio.Client(reconnection=False)
    client.on("connect_error", refused.append)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(url, auth={"token": token}, transports=["websocket"])
    finally:
        if client.eio.ws is not None:
            client.eio.ws.shutdown()
        if client.eio.http is not None:
            client.eio.http.close()
    assert refused, "no connect_error"
    error = refused[0]
    assert isinstance(error, dict)
    return error["data"]


def _wait_disconnected(client: socketio.SimpleClient, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while client.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    return not client.connected


def _handshake(url: str, origin: str) -> requests.Response:
    return requests.get(
        url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": origin}, timeout=5
    )


def test_socketio_refuses_foreign_origins(start_server, remote_people):
    allowed = "https://app.miaubloom.example"
    server = start_server(env={"ALLOWED_ORIGINS": allowed})
    pac = remote_people(server).register()
    assert _handshake(server.url, EVIL).status_code == 400
    assert _handshake(server.url, allowed).status_code == 200
    assert _handshake(server.url, server.url).status_code == 200  # the page it serves itself
    # A real client whose WebSocket handshake carries a foreign Origin is refused.
    evil = socketio.SimpleClient(reconnection=False, websocket_extra_options={"origin": EVIL})
    with pytest.raises(socketio.exceptions.ConnectionError):
        evil.connect(server.url, auth={"token": pac.token}, transports=["websocket"])
    _close(evil)
    good = socketio.SimpleClient(reconnection=False, websocket_extra_options={"origin": allowed})
    good.connect(server.url, auth={"token": pac.token}, transports=["websocket"])
    assert good.connected
    _close(good)
    # CORS for the API follows the same list.
    me = requests.get(
        server.url + "/api/auth/me",
        headers={"Origin": allowed, "Authorization": f"Bearer {pac.token}"},
        timeout=5,
    )
    assert me.headers["Access-Control-Allow-Origin"] == allowed


def test_without_configured_origins_only_the_same_origin(live_server):
    assert _handshake(live_server.url, EVIL).status_code == 400
    assert _handshake(live_server.url, live_server.url).status_code == 200


def test_a_socket_is_cut_off_when_its_token_expires(start_server, remote_people):
    server = start_server(env={"SESSION_CHECK_SECONDS": "1"})
    ana = remote_people(server).register()
    claims = {"userId": ana.id, "rol": ana.rol, "email": ana.email}
    short = jwt.encode(
        {**claims, "exp": datetime.now(UTC) + timedelta(seconds=2)}, SECRET, algorithm="HS256"
    )
    idle, lasting = _connect(server.url, short), _connect(server.url, ana.token)
    try:
        assert _wait_disconnected(idle, 10)
        assert lasting.connected
        assert _refusal(server.url, short) == {
            "message": "No autenticado",
            "code": "unauthenticated",
        }
    finally:
        _close(idle, lasting)


def test_connections_are_limited_per_address(start_server, remote_people):
    server = start_server(env={"RATELIMIT_ENABLED": "true", "RATELIMIT_CONNECT": "2 per minute"})
    ana = remote_people(server).register()
    first, second = _connect(server.url, ana.token), _connect(server.url, ana.token)
    data = _refusal(server.url, ana.token)
    assert data["code"] == "rate_limited" and data["message"]
    assert 1 <= data["retryAfter"] <= 60
    _close(first, second)


@pytest.mark.skipif(not redis_up(), reason="needs the tests' Redis (TEST_REDIS_URL)")
def test_logout_ends_sockets_in_every_process(start_server, remote_people):
    channel = f"test-{uuid.uuid4().hex[:12]}"
    env = {"SOCKETIO_MESSAGE_QUEUE": REDIS_URL, "SOCKETIO_CHANNEL": channel}
    one, two = start_server(env=env), start_server(env=env)
    people = remote_people(one)
    ana = people.register()
    again = requests.post(
        one.url + "/api/auth/login",
        json={"email": ana.email, "password": "contraseña-segura"},
        timeout=5,
    ).json()["token"]
    on_one, on_two, other_session = (
        _connect(one.url, ana.token),
        _connect(two.url, ana.token),
        _connect(two.url, again),
    )
    try:
        r = requests.post(one.url + "/api/auth/logout", headers=ana.headers, timeout=5)
        assert r.status_code == 200
        assert _wait_disconnected(on_one, 5)
        assert _wait_disconnected(on_two, 5)
        assert other_session.connected
        for server in (one, two):
            assert _refusal(server.url, ana.token)["code"] == "unauthenticated"
            r = requests.get(server.url + "/api/auth/me", headers=ana.headers, timeout=5)
            assert r.status_code == 401
    finally:
        _close(on_one, on_two, other_session)
