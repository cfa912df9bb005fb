"""Presence for this deployment: in memory for one process, in Redis when a queue is set."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.exceptions import RedisError
from redis.retry import Retry

from ..extensions import socketio
from . import broadcast, service
from .presence import Presence, RedisPresence

log = logging.getLogger(__name__)


def presence_for(app: Flask) -> Presence:
    """Memory presence without a message queue; Redis presence, kept alive, with one."""
    url = app.config["SOCKETIO_MESSAGE_QUEUE"]
    if not url:
        return Presence()
    client = presence_redis(url)
    process_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    presence = RedisPresence(
        client,
        app.config["REDIS_KEY_PREFIX"],
        process_id,
        ttl=app.config["PRESENCE_TTL"],
    )
    presence.on_first_socket = lambda: socketio.start_background_task(_keep_alive, app, presence)
    return presence


def presence_redis(url: str) -> redis.Redis:
    """A client that gives up fast: with Redis down, presence answers for this process."""
    return redis.Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
    )


def end_sessions(token_hash: str) -> None:
    """Disconnect the sockets opened with a token, in this process and, with a queue, in all."""
    broadcast.end_sessions(token_hash)
    presence = current_app.extensions["miaubloom"].presence
    if isinstance(presence, RedisPresence):
        try:
            presence.redis.publish(_sessions_channel(current_app), token_hash)
        except RedisError:
            log.warning("could not tell other processes to end a session")


def _sessions_channel(app: Flask) -> str:
    return f"{app.config['REDIS_KEY_PREFIX']}:sessions-ended"


def _keep_alive(app: Flask, presence: RedisPresence) -> None:
    """Heartbeat, announce offline the users of dead processes, end sessions others ended."""
    ended = None
    while True:
        try:
            if ended is None:
                ended = presence.redis.pubsub(ignore_subscribe_messages=True)
                ended.subscribe(_sessions_channel(app))
            presence.heartbeat()
            for user_id in presence.reap():
                with app.app_context():
                    broadcast.presence(user_id, False, service.member_pairs(user_id))
            _wait_for_ended_sessions(ended, presence.ttl / 3)
        except RedisError as exc:
            log.warning("presence heartbeat failed: %s", exc.__class__.__name__)
            if ended is not None:
                ended.close()
            ended = None
            socketio.sleep(1)
        except Exception:
            log.exception("presence heartbeat failed")
            socketio.sleep(1)


def _wait_for_ended_sessions(ended: PubSub, seconds: float) -> None:
    """Until the next heartbeat is due, disconnect the sockets of tokens logged out elsewhere."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = ended.get_message(timeout=min(left, 1))
        if message is not None:
            broadcast.end_sessions(message["data"].decode())
