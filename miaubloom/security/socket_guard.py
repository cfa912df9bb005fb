"""The namespace's security hooks: connection and event limits, audit, session keeping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app

from ..auth import Caller
from ..errors import ChatError, RateLimited
from ..observability import refused
from . import trail
from .ratelimit import EXTENSION as LIMITER
from .ratelimit import client_ip
from .sessions import EXTENSION as SESSIONS

if TYPE_CHECKING:
    from ..chat.presence import Presence


# Seconds a client refused for holding too many sockets is told to wait.
USER_SOCKETS_RETRY = 30


def _events() -> Any:
    return current_app.extensions[LIMITER + ".events"]


def check_connect() -> None:
    """Raise RateLimited when this address opens sockets too fast."""
    _events().check_connect(client_ip())


def check_user_sockets(caller: Caller, presence: Presence) -> None:
    """Raise RateLimited when the user already holds SOCKETIO_MAX_SOCKETS_PER_USER here."""
    limit = current_app.config["SOCKETIO_MAX_SOCKETS_PER_USER"]
    if presence.sockets_here(caller.user_id) >= limit:
        refused(current_app, "user_sockets")
        raise RateLimited("Demasiadas conexiones abiertas", retryAfter=USER_SOCKETS_RETRY)


def check_event(event: str, caller: Caller) -> None:
    """Raise RateLimited when this user sends this kind of event too fast."""
    _events().check_event(event, caller.user_id)


def refusal(error: ChatError) -> dict:
    """The connect_error data for a refused socket (audited)."""
    trail.socket_refused(error)
    data = {"message": error.message, "code": error.code}
    if "retryAfter" in error.extra:
        data["retryAfter"] = error.extra["retryAfter"]
    return data


def connected(namespace: Any, caller: Caller, sid: str) -> None:
    """A socket was accepted: audit it, and make sure expiry and logout can end it."""
    current_app.extensions[SESSIONS].start(namespace)
    trail.socket_connected(caller.user_id, sid)


def disconnected(caller: Caller | None, sid: str) -> None:
    """A socket went away."""
    trail.socket_disconnected(caller.user_id if caller else None, sid)


def failed(event: str, error: ChatError, caller: Caller | None, sid: str) -> None:
    """A socket event was refused."""
    trail.socket_failed(event, error, caller.user_id if caller else None, sid)
