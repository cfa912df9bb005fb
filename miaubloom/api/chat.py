"""Chat routes: the HTTP fallback, through the same service and announcements as sockets."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from .. import accounts
from ..chat import broadcast, revisions, search, service, wire
from ..chat.schemas import (
    ConversationsQuery,
    EditMessageIn,
    HistoryQuery,
    MarkReadIn,
    MessageIn,
    OpenConversationIn,
    SearchQuery,
    SendMessageIn,
    parse,
)
from ..security import ratelimit
from ..state import app_state
from . import bp
from .common import body, body_with, caller, ok, query


def _is_online(user_id: str) -> bool:
    return app_state().presence.is_online(user_id)


@bp.get("/chat/conversaciones")
def conversaciones() -> ResponseReturnValue:
    """The caller's conversations (current ones; closed too with incluirCerradas=1)."""
    who, q = caller(), query(ConversationsQuery)
    summaries = service.list_conversations(who, q.incluirCerradas)
    rows = [wire.summary(s, _is_online(s.otro.id)) for s in summaries]
    unread = sum(s.no_leidos for s in summaries)
    return ok(conversaciones=rows, total=len(rows), totalMensajesNoLeidos=unread)


@bp.post("/chat/conversaciones")
def abrir_conversacion() -> ResponseReturnValue:
    """Open (or create) the conversation with the caller's counterpart."""
    who, p = caller(), body(OpenConversationIn)
    return ok(conversacion=wire.conversacion(service.open_conversation(who, p.otroUsuarioId)))


@bp.get("/chat/mensajes")
def mensajes() -> ResponseReturnValue:
    """A page (after=, before=, limit=), or with none of them the app's call: all, then read."""
    who, q = caller(), query(HistoryQuery)
    if not q.paged:
        page, has_more, read = service.open_history(who, q.conversacionId)
        broadcast.messages_read(read, who.user_id)
    else:
        page, has_more = service.history(who, q.conversacionId, q.after, q.before, q.limit)
    return ok(mensajes=[wire.mensaje(m) for m in page], hasMore=has_more)


@bp.post("/chat/mensajes")
@ratelimit.spends("RATELIMIT_MESSAGES")
def enviar() -> ResponseReturnValue:
    """Send a message; it is announced on the sockets exactly as a socket send is."""
    who = caller()
    p = body(SendMessageIn, who)
    sent = service.send_message(who, p.conversacionId, p.contenido, p.clientId)
    if sent.created:
        broadcast.message_sent(sent)
    return ok(201 if sent.created else 200, mensaje=wire.mensaje(sent.mensaje))


@bp.post("/chat/mensajes/leidos")
def leidos() -> ResponseReturnValue:
    """Mark the other member's messages read, and announce it."""
    who = caller()
    p = body(MarkReadIn, who)
    read = service.mark_read(who, p.conversacionId, p.hastaSeq, p.messageId)
    broadcast.messages_read(read, who.user_id)
    return ok(**wire.leidos(read))


@bp.get("/chat/no-leidos")
def no_leidos() -> ResponseReturnValue:
    """The caller's unread total."""
    return ok(totalMensajesNoLeidos=service.unread_total(caller()))


@bp.get("/chat/contactos")
def contactos() -> ResponseReturnValue:
    """Whom the caller may chat with, and their conversation if one exists already."""
    who = caller()
    opened = {otro: cid for cid, otro in service.member_pairs(who.user_id)}
    rows = [
        wire.contacto(u, _is_online(u.id), opened.get(u.id)) for u in accounts.counterparts(who)
    ]
    return ok(contactos=rows, total=len(rows))


@bp.patch("/chat/mensajes/<mensaje_id>")
@ratelimit.spends("RATELIMIT_EDITS")
def editar(mensaje_id: str) -> ResponseReturnValue:
    """Edit one's own message (v1.2); announced as chat:message-edited."""
    who = caller()
    p = body_with(EditMessageIn, messageId=mensaje_id)
    edited = revisions.edit_message(who, p.messageId, p.contenido, p.version)
    broadcast.message_edited(edited)
    return ok(mensaje=wire.mensaje(edited.mensaje))


@bp.delete("/chat/mensajes/<mensaje_id>")
@ratelimit.spends("RATELIMIT_EDITS")
def eliminar(mensaje_id: str) -> ResponseReturnValue:
    """Delete one's own message, leaving a tombstone (v1.2); announced as chat:message-deleted."""
    who = caller()
    p = body_with(MessageIn, messageId=mensaje_id)
    deleted = revisions.delete_message(who, p.messageId)
    broadcast.message_deleted(deleted)
    return ok(mensaje=wire.mensaje(deleted.mensaje))


@bp.get("/chat/mensajes/<mensaje_id>/versiones")
def versiones(mensaje_id: str) -> ResponseReturnValue:
    """A message's versions, oldest first (none once deleted)."""
    who, p = caller(), parse(MessageIn, {"messageId": mensaje_id})
    return ok(versiones=[wire.version(v) for v in revisions.message_versions(who, p.messageId)])


@bp.get("/chat/mensajes/buscar")
@ratelimit.per_user("RATELIMIT_SEARCH")
def buscar() -> ResponseReturnValue:
    """Messages of a conversation containing q, newest first, paged with before=."""
    who, q = caller(), query(SearchQuery)
    page, has_more = search.search_messages(who, q.conversacionId, q.q, q.before, q.limit)
    return ok(mensajes=[wire.mensaje(m) for m in page], hasMore=has_more)
