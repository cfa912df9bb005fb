"""A bound on the bytes waiting to be written to one socket.

Engine.IO gives each socket a queue of packets that its writer (WebSocket) or
the client's next poll (long-polling) empties; the queue has no bound, so a
client that never reads makes the server keep everything sent to it. Each
socket's queue is created by the Engine.IO server's create_queue(), whatever
the async mode (a gevent JoinableQueue, an eventlet Queue, a queue.Queue):
this wraps it, counts the bytes of the packets in it, and past the limit
drops the packet and reports the overflow once, so the socket can be closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast


def _size(pkt: Any) -> int:
    # Engine.IO packets cache their encoding, so the writer reuses this one. The JSON
    # is ASCII (non-ASCII escaped), so its length is the frame's size in bytes.
    return 0 if pkt is None else len(pkt.encode())


class BoundedQueue:
    """An Engine.IO socket queue that stops taking packets once `limit` bytes wait in it.

    A packet that finds `limit` bytes or more waiting is dropped, and so is
    every one after it, and `on_overflow` is called (once). A packet that finds
    less is taken whatever its size, so one large reply (a history page)
    reaches a client that reads: the queue holds at most `limit` bytes plus
    one packet.
    """

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.queued = 0
        self.overflowed = False
        self.on_overflow: Callable[[], object] | None = None
        self._lock = threading.Lock()  # put and get run on different threads in threading mode
        # What the queue's reader must do before it waits for more: write what it took
        # (security/websockets.py coalesces a batch).
        self.before_wait: Callable[[], object] | None = None

    def put(self, pkt: Any, *args: Any, **kwargs: Any) -> None:
        """Queue a packet, or drop it past the limit; None (the end marker) always goes in."""
        size = _size(pkt)
        with self._lock:
            refused = pkt is not None and (self.overflowed or self.queued >= self.limit)
            if refused:
                first, self.overflowed = not self.overflowed, True
            else:
                self.queued += size
        if not refused:
            self.inner.put(pkt, *args, **kwargs)
        elif first and self.on_overflow is not None:
            self.on_overflow()

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """The next packet (as the inner queue's get)."""
        if self.before_wait is not None and kwargs.get("block", args[0] if args else True):
            self.before_wait()
        pkt = self.inner.get(*args, **kwargs)
        size = _size(pkt)
        with self._lock:
            self.queued -= size
        return pkt

    def task_done(self) -> None:
        """As the inner queue's task_done."""
        self.inner.task_done()

    def join(self, *args: Any, **kwargs: Any) -> Any:
        """As the inner queue's join."""
        return self.inner.join(*args, **kwargs)

    def qsize(self) -> int:
        """Packets waiting."""
        return cast(int, self.inner.qsize())

    def empty(self) -> bool:
        """Whether no packet waits."""
        return cast(bool, self.inner.empty())


def bounded(create_queue: Callable[[], Any], limit: int) -> Callable[..., BoundedQueue]:
    """A create_queue for the Engine.IO server whose queues hold at most `limit` bytes."""

    def create(*args: Any, **kwargs: Any) -> BoundedQueue:
        return BoundedQueue(create_queue(*args, **kwargs), limit)

    return create
