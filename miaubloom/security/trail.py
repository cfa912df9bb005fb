"""What goes into the audit log from HTTP responses and socket events."""

from __future__ import annotations

from flask import Response, g, request

from .. import audit
from ..errors import ChatError, error_code
from .ratelimit import client_ip, signed_user_id

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
    audit.record(
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
    audit.record("connect", userId=user_id, ip=client_ip(), sid=sid)


def socket_refused(error: ChatError) -> None:
    """A socket was refused (bad token or too many connections)."""
    event = "rate_limited" if error.code == "rate_limited" else "connect_refused"
    audit.record(event, ip=client_ip(), code=error.code, socketEvent="connect")


def socket_disconnected(user_id: str | None, sid: str) -> None:
    """A socket went away."""
    audit.record("disconnect", userId=user_id, ip=client_ip(), sid=sid)


def socket_failed(event: str, error: ChatError, user_id: str | None, sid: str) -> None:
    """A socket event was refused."""
    audit.record(
        FAILURES.get(error.code, "event_error"),
        userId=user_id,
        ip=client_ip(),
        sid=sid,
        socketEvent=event,
        code=error.code,
    )
