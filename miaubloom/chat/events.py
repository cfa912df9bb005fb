"""The Socket.IO namespace: each event validates, calls the service, acks and announces."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from flask import Flask, current_app, request
from flask_socketio import Namespace, emit, join_room, leave_room, rooms
from socketio.exceptions import ConnectionRefusedError

from .. import observability
from ..auth import Caller, authenticate, check_claims, token_from
from ..errors import (
    ChatError,
    Forbidden,
    RateLimited,
    Unauthenticated,
    answered_with,
    as_chat_error,
)
from ..extensions import db, socketio
from ..security import socket_guard as guard
from ..security.ratelimit import EVENT_BUDGET
from ..state import app_state
from . import broadcast, revisions, service, wire
from . import rooms as room
from .schemas import (
    ConversationIn,
    EditMessageIn,
    MarkReadIn,
    MessageIn,
    SendMessageIn,
    SyncIn,
    parse,
)

log = logging.getLogger(__name__)

REFUSED = {"message": "No autenticado", "code": "unauthenticated"}


class _SocketRequest(Protocol):
    sid: str  # set on the request of each connect and event by Flask-SocketIO


def _sid() -> str:
    """The id of the socket whose connect or event is being handled."""
    return cast(_SocketRequest, request).sid


class ChatNamespace(Namespace):
    """Namespace "/": the events of docs/PROTOCOL.md."""

    def __init__(self, namespace: str, app: Flask) -> None:
        super().__init__(namespace)
        self.app = app
        self.presence = app_state(app).presence
        self.typing = app_state(app).typing
        self.callers: dict[str, Caller] = {}
        self._sweeper_started = False
        self._stopping = app_state(app).stopping

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Route "chat:send-message" to on_chat_send_message, and so on; time, count and log it."""
        started = time.perf_counter()
        # The event's request context joins this app context, so the error code it
        # records on g (answered_with) is still there to be counted and logged.
        with self.app.app_context():
            try:
                return super().trigger_event(event.replace(":", "_").replace("-", "_"), *args)
            finally:
                observability.socket_event(event, args[0], time.perf_counter() - started)

    # -- connection -------------------------------------------------------

    def on_connect(self, auth: object = None) -> None:
        """Authenticate from the token alone, or refuse the connection."""
        token = token_from(request.headers, request.cookies, auth)
        try:
            guard.check_connect()
            caller = authenticate(token)
            guard.check_user_sockets(caller, self.presence)
        except ChatError as exc:
            data = guard.refusal(exc)
            refusal = data if isinstance(exc, RateLimited) else REFUSED
            raise ConnectionRefusedError(refusal["message"], refusal) from None
        sid = _sid()
        self.callers[sid] = caller
        join_room(room.user(caller.user_id))
        join_room(room.token(caller.token_hash))
        guard.connected(self, caller, sid)
        if self.presence.add(caller.user_id, sid):
            self._announce_presence(caller.user_id, online=True)

    def on_disconnect(self, *_: Any) -> None:
        """Stop the socket's typing, and announce offline after the user's last socket."""
        sid = _sid()
        caller = self.callers.pop(sid, None)
        guard.disconnected(caller, sid)
        for user_id, conversacion_id in self.typing.stop_socket(sid):
            broadcast.typing("chat:user-stop-typing", user_id, conversacion_id, sid)
        if caller and self.presence.remove(caller.user_id, sid):
            self._announce_presence(caller.user_id, online=False)

    def _announce_presence(self, user_id: str, online: bool) -> None:
        pairs = service.member_pairs(user_id)
        broadcast.presence(user_id, online, pairs)

    # -- events -----------------------------------------------------------

    def on_chat_join_room(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:join-room."""
        return self._run("chat:join-room", data, self._join)

    def on_chat_send_message(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:send-message."""
        return self._run("chat:send-message", data, self._send, budget="RATELIMIT_MESSAGES")

    def on_chat_typing(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:typing."""
        # Free: the app emits it on every keystroke, and it is never refused for being
        # frequent (docs/PROTOCOL.md, Typing); repeats are coalesced in memory.
        return self._run("chat:typing", data, self._typing, budget=None)

    def on_chat_stop_typing(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:stop-typing."""
        return self._run("chat:stop-typing", data, self._stop_typing, budget=None)

    def on_chat_mark_read(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:mark-read."""
        return self._run("chat:mark-read", data, self._mark_read)

    def on_chat_sync(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:sync."""
        return self._run("chat:sync", data, self._sync)

    def on_chat_leave_room(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:leave-room."""
        return self._run("chat:leave-room", data, self._leave)

    def on_chat_edit_message(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:edit-message."""
        return self._run("chat:edit-message", data, self._edit, budget="RATELIMIT_EDITS")

    def on_chat_delete_message(self, data: object = None, *_: Any) -> dict[str, Any]:
        """chat:delete-message."""
        return self._run("chat:delete-message", data, self._delete, budget="RATELIMIT_EDITS")

    # -- the work behind each event --------------------------------------

    def _run(
        self,
        event: str,
        data: object,
        action: Callable[[Caller, object], dict[str, Any]],
        budget: str | None = EVENT_BUDGET,
    ) -> dict[str, Any]:
        """Run an event: its ack on success, or the error as ack and chat:error.

        `budget` is the config key of the per-user rate limit it spends (None: free).
        """
        caller = None
        try:
            caller = self._caller()
            guard.spend(budget, caller)
            if isinstance(data, dict):
                check_claims(caller, data)  # every event: a foreign userId/rol is Forbidden
            return {"success": True, **action(caller, data)}
        except Exception as exc:  # every failure becomes an answer, never a crash
            db.session.rollback()
            error = as_chat_error(exc)
            answered_with(error.code)
            guard.failed(event, error, caller, _sid())
            if error.code == "internal":
                log.exception("unexpected error in %s", event)
            emit("chat:error", {"message": error.message, "code": error.code, "event": event})
            if isinstance(error, Unauthenticated):
                self.disconnect(_sid())
            return error.to_dict()

    def _caller(self) -> Caller:
        caller = self.callers.get(_sid())
        if caller is None or caller.expired():
            raise Unauthenticated("Sesión expirada")
        return caller

    def _join(self, caller: Caller, data: object) -> dict[str, Any]:
        payload = parse(ConversationIn, data)
        conv = service.member_conversation(caller, payload.conversacionId)
        join_room(room.conversation(conv.id))
        joined = {"userId": caller.user_id, "conversacionId": conv.id}
        emit("chat:user-joined", joined, to=room.conversation(conv.id), include_self=False)
        online = self.presence.is_online(service.other_member(conv, caller.user_id))
        return {"conversacionId": conv.id, "lastSeq": conv.last_seq, "online": online}

    def _send(self, caller: Caller, data: object) -> dict[str, Any]:
        limit = current_app.config["MAX_MESSAGE_LENGTH"]
        payload = parse(SendMessageIn, data, max_length=limit)
        sent = service.send_message(
            caller, payload.conversacionId, payload.contenido, payload.clientId
        )
        if sent.created:
            broadcast.message_sent(sent)
        if self.typing.stop(_sid(), payload.conversacionId):
            broadcast.typing(
                "chat:user-stop-typing", caller.user_id, payload.conversacionId, _sid()
            )
        return {"mensaje": wire.mensaje(sent.mensaje)}

    def _typing(self, caller: Caller, data: object) -> dict[str, Any]:
        # Coalesced: a repeat within the typing window only refreshes it (docs/PROTOCOL.md, Typing).
        conversacion_id = self._typist_of(caller, data)
        if self.typing.start(_sid(), caller.user_id, conversacion_id):
            self._start_sweeper()
            broadcast.typing("chat:user-typing", caller.user_id, conversacion_id, _sid())
        return {}

    def _stop_typing(self, caller: Caller, data: object) -> dict[str, Any]:
        conversacion_id = self._typist_of(caller, data)
        if self.typing.stop(_sid(), conversacion_id):
            broadcast.typing("chat:user-stop-typing", caller.user_id, conversacion_id, _sid())
        return {}

    def _mark_read(self, caller: Caller, data: object) -> dict[str, Any]:
        payload = parse(MarkReadIn, data)
        read = service.mark_read(
            caller, payload.conversacionId, payload.hastaSeq, payload.messageId
        )
        broadcast.messages_read(read, caller.user_id)
        return wire.leidos(read)

    def _sync(self, caller: Caller, data: object) -> dict[str, Any]:
        payload = parse(SyncIn, data)
        mensajes, has_more = service.history(
            caller, payload.conversacionId, after=payload.afterSeq, limit=payload.limit
        )
        return {"mensajes": [wire.mensaje(m) for m in mensajes], "hasMore": has_more}

    def _leave(self, caller: Caller, data: object) -> dict[str, Any]:
        payload = parse(ConversationIn, data)
        conv_room = room.conversation(payload.conversacionId)
        if conv_room not in rooms():
            # Nothing to leave; still Forbidden to a non-member, like every event.
            service.member_conversation(caller, payload.conversacionId)
            return {}
        if self.typing.stop(_sid(), payload.conversacionId):
            broadcast.typing(
                "chat:user-stop-typing", caller.user_id, payload.conversacionId, _sid()
            )
        left = {"userId": caller.user_id, "conversacionId": payload.conversacionId}
        emit("chat:user-left", left, to=conv_room, include_self=False)
        leave_room(conv_room)
        return {}

    def _edit(self, caller: Caller, data: object) -> dict[str, Any]:
        payload = parse(EditMessageIn, data, max_length=current_app.config["MAX_MESSAGE_LENGTH"])
        edited = revisions.edit_message(
            caller, payload.messageId, payload.contenido, payload.version
        )
        broadcast.message_edited(edited)
        return {"mensaje": wire.mensaje(edited.mensaje)}

    def _delete(self, caller: Caller, data: object) -> dict[str, Any]:
        payload = parse(MessageIn, data)
        deleted = revisions.delete_message(caller, payload.messageId)
        broadcast.message_deleted(deleted)
        return {"mensaje": wire.mensaje(deleted.mensaje)}

    def _typist_of(self, caller: Caller, data: object) -> str:
        """The conversation a typing event names, if this socket may type there.

        Typing is never rate limited, so it must stay cheap: a joined room is
        checked in memory, and any other conversation is read from the database
        once per socket (typing.checked), for at most a few per socket. Whatever
        a non-member names, the answer is the same Forbidden.
        """
        payload = parse(ConversationIn, data)
        conversacion_id, sid = payload.conversacionId, _sid()
        if room.conversation(conversacion_id) in rooms():
            return conversacion_id
        member = self.typing.checked(sid, conversacion_id)
        if member is None and self.typing.may_check(sid):
            member = service.is_member(caller, conversacion_id)
            self.typing.remember(sid, conversacion_id, member)
        if not member:
            raise Forbidden(service.NOT_MEMBER)
        return conversacion_id

    # -- typing expiry ----------------------------------------------------

    def _start_sweeper(self) -> None:
        if not self._sweeper_started:
            self._sweeper_started = True
            socketio.start_background_task(self._sweep_typing)

    def _sweep_typing(self) -> None:
        """End typing states nobody refreshed within TYPING_TIMEOUT."""
        while not self._stopping.is_set():
            socketio.sleep(min(0.5, self.typing.timeout / 4))  # type: ignore[arg-type]  # types-flask-socketio says int; it takes float
            for sid, user_id, conversacion_id in self.typing.expire():
                broadcast.typing("chat:user-stop-typing", user_id, conversacion_id, sid)
