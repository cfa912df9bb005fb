"""The bound on what waits to be written to one socket (security/outbound.py), in every async mode."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap

import gevent.queue
import pytest
from engineio import packet

from miaubloom.security.outbound import BoundedQueue

QUEUES = {
    "threading": queue.Queue,  # engineio's threading driver
    "gevent": gevent.queue.JoinableQueue,  # engineio's gevent driver
}


def _frame(size: int) -> packet.Packet:
    """An Engine.IO message whose encoded frame is `size` bytes."""
    return packet.Packet(packet.MESSAGE, data="x" * (size - 1))


@pytest.mark.parametrize("mode", QUEUES)
def test_past_the_bound_packets_are_dropped_and_the_overflow_reported_once(mode):
    q = BoundedQueue(QUEUES[mode](), limit=1000)
    overflows: list[int] = []
    q.on_overflow = lambda: overflows.append(1)
    for _ in range(5):
        q.put(_frame(300))
    assert q.queued == 1200 and q.qsize() == 4  # the fifth found 1,200 bytes waiting
    assert overflows == [1]
    q.get()  # room again, but once overflowed nothing more goes in...
    q.put(_frame(10))
    q.put(None)  # ...but the end marker that stops the writer
    assert overflows == [1] and q.qsize() == 4
    sizes = [0 if p is None else len(p.encode()) for p in (q.get(), q.get(), q.get(), q.get())]
    assert sizes == [300, 300, 300, 0] and q.queued == 0


@pytest.mark.parametrize("mode", QUEUES)
def test_a_reading_client_gets_every_packet(mode):
    q = BoundedQueue(QUEUES[mode](), limit=1000)
    q.put(_frame(900))
    q.put(_frame(5000))  # one reply larger than the bound, while under it: taken
    assert [len(q.get().encode()), len(q.get().encode())] == [900, 5000]
    for _ in range(100):  # the writer keeps up: the queue never holds much
        q.put(_frame(600))
        q.get(block=False)
        q.task_done()
    assert q.queued == 0 and not q.overflowed


def test_eventlets_queue_too():
    # In a process of its own: importing eventlet here would change this test process.
    code = textwrap.dedent(
        """
        import eventlet.queue
        from engineio import packet
        from miaubloom.security.outbound import BoundedQueue
        q = BoundedQueue(eventlet.queue.Queue(), limit=1000)
        hits = []
        q.on_overflow = lambda: hits.append(1)
        for _ in range(5):
            q.put(packet.Packet(packet.MESSAGE, data="x" * 299))
        q.put(None)
        assert (q.queued, q.qsize(), hits) == (1200, 5, [1]), (q.queued, q.qsize(), hits)
        while q.get(block=False) is not None:
            pass
        assert q.queued == 0
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_every_socket_of_the_server_gets_a_bounded_queue(app):
    eio = app.extensions["socketio"].server.eio
    made = eio.create_queue()
    assert isinstance(made, BoundedQueue)
    assert made.limit == app.config["SOCKETIO_MAX_OUTBOUND"]
