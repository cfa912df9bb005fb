"""Ending sockets: on logout in every process (Redis pub/sub, and a periodic sweep), and on expiry."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from flask import Flask

from .. import redisconn
from ..auth import Caller
from ..chat import rooms
from ..extensions import db, socketio
from ..models import TokenRevocado
from ..state import app_state

log = logging.getLogger(__name__)


class Sessions:
    """One per app: announces logouts to the other processes and sweeps expired sockets."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        queue = app.config.get("SOCKETIO_MESSAGE_QUEUE") or ""
        self.redis_url = queue if queue.startswith(("redis://", "rediss://")) else ""
        self.channel = app.config.get("SOCKETIO_CHANNEL", "flask-socketio") + ":logout"
        self.interval = max(0.1, float(app.config.get("SESSION_CHECK_SECONDS", 30)))
        self._started = False
        self._lock = threading.Lock()
        self._redis = redisconn.client(self.redis_url, app.config) if self.redis_url else None
        self._timeout = float(app.config["REDIS_TIMEOUT"])
        self._stopping = app_state(app).stopping

    def end(self, token_hash: str) -> None:
        """Disconnect the sockets opened with a token, here and in every other process."""
        disconnect_local(token_hash)
        if self._redis is not None:
            try:
                self._redis.publish(self.channel, token_hash)
            except redis.RedisError:
                # The token is revoked in the database: the sweep ends those sockets anyway.
                log.warning("could not announce a logout to the other processes")

    def start(self, namespace: Any) -> None:
        """Start this process's listener and expiry sweeper (once, on the first connection)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        socketio.start_background_task(self._sweep, namespace)
        if self._redis is not None:
            socketio.start_background_task(self._listen)

    def _sweep(self, namespace: Any) -> None:
        """Disconnect sockets whose token expired or was revoked, even if they send nothing."""
        while True:
            socketio.sleep(self.interval)  # type: ignore[arg-type]  # types-flask-socketio says int; it takes float
            if self._stopping.is_set():
                return
            try:
                for sid in self.ended(namespace):
                    namespace.server.disconnect(sid, namespace="/")
            except Exception:  # the sweeper must outlive any one failure
                log.exception("session sweep failed")

    def ended(self, namespace: Any) -> list[str]:
        """This process's sockets to cut: token expired or revoked, or no caller on record.

        It walks the server's own list of connected sockets, not the namespace's
        callers: whatever a handler did to that dict, a connected socket is checked.
        """
        known: dict[str, Caller] = dict(namespace.callers)
        manager = namespace.server.manager  # this app's server (tests make many apps)
        # Sockets still in their connect handler are not connected yet: not theirs to cut.
        sids = [s for s, _ in manager.get_participants("/", None) if manager.is_connected(s, "/")]
        callers = {sid: known[sid] for sid in sids if sid in known}
        return [sid for sid in sids if sid not in known] + self._ended(callers)

    def _ended(self, callers: dict[str, Caller]) -> list[str]:
        """Sockets whose token has expired or was revoked (by a logout in any process)."""
        ended = [sid for sid, caller in callers.items() if caller.expired()]
        hashes = list({c.token_hash for sid, c in callers.items() if sid not in ended})
        if not hashes:
            return ended
        revoked: set[str] = set()
        with self.app.app_context():
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                query = db.select(TokenRevocado.token_hash).where(
                    TokenRevocado.token_hash.in_(chunk)
                )
                revoked.update(db.session.scalars(query))
            db.session.remove()
        return ended + [sid for sid, c in callers.items() if c.token_hash in revoked]

    def _listen(self) -> None:
        """Disconnect local sockets of tokens logged out in other processes."""
        client = self._redis
        assert client is not None
        # Through outages and silences alike (redisconn.subscribed subscribes again).
        for message in redisconn.subscribed(
            lambda: client,
            self.channel,
            self._timeout,
            sleep=socketio.sleep,  # type: ignore[arg-type]  # types-flask-socketio says int; it takes float
        ):
            data = message.get("data")
            if isinstance(data, bytes):
                disconnect_local(data.decode("ascii", "replace"))


def disconnect_local(token_hash: str) -> None:
    """Disconnect this process's sockets opened with a token."""
    server = socketio.server  # type: ignore[attr-defined]  # left out of types-flask-socketio
    if server is None:
        return
    for sid, _ in list(server.manager.get_participants("/", rooms.token(token_hash))):
        server.disconnect(sid, namespace="/")


def init_app(app: Flask) -> Sessions:
    """Attach the sessions keeper to the app."""
    return Sessions(app)
