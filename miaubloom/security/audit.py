"""The audit log: one JSON line per security event, never message content, tokens or passwords.

What is written (logins, refusals, sockets) and how (JSON lines) live here together.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from flask import Flask, Response, g, request

from ..errors import ChatError, error_code
from .ratelimit import client_ip, signed_user_id

log = logging.getLogger("miaubloom.audit")

# Only these fields are ever written: ids, addresses, names of events and codes, no free text.
FIELDS = (
    "userId",
    "ip",
    "sid",
    "socketEvent",
    "method",
    "path",
    "status",
    "code",
    "conversacionId",
    "formato",
)


class JsonLines(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The audit fields of a record, as JSON."""
        line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": record.msg}
        fields = getattr(record, "audit", {})
        line.update({k: fields[k] for k in FIELDS if fields.get(k) is not None})
        return json.dumps(line, ensure_ascii=False)


# Marks the handler init_app installs, so a second app replaces it rather than adding one.
HANDLER_NAME = "miaubloom-audit"


class _Stderr(logging.StreamHandler[TextIO]):
    """stderr as it is at each write (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write to the current stderr."""
        self.setStream(sys.stderr)
        super().emit(record)


def init_app(app: Flask) -> None:
    """Write the audit log to AUDIT_LOG, or to stderr when unset."""
    path = app.config.get("AUDIT_LOG") or ""
    for old in [h for h in log.handlers if h.get_name() == HANDLER_NAME]:
        log.removeHandler(old)
        old.close()
    handler = logging.FileHandler(path, encoding="utf-8") if path else _Stderr()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonLines())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def record(event: str, **fields: object) -> None:
    """Write one audit line: event plus any of FIELDS."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not an audit field: {sorted(unknown)}")
    log.info(event, extra={"audit": fields})


# Failure code → audit event.
FAILURES = {
    "unauthenticated": "authorization_failure",
    "forbidden": "authorization_failure",
    "invalid": "validation_failure",
    "too_large": "validation_failure",
    "rate_limited": "rate_limited",
    "not_found": "not_found",
}
# Successes worth a line: endpoint → event.
SUCCESSES = {"api.login": "login_success", "api.register": "register", "api.logout": "logout"}


def http_response(response: Response) -> Response:
    """Audit logins, logouts and every refused API call (after_request hook)."""
    endpoint = request.endpoint or ""
    if response.status_code < 400:
        event = SUCCESSES.get(endpoint)
        if event is None:
            return response
        user_id = g.get("audit_user_id") or signed_user_id()
        code = None
    else:
        code = error_code()
        event = FAILURES.get(code or "", "http_error")
        if endpoint == "api.login" and code == "unauthenticated":
            event = "login_failure"
        user_id = signed_user_id()
    record(
        event,
        userId=user_id,
        ip=client_ip(),
        method=request.method,
        path=request.url_rule.rule if request.url_rule else "(unmatched)",
        status=response.status_code,
        code=code,
    )
    return response


def identified(user_id: str) -> None:
    """Name the user a request without a token acted as (login, register), for its audit line."""
    g.audit_user_id = user_id


def socket_connected(user_id: str, sid: str) -> None:
    """A socket was accepted."""
    record("connect", userId=user_id, ip=client_ip(), sid=sid)


def socket_refused(error: ChatError) -> None:
    """A socket was refused (bad token or too many connections)."""
    event = "rate_limited" if error.code == "rate_limited" else "connect_refused"
    record(event, ip=client_ip(), code=error.code, socketEvent="connect")


def socket_disconnected(user_id: str | None, sid: str) -> None:
    """A socket went away."""
    record("disconnect", userId=user_id, ip=client_ip(), sid=sid)


def socket_failed(event: str, error: ChatError, user_id: str | None, sid: str) -> None:
    """A socket event was refused."""
    record(
        FAILURES.get(error.code, "event_error"),
        userId=user_id,
        ip=client_ip(),
        sid=sid,
        socketEvent=event,
        code=error.code,
    )
