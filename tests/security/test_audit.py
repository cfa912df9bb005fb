"""The audit log: a JSON line per security event, and no content, token or password in it."""

from __future__ import annotations

import json

from tests.conftest import PASSWORD
from tests.security.conftest import people_of
from tests.support.testclient import socket

SECRET_TEXT = "mi-secreto-clinico-ÑandúЖ"
WRONG_PASSWORD = "adivinanza-incorrecta-7731"


def test_audit_log_records_events_without_content(make_app, tmp_path):
    log_path = tmp_path / "audit.jsonl"
    app = make_app(AUDIT_LOG=str(log_path), RATELIMIT_MESSAGES="2 per minute")
    people = people_of(app)
    psi, pac, cid = people.pair()
    client = app.test_client()
    stranger = people.register()

    bad_login = client.post(
        "/api/auth/login", json={"email": pac.email, "password": WRONG_PASSWORD}
    )
    assert bad_login.status_code == 401
    people.send(pac, cid, SECRET_TEXT + " http")
    a = socket(app, pac.token)
    s = socket(app, stranger.token)
    send = {"conversacionId": cid, "contenido": SECRET_TEXT + " socket"}
    assert a.emit("chat:send-message", send, callback=True)["success"]  # 2 of 2, with HTTP's
    assert a.emit("chat:send-message", send, callback=True)["code"] == "rate_limited"
    too_long = {"conversacionId": cid, "contenido": SECRET_TEXT * 3000}
    assert client.post("/api/chat/mensajes", json=too_long, headers=psi.headers).status_code == 413
    assert s.emit("chat:join-room", {"conversacionId": cid}, callback=True)["code"] == "forbidden"
    assert s.emit("chat:sync", {"conversacionId": SECRET_TEXT}, callback=True)["code"] == "invalid"
    assert (
        client.get(
            "/api/auth/me", headers={"Authorization": "Bearer " + pac.token + "x"}
        ).status_code
        == 401
    )
    s.disconnect()
    assert client.post("/api/auth/logout", headers=pac.headers).status_code == 200
    assert not a.is_connected()

    lines = log_path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    events = [r["event"] for r in records]
    for expected in (
        "register",
        "login_success",
        "login_failure",
        "connect",
        "disconnect",
        "rate_limited",
        "validation_failure",
        "authorization_failure",
        "logout",
    ):
        assert expected in events, expected
    for r in records:
        # The socket test client has no address; the HTTP one is 127.0.0.1.
        assert r["ip"] in ("127.0.0.1", "unknown")
        assert set(r) <= {
            "ts",
            "event",
            "userId",
            "ip",
            "sid",
            "socketEvent",
            "method",
            "path",
            "status",
            "code",
        }
    assert {"event": "login_failure", "code": "unauthenticated"}.items() <= next(
        r for r in records if r["event"] == "login_failure"
    ).items()
    forbidden = next(r for r in records if r.get("socketEvent") == "chat:join-room")
    assert (forbidden["event"], forbidden["userId"]) == ("authorization_failure", stranger.id)
    limited = next(r for r in records if r["event"] == "rate_limited")
    assert (limited["userId"], limited["socketEvent"]) == (pac.id, "chat:send-message")

    text = log_path.read_text(encoding="utf-8")
    for secret in (
        SECRET_TEXT,
        "clinico",
        PASSWORD,
        WRONG_PASSWORD,
        pac.token,
        psi.token,
        stranger.token,
    ):
        assert secret not in text
    for person in (pac, psi, stranger):
        assert person.token.split(".")[2] not in text  # not even a token's signature
        assert person.email not in text
