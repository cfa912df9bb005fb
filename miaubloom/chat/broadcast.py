"""Announces what the service committed; both transports call it, so both announce alike."""

from __future__ import annotations

from .. import observability
from ..extensions import socketio
from ..models import utcnow
from ..state import app_state
from . import rooms, wire
from .revisions import Changed
from .service import Read, Sent


def message_sent(sent: Sent) -> None:
    """A new message: to the conversation's room, and the list update to each member."""
    conv, mensaje = sent.conversacion, sent.mensaje
    observability.message_stored()
    socketio.emit(
        "chat:message-received", {"mensaje": wire.mensaje(mensaje)}, to=rooms.conversation(conv.id)
    )
    for member in (conv.psicologo_id, conv.paciente_id):
        socketio.emit(
            "chat:conversation-updated",
            wire.conversation_updated(conv, mensaje, member),
            to=rooms.user(member),
        )
    # The recipient may be owed an e-mail later (notify/jobs.py decides, from committed state).
    app_state().notifier.message_stored(conv, mensaje.remitente_id)


def message_edited(edited: Changed) -> None:
    """A new version: to the conversation's room; the list update if it is the last message."""
    if not edited.changed:
        return
    room = rooms.conversation(edited.conversacion.id)
    socketio.emit("chat:message-edited", {"mensaje": wire.mensaje(edited.mensaje)}, to=room)
    _list_changed(edited)


def message_deleted(deleted: Changed) -> None:
    """A tombstone: to the conversation's room; the list update if the last message or an unread one."""
    if not deleted.changed:
        return
    room = rooms.conversation(deleted.conversacion.id)
    socketio.emit("chat:message-deleted", wire.message_deleted(deleted.mensaje), to=room)
    _list_changed(deleted)


def _list_changed(changed: Changed) -> None:
    """chat:conversation-updated to each member, when their list shows something new."""
    if changed.ultimo is None:
        return
    conv = changed.conversacion
    for member in (conv.psicologo_id, conv.paciente_id):
        socketio.emit(
            "chat:conversation-updated",
            wire.conversation_updated(conv, changed.ultimo, member),
            to=rooms.user(member),
        )


def messages_read(read: Read, reader_id: str) -> None:
    """The reader's read state, to the conversation's room."""
    payload = {
        "conversacionId": read.conversacion.id,
        "messageId": read.message_id,
        "hastaSeq": read.hasta_seq,
        "userId": reader_id,
    }
    socketio.emit("chat:message-read", payload, to=rooms.conversation(read.conversacion.id))


def presence(user_id: str, online: bool, conversations: list[tuple[str, str]]) -> None:
    """A user came online or went offline: to their conversations' rooms and counterparts."""
    if not conversations:
        return
    targets = [rooms.conversation(cid) for cid, _ in conversations]
    targets += [rooms.user(other) for _, other in conversations]
    payload = {"userId": user_id, "online": online, "lastSeen": wire.timestamp(utcnow())}
    socketio.emit("chat:presence", payload, to=targets)  # type: ignore[arg-type]  # types-flask-socketio: to is str; a list is accepted


def typing(event: str, user_id: str, conversacion_id: str, skip_sid: str | None) -> None:
    """chat:user-typing or chat:user-stop-typing, to the room but the typist's socket."""
    socketio.emit(
        event,
        {"userId": user_id, "conversacionId": conversacion_id},
        to=rooms.conversation(conversacion_id),
        skip_sid=skip_sid,
    )


def end_sessions(token_hash: str) -> None:
    """Disconnect the sockets opened with a token, in every process (after logout)."""
    app_state().sessions.end(token_hash)
