"""Engine.IO transports under guard: capacity, per-address caps, a handshake deadline,
protocol violations and a bound on what waits to be written to each socket.

python-engineio keeps every transport it opens until its ping times out (45 s),
whether or not the client ever sends the Socket.IO CONNECT, and keeps one
whose CONNECT was refused; it admits as many as the server accepts. Here:

- a WSGI gate in front of Engine.IO refuses a new transport past this
  process's capacity (503 `unavailable`) or past the caps of its address
  (429 `rate_limited`), before Engine.IO creates anything for it;
- Engine.IO's documented connect/message/disconnect hooks (`eio.on`) track
  each transport: one that has not completed the CONNECT within
  SOCKETIO_CONNECT_TIMEOUT seconds is closed, and so is one whose CONNECT was
  refused (a second later, so its connect_error goes out first);
- every client packet is checked (`frames.decode`) before python-socketio
  dispatches it; a violation closes its connection with one log line;
- each socket's outbound queue is bounded (`outbound.BoundedQueue`); past the
  bound the socket is dropped;
- a WebSocket client's frames are read no faster than they are looked at, and
  frames to it are written whole (`websockets.py`).

A transport closed here also has its TCP connection shut down: with
simple-websocket (gevent, threading) a WebSocket whose client neither reads
nor closes would otherwise hold its connection, and a worker connection, for good.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse

from flask import Flask
from socketio import packet

from ..errors import ChatError, RateLimited, Unavailable
from ..extensions import socketio
from ..observability import refused
from ..state import app_state
from . import frames
from .outbound import BoundedQueue, bounded
from .websockets import fixed_websocket

log = logging.getLogger(__name__)
ENGINEIO_PATH = "/socket.io/"
# A transport closed politely (deadline, refused CONNECT) keeps its TCP connection this
# long, so that its last packets (connect_error, CLOSE) can go out.
LINGER = 1.0
# A refused CONNECT leaves its transport open this long, for a long-polling client's
# next GET to collect the connect_error.
REFUSED_GRACE = 1.0

WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Limits:
    """The limits of docs/security.md, from the app's config."""

    capacity: int
    per_ip: int
    handshakes_per_ip: int
    connect_timeout: float
    outbound: int

    @classmethod
    def from_config(cls, config: Any) -> Limits:
        """Read them from the app's config."""
        return cls(
            capacity=config["SOCKETIO_MAX_SOCKETS"],
            per_ip=config["SOCKETIO_MAX_TRANSPORTS_PER_IP"],
            handshakes_per_ip=config["SOCKETIO_MAX_HANDSHAKES_PER_IP"],
            connect_timeout=config["SOCKETIO_CONNECT_TIMEOUT"],
            outbound=config["SOCKETIO_MAX_OUTBOUND"],
        )


def tcp_socket(environ: dict[str, Any]) -> Any:
    """The client connection under a WSGI request, where each server keeps it."""
    for key in ("gunicorn.socket", "werkzeug.socket"):
        if key in environ:
            return environ[key]
    if "eventlet.input" in environ:
        return environ["eventlet.input"].get_socket()
    stream = environ.get("wsgi.input")  # gevent's own server
    raw = getattr(getattr(stream, "rfile", stream), "raw", None)
    return getattr(raw, "_sock", None)


def _shut(conn: Any) -> None:
    # A connection already closed by its server raises EBADF: nothing left to do.
    with contextlib.suppress(OSError, AttributeError):
        conn.shutdown(socket.SHUT_RDWR)


class TransportGuard:
    """Watches one Socket.IO server's Engine.IO transports (see the module docstring)."""

    def __init__(
        self,
        server: Any,
        limits: Limits,
        refused: Callable[[str], None],
        stopping: threading.Event,
    ) -> None:
        self.server = server
        self.eio = server.eio
        self.limits = limits
        self._count_refusal = refused
        self._lock = threading.Lock()
        self._ips: dict[str, str] = {}  # open transport -> client address
        self._per_ip: Counter[str] = Counter()
        self._pending: dict[str, tuple[float, str]] = {}  # no CONNECT yet -> (deadline, why)
        self._pending_per_ip: Counter[str] = Counter()
        self._wires: dict[str, Any] = {}  # WebSocket transport -> its TCP connection
        self._to_shut: list[tuple[float, Any]] = []
        self._sweeping = False
        self._stopping = stopping
        # python-socketio's own Engine.IO handlers, which ours wrap.
        self._socketio_connect = server._handle_eio_connect
        self._socketio_disconnect = server._handle_eio_disconnect

    def install(self) -> None:
        """Take over the Engine.IO server's hooks and its sockets' queues."""
        self.eio.on("connect", self.opened)
        self.eio.on("message", self.received)
        self.eio.on("disconnect", self.closed)
        # Engine.IO makes every socket's queue with create_queue(), in every async mode.
        self.eio.create_queue = bounded(self.eio.create_queue, self.limits.outbound)
        # And every WebSocket with the async mode's class, kept per server in _async.
        websocket = fixed_websocket(self.eio._async["websocket"], self.eio.sleep)
        self.eio._async = {**self.eio._async, "websocket": websocket}

    # -- figures for /metrics ----------------------------------------------

    def open_transports(self) -> int:
        """Engine.IO transports open in this process."""
        return len(self._ips)

    def handshaking(self) -> int:
        """Transports that have not completed the Socket.IO CONNECT."""
        return len(self._pending)

    # -- the gate: new transports -------------------------------------------

    def gate(self, app: WSGIApp) -> WSGIApp:
        """WSGI middleware in front of Engine.IO: refuse new transports past the limits."""

        def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO", "").startswith(ENGINEIO_PATH):
                query = parse_qs(environ.get("QUERY_STRING", ""))
                if "sid" not in query:
                    if environ.get("REQUEST_METHOD") == "GET":
                        refusal = self._admit(environ.get("REMOTE_ADDR") or "unknown")
                        if refusal is not None:
                            return _refuse(refusal, start_response)
                elif environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                    self._wire(query["sid"][0], environ)
            return app(environ, start_response)

        return guarded

    def _admit(self, ip: str) -> ChatError | None:
        """Why a new transport from ip is refused, or None."""
        wait = max(1, round(self.limits.connect_timeout))
        error: ChatError
        with self._lock:
            if len(self._ips) >= self.limits.capacity:
                reason, error = "capacity", Unavailable("Servidor completo, inténtalo más tarde")
            elif self._per_ip[ip] >= self.limits.per_ip:
                reason = "ip_transports"
                error = RateLimited("Demasiadas conexiones desde esta dirección", retryAfter=wait)
            elif self._pending_per_ip[ip] >= self.limits.handshakes_per_ip:
                reason = "ip_handshakes"
                error = RateLimited("Demasiadas conexiones desde esta dirección", retryAfter=wait)
            else:
                return None
        self._count_refusal(reason)
        return error

    def _wire(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """Remember the TCP connection of a transport upgrading to WebSocket."""
        conn = tcp_socket(environ)
        with self._lock:
            if eio_sid in self._ips and conn is not None:
                self._wires[eio_sid] = conn

    # -- Engine.IO hooks -----------------------------------------------------

    def opened(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """Engine.IO opened a transport: start its handshake deadline."""
        self._socketio_connect(eio_sid, environ)
        ip = environ.get("REMOTE_ADDR") or "unknown"
        conn = (
            tcp_socket(environ) if environ.get("HTTP_UPGRADE", "").lower() == "websocket" else None
        )
        deadline = time.monotonic() + self.limits.connect_timeout
        with self._lock:
            self._ips[eio_sid] = ip
            self._per_ip[ip] += 1
            self._pending[eio_sid] = (deadline, "handshake_timeout")
            self._pending_per_ip[ip] += 1
            if conn is not None:
                self._wires[eio_sid] = conn
        queue = getattr(self.eio.sockets.get(eio_sid), "queue", None)
        if isinstance(queue, BoundedQueue):
            queue.on_overflow = lambda: self.server.start_background_task(
                self.drop, eio_sid, "outbound", "outbound queue full"
            )
        self._start_sweeper()

    def received(self, eio_sid: str, data: Any) -> None:
        """A client message: check it, then dispatch it as python-socketio would."""
        if eio_sid not in self.server.environ:
            # Closed while this message waited its turn (its handshake deadline passed
            # under load): python-socketio would raise KeyError reading its environ.
            return
        try:
            pkt = frames.decode(self.server.packet_class, data)
            if pkt.packet_type == packet.EVENT and eio_sid in self._pending:
                raise frames.Violation("event before CONNECT")
        except frames.Violation as violation:
            self.drop(eio_sid, "protocol", str(violation))
            return
        # The three calls python-socketio's _handle_eio_message makes for these packets.
        if pkt.packet_type == packet.EVENT:
            self.server._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif pkt.packet_type == packet.CONNECT:
            self.server._handle_connect(eio_sid, pkt.namespace, pkt.data)
            self._connected_or_refused(eio_sid)
        else:
            reason = self.server.reason.CLIENT_DISCONNECT
            self.server._handle_disconnect(eio_sid, pkt.namespace, reason)

    def closed(self, eio_sid: str, reason: str | None = None) -> None:
        """Engine.IO closed a transport: forget it, and free its TCP connection soon."""
        try:
            self._socketio_disconnect(eio_sid, reason)
        finally:
            self._forget(eio_sid)

    def _forget(self, eio_sid: str) -> None:
        with self._lock:
            ip = self._ips.pop(eio_sid, None)
            pending = self._pending.pop(eio_sid, None)
            if ip is not None:
                _decrement(self._per_ip, ip)
                if pending is not None:
                    _decrement(self._pending_per_ip, ip)
            conn = self._wires.pop(eio_sid, None)
            if conn is not None:
                self._to_shut.append((time.monotonic() + LINGER, conn))

    def _connected_or_refused(self, eio_sid: str) -> None:
        """After a CONNECT: its deadline ends, or (refused) its transport closes shortly."""
        manager = self.server.manager
        sid = manager.sid_from_eio_sid(eio_sid, "/")
        with self._lock:
            if sid is not None and manager.is_connected(sid, "/"):
                ip = self._ips.get(eio_sid)
                if self._pending.pop(eio_sid, None) is not None and ip is not None:
                    _decrement(self._pending_per_ip, ip)
            elif eio_sid in self._pending:
                self._pending[eio_sid] = (time.monotonic() + REFUSED_GRACE, "connect_refused")

    # -- closing -------------------------------------------------------------

    def drop(self, eio_sid: str, reason: str, detail: str) -> None:
        """Close a transport now, and its TCP connection: one log line, never more."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closing or sock.closed:
            return  # already going: what it sends meanwhile is not worth a line
        log.warning(
            "transport dropped",
            extra={
                "sid": eio_sid,
                "reason": reason,
                "detail": detail,
                "ip": self._ips.get(eio_sid),
            },
        )
        self._count_refusal(reason)
        with self._lock:
            conn = self._wires.pop(eio_sid, None)
        self._close(eio_sid, sock, abort=True)
        if conn is not None:
            _shut(conn)

    def _expire(self, eio_sid: str, reason: str) -> None:
        """Close a transport whose handshake ran out of time (or whose CONNECT was refused)."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closing or sock.closed:
            self._forget(eio_sid)  # gone without a disconnect event
            return
        log.debug("transport closed", extra={"sid": eio_sid, "reason": reason})
        self._count_refusal(reason)
        # Not abort: the client gets a CLOSE packet, then its connection is shut (LINGER).
        self._close(eio_sid, sock, abort=False)

    def _close(self, eio_sid: str, sock: Any, abort: bool) -> None:
        """What Engine.IO's disconnect() does, without waiting for the queue to drain."""
        sock.close(wait=False, abort=abort, reason=self.eio.reason.SERVER_DISCONNECT)
        # Engine.IO answers a POST to a closed session still listed with a 500.
        self.eio.sockets.pop(eio_sid, None)

    def _start_sweeper(self) -> None:
        with self._lock:
            if self._sweeping:
                return
            self._sweeping = True
        self.server.start_background_task(self._sweep)

    def _sweep(self) -> None:
        """Close transports past their deadline; shut connections past their linger."""
        interval = min(0.5, max(0.05, self.limits.connect_timeout / 4))
        while not self._stopping.is_set():
            self.server.sleep(interval)
            try:
                now = time.monotonic()
                with self._lock:
                    due = [(s, why) for s, (at, why) in self._pending.items() if at <= now]
                    shut = [conn for at, conn in self._to_shut if at <= now]
                    self._to_shut = [(at, conn) for at, conn in self._to_shut if at > now]
                for eio_sid, why in due:
                    self._expire(eio_sid, why)
                for conn in shut:
                    _shut(conn)
            except Exception:  # the sweeper must outlive any one failure
                log.exception("transport sweep failed")


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def _refuse(error: ChatError, start_response: StartResponse) -> list[bytes]:
    """A refused handshake: the one JSON error shape, with Retry-After when limited."""
    body = json.dumps(error.to_dict()).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if "retryAfter" in error.extra:
        headers.append(("Retry-After", str(error.extra["retryAfter"])))
    start_response(f"{error.status} {HTTPStatus(error.status).phrase}", headers)
    return [body]


def init_app(app: Flask) -> TransportGuard:
    """Guard the app's Socket.IO server's transports and put the gate in front of the app."""
    server = socketio.server  # type: ignore[attr-defined]  # left out of types-flask-socketio
    limits = Limits.from_config(app.config)
    guard = TransportGuard(server, limits, partial(refused, app), app_state(app).stopping)
    guard.install()
    # Flask's documented way to add WSGI middleware; to mypy, wsgi_app is a method.
    app.wsgi_app = guard.gate(app.wsgi_app)  # type: ignore[method-assign, assignment]
    return guard
