"""GET /api/health: whether the database answers."""

from __future__ import annotations

from flask.typing import ResponseReturnValue
from sqlalchemy import text

from ..errors import Unavailable
from ..extensions import db
from . import bp
from .common import ok


@bp.get("/health")
def health() -> ResponseReturnValue:
    """200 when the database answers a query, 503 when it does not."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        db.session.rollback()
        raise Unavailable("Base de datos no disponible") from exc
    return ok(db="ok")
