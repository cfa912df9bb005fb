"""What operators see: JSON log lines with a request or socket id, and Prometheus metrics.

Metrics are per process (each gunicorn process is one worker, `-w 1`, on its own
port): Prometheus scrapes every process and sums, showing METRICS_TOKEN as a
Bearer token (without it /metrics is off). Logs never carry message text.
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass

from flask import Flask, Response, abort, current_app, g, has_request_context, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pythonjsonlogger.json import JsonFormatter

from .errors import Unauthenticated, answered_with, error_code
from .extensions import db
from .state import app_state

log = logging.getLogger("miaubloom.access")

SEND_EVENT = "chat:send-message"
SEND_ENDPOINT = "api.enviar"
# A client's X-Request-ID is kept only if it looks like an id, so logs stay clean.
_MAX_REQUEST_ID = 64


class RequestIdFilter(logging.Filter):
    """Adds request_id (HTTP) or sid (Socket.IO event) to every record logged in a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; only annotate it."""
        if has_request_context():
            sid = getattr(request, "sid", None)
            if sid and not hasattr(record, "sid"):
                record.sid = sid
            request_id = g.get("request_id")
            if request_id and not hasattr(record, "request_id"):
                record.request_id = request_id
        return True


def configure_logging() -> None:
    """Root logging to stderr: JSON lines (LOG_FORMAT=json), or text (the development default)."""
    handler = logging.StreamHandler(sys.stderr)
    development = os.environ.get("MIAUBLOOM_ENV") == "development"
    if os.environ.get("LOG_FORMAT", "text" if development else "json") == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


@dataclass
class Metrics:
    """The app's metrics, in a registry of its own (one per app, so tests don't collide)."""

    registry: CollectorRegistry
    messages: Counter
    errors: Counter
    send_seconds: Histogram
    send_batch: Histogram
    refused: Counter


def _metrics(app: Flask) -> Metrics:
    registry = CollectorRegistry()
    state = app_state(app)  # its parts are read at scrape time, once installed
    Gauge(
        "miaubloom_connected_sockets",
        "Socket.IO connections to this process",
        registry=registry,
    ).set_function(lambda: state.presence.counts()[1])
    Gauge(
        "miaubloom_online_users",
        "Users with a socket connected to this process",
        registry=registry,
    ).set_function(lambda: state.presence.counts()[0])
    Gauge(
        "miaubloom_socketio_capacity",
        "Socket.IO transports this process admits (SOCKETIO_MAX_SOCKETS); past it, 503",
        registry=registry,
    ).set_function(lambda: app.config["SOCKETIO_MAX_SOCKETS"])
    Gauge(
        "miaubloom_transports_open",
        "Engine.IO transports open in this process, handshaking ones included",
        registry=registry,
    ).set_function(lambda: state.transport.open_transports() if state.transport else 0)
    Gauge(
        "miaubloom_transports_handshaking",
        "Engine.IO transports that have not completed the Socket.IO CONNECT",
        registry=registry,
    ).set_function(lambda: state.transport.handshaking() if state.transport else 0)
    with app.app_context():
        pool = db.engine.pool
    Gauge(
        "miaubloom_db_pool_in_use",
        "Database connections checked out of this process's pool",
        registry=registry,
    ).set_function(lambda: getattr(pool, "checkedout", lambda: 0)())
    return Metrics(
        registry=registry,
        messages=Counter(
            "miaubloom_messages_sent",
            "Messages stored and announced, by transport",
            ["transport"],
            registry=registry,
        ),
        errors=Counter(
            "miaubloom_errors",
            "Failed calls, by error code and transport",
            ["code", "transport"],
            registry=registry,
        ),
        send_seconds=Histogram(
            "miaubloom_send_seconds",
            "Time to handle a send (validate, store, commit, announce), by transport",
            ["transport"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        ),
        send_batch=Histogram(
            "miaubloom_send_batch_size",
            "Sends stored by one transaction (concurrent sends share one: group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=registry,
        ),
        refused=Counter(
            "miaubloom_refused",
            "Connections refused or closed by a limit (docs/security.md), by reason",
            ["reason"],
            registry=registry,
        ),
    )


def init_app(app: Flask) -> None:
    """Request ids, access log lines, HTTP metrics and the /metrics route."""
    app_state(app).metrics = _metrics(app)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.add_url_rule("/metrics", "metrics", _serve_metrics)


def _serve_metrics() -> Response:
    """The metrics, to whoever shows METRICS_TOKEN; not found while it is unset."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        error = Unauthenticated("Se necesita el token de métricas")
        answered_with(error.code)
        refused = jsonify(error.to_dict())
        refused.status_code = 401
        refused.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refused
    return Response(generate_latest(app_state().metrics.registry), content_type=CONTENT_TYPE_LATEST)


def _start_request() -> None:
    given = request.headers.get("X-Request-ID", "")
    ok = 0 < len(given) <= _MAX_REQUEST_ID and given.replace("-", "").isalnum()
    g.request_id = given if ok else uuid.uuid4().hex
    g.started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    metrics = app_state().metrics
    code = error_code()
    if response.status_code >= 400:
        metrics.errors.labels(code=code or str(response.status_code), transport="http").inc()
    if request.endpoint == SEND_ENDPOINT:
        metrics.send_seconds.labels(transport="http").observe(elapsed)
    response.headers["X-Request-ID"] = g.request_id
    extra: dict[str, object] = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "ms": round(elapsed * 1000, 2),
    }
    if code:
        extra["code"] = code
    log.info("http", extra=extra)
    return response


def socket_event(name: str, sid: str, elapsed: float) -> None:
    """Count and log one Socket.IO event (ChatNamespace.trigger_event times it)."""
    metrics = app_state().metrics
    code = error_code()
    if code:
        metrics.errors.labels(code=code, transport="socket").inc()
    if name == SEND_EVENT:
        metrics.send_seconds.labels(transport="socket").observe(elapsed)
    extra = {"event": name, "sid": sid, "ms": round(elapsed * 1000, 2)}
    if code:
        extra["code"] = code
    # A line per chat event costs ~0.1 ms of CPU: connections and failures at INFO,
    # the rest at DEBUG.
    level = logging.INFO if code or name in ("connect", "disconnect") else logging.DEBUG
    log.log(level, "socket", extra=extra)


def refused(app: Flask, reason: str) -> None:
    """Count a connection refused or closed by a limit."""
    app_state(app).metrics.refused.labels(reason=reason).inc()


# -- messages stored ----------------------------------------------------------


def sends_batched(count: int) -> None:
    """Observe how many sends one transaction stored."""
    app_state().metrics.send_batch.observe(count)


def message_stored() -> None:
    """Count one new message, committed and announced, under its transport."""
    if not has_request_context():
        return  # the CLI: no server here to scrape
    transport = "socket" if getattr(request, "sid", None) else "http"
    app_state().metrics.messages.labels(transport=transport).inc()
