"""Who is online and who is typing: kept in memory, never in the database."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Last-seen times are kept this long (seconds), and pruned once more than this many users.
SEEN_FOR = 7 * 24 * 3600
SEEN_KEPT = 10_000


class Presence:
    """The sockets of each online user in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: dict[str, set[str]] = {}
        # When each user's last socket went away (epoch seconds), for notifications.
        self._seen: dict[str, float] = {}

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
            self._saw(user_id)
            return True

    def is_online(self, user_id: str) -> bool:
        """Whether the user has a connected socket."""
        with self._lock:
            return bool(self._sockets.get(user_id))

    def sockets_here(self, user_id: str) -> int:
        """How many sockets the user has connected to this process."""
        with self._lock:
            return len(self._sockets.get(user_id, ()))

    def counts(self) -> tuple[int, int]:
        """(online users, connected sockets)."""
        with self._lock:
            return len(self._sockets), sum(len(s) for s in self._sockets.values())

    def last_seen(self, user_id: str) -> float | None:
        """When the user last had a socket (epoch seconds; now while online), or None."""
        with self._lock:
            if self._sockets.get(user_id):
                return time.time()
            return self._seen.get(user_id)

    def _saw(self, user_id: str) -> None:
        """Record that the user's last socket went away now (called with the lock held)."""
        now = time.time()
        self._seen[user_id] = now
        if len(self._seen) > SEEN_KEPT:
            # Older than a notification could ask about: forgetting them changes nothing.
            self._seen = {u: t for u, t in self._seen.items() if now - t < SEEN_FOR}


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


# Each user's sockets live in a hash {sid: process id}; a socket counts only while its
# process's heartbeat key exists, so a process killed without cleaning up stops counting
# within PRESENCE_TTL seconds. Scripts run atomically in Redis, so two tabs connecting on
# two processes at once cannot both (or neither) be "the first".
_LIVE = """
local live = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[1] .. fields[i + 1]) == 1 then
    live = live + 1
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return live
"""
_ADD = "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n" + _LIVE
_DROP = "redis.call('HDEL', KEYS[1], ARGV[2])\n" + _LIVE.replace(
    "return live", "if live == 0 then redis.call('DEL', KEYS[1]) end\nreturn live"
)


def _unavailable(error: RedisError) -> None:
    # A Redis known to be down was logged once already (redisconn).
    if error.__class__.__name__ != "RedisDown":
        log.warning("presence: Redis unavailable, answering for this process only")


class RedisPresence(Presence):
    """Presence shared by every process on one Redis; this process's sockets also in memory."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        process_id: str,
        ttl: float,
        on_first_socket: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self.redis = redis
        self.prefix = prefix
        self.process_id = process_id
        self.ttl = ttl
        # Starts the heartbeat loop, on the first socket (so CLI processes never beat).
        self.on_first_socket = on_first_socket
        self._add = redis.register_script(_ADD)
        self._drop = redis.register_script(_DROP)
        self._live = redis.register_script(_LIVE)

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}:presence:user:{user_id}"

    def _process_key(self, process_id: str) -> str:
        return f"{self.prefix}:presence:process:{process_id}"

    def _sockets_key(self, process_id: str) -> str:
        return f"{self.prefix}:presence:sockets:{process_id}"

    def _seen_key(self, user_id: str) -> str:
        return f"{self.prefix}:presence:seen:{user_id}"

    @property
    def _process_prefix(self) -> str:
        return self._process_key("")

    def add(self, user_id: str, sid: str) -> bool:
        """Record a socket here and in Redis; True if it is the user's first live one."""
        first_here = super().add(user_id, sid)
        with self._lock:
            start, self.on_first_socket = self.on_first_socket, None
        if start is not None:
            with contextlib.suppress(RedisError):
                self.heartbeat()  # before the script below counts this process's sockets
            start()
        try:
            self.redis.sadd(self._sockets_key(self.process_id), f"{user_id} {sid}")
            live = self._add(
                [self._user_key(user_id)], [self._process_prefix, sid, self.process_id]
            )
            return int(live) == 1
        except RedisError as exc:
            _unavailable(exc)
            return first_here

    def remove(self, user_id: str, sid: str) -> bool:
        """Forget a socket here and in Redis; True if the user has no live socket left."""
        with self._lock:
            known = sid in self._sockets.get(user_id, ())
        last_here = super().remove(user_id, sid)
        if not known:
            return False
        try:
            self.redis.srem(self._sockets_key(self.process_id), f"{user_id} {sid}")
            live = self._drop([self._user_key(user_id)], [self._process_prefix, sid])
            if int(live) == 0:
                self._mark_seen(user_id)
            return int(live) == 0
        except RedisError as exc:
            _unavailable(exc)
            return last_here

    def is_online(self, user_id: str) -> bool:
        """Whether the user has a live socket on any process."""
        try:
            return int(self._live([self._user_key(user_id)], [self._process_prefix])) > 0
        except RedisError:
            return super().is_online(user_id)

    def last_seen(self, user_id: str) -> float | None:
        """When the user last had a live socket on any process (now while online), or None."""
        try:
            if self.is_online(user_id):
                return time.time()
            seen = self.redis.get(self._seen_key(user_id))
            return float(seen) if seen is not None else None
        except (RedisError, ValueError):
            return super().last_seen(user_id)

    def _mark_seen(self, user_id: str) -> None:
        self.redis.set(self._seen_key(user_id), repr(time.time()), ex=SEEN_FOR)

    def heartbeat(self) -> None:
        """Keep this process alive in Redis; after Redis lost it, record its sockets again."""
        ttl = max(1, round(self.ttl))
        key = self._process_key(self.process_id)
        if self.redis.set(key, "1", ex=ttl, nx=True):
            self.redis.sadd(f"{self.prefix}:presence:processes", self.process_id)
            self._record_all()
        # The registry and this process's socket list outlive the heartbeat long enough
        # for a survivor to reap them, and vanish once every process is gone.
        pipe = self.redis.pipeline(transaction=False)
        pipe.expire(key, ttl)
        pipe.expire(f"{self.prefix}:presence:processes", ttl * 20)
        pipe.expire(self._sockets_key(self.process_id), ttl * 20)
        pipe.execute()

    def _record_all(self) -> None:
        with self._lock:
            mine = [(user, sid) for user, sids in self._sockets.items() for sid in sids]
        if not mine:
            return
        pipe = self.redis.pipeline()
        for user, sid in mine:
            pipe.hset(self._user_key(user), sid, self.process_id)
            pipe.sadd(self._sockets_key(self.process_id), f"{user} {sid}")
        pipe.execute()

    def reap(self) -> set[str]:
        """Forget the sockets of processes whose heartbeat expired; the users now offline."""
        offline: set[str] = set()
        processes = f"{self.prefix}:presence:processes"
        for process_id in self.redis.smembers(processes):
            pid = process_id.decode() if isinstance(process_id, bytes) else process_id
            if pid == self.process_id or self.redis.exists(self._process_key(pid)):
                continue
            if not self.redis.srem(processes, pid):
                continue  # another process claimed this one
            for entry in self.redis.smembers(self._sockets_key(pid)):
                user, sid = (entry.decode() if isinstance(entry, bytes) else entry).split(" ", 1)
                if int(self._drop([self._user_key(user)], [self._process_prefix, sid])) == 0:
                    offline.add(user)
                    self._mark_seen(user)  # about when its process died
            self.redis.delete(self._sockets_key(pid))
        return offline
