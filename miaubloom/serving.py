"""`python wsgi.py`: the async library's own server, listening with TCP_NODELAY."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from flask import Flask

from config import ConfigError, raise_open_file_limit

log = logging.getLogger(__name__)


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


def open_files_for(connections: int) -> None:
    """Raise the open-file limit for `connections`, logged; ConfigError when it cannot be raised."""
    try:
        before, after = raise_open_file_limit(connections)
    except RuntimeError as exc:
        log.error("refusing to start: %s", exc)
        raise ConfigError(str(exc)) from None
    log.info("open-file limit %s (was %s) for %s connections", after, before, connections)


def run(app: Flask, socketio: Any, mode: str) -> None:
    """Serve app on HOST:PORT with the server of the async mode, until stopped."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    # As many connections at once as gunicorn's worker would take (gunicorn.conf.py).
    connections = app.config["MAX_CONNECTIONS"]
    if mode == "eventlet":
        import eventlet.wsgi

        open_files_for(connections)
        eventlet.wsgi.server(listener(host, port), app, max_size=connections, log_output=False)
    elif mode == "gevent":
        from gevent.pool import Pool
        from gevent.pywsgi import WSGIServer

        open_files_for(connections)
        WSGIServer(listener(host, port), app, spawn=Pool(connections), log=None).serve_forever()
    else:
        socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True)
