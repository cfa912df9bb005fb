"""The batched writer: concurrent sends stored by one transaction (UPDATE, SELECT, INSERT, INSERT, COMMIT).

chat/service.py decides what a send is (send_message); this module stores a
batch of them, and chat/group_commit.py gathers the batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, Update, bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql import ColumnElement

from .. import observability
from ..auth import Caller
from ..errors import Forbidden
from ..extensions import db
from ..models import Conversacion, Mensaje, MensajeBusqueda, PerfilPaciente, new_id, utcnow
from . import service
from .folding import fold

# Sends waiting beyond this many go in the next transaction.
MAX_BATCH = 64


# The send path's statements, built once: Core on the tables, so no ORM
# unit of work or statement construction runs per message.
_CONV = Conversacion.__table__
_PERFIL = PerfilPaciente.__table__
_INSERT_MENSAJE = insert(Mensaje.__table__)
_INSERT_BUSQUEDA = insert(MensajeBusqueda.__table__)


@functools.cache
def _claim(conversations: int) -> Update:
    """UPDATE taking the next seqs of that many conversations and counting them unread.

    Built once per count: conversation k is bound as ck, its new messages as
    nk, and those unread by the patient and by the psychologist as pack, psik.
    """
    c = _CONV.c
    ids = range(conversations)

    def plus(column: ColumnElement[int], name: str) -> ColumnElement[int]:
        whens = [(c.id == bindparam(f"c{k}"), bindparam(f"{name}{k}", type_=Integer)) for k in ids]
        return column + case(*whens, else_=0)

    return (
        update(_CONV)
        .where(c.id.in_([bindparam(f"c{k}") for k in ids]))
        .values(
            last_seq=plus(c.last_seq, "n"),
            no_leidos_paciente=plus(c.no_leidos_paciente, "pac"),
            no_leidos_psicologo=plus(c.no_leidos_psicologo, "psi"),
            updated_at=bindparam("now"),
        )
    )


_READ_CLAIMED = (
    select(_CONV, _PERFIL.c.psicologo_asignado_id.label("asignado"))
    .outerjoin(_PERFIL, _PERFIL.c.user_id == _CONV.c.paciente_id)
    .where(_CONV.c.id.in_(bindparam("cids", expanding=True)))
)


@dataclass(frozen=True)
class Outgoing:
    """A message on its way to the database."""

    caller: Caller
    conversacion_id: str
    contenido: str
    client_id: str | None
    busqueda: str = field(init=False)

    def __post_init__(self) -> None:
        # Folded here, before the transaction: the send holds its locks no longer for it.
        object.__setattr__(self, "busqueda", fold(self.contenido))


def store_messages(batch: Sequence[Outgoing]) -> list[service.Sent | Exception]:
    """Store sends in one transaction: UPDATE, SELECT, INSERT, INSERT for all of them, one COMMIT.

    The UPDATE comes first and claims every conversation's seqs at once, so
    the row locks (in primary-key order; SQLite's write lock) are held before
    anything is read, and a rollback hands the seqs back: no gaps. The SELECT
    then shows who may send where: a send that may not is answered Forbidden
    and the rest retried without it. A repeated clientId answers the stored
    message; in a batch of several, it or a deadlock stores them one by one.
    The second INSERT writes each message's folded text for search (v1.2),
    apart from Mensajes so a search reads narrow rows (models.MensajeBusqueda).
    """
    observability.sends_batched(len(batch))
    outcomes: dict[int, service.Sent | Exception] = {}
    todo = list(range(len(batch)))
    try:
        while todo:
            now = utcnow()
            ids, params = _claim_params([batch[i] for i in todo], now)
            db.session.execute(_claim(len(ids)), params)
            rows = {r.id: r for r in db.session.execute(_READ_CLAIMED, {"cids": ids})}
            checked = {i: _refusal(batch[i], rows.get(batch[i].conversacion_id)) for i in todo}
            refused = {i: exc for i, exc in checked.items() if exc is not None}
            if refused:
                db.session.rollback()
                outcomes.update(refused)
                todo = [i for i in todo if i not in refused]
                continue
            sent = _number(batch, todo, rows, now)
            # Neither the messages nor their conversations are in the session:
            # the commit expires nothing, so announcing them reads no row back.
            db.session.execute(_INSERT_MENSAJE, [_columns(s.mensaje) for s in sent])
            db.session.execute(_INSERT_BUSQUEDA, _folded(batch, todo, sent))
            db.session.commit()
            outcomes.update(zip(todo, sent, strict=True))
            todo = []
    except (IntegrityError, OperationalError) as exc:
        db.session.rollback()
        if len(batch) == 1 and isinstance(exc, IntegrityError):
            return [_stored_already(batch[0], exc)]
        if len(batch) == 1 or (isinstance(exc, OperationalError) and not _is_deadlock(exc)):
            raise
        outcomes.update((i, _alone(batch[i])) for i in todo)
    except Exception:
        db.session.rollback()
        raise
    return [outcomes[i] for i in range(len(batch))]


def _alone(out: Outgoing) -> service.Sent | Exception:
    """One send of a batch in its own transaction, its error returned rather than raised."""
    try:
        return store_messages([out])[0]
    except Exception as exc:
        db.session.rollback()
        return exc


def _stored_already(out: Outgoing, conflict: IntegrityError) -> service.Sent:
    """The caller's message already stored under this clientId; the conflict if none is."""
    repeated = service.by_client_id(out.caller, out.conversacion_id, out.client_id)
    if repeated is None:
        raise conflict
    conv = service.member_conversation(out.caller, out.conversacion_id)
    # The batch's leader may roll back for the next send, which would expire
    # them under the caller they belong to: hand them over detached.
    db.session.expunge(repeated)
    db.session.expunge(conv)
    return service.Sent(repeated, conv, created=False)


def _claim_params(sends: list[Outgoing], now: datetime) -> tuple[list[str], dict[str, Any]]:
    """The conversations the sends go to (sorted), and _claim's parameters for them."""
    ids = sorted({out.conversacion_id for out in sends})
    params: dict[str, Any] = {"now": now}
    for k, cid in enumerate(ids):
        mine = [out for out in sends if out.conversacion_id == cid]
        by_psicologo = sum(1 for out in mine if out.caller.is_psicologo)
        params |= {
            f"c{k}": cid,
            f"n{k}": len(mine),
            f"pac{k}": by_psicologo,  # unread by the patient
            f"psi{k}": len(mine) - by_psicologo,  # unread by the psychologist
        }
    return ids, params


def _refusal(out: Outgoing, row: Row[Any] | None) -> Forbidden | None:
    """Why this send may not go into the conversation row, or None."""
    if row is None:
        return Forbidden(service.NOT_MEMBER)
    member = row.psicologo_id if out.caller.is_psicologo else row.paciente_id
    if member != out.caller.user_id:
        return Forbidden(service.NOT_MEMBER)
    if row.asignado != row.psicologo_id:
        return Forbidden(service.CLOSED)
    return None


def _number(
    batch: Sequence[Outgoing], todo: list[int], rows: dict[str, Row[Any]], now: datetime
) -> list[service.Sent]:
    """Each send's message with its seq, and its conversation as it was right after it.

    The rows hold the state after the whole batch; walking backwards takes
    each later message's seq and unread count off again.
    """
    after = {cid: dict(row._mapping) for cid, row in rows.items()}
    sent: list[service.Sent] = []
    for i in reversed(todo):
        out = batch[i]
        state = after[out.conversacion_id]
        conv = Conversacion(**{col.key: state[col.key] for col in _CONV.columns})
        sent.append(
            service.Sent(_new_mensaje(out, conv.id, state["last_seq"], now), conv, created=True)
        )
        state["last_seq"] -= 1
        state["no_leidos_paciente" if out.caller.is_psicologo else "no_leidos_psicologo"] -= 1
    sent.reverse()
    return sent


def _is_deadlock(exc: OperationalError) -> bool:
    """MySQL's deadlock or lock-wait timeout: the batch is retried send by send."""
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code in (1205, 1213)


def _new_mensaje(out: Outgoing, conversacion_id: str, seq: int, now: datetime) -> Mensaje:
    """The transient message a send stores."""
    return Mensaje(
        id=new_id(),
        conversacion_id=conversacion_id,
        remitente=out.caller.remitente,
        remitente_id=out.caller.user_id,
        contenido=out.contenido,
        leido=False,
        created_at=now,
        seq=seq,
        client_id=out.client_id,
        leido_at=None,
        version=1,
        editado_at=None,
        eliminado_at=None,
    )


def _columns(row: Mensaje) -> dict[str, Any]:
    """A transient model's column values, for a Core INSERT."""
    return {c.key: getattr(row, c.key) for c in Mensaje.__table__.columns}


def _folded(
    batch: Sequence[Outgoing], todo: list[int], sent: list[service.Sent]
) -> list[dict[str, Any]]:
    """The search rows of the messages being stored (their text folded before the transaction)."""
    return [
        {
            "conversacion_id": s.mensaje.conversacion_id,
            "seq": s.mensaje.seq,
            "busqueda": batch[i].busqueda,
        }
        for i, s in zip(todo, sent, strict=True)
    ]
