"""Who is typing where: states in this process's memory that end by themselves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

StopTyping = Callable[[str, str, str], None]


class Typing:
    """Typing states that end by themselves after a timeout.

    Also remembers, per socket, the conversations it was found (not) to be a
    member of when it typed outside a joined room: at most CHECKS_PER_SOCKET
    database reads per socket, however many typing events it sends.
    """

    CHECKS_PER_SOCKET = 16

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        # (sid, conversacion_id) -> (user_id, deadline)
        self._states: dict[tuple[str, str], tuple[str, float]] = {}
        # sid -> {conversacion_id: is a member}
        self._checked: dict[str, dict[str, bool]] = {}

    def start(self, sid: str, user_id: str, conversacion_id: str) -> bool:
        """Start or refresh a typing state; True if it is new (to be announced)."""
        with self._lock:
            new = (sid, conversacion_id) not in self._states
            self._states[(sid, conversacion_id)] = (user_id, time.monotonic() + self.timeout)
            return new

    def stop(self, sid: str, conversacion_id: str) -> bool:
        """End a typing state; True if there was one."""
        with self._lock:
            return self._states.pop((sid, conversacion_id), None) is not None

    def stop_socket(self, sid: str) -> list[tuple[str, str]]:
        """End a socket's typing states and forget its checks; the (user_id, conversacion_id) ended."""
        with self._lock:
            self._checked.pop(sid, None)
            ended = [key for key in self._states if key[0] == sid]
            return [(self._states.pop(key)[0], key[1]) for key in ended]

    def checked(self, sid: str, conversacion_id: str) -> bool | None:
        """Whether this socket was found a member of the conversation; None if never checked."""
        with self._lock:
            return self._checked.get(sid, {}).get(conversacion_id)

    def may_check(self, sid: str) -> bool:
        """Whether this socket may still cost a membership check."""
        with self._lock:
            return len(self._checked.get(sid, ())) < self.CHECKS_PER_SOCKET

    def remember(self, sid: str, conversacion_id: str, member: bool) -> None:
        """Record a membership check of this socket."""
        with self._lock:
            self._checked.setdefault(sid, {})[conversacion_id] = member

    def expire(self) -> list[tuple[str, str, str]]:
        """End the states past their deadline; the (sid, user_id, conversacion_id) ended."""
        now = time.monotonic()
        with self._lock:
            due = [key for key, (_, deadline) in self._states.items() if deadline <= now]
            return [(key[0], self._states.pop(key)[0], key[1]) for key in due]
