"""The chat: its rules (service), payloads (schemas), announcements and socket events."""

from __future__ import annotations

from typing import NoReturn

from flask import Flask, abort

from ..extensions import socketio


def init_app(app: Flask) -> None:
    """Bind Socket.IO (async mode, queue, origins), keep presence, typing and sends, add the events."""
    from ..security.origins import socketio_origins
    from ..state import app_state
    from . import writer
    from .events import ChatNamespace
    from .group_commit import GroupCommit
    from .heartbeat import presence_for
    from .relay import client_manager
    from .typing_state import Typing

    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        # Chosen here on every init_app: Flask-SocketIO would keep an earlier app's.
        client_manager=client_manager(
            app.config["SOCKETIO_MESSAGE_QUEUE"], app.config["SOCKETIO_CHANNEL"], app.config
        ),
        # types-flask-socketio leaves out the callable and None that python-socketio accepts.
        cors_allowed_origins=socketio_origins(app.config["ALLOWED_ORIGINS"]),  # type: ignore[arg-type]
        max_http_buffer_size=app.config["SOCKETIO_MAX_BUFFER"],
    )
    # Flask-SocketIO runs every event in a request context built from the
    # connect request, /socket.io/. With no Flask rule there, each event's URL
    # match raised NotFound, whose traceback made a reference cycle of ~70
    # objects per event for the cyclic collector. Engine.IO answers this path
    # before Flask sees it; the rule only lets the match succeed.
    app.add_url_rule(
        "/socket.io/", "socketio", _socketio_path, methods=["GET", "POST"], strict_slashes=False
    )
    state = app_state(app)
    state.presence = presence_for(app)
    state.typing = Typing(app.config["TYPING_TIMEOUT"])
    # Both transports' sends go through one coordinator per app (group commit).
    state.sends = GroupCommit(writer.store_messages, writer.MAX_BATCH)
    socketio.on_namespace(ChatNamespace("/", app))


def _socketio_path() -> NoReturn:
    """Engine.IO serves /socket.io/; a request that reaches Flask there is not found."""
    abort(404)
