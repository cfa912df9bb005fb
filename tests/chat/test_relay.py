"""The Redis relay: a lone emit is published at once; emits made meanwhile share a round trip."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import redis
import socketio

from config import TestConfig
from miaubloom import create_app
from miaubloom.chat.relay import PipelinedRedisManager
from miaubloom.extensions import socketio as app_socketio
from tests.support.cluster import REDIS_URL
from tests.support.live import free_port


def emit(n: int) -> dict:
    """A message as PubSubManager.emit hands it to _publish."""
    return {"method": "emit", "event": "chat:test", "data": [n], "room": "r", "host_id": "h"}


@pytest.fixture
def channel():  # type: ignore[no-untyped-def]
    """A fresh channel on the shared Redis and a subscriber to it."""
    name = f"miaubloom-relay-test-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(name)
    sub.get_message(timeout=1)  # the subscribe confirmation
    yield name, sub
    sub.close()
    client.close()


def received(sub, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The data of the next count messages on the channel (2 s each at most)."""
    out = []
    for _ in range(count):
        msg = sub.get_message(timeout=2)
        assert msg is not None, f"only {out} arrived"
        out.append(json.loads(msg["data"])["data"][0])
    return out


class HeldPublish:
    """Wraps a relay's _publish_all: records each round trip's messages, holds the first."""

    def __init__(self, relay: PipelinedRedisManager) -> None:
        self.batches: list[list[int]] = []
        self.in_flight, self.release = threading.Event(), threading.Event()
        self._publish_all = relay._publish_all
        relay._publish_all = self  # type: ignore[method-assign]

    def __call__(self, payloads: list[str]) -> None:
        self.batches.append([json.loads(p)["data"][0] for p in payloads])
        if len(self.batches) == 1:
            self.in_flight.set()
            assert self.release.wait(5)
        self._publish_all(payloads)

    def start(self, relay: PipelinedRedisManager, message: dict) -> threading.Thread:
        """Publish message from another thread; return once its round trip is held."""
        first = threading.Thread(target=relay._publish, args=(message,))
        first.start()
        assert self.in_flight.wait(5)
        return first


def test_a_lone_emit_is_published_before_publish_returns(channel) -> None:  # type: ignore[no-untyped-def]
    name, sub = channel
    relay = PipelinedRedisManager(REDIS_URL, channel=name)
    relay._publish(emit(1))
    assert relay.round_trips == 1
    assert received(sub, 1) == [1]
    relay._publish(emit(2))
    assert relay.round_trips == 2
    assert received(sub, 1) == [2]


def test_emits_made_during_a_publish_go_in_the_next_round_trip_in_order(channel) -> None:  # type: ignore[no-untyped-def]
    name, sub = channel
    relay = PipelinedRedisManager(REDIS_URL, channel=name)
    held = HeldPublish(relay)
    first = held.start(relay, emit(0))
    for n in range(1, 11):
        relay._publish(emit(n))  # returns at once: the first caller publishes it
    assert held.batches == [[0]]
    held.release.set()
    first.join(5)
    assert held.batches == [[0], list(range(1, 11))]
    assert relay.round_trips == 2
    assert received(sub, 11) == list(range(11))


def test_with_redis_down_an_emit_is_dropped_and_logged_not_raised(caplog) -> None:  # type: ignore[no-untyped-def]
    relay = PipelinedRedisManager(f"redis://127.0.0.1:{free_port()}/0", channel="nobody")
    relay._publish(emit(1))
    assert relay.round_trips == 0
    assert not relay._outbox
    assert "Cannot publish 1 message(s) to redis... giving up" in caplog.text


def test_a_message_that_cannot_be_encoded_fails_its_own_emit_only(channel) -> None:  # type: ignore[no-untyped-def]
    name, sub = channel
    relay = PipelinedRedisManager(REDIS_URL, channel=name)
    held = HeldPublish(relay)
    first = held.start(relay, emit(0))
    relay._publish(emit(1))  # waits behind the first
    with pytest.raises(TypeError):
        relay._publish({**emit(2), "data": [object()]})  # fails here, not in the batch
    held.release.set()
    first.join(5)
    assert received(sub, 2) == [0, 1]


def test_the_app_relays_through_redis_only_when_a_queue_is_set(database_url) -> None:  # type: ignore[no-untyped-def]
    queued = TestConfig(database_url)
    queued.SOCKETIO_MESSAGE_QUEUE = REDIS_URL
    create_app(queued)
    assert isinstance(app_socketio.server.manager, PipelinedRedisManager)
    # The next app without a queue does not inherit the previous one's relay.
    create_app(TestConfig(database_url))
    assert type(app_socketio.server.manager) is socketio.Manager
