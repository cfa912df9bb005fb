"""Production entry point: patch the configured async library first, then build the app."""

from __future__ import annotations

import os

_MODE = os.environ.get("SOCKETIO_ASYNC_MODE", "threading")
if _MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif _MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

from miaubloom import create_app  # noqa: E402  (after monkey-patching, on purpose)
from miaubloom.extensions import socketio  # noqa: E402

app = create_app()

if __name__ == "__main__":
    # eventlet's (or gevent's) own server: python wsgi.py
    extra = {}
    if _MODE == "eventlet":
        # eventlet's WSGI server serves at most 1024 connections at once unless told.
        extra["max_size"] = int(os.environ.get("MAX_CONNECTIONS", "10000"))
    socketio.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5000")),
        allow_unsafe_werkzeug=_MODE == "threading",
        **extra,
    )
