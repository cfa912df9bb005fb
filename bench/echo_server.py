"""A bare Flask-SocketIO echo server: the ceiling for any Python Socket.IO server here.

Same async mode and serving as the chat (SOCKETIO_ASYNC_MODE, optional
SOCKETIO_MESSAGE_QUEUE), but no auth and no database: "join" puts the socket
in a room, "send" broadcasts the payload to the room as "message" and acks.
With ECHO_FANOUT=chat it also broadcasts an "updated" event to the room, so
that it writes as many frames per message as the chat does (message-received to
the room plus conversation-updated to each member, and the ack): the ceiling
for anything that speaks the chat's protocol.
Start it like wsgi.py: `python bench/echo_server.py` or, for gevent,
`gunicorn --chdir bench echo_server:app` from the repository (its gunicorn.conf.py).
"""

from __future__ import annotations

import os

_MODE = os.environ.get("SOCKETIO_ASYNC_MODE", "threading")
if _MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif _MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

from flask import Flask  # noqa: E402  (after monkey-patching, on purpose)
from flask_socketio import SocketIO, emit, join_room  # noqa: E402

_FANOUT_AS_CHAT = os.environ.get("ECHO_FANOUT", "bare") == "chat"

app = Flask(__name__)
socketio = SocketIO(
    app,
    async_mode=_MODE,
    message_queue=os.environ.get("SOCKETIO_MESSAGE_QUEUE") or None,
    channel=os.environ.get("SOCKETIO_CHANNEL", "flask-socketio"),
    max_http_buffer_size=64 * 1024,
)


@app.get("/api/health")
def health() -> dict:
    """Readiness probe, as the chat has."""
    return {"success": True}


@socketio.on("join")
def on_join(data: dict) -> dict:
    """Join the room named in the payload."""
    join_room(data["room"])
    return {"success": True}


@socketio.on("send")
def on_send(data: dict) -> dict:
    """Broadcast the payload to its room, sender included, and ack."""
    emit("message", data, to=data["room"])
    if _FANOUT_AS_CHAT:
        emit("updated", {"room": data["room"], "last": data}, to=data["room"])
    return {"success": True}


if __name__ == "__main__":
    # Served exactly as the chat's `python wsgi.py` is (TCP_NODELAY, eventlet's max_size).
    from miaubloom.serving import run

    run(app, socketio, _MODE)
