"""GET /api/chat/exportar: a member's copy of a conversation, JSON or PDF, streamed."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, request
from flask.typing import ResponseReturnValue

from ..chat import export
from ..chat.schemas import ExportQuery
from ..security import audit, ratelimit
from . import bp
from .common import caller, query


@bp.get("/chat/exportar")
@ratelimit.per_user("RATELIMIT_EXPORT")
def exportar() -> ResponseReturnValue:
    """The whole conversation as a download (audited: who, which, which format; never content)."""
    who, q = caller(), query(ExportQuery)
    copy = export.prepare(who, q.conversacionId)
    fields = {
        "userId": who.user_id,
        "ip": request.remote_addr or "unknown",
        "conversacionId": copy.conversacion_id,
    }
    audit.record("export", formato=q.formato, **fields)
    chunks = export.json_chunks(copy) if q.formato == "json" else export.pdf_chunks(copy)
    response = Response(_audited(chunks, q.formato, fields), mimetype=export.FORMATS[q.formato])
    response.headers["Content-Disposition"] = f'attachment; filename="{copy.filename(q.formato)}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _audited(chunks: Iterator[bytes], formato: str, fields: dict[str, str]) -> Iterator[bytes]:
    """The chunks; an export the client abandoned (or that failed) gets its own audit line."""
    finished = False
    try:
        yield from chunks
        finished = True
    finally:
        if not finished:
            audit.record("export_incomplete", formato=formato, **fields)
