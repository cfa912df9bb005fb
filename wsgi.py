"""Production entry point: patch the configured async library first, then build the app."""

from __future__ import annotations

import gc
import os
import sys


def _patched_by_worker() -> bool:
    """Whether gevent or eventlet already patched the socket module (gunicorn -k ...)."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    return bool(
        (gevent_monkey and gevent_monkey.is_module_patched("socket"))
        or (eventlet_patcher and eventlet_patcher.is_monkey_patched("socket"))
    )


_MODE = os.environ.get("SOCKETIO_ASYNC_MODE", "threading")
if _MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif _MODE == "gevent":
    import gevent
    from gevent import monkey

    monkey.patch_all()
    # Each greenlet would keep its spawner and 10 frames of the stack it was
    # spawned from, for debugging output nobody prints: ~5 KB per idle socket.
    gevent.config.track_greenlet_tree = False
elif _MODE != "threading":
    raise RuntimeError(f"SOCKETIO_ASYNC_MODE must be eventlet, gevent or threading, not {_MODE!r}")
elif _patched_by_worker():
    # An async gunicorn worker patched the process, but Socket.IO would run threaded.
    raise RuntimeError(
        "SOCKETIO_ASYNC_MODE=threading under an async worker: set it to the worker's"
    )

from config import ConfigError  # noqa: E402
from miaubloom import create_app  # noqa: E402  (after monkey-patching, on purpose)
from miaubloom.extensions import socketio  # noqa: E402
from miaubloom.observability import configure_logging  # noqa: E402

configure_logging()
try:
    app = create_app()
except ConfigError as exc:
    sys.stderr.write(f"{exc}\n")
    raise SystemExit(2) from None
# The app, its models and the libraries are built once and live for good: out of
# the collector's sight, a full collection walks only what requests create
# (100 ms pauses otherwise, the chat's p99).
gc.collect()
gc.freeze()

if __name__ == "__main__":
    # eventlet's (or gevent's) own server: python wsgi.py
    from miaubloom.serving import run

    try:
        run(app, socketio, _MODE)
    except ConfigError:  # already logged
        raise SystemExit(1) from None
