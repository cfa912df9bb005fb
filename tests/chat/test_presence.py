"""Presence: memory for one process; Redis across processes, robust to a process that dies."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from miaubloom import redisconn
from miaubloom.chat.heartbeat import presence_for
from miaubloom.chat.presence import Presence, RedisPresence
from tests.support.cluster import REDIS_URL, forget
from tests.support.live import free_port


def test_no_queue_means_memory_presence(app):
    presence = presence_for(app)
    assert type(presence) is Presence


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, deleted afterwards."""
    name = f"miaubloom-test-{uuid.uuid4().hex[:10]}"
    yield name
    forget({"SOCKETIO_MESSAGE_QUEUE": REDIS_URL, "REDIS_KEY_PREFIX": name})


def process(prefix: str, name: str) -> RedisPresence:
    """One process's view of presence (its heartbeat starts with its first socket)."""
    client = redis.Redis.from_url(REDIS_URL)
    return RedisPresence(client, prefix, name, ttl=30, on_first_socket=lambda: None)


def test_two_tabs_on_two_processes(prefix):
    a, b = process(prefix, "a"), process(prefix, "b")
    assert a.add("u1", "s1") is True  # first socket anywhere: online
    assert b.add("u1", "s2") is False  # second tab, other process
    assert a.is_online("u1") and b.is_online("u1")
    assert a.remove("u1", "s1") is False  # a tab is left on b
    assert a.is_online("u1")
    assert a.remove("u1", "s1") is False  # removing twice announces nothing
    assert b.remove("u1", "s2") is True  # last one: offline
    assert not a.is_online("u1") and not b.is_online("u1")
    assert a.counts() == (0, 0) and b.counts() == (0, 0)


def test_a_dead_process_sockets_stop_counting_and_are_reaped_once(prefix):
    a, b = process(prefix, "a"), process(prefix, "b")
    a.add("u1", "s1")
    b.add("u1", "s2")
    b.add("u2", "s3")
    b.redis.delete(f"{prefix}:presence:process:b")  # b died: its heartbeat expired
    assert a.is_online("u1") and not a.is_online("u2")
    assert a.reap() == {"u2"}  # u1 still has a tab on a
    assert a.reap() == set()  # reaped once
    assert a.remove("u1", "s1") is True


def test_a_process_records_its_sockets_again_after_redis_forgot_them(prefix):
    a = process(prefix, "a")
    a.add("u1", "s1")
    keys = list(a.redis.scan_iter(match=prefix + ":*"))
    a.redis.delete(*keys)  # as a Redis restart without persistence does
    assert not a.is_online("u1")
    a.heartbeat()
    assert a.is_online("u1")


def test_redis_down_answers_for_this_process_without_waiting():
    settings = {"REDIS_TIMEOUT": 0.5, "REDIS_RETRY_AFTER": 2}
    client = redisconn.client(f"redis://127.0.0.1:{free_port()}/0", settings)
    p = RedisPresence(client, "x", "a", ttl=30, on_first_socket=lambda: None)
    started = time.monotonic()
    assert p.add("u1", "s1") is True
    assert p.is_online("u1")
    assert p.remove("u1", "s1") is True
    assert time.monotonic() - started < 3, "a connect must not wait on a Redis that is down"
