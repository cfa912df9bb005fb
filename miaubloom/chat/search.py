"""Searching a conversation (PROTOCOL v1.2): its current texts that contain a query.

Each message's text is kept folded (chat/folding.py) in chat_mensajes_busqueda,
one narrow row per message clustered by (conversacion_id, seq): written with
the message, rewritten by an edit, removed by a deletion. A search walks that
conversation's rows newest first comparing bytes and stops at the first page:
a common word answers after a few rows, a rare one reads the conversation's
narrow rows once (bench/search_conversation.py measures both on 100,000
messages); then the page's messages are read by their seqs.
"""

from __future__ import annotations

from sqlalchemy import select

from ..auth import Caller
from ..extensions import db
from ..models import Mensaje, MensajeBusqueda
from .folding import contains_pattern
from .service import member_conversation


def search_messages(
    caller: Caller, conversacion_id: str, q: str, before: int | None = None, limit: int = 50
) -> tuple[list[Mensaje], bool]:
    """Messages whose current text contains q (case and accents ignored), newest first.

    before=N pages on to the messages with seq < N; tombstones never match.
    """
    member_conversation(caller, conversacion_id)
    pattern = contains_pattern(q)
    if pattern == "%%":  # nothing left once folded (only combining marks)
        return [], False
    found = select(MensajeBusqueda.seq).where(
        MensajeBusqueda.conversacion_id == conversacion_id,
        MensajeBusqueda.busqueda.like(pattern, escape="\\"),
    )
    if before is not None:
        found = found.where(MensajeBusqueda.seq < before)
    seqs = list(db.session.scalars(found.order_by(MensajeBusqueda.seq.desc()).limit(limit + 1)))
    page = seqs[:limit]
    if not page:
        return [], False
    rows = db.session.scalars(
        select(Mensaje)
        .where(
            Mensaje.conversacion_id == conversacion_id,
            Mensaje.seq.in_(page),
            Mensaje.eliminado_at.is_(None),
        )
        .order_by(Mensaje.seq.desc())
    )
    return list(rows), len(seqs) > limit
