"""Response models: the JSON the HTTP API answers with, for its OpenAPI description."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorCode = Literal[
    "unauthenticated",
    "forbidden",
    "not_found",
    "invalid",
    "conflict",
    "too_large",
    "rate_limited",
    "unavailable",
    "internal",
]
Timestamp = str  # ISO 8601 in UTC with milliseconds, as JavaScript's toISOString() writes it
Uuid = str


class Out(BaseModel):
    """A response body: exactly these fields, no others."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Out):
    """Every failure."""

    success: Literal[False]
    message: str
    code: ErrorCode
    retryAfter: int | None = Field(None, description="seconds, with rate_limited")
    authenticated: Literal[False] | None = Field(None, description="with GET /api/auth/user")


class OkOut(Out):
    """A success with nothing more to say."""

    success: Literal[True]


class UserOut(Out):
    """`user` of the auth routes."""

    id: Uuid
    email: str
    nombreCompleto: str
    rol: Literal["Paciente", "Psicólogo"]


class UserResponse(OkOut):
    """POST /api/auth/register, GET /api/auth/me."""

    user: UserOut


class ProfileUserOut(UserOut):
    """`user` as the MiauBloom app's login and session routes answer it."""

    perfilCompleto: bool = Field(description="the user has the profile of their role")


class LoginResponse(OkOut):
    """POST /api/auth/login (the token also goes out as the auth_token cookie)."""

    user: ProfileUserOut
    token: str


class SessionUserResponse(OkOut):
    """GET /api/auth/user (401 answers authenticated: false)."""

    authenticated: Literal[True]
    user: ProfileUserOut


class MensajeOut(Out):
    """A message."""

    id: Uuid
    conversacionId: Uuid
    seq: int = Field(ge=1)
    remitente: Literal["paciente", "psicologo"]
    remitenteId: Uuid
    contenido: str
    leido: bool
    createdAt: Timestamp
    clientId: str | None
    version: int = Field(ge=1, description="1 when sent, +1 per edit")
    editadoAt: Timestamp | None = Field(description="when it was last edited")
    eliminado: bool = Field(description="deleted: contenido is then empty")


class UltimoMensajeOut(Out):
    """The last-message preview of the conversation list."""

    contenido: str
    remitente: Literal["paciente", "psicologo"]
    fechaHora: Timestamp
    leido: bool
    editadoAt: Timestamp | None
    eliminado: bool


class OtroUsuarioOut(Out):
    """The other member of a conversation."""

    id: Uuid
    nombre: str
    email: str
    avatar: str = Field(description="foto_perfil, else the app's default picture for the role")
    online: bool


class ConversacionSummaryOut(Out):
    """One row of the conversation list."""

    id: Uuid
    otroUsuario: OtroUsuarioOut
    ultimoMensaje: UltimoMensajeOut | None
    mensajesNoLeidos: int = Field(ge=0)
    cerrada: bool
    lastSeq: int = Field(ge=0)
    createdAt: Timestamp
    updatedAt: Timestamp


class ConversacionesResponse(OkOut):
    """GET /api/chat/conversaciones."""

    conversaciones: list[ConversacionSummaryOut]
    total: int = Field(ge=0)
    totalMensajesNoLeidos: int = Field(ge=0)


class ConversacionOut(Out):
    """A conversation's members."""

    id: Uuid
    psicologoId: Uuid
    pacienteId: Uuid


class ConversacionResponse(OkOut):
    """POST /api/chat/conversaciones."""

    conversacion: ConversacionOut


class MensajesResponse(OkOut):
    """GET /api/chat/mensajes."""

    mensajes: list[MensajeOut]
    hasMore: bool


class MensajeResponse(OkOut):
    """POST /api/chat/mensajes."""

    mensaje: MensajeOut


class VersionOut(Out):
    """One version of a message's text."""

    version: int = Field(ge=1)
    contenido: str
    editadoAt: Timestamp | None = Field(description="null for the text as sent")


class VersionesResponse(OkOut):
    """GET /api/chat/mensajes/{mensaje_id}/versiones (oldest first; [] once deleted)."""

    versiones: list[VersionOut]


class LeidosResponse(OkOut):
    """POST /api/chat/mensajes/leidos."""

    leidos: int = Field(ge=0)
    hastaSeq: int = Field(ge=0)
    messageId: Uuid | None


class NoLeidosResponse(OkOut):
    """GET /api/chat/no-leidos."""

    totalMensajesNoLeidos: int = Field(ge=0)


class ContactoOut(UserOut):
    """Someone the caller may chat with, and their conversation if one exists."""

    online: bool
    conversacionId: Uuid | None


class ContactosResponse(OkOut):
    """GET /api/chat/contactos."""

    contactos: list[ContactoOut]
    total: int = Field(ge=0)


class HealthResponse(OkOut):
    """GET /api/health (503 when the database does not answer)."""

    db: Literal["ok"]
    redis: Literal["ok", "unavailable", "none"] = Field(
        description="the Redis of the queue and rate limits; 'none' when not configured"
    )


class NotificacionesResponse(OkOut):
    """GET and PUT /api/chat/notificaciones."""

    correo: bool = Field(description="e-mail notifications of unread messages are on")
    disponible: bool = Field(description="this server sends e-mail (SMTP_URL is set)")


class MiembroOut(Out):
    """A member of an exported conversation."""

    id: Uuid
    nombre: str
    rol: str


class ExportConversacionOut(Out):
    """The exported conversation."""

    id: Uuid
    createdAt: Timestamp
    lastSeq: int = Field(ge=0, description="the export holds the messages up to this seq")
    psicologo: MiembroOut
    paciente: MiembroOut


class ExportMensajeOut(Out):
    """An exported message: a tombstone has contenido "" and no versions."""

    id: Uuid
    seq: int = Field(ge=1)
    remitente: Literal["paciente", "psicologo"]
    remitenteId: Uuid
    remitenteNombre: str
    contenido: str
    createdAt: Timestamp
    clientId: str | None
    leido: bool
    leidoAt: Timestamp | None
    version: int = Field(ge=1)
    editadoAt: Timestamp | None
    eliminado: bool
    eliminadoAt: Timestamp | None
    versiones: list[VersionOut] = Field(description="oldest first, the current text last")


class ExportResponse(Out):
    """GET /api/chat/exportar?formato=json: a download, not an API answer (no success field)."""

    formato: Literal["miaubloom-chat-export"]
    version: Literal[1]
    exportadoAt: Timestamp
    exportadoPor: Uuid
    conversacion: ExportConversacionOut
    mensajes: list[ExportMensajeOut] = Field(description="every message, ascending by seq")
