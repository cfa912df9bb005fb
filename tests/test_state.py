"""The app's state: shutdown() ends the background loops the app started."""

from __future__ import annotations

import threading
import time

from flask import Flask

from miaubloom.state import app_state, shutdown
from tests.conftest import People
from tests.support.testclient import SocketOpener, joined


def test_shutdown_ends_the_background_loops_the_app_started(
    app: Flask, people: People, sockets: SocketOpener
) -> None:
    app_state(app).sessions.interval = 0.1  # the expiry sweep's period (30 s by default)
    before = set(threading.enumerate())
    psicologo, paciente, cid = people.pair()
    s = joined(sockets, paciente, cid)  # the first socket starts the expiry sweep
    ack = s.emit("chat:typing", {"conversacionId": cid}, callback=True)  # the typing sweep
    assert ack["success"], ack
    time.sleep(0.3)  # a few turns of each loop
    loops = [t for t in threading.enumerate() if t not in before]
    assert len(loops) >= 2 and all(t.is_alive() for t in loops)

    shutdown(app)
    deadline = time.monotonic() + 5
    while any(t.is_alive() for t in loops) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in loops if t.is_alive()]
