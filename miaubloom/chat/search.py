"""Searching a conversation (PROTOCOL v1.2): its current texts that contain a query.

Each message carries its text folded (chat/folding.py) in `busqueda`, written
with the message and with each edit, blanked with a deletion. A search walks
the conversation newest first along its (conversacion_id, seq) index,
comparing bytes, and stops at the first page: a common word answers after a
few rows, a rare one reads the conversation once (bench/search_conversation.py
measures both on 100,000 messages).
"""

from __future__ import annotations

from sqlalchemy import select

from ..auth import Caller
from ..extensions import db
from ..models import Mensaje
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
    query = select(Mensaje).where(
        Mensaje.conversacion_id == conversacion_id,
        Mensaje.eliminado_at.is_(None),
        Mensaje.busqueda.like(pattern, escape="\\"),
    )
    if before is not None:
        query = query.where(Mensaje.seq < before)
    rows = list(db.session.scalars(query.order_by(Mensaje.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
