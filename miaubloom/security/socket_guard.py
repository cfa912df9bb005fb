"""The namespace's security hooks: connection and event limits, audit, session keeping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app

from ..auth import Caller
from ..errors import ChatError, RateLimited
from ..observability import refused
from ..state import app_state
from . import audit
from .ratelimit import client_ip

if TYPE_CHECKING:
    from ..chat.presence import Presence


# Seconds a client refused for holding too many sockets is told to wait.
USER_SOCKETS_RETRY = 30


def check_connect() -> None:
    """Raise RateLimited when this address opens sockets too fast."""
    app_state().events.check_connect(client_ip())


def check_user_sockets(caller: Caller, presence: Presence) -> None:
    """Raise RateLimited when the user already holds SOCKETIO_MAX_SOCKETS_PER_USER here."""
    limit = current_app.config["SOCKETIO_MAX_SOCKETS_PER_USER"]
    if presence.sockets_here(caller.user_id) >= limit:
        refused(current_app, "user_sockets")
        raise RateLimited("Demasiadas conexiones abiertas", retryAfter=USER_SOCKETS_RETRY)


def spend(budget: str | None, caller: Caller) -> None:
    """Raise RateLimited when this user's events spending budget come too fast (None: free)."""
    app_state().events.spend(budget, caller.user_id)


def refusal(error: ChatError) -> dict[str, Any]:
    """The connect_error data for a refused socket (audited)."""
    audit.socket_refused(error)
    data: dict[str, Any] = {"message": error.message, "code": error.code}
    if "retryAfter" in error.extra:
        data["retryAfter"] = error.extra["retryAfter"]
    return data


def connected(namespace: Any, caller: Caller, sid: str) -> None:
    """A socket was accepted: audit it, and make sure expiry and logout can end it."""
    app_state().sessions.start(namespace)
    audit.socket_connected(caller.user_id, sid)


def disconnected(caller: Caller | None, sid: str) -> None:
    """A socket went away."""
    audit.socket_disconnected(caller.user_id if caller else None, sid)


def failed(event: str, error: ChatError, caller: Caller | None, sid: str) -> None:
    """A socket event was refused."""
    audit.socket_failed(event, error, caller.user_id if caller else None, sid)
