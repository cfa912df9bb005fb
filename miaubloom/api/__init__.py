"""The HTTP API blueprint: the chat's fallback transport and the account routes."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from . import auth, chat, exportar, health, notificaciones, openapi  # noqa: E402, F401  (routes register on bp)
