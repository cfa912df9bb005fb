"""Every JSON shape of docs/PROTOCOL.md, once: pydantic models that both transports serialise.

The HTTP routes, the socket acks and events dump these models (model_construct
from stored rows, no validation on the way out), and api/openapi.py describes
the API from the same models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..models import Conversacion, Mensaje, User
from .revisions import Version
from .schemas import without_bidi
from .service import Read, Summary, unread_for


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, as JavaScript's toISOString() writes it."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds") + "Z"


def name(u: User) -> str:
    """A user's name as shown: registration refuses bidirectional controls, and a name
    stored by another writer (the MiauBloom app) is shown without them."""
    return without_bidi(u.nombre_completo)


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

    @classmethod
    def of(cls, u: User) -> UserOut:
        """A user as the auth routes show them."""
        return cls.model_construct(id=u.id, email=u.email, nombreCompleto=name(u), rol=u.rol)


class UserResponse(OkOut):
    """POST /api/auth/register, GET /api/auth/me."""

    user: UserOut


class ProfileUserOut(UserOut):
    """`user` as the MiauBloom app's login and session routes answer it."""

    perfilCompleto: bool = Field(description="the user has the profile of their role")

    @classmethod
    def with_profile(cls, u: User, complete: bool) -> ProfileUserOut:
        """A user with the app's perfilCompleto."""
        return cls.model_construct(
            id=u.id, email=u.email, nombreCompleto=name(u), rol=u.rol, perfilCompleto=complete
        )


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

    @classmethod
    def of(cls, m: Mensaje) -> MensajeOut:
        """A stored message as clients receive it."""
        return cls.model_construct(
            id=m.id,
            conversacionId=m.conversacion_id,
            seq=m.seq,
            remitente=m.remitente,
            remitenteId=m.remitente_id,
            contenido=m.contenido,
            leido=bool(m.leido),
            createdAt=timestamp(m.created_at),
            clientId=m.client_id,
            version=m.version,
            editadoAt=timestamp(m.editado_at),
            eliminado=m.eliminado,
        )


class UltimoMensajeOut(Out):
    """The last-message preview of the conversation list."""

    contenido: str
    remitente: Literal["paciente", "psicologo"]
    fechaHora: Timestamp
    leido: bool
    editadoAt: Timestamp | None
    eliminado: bool

    @classmethod
    def of(cls, m: Mensaje | None) -> UltimoMensajeOut | None:
        """The preview of a conversation's last message, if it has one."""
        if m is None:
            return None
        return cls.model_construct(
            contenido=m.contenido,
            remitente=m.remitente,
            fechaHora=timestamp(m.created_at),
            leido=bool(m.leido),
            editadoAt=timestamp(m.editado_at),
            eliminado=m.eliminado,
        )


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

    @classmethod
    def of(cls, s: Summary, online: bool) -> ConversacionSummaryOut:
        """One row of a user's conversation list."""
        otro = OtroUsuarioOut.model_construct(
            id=s.otro.id, nombre=name(s.otro), email=s.otro.email, avatar=s.avatar, online=online
        )
        return cls.model_construct(
            id=s.conversacion.id,
            otroUsuario=otro,
            ultimoMensaje=UltimoMensajeOut.of(s.ultimo),
            mensajesNoLeidos=s.no_leidos,
            cerrada=s.cerrada,
            lastSeq=s.conversacion.last_seq,
            createdAt=timestamp(s.conversacion.created_at),
            updatedAt=timestamp(s.conversacion.updated_at),
        )


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

    @classmethod
    def of(cls, c: Conversacion) -> ConversacionOut:
        """A conversation's members."""
        return cls.model_construct(id=c.id, psicologoId=c.psicologo_id, pacienteId=c.paciente_id)


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

    @classmethod
    def of(cls, v: Version) -> VersionOut:
        """One version of a message's text."""
        return cls.model_construct(
            version=v.version, contenido=v.contenido, editadoAt=timestamp(v.editado_at)
        )


class VersionesResponse(OkOut):
    """GET /api/chat/mensajes/{mensaje_id}/versiones (oldest first; [] once deleted)."""

    versiones: list[VersionOut]


class LeidosOut(Out):
    """What marking read did (the chat:mark-read ack, and the HTTP answer)."""

    leidos: int = Field(ge=0)
    hastaSeq: int = Field(ge=0)
    messageId: Uuid | None

    @classmethod
    def of(cls, r: Read) -> LeidosOut:
        """The outcome of marking messages read."""
        return cls.model_construct(leidos=r.leidos, hastaSeq=r.hasta_seq, messageId=r.message_id)


class LeidosResponse(OkOut, LeidosOut):
    """POST /api/chat/mensajes/leidos."""


class NoLeidosResponse(OkOut):
    """GET /api/chat/no-leidos."""

    totalMensajesNoLeidos: int = Field(ge=0)


class ContactoOut(UserOut):
    """Someone the caller may chat with, and their conversation if one exists."""

    online: bool
    conversacionId: Uuid | None

    @classmethod
    def of_user(cls, u: User, online: bool, conversacion_id: str | None) -> ContactoOut:
        """A counterpart, whether online, and the conversation with them if any."""
        return cls.model_construct(
            id=u.id,
            email=u.email,
            nombreCompleto=name(u),
            rol=u.rol,
            online=online,
            conversacionId=conversacion_id,
        )


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


# -- the conversation export (GET /api/chat/exportar?formato=json) ----------------


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


# -- socket events only --------------------------------------------------------


class MessageDeletedOut(Out):
    """chat:message-deleted."""

    conversacionId: Uuid
    messageId: Uuid
    seq: int = Field(ge=1)

    @classmethod
    def of(cls, m: Mensaje) -> MessageDeletedOut:
        """The deleted message's place."""
        return cls.model_construct(conversacionId=m.conversacion_id, messageId=m.id, seq=m.seq)


class ConversationUpdatedOut(Out):
    """chat:conversation-updated, for one member."""

    conversacionId: Uuid
    ultimoMensaje: UltimoMensajeOut | None
    mensajesNoLeidos: int = Field(ge=0)

    @classmethod
    def of(cls, c: Conversacion, last: Mensaje | None, member_id: str) -> ConversationUpdatedOut:
        """The list row's new preview and unread count, as this member sees them."""
        return cls.model_construct(
            conversacionId=c.id,
            ultimoMensaje=UltimoMensajeOut.of(last),
            mensajesNoLeidos=unread_for(c, member_id),
        )


# -- as dicts, for both transports (HTTP bodies, socket acks and events) ----------


def user(u: User) -> dict[str, Any]:
    """`user` of the auth routes."""
    return UserOut.of(u).model_dump()


def user_with_profile(u: User, complete: bool) -> dict[str, Any]:
    """`user` of the app's login and session routes."""
    return ProfileUserOut.with_profile(u, complete).model_dump()


def contacto(u: User, online: bool, conversacion_id: str | None) -> dict[str, Any]:
    """One row of GET /api/chat/contactos."""
    return ContactoOut.of_user(u, online, conversacion_id).model_dump()


def mensaje(m: Mensaje) -> dict[str, Any]:
    """A message as clients receive it."""
    return MensajeOut.of(m).model_dump()


def version(v: Version) -> dict[str, Any]:
    """One entry of GET /api/chat/mensajes/<id>/versiones."""
    return VersionOut.of(v).model_dump()


def leidos(r: Read) -> dict[str, Any]:
    """The chat:mark-read ack and POST /api/chat/mensajes/leidos, beside success."""
    return LeidosOut.of(r).model_dump()


def message_deleted(m: Mensaje) -> dict[str, Any]:
    """chat:message-deleted."""
    return MessageDeletedOut.of(m).model_dump()


def conversacion(c: Conversacion) -> dict[str, Any]:
    """The conversation of POST /api/chat/conversaciones."""
    return ConversacionOut.of(c).model_dump()


def summary(s: Summary, online: bool) -> dict[str, Any]:
    """One row of the conversation list."""
    return ConversacionSummaryOut.of(s, online).model_dump()


def conversation_updated(c: Conversacion, last: Mensaje | None, member_id: str) -> dict[str, Any]:
    """chat:conversation-updated for one member."""
    return ConversationUpdatedOut.of(c, last, member_id).model_dump()
