"""Rate limits: per IP for login and register, per user for the API and each socket event kind."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from miaubloom.security.ratelimit import storage_uri
from tests.conftest import PASSWORD
from tests.security.conftest import errors_of, people_of, row_counts
from tests.support.cluster import REDIS_URL, redis_up
from tests.support.testclient import socket


def _assert_limited(response, window: int = 60) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429
    assert response.json["success"] is False
    assert response.json["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= window
    assert response.json["retryAfter"] == int(response.headers["Retry-After"])


def test_login_is_limited_per_ip(make_app):
    app = make_app(RATELIMIT_LOGIN="3 per minute")
    ana = people_of(app).register()
    client = app.test_client()
    body = {"email": ana.email, "password": "adivinando"}
    for _ in range(2):  # register() logged in once already
        assert client.post("/api/auth/login", json=body).status_code == 401
    _assert_limited(client.post("/api/auth/login", json=body))
    # Even the right password waits: guessing cannot tell the limit from a miss.
    _assert_limited(client.post("/api/auth/login", json={**body, "password": PASSWORD}))
    # Another address has its own budget.
    other = client.post(
        "/api/auth/login",
        json={**body, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    )
    assert other.status_code == 200


def test_register_is_limited_per_ip(make_app):
    app = make_app(RATELIMIT_REGISTER="2 per minute")
    client = app.test_client()

    def register():  # type: ignore[no-untyped-def]
        email = f"u-{uuid.uuid4().hex[:8]}@test.miaubloom"
        body = {"email": email, "password": PASSWORD, "nombreCompleto": "U", "rol": "Paciente"}
        return client.post("/api/auth/register", json=body)

    assert register().status_code == 201
    assert register().status_code == 201
    before = row_counts(app)
    _assert_limited(register())
    assert row_counts(app) == before


def test_api_is_limited_per_user(make_app):
    app = make_app(RATELIMIT_HTTP="3 per minute")
    people = people_of(app)
    ana, bea = people.register(), people.register()
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/chat/no-leidos", headers=ana.headers).status_code == 200
    _assert_limited(client.get("/api/chat/no-leidos", headers=ana.headers))
    assert client.get("/api/chat/no-leidos", headers=bea.headers).status_code == 200
    # Health checks are never limited (load balancers poll them).
    for _ in range(5):
        assert client.get("/api/health").status_code == 200


def test_http_messages_are_limited_per_user(make_app):
    app = make_app(RATELIMIT_MESSAGES="2 per minute")
    people = people_of(app)
    psi, pac, cid = people.pair()
    people.send(pac, cid, "uno")
    people.send(pac, cid, "dos")
    before = row_counts(app)
    r = app.test_client().post(
        "/api/chat/mensajes", json={"conversacionId": cid, "contenido": "tres"}, headers=pac.headers
    )
    _assert_limited(r)
    assert row_counts(app) == before
    people.send(psi, cid, "el otro miembro sigue")


def test_socket_messages_are_limited_per_user(make_app):
    app = make_app(RATELIMIT_MESSAGES="3 per minute")
    psi, pac, cid = people_of(app).pair()
    a, b = socket(app, pac.token), socket(app, psi.token)
    for client in (a, b):
        assert client.emit("chat:join-room", {"conversacionId": cid}, callback=True)["success"]
    for i in range(3):
        ack = a.emit(
            "chat:send-message", {"conversacionId": cid, "contenido": f"m{i}"}, callback=True
        )
        assert ack["success"], ack
    errors_of(a)
    before = row_counts(app)
    ack = a.emit("chat:send-message", {"conversacionId": cid, "contenido": "m3"}, callback=True)
    assert ack["success"] is False and ack["code"] == "rate_limited"
    assert 1 <= ack["retryAfter"] <= 60
    assert errors_of(a) == [
        {"message": ack["message"], "code": "rate_limited", "event": "chat:send-message"}
    ]
    assert row_counts(app) == before
    # Other kinds of event have their own budget, and so has the other member.
    assert a.emit("chat:typing", {"conversacionId": cid}, callback=True)["success"]
    ack = b.emit("chat:send-message", {"conversacionId": cid, "contenido": "hola"}, callback=True)
    assert ack["success"]
    a.disconnect()
    b.disconnect()


def test_other_events_have_a_budget_and_typing_never_runs_out(make_app):
    app = make_app(RATELIMIT_EVENTS="2 per minute", RATELIMIT_MESSAGES="1 per minute")
    _, pac, cid = people_of(app).pair()
    a = socket(app, pac.token)
    payload = {"conversacionId": cid}
    assert a.emit("chat:join-room", payload, callback=True)["success"]
    assert a.emit("chat:sync", {**payload, "afterSeq": 0}, callback=True)["success"]
    assert a.emit("chat:mark-read", payload, callback=True)["code"] == "rate_limited"
    assert a.emit("chat:send-message", {**payload, "contenido": "x"}, callback=True)["success"]
    assert a.emit("chat:send-message", {**payload, "contenido": "y"}, callback=True)["code"] == (
        "rate_limited"
    )
    # Every keystroke is a chat:typing (PROTOCOL.md v1.1): no budget, whatever the others'.
    for _ in range(300):
        assert a.emit("chat:typing", payload, callback=True) == {"success": True}
        assert a.emit("chat:stop-typing", payload, callback=True) == {"success": True}
    assert errors_of(a) == [
        {"message": "Demasiadas solicitudes", "code": "rate_limited", "event": event}
        for event in ("chat:mark-read", "chat:send-message")
    ]
    a.disconnect()


def test_socket_connections_are_limited_per_ip(make_app):
    app = make_app(RATELIMIT_CONNECT="2 per minute")
    ana = people_of(app).register()
    from miaubloom.extensions import socketio

    first = socketio.test_client(app, auth={"token": ana.token})
    second = socketio.test_client(app, auth={"token": ana.token})
    third = socketio.test_client(app, auth={"token": ana.token})
    assert first.is_connected() and second.is_connected()
    assert not third.is_connected()
    first.disconnect()
    second.disconnect()


def test_storage_follows_the_configuration():
    assert storage_uri({"RATELIMIT_STORAGE_URI": "", "SOCKETIO_MESSAGE_QUEUE": ""}) == "memory://"
    assert storage_uri({"SOCKETIO_MESSAGE_QUEUE": "redis://q:6379/1"}) == "redis://q:6379/1"
    assert (
        storage_uri({"RATELIMIT_STORAGE_URI": "redis://r/2", "SOCKETIO_MESSAGE_QUEUE": "redis://q"})
        == "redis://r/2"
    )


@pytest.mark.skipif(not redis_up(), reason="needs the tests' Redis (TEST_REDIS_URL)")
def test_budgets_are_shared_through_redis(make_app):
    # Two apps stand for two processes: one Redis, one budget per user.
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    common = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    one = make_app(RATELIMIT_MESSAGES="3 per minute", **common)
    two = make_app(RATELIMIT_MESSAGES="3 per minute", **common)
    _psi, pac, cid = people_of(one).pair()
    body = {"conversacionId": cid, "contenido": "hola"}
    assert (
        one.test_client().post("/api/chat/mensajes", json=body, headers=pac.headers).status_code
        == 201
    )
    assert (
        two.test_client().post("/api/chat/mensajes", json=body, headers=pac.headers).status_code
        == 201
    )
    # The socket send spends the same budget: one message left, in either process.
    a = socket(two, pac.token)
    assert a.emit("chat:send-message", body, callback=True)["success"]
    assert a.emit("chat:send-message", body, callback=True)["code"] == "rate_limited"
    r = one.test_client().post("/api/chat/mensajes", json=body, headers=pac.headers)
    assert (r.status_code, r.json["code"]) == (429, "rate_limited")
    a.disconnect()
    keys = redis.Redis.from_url(REDIS_URL).keys(f"*{prefix}*")
    assert keys, "counters live in Redis"
    redis.Redis.from_url(REDIS_URL).delete(*keys)


def test_limits_fail_open_when_their_storage_is_down(make_app):
    from tests.support.live import free_port

    app = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")
    _psi, pac, cid = people_of(app).pair()
    r = app.test_client().get("/api/chat/no-leidos", headers=pac.headers)
    assert r.status_code == 200
    a = socket(app, pac.token)
    ack = a.emit("chat:send-message", {"conversacionId": cid, "contenido": "hola"}, callback=True)
    assert ack["success"], ack
    a.disconnect()


@pytest.mark.skipif(not redis_up(), reason="needs the tests' Redis (TEST_REDIS_URL)")
def test_limits_fail_open_within_a_second_when_their_storage_is_silent(make_app, caplog):
    # A partition: Redis neither answers nor resets. Every limited call still answers at
    # once but for one REDIS_TIMEOUT, and the limits come back when Redis does.
    from urllib.parse import urlparse

    from tests.support.tcpproxy import TcpProxy

    redis_at = urlparse(REDIS_URL)
    proxy = TcpProxy((redis_at.hostname or "127.0.0.1", redis_at.port or 6379))
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    app = make_app(
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{proxy.port}/0",
        RATELIMIT_KEY_PREFIX=prefix,
        RATELIMIT_LOGIN="4 per minute",
        REDIS_RETRY_AFTER=1,
    )
    try:
        _psi, pac, cid = people_of(app).pair()  # two logins spent
        client, a = app.test_client(), socket(app, pac.token)
        body = {"conversacionId": cid, "contenido": "hola"}
        login = {"email": pac.email, "password": PASSWORD}
        proxy.blackhole()
        calls = {
            "login": lambda: client.post("/api/auth/login", json=login).status_code,
            "HTTP send": lambda: (
                client.post("/api/chat/mensajes", json=body, headers=pac.headers).status_code
            ),
            "socket send": lambda: a.emit("chat:send-message", body, callback=True)["success"],
            "socket typing": lambda: a.emit("chat:typing", body, callback=True)["success"],
        }
        for name, call in list(calls.items()) * 3:  # a dozen calls: logins past the limit too
            started = time.monotonic()
            assert call() in (True, 200, 201), name
            # One REDIS_TIMEOUT (0.5 s) at most, plus the call's own work on a busy machine.
            assert time.monotonic() - started < 1.5, f"{name} waited on a silent Redis"
        assert "did not answer" in caplog.text, "the partition was not logged"
        proxy.restore()
        # Past REDIS_RETRY_AFTER the limits count again: the login budget is spent at once.
        deadline = time.monotonic() + 10
        while client.post("/api/auth/login", json=login).status_code != 429:
            assert time.monotonic() < deadline, "the limits did not come back with Redis"
            time.sleep(0.2)
        a.disconnect()
    finally:
        proxy.cut()
        keys = redis.Redis.from_url(REDIS_URL).keys(f"*{prefix}*")
        if keys:
            redis.Redis.from_url(REDIS_URL).delete(*keys)


def test_edits_and_deletions_share_one_budget_across_transports(make_app):
    # Per hour: a window boundary (where the sliding counter forgets) is never near.
    app = make_app(RATELIMIT_EDITS="3 per hour")
    people = people_of(app)
    psi, pac, cid = people.pair()
    ids = [people.send(pac, cid, f"m{i}")["id"] for i in range(4)]
    client, a = app.test_client(), socket(app, pac.token)
    r = client.patch(
        f"/api/chat/mensajes/{ids[0]}", json={"contenido": "x", "version": 1}, headers=pac.headers
    )
    assert r.status_code == 200, r.json
    assert client.delete(f"/api/chat/mensajes/{ids[1]}", headers=pac.headers).status_code == 200
    ack = a.emit(
        "chat:edit-message", {"messageId": ids[2], "contenido": "y", "version": 1}, callback=True
    )
    assert ack["success"], ack
    errors_of(a)
    before = row_counts(app)
    ack = a.emit("chat:delete-message", {"messageId": ids[3]}, callback=True)
    assert (ack["success"], ack["code"]) == (False, "rate_limited")
    assert 1 <= ack["retryAfter"] <= 3600
    assert errors_of(a) == [
        {"message": ack["message"], "code": "rate_limited", "event": "chat:delete-message"}
    ]
    _assert_limited(client.delete(f"/api/chat/mensajes/{ids[3]}", headers=pac.headers), 3600)
    _assert_limited(
        client.patch(
            f"/api/chat/mensajes/{ids[3]}",
            json={"contenido": "z", "version": 1},
            headers=pac.headers,
        ),
        3600,
    )
    assert row_counts(app) == before
    # Sending has its own budget; the other member has theirs.
    people.send(pac, cid, "sigo escribiendo")
    mine = people.send(psi, cid, "yo también")
    assert client.delete(f"/api/chat/mensajes/{mine['id']}", headers=psi.headers).status_code == 200
    a.disconnect()


def test_search_is_limited_per_user(make_app):
    app = make_app(RATELIMIT_SEARCH="2 per hour")
    people = people_of(app)
    psi, pac, cid = people.pair()
    client = app.test_client()
    url = f"/api/chat/mensajes/buscar?conversacionId={cid}&q=hola"
    for _ in range(2):
        assert client.get(url, headers=pac.headers).status_code == 200
    _assert_limited(client.get(url, headers=pac.headers), 3600)
    assert client.get(url, headers=psi.headers).status_code == 200
    # The rest of the API is not spent by searching.
    assert (
        client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=pac.headers).status_code
        == 200
    )
