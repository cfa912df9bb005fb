"""The JSON shapes of docs/PROTOCOL.md, shared by the HTTP API and the socket events."""

from __future__ import annotations

from datetime import datetime

from ..models import Conversacion, Mensaje, User
from .revisions import Version
from .schemas import without_bidi
from .service import Summary, unread_for


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, as JavaScript's toISOString() writes it."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds") + "Z"


def name(u: User) -> str:
    """A user's name as shown: registration refuses bidirectional controls, and a name
    stored by another writer (the MiauBloom app) is shown without them."""
    return without_bidi(u.nombre_completo)


def user(u: User) -> dict:
    """`user` of the auth routes."""
    return {"id": u.id, "email": u.email, "nombreCompleto": name(u), "rol": u.rol}


def mensaje(m: Mensaje) -> dict:
    """A message as clients receive it."""
    return {
        "id": m.id,
        "conversacionId": m.conversacion_id,
        "seq": m.seq,
        "remitente": m.remitente,
        "remitenteId": m.remitente_id,
        "contenido": m.contenido,
        "leido": bool(m.leido),
        "createdAt": timestamp(m.created_at),
        "clientId": m.client_id,
        "version": m.version,
        "editadoAt": timestamp(m.editado_at),
        "eliminado": m.eliminado,
    }


def ultimo_mensaje(m: Mensaje | None) -> dict | None:
    """The last-message preview of the conversation list."""
    if m is None:
        return None
    return {
        "contenido": m.contenido,
        "remitente": m.remitente,
        "fechaHora": timestamp(m.created_at),
        "leido": bool(m.leido),
        "editadoAt": timestamp(m.editado_at),
        "eliminado": m.eliminado,
    }


def version(v: Version) -> dict:
    """One entry of GET /api/chat/mensajes/<id>/versiones."""
    return {"version": v.version, "contenido": v.contenido, "editadoAt": timestamp(v.editado_at)}


def message_deleted(m: Mensaje) -> dict:
    """chat:message-deleted."""
    return {"conversacionId": m.conversacion_id, "messageId": m.id, "seq": m.seq}


def conversacion(c: Conversacion) -> dict:
    """The conversation of POST /api/chat/conversaciones."""
    return {"id": c.id, "psicologoId": c.psicologo_id, "pacienteId": c.paciente_id}


def summary(s: Summary, online: bool) -> dict:
    """One row of the conversation list."""
    return {
        "id": s.conversacion.id,
        "otroUsuario": {
            "id": s.otro.id,
            "nombre": name(s.otro),
            "email": s.otro.email,
            "avatar": s.avatar,
            "online": online,
        },
        "ultimoMensaje": ultimo_mensaje(s.ultimo),
        "mensajesNoLeidos": s.no_leidos,
        "cerrada": s.cerrada,
        "lastSeq": s.conversacion.last_seq,
        "createdAt": timestamp(s.conversacion.created_at),
        "updatedAt": timestamp(s.conversacion.updated_at),
    }


def conversation_updated(c: Conversacion, last: Mensaje | None, member_id: str) -> dict:
    """chat:conversation-updated for one member."""
    return {
        "conversacionId": c.id,
        "ultimoMensaje": ultimo_mensaje(last),
        "mensajesNoLeidos": unread_for(c, member_id),
    }
