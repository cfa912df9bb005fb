"""Who is online and who is typing: kept in memory, never in the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Presence:
    """The sockets of each online user in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: dict[str, set[str]] = {}

    def add(self, user_id: str, sid: str) -> bool:
        """Record a socket; True if it is the user's first."""
        with self._lock:
            sids = self._sockets.setdefault(user_id, set())
            sids.add(sid)
            return len(sids) == 1

    def remove(self, user_id: str, sid: str) -> bool:
        """Forget a socket; True if it was the user's last."""
        with self._lock:
            sids = self._sockets.get(user_id)
            if sids is None or sid not in sids:
                return False
            sids.discard(sid)
            if sids:
                return False
            del self._sockets[user_id]
            return True

    def is_online(self, user_id: str) -> bool:
        """Whether the user has a connected socket."""
        with self._lock:
            return bool(self._sockets.get(user_id))

    def counts(self) -> tuple[int, int]:
        """(online users, connected sockets)."""
        with self._lock:
            return len(self._sockets), sum(len(s) for s in self._sockets.values())


StopTyping = Callable[[str, str, str], None]


class Typing:
    """Typing states that end by themselves after a timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        # (sid, conversacion_id) -> (user_id, deadline)
        self._states: dict[tuple[str, str], tuple[str, float]] = {}

    def start(self, sid: str, user_id: str, conversacion_id: str) -> None:
        """Start or refresh a typing state."""
        with self._lock:
            self._states[(sid, conversacion_id)] = (user_id, time.monotonic() + self.timeout)

    def stop(self, sid: str, conversacion_id: str) -> bool:
        """End a typing state; True if there was one."""
        with self._lock:
            return self._states.pop((sid, conversacion_id), None) is not None

    def stop_socket(self, sid: str) -> list[tuple[str, str]]:
        """End every typing state of a socket; the (user_id, conversacion_id) ended."""
        with self._lock:
            ended = [key for key in self._states if key[0] == sid]
            return [(self._states.pop(key)[0], key[1]) for key in ended]

    def expire(self) -> list[tuple[str, str, str]]:
        """End the states past their deadline; the (sid, user_id, conversacion_id) ended."""
        now = time.monotonic()
        with self._lock:
            due = [key for key, (_, deadline) in self._states.items() if deadline <= now]
            return [(key[0], self._states.pop(key)[0], key[1]) for key in due]
