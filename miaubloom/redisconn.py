"""Redis clients that never wait long: a deadline on every call, none while Redis is known down.

A silent Redis (a partition that drops packets without a reset) would hold each
caller until the kernel gave up, minutes later, and redis-py's default retries
with back-off add seconds more. Every Redis client of the app (rate-limit
storage, presence, the relay, logouts, notification jobs, health) connects,
reads and writes with a deadline of REDIS_TIMEOUT seconds and retries only a
connection found closed. The first deadline missed, or connection refused,
marks that address down for REDIS_RETRY_AFTER seconds: meanwhile calls fail at
once, so callers take their fallback (limits fail open, presence answers for
this process, emits are dropped and caught up by seq) without each waiting out
its own timeout. Then one caller tries again; an answer marks the address up,
and connections opened before the silence are replaced as they are next used.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)

# A subscriber that heard nothing for this long asks Redis whether it is still there.
PING_AFTER = 5.0
# How often a subscriber wakes up to check that, and to try again after losing Redis.
_POLL = 1.0

_lock = threading.Lock()
# address -> monotonic time before which nobody connects to it
_down_until: dict[str, float] = {}
# address -> how many times it was marked down: a connection opened before the latest
# mark may be dead for good (a partition that outlived a NAT entry), so it is replaced.
_silences: dict[str, int] = {}


class RedisDown(RedisConnectionError):
    """Redis did not answer in time lately: not tried again until REDIS_RETRY_AFTER passes."""


def _address(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}"


def is_down(url: str) -> bool:
    """Whether the Redis at url is marked down right now (no call would be tried)."""
    until = _down_until.get(_address(url))
    return until is not None and time.monotonic() < until


def _mark_down(address: str, down_for: float, error: BaseException) -> None:
    with _lock:
        was_up = address not in _down_until
        _down_until[address] = time.monotonic() + down_for
        _silences[address] = _silences.get(address, 0) + 1
    if was_up:
        log.warning(
            "Redis at %s did not answer (%s); not waiting on it for %.1f s",
            address,
            error.__class__.__name__,
            down_for,
        )


def _mark_up(address: str) -> None:
    if address not in _down_until:  # the usual case: no lock on every reply
        return
    with _lock:
        was_down = _down_until.pop(address, None) is not None
    if was_down:
        log.warning("Redis at %s answers again", address)


class _Guarded:
    """Connection behaviour: refuse to connect while down; mark down on a missed deadline."""

    # Provided by the redis-py connection class this is mixed into.
    host: str
    port: int
    _sock: Any
    disconnect: Callable[..., None]

    def __init__(self, *args: Any, down_for: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down_for = down_for
        self._probe: float | None = None  # the down mark this connection may go past
        self._opened_after = 0  # _silences of its address when it connected

    @property
    def address(self) -> str:
        """host:port, the key the down marks are kept under."""
        return f"{self.host}:{self.port}"

    def mark_down(self, error: BaseException) -> None:
        """Record that this connection's Redis did not answer."""
        _mark_down(self.address, self.down_for, error)

    def _check(self) -> None:
        """Reopen a connection older than the last silence; while down, refuse but one probe."""
        if self._sock is not None and self._opened_after != _silences.get(self.address, 0):
            # Opened before Redis went silent, it may be dead for good (a partition that
            # outlived a NAT entry): the send below opens a fresh one.
            self.disconnect()
        until = _down_until.get(self.address)
        if until is None or until == self._probe:  # the usual case, and the probe's own calls
            return
        with _lock:
            until = _down_until.get(self.address)
            now = time.monotonic()
            if until is None or until == self._probe:
                return
            if now >= until:  # this connection probes; the others wait for its outcome
                self._probe = _down_until[self.address] = now + self.down_for
                return
        self.disconnect()
        raise RedisDown(f"Redis at {self.address} did not answer lately")

    def _connect(self) -> Any:
        self._check()
        self._opened_after = _silences.get(self.address, 0)
        try:
            return super()._connect()  # type: ignore[misc]  # reaches the redis-py class mixed in after this one
        except OSError as exc:  # refused, unreachable, or no answer to the handshake
            self.mark_down(exc)
            raise

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        """Send a command, unless this Redis is down (an open connection would wait too)."""
        self._check()
        super().send_packed_command(*args, **kwargs)  # type: ignore[misc]  # reaches the redis-py class mixed in after this one

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        """Read a reply; a missed deadline marks this Redis down."""
        try:
            response = super().read_response(*args, **kwargs)  # type: ignore[misc]  # reaches the redis-py class mixed in after this one
        except RedisTimeoutError as exc:
            self.mark_down(exc)
            raise
        _mark_up(self.address)
        return response


class GuardedConnection(_Guarded, redis.Connection):
    """A TCP connection to Redis that gives up fast (see the module's docstring)."""


class GuardedSSLConnection(_Guarded, redis.SSLConnection):
    """The same over TLS (rediss://)."""


def options(url: str, timeout: float, down_for: float) -> dict[str, Any]:
    """Keyword arguments for redis.Redis.from_url (or anything passing them on to it)."""
    opts: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # A connection that Redis closed (a restart) is retried once, at once; a
        # missed deadline is not retried: that is what would multiply the wait.
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        opts["connection_class"] = GuardedSSLConnection if scheme == "rediss" else GuardedConnection
        opts["down_for"] = down_for
    return opts


def config_options(url: str, config: dict[str, Any]) -> dict[str, Any]:
    """options() with the app's REDIS_TIMEOUT and REDIS_RETRY_AFTER."""
    return options(url, float(config["REDIS_TIMEOUT"]), float(config["REDIS_RETRY_AFTER"]))


_clients: dict[tuple[str, float, float], redis.Redis] = {}


def client(url: str, config: dict[str, Any]) -> redis.Redis:
    """This process's client for the Redis at url (one connection pool per Redis and settings)."""
    key = (url, float(config["REDIS_TIMEOUT"]), float(config["REDIS_RETRY_AFTER"]))
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = redis.Redis.from_url(url, **config_options(url, config))
    return found


def answers(url: str, config: dict[str, Any]) -> bool:
    """Whether the Redis at url answers a PING now (False at once while it is marked down)."""
    if is_down(url):
        return False
    try:
        return bool(client(url, config).ping())
    except RedisError:
        return False


def subscribed(
    connect: Callable[[], redis.Redis],
    channel: str,
    timeout: float,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """Every message published on channel, forever, through outages.

    redis-py's listen() blocks on a silent connection until the kernel gives
    up; here a subscriber that hears nothing for PING_AFTER seconds sends a
    PING, and one whose PING gets no answer within `timeout` subscribes again
    on a new connection. Messages published meanwhile are lost, as in any outage.
    """
    while True:
        pubsub = None
        try:
            # Held here: a client that is collected closes its pool, this connection with it.
            client = connect()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(channel)
            yield from _listen(pubsub, timeout)
        except RedisDown:
            pass  # logged once, when it went down
        except RedisError as exc:
            log.warning(
                "lost the Redis subscription to %s (%s); subscribing again",
                channel,
                exc.__class__.__name__,
            )
        except Exception:  # the listener must outlive anything a connection does
            log.exception("Redis subscription to %s failed; subscribing again", channel)
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    pubsub.close()
        sleep(_POLL)


def _listen(pubsub: redis.client.PubSub, timeout: float) -> Iterator[dict[str, Any]]:
    heard = time.monotonic()
    pinged: float | None = None
    while True:
        message = pubsub.get_message(timeout=_POLL)
        now = time.monotonic()
        if message is not None:
            heard, pinged = now, None
            if message.get("type") != "pong":
                yield message
        elif pinged is None and now - heard >= PING_AFTER:
            pubsub.ping()
            pinged = now
        elif pinged is not None and now - pinged > timeout:
            error = RedisTimeoutError("no answer to a PING on the subscription")
            if isinstance(pubsub.connection, _Guarded):
                pubsub.connection.mark_down(error)
            raise error
