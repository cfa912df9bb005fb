"""Security: rate limits, origins, headers, audit trail, session ending and transport limits, on one hook."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ..state import app_state
from . import audit, headers, origins, ratelimit, sessions, transport


def init_app(app: Flask) -> None:
    """Install every security layer on the app (after its routes are registered)."""
    audit.init_app(app)
    origins.init_app(app)
    ratelimit.init_app(app)
    app_state(app).sessions = sessions.init_app(app)
    app_state(app).transport = transport.init_app(app)
    app.after_request(headers.secure)
    app.after_request(audit.http_response)
    hops = app.config["PROXY_HOPS"]
    if hops:
        # Outermost, so that every per-address limit (HTTP, Socket.IO, transports) and the
        # audit log see the client's address, not the proxy's.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware
