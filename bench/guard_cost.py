"""What the transport guards add per frame: the packet check, the outbound bound, the read pacing.

    python bench/guard_cost.py

Each line: the guarded operation and the bare one it wraps, in microseconds (best of 5
rounds of timeit), and the difference. The guards run once per inbound frame (check,
pacing) or per outbound packet (bound); a chat message costs the server ~650 µs of CPU.
"""

from __future__ import annotations

import json
import queue
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent
import gevent.event
import gevent.queue
from engineio import packet as eio_packet
from socketio import packet

from miaubloom.security import frames
from miaubloom.security.outbound import BoundedQueue
from miaubloom.security.websockets import _yielding

N = 20_000


def best(stmt, number: int = N) -> float:  # type: ignore[no-untyped-def]
    """Microseconds per call, best of 5 rounds."""
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


def send_frame(chars: int) -> str:
    """A chat:send-message packet as python-socketio's message handler receives it."""
    body = {"conversacionId": "8c2f0a4e-1b7d-4e55-9a43-3f8e2d1c9b70", "contenido": "a" * chars}
    return "21" + json.dumps(["chat:send-message", body])


def row(name: str, guarded: float, bare: float) -> None:
    """One line of the table."""
    print(f"{name:<44} {guarded:8.2f} {bare:8.2f} {guarded - bare:+8.2f}")


def main() -> None:
    """Print the table."""
    print(f"{'per frame (µs)':<44} {'guarded':>8} {'bare':>8} {'added':>8}")
    for chars in (100, 60_000):
        frame = send_frame(chars)
        row(
            f"inbound check, {len(frame):,}-byte event",
            best(lambda f=frame: frames.decode(packet.Packet, f), N // (1 + chars // 1000)),
            best(lambda f=frame: packet.Packet(encoded_packet=f), N // (1 + chars // 1000)),
        )
    pkt = eio_packet.Packet(
        eio_packet.MESSAGE, data="2" + json.dumps(["chat:message-received", {}])
    )
    for name, make in (("threading", queue.Queue), ("gevent", gevent.queue.JoinableQueue)):
        bounded, bare = BoundedQueue(make(), 4 << 20), make()

        def through(q) -> None:  # type: ignore[no-untyped-def]
            q.put(pkt)
            q.get()
            q.task_done()

        row(
            f"outbound put+get, {name} queue",
            best(lambda q=bounded: through(q)),
            best(lambda q=bare: through(q)),
        )
    plain, paced = gevent.event.Event(), _yielding(gevent.event.Event, gevent.sleep)()
    row("inbound 'message arrived' set() (gevent)", best(paced.set), best(plain.set))


if __name__ == "__main__":
    main()
