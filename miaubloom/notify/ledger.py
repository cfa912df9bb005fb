"""Where each member's notifications stand, in the database: what is owed, claimed, sent.

One row per (conversation, member) in chat_notificaciones. Every change is
one conditional UPDATE committed on its own, so any number of jobs and
workers may look at the same row and at most one of them sends:

- `cubierto_seq` only grows: messages up to it need no mail (mailed about,
  seen online, or read).
- A mail is claimed (`estado` "reclamado", a fresh `intento`, a lease in
  `plazo`) only while nothing is in flight and the interval since
  `enviado_at` has passed. A claim whose lease ran out before DATA may be
  released and claimed again: the mail server never got that mail.
- Right before DATA the claim becomes "enviando". From then on the mail is
  never sent again: after a crash it is presumed sent (at most once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement, Executable

from ..extensions import db
from ..models import Conversacion, Mensaje, Notificacion, Preferencias, User

CLAIMED = "reclamado"
SENDING = "enviando"
# Last-seen times older than anything stored: "never seen".
NEVER = datetime(1970, 1, 1)
# The scan looks at conversations with a message this recent.
SCAN_LOOKBACK = timedelta(days=1)

_N = Notificacion.__table__.c


@dataclass(frozen=True)
class Facts:
    """What a notification decision starts from, read in one go."""

    conversacion_id: str
    recipient_id: str
    sender_id: str
    last_seq: int
    unread: int
    enabled: bool
    row: Notificacion


@dataclass(frozen=True)
class Pending:
    """Unread messages from the sender beyond the covered seq, split by the recipient's last visit."""

    seen_upto: int | None  # highest seq that arrived before the recipient was last online
    first_unseen: datetime | None  # when the oldest message since then arrived
    unseen_upto: int | None  # highest seq since then


def enabled(user_id: str) -> bool:
    """Whether the person wants e-mail notifications (yes unless they turned them off)."""
    value = db.session.scalar(
        select(Preferencias.notificar_correo).where(Preferencias.usuario_id == user_id)
    )
    return value is None or bool(value)


def set_enabled(user_id: str, on: bool) -> bool:
    """Turn the person's e-mail notifications on or off; the new setting."""
    prefs = db.session.get(Preferencias, user_id)
    if prefs is None:
        db.session.add(Preferencias(usuario_id=user_id, notificar_correo=on))
    else:
        prefs.notificar_correo = on
    try:
        db.session.commit()
    except IntegrityError:
        # Two requests created it at once: set it on the row that won.
        db.session.rollback()
        # The row exists: the insert that beat this one committed it.
        cast(Preferencias, db.session.get(Preferencias, user_id)).notificar_correo = on
        db.session.commit()
    return on


def facts(conversacion_id: str, recipient_id: str) -> Facts | None:
    """The conversation's counters and the recipient's row (made if missing); None if not a member."""
    conv = db.session.get(Conversacion, conversacion_id, populate_existing=True)
    if conv is None or recipient_id not in (conv.psicologo_id, conv.paciente_id):
        return None
    sender = conv.paciente_id if recipient_id == conv.psicologo_id else conv.psicologo_id
    unread = (
        conv.no_leidos_psicologo if recipient_id == conv.psicologo_id else conv.no_leidos_paciente
    )
    return Facts(
        conversacion_id,
        recipient_id,
        sender,
        conv.last_seq,
        unread,
        enabled(recipient_id),
        _row(conversacion_id, recipient_id),
    )


def _row(conversacion_id: str, usuario_id: str) -> Notificacion:
    key = {"conversacion_id": conversacion_id, "usuario_id": usuario_id}
    row = db.session.get(Notificacion, key, populate_existing=True)
    if row is not None:
        return row
    try:
        db.session.execute(insert(Notificacion.__table__).values(**key))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another job made it first
    # Inserted above, or by the job whose insert won: the row exists.
    return cast(Notificacion, db.session.get(Notificacion, key, populate_existing=True))


def pending(f: Facts, seen: datetime | None) -> Pending:
    """The sender's unread messages after the covered seq (up to last_seq), split at `seen`."""
    seen = seen or NEVER
    after = Mensaje.created_at > seen
    row = db.session.execute(
        select(
            func.max(case((~after, Mensaje.seq))),
            func.min(case((after, Mensaje.created_at))),
            func.max(case((after, Mensaje.seq))),
        ).where(*unread_from(f))
    ).one()
    db.session.commit()  # end the read: the next steps are transactions of their own
    return Pending(row[0], row[1], row[2])


def unread_from(f: Facts) -> list[ColumnElement[bool]]:
    """SQL conditions: the sender's unread messages that no mail has covered yet."""
    return [
        Mensaje.conversacion_id == f.conversacion_id,
        Mensaje.remitente_id == f.sender_id,
        Mensaje.leido.is_(False),
        Mensaje.eliminado_at.is_(None),  # a deleted message is no longer waiting (v1.2)
        Mensaje.seq > f.row.cubierto_seq,
        Mensaje.seq <= f.last_seq,
    ]


def _where(f: Facts, *more: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    return [_N.conversacion_id == f.conversacion_id, _N.usuario_id == f.recipient_id, *more]


def _commit(statement: Executable) -> int:
    rowcount = cast(CursorResult[Any], db.session.execute(statement)).rowcount
    db.session.commit()
    return rowcount


def cover(f: Facts, seq: int) -> int:
    """No mail for messages up to seq; the covered seq now (it never goes down)."""
    _commit(
        update(Notificacion.__table__)
        .where(*_where(f, _N.cubierto_seq < seq))
        .values(cubierto_seq=seq)
    )
    return max(seq, f.row.cubierto_seq)


def settle_stale(f: Facts, now: datetime) -> str | None:
    """End a claim whose lease ran out: "released" before DATA, "presumed-sent" after; or None."""
    row = f.row
    if row.estado is None or row.plazo is None or row.plazo > now:
        return None
    if row.estado == SENDING:
        return "presumed-sent" if finish(f, row.intento or "", sent_at=now) else None
    mine = _where(f, _N.intento == row.intento, _N.estado == CLAIMED)
    values = {"estado": None, "intento": None, "plazo": None}
    released = _commit(update(Notificacion.__table__).where(*mine).values(**values))
    return "released" if released else None


def claim(
    f: Facts, covered: int, upto: int, now: datetime, interval: float, lease: float
) -> str | None:
    """Claim the mail for messages up to `upto`; the attempt's id, or None if another job holds it."""
    attempt = str(uuid.uuid4())
    window_passed = or_(_N.enviado_at.is_(None), _N.enviado_at <= now - timedelta(seconds=interval))
    free = and_(_N.estado.is_(None), _N.cubierto_seq == covered, window_passed)
    values = {
        "estado": CLAIMED,
        "intento": attempt,
        "plazo": now + timedelta(seconds=lease),
        "hasta_seq": upto,
    }
    claimed = _commit(update(Notificacion.__table__).where(*_where(f, free)).values(**values))
    return attempt if claimed else None


def sending(f: Facts, attempt: str, now: datetime, lease: float) -> bool:
    """Mark the claim as in DATA, right before it; False if the claim was taken over."""
    mine = _where(f, _N.intento == attempt, _N.estado == CLAIMED)
    values = {"estado": SENDING, "plazo": now + timedelta(seconds=lease)}
    return bool(_commit(update(Notificacion.__table__).where(*mine).values(**values)))


def finish(f: Facts, attempt: str, sent_at: datetime | None) -> bool:
    """Close the claim: its messages covered; the interval restarts at sent_at if it was sent."""
    values: dict[str, Any] = {
        "estado": None,
        "intento": None,
        "plazo": None,
        "fallos": 0,
        "cubierto_seq": case((_N.cubierto_seq < _N.hasta_seq, _N.hasta_seq), else_=_N.cubierto_seq),
    }
    if sent_at is not None:
        values["enviado_at"] = sent_at
    mine = _where(f, _N.intento == attempt)
    return bool(_commit(update(Notificacion.__table__).where(*mine).values(**values)))


def failed(f: Facts, attempt: str, now: datetime, first: float, cap: float) -> float:
    """The mail server failed this attempt: the claim waits out a growing backoff; its seconds."""
    fallos = db.session.scalar(select(_N.fallos).where(*_where(f, _N.intento == attempt)))
    delay = min(cap, first * 2 ** (fallos or 0))
    values = {
        "estado": CLAIMED,
        "plazo": now + timedelta(seconds=delay),
        "fallos": _N.fallos + 1,
    }
    _commit(
        update(Notificacion.__table__).where(*_where(f, _N.intento == attempt)).values(**values)
    )
    return delay


def people(f: Facts) -> tuple[User, User]:
    """(recipient, sender)."""
    recipient = db.session.get(User, f.recipient_id)
    sender = db.session.get(User, f.sender_id)
    if recipient is None or sender is None:
        raise LookupError("a member of the conversation no longer exists")
    return recipient, sender


def candidates(now: datetime, after: float, interval: float, limit: int) -> list[tuple[str, str]]:
    """(conversation, member) pairs that may owe a mail whose job was lost: for the periodic scan.

    A member with unread messages beyond their covered seq, the last message
    at least `after` old (and within the lookback), and nothing in flight but
    an expired claim; members who turned notifications off are left out.
    """
    c = Conversacion.__table__.c
    found: list[tuple[str, str]] = []
    for member, unread in (
        (c.psicologo_id, c.no_leidos_psicologo),
        (c.paciente_id, c.no_leidos_paciente),
    ):
        n = Notificacion.__table__.alias("n")
        prefs = Preferencias.__table__.alias("p")
        idle = or_(
            n.c.conversacion_id.is_(None),
            and_(
                n.c.estado.is_(None),
                c.last_seq > n.c.cubierto_seq,
                or_(
                    n.c.enviado_at.is_(None),
                    n.c.enviado_at <= now - timedelta(seconds=interval),
                ),
            ),
            and_(n.c.estado.is_not(None), n.c.plazo <= now),
        )
        query = (
            select(c.id, member)
            .outerjoin(n, and_(n.c.conversacion_id == c.id, n.c.usuario_id == member))
            .outerjoin(prefs, prefs.c.usuario_id == member)
            .where(
                c.updated_at >= now - SCAN_LOOKBACK,
                c.updated_at <= now - timedelta(seconds=after),
                unread > 0,
                idle,
                or_(prefs.c.usuario_id.is_(None), prefs.c.notificar_correo.is_(True)),
            )
            .limit(limit)
        )
        found += [(cid, uid) for cid, uid in db.session.execute(query)]
    db.session.commit()
    return found
