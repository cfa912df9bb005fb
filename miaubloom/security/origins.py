"""Which browser origins may call: CORS for the API, and a refusal for foreign writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_cors import CORS

from ..errors import Forbidden

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def allowed(origin: str, allowed_origins: list[str]) -> bool:
    """Whether a browser origin may call: a configured one, or this server's own."""
    if "*" in allowed_origins:
        return True
    own = request.host_url.rstrip("/")
    return origin.rstrip("/") in (*allowed_origins, own)


def socketio_origins(allowed_origins: list[str]) -> Callable[[str, dict[str, Any]], bool] | None:
    """Socket.IO's origin check: the configured origins and this server's own (None: own only)."""
    if not allowed_origins:
        return None  # python-engineio's default: the same origin only

    def check(origin: str, environ: dict[str, Any]) -> bool:
        if "*" in allowed_origins or origin in allowed_origins:
            return True
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme", "http"))
        host = environ.get("HTTP_X_FORWARDED_HOST", environ.get("HTTP_HOST", ""))
        own = {f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"}
        own.add(f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}")
        return origin in own

    return check


def refuse_foreign_writes() -> None:
    """A write from another site's page is refused (before_request hook, against CSRF)."""
    origin = request.headers.get("Origin")
    foreign = origin is not None and not allowed(origin, current_app.config["ALLOWED_ORIGINS"])
    if request.method in UNSAFE and foreign:
        raise Forbidden("Origen no permitido")


def init_app(app: Flask) -> None:
    """CORS for the configured origins (none configured: same origin only)."""
    origins = app.config["ALLOWED_ORIGINS"]
    if origins:
        CORS(app, resources={r"/api/*": {"origins": origins}}, supports_credentials=True)
    app.before_request(refuse_foreign_writes)
