"""AppState: everything one app holds beyond its config, filled in by each `init_app`.

`create_app` builds it first, then each part's `init_app` sets its own field;
`app_state()` is the one way to reach it (typed, no string keys elsewhere).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from .chat.group_commit import GroupCommit
    from .chat.presence import Presence
    from .chat.service import Sent
    from .chat.typing_state import Typing
    from .chat.writer import Outgoing
    from .notify.jobs import Notifier
    from .observability import Metrics
    from .security.ratelimit import EventLimiter
    from .security.sessions import Sessions
    from .security.transport import TransportGuard

# The one key this app keeps in app.extensions (Flask's place for an extension's state).
_KEY = "miaubloom"


@dataclass
class AppState:
    """One app's parts; each field is set by the `init_app` named beside it."""

    metrics: Metrics = field(init=False)  # observability.init_app
    presence: Presence = field(init=False)  # chat.init_app
    typing: Typing = field(init=False)  # chat.init_app
    sends: GroupCommit[Outgoing, Sent] = field(init=False)  # chat.init_app (group commit)
    limiter: Limiter = field(init=False)  # security.ratelimit.init_app (HTTP)
    events: EventLimiter = field(init=False)  # security.ratelimit.init_app (socket events)
    sessions: Sessions = field(init=False)  # security.sessions.init_app
    notifier: Notifier = field(init=False)  # notify.init_app
    # Installed after the metrics that read it: None until security.transport.init_app.
    transport: TransportGuard | None = None
    # The OpenAPI description, built on first request.
    openapi: dict[str, Any] | None = None
    # Set by shutdown(): each background loop of this app ends at its next turn.
    stopping: threading.Event = field(default_factory=threading.Event)


def init_app(app: Flask) -> AppState:
    """Give the app its (empty) state; every other init_app fills a part of it."""
    state = AppState()
    app.extensions[_KEY] = state
    return state


def shutdown(app: Flask) -> None:
    """End this app's background loops and in-process jobs (tests; a server process just exits)."""
    state = app_state(app)
    state.stopping.set()
    state.notifier.stop()


def app_state(app: Flask | None = None) -> AppState:
    """The state of `app`, or of the current app."""
    state: AppState = (app if app is not None else current_app).extensions[_KEY]
    return state
