"""gunicorn's settings for the chat: `gunicorn wsgi:app` reads this file (from the working
directory) and serves the production way. A flag or GUNICORN_CMD_ARGS overrides any of them
(`gunicorn -k eventlet wsgi:app`, `-b 0.0.0.0:8001`, `--worker-connections 20000`).

- one gevent worker: Socket.IO sessions live in their process (scale with processes);
- HOST:PORT from the environment, as `python wsgi.py` reads them (127.0.0.1:8000);
- MAX_CONNECTIONS (config.py, 11,000) connections at once, the open-file limit raised to
  match at start (refusing to start when it cannot be); the app admits Socket.IO
  transports up to SOCKETIO_MAX_SOCKETS, below it, so past capacity a new one is
  refused at once instead of waiting unanswered in the listen queue;
- no control socket (one fixed path per user: two processes would fight over it);
- GRACEFUL_TIMEOUT seconds (10) for open WebSockets on SIGTERM: clients reconnect to
  another process and catch up by seq.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from config import Config, raise_open_file_limit

_config = Config()
# The async library Socket.IO must use under each worker class (wsgi.py patches it).
_ASYNC_MODES = {"gevent": "gevent", "eventlet": "eventlet"}

bind = [f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
worker_class = "gevent"
workers = 1
worker_connections = _config.MAX_CONNECTIONS
control_socket_disable = True
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "10"))


def _async_mode(server) -> str | None:  # type: ignore[no-untyped-def]
    name = server.cfg.worker_class_str.rsplit(".", 1)[-1].lower()
    return next((mode for key, mode in _ASYNC_MODES.items() if key in name), None)


def on_starting(server) -> None:  # type: ignore[no-untyped-def]
    """Before binding: the open-file limit for the connections, and a matching async mode."""
    wanted = _async_mode(server)
    configured = os.environ.get("SOCKETIO_ASYNC_MODE")
    if wanted and configured and configured != "threading" and configured != wanted:
        sys.exit(f"SOCKETIO_ASYNC_MODE={configured} under the {wanted} worker: set it to {wanted}")
    connections = server.cfg.worker_connections * server.cfg.workers
    try:
        before, after = raise_open_file_limit(connections)
    except RuntimeError as exc:
        server.log.error("Refusing to start: %s", exc)
        sys.exit(1)
    server.log.info("Open-file limit %s (was %s) for %s connections", after, before, connections)


def post_fork(server, worker) -> None:  # type: ignore[no-untyped-def]
    """In the worker, before the app loads: the settings the app reads from gunicorn's."""
    os.environ["MAX_CONNECTIONS"] = str(server.cfg.worker_connections)
    wanted = _async_mode(server)
    if wanted:
        os.environ.setdefault("SOCKETIO_ASYNC_MODE", wanted)
