"""ChatError and its kinds: the one error type every layer raises."""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class ChatError(Exception):
    """A failure the caller should see: a code, an HTTP status and a message."""

    code = "internal"
    status = 500
    default_message = "Error interno"

    def __init__(self, message: str | None = None, **extra: object) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of this error."""
        return {"success": False, "message": self.message, "code": self.code, **self.extra}


class Unauthenticated(ChatError):
    code, status, default_message = "unauthenticated", 401, "No autenticado"


class Forbidden(ChatError):
    code, status, default_message = "forbidden", 403, "No autorizado"


class NotFound(ChatError):
    code, status, default_message = "not_found", 404, "No encontrado"


class Invalid(ChatError):
    code, status, default_message = "invalid", 400, "Datos inválidos"


class Conflict(ChatError):
    code, status, default_message = "conflict", 409, "Conflicto"


class TooLarge(ChatError):
    code, status, default_message = "too_large", 413, "Demasiado grande"


class RateLimited(ChatError):
    code, status, default_message = "rate_limited", 429, "Demasiadas solicitudes"


class Unavailable(ChatError):
    code, status, default_message = "unavailable", 503, "Servicio no disponible"


class Internal(ChatError):
    code, status, default_message = "internal", 500, "Error interno"


# Errors that mean the database cannot be reached right now, not a bad request.
DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def as_chat_error(exc: BaseException) -> ChatError:
    """Any exception as the ChatError the caller is told about."""
    if isinstance(exc, ChatError):
        return exc
    if isinstance(exc, DATABASE_DOWN):
        return Unavailable("Base de datos no disponible")
    return Internal()


def answered_with(code: str) -> None:
    """Record the code this request or event fails with: logging, metrics and audit read it."""
    g.error_code = code


def error_code() -> str | None:
    """The code this request or event failed with (answered_with), if it failed."""
    code: str | None = g.get("error_code")
    return code
