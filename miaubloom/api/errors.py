"""Every failure, ChatError or HTTP or database, as one JSON shape."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from ..errors import ChatError, RateLimited, TooLarge, answered_with, as_chat_error
from ..extensions import db
from ..security.ratelimit import retry_after
from ..state import app_state

log = logging.getLogger(__name__)

_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}


def chat_error_response(error: ChatError) -> ResponseReturnValue:
    """A ChatError as its JSON body and status."""
    answered_with(error.code)
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if isinstance(error, RateLimited) and "retryAfter" in error.extra:
        response.headers["Retry-After"] = str(error.extra["retryAfter"])
    return response


def http_error_response(error: HTTPException) -> ResponseReturnValue:
    """404, 405, 413 and the rest of werkzeug's errors in the same shape."""
    status = error.code or 500
    if status == 413:
        return chat_error_response(TooLarge("Cuerpo de la solicitud demasiado grande"))
    code = _HTTP_CODES.get(status, "invalid" if 400 <= status < 500 else "internal")
    answered_with(code)
    body = {"success": False, "message": error.description or error.name, "code": code}
    response = jsonify(body)
    response.status_code = status
    allowed = getattr(error, "valid_methods", None)
    if status == 405 and allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


def unexpected_error_response(error: Exception) -> ResponseReturnValue:
    """Database outages as 503; anything else as a logged 500, never a stack trace."""
    db.session.rollback()
    chat_error = as_chat_error(error)
    if chat_error.code == "internal":
        log.exception("unexpected error")
    return chat_error_response(chat_error)


def too_many_response(error: RateLimitExceeded) -> ResponseReturnValue:
    """Flask-Limiter's refusal: 429 in the one error shape, with Retry-After."""
    current = app_state().limiter.current_limit
    wait = retry_after(current.window[0]) if current else 60
    return chat_error_response(RateLimited(retryAfter=wait))


def register(app: Flask) -> None:
    """Install the handlers on the app (so unknown URLs answer in the same shape)."""
    app.register_error_handler(ChatError, chat_error_response)
    app.register_error_handler(RateLimitExceeded, too_many_response)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(Exception, unexpected_error_response)
