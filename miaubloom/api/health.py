"""GET /api/health: whether the database answers (the status), and whether Redis does."""

from __future__ import annotations

from flask import current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from .. import redisconn
from ..errors import Unavailable
from ..extensions import db
from ..security import ratelimit
from . import bp
from .common import ok


@bp.get("/health")
@ratelimit.exempt
def health() -> ResponseReturnValue:
    """200 when the database answers a query, 503 when it does not; Redis reported beside it."""
    # Redis first: its check is bounded by REDIS_TIMEOUT, and skipped while it is marked down.
    redis = _redis()
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        db.session.rollback()
        raise Unavailable("Base de datos no disponible") from exc
    # A Redis outage leaves the status 200: the process still serves (limits fail open,
    # presence answers for this process), and every process shares that one Redis, so a
    # load balancer that took them all out would turn a degraded chat into no chat.
    return ok(db="ok", redis=redis)


def _redis() -> str:
    """'ok', 'unavailable', or 'none' when this process uses no Redis."""
    cfg = current_app.config
    urls = {cfg["SOCKETIO_MESSAGE_QUEUE"], cfg["RATELIMIT_STORAGE_URI"]}
    urls = {url for url in urls if url.startswith(("redis://", "rediss://"))}
    if not urls:
        return "none"
    return "ok" if all(redisconn.answers(url, cfg) for url in sorted(urls)) else "unavailable"
