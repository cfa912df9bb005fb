"""Who is online: in this process's memory, and in Redis when several processes share it."""

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

    def holds(self, user_id: str, sid: str) -> bool:
        """Whether this socket of the user is recorded here."""
        with self._lock:
            return sid in self._sockets.get(user_id, ())

    def local_sockets(self) -> list[tuple[str, str]]:
        """Every (user, sid) recorded here."""
        with self._lock:
            return [(user, sid) for user, sids in self._sockets.items() for sid in sids]

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


# Each user's sockets live in a hash {sid: process id}; a socket counts only while its
# process's heartbeat key exists, so a process killed without cleaning up stops counting
# within PRESENCE_TTL seconds. Scripts run atomically in Redis, so two tabs connecting on
# two processes at once cannot both (or neither) be "the first".
_COUNT = """
local live = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[1] .. fields[i + 1]) == 1 then
    live = live + 1
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
"""
# The user's live sockets, forgetting those of dead processes.
_LIVE = _COUNT + "return live\n"
# _LIVE after recording the socket ARGV[2] as on process ARGV[3].
_ADD = "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n" + _LIVE
# _LIVE after forgetting the socket ARGV[2]; the hash goes with the user's last socket.
_DROP = (
    "redis.call('HDEL', KEYS[1], ARGV[2])\n"
    + _COUNT
    + "if live == 0 then redis.call('DEL', KEYS[1]) end\nreturn live\n"
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
        self._start_lock = threading.Lock()
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

    @property
    def _processes_key(self) -> str:
        """The set of every process that holds sockets."""
        return f"{self.prefix}:presence:processes"

    def add(self, user_id: str, sid: str) -> bool:
        """Record a socket here and in Redis; True if it is the user's first live one."""
        first_here = super().add(user_id, sid)
        with self._start_lock:
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
        known = self.holds(user_id, sid)
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
            self.redis.sadd(self._processes_key, self.process_id)
            self._record_all()
        # The registry and this process's socket list outlive the heartbeat long enough
        # for a survivor to reap them, and vanish once every process is gone.
        pipe = self.redis.pipeline(transaction=False)
        pipe.expire(key, ttl)
        pipe.expire(self._processes_key, ttl * 20)
        pipe.expire(self._sockets_key(self.process_id), ttl * 20)
        pipe.execute()

    def _record_all(self) -> None:
        mine = self.local_sockets()
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
        processes = self._processes_key
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
