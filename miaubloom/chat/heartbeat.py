"""Which presence this deployment uses (memory, or Redis with a queue), and the heartbeat keeping a Redis one alive."""

from __future__ import annotations

import logging
import os
import socket
import uuid

from flask import Flask
from redis.exceptions import RedisError

from .. import redisconn
from ..extensions import socketio
from ..state import app_state
from . import broadcast, service
from .presence import Presence, RedisPresence

log = logging.getLogger(__name__)


def presence_for(app: Flask) -> Presence:
    """Memory presence without a message queue; Redis presence, kept alive, with one."""
    url = app.config["SOCKETIO_MESSAGE_QUEUE"]
    if not url:
        return Presence()
    # With Redis down or silent, presence answers for this process (redisconn: no waiting).
    client = redisconn.client(url, app.config)
    process_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    presence = RedisPresence(
        client,
        app.config["REDIS_KEY_PREFIX"],
        process_id,
        ttl=app.config["PRESENCE_TTL"],
    )
    presence.on_first_socket = lambda: socketio.start_background_task(_keep_alive, app, presence)
    return presence


def _keep_alive(app: Flask, presence: RedisPresence) -> None:
    """Heartbeat, and announce offline the users of processes that died."""
    stopping = app_state(app).stopping
    while not stopping.is_set():
        try:
            presence.heartbeat()
            for user_id in presence.reap():
                with app.app_context():
                    broadcast.presence(user_id, False, service.member_pairs(user_id))
            socketio.sleep(presence.ttl / 3)  # type: ignore[arg-type]  # types-flask-socketio says int; it takes float
        except redisconn.RedisDown:
            socketio.sleep(1)  # logged once, when it went down
        except RedisError as exc:
            log.warning("presence heartbeat failed: %s", exc.__class__.__name__)
            socketio.sleep(1)
        except Exception:
            log.exception("presence heartbeat failed")
            socketio.sleep(1)
