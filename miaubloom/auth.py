"""Passwords (bcrypt), tokens (PyJWT) and who is calling."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, cast

import bcrypt
import jwt
from flask import current_app
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from werkzeug.datastructures import Headers

from .errors import Forbidden, Unauthenticated
from .extensions import db
from .models import ROL_PACIENTE, ROL_PSICOLOGO, TokenRevocado, utcnow

# bcrypt reads at most 72 bytes; bcryptjs (the Next.js app) truncates the same way.
BCRYPT_MAX_BYTES = 72
ROLES = {"Paciente": ROL_PACIENTE, "Psicólogo": ROL_PSICOLOGO, "Psicologo": ROL_PSICOLOGO}
# Real hashes to compare against when the email is unknown, so timing tells nothing:
# one per cost, as costly as the hashes hash_password writes.
_DUMMY_HASHES = {
    rounds: bcrypt.hashpw(b"miaubloom-dummy", bcrypt.gensalt(rounds)) for rounds in (4, 10)
}


def normalize_rol(rol: object) -> str | None:
    """The stored spelling of a role, or None if it is not one."""
    return ROLES.get(rol) if isinstance(rol, str) else None


def normalize_email(email: str) -> str:
    """An address in the one form it is stored and looked up in: trimmed, lower-case, NFC.

    Compared byte for byte after this (Users.email is utf8mb4_bin on MySQL), so "pác1@…"
    and "pac1@…" are two addresses. Lower-case and trimmed as the MiauBloom app looks
    addresses up; NFC so that an accent typed as one character or as a letter plus a
    combining mark is the same address, not two that look alike.
    """
    return unicodedata.normalize("NFC", email.strip().lower())


def hash_password(password: str) -> str:
    """A bcrypt hash the Next.js app can verify too."""
    return bcrypt.hashpw(password.encode()[:BCRYPT_MAX_BYTES], bcrypt.gensalt(_rounds())).decode()


def _rounds() -> int:
    return 4 if current_app.testing else 10


def check_password(password: str, hashed: str | None) -> bool:
    """Whether password matches the stored hash ($2a$, $2b$ or $2y$)."""
    candidate = password.encode()[:BCRYPT_MAX_BYTES]
    if not hashed:
        bcrypt.checkpw(candidate, _DUMMY_HASHES[_rounds()])
        return False
    try:
        return bcrypt.checkpw(candidate, hashed.encode())
    except ValueError:
        return False


@dataclass(frozen=True)
class Caller:
    """The authenticated user behind a request or socket, from the token alone."""

    user_id: str
    rol: str
    email: str
    token_hash: str
    expires_at: datetime

    @property
    def is_psicologo(self) -> bool:
        """True for psychologists."""
        return self.rol == ROL_PSICOLOGO

    @property
    def remitente(self) -> str:
        """The `remitente` value of this caller's messages."""
        return "psicologo" if self.is_psicologo else "paciente"

    def expired(self) -> bool:
        """Whether the token has expired since it was checked."""
        return utcnow() >= self.expires_at


def issue_token(user_id: str, rol: str, email: str, nombre: str) -> str:
    """A token with the claims the MiauBloom app issues."""
    ttl = timedelta(seconds=current_app.config["JWT_TTL_SECONDS"])
    now = datetime.now(UTC)
    claims = {
        "userId": user_id,
        "rol": rol,
        "email": email,
        "nombreCompleto": nombre,
        "iat": now,
        "exp": now + ttl,
        # Two logins within one second must still be two sessions (logout ends one).
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, current_app.config["JWT_SECRET"], algorithm="HS256")


def token_hash(token: str) -> str:
    """The key under which a token is revoked (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


# 9999-12-31T23:59:59Z, the last second a datetime holds: a later exp is no date at all.
MAX_TIMESTAMP = 253402300799
NumericDate = Annotated[
    Annotated[int, Field(strict=True)] | Annotated[float, Field(strict=True, allow_inf_nan=False)],
    Field(ge=0, le=MAX_TIMESTAMP),
]


class Claims(BaseModel):
    """The claims the chat reads from a token, each of the type the MiauBloom app writes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    userId: Annotated[str, Field(strict=True, min_length=1, max_length=64)]
    rol: Annotated[str, Field(strict=True)]
    email: Annotated[str, Field(strict=True, max_length=255)] = ""
    exp: NumericDate
    iat: NumericDate | None = None
    nbf: NumericDate | None = None

    @field_validator("rol")
    @classmethod
    def _rol(cls, value: str) -> str:
        rol = normalize_rol(value)
        if rol is None:
            raise ValueError("not a role")
        return rol


# What a hostile token makes PyJWT raise besides its own errors: a string or an
# infinite exp (OverflowError), a header or payload nested past the JSON decoder's
# stack (RecursionError).
_UNREADABLE = (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError)


def verify_token(token: object) -> Claims:
    """A token's claims, checked (signature, expiry, types), or Unauthenticated; no database."""
    if not token or not isinstance(token, str):
        raise Unauthenticated()
    try:
        claims = jwt.decode(
            token,
            current_app.config["JWT_SECRET"],
            algorithms=["HS256"],
            options={"require": ["exp"]},
        )
        return Claims.model_validate(claims)
    except (*_UNREADABLE, ValidationError) as exc:
        raise Unauthenticated() from exc


def authenticate(token: str | None) -> Caller:
    """The caller a token names, or Unauthenticated."""
    claims = verify_token(token)
    assert token is not None  # verify_token refused anything else
    hashed = token_hash(token)
    if db.session.get(TokenRevocado, hashed) is not None:
        raise Unauthenticated("Sesión cerrada")
    expires = datetime.fromtimestamp(claims.exp, UTC).replace(tzinfo=None)
    return Caller(claims.userId, claims.rol, claims.email, hashed, expires)


def revoke(caller: Caller) -> None:
    """Refuse this caller's token from now until it expires."""
    if db.session.get(TokenRevocado, caller.token_hash) is None:
        db.session.add(TokenRevocado(token_hash=caller.token_hash, expires_at=caller.expires_at))
    db.session.execute(db.delete(TokenRevocado).where(TokenRevocado.expires_at < utcnow()))
    db.session.commit()


def token_from(
    headers: Headers | Mapping[str, str], cookies: Mapping[str, str], auth: object = None
) -> str | None:
    """The token, from the Socket.IO auth object, the Bearer header or the cookie."""
    if isinstance(auth, Mapping) and isinstance(auth.get("token"), str) and auth["token"]:
        return cast(str, auth["token"])
    header = headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    return cookies.get(current_app.config["AUTH_COOKIE_NAME"]) or None


def _plain(text: str) -> str:
    """Lowercase without accents: "Psicólogo" and "psicologo" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def check_claims(caller: Caller, payload: object) -> None:
    """A payload's userId and rol, when present, must be the caller's own, or Forbidden.

    The payload is raw data (a dict, a query string) or a parsed model. The
    client's claims are never trusted, only compared (docs/PROTOCOL.md, "Who is calling").
    """
    if isinstance(payload, Mapping):
        user_id, rol = payload.get("userId"), payload.get("rol")
    else:
        user_id, rol = getattr(payload, "userId", None), getattr(payload, "rol", None)
    if user_id is not None and user_id != caller.user_id:
        raise Forbidden("userId no corresponde al usuario autenticado")
    if rol is not None and (
        not isinstance(rol, str) or _plain(rol) not in (caller.remitente, _plain(caller.rol))
    ):
        raise Forbidden("rol no corresponde al usuario autenticado")
