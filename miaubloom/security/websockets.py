"""The WebSocket of the gevent and threading modes (simple-websocket), fixed at three points.

Reads: simple-websocket reads each WebSocket in a thread (a greenlet, under
gevent) of its own and appends every message to a list that Engine.IO's
reader empties. Under gevent a greenlet that reads a socket with data waiting
never yields, so a client streaming frames has all of them read, and held,
before the reader looks at the first one: 115 MB in one second of 60 KB
frames, before the first packet could be refused. Here the "message arrived"
event the reader waits on yields when it is set: each message is looked at
(and a violation closes the connection) before the next one is read.

Writes: simple-websocket 1.1 writes a frame with one socket.send(), which may
write only part of it when the socket's buffer is short of room (a large
history page, or any frame to a slow reader), corrupting the stream
(simple-websocket issue 45, fixed upstream, not released). Here each frame
is written whole. And the frames Engine.IO's writer takes from the socket's
queue in one go (a message's copy, its list update and the ack, to a sender)
go out in one write, when the writer comes back to the queue: one system call
instead of three (on loopback, the kernel's work for each write was a quarter
of the process's CPU: bench/RESULTS.md).

And closing a connection the peer has reset is not an error (it was a
traceback per dropped connection).

eventlet's WebSocket is read and written by Engine.IO's own reader and
writer, one whole frame at a time: nothing to do there.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from typing import Any

from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
from wsproto.events import Message, TextMessage

from .outbound import BoundedQueue


# One class per (event class, sleep), not per socket: a class is ~2.5 KB, and every
# WebSocket asked for one (bench/socket_memory.py).
@functools.cache
def _yielding(event_class: type, sleep: Callable[[float], object]) -> type:
    """An Event class whose set() lets the waiting reader run before the caller goes on."""

    class YieldingEvent(event_class):  # type: ignore[misc]  # a base chosen at run time
        def set(self) -> None:
            super().set()
            sleep(0)

    return YieldingEvent


def fixed_websocket(websocket_class: type, sleep: Callable[[float], object]) -> type:
    """Engine.IO's WebSocket class for this async mode, reads paced by its reader, writes whole."""
    if not issubclass(websocket_class, SimpleWebSocketWSGI):
        return websocket_class  # eventlet's own

    class FixedWebSocket(websocket_class):  # type: ignore[misc]  # a base chosen at run time
        def __init__(self, handler: Any, server: Any, **kwargs: Any) -> None:
            super().__init__(handler, server, **kwargs)
            event_class = self.server_args.get("event_class") or threading.Event
            self.server_args["event_class"] = _yielding(event_class, sleep)

        _unsent: list[bytes] | None = None
        _broken = False

        def send(self, message: str | bytes) -> None:
            ws = self.ws
            if not ws.connected or self._broken:
                raise OSError("WebSocket closed")  # what SimpleWebSocketWSGI.send raises
            event = Message(data=message) if isinstance(message, bytes) else TextMessage(message)
            frame = ws.ws.send(event)
            socket = getattr(self.app, "__self__", None)
            queue = getattr(socket, "queue", None)
            # Only Engine.IO's writer sends once the socket is not upgrading (the probe's
            # answer comes before the writer starts). Told apart by that state, not by a
            # thread id: ids of finished threads and greenlets are reused.
            if isinstance(queue, BoundedQueue) and not getattr(socket, "upgrading", True):
                # The writer, between two visits to the queue: the next visit writes.
                if self._unsent is None:
                    self._unsent = []
                    queue.before_wait = self.flush
                self._unsent.append(frame)
            else:  # the upgrade's probe, before the writer runs
                ws.sock.sendall(frame)

        def flush(self) -> None:
            """Write the frames the writer handed over since its last visit to the queue."""
            if self._unsent:
                frames, self._unsent[:] = b"".join(self._unsent), []
                try:
                    self.ws.sock.sendall(frames)
                except OSError:
                    self._broken = True  # the writer's next send raises, and it stops

        def close(self) -> None:
            # Engine.IO's writer closes after its last frame; a peer that reset the
            # connection (or a transport dropped for cause) has nothing left to close.
            self.flush()
            with contextlib.suppress(OSError):
                super().close()

    return FixedWebSocket
