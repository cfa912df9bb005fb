"""The Redis relay between processes: emits waiting behind a publish share the next one.

python-socketio's RedisManager publishes every emit in a round trip of its
own, paid by the event that emits; a chat message makes three. Here the first
emitter publishes, and emits made while its round trip runs wait in an outbox
that it then publishes in one pipeline: one round trip for all of them, in
the order they were made. A lone emit (the CLI's, say) is published before
emit() returns, as before. Delivery is what Socket.IO's queue always gave:
emit() does not wait for the other processes, and a client that missed an
event catches up with chat:sync.

Every Redis call has a deadline (redisconn): with Redis silent, an emit is
dropped at once instead of holding the event that made it, and the listener
notices the silence and subscribes again when Redis answers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import socketio

from .. import redisconn

# More than this many waiting emits go in the next round trip.
MAX_PIPELINE = 256


class PipelinedRedisManager(socketio.RedisManager):  # type: ignore[misc]  # python-socketio: no types, no stubs
    """RedisManager whose publishes made during another one go out together after it."""

    connected: bool  # RedisManager's: whether self.redis is connected

    def __init__(
        self, url: str, channel: str, write_only: bool = False, timeout: float = 0.5, **options: Any
    ) -> None:
        """Relay on the Redis at url, on channel, as RedisManager does; options for redis-py."""
        super().__init__(
            url,
            channel=channel,
            write_only=write_only,
            redis_options={"socket_timeout": timeout, **options},
        )
        self.timeout = timeout
        self._outbox: deque[str] = deque()
        self._publishing = threading.Lock()
        self.round_trips = 0

    def _publish(self, data: dict[str, Any]) -> None:
        """Queue a message; publish the queue unless another caller is publishing it."""
        # Encoded by its caller, so a message that cannot be encoded fails that emit alone.
        self._outbox.append(self.json.dumps(data))
        # A message queued while the publisher releases is seen by this re-check.
        while self._outbox and self._publishing.acquire(blocking=False):
            try:
                while self._outbox:
                    n = min(len(self._outbox), MAX_PIPELINE)
                    self._publish_all([self._outbox.popleft() for _ in range(n)])
            finally:
                self._publishing.release()

    def _publish_all(self, payloads: list[str]) -> None:
        """Publish encoded messages in one round trip; reconnect and retry once, as RedisManager does."""
        for retries_left in (1, 0):
            try:
                if not self.connected:
                    self._redis_connect()
                pipe = self.redis.pipeline(transaction=False)
                for payload in payloads:
                    pipe.publish(self.channel, payload)
                pipe.execute()
                self.round_trips += 1
                return
            except redisconn.RedisDown:
                return  # known down (logged once when it went): the emits are dropped
            except Exception as exc:
                giving_up = "giving up" if retries_left == 0 else "retrying"
                self._get_logger().error(
                    f"Cannot publish {len(payloads)} message(s) to redis... {giving_up}",
                    extra={"redis_exception": str(exc)},
                )
                self.connected = False

    def _redis_listen_with_retries(self) -> Iterator[dict[str, Any]]:
        """The channel's messages; unlike RedisManager's, this listener notices a silent Redis."""
        return redisconn.subscribed(self._listener_redis, self.channel, self.timeout)

    def _listener_redis(self) -> Any:
        """A fresh client, as RedisManager's own listener makes on each (re)subscription."""
        self._redis_connect()
        return self.redis


def client_manager(url: str | None, channel: str, config: dict[str, Any]) -> socketio.Manager:
    """This process's rooms alone without a queue; with one (a Redis, as presence needs), the relay."""
    if not url:
        return socketio.Manager()
    options = redisconn.config_options(url, config)
    return PipelinedRedisManager(
        url, channel=channel, timeout=options.pop("socket_timeout"), **options
    )
