"""Payload validation shared by both transports: one pydantic model per payload."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from config import MESSAGE_MAX_BYTES

from ..auth import normalize_email, normalize_rol
from ..errors import Invalid, TooLarge

DEFAULT_PAGE = 50
MAX_PAGE = 200
# The seq column is a 32-bit INT: no conversation gets past it, and a larger number
# would only reach the database to fail there.
MAX_SEQ = 2**31 - 1


# Bidirectional controls: embeddings, overrides, isolates (U+202A–202E, U+2066–2069)
# and the implicit marks (U+200E, U+200F, U+061C). No name or address needs one, and
# each can make the text around it read in another order (display spoofing).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def without_bidi(value: str) -> str:
    """value with its bidirectional controls removed (names stored by other writers)."""
    if BIDI_CONTROLS.isdisjoint(value):
        return value
    return "".join(ch for ch in value if ch not in BIDI_CONTROLS)


def text(
    min_length: int = 0,
    max_length: int | None = None,
    strip: bool = False,
    lower: bool = False,
    plain: bool = False,
) -> AfterValidator:
    """A string's checks: storable as UTF-8, optionally stripped and lowered, bounded.

    Used as Annotated[str, Field(strict=True), text(...)], which type checkers read as str.
    plain: no bidirectional control (for what is shown beside other text: names, emails).
    """

    def check(value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PydanticCustomError("unicode", "texto con caracteres no válidos") from exc
        if plain and not BIDI_CONTROLS.isdisjoint(value):
            raise PydanticCustomError(
                "bidi", "no puede contener caracteres de control de dirección"
            )
        value = value.strip() if strip else value
        value = value.lower() if lower else value
        if len(value) < min_length:
            raise PydanticCustomError(
                "too_short", "debe tener al menos {n} caracteres", {"n": min_length}
            )
        if max_length is not None and len(value) > max_length:
            raise PydanticCustomError(
                "too_long", "debe tener como mucho {n} caracteres", {"n": max_length}
            )
        return value

    return AfterValidator(check)


def _uuid(value: str) -> str:
    """A UUID in its canonical lowercase form."""
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise PydanticCustomError("uuid", "identificador no válido") from exc


def _rol(value: str) -> str:
    """A role in its stored spelling ("Psicologo" is accepted for "Psicólogo")."""
    rol = normalize_rol(value)
    if rol is None:
        raise PydanticCustomError("rol", "rol debe ser Paciente o Psicólogo")
    return rol


Text = Annotated[str, Field(strict=True), text()]
Rol = Annotated[str, Field(strict=True), AfterValidator(_rol)]
Id = Annotated[
    str,
    Field(strict=True, max_length=64, json_schema_extra={"format": "uuid"}),
    AfterValidator(_uuid),
]
ClientId = Annotated[str, Field(strict=True), text(min_length=1, max_length=64)]
Email = Annotated[
    str,
    Field(strict=True),
    text(min_length=3, max_length=255, strip=True, lower=True, plain=True),
    AfterValidator(normalize_email),
]
Password = Annotated[str, Field(strict=True), text(min_length=8, max_length=72)]
LoginPassword = Annotated[str, Field(strict=True), text(max_length=1024)]
Nombre = Annotated[
    str, Field(strict=True), text(min_length=1, max_length=255, strip=True, plain=True)
]
Seq = Annotated[int, Field(strict=True, ge=0, le=MAX_SEQ)]
Limit = Annotated[int, Field(strict=True, ge=1, le=MAX_PAGE)]


class Payload(BaseModel):
    """A client payload: unknown fields are ignored, as the original server did."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RegisterIn(Payload):
    """POST /api/auth/register."""

    email: Email
    password: Password
    nombreCompleto: Nombre
    rol: Rol

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        local, _, domain = value.partition("@")
        if not local or "." not in domain or " " in value or domain.startswith("."):
            raise PydanticCustomError("email", "email no válido")
        return value

    @field_validator("password")
    @classmethod
    def _password_bytes(cls, value: str) -> str:
        # bcrypt ignores what lies past 72 bytes: refuse it rather than drop it.
        if len(value.encode("utf-8")) > 72:
            raise PydanticCustomError("password", "contraseña demasiado larga")
        return value


class LoginIn(Payload):
    """POST /api/auth/login: `rol`, when given, must be the account's (the app's login pages)."""

    email: Email
    password: LoginPassword
    rol: Rol | None = None


class PacienteIn(Payload):
    """POST /api/psicologo/asignar-paciente and liberar-paciente."""

    pacienteId: Id


class OpenConversationIn(Payload):
    """POST /api/chat/conversaciones."""

    otroUsuarioId: Id


class ConversationIn(Payload):
    """Any event that names one conversation (join, leave, typing)."""

    conversacionId: Id
    userId: Text | None = None
    rol: Text | None = None


class SendMessageIn(ConversationIn):
    """chat:send-message and POST /api/chat/mensajes."""

    contenido: Text
    clientId: ClientId | None = None

    @field_validator("contenido")
    @classmethod
    def _contenido(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            raise PydanticCustomError("empty", "el mensaje está vacío")
        # MAX_MESSAGE_LENGTH counts code points; the column's limit counts UTF-8 bytes.
        limit = (info.context or {}).get("max_length", MESSAGE_MAX_BYTES)
        if len(value) > limit:
            raise PydanticCustomError(
                "too_large", "el mensaje supera {limit} caracteres", {"limit": limit}
            )
        if len(value.encode("utf-8")) > MESSAGE_MAX_BYTES:
            raise PydanticCustomError(
                "too_large", "el mensaje supera {limit} bytes", {"limit": MESSAGE_MAX_BYTES}
            )
        return value


class MarkReadIn(ConversationIn):
    """chat:mark-read and POST /api/chat/mensajes/leidos."""

    hastaSeq: Seq | None = None
    messageId: Id | None = None


class SyncIn(ConversationIn):
    """chat:sync: the messages after afterSeq."""

    afterSeq: Seq
    limit: Limit = DEFAULT_PAGE


class ConversationsQuery(Payload):
    """GET /api/chat/conversaciones query string."""

    incluirCerradas: bool = Field(
        False, description="1: also the conversations closed by a reassignment (cerrada: true)"
    )


class HistoryQuery(Payload):
    """GET /api/chat/mensajes query string (values arrive as text)."""

    conversacionId: Id
    after: Annotated[int, Field(ge=0)] | None = None
    before: Annotated[int, Field(ge=1)] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE

    @field_validator("after", "before", "limit", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,12}", value.strip()):
            raise PydanticCustomError("int", "debe ser un número entero")
        return value

    @property
    def paged(self) -> bool:
        """Whether after, before or limit was given; with none, it is the app's history call."""
        return bool(self.model_fields_set & {"after", "before", "limit"})


class NotificacionesIn(Payload):
    """PUT /api/chat/notificaciones: e-mail notifications on or off."""

    correo: Annotated[bool, Field(strict=True)]
    userId: Text | None = None
    rol: Text | None = None


class MessageIn(Payload):
    """chat:delete-message and DELETE /api/chat/mensajes/<id> (the id from the path)."""

    messageId: Id
    userId: Text | None = None
    rol: Text | None = None


class EditBody(Payload):
    """PATCH /api/chat/mensajes/<id> body: the new text, and the version the client saw."""

    contenido: Text
    version: Annotated[int, Field(strict=True, ge=1)]
    userId: Text | None = None
    rol: Text | None = None

    @field_validator("contenido")
    @classmethod
    def _contenido(cls, value: str, info: ValidationInfo) -> str:
        # The same rules as sending, from the one place they are written.
        return SendMessageIn._contenido(value, info)


class EditMessageIn(MessageIn, EditBody):
    """chat:edit-message, and PATCH /api/chat/mensajes/<id> with the id from the path."""


class SearchQuery(Payload):
    """GET /api/chat/mensajes/buscar query string."""

    conversacionId: Id
    q: Annotated[str, Field(strict=True), text(min_length=2, max_length=200, strip=True)]
    before: Annotated[int, Field(ge=1)] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE

    @field_validator("before", "limit", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        return HistoryQuery._digits(value)


class ExportQuery(Payload):
    """GET /api/chat/exportar query string."""

    conversacionId: Id
    formato: Literal["json", "pdf"]


M = TypeVar("M", bound=Payload)


def parse(model: type[M], data: object, **context: Any) -> M:
    """Validate a payload, raising Invalid (or TooLarge for an oversized message)."""
    if not isinstance(data, dict):
        raise Invalid("Se esperaba un objeto JSON")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "payload"
        message = f"{field}: {first['msg']}"
        if any(err["type"] == "too_large" for err in exc.errors()):
            raise TooLarge(message) from None
        raise Invalid(message) from None
