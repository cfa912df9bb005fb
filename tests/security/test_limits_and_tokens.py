"""Sizes, tokens, cookies, headers and origins, through the in-process clients."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from config import Config, ConfigError
from miaubloom import create_app
from miaubloom.auth import authenticate, revoke
from miaubloom.extensions import socketio
from tests.security.conftest import errors_of, people_of, row_counts
from tests.support.testclient import socket

UUID0 = "00000000-0000-4000-8000-000000000000"


def _token(app, person, seconds: float) -> str:  # type: ignore[no-untyped-def]
    claims = {"userId": person.id, "rol": person.rol, "email": person.email}
    claims["exp"] = datetime.now(UTC) + timedelta(seconds=seconds)
    return jwt.encode(claims, app.config["JWT_SECRET"], algorithm="HS256")


def test_http_body_over_the_limit_is_too_large(make_app):
    # The body limit must leave room for a whole message: with messages of 100 code
    # points, 8 KiB does; the padding (an unknown field) is what makes this body too big.
    app = make_app(MAX_CONTENT_LENGTH=8192, MAX_MESSAGE_LENGTH=100)
    _, pac, cid = people_of(app).pair()
    before = row_counts(app)
    r = app.test_client().post(
        "/api/chat/mensajes",
        json={"conversacionId": cid, "contenido": "hola", "relleno": "x" * 9000},
        headers=pac.headers,
    )
    assert (r.status_code, r.json["code"], r.json["success"]) == (413, "too_large", False)
    assert r.json["message"] == "Cuerpo de la solicitud demasiado grande"
    assert row_counts(app) == before


@pytest.mark.parametrize(
    "settings",
    [
        {"SOCKETIO_MAX_BUFFER": 65536},
        {"MAX_CONTENT_LENGTH": 65536},
        {"MAX_CONTENT_LENGTH": 8192, "MAX_MESSAGE_LENGTH": 400},
        {"MAX_MESSAGE_LENGTH": 0},
        {"PAGE_MAX_BYTES": 0},
        {"LEGACY_HISTORY_MAX": -1},
    ],
)
def test_limits_that_would_cut_a_message_off_refuse_to_start(make_app, settings):
    with pytest.raises(ConfigError) as stopped:
        make_app(**settings)
    assert next(iter(settings)) in str(stopped.value)


def test_message_length_page_size_and_client_id(make_app):
    app = make_app(MAX_MESSAGE_LENGTH=10)
    _psi, pac, cid = people_of(app).pair()
    client = app.test_client()
    before = row_counts(app)

    def send(**body):  # type: ignore[no-untyped-def]
        return client.post(
            "/api/chat/mensajes", json={"conversacionId": cid, **body}, headers=pac.headers
        )

    r = send(contenido="x" * 11)
    assert (r.status_code, r.json["code"]) == (413, "too_large")
    assert send(contenido="  " + "x" * 10 + "  ").status_code == 201  # stripped, then counted
    r = send(contenido="ok", clientId="c" * 65)
    assert (r.status_code, r.json["code"]) == (400, "invalid")
    r = send(contenido="ok", clientId="")
    assert (r.status_code, r.json["code"]) == (400, "invalid")
    for limit in ("0", "201", "-1", "abc", "1e3", "9" * 40):
        r = client.get(
            f"/api/chat/mensajes?conversacionId={cid}&limit={limit}", headers=pac.headers
        )
        assert (r.status_code, r.json["code"]) == (400, "invalid"), limit
    assert row_counts(app)[2] == before[2] + 1

    a = socket(app, pac.token)
    ack = a.emit("chat:send-message", {"conversacionId": cid, "contenido": "y" * 11}, callback=True)
    assert (ack["success"], ack["code"]) == (False, "too_large")
    assert errors_of(a)[0]["code"] == "too_large"
    ack = a.emit(
        "chat:send-message",
        {"conversacionId": cid, "contenido": "y", "clientId": "c" * 65},
        callback=True,
    )
    assert ack["code"] == "invalid"
    for limit in (0, 201, "50", 1.5, None):
        ack = a.emit(
            "chat:sync", {"conversacionId": cid, "afterSeq": 0, "limit": limit}, callback=True
        )
        assert ack["code"] == "invalid", limit
    assert row_counts(app)[2] == before[2] + 1
    a.disconnect()


def test_expired_and_tampered_tokens_are_refused_on_connect(make_app):
    app = make_app()
    ana = people_of(app).register()
    forged = jwt.encode(
        {"userId": ana.id, "rol": ana.rol, "exp": datetime.now(UTC) + timedelta(hours=1)},
        "another-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    header, payload, signature = ana.token.split(".")
    tampered = f"{header}.{payload[:-2]}xx.{signature}"
    none_alg = jwt.encode({"userId": ana.id, "rol": ana.rol, "exp": 9999999999}, None, "none")
    for token in (_token(app, ana, -5), forged, tampered, none_alg, "x" * 5000, ""):
        client = socketio.test_client(app, auth={"token": token})
        assert not client.is_connected(), token[:40]
        r = app.test_client().get(
            "/api/chat/no-leidos", headers={"Authorization": f"Bearer {token}"}
        )
        assert (r.status_code, r.json["code"]) == (401, "unauthenticated")


def _signed(app, payload: str, header: str = '{"alg":"HS256","typ":"JWT"}') -> str:  # type: ignore[no-untyped-def]
    """A token correctly signed with the app's secret over exactly this JSON text."""
    import base64
    import hashlib
    import hmac

    def part(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    signing_input = part(header) + "." + part(payload)
    key = app.config["JWT_SECRET"].encode()
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


# Correctly signed tokens whose claims have the wrong type or an impossible value.
BAD_CLAIMS = {
    "exp as a string": {"exp": '"9999999999"'},
    "exp at 10^13": {"exp": str(10**13)},
    "exp past 2^63": {"exp": str(2**64)},
    "exp 1e300": {"exp": "1e300"},
    "exp Infinity": {"exp": "Infinity"},
    "exp NaN": {"exp": "NaN"},
    "exp true": {"exp": "true"},
    "exp null": {"exp": "null"},
    "exp a list": {"exp": "[9999999999]"},
    "no exp": {"exp": None},
    "iat as a string": {"iat": '"1700000000"'},
    "iat Infinity": {"iat": "Infinity"},
    "iat an object": {"iat": "{}"},
    "nbf as a string": {"nbf": '"0"'},
    "nbf Infinity": {"nbf": "-Infinity"},
    "userId a number": {"userId": "123"},
    "userId a list": {"userId": '["x"]'},
    "userId empty": {"userId": '""'},
    "userId null": {"userId": "null"},
    "userId huge": {"userId": '"' + "x" * 5000 + '"'},
    "rol a number": {"rol": "1"},
    "rol unknown": {"rol": '"Admin"'},
    "rol a list": {"rol": '["Paciente"]'},
    "email a number": {"email": "5"},
    "email a list": {"email": '["a@b.c"]'},
    "email an object": {"email": '{"a": 1}'},
    "email true": {"email": "true"},
}


def _claims_json(person, **raw: str | None) -> str:  # type: ignore[no-untyped-def]
    """The payload text: the person's good claims, with some replaced by raw JSON (None drops)."""
    good = {
        "userId": json.dumps(person.id),
        "rol": json.dumps(person.rol),
        "email": json.dumps(person.email),
        "exp": str(int(time.time()) + 3600),
        "iat": str(int(time.time())),
    }
    merged = {**good, **raw}
    return "{" + ", ".join(f'"{k}": {v}' for k, v in merged.items() if v is not None) + "}"


def test_claims_of_the_wrong_type_are_unauthenticated(make_app, caplog):
    # Limits on: the limiter reads the token too (to key the limits by user).
    app = make_app()
    _psi, pac, cid = people_of(app).pair()
    deep = "[" * 5000 + "]" * 5000
    tokens = {name: _signed(app, _claims_json(pac, **raw)) for name, raw in BAD_CLAIMS.items()}
    tokens["payload an array"] = _signed(app, "[1]")
    tokens["payload nested 5,000 deep"] = _signed(app, _claims_json(pac, x=deep))
    tokens["header nested 5,000 deep"] = _signed(app, _claims_json(pac), header=deep)
    good = _signed(app, _claims_json(pac))
    client = app.test_client(use_cookies=False)  # the Cookie header below is sent as written
    body = {"conversacionId": cid, "contenido": "hola"}
    before = row_counts(app)
    for name, token in {"valid (control)": good, **tokens}.items():
        bearer = {"Authorization": f"Bearer {token}"}
        answers = [
            client.get("/api/chat/no-leidos", headers=bearer),
            client.post("/api/chat/mensajes", json=body, headers=bearer),
        ]
        answers.append(client.get("/api/auth/me", headers={"Cookie": f"auth_token={token}"}))
        sock = socketio.test_client(app, auth={"token": token})
        if token is good:
            assert [r.status_code for r in answers] == [200, 201, 200]
            assert sock.is_connected()
            sock.disconnect()
            before = row_counts(app)
            continue
        for r in answers:
            assert (r.status_code, r.json["code"]) == (401, "unauthenticated"), name
        assert not sock.is_connected(), name
    assert row_counts(app) == before
    assert "Traceback" not in caplog.text and "Failed to rate limit" not in caplog.text


def test_a_socket_whose_token_expires_is_cut_off(make_app):
    app = make_app()
    _psi, pac, cid = people_of(app).pair()
    client = socket(app, _token(app, pac, 1.5))
    assert client.emit("chat:join-room", {"conversacionId": cid}, callback=True)["success"]
    time.sleep(2)
    ack = client.emit("chat:send-message", {"conversacionId": cid, "contenido": "x"}, callback=True)
    assert (ack["success"], ack["code"]) == (False, "unauthenticated")
    assert not client.is_connected()
    assert row_counts(app)[2] == 0


def test_logout_ends_the_sockets_opened_with_that_token(make_app):
    app = make_app()
    people = people_of(app)
    ana = people.register()
    other_login = app.test_client().post(
        "/api/auth/login", json={"email": ana.email, "password": "contraseña-segura"}
    )
    same, other = socket(app, ana.token), socket(app, other_login.json["token"])
    r = app.test_client().post("/api/auth/logout", headers=ana.headers)
    assert r.status_code == 200
    assert not same.is_connected()
    assert other.is_connected()  # another login of the same user is another session
    assert not socketio.test_client(app, auth={"token": ana.token}).is_connected()
    other.disconnect()


def test_cookie_flags_in_testing_and_production(make_app, database_url, monkeypatch):
    app = make_app()
    ana = people_of(app).register()
    r = app.test_client().post(
        "/api/auth/login", json={"email": ana.email, "password": "contraseña-segura"}
    )
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    monkeypatch.setenv("MIAUBLOOM_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "production-secret-that-is-long-enough-for-hs256")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    prod = create_app(Config())
    assert not prod.testing
    r = prod.test_client().post(
        "/api/auth/login", json={"email": ana.email, "password": "contraseña-segura"}
    )
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_wildcard_origin_in_production(database_url, monkeypatch):
    monkeypatch.setenv("MIAUBLOOM_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "production-secret-that-is-long-enough-for-hs256")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://app.miaubloom.example,*")
    with pytest.raises(ConfigError, match="ALLOWED_ORIGINS"):
        create_app(Config())


def test_security_headers_on_page_and_api(client):
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    for r in (page, client.get("/api/health"), client.get("/api/nada"), client.get("/api/auth/me")):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "Content-Security-Policy" in r.headers
    assert client.get("/api/auth/me").headers["Cache-Control"] == "no-store"


def test_foreign_origins_get_no_cors_and_cannot_write(make_app):
    app = make_app(ALLOWED_ORIGINS=["https://app.miaubloom.example"])
    people = people_of(app)
    ana = people.register()
    client = app.test_client()
    good = {"Origin": "https://app.miaubloom.example"}
    evil = {"Origin": "https://evil.example"}
    r = client.get("/api/auth/me", headers={**ana.headers, **good})
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.miaubloom.example"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    r = client.get("/api/auth/me", headers={**ana.headers, **evil})
    assert "Access-Control-Allow-Origin" not in r.headers
    preflight = client.options(
        "/api/chat/mensajes",
        headers={**evil, "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    before = row_counts(app)
    r = client.post(
        "/api/chat/conversaciones", json={"otroUsuarioId": UUID0}, headers={**ana.headers, **evil}
    )
    assert (r.status_code, r.json["code"]) == (403, "forbidden")
    r = client.post("/api/auth/logout", headers={**ana.headers, **evil})
    assert (r.status_code, r.json["code"]) == (403, "forbidden")
    assert row_counts(app) == before
    assert client.get("/api/auth/me", headers=ana.headers).status_code == 200


def test_an_idle_socket_whose_token_expires_is_disconnected(make_app):
    app = make_app(SESSION_CHECK_SECONDS=0.2)
    ana = people_of(app).register()
    short, long = socket(app, _token(app, ana, 1.0)), socket(app, ana.token)
    deadline = time.monotonic() + 5
    while short.is_connected() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not short.is_connected()
    assert long.is_connected()
    long.disconnect()


def test_a_socket_whose_token_was_revoked_elsewhere_is_disconnected(make_app):
    # As after a logout in another process whose announcement was lost: the sweep finds it.
    app = make_app(SESSION_CHECK_SECONDS=0.2)
    ana = people_of(app).register()
    client = socket(app, ana.token)
    with app.test_request_context():
        revoke(authenticate(ana.token))
    deadline = time.monotonic() + 5
    while client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not client.is_connected()
