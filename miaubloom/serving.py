"""`python wsgi.py`: the async library's own server, listening with TCP_NODELAY."""

from __future__ import annotations

import os
import socket
from typing import Any

from flask import Flask


def listener(host: str, port: int) -> socket.socket:
    """A listening socket whose connections send each frame at once.

    A chat event writes small frames back to back to one socket (the message,
    the list update, the ack). With Nagle's algorithm each one after the first
    waits for the client's delayed ACK, about 40 ms on Linux; connections
    accepted from this socket inherit TCP_NODELAY (gunicorn sets it too).
    """
    sock = socket.create_server((host, port), backlog=2048)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run(app: Flask, socketio: Any, mode: str) -> None:
    """Serve app on HOST:PORT with the server of the async mode, until stopped."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    if mode == "eventlet":
        import eventlet.wsgi

        # eventlet's WSGI server serves at most 1024 connections at once unless told.
        max_size = int(os.environ.get("MAX_CONNECTIONS", "10000"))
        eventlet.wsgi.server(listener(host, port), app, max_size=max_size, log_output=False)
    elif mode == "gevent":
        from gevent.pywsgi import WSGIServer

        WSGIServer(listener(host, port), app, log=None).serve_forever()
    else:
        socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True)
