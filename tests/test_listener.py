"""`python wsgi.py` listens with TCP_NODELAY, so back-to-back frames are not held ~40 ms."""

from __future__ import annotations

import socket

from miaubloom.serving import listener


def test_accepted_connections_send_without_nagle_delay():
    with listener("127.0.0.1", 0) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as _client:
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
