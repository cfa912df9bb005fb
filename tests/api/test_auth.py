"""Accounts: register, login, logout, me, tokens from the app, assigning patients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bcrypt
import jwt

from miaubloom.extensions import db
from miaubloom.models import User
from tests.conftest import PASSWORD


def _register(client, **over):
    body = {"email": "ana@test.miaubloom", "password": PASSWORD, "nombreCompleto": "Ana"}
    body.update({"rol": "Paciente", **over})
    return client.post("/api/auth/register", json=body)


def test_register_returns_the_user(client):
    r = _register(client, rol="Psicologo", email="  Ana@Test.MiauBloom ")
    assert r.status_code == 201
    user = r.json["user"]
    assert r.json["success"] is True
    assert user["email"] == "ana@test.miaubloom"
    assert user["rol"] == "Psicólogo"  # normalised
    assert set(user) == {"id", "email", "nombreCompleto", "rol"}


def test_register_twice_is_a_conflict(client):
    assert _register(client).status_code == 201
    r = _register(client, email="ANA@test.miaubloom")
    assert (r.status_code, r.json["code"]) == (409, "conflict")


def test_register_rejects_bad_input(client):
    cases = [
        {"rol": "Admin"},
        {"email": "not-an-email"},
        {"password": "short"},
        {"password": "é" * 40},  # 80 bytes: past what bcrypt reads
        {"nombreCompleto": "   "},
        {"email": 42},
    ]
    for over in cases:
        r = _register(client, **over)
        assert (r.status_code, r.json["code"], r.json["success"]) == (400, "invalid", False), over
    r = client.post("/api/auth/register", data="{not json", content_type="application/json")
    assert (r.status_code, r.json["code"]) == (400, "invalid")


def test_login_sets_token_and_cookie(client, app):
    _register(client)
    r = client.post("/api/auth/login", json={"email": "ana@test.miaubloom", "password": PASSWORD})
    assert r.status_code == 200
    claims = jwt.decode(r.json["token"], app.config["JWT_SECRET"], algorithms=["HS256"])
    assert {"userId", "rol", "email", "exp"} <= set(claims)
    assert claims["userId"] == r.json["user"]["id"]
    cookie = r.headers["Set-Cookie"]
    assert "auth_token=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # testing; production sets it (test_config)


def test_login_failures_share_one_message(client):
    _register(client)
    wrong_password = client.post(
        "/api/auth/login", json={"email": "ana@test.miaubloom", "password": "incorrecta"}
    )
    unknown = client.post(
        "/api/auth/login", json={"email": "nadie@test.miaubloom", "password": PASSWORD}
    )
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.json == unknown.json
    assert unknown.json["code"] == "unauthenticated"
    missing = client.post("/api/auth/login", json={"email": "ana@test.miaubloom"})
    assert (missing.status_code, missing.json["code"]) == (400, "invalid")


def test_me_with_header_or_cookie(client, people):
    ana = people.register("Paciente", "ana")
    r = client.get("/api/auth/me", headers=ana.headers)
    assert (r.status_code, r.json["user"]["id"]) == (200, ana.id)
    client.set_cookie("auth_token", ana.token)
    assert client.get("/api/auth/me").json["user"]["email"] == ana.email
    client.delete_cookie("auth_token")
    r = client.get("/api/auth/me")
    assert (r.status_code, r.json["code"]) == (401, "unauthenticated")


def test_bad_tokens_are_refused(client, app, people):
    ana = people.register()
    secret = app.config["JWT_SECRET"]
    claims = {"userId": ana.id, "rol": "Paciente", "email": ana.email}
    expired = jwt.encode(
        {**claims, "exp": datetime.now(UTC) - timedelta(seconds=5)}, secret, algorithm="HS256"
    )
    forged = jwt.encode(
        {**claims, "exp": datetime.now(UTC) + timedelta(hours=1)},
        "another-secret-that-is-long-enough-for-hs256",
    )
    no_exp = jwt.encode(claims, secret, algorithm="HS256")
    header, payload, _ = ana.token.split(".")
    tampered = f"{header}.{payload}x.{ana.token.split('.')[2]}"
    for token in (expired, forged, no_exp, tampered, "garbage", ""):
        r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert (r.status_code, r.json["code"]) == (401, "unauthenticated"), token


def test_tokens_issued_by_the_app_are_accepted(client, app, people):
    ana = people.register()
    # The Next.js app adds its own claims and may spell the role without the accent.
    token = jwt.encode(
        {
            "userId": ana.id,
            "rol": "Paciente",
            "email": ana.email,
            "nombreCompleto": "Ana",
            "fotoPerfil": None,
            "exp": datetime.now(UTC) + timedelta(days=7),
        },
        app.config["JWT_SECRET"],
        algorithm="HS256",
    )
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_hashes_written_by_the_app_verify(client, app):
    # bcryptjs writes $2a$ hashes; Python's bcrypt must accept them.
    _register(client)
    legacy = bcrypt.hashpw(b"clave-de-la-app", bcrypt.gensalt(4, prefix=b"2a")).decode()
    with app.app_context():
        user = db.session.scalar(db.select(User))
        user.password = legacy
        db.session.commit()
    r = client.post(
        "/api/auth/login", json={"email": "ana@test.miaubloom", "password": "clave-de-la-app"}
    )
    assert r.status_code == 200


def test_logout_revokes_the_token(client, people):
    ana = people.register()
    assert client.get("/api/auth/me", headers=ana.headers).status_code == 200
    r = client.post("/api/auth/logout", headers=ana.headers)
    assert r.status_code == 200
    assert "auth_token=;" in r.headers["Set-Cookie"]
    r = client.get("/api/auth/me", headers=ana.headers)
    assert (r.status_code, r.json["code"]) == (401, "unauthenticated")
    assert client.post("/api/auth/logout", headers=ana.headers).status_code == 200


def test_assign_and_release(client, people):
    psi, otro_psi, pac = (
        people.register("Psicólogo"),
        people.register("Psicólogo"),
        people.register(),
    )

    def assign(who, pid):
        return client.post(
            "/api/psicologo/asignar-paciente", json={"pacienteId": pid}, headers=who.headers
        )

    def release(who, pid):
        return client.post(
            "/api/psicologo/liberar-paciente", json={"pacienteId": pid}, headers=who.headers
        )

    assert assign(psi, pac.id).status_code == 200
    assert assign(psi, pac.id).status_code == 200  # already the caller's: fine
    assert (assign(otro_psi, pac.id).status_code, assign(otro_psi, pac.id).json["code"]) == (
        409,
        "conflict",
    )
    assert assign(pac, pac.id).json["code"] == "forbidden"
    assert assign(psi, "00000000-0000-4000-8000-000000000000").json["code"] == "not_found"
    assert assign(psi, psi.id).json["code"] == "not_found"  # not a patient
    assert assign(psi, "no-es-un-uuid").json["code"] == "invalid"
    assert (release(otro_psi, pac.id).status_code, release(otro_psi, pac.id).json["code"]) == (
        403,
        "forbidden",
    )
    assert release(psi, "00000000-0000-4000-8000-000000000000").json["code"] == "not_found"
    assert release(psi, pac.id).status_code == 200
    assert assign(otro_psi, pac.id).status_code == 200
    assert (
        client.post("/api/psicologo/asignar-paciente", json={"pacienteId": pac.id}).status_code
        == 401
    )
